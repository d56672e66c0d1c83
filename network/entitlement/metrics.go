package entitlement

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the entitlement server's own series (the HTTP ones come from
// the serve wrapper).
type metrics struct {
	outcomes *prometheus.CounterVec
	sessions prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_entitlement_outcomes_total",
			Help: "Entitlement server answers by outcome: token, resync, unknown_sim, bad_mac, wrong_res, rejected, client_error, bad_auts, resync_exhausted, no_session, malformed, overloaded, error.",
		}, []string{"outcome"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "numverify_entitlement_sessions",
			Help: "EAP-AKA authentications waiting for the device's answer.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.outcomes, m.sessions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("entitlement metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) outcome(o string) { m.outcomes.WithLabelValues(o).Inc() }
