package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/pgtest"
)

// testClientCache: a cached client is forgotten at once when deleted through
// the store, and after the TTL when deleted by another process (the
// documented staleness).
func testClientCache(t *testing.T, f *fixture) {
	const ttl = time.Minute
	clock := newTestClock()
	cached := New(f.db.Pool, f.hasher, WithClientCache(ttl), WithClock(clock.now))
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
		clock.advance(ttl - time.Second)
		if err := get(c.ID); err != nil {
			t.Errorf("a second before the TTL ends the cached client should still be served: %v", err)
		}
		clock.advance(2 * time.Second)
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

// testCodeExchangeReadOnce: after LoadCodeExchange the getters answer from
// what it read (no statement), see the buffered writes (a deleted PKCE
// record is gone, a redeemed code inactive), and the commit applies them.
func testCodeExchangeReadOnce(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	for _, create := range []func() error{
		func() error {
			return f.store.CreateAuthorizeCodeSession(f.ctx, "code-sig", newRequest(client, "r1", "sub", ""))
		},
		func() error {
			return f.store.CreatePKCERequestSession(f.ctx, "code-sig", newRequest(client, "r1", "sub", ""))
		},
		func() error {
			return f.store.CreateOpenIDConnectSession(f.ctx, "the-code", newRequest(client, "r1", "sub", ""))
		},
	} {
		if err := create(); err != nil {
			t.Fatal(err)
		}
	}
	tracer := &pgtest.Tracer{}
	cfg, err := pgxpool.ParseConfig(f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(f.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := New(pool, f.hasher)

	err = st.WithTokenTx(f.ctx, func(ctx context.Context) error {
		if err := st.LoadCodeExchange(ctx, "code-sig", "the-code"); err != nil {
			return err
		}
		sent := tracer.Statements()
		steps := []struct {
			name string
			run  func() error
			want error
		}{
			{"get code", func() error { _, err := st.GetAuthorizeCodeSession(ctx, "code-sig", emptySession()); return err }, nil},
			{"get PKCE", func() error { _, err := st.GetPKCERequestSession(ctx, "code-sig", emptySession()); return err }, nil},
			{"delete PKCE", func() error { return st.DeletePKCERequestSession(ctx, "code-sig") }, nil},
			{"get PKCE after delete", func() error { _, err := st.GetPKCERequestSession(ctx, "code-sig", emptySession()); return err }, fosite.ErrNotFound},
			{"redeem", func() error { return st.InvalidateAuthorizeCodeSession(ctx, "code-sig") }, nil},
			{"redeem again", func() error { return st.InvalidateAuthorizeCodeSession(ctx, "code-sig") }, fosite.ErrInvalidatedAuthorizeCode},
			{"get redeemed code", func() error { _, err := st.GetAuthorizeCodeSession(ctx, "code-sig", emptySession()); return err }, fosite.ErrInvalidatedAuthorizeCode},
			{"get OIDC", func() error {
				_, err := st.GetOpenIDConnectSession(ctx, "the-code", fosite.NewAuthorizeRequest())
				return err
			}, nil},
		}
		for _, step := range steps {
			if err := step.run(); !errors.Is(err, step.want) {
				t.Errorf("%s: %v, want %v", step.name, err, step.want)
			}
		}
		if n := tracer.Statements() - sent; n != 0 {
			t.Errorf("the getters and buffered writes sent %d statements, want 0", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.GetPKCERequestSession(f.ctx, "code-sig", emptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("PKCE after commit: %v, want deleted", err)
	}
	if _, err := f.store.GetAuthorizeCodeSession(f.ctx, "code-sig", emptySession()); !errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) {
		t.Errorf("code after commit: %v, want redeemed", err)
	}
}

// testClock is a clock that moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
