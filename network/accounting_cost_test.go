package network

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestAccountingStartCost measures what a batch of 1,000 Starts costs in
// SQL with 100,000 sessions open: EXPLAIN ANALYZE of each statement of the
// Opens (rolled back), then the whole ApplyAccounting. Opt-in (it loads
// 100,000 sessions): NUMVERIFY_ACCOUNTING_COST=1 go test -run StartCost -v ./network/
func TestAccountingStartCost(t *testing.T) {
	if os.Getenv("NUMVERIFY_ACCOUNTING_COST") == "" {
		t.Skip("set NUMVERIFY_ACCOUNTING_COST=1 to measure")
	}
	store, _ := newTestStore(t, testPools)
	ctx := context.Background()
	const open, batch = 100_000, 1000
	if _, err := store.db.Exec(ctx, `INSERT INTO network_sessions (msisdn, ip, period, apn, rat, nas, acct_session_id)
SELECT '+336' || lpad(g::text, 8, '0'), '10.0.0.0'::inet + g, tstzrange(now() - interval '10 minutes', NULL, '[)'), 'internet', 'LTE', 'pgw1', 'old-' || g
FROM generate_series(0, $1 - 1) AS g`, open); err != nil {
		t.Fatal(err)
	}
	if _, err := store.db.Exec(ctx, `ANALYZE network_sessions`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	starts := func(tag string, base uint32) []AccountingEvent {
		events := make([]AccountingEvent, batch)
		for i := range events {
			a := base + uint32(i)*97%open
			events[i] = AccountingEvent{Kind: AccountingOpen, NAS: "pgw1", SessionID: fmt.Sprintf("%s-%d", tag, i), At: now,
				MSISDN: fmt.Sprintf("+3361%08d", i), IP: netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 32),
				APN: "internet", RAT: "LTE"}
		}
		return events
	}
	for _, c := range []struct {
		name   string
		events []AccountingEvent
	}{
		{"on held addresses (lost Stops: each cuts one session)", starts("held", 0x0a000000)},
		{"on free addresses", starts("free", 0x0b000000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			explain(t, store, c.events)
			start := time.Now()
			results, errs, err := store.ApplyAccounting(ctx, c.events, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range results {
				if errs[i] != nil || r.Outcome != OutcomeOpened {
					t.Fatalf("event %d: %v %v", i, r.Outcome, errs[i])
				}
			}
			t.Logf("ApplyAccounting of %d Starts: %s (%s per Start)", batch, time.Since(start).Round(time.Millisecond),
				(time.Since(start) / batch).Round(time.Microsecond))
		})
	}
	// Interim-Updates, then Stops, of sessions open since the load.
	existing := func(kind AccountingKind) []AccountingEvent {
		events := make([]AccountingEvent, batch)
		for i := range events {
			g := uint32(i*97 + 1) // not an address the Starts above took over
			a := 0x0a000000 + g
			events[i] = AccountingEvent{Kind: kind, NAS: "pgw1", SessionID: fmt.Sprintf("old-%d", g), At: now}
			if kind == AccountingOpen {
				events[i].MSISDN, events[i].APN, events[i].RAT = fmt.Sprintf("+336%08d", g), "internet", "LTE"
				events[i].IP = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), 32)
			}
		}
		return events
	}
	for _, c := range []struct {
		name   string
		events []AccountingEvent
		want   AccountingOutcome
	}{
		{"Interim-Updates", existing(AccountingOpen), OutcomeConfirmed},
		{"Stops", existing(AccountingClose), OutcomeClosed},
	} {
		start := time.Now()
		results, errs, err := store.ApplyAccounting(ctx, c.events, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if errs[i] != nil || r.Outcome != c.want {
				t.Fatalf("%s %d: %v %v", c.name, i, r.Outcome, errs[i])
			}
		}
		t.Logf("ApplyAccounting of %d %s: %s (%s each)", batch, c.name, time.Since(start).Round(time.Millisecond),
			(time.Since(start) / batch).Round(time.Microsecond))
	}
}

// explain runs the Opens' statements under EXPLAIN ANALYZE in a transaction
// it rolls back, and logs each one's execution time.
func explain(t *testing.T, store *Store, events []AccountingEvent) {
	ctx := context.Background()
	tx, err := store.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	n := len(events)
	nas, sid, ips, at := make([]string, n), make([]string, n), make([]netip.Prefix, n), make([]time.Time, n)
	msisdn, apn, rat, imsi := make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	for i, e := range events {
		nas[i], sid[i], ips[i], at[i], msisdn[i], apn[i], rat[i] = e.NAS, e.SessionID, e.IP, e.At, e.MSISDN, e.APN, e.RAT
	}
	for _, st := range []struct {
		name string
		sql  string
		args []any
	}{
		{"state and cut", openStateSQL, []any{nas, sid, ips, at, time.Hour}},
		{"insert", openInsertSQL, []any{nas, sid, ips, at, time.Hour, msisdn, apn, rat, imsi}},
	} {
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+st.sql, st.args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := ""
		for _, l := range lines {
			plan += l + "\n"
		}
		if os.Getenv("NUMVERIFY_ACCOUNTING_COST") == "plans" {
			t.Logf("%s:\n%s", st.name, plan)
		} else {
			t.Logf("%s: %s", st.name, lines[len(lines)-1])
		}
	}
}
