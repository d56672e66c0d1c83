package httpx

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports pgxpool statistics.
type poolCollector struct {
	pool  *pgxpool.Pool
	descs map[string]*prometheus.Desc
}

// NewPoolCollector returns a Prometheus collector of the pool's statistics,
// labelled pool=name: "shared" for the pool of a serving process, others for
// the pools a component keeps to itself ("radius").
func NewPoolCollector(pool *pgxpool.Pool, name string) prometheus.Collector {
	d := func(metric, help string) *prometheus.Desc {
		return prometheus.NewDesc("numverify_pgxpool_"+metric, help, nil, prometheus.Labels{"pool": name})
	}
	return &poolCollector{pool: pool, descs: map[string]*prometheus.Desc{
		"acquired":         d("acquired_conns", "Connections currently in use."),
		"idle":             d("idle_conns", "Idle connections."),
		"total":            d("total_conns", "All connections."),
		"max":              d("max_conns", "Maximum pool size."),
		"acquire_count":    d("acquire_total", "Successful acquires."),
		"acquire_seconds":  d("acquire_duration_seconds_total", "Time spent acquiring connections."),
		"empty_acquire":    d("empty_acquire_total", "Acquires that waited for a connection."),
		"canceled_acquire": d("canceled_acquire_total", "Acquires cancelled by their context."),
	}}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.GaugeValue, v) }
	counter := func(k string, v float64) { ch <- prometheus.MustNewConstMetric(c.descs[k], prometheus.CounterValue, v) }
	gauge("acquired", float64(s.AcquiredConns()))
	gauge("idle", float64(s.IdleConns()))
	gauge("total", float64(s.TotalConns()))
	gauge("max", float64(s.MaxConns()))
	counter("acquire_count", float64(s.AcquireCount()))
	counter("acquire_seconds", s.AcquireDuration().Seconds())
	counter("empty_acquire", float64(s.EmptyAcquireCount()))
	counter("canceled_acquire", float64(s.CanceledAcquireCount()))
}
