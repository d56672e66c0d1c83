package sim

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestRadiusModelOnlyWhatIsSent: a request not sent for backlog (every
// identifier in flight) leaves the model as it was, so the table compared
// at the end is compared with what the server was actually told.
func TestRadiusModelOnlyWhatIsSent(t *testing.T) {
	cfg := RadiusBenchConfig{Secret: "s", Subscribers: 100, Rate: 2000, Duration: time.Second,
		Prefix: netip.MustParsePrefix("10.64.0.0/24"), StartShare: 0.5, StopShare: 0.5}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	model, err := newRadiusModel(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	run := &radiusRun{cfg: &cfg, model: model, sockets: []*radiusSocket{{freeIDs: make(chan byte, 256)}}} // no identifier free
	skipped := run.schedule(context.Background(), 0, 50*time.Millisecond, false)
	if skipped == 0 {
		t.Fatal("nothing was skipped for backlog")
	}
	if open := model.openSessions(); len(open) != 0 || len(model.idle) != cfg.Subscribers {
		t.Errorf("the model has %d sessions open and %d subscribers idle after nothing was sent; want 0 and %d",
			len(open), len(model.idle), cfg.Subscribers)
	}
}
