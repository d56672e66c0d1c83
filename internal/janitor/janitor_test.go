package janitor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var lifetimes = Lifetimes{AccessToken: 5 * time.Minute, ClockSkew: 30 * time.Second}

// Each table keeps what has not expired, or expired within its margin, and
// loses the rest, in bounded batches. The purger's clock is an hour ahead:
// expiry is judged by it, not by the database's.
func TestTasksDeleteOnlyWhatExpired(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	now := time.Now().Add(time.Hour).UTC()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	db.Exec(t, `INSERT INTO oauth2_clients (id, name, secret_hash, token_endpoint_auth_method) VALUES ('sp', 'SP', '\x00', 'client_secret_basic')`)
	request := func(kind, sig string, expires time.Time) {
		db.Exec(t, `INSERT INTO oauth2_requests (kind, signature, request_id, requested_at, client_id, session, expires_at)
			VALUES ($1, sha256(convert_to($2, 'UTF8')), $2, $3, 'sp', '{}', $3)`, kind, sig, expires)
	}
	type row struct {
		table, key string
		kept       bool
	}
	var want []row
	for _, r := range []struct {
		kind    string
		expires time.Duration
		kept    bool
	}{
		{"code", -5*time.Minute + time.Second, true}, // within one access token lifetime of its expiry
		{"code", -5*time.Minute - time.Second, false},
		{"pkce", time.Second, true},
		{"pkce", -time.Second, false},
		{"oidc", -time.Second, false},
		{"access", -29 * time.Second, true}, // a resource server still accepts it
		{"access", -31 * time.Second, false},
		{"refresh", time.Hour, true},
		{"refresh", -time.Second, false},
	} {
		sig := r.kind + (-r.expires).String()
		request(r.kind, sig, at(r.expires))
		want = append(want, row{"oauth2_requests", sig, r.kept})
	}
	for _, table := range []string{"revoked_tokens", "used_access_tokens"} {
		db.Exec(t, `INSERT INTO `+table+` (jti, expires_at) VALUES ('live', $1), ('in-skew', $2), ('old', $3)`,
			at(time.Minute), at(-29*time.Second), at(-31*time.Second))
		want = append(want, row{table, "live", true}, row{table, "in-skew", true}, row{table, "old", false})
	}
	db.Exec(t, `INSERT INTO oauth2_client_assertion_jtis (jti, expires_at) VALUES ('live', $1), ('old', $2)`, at(time.Second), at(-time.Second))
	want = append(want, row{"oauth2_client_assertion_jtis", "live", true}, row{"oauth2_client_assertion_jtis", "old", false})
	db.Exec(t, `INSERT INTO revoked_clients (client_id, revoked_before, expires_at) VALUES ('live', $1, $2), ('old', $1, $3)`,
		at(-time.Hour), at(-29*time.Second), at(-31*time.Second))
	want = append(want, row{"revoked_clients", "live", true}, row{"revoked_clients", "old", false})
	db.Exec(t, `INSERT INTO keys (kid, use, alg, private_jwk, sealed_for, retire_at) VALUES
		('active', 'sig', 'ES256', '\x00', 'authz', NULL), ('retiring', 'sig', 'ES256', '\x00', 'authz', $1),
		('retired', 'sig', 'ES256', '\x00', 'authz', $2)`, at(time.Second), at(-time.Second))
	want = append(want, row{"keys", "active", true}, row{"keys", "retiring", true}, row{"keys", "retired", false})
	// Many expired used jtis: bounded batches.
	db.Exec(t, `INSERT INTO used_access_tokens (jti, expires_at) SELECT 'bulk-' || g, $1 FROM generate_series(1, 250) g`, at(-time.Hour))

	p := NewPurger(db.Pool, Tasks(lifetimes), WithBatches(100, time.Millisecond), WithClock(func() time.Time { return now }))
	results, err := p.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Name == "used access tokens" && (r.Deleted != 251 || r.Batches != 3) {
			t.Errorf("used access tokens: %+v, want 251 rows in 3 batches", r)
		}
	}
	keyColumn := map[string]string{"oauth2_requests": "request_id", "revoked_clients": "client_id", "keys": "kid"}
	for _, w := range want {
		column := keyColumn[w.table]
		if column == "" {
			column = "jti"
		}
		var kept bool
		if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+w.table+` WHERE `+column+` = $1)`, w.key).Scan(&kept); err != nil {
			t.Fatal(err)
		}
		if kept != w.kept {
			t.Errorf("%s %s: kept %v, want %v", w.table, w.key, kept, w.kept)
		}
	}
}

// Of purgers sharing a database (one per replica), one runs at a time; the
// others skip the round.
func TestOnePurgerAtATime(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	db.Exec(t, `INSERT INTO revoked_tokens (jti, expires_at) SELECT 'old-' || g, now() - interval '1 hour' FROM generate_series(1, 10) g`)
	replica := func() *pgxpool.Pool {
		pool, err := pgxpool.New(ctx, db.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pool
	}

	t.Run("lock held elsewhere", func(t *testing.T) {
		other, err := replica().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Release()
		if _, err := other.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
			t.Fatal(err)
		}
		p := NewPurger(replica(), Tasks(lifetimes))
		if _, err := p.Once(ctx); !errors.Is(err, ErrBusy) {
			t.Fatalf("Once while another holds the lock: %v, want ErrBusy", err)
		}
		if n := count(t, db.Pool, "revoked_tokens"); n != 10 {
			t.Fatalf("%d rows left, want all 10: a busy purger must not delete", n)
		}
		if _, err := other.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Once(ctx); err != nil {
			t.Fatalf("Once after the lock was released: %v", err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		db.Exec(t, `INSERT INTO revoked_tokens (jti, expires_at) SELECT 'again-' || g, now() - interval '1 hour' FROM generate_series(1, 10) g`)
		// A task slow enough (a quarter of a second per batch) that both
		// purgers are inside Once at the same time.
		slow := []Task{{Name: "slow", Table: "revoked_tokens", Expiry: "expires_at", Where: "(SELECT pg_sleep(0.25)) IS NOT NULL"}}
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		deletedBy := make([]int64, 2)
		for i := range 2 {
			p := NewPurger(replica(), slow)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results, err := p.Once(ctx)
				errs[i] = err
				for _, r := range results {
					deletedBy[i] += r.Deleted
				}
			}()
		}
		close(start)
		wg.Wait()
		busy := 0
		for i, err := range errs {
			switch {
			case errors.Is(err, ErrBusy):
				busy++
			case err != nil:
				t.Fatalf("purger %d: %v", i, err)
			}
		}
		if busy != 1 || deletedBy[0]+deletedBy[1] != 10 {
			t.Fatalf("busy %d, deleted %v; want one purger to run and delete the 10 rows, the other to skip", busy, deletedBy)
		}
	})
}

// Run purges on its interval and stops with its context.
func TestRunPurgesUntilStopped(t *testing.T) {
	db := pgtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	db.Exec(t, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ('old', now() - interval '1 hour')`)
	done := make(chan struct{})
	go func() {
		NewPurger(db.Pool, Tasks(lifetimes)).Run(ctx, 10*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for count(t, db.Pool, "revoked_tokens") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired row was not purged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

func count(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A round that deleted rows vacuums and analyzes the table: with autovacuum
// off (as here), nothing else would refresh its statistics or make the
// deleted rows' space reusable. reltuples is -1 until a table is analyzed.
func TestPurgeVacuumsWhatItPurged(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	db.Exec(t, `INSERT INTO used_access_tokens (jti, expires_at) SELECT 'old-' || g, $1 FROM generate_series(1, 400) g`, now.Add(-time.Hour))
	db.Exec(t, `INSERT INTO used_access_tokens (jti, expires_at) SELECT 'live-' || g, $1 FROM generate_series(1, 100) g`, now.Add(time.Hour))
	reltuples := func(table string) float64 {
		var n float64
		if err := db.Pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := reltuples("used_access_tokens"); n != -1 {
		t.Fatalf("reltuples before the purge = %v, want -1 (never analyzed)", n)
	}
	if _, err := NewPurger(db.Pool, Tasks(lifetimes), WithClock(func() time.Time { return now })).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if n := reltuples("used_access_tokens"); n != 100 {
		t.Errorf("reltuples after the purge = %v, want 100 (vacuumed and analyzed)", n)
	}
	if n := reltuples("revoked_clients"); n != -1 {
		t.Errorf("revoked_clients (nothing purged) reltuples = %v, want -1 (left alone)", n)
	}

	db.Exec(t, `INSERT INTO used_access_tokens (jti, expires_at) SELECT 'again-' || g, $1 FROM generate_series(1, 50) g`, now.Add(-time.Hour))
	db.Exec(t, `INSERT INTO used_access_tokens (jti, expires_at) SELECT 'live2-' || g, $1 FROM generate_series(1, 50) g`, now.Add(time.Hour))
	if _, err := NewPurger(db.Pool, Tasks(lifetimes), withoutVacuum(), WithClock(func() time.Time { return now })).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if n := reltuples("used_access_tokens"); n != 100 {
		t.Errorf("withoutVacuum: reltuples = %v, want 100 still (150 would mean it analyzed)", n)
	}
}
