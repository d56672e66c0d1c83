package network

import (
	"context"
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
