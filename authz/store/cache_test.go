package store

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/testclock"
)

// testClientCache: a cached client is forgotten at once when deleted through
// the store, and after the TTL when deleted by another process (the
// documented staleness).
func testClientCache(t *testing.T, f *fixture) {
	const ttl = time.Minute
	clock := testclock.New(time.Now())
	cached := New(f.db.Pool, f.hasher, WithClientCache(ttl), WithClock(clock.Now))
	get := func(id string) error {
		_, err := cached.GetClient(f.ctx, id)
		return err
	}
	t.Run("deleted through the store", func(t *testing.T) {
		c, _ := f.createClient(t, spClientSpec())
		if err := get(c.ID); err != nil {
			t.Fatal(err)
		}
		if err := cached.DeleteClient(f.ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if err := get(c.ID); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("after DeleteClient: %v, want ErrNotFound", err)
		}
	})
	t.Run("deleted by another process", func(t *testing.T) {
		c, _ := f.createClient(t, spClientSpec())
		if err := get(c.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.store.DeleteClient(f.ctx, c.ID); err != nil { // another Store: another process
			t.Fatal(err)
		}
		if err := get(c.ID); err != nil {
			t.Errorf("within the TTL the cached client should still be served: %v", err)
		}
		clock.Advance(ttl - time.Second)
		if err := get(c.ID); err != nil {
			t.Errorf("a second before the TTL ends the cached client should still be served: %v", err)
		}
		clock.Advance(2 * time.Second)
		if err := get(c.ID); !errors.Is(err, fosite.ErrNotFound) {
			t.Errorf("after the TTL: %v, want ErrNotFound", err)
		}
	})
	t.Run("unknown clients are not cached", func(t *testing.T) {
		spec := spClientSpec()
		spec.ID = "registered-after-a-miss"
		if err := get(spec.ID); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("unknown client: %v", err)
		}
		f.createClient(t, spec)
		if err := get(spec.ID); err != nil {
			t.Errorf("a client registered after a miss: %v", err)
		}
	})
}

// tracedStore is a Store on a pool of its own whose statements tracer sees
// (and records).
func tracedStore(t *testing.T, f *fixture) (*Store, *pgtest.Tracer) {
	t.Helper()
	tracer := &pgtest.Tracer{Record: true}
	cfg, err := pgxpool.ParseConfig(f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(f.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return New(pool, f.hasher), tracer
}
