package resource

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pgtest"
)

func singleUse(c *Config) { c.SingleUseTokens = true }

// reuses is the value of numverify_resource_token_reuse_total.
func reuses(r *useRecorder) float64 {
	var m dto.Metric
	_ = r.reuses.Write(&m)
	return m.GetCounter().GetValue()
}

// commits returns how many batches were committed and the uses they held.
func commits(r *useRecorder) (batches uint64, uses float64) {
	var m dto.Metric
	_ = r.batchSize.Write(&m)
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// Thirty-two calls at once with one token: exactly one is answered, every
// other is 401 UNAUTHENTICATED and counted as a reuse.
func TestSingleUseConcurrentCallsOneWinner(t *testing.T) {
	is := newTestIssuer(t)
	reg := prometheus.NewRegistry()
	ts := startServer(t, is, func(c *Config) { singleUse(c); c.Registry = reg })
	token := is.token(testPhone)
	statuses := make([]*response, 32)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = ts.do(t, verifyCall(token))
		}()
	}
	wg.Wait()
	wins := 0
	for _, r := range statuses {
		switch {
		case r.status == http.StatusOK:
			wins++
		case r.status != http.StatusUnauthorized || r.errorCode() != "UNAUTHENTICATED" ||
			!strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token"):
			t.Errorf("a reuse: %d %s", r.status, r.body)
		}
	}
	if wins != 1 {
		t.Errorf("%d of 32 concurrent calls with one token answered, want exactly 1", wins)
	}
	if got := reuses(ts.uses); got != 31 {
		t.Errorf("reuses counted: %v, want 31", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	for _, name := range []string{"numverify_resource_token_reuse_total", "numverify_resource_token_use_batch_size"} {
		if !exported[name] {
			t.Errorf("%s is not exported", name)
		}
	}
}

// A reused token is refused in the Orange dialect too (401, code 41), on
// verify and share alike, and a call refused for its body (400) or its
// Accept header (406) does not use the token up.
func TestSingleUseRefusalsAndWhatUsesAToken(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, singleUse)
	token := is.token(testPhone)
	v0 := verifyCall(token)
	v0.path = basePathV0 + "/verify"
	for _, bad := range []call{
		{method: http.MethodPost, path: v0.path, token: token, body: str(`{"phoneNumber":`)},
		{method: http.MethodPost, path: v0.path, token: token, body: str(`{}`)},
		{method: http.MethodPost, path: v0.path, token: token, body: v0.body, headers: map[string]string{"Accept": "text/html"}},
	} {
		if r := ts.do(t, bad); r.status/100 != 4 || r.status == http.StatusUnauthorized {
			t.Fatalf("bad request %s: %d %s", *bad.body, r.status, r.body)
		}
	}
	if r := ts.do(t, v0); r.status != http.StatusOK {
		t.Fatalf("first use after bad requests: %d %s", r.status, r.body)
	}
	if r := ts.do(t, v0); r.status != http.StatusUnauthorized || r.errorCode() != "41" {
		t.Fatalf("v0 reuse: %d %s", r.status, r.body)
	}
	share := call{method: http.MethodGet, path: basePathV2 + "/device-phone-number", token: token}
	if r := ts.do(t, share); r.status != http.StatusUnauthorized || r.errorCode() != "UNAUTHENTICATED" {
		t.Fatalf("share with the used token: %d %s", r.status, r.body)
	}
	if got := reuses(ts.uses); got != 2 {
		t.Errorf("reuses counted: %v, want 2", got)
	}
}

// An introspected token whose answer has no jti (fosite's opaque tokens) is
// single-use too, by its hash; two such tokens are two tokens.
func TestSingleUseOpaqueTokenWithoutJTI(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, func(c *Config) { singleUse(c); c.TokenFormat = FormatOpaque })
	active := introspectionResponse{Active: true, Scope: contract.ScopeVerify, ClientID: testClientID,
		Exp: time.Now().Add(time.Minute).Unix(), Iss: is.issuer, TokenUse: "access_token",
		PhoneNumber: testPhone, AMR: []string{contract.AMRNetwork}}
	is.mu.Lock()
	is.opaque["ory_at_first"], is.opaque["ory_at_second"] = active, active
	is.mu.Unlock()
	for _, step := range []struct {
		token string
		want  int
	}{{"ory_at_first", 200}, {"ory_at_first", 401}, {"ory_at_second", 200}, {"ory_at_second", 401}} {
		if r := ts.do(t, verifyCall(step.token)); r.status != step.want {
			t.Fatalf("%s: %d %s, want %d", step.token, r.status, r.body, step.want)
		}
	}
}

// Uses that arrive while a commit is under way are committed together, in
// one batch, however many; duplicates within the batch get one answer.
func TestSingleUseGroupCommit(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, singleUse)
	ctx := context.Background()

	// Hold the table so that the first batch waits at its INSERT.
	lock, err := ts.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE used_access_tokens IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	first := is.token(testPhone)
	twice := is.token(testPhone)
	type use struct {
		token string
		r     *response
	}
	var uses []*use
	uses = append(uses, &use{token: first})
	var wg sync.WaitGroup
	start := func(u *use) {
		wg.Add(1)
		go func() { defer wg.Done(); u.r = ts.do(t, verifyCall(u.token)) }()
	}
	start(uses[0])
	waitFor(t, 5*time.Second, "the first batch to wait for the lock", func() bool {
		var waiting int
		_ = ts.db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting)
		return waiting > 0
	})
	for i := 0; i < 40; i++ {
		uses = append(uses, &use{token: is.token(testPhone)})
	}
	for i := 0; i < 8; i++ {
		uses = append(uses, &use{token: twice}, &use{token: first})
	}
	for _, u := range uses[1:] {
		start(u)
	}
	waitFor(t, 10*time.Second, "the queued uses", func() bool { return len(ts.uses.queue) == len(uses)-1 })
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	answered := map[string]int{}
	for _, u := range uses {
		switch u.r.status {
		case http.StatusOK:
			answered[u.token]++
		case http.StatusUnauthorized:
		default:
			t.Errorf("a use: %d %s", u.r.status, u.r.body)
		}
	}
	if len(answered) != 42 || answered[first] != 1 || answered[twice] != 1 {
		t.Errorf("tokens answered: %d (want 42), the first %d times, the twice-queued one %d times (want 1 each)",
			len(answered), answered[first], answered[twice])
	}
	batches, recorded := commits(ts.uses)
	if batches != 2 || recorded != float64(len(uses)) {
		t.Errorf("%d commits for %v uses, want 2 commits (the one held, then everything queued meanwhile)", batches, recorded)
	}
	if got := reuses(ts.uses); got != 15 {
		t.Errorf("reuses counted: %v, want 15", got)
	}
}

// A use that cannot be recorded in time is answered 503 UNAVAILABLE, never
// accepted, and a recorder that has stopped refuses at once.
func TestSingleUseNotRecordedIsUnavailable(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	r := newUseRecorder(db.Pool, slog.New(slog.DiscardHandler), nil)
	r.timeout = 300 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.run(runCtx) }()

	lock, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE used_access_tokens IN EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Minute)
	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	first, err := r.record(callCtx, "jti-locked-out", exp)
	if err == nil || first || !useUnavailable(err) {
		t.Fatalf("record while the table is locked: first=%v err=%v, want an unavailable error", first, err)
	}
	_ = lock.Rollback(ctx)
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM used_access_tokens`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after a timed-out batch: %d %v", n, err)
	}
	if first, err := r.record(callCtx, "jti-locked-out", exp); err != nil || !first {
		t.Fatalf("the same use once the table is free: first=%v err=%v (the failed batch must not count)", first, err)
	}
	stop()
	<-done
	if _, err := r.record(callCtx, "jti-after-stop", exp); !errors.Is(err, errRecorderStopped) {
		t.Fatalf("record after stop: %v", err)
	}
}

// The batch's transaction commits durably even where the database (or the
// connection) defaults to synchronous_commit off: the setting is the
// transaction's own, so a crash cannot forget a use a caller was answered for.
func TestSingleUseCommitIsDurable(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	db.Exec(t, `ALTER DATABASE "`+db.Name+`" SET synchronous_commit = off`)
	conn, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	setting := func() string {
		var s string
		if err := conn.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := setting(); s != "off" {
		t.Fatalf("the connection's default: %s, want off (the premise)", s)
	}
	b := useBatch([]string{"jti-durable"}, []time.Time{time.Now().Add(time.Minute)})
	b.Queue(`SELECT current_setting('synchronous_commit'), count(*) FROM used_access_tokens`)
	results := conn.SendBatch(ctx, b)
	if _, err := results.Exec(); err != nil {
		t.Fatal(err)
	}
	rows, err := results.Query()
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var inBatch string
	var n int
	if err := results.QueryRow().Scan(&inBatch, &n); err != nil {
		t.Fatal(err)
	}
	if err := results.Close(); err != nil {
		t.Fatal(err)
	}
	if inBatch != "on" || n != 1 {
		t.Errorf("in the batch's transaction: synchronous_commit %s with %d rows seen, want on and 1", inBatch, n)
	}
	// Local to that transaction: the connection is back to its default, so
	// the batch was one transaction and the setting held at its commit.
	if s := setting(); s != "off" {
		t.Errorf("after the batch: %s, want the default off again", s)
	}
}

// recordable refuses what would fail a whole batch.
func TestRecordable(t *testing.T) {
	exp := time.Now().Add(time.Minute)
	for _, tc := range []struct {
		jti  string
		exp  time.Time
		want bool
	}{
		{"9f0c2d1e-3b4a-4c5d-8e6f-7a8b9c0d1e2f", exp, true},
		{"", exp, false},
		{"nul\x00byte", exp, false},
		{"\xff\xfe", exp, false},
		{strings.Repeat("j", maxJTIBytes+1), exp, false},
		{"jti", time.Time{}, false},
		{"jti", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := recordable(tc.jti, tc.exp); got != tc.want {
			t.Errorf("recordable(%q, %v) = %v, want %v", tc.jti, tc.exp, got, tc.want)
		}
	}
}
