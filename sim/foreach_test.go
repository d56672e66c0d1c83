package sim

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// TestForEach: at most parallel calls at once, every device visited when
// all succeed, and the first error returned and passed on to the calls
// still to come as a cancelled context.
func TestForEach(t *testing.T) {
	devices := make([]*benchDevice, 50)
	for i := range devices {
		devices[i] = &benchDevice{}
	}
	var running, peak, calls atomic.Int64
	err := forEach(context.Background(), devices, 4, func(ctx context.Context, d *benchDevice) error {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		calls.Add(1)
		return nil
	})
	if err != nil || calls.Load() != 50 || peak.Load() > 4 {
		t.Fatalf("forEach: %v, %d calls, %d at once; want nil, 50, at most 4", err, calls.Load(), peak.Load())
	}

	failed := errors.New("attach refused")
	var cancelled atomic.Int64
	err = forEach(context.Background(), devices, 1, func(ctx context.Context, d *benchDevice) error {
		if ctx.Err() != nil {
			cancelled.Add(1)
			return ctx.Err()
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("forEach = %v, want the first error", err)
	}
	if cancelled.Load() == 0 {
		t.Errorf("after the first error the other calls still got a live context")
	}
}
