package network

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestHistory: closed sessions move from the hot table to the day's
// partition, are still found at past instants (and edited by a late Start
// under the same rules), never "now", and go a partition at a time.
func TestHistory(t *testing.T) {
	a := newAccounting(t)
	ctx := context.Background()
	ip := "127.50.7.1"
	a.apply(outcomes(OutcomeOpened, OutcomeOpened), a.open("pgw1", "a", alice, ip, 0), a.open("pgw1", "b", bob, "127.50.7.2", 0))
	a.apply(outcomes(OutcomeClosed), a.stop("pgw1", "a", 30))
	now := time.Now()
	report, err := a.store.MaintainHistory(ctx, now, DefaultHistoryRetention)
	if err != nil || report.Moved != 1 || report.Skipped {
		t.Fatalf("MaintainHistory = %+v, %v; want alice's closed session moved", report, err)
	}
	var hot, inDefault int
	if err := a.store.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM network_sessions WHERE NOT upper_inf(period)),
        (SELECT count(*) FROM network_session_history_default)`).Scan(&hot, &inDefault); err != nil {
		t.Fatal(err)
	}
	if hot != 0 || inDefault != 0 {
		t.Errorf("%d closed sessions left in the hot table, %d in the default partition; want 0, 0", hot, inDefault)
	}
	a.holder(ip, 10, alice)
	a.holder(ip, 30, "")
	a.holder("127.50.7.2", 10, bob)
	if s, err := a.store.LookupAddress(ctx, netipAddr(ip), a.at(10)); err != nil || s.MSISDN != alice {
		t.Errorf("LookupAddress in history = %+v, %v; want alice", s, err)
	}
	// Known from history: neither reopened nor remembered as a lost Stop.
	a.apply(outcomes(OutcomeKnown, OutcomeNoSession), a.open("pgw1", "a", alice, ip, 35), a.stop("pgw1", "a", 30))
	var stops int
	if err := a.store.db.QueryRow(ctx, `SELECT count(*) FROM network_accounting_stops`).Scan(&stops); err != nil || stops != 0 {
		t.Errorf("%d stops remembered (%v); want none: the session is in history", stops, err)
	}
	// A Start older than alice's Stop (hers was lost, then came late) cuts
	// her history row.
	r := a.apply(outcomes(OutcomeOpened), a.open("pgw2", "c", "+33633333333", ip, 20))
	if r[0].Superseded != 1 {
		t.Errorf("superseded %d; want alice's history row", r[0].Superseded)
	}
	a.holder(ip, 10, alice)
	a.holder(ip, 25, "+33633333333")
	a.holder(ip, 31, "+33633333333")
	sessions, err := a.store.List(ctx, ListFilter{MSISDN: alice, All: true})
	if err != nil || len(sessions) != 1 || sessions[0].End == nil || !sessions[0].End.Equal(a.at(20)) {
		t.Errorf("List(alice, all) = %+v, %v; want her one session, ended at the late Start", sessions, err)
	}
	// Past retention, the days go with their partitions.
	report, err = a.store.MaintainHistory(ctx, now.Add(DefaultHistoryRetention+3*24*time.Hour), DefaultHistoryRetention)
	if err != nil || report.Dropped == 0 {
		t.Fatalf("MaintainHistory past retention = %+v, %v; want partitions dropped", report, err)
	}
	a.holder(ip, 10, "")
	a.holder("127.50.7.2", 10, bob) // still open
}

func TestHistoryRefusesShortRetention(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	if _, err := store.MaintainHistory(context.Background(), time.Now(), time.Hour); err == nil {
		t.Fatal("MaintainHistory kept an hour; want an error")
	}
}

// TestHistoryReusesHotSpace: autovacuum is off (as on this project's
// machines), yet the hot table's space is reused round after round: each
// session closed leaves a dead version and each move a deleted row, and
// MaintainHistory vacuums them, so a second round of as many sessions fits
// in the pages of the first instead of doubling the table.
func TestHistoryReusesHotSpace(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	ctx := context.Background()
	size := func() int64 {
		t.Helper()
		var n int64
		if err := store.db.QueryRow(ctx, `SELECT pg_relation_size('network_sessions')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// One session open throughout, as on any network: an empty hot table is
	// left unvacuumed (TestHistoryNeverVacuumsEmpty).
	if _, err := store.db.Exec(ctx, `INSERT INTO network_sessions (msisdn, ip) VALUES ('+33699999999', '10.81.0.1')`); err != nil {
		t.Fatal(err)
	}
	const sessions = 5000
	var peak int64
	for round := range 3 {
		// Open then closed two hours ago: a Start and a Stop each.
		if _, err := store.db.Exec(ctx, `INSERT INTO network_sessions (msisdn, ip, period, nas, acct_session_id)
SELECT '+336' || lpad(g::text, 8, '0'), '10.80.0.0'::inet + g, tstzrange(now() - interval '3 hours', NULL, '[)'), 'pgw1', $2 || '-' || g
FROM generate_series(0, $1 - 1) AS g`, sessions, fmt.Sprint("round", round)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.db.Exec(ctx, `UPDATE network_sessions SET period = tstzrange(lower(period), now() - interval '2 hours', '[)') WHERE upper_inf(period) AND nas = 'pgw1'`); err != nil {
			t.Fatal(err)
		}
		got := size()
		if round == 0 {
			peak = got
		} else if got > peak+peak/5 {
			t.Fatalf("round %d: the hot table grew to %d bytes; the first round's sessions took %d (dead rows never vacuumed)", round, got, peak)
		}
		report, err := store.MaintainHistory(ctx, time.Now(), DefaultHistoryRetention)
		if err != nil || report.Moved != sessions {
			t.Fatalf("round %d: MaintainHistory = %+v, %v; want %d moved", round, report, err, sessions)
		}
	}
	var historyRows int
	if err := store.db.QueryRow(ctx, `SELECT count(*) FROM network_session_history`).Scan(&historyRows); err != nil || historyRows != 3*sessions {
		t.Fatalf("history holds %d sessions (%v); want %d", historyRows, err, 3*sessions)
	}
}

// TestHistoryNeverVacuumsEmpty: MaintainHistory on an empty hot table (a
// fresh start) leaves its statistics unknown rather than "no rows", so the
// resolver's generic plan still reads the exclusion constraint's index; the
// plan made after a vacuum of the empty table (what MaintainHistory must
// not do) is a sequential scan, which the test shows too.
func TestHistoryNeverVacuumsEmpty(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	ctx := context.Background()
	if _, err := store.MaintainHistory(ctx, time.Now(), DefaultHistoryRetention); err != nil {
		t.Fatal(err)
	}
	seqScan := func() bool {
		t.Helper()
		tx, err := store.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
			t.Fatal(err)
		}
		for _, n := range explainGeneric(ctx, t, tx, resolveSQL).Nodes() {
			if n.NodeType == "Seq Scan" {
				return true
			}
		}
		return false
	}
	if seqScan() {
		t.Fatal("after MaintainHistory on an empty hot table, the resolver's generic plan is a sequential scan")
	}
	if _, err := store.db.Exec(ctx, `VACUUM network_sessions`); err != nil {
		t.Fatal(err)
	}
	if !seqScan() {
		t.Error("after a VACUUM of the empty table the resolver's generic plan reads the index: the test no longer shows the hazard")
	}
}
