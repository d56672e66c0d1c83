package network

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/numverify/numverify/internal/pgtest"
)

// TestExclusionByAddressKey: the exclusion constraint led by
// network_address_key forbids exactly the overlaps it forbade (a /128 in a
// held /64, one port of a held block, one instant) and nothing else (two
// /128s of one /64, disjoint port blocks, consecutive periods).
func TestExclusionByAddressKey(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	ctx := context.Background()
	insert := func(ip, ports, period string) error {
		_, err := store.db.Exec(ctx, `INSERT INTO network_sessions (msisdn, ip, ports, period) VALUES ('+33612345678', $1, $2::int4range, $3::tstzrange)`,
			ip, ports, period)
		return err
	}
	const always, before, after = "[2026-01-01,)", "[2025-01-01,2026-01-01)", "[2026-01-01,2026-02-01)"
	for _, row := range [][3]string{
		{"2001:db8:0:1::/64", "[0,65535]", always},
		{"2001:db8:0:2::1/128", "[0,65535]", always},
		{"127.30.0.1/32", "[1024,2047]", always},
		{"127.30.0.2/32", "[0,65535]", before},
	} {
		if err := insert(row[0], row[1], row[2]); err != nil {
			t.Fatalf("insert %v: %v", row, err)
		}
	}
	tests := []struct {
		name              string
		ip, ports, period string
		refused           bool
	}{
		{"a /128 inside a held /64", "2001:db8:0:1::5/128", "[0,65535]", always, true},
		{"the /64 around a held /128", "2001:db8:0:2::/64", "[0,65535]", always, true},
		{"another /128 of that /64", "2001:db8:0:2::2/128", "[0,65535]", always, false},
		{"the next /64", "2001:db8:0:3::/64", "[0,65535]", always, false},
		{"one port of a held block", "127.30.0.1/32", "[2047,2047]", always, true},
		{"the next block", "127.30.0.1/32", "[2048,3071]", always, false},
		{"an instant of a held period", "127.30.0.2/32", "[0,65535]", "[2025-12-31,2026-01-02)", true},
		{"the period after it", "127.30.0.2/32", "[0,65535]", after, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := insert(tt.ip, tt.ports, tt.period)
			var pgErr *pgconn.PgError
			refused := errors.As(err, &pgErr) && pgErr.Code == "23P01"
			if err != nil && !refused {
				t.Fatalf("insert: %v", err)
			}
			if refused != tt.refused {
				t.Errorf("refused %v; want %v", refused, tt.refused)
			}
		})
	}
}

// TestFeedStartCutsAdminSessionInItsPrefix: the feed's /64 Start finds a
// /128 the admin API attached inside it (same address key) and cuts it.
func TestFeedStartCutsAdminSessionInItsPrefix(t *testing.T) {
	a := newAccounting(t)
	mustAttach(t, a.store, AttachRequest{MSISDN: bob, IP: "2001:db8:0:9::42"})
	now := time.Now()
	start := a.open("pgw1", "s", alice, "2001:db8:0:9::/64", 0)
	start.At = now
	a.apply(outcomes(OutcomeOpened), start)
	expectHolder(t, a.store, "2001:db8:0:9::42", 443, now.Add(time.Millisecond), alice)
	expectHolder(t, a.store, "2001:db8:0:9::42", 443, now.Add(-time.Millisecond), bob)
}

// TestAddressProbesUseTheKey: on a table of a few thousand analysed rows,
// every probe of network_sessions by address — the feed's statements and
// the resolver's — enters the exclusion constraint's index by the address
// key (a few pages), never by && or >>= alone (a walk of much of the tree),
// and none scans the table.
func TestAddressProbesUseTheKey(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	loadSessions(t, store, 2000, 6000)
	ctx := context.Background()
	a := &accounting{t: t, store: store, base: time.Now().Add(-time.Hour).Truncate(time.Second)}
	events := []AccountingEvent{a.open("pgw1", "s1", alice, "10.0.3.7", 3590), a.open("pgw1", "s2", bob, "2001:db8::/64", 10)}
	nas, sid := []string{"pgw1", "pgw1"}, []string{"s1", "s2"}
	ips, at := []netip.Prefix{events[0].IP, events[1].IP}, []time.Time{events[0].At, events[1].At}
	statements := []struct {
		name string
		sql  string
		args []any
	}{
		{"resolve", resolveSQL, []any{netipAddr("10.0.3.7"), int32(443), time.Now()}},
		{"fast open", fastOpenSQL, []any{nas, sid, ips}},
		{"open state", openStateSQL, []any{nas, sid, ips, at, time.Hour}},
		{"open insert", openInsertSQL, []any{nas, sid, ips, at, time.Hour,
			[]string{alice, bob}, []string{"internet", "internet"}, []string{"LTE", "LTE"}, []*string{nil, nil}}},
	}
	for _, st := range statements {
		t.Run(st.name, func(t *testing.T) {
			tx, err := store.db.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			plan, raw := pgtest.Explain(ctx, t, tx, st.sql, st.args...)
			probes := 0
			for _, n := range plan.Nodes() {
				if n.RelationName == "network_sessions" && n.NodeType == "Seq Scan" {
					t.Errorf("a Seq Scan of network_sessions:\n%s", raw)
				}
				if n.IndexName == "network_sessions_no_overlap" {
					probes++
					if !strings.Contains(n.IndexCond, "network_address_key") {
						t.Errorf("the exclusion index entered without the address key: %s", n.IndexCond)
					}
				}
			}
			if st.name == "resolve" && probes == 0 {
				t.Errorf("the resolver does not use network_sessions_no_overlap:\n%s", raw)
			}
		})
	}
}
