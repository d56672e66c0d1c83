package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// accounting builds events at instants relative to a base second in the past
// (Event-Timestamps have whole seconds).
type accounting struct {
	t     *testing.T
	store *Store
	base  time.Time
}

func newAccounting(t *testing.T) *accounting {
	store, _ := newTestStore(t, testPools)
	return &accounting{t: t, store: store, base: time.Now().Add(-time.Hour).Truncate(time.Second)}
}

func (a *accounting) at(sec int) time.Time { return a.base.Add(time.Duration(sec) * time.Second) }

func (a *accounting) open(nas, sid, msisdn, ip string, sec int) AccountingEvent {
	prefix, err := ParseAddress(ip)
	if err != nil {
		a.t.Fatal(err)
	}
	return AccountingEvent{Kind: AccountingOpen, NAS: nas, SessionID: sid, At: a.at(sec), MSISDN: msisdn,
		IP: prefix, APN: "internet", RAT: "LTE"}
}

func (a *accounting) stop(nas, sid string, sec int) AccountingEvent {
	return AccountingEvent{Kind: AccountingClose, NAS: nas, SessionID: sid, At: a.at(sec)}
}

func (a *accounting) closeNAS(nas string, sec int) AccountingEvent {
	return AccountingEvent{Kind: AccountingCloseNAS, NAS: nas, At: a.at(sec)}
}

// apply applies events as one batch and checks each outcome.
func (a *accounting) apply(want []AccountingOutcome, events ...AccountingEvent) []AccountingResult {
	a.t.Helper()
	results, errs, err := a.store.ApplyAccounting(context.Background(), events, DefaultRememberStops)
	if err != nil {
		a.t.Fatalf("ApplyAccounting: %v", err)
	}
	for i, r := range results {
		if errs[i] != nil {
			a.t.Fatalf("event %d: %v", i, errs[i])
		}
		if i < len(want) && r.Outcome != want[i] {
			a.t.Errorf("event %d (kind %d %s): outcome %s; want %s", i, events[i].Kind, events[i].SessionID, r.Outcome, want[i])
		}
	}
	return results
}

func outcomes(o ...AccountingOutcome) []AccountingOutcome { return o }

func (a *accounting) holder(ip string, sec int, want string) {
	a.t.Helper()
	expectHolder(a.t, a.store, ip, 40000, a.at(sec).Add(500*time.Millisecond), want)
}

const (
	alice = "+33611111111"
	bob   = "+33622222222"
)

func TestAccountingStartInterimStop(t *testing.T) {
	a := newAccounting(t)
	ip := "127.50.0.1"
	a.apply(outcomes(OutcomeOpened), a.open("pgw1", "s1", alice, ip, 0))
	a.holder(ip, 0, alice)
	a.holder(ip, -1, "")
	expectHolder(t, a.store, ip, 1, time.Now(), alice)
	a.apply(outcomes(OutcomeConfirmed, OutcomeConfirmed), a.open("pgw1", "s1", alice, ip, 60), a.open("pgw1", "s1", alice, ip, 0))
	a.apply(outcomes(OutcomeClosed), a.stop("pgw1", "s1", 120))
	a.holder(ip, 119, alice)
	a.holder(ip, 120, "")
	expectHolder(t, a.store, ip, 1, time.Now(), "")
	// Retransmissions after the Stop change nothing.
	a.apply(outcomes(OutcomeNoSession, OutcomeKnown, OutcomeKnown), a.stop("pgw1", "s1", 120), a.open("pgw1", "s1", alice, ip, 0), a.open("pgw1", "s1", alice, ip, 90))
	expectHolder(t, a.store, ip, 1, time.Now(), "")
	if n := countRows(t, a.store); n != 1 {
		t.Errorf("%d rows; want the one session", n)
	}
}

func TestAccountingNewestStartWins(t *testing.T) {
	a := newAccounting(t)
	ip := "127.50.0.2"
	a.apply(outcomes(OutcomeOpened), a.open("pgw1", "a", alice, ip, 0))
	// Alice's Stop was lost; the address goes to Bob.
	r := a.apply(outcomes(OutcomeOpened), a.open("pgw2", "b", bob, ip, 30))
	if r[0].Superseded != 1 {
		t.Errorf("superseded %d; want alice's session", r[0].Superseded)
	}
	a.holder(ip, 10, alice)
	a.holder(ip, 30, bob)
	// Alice's late Stop closes nothing of Bob's.
	a.apply(outcomes(OutcomeNoSession), a.stop("pgw1", "a", 40))
	a.holder(ip, 40, bob)
	// Nor does a late Interim-Update of alice's session reopen it.
	a.apply(outcomes(OutcomeKnown), a.open("pgw1", "a", alice, ip, 50))
	a.holder(ip, 50, bob)
	// A Start older than the holder's is history only.
	a.apply(outcomes(OutcomeLate), a.open("pgw3", "c", "+33633333333", ip, 20))
	a.holder(ip, 10, alice)
	a.holder(ip, 25, "+33633333333")
	a.holder(ip, 60, bob)
	// Two Starts within one second: the one applied last holds.
	a.apply(outcomes(OutcomeOpened, OutcomeOpened), a.open("pgw1", "d", alice, ip, 100), a.open("pgw2", "e", bob, ip, 100))
	expectHolder(t, a.store, ip, 1, time.Now(), bob)
}

func TestAccountingStopBeforeStart(t *testing.T) {
	a := newAccounting(t)
	ip := "127.50.0.3"
	a.apply(outcomes(OutcomeNoSession), a.stop("pgw1", "s", 60))
	a.apply(outcomes(OutcomeStopped, OutcomeStopped), a.open("pgw1", "s", alice, ip, 0), a.open("pgw1", "s", alice, ip, 30))
	expectHolder(t, a.store, ip, 1, time.Now(), "")
	// The same id from another NAS is another session.
	a.apply(outcomes(OutcomeOpened), a.open("pgw2", "s", bob, ip, 70))
	a.holder(ip, 70, bob)
	// Purged after a while, the memory is gone.
	if n, err := a.store.PurgeAccountingStops(context.Background(), time.Now()); err != nil || n != 1 {
		t.Fatalf("PurgeAccountingStops = %d, %v; want 1", n, err)
	}
}

func TestAccountingInterimOpensLostStart(t *testing.T) {
	a := newAccounting(t)
	ip := "fd00:6e76:1:2::/64"
	a.apply(outcomes(OutcomeOpened), a.open("pgw1", "s", alice, ip, 300))
	a.holder("fd00:6e76:1:2::abcd", 300, alice)
	a.holder("fd00:6e76:1:3::1", 300, "")
	a.apply(outcomes(OutcomeConfirmed), a.open("pgw1", "s", alice, ip, 0)) // the lost Start, late
	a.holder("fd00:6e76:1:2::1", 100, "")
}

func TestAccountingStopIsPerNAS(t *testing.T) {
	a := newAccounting(t)
	a.apply(outcomes(OutcomeOpened, OutcomeOpened), a.open("pgw1", "x", alice, "127.50.0.4", 0), a.open("pgw2", "x", bob, "127.50.0.5", 0))
	a.apply(outcomes(OutcomeClosed), a.stop("pgw2", "x", 10))
	a.holder("127.50.0.4", 10, alice)
	a.holder("127.50.0.5", 10, "")
}

func TestAccountingOnOff(t *testing.T) {
	a := newAccounting(t)
	a.apply(nil, a.open("pgw1", "1", alice, "127.50.1.1", 0), a.open("pgw1", "2", bob, "127.50.1.2", 0),
		a.open("pgw2", "3", "+33633333333", "127.50.1.3", 0))
	r := a.apply(outcomes(OutcomeClosed, OutcomeOpened), a.closeNAS("pgw1", 100), a.open("pgw1", "4", alice, "127.50.1.1", 101))
	if r[0].Closed != 2 {
		t.Errorf("Accounting-On closed %d; want pgw1's 2", r[0].Closed)
	}
	a.holder("127.50.1.1", 101, alice)
	a.holder("127.50.1.2", 101, "")
	a.holder("127.50.1.3", 101, "+33633333333")
	// An Accounting-Off handled after a newer Start leaves that session open.
	a.apply(outcomes(OutcomeOpened, OutcomeClosed), a.open("pgw1", "5", bob, "127.50.1.2", 200), a.closeNAS("pgw1", 150))
	a.holder("127.50.1.2", 200, bob)
	a.holder("127.50.1.1", 200, "")
}

func TestAccountingTakesAdminSession(t *testing.T) {
	a := newAccounting(t)
	mustAttach(t, a.store, AttachRequest{MSISDN: alice, IP: "127.50.2.1"})
	now := time.Now().Truncate(time.Second).Add(time.Second)
	results, errs, err := a.store.ApplyAccounting(context.Background(), []AccountingEvent{{Kind: AccountingOpen, NAS: "pgw1",
		SessionID: "s", At: now, MSISDN: bob, IP: netipPrefix("127.50.2.1/32"), APN: "internet", RAT: "NR"}}, time.Hour)
	if err != nil || errs[0] != nil || results[0].Outcome != OutcomeOpened || results[0].Superseded != 1 {
		t.Fatalf("Start over an attached address = %+v, %v, %v; want opened, superseding it", results, errs, err)
	}
	expectHolder(t, a.store, "127.50.2.1", 1, now.Add(time.Millisecond), bob)
}

func TestAccountingRefusesInvalidEvents(t *testing.T) {
	a := newAccounting(t)
	for name, e := range map[string]AccountingEvent{
		"no nas":        {Kind: AccountingCloseNAS, At: a.at(0)},
		"no session id": a.stop("pgw1", "", 0),
		"bad msisdn":    a.open("pgw1", "s", "33611111111", "127.50.3.1/32", 0),
		"ipv6 /128":     a.open("pgw1", "s", alice, "2001:db8::1/128", 0),
		"multicast":     a.open("pgw1", "s", alice, "224.0.0.1/32", 0),
		"unknown kind":  {Kind: 9, NAS: "pgw1", SessionID: "s", At: a.at(0)},
	} {
		if _, _, err := a.store.ApplyAccounting(context.Background(), []AccountingEvent{e}, time.Hour); err == nil {
			t.Errorf("%s: applied; want ErrInvalid", name)
		}
	}
	if n := countRows(t, a.store); n != 0 {
		t.Errorf("%d rows written", n)
	}
}

// TestAccountingStopAndStartConcurrently delivers the Start, an
// Interim-Update and the Stop of many sessions concurrently, each from its
// own goroutine and transaction (as after a retransmission to two
// replicas), in every order: no stopped session may stay open.
func TestAccountingStopAndStartConcurrently(t *testing.T) {
	a := newAccounting(t)
	const sessions = 60
	var wg sync.WaitGroup
	errs := make(chan error, sessions*4)
	for i := range sessions {
		ip := fmt.Sprintf("127.51.%d.%d/32", i/200, i%200+1)
		sid := fmt.Sprintf("s%d", i)
		events := []AccountingEvent{a.open("pgw1", sid, alice, ip, 0), a.open("pgw1", sid, alice, ip, 5),
			a.stop("pgw1", sid, 10), a.stop("pgw1", sid, 10)}
		rand.Shuffle(len(events), func(x, y int) { events[x], events[y] = events[y], events[x] })
		for _, e := range events {
			wg.Go(func() {
				if _, perEvent, err := a.store.ApplyAccounting(context.Background(), []AccountingEvent{e}, time.Hour); err != nil {
					errs <- err
				} else if perEvent[0] != nil {
					errs <- perEvent[0]
				}
			})
		}
	}
	// A batch touching every session at once, concurrently with the rest.
	var batch []AccountingEvent
	for i := range sessions {
		batch = append(batch, a.open("pgw1", fmt.Sprintf("s%d", i), alice, fmt.Sprintf("127.51.%d.%d/32", i/200, i%200+1), 5))
	}
	wg.Go(func() {
		if _, _, err := a.store.ApplyAccounting(context.Background(), batch, time.Hour); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("apply: %v", err)
	}
	var open int
	if err := a.store.db.QueryRow(context.Background(), `SELECT count(*) FROM network_sessions WHERE upper_inf(period)`).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d of %d stopped sessions are open", open, sessions)
	}
}

// TestAccountingStartRacesAdminWriter: an admin session committed on the
// address after the Start's cut read it and before its insert. The batch's
// plain insert waits for that writer, fails on the exclusion constraint and
// the batch is rolled back and run again with the tolerant insert: the Start
// then cuts the admin session like any holder, and nothing of the first try
// remains.
func TestAccountingStartRacesAdminWriter(t *testing.T) {
	a := newAccounting(t)
	ctx := context.Background()
	tx, err := a.store.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO network_sessions (msisdn, ip, period) VALUES ($1, '127.50.3.1/32', tstzrange(now() - interval '2 hours', NULL, '[)'))`, alice); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		results []AccountingResult
		errs    []error
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		results, errs, err := a.store.ApplyAccounting(ctx, []AccountingEvent{a.open("pgw1", "race", bob, "127.50.3.1", 10)}, DefaultRememberStops)
		done <- outcome{results, errs, err}
	}()
	// The Start's insert waits for the admin writer's transaction.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := a.store.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Start never waited for the admin writer")
		}
		select {
		case o := <-done:
			t.Fatalf("the Start did not wait for the admin writer: %+v, %v, %v", o.results, o.errs, o.err)
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil || o.errs[0] != nil || o.results[0].Outcome != OutcomeOpened || o.results[0].Superseded != 1 {
		t.Fatalf("Start racing an admin writer = %+v, %v, %v; want opened, superseding it", o.results, o.errs, o.err)
	}
	expectHolder(t, a.store, "127.50.3.1", 1, a.at(5), alice)
	expectHolder(t, a.store, "127.50.3.1", 1, a.at(11), bob)
	var n int
	if err := a.store.db.QueryRow(ctx, `SELECT count(*) FROM network_sessions WHERE ip = '127.50.3.1'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("sessions on the address = %d, %v; want 2 (the admin one, cut, and the Start's)", n, err)
	}
}
