package network

import (
	"context"
	"testing"
	"time"
)

// TestAccountingInterimTakesNoLock: an Interim-Update (or retransmitted
// Start) of a session open now is answered without a lock or a
// transaction, so it is not held up behind a batch writing that very
// session.
func TestAccountingInterimTakesNoLock(t *testing.T) {
	a := newAccounting(t)
	ip := "127.50.4.1"
	a.apply(outcomes(OutcomeOpened), a.open("pgw1", "s", alice, ip, 0))
	ctx := context.Background()
	tx, err := a.store.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("session", "pgw1", "s")); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	results, errs, err := a.store.ApplyAccounting(short, []AccountingEvent{a.open("pgw1", "s", alice, ip, 60), a.open("pgw1", "s", alice, ip, 0)}, time.Hour)
	if err != nil || errs[0] != nil || results[0].Outcome != OutcomeConfirmed || results[1].Outcome != OutcomeConfirmed {
		t.Fatalf("Interim-Update of an open session while its lock is held = %+v, %v, %v; want confirmed at once", results, errs, err)
	}
}

// TestAccountingBatchIsSequential: events of one session (and of one
// address) in one batch are applied in their order, as one at a time.
func TestAccountingBatchIsSequential(t *testing.T) {
	a := newAccounting(t)
	ip, ip2 := "127.50.5.1", "127.50.5.2"
	a.apply(outcomes(
		OutcomeOpened, OutcomeConfirmed, OutcomeClosed, // start, interim, stop of s1
		OutcomeKnown,                     // a retransmitted Start after its Stop
		OutcomeNoSession, OutcomeStopped, // a Stop before its Start
		OutcomeOpened, OutcomeOpened, // two sessions for one address: the newer wins
		OutcomeOpened, OutcomeClosed, // an unrelated session, and Accounting-On for pgw9
	),
		a.open("pgw1", "s1", alice, ip, 0), a.open("pgw1", "s1", alice, ip, 10), a.stop("pgw1", "s1", 20),
		a.open("pgw1", "s1", alice, ip, 0),
		a.stop("pgw1", "s2", 30), a.open("pgw1", "s2", bob, ip, 25),
		a.open("pgw1", "s3", alice, ip, 40), a.open("pgw2", "s4", bob, ip, 50),
		a.open("pgw9", "s5", alice, ip2, 0), a.closeNAS("pgw9", 5),
	)
	a.holder(ip, 10, alice)
	a.holder(ip, 20, "")
	a.holder(ip, 26, "")
	a.holder(ip, 45, alice)
	a.holder(ip, 50, bob)
	a.holder(ip2, 4, alice)
	a.holder(ip2, 5, "")
}

func TestAccountingRounds(t *testing.T) {
	a := newAccounting(t)
	events := []AccountingEvent{
		a.open("n", "1", alice, "127.50.6.1", 0), // 0: round 0
		a.open("n", "2", bob, "127.50.6.2", 0),   // 1: round 0
		a.stop("n", "3", 0),                      // 2: round 0
		a.stop("n", "1", 1),                      // 3: after 0: round 1
		a.open("n", "4", bob, "127.50.6.1", 2),   // 4: same address as 0: round 1
		a.open("n", "1", alice, "127.50.6.1", 3), // 5: after 3 and 4: round 2
		a.closeNAS("m", 4),                       // 6: alone: round 3
		a.open("n", "2", bob, "127.50.6.2", 5),   // 7: after the Accounting-On: round 4
	}
	rounds := accountingRounds(events, []int{0, 1, 2, 3, 4, 5, 6, 7})
	want := []accountingRound{
		{opens: []int{0, 1}, closes: []int{2}, closeNAS: -1},
		{opens: []int{4}, closes: []int{3}, closeNAS: -1},
		{opens: []int{5}, closeNAS: -1},
		{closeNAS: 6},
		{opens: []int{7}, closeNAS: -1},
	}
	if len(rounds) != len(want) {
		t.Fatalf("rounds %+v; want %+v", rounds, want)
	}
	for i := range want {
		if !equalInts(rounds[i].opens, want[i].opens) || !equalInts(rounds[i].closes, want[i].closes) || rounds[i].closeNAS != want[i].closeNAS {
			t.Errorf("round %d = %+v; want %+v", i, rounds[i], want[i])
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
