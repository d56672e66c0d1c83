package sim

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Interval is one ReportEvery of a run: what completed in it, and the
// latency of those iterations (from their scheduled start in an open loop).
type Interval struct {
	End      float64 `json:"end_s"` // seconds since the start
	OK       uint64  `json:"ok"`
	Failed   uint64  `json:"failed"`
	PerSec   float64 `json:"per_second"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	InFlight int64   `json:"in_flight"` // at the end of the interval
}

// intervalStats collects the current interval; reportIntervals swaps in a
// fresh one at the end of each.
type intervalStats struct {
	latency histogram
	failed  atomic.Uint64
}

// reportIntervals closes an interval every ReportEvery, and the last one
// when done is closed, printing a line for each to Progress (when set).
func (r *benchRun) reportIntervals(done <-chan struct{}) {
	ticker := time.NewTicker(r.cfg.ReportEvery)
	defer ticker.Stop()
	begun := r.start
	for {
		select {
		case <-done:
			// The rest, unless it is an empty sliver: what finished after
			// the last tick (the iterations in flight at the end) counts.
			if stats := r.interval.Load(); stats.latency.count() > 0 || stats.failed.Load() > 0 ||
				time.Since(begun) >= r.cfg.ReportEvery/2 {
				r.closeInterval(begun)
			}
			return
		case <-ticker.C:
			r.closeInterval(begun)
			begun = time.Now()
		}
	}
}

func (r *benchRun) closeInterval(begun time.Time) {
	stats := r.interval.Swap(&intervalStats{})
	now := time.Now()
	h := &stats.latency
	iv := Interval{End: now.Sub(r.start).Seconds(), OK: h.count(), Failed: stats.failed.Load(),
		PerSec: float64(h.count()) / now.Sub(begun).Seconds(),
		P50:    ms(h.quantile(0.5)), P99: ms(h.quantile(0.99)), Max: ms(h.max()), InFlight: r.inFlight.Load()}
	r.intervals = append(r.intervals, iv)
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "%7.1fs %9.1f/s  p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  %d errors  %d in flight\n",
			iv.End, iv.PerSec, iv.P50, iv.P99, iv.Max, iv.Failed, iv.InFlight)
	}
}
