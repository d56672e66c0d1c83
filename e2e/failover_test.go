package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// Issue 13: a Postgres failover survived. The test starts a primary and a
// streaming hot standby (initdb, pg_basebackup -R) with synchronous
// replication (synchronous_standby_names), and `numverify serve` connected
// to both through one multi-host URL with target_session_attrs=read-write.
// Under load (devices logging in, the SP verifying, single-use tokens), the
// primary is stopped as a crash (pg_ctl stop -m immediate) and, a second
// later, the standby promoted, as a failover manager would. The servers
// must find the new primary by themselves within 10 s, answer only clean
// 503s / temporarily_unavailable meanwhile and never a wrong subscriber;
// and nothing the clients were answered for is lost: every token issued
// and not used still verifies, every token used (a single-use record,
// committed durably, so synchronously on the standby) is still refused a
// second time, and revocations still reach the resource server at once
// (its LISTEN connection moved to the new primary).
//
// Opt-in locally (NUMVERIFY_E2E_FAILOVER=1), run by CI; with the variable
// set, missing PostgreSQL server binaries fail the test.

const (
	failoverDetection = time.Second      // primary gone → standby promoted
	failoverRecovery  = 10 * time.Second // promoted → every worker served again
)

func TestPostgresFailover(t *testing.T) {
	requireOptIn(t, "NUMVERIFY_E2E_FAILOVER")
	if _, err := pgcluster.FindBinaries(); err != nil {
		t.Fatal(err)
	}
	testbed.Binary(t)
	ctx := context.Background()
	began := time.Now()

	primary, err := pgcluster.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = primary.Remove() })
	if _, err := primary.CreateDatabase(ctx, "numverify"); err != nil {
		t.Fatal(err)
	}
	standby, err := primary.StartStandby(ctx, "standby1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Remove() })
	// Synchronous replication, set on the primary only (after the base
	// backup): once promoted, the standby has no standby of its own to wait
	// for, so its commits must not wait.
	setSynchronous(t, primary.URL("postgres"), "standby1")

	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/numverify?sslmode=disable&target_session_attrs=read-write",
		primary.Port(), standby.Port())
	s := testbed.NewStack(t, dbURL)
	sv := s.Serve("--single-use-tokens", "--log-level", "warn")
	sp := s.CreateClient("failover-sp")
	t.Logf("primary, synchronous standby and numverify up in %v", time.Since(began).Round(time.Millisecond))

	run := newFailoverLoad(t, s, sv, sp, 6)
	run.start()
	time.Sleep(3 * time.Second)

	stopAt := time.Now()
	run.mark("crash")
	if err := primary.Crash(ctx); err != nil {
		run.stop()
		t.Fatal(err)
	}
	time.Sleep(failoverDetection - time.Since(stopAt))
	if err := standby.Promote(ctx); err != nil {
		run.stop()
		t.Fatal(err)
	}
	promotedAt := time.Now()
	run.mark("promoted")
	t.Logf("primary stopped (immediate) and standby promoted in %v", promotedAt.Sub(stopAt).Round(time.Millisecond))

	recovered := run.waitRecovered(promotedAt, failoverRecovery)
	time.Sleep(2 * time.Second)
	run.stop()
	if recovered < 0 {
		t.Errorf("not every worker completed a flow within %v of the promotion", failoverRecovery)
	} else {
		t.Logf("every worker served again %v after the promotion (%v after the crash)",
			recovered.Round(time.Millisecond), (recovered + promotedAt.Sub(stopAt)).Round(time.Millisecond))
	}
	run.report()

	hc := &http.Client{Timeout: 10 * time.Second}
	t.Run("/readyz 200 on every server", func(t *testing.T) {
		for _, base := range []string{sv.Authz, sv.Resource, sv.Network} {
			if got := get(hc, base+"/readyz"); got != http.StatusOK {
				t.Errorf("%s/readyz: %d after the failover", base, got)
			}
		}
	})
	t.Run("tokens issued before the crash and never used still verify", func(t *testing.T) {
		held := run.heldBefore(stopAt)
		if len(held) == 0 {
			t.Fatal("no token was held across the failover")
		}
		for _, tok := range held {
			if err := verifyOwnNumber(hc, sv.Resource, tok.token, tok.msisdn); err != nil {
				t.Errorf("a token issued %v before the crash: %s", stopAt.Sub(tok.at).Round(time.Millisecond), loadErrorKind(err))
			}
		}
		t.Logf("%d tokens issued before the crash, used after the failover: all verified", len(held))
	})
	t.Run("tokens used before the failover stay used", func(t *testing.T) {
		used := run.usedBefore(promotedAt)
		if len(used) == 0 {
			t.Fatal("no token was used before the failover")
		}
		replayed := 0
		for _, tok := range used {
			err := verifyOwnNumber(hc, sv.Resource, tok.token, tok.msisdn)
			if err == nil {
				replayed++
				continue
			}
			if kind := loadErrorKind(err); kind != "http 401 UNAUTHENTICATED" {
				t.Errorf("a token used %v before the crash, used again: %s, want 401", stopAt.Sub(tok.at).Round(time.Millisecond), kind)
			}
		}
		if replayed > 0 {
			t.Errorf("%d of %d tokens answered before the promotion answered again after it: their single-use records were lost", replayed, len(used))
		}
		lastSecond := 0
		for _, tok := range used {
			if tok.at.After(stopAt.Add(-time.Second)) {
				lastSecond++
			}
		}
		t.Logf("%d tokens answered before the promotion (%d of them in the second before the crash), used again: all refused",
			len(used), lastSecond)
	})
	t.Run("revocations reach the resource server after the failover", func(t *testing.T) {
		device := s.Attach(sv.Network, "+33612000077", testbed.NthAddr(testbed.DevicePrefix(), 77))
		l := mustLogin(t, testbed.NewSP(t, sv.Authz, sp, "openid", testbed.ScopeVerify), device)
		before := testbed.Metric(t, sv.Resource, "numverify_resource_revoked_tokens", nil)
		revoked := time.Now()
		revoke(t, sv.Authz, sp, l.AccessToken)
		for testbed.Metric(t, sv.Resource, "numverify_resource_revoked_tokens", nil) <= before {
			if time.Since(revoked) > time.Second {
				t.Fatal("the resource server does not hold a revocation 1 s after /revoke answered: its LISTEN is not on the new primary")
			}
			time.Sleep(5 * time.Millisecond)
		}
		verifyAt(t, sv.Resource, l.AccessToken, device.MSISDN, http.StatusUnauthorized)
	})
	if sv.Proc.Exited(0) {
		t.Fatalf("numverify exited: %v", sv.Proc.Err())
	}
	t.Logf("whole test %v", time.Since(began).Round(time.Millisecond))
}

// setSynchronous makes the primary at url wait for standby's flush on every
// durable commit, and waits until the standby streams synchronously.
func setSynchronous(t *testing.T, url, standby string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = "+pgx.Identifier{standby}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatal(err)
	}
	for {
		var state string
		err := conn.QueryRow(ctx, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", standby).Scan(&state)
		if err == nil && state == "sync" {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the standby is not synchronous after 30 s (%q, %v)", state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heldToken is an access token and when the client got (or used) it.
type heldToken struct {
	token, msisdn string
	at            time.Time
}

// failoverLoad is devices going through the whole flow against one
// `numverify serve`: half of each worker's tokens are used at once
// (single-use), the other half held for after the failover.
type failoverLoad struct {
	t       *testing.T
	sv      testbed.Servers
	rp      *testbed.SP
	devices []*sim.Device

	mu       sync.Mutex
	kinds    map[string]int // phase: kind → count
	flows    map[string]int // phase → flows ok
	requests int
	phase    string
	held     []heldToken
	used     []heldToken
	lastOK   []time.Time // per worker

	stopCh chan struct{}
	wg     sync.WaitGroup
}

func newFailoverLoad(t *testing.T, s *testbed.Stack, sv testbed.Servers, sp testbed.Client, workers int) *failoverLoad {
	prefix := testbed.DevicePrefix()
	l := &failoverLoad{t: t, sv: sv, rp: testbed.NewSP(t, sv.Authz, sp, "openid", testbed.ScopeVerify), kinds: map[string]int{}, flows: map[string]int{}, phase: "before",
		lastOK: make([]time.Time, workers), stopCh: make(chan struct{})}
	for i := range workers {
		l.devices = append(l.devices, s.Attach(sv.Network, fmt.Sprintf("+3370%07d", 3000000+i), testbed.NthAddr(prefix, 10+i)))
	}
	return l
}

func (l *failoverLoad) start() {
	for i := range l.devices {
		l.wg.Add(1)
		go l.worker(i)
	}
}

func (l *failoverLoad) stop() {
	close(l.stopCh)
	l.wg.Wait()
}

// mark starts a new phase of the report.
func (l *failoverLoad) mark(phase string) {
	l.mu.Lock()
	l.phase = phase
	l.mu.Unlock()
}

func (l *failoverLoad) worker(i int) {
	defer l.wg.Done()
	d := l.devices[i]
	hc := &http.Client{Timeout: 10 * time.Second}
	for n := 0; ; n++ {
		select {
		case <-l.stopCh:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		login, err := l.rp.Login(ctx, d)
		cancel()
		requests := 2
		hold := n%2 == 1
		if err == nil && !hold {
			err = verifyOwnNumber(hc, l.sv.Resource, login.AccessToken, d.MSISDN)
			requests++
		}
		now := time.Now()
		l.mu.Lock()
		l.requests += requests
		switch {
		case err != nil:
			l.kinds[l.phase+": "+loadErrorKind(err)]++
		case hold:
			l.held = append(l.held, heldToken{login.AccessToken, d.MSISDN, now})
			l.flows[l.phase]++
			l.lastOK[i] = now
		default:
			l.used = append(l.used, heldToken{login.AccessToken, d.MSISDN, now})
			l.flows[l.phase]++
			l.lastOK[i] = now
		}
		l.mu.Unlock()
		if err != nil {
			time.Sleep(50 * time.Millisecond) // as a client backs off
		}
	}
}

// waitRecovered waits until every worker has completed a flow after since,
// and returns how long after since the last one did (-1 past within).
func (l *failoverLoad) waitRecovered(since time.Time, within time.Duration) time.Duration {
	for time.Since(since) < within {
		l.mu.Lock()
		all := true
		for _, ok := range l.lastOK {
			all = all && ok.After(since)
		}
		l.mu.Unlock()
		if all {
			// The first success of the slowest worker.
			return l.slowestFirstSuccess(since)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// slowestFirstSuccess is, over the workers, the latest first success after
// since, from the used and held records.
func (l *failoverLoad) slowestFirstSuccess(since time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := map[string]time.Time{}
	for _, list := range [][]heldToken{l.used, l.held} {
		for _, tok := range list {
			if tok.at.After(since) && (first[tok.msisdn].IsZero() || tok.at.Before(first[tok.msisdn])) {
				first[tok.msisdn] = tok.at
			}
		}
	}
	var slowest time.Duration
	for _, at := range first {
		slowest = max(slowest, at.Sub(since))
	}
	return slowest
}

// report logs the figures and fails on any error but a clean 503.
func (l *failoverLoad) report() {
	t := l.t
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.kinds))
	for k := range l.kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []string
	for _, k := range names {
		errs = append(errs, fmt.Sprintf("%d × %s", l.kinds[k], k))
	}
	t.Logf("load: %d HTTP requests, flows ok %d before the crash, %d between crash and promotion, %d after; errors: %s",
		l.requests, l.flows["before"], l.flows["crash"], l.flows["promoted"], strings.Join(errs, ", "))
	for k, n := range l.kinds {
		phase, kind, _ := strings.Cut(k, ": ")
		if phase == "before" || !cleanUnavailable(kind) {
			t.Errorf("%d × %s (%s): only clean 503 / temporarily_unavailable are allowed, and only during the failover", n, kind, phase)
		}
	}
	if l.flows["before"] == 0 || l.flows["promoted"] == 0 {
		t.Errorf("flows must succeed before the crash and after the promotion: %v", l.flows)
	}
	if len(names) == 0 {
		t.Errorf("no request failed: the failover was not under load")
	}
}

// heldBefore are the tokens issued (and not used) before at.
func (l *failoverLoad) heldBefore(at time.Time) []heldToken {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tokensBefore(l.held, at)
}

// usedBefore are the tokens answered 200 before at, oldest first.
func (l *failoverLoad) usedBefore(at time.Time) []heldToken {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tokensBefore(l.used, at)
}

// tokensBefore are the tokens of list stamped before at, in their order.
func tokensBefore(list []heldToken, at time.Time) []heldToken {
	var out []heldToken
	for _, tok := range list {
		if tok.at.Before(at) {
			out = append(out, tok)
		}
	}
	return out
}
