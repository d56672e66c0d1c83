package main

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/network"
	"github.com/numverify/numverify/sim"
)

// TestAccountingDoesNotWaitForTheSharedPool: the accounting server commits
// on connections of its own. With every connection of the shared pool held
// (as logins hold them under load), a gateway's Start is still answered,
// and the session is in the table.
func TestAccountingDoesNotWaitForTheSharedPool(t *testing.T) {
	if testing.Short() {
		t.Skip("serves RADIUS against Postgres")
	}
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shared, err := pg.Open(ctx, db.URL, pg.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	held, err := shared.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if held != nil {
			held.Release()
		}
	}()

	addr := freeUDPAddr(t)
	f := &radiusFlags{addr: addr, secret: "testing123-testing123", rememberStops: network.DefaultRememberStops,
		historyRetention: network.DefaultHistoryRetention}
	registry := prometheus.NewRegistry()
	deps := serveDeps{Pool: shared, DatabaseURL: db.URL, Logger: slog.New(slog.DiscardHandler), Registry: registry}
	serve, err := f.startAccounting(deps)
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); serve(serveCtx) }()
	defer func() { stop(); <-done }()

	gw := &sim.Gateway{Addr: addr, Secret: f.secret, Timeout: time.Second, Retries: 2}
	ip := netip.MustParseAddr("10.99.0.7")
	if _, err := gw.Start(ctx, "+33612345678", ip); err != nil {
		t.Fatalf("a Start while the shared pool has no free connection: %v", err)
	}
	held.Release()
	held = nil
	var n int
	if err := shared.QueryRow(ctx, `SELECT count(*) FROM network_sessions WHERE ip = $1 AND upper_inf(period)`, ip).Scan(&n); err != nil || n != 1 {
		t.Fatalf("open sessions at %s after the Start: %d, %v; want 1", ip, n, err)
	}
	// Its pool is seen in the metrics, beside the shared one's.
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() != "numverify_pgxpool_max_conns" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := m.GetLabel()
			if len(labels) == 1 && labels[0].GetName() == "pool" && labels[0].GetValue() == "radius" {
				found = m.GetGauge().GetValue() == accountingPoolSize
			}
		}
	}
	if !found {
		t.Errorf(`no numverify_pgxpool_max_conns{pool="radius"} %d among the metrics`, accountingPoolSize)
	}
}

// freeUDPAddr is a UDP address on 127.0.0.1 that was free a moment ago.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}
