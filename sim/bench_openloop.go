package sim

import (
	"context"
	"sync"
	"time"
)

// openLoop starts arrivals at Rate per second on a fixed schedule until stop
// ends: arrival k is due at start + k/Rate whatever happened to the earlier
// ones. Each takes a free device from devices (at most one iteration per
// device), waiting for one if all are busy; its latency counts from when it
// was due, so time spent waiting for the server (or for a device the server
// still holds) is measured, not omitted. An arrival still waiting when the
// run ends is counted as unstarted.
func (r *benchRun) openLoop(ctx, stop context.Context, devices chan *benchDevice) {
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	for k := 0; ; k++ {
		due := r.start.Add(time.Duration(float64(k) * float64(time.Second) / r.cfg.Rate))
		if !due.Before(r.start.Add(r.cfg.Duration)) {
			break // due when the run ends: not an arrival of this run
		}
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-stop.Done():
				wg.Wait()
				return
			case <-timer.C:
			}
		} else if stop.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case d := <-devices:
				if stop.Err() != nil { // both were ready: the run is over
					devices <- d
					r.unstarted.Add(1)
					return
				}
				r.iteration(ctx, d, due)
				devices <- d
			case <-stop.Done():
				r.unstarted.Add(1)
			}
		}()
	}
	wg.Wait()
}
