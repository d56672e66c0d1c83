package network

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func netipAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

func mustAttach(t *testing.T, store *Store, req AttachRequest) Session {
	t.Helper()
	s, err := store.Attach(context.Background(), req)
	if err != nil {
		t.Fatalf("Attach(%s %s %s): %v", req.IP, req.Ports, req.Pool, err)
	}
	return s
}

// expectHolder resolves addr:port at at and checks the MSISDN ("" = nobody).
func expectHolder(t *testing.T, store *Store, addr string, port uint16, at time.Time, want string) {
	t.Helper()
	got, err := store.Resolve(context.Background(), netipAddr(addr), port, at)
	switch {
	case want == "" && !errors.Is(err, ErrNotFound):
		t.Errorf("Resolve(%s:%d) = %q, %v; want ErrNotFound", addr, port, got.MSISDN, err)
	case want != "" && err != nil:
		t.Errorf("Resolve(%s:%d): %v; want %s", addr, port, err, want)
	case want != "" && got.MSISDN != want:
		t.Errorf("Resolve(%s:%d) = %s; want %s", addr, port, got.MSISDN, want)
	}
}

func countRows(t *testing.T, store *Store) int {
	t.Helper()
	var n int
	if err := store.db.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM network_sessions) + (SELECT count(*) FROM network_session_history)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
