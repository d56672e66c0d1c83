package store

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"
)

func testTransactions(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	exists := func(ctx context.Context, sig string) bool {
		_, err := f.store.GetAccessTokenSession(ctx, sig, emptySession())
		if err != nil && !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("get %s: %v", sig, err)
		}
		return err == nil
	}
	create := func(ctx context.Context, sig string) {
		if err := f.store.CreateAccessTokenSession(ctx, sig, newRequest(client, sig, "sub", "")); err != nil {
			t.Fatalf("create %s: %v", sig, err)
		}
	}

	t.Run("commit", func(t *testing.T) {
		ctx, err := f.store.BeginTX(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		create(ctx, "committed")
		if !exists(ctx, "committed") || exists(f.ctx, "committed") {
			t.Fatalf("inside the transaction the row must be visible, outside not yet")
		}
		if err := f.store.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if !exists(f.ctx, "committed") {
			t.Errorf("row missing after commit")
		}
	})
	t.Run("rollback", func(t *testing.T) {
		ctx, err := f.store.BeginTX(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		create(ctx, "rolled-back")
		if err := f.store.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if exists(f.ctx, "rolled-back") {
			t.Errorf("row present after rollback")
		}
		if err := f.store.Rollback(ctx); err != nil {
			t.Errorf("second rollback = %v, want nil", err)
		}
	})
	t.Run("nested rollback keeps the outer", func(t *testing.T) {
		outer, err := f.store.BeginTX(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		create(outer, "outer")
		inner, err := f.store.BeginTX(outer)
		if err != nil {
			t.Fatal(err)
		}
		create(inner, "inner")
		if err := f.store.Rollback(inner); err != nil {
			t.Fatal(err)
		}
		if err := f.store.Commit(outer); err != nil {
			t.Fatal(err)
		}
		if !exists(f.ctx, "outer") || exists(f.ctx, "inner") {
			t.Errorf("outer %v inner %v, want outer kept and inner rolled back", exists(f.ctx, "outer"), exists(f.ctx, "inner"))
		}
	})
	t.Run("nested rollback after its writes were sent", func(t *testing.T) {
		outer, err := f.store.BeginTX(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		create(outer, "outer-sent")
		inner, err := f.store.BeginTX(outer)
		if err != nil {
			t.Fatal(err)
		}
		create(inner, "inner-sent")
		if !exists(inner, "inner-sent") { // the read sends the buffered writes (and a SAVEPOINT)
			t.Fatal("inside the nested transaction its write must be visible")
		}
		if err := f.store.Rollback(inner); err != nil {
			t.Fatal(err)
		}
		if exists(outer, "inner-sent") || !exists(outer, "outer-sent") {
			t.Fatal("after the nested rollback: want the outer write only")
		}
		if err := f.store.Commit(outer); err != nil {
			t.Fatal(err)
		}
		if !exists(f.ctx, "outer-sent") || exists(f.ctx, "inner-sent") {
			t.Errorf("after commit: want the outer write kept and the inner one rolled back")
		}
	})
	t.Run("a failed write fails the commit and leaves nothing", func(t *testing.T) {
		ctx, err := f.store.BeginTX(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		create(ctx, "dup")
		create(ctx, "not-kept")
		if err := f.store.CreateAccessTokenSession(ctx, "dup", newRequest(client, "dup", "sub", "")); err == nil {
			t.Fatal("a duplicate record was accepted")
		}
		if err := f.store.Commit(ctx); err == nil {
			t.Fatal("commit after a failed write succeeded")
		}
		if exists(f.ctx, "dup") || exists(f.ctx, "not-kept") {
			t.Error("a failed commit left records behind")
		}
	})
	t.Run("without a transaction", func(t *testing.T) {
		if err := f.store.Commit(f.ctx); !errors.Is(err, ErrNoTransaction) {
			t.Errorf("Commit without BeginTX = %v, want ErrNoTransaction", err)
		}
	})
	t.Run("WithTokenTx commits on error", func(t *testing.T) {
		oauthErr := fosite.ErrInvalidGrant
		err := f.store.WithTokenTx(f.ctx, func(ctx context.Context) error {
			create(ctx, "kept-despite-error")
			return oauthErr
		})
		if !errors.Is(err, fosite.ErrInvalidGrant) {
			t.Errorf("WithTokenTx = %v, want fn's error", err)
		}
		if !exists(f.ctx, "kept-despite-error") {
			t.Errorf("work done before the error was not committed")
		}
	})
}

// testCommitDurabilityByKind checks DESIGN "Durability by kind": a
// short-lived record written alone commits asynchronously without leaving the
// setting on the pooled connection; inside a transaction everything commits
// durably, and a revocation does even when the server's default is off.
func testCommitDurabilityByKind(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	setting := func(ctx context.Context) string {
		var v string
		if err := f.store.db(ctx).QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	ctx, err := f.store.BeginTX(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.store.Rollback(ctx) }()
	if _, err := f.store.db(ctx).Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		t.Fatal(err) // as if the server's default were off
	}
	if err := f.store.CreateAuthorizeCodeSession(ctx, "c1", newRequest(client, "r1", "s", "")); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RevokeAccessToken(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if got := setting(ctx); got != "on" {
		t.Errorf("after a revocation: synchronous_commit = %s, want on", got)
	}
	if err := f.store.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Outside a transaction the write is one implicit transaction; its
	// setting must not stay on the pooled connection. One connection, to look.
	cfg, err := pgxpool.ParseConfig(f.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(f.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	single := New(pool, f.hasher)
	if err := single.CreatePKCERequestSession(f.ctx, "p1", newRequest(client, "r3", "s", "")); err != nil {
		t.Fatalf("short-lived write outside a transaction: %v", err)
	}
	var after string
	if err := pool.QueryRow(f.ctx, `SELECT current_setting('synchronous_commit')`).Scan(&after); err != nil || after != "on" {
		t.Errorf("connection's synchronous_commit after a short-lived write = %q (%v), want on", after, err)
	}
	if _, err := single.GetPKCERequestSession(f.ctx, "p1", emptySession()); err != nil {
		t.Errorf("short-lived write not committed: %v", err)
	}
	// The write's batch is one implicit transaction: the setting holds for
	// the statement after it (so the write commits asynchronously).
	b := &pgx.Batch{}
	b.Queue(sqlSynchronousCommit, "off")
	b.Queue(`SELECT current_setting('synchronous_commit')`)
	br := pool.SendBatch(f.ctx, b)
	var inside string
	if _, err := br.Exec(); err != nil {
		t.Fatal(err)
	}
	if err := br.QueryRow().Scan(&inside); err != nil || inside != "off" {
		t.Errorf("inside a one-round-trip batch synchronous_commit = %q (%v), want off", inside, err)
	}
	_ = br.Close()
}

func testDeleteClientCascades(t *testing.T, f *fixture) {
	client, _ := f.createClient(t, spClientSpec())
	if err := f.store.CreateAccessTokenSession(f.ctx, "at", newRequest(client, "r", "s", "")); err != nil {
		t.Fatal(err)
	}
	if err := f.store.DeleteClient(f.ctx, client.ID); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT count(*) FROM oauth2_requests`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d request rows left after deleting their client (%v), want 0", n, err)
	}
	// No foreign key holds an exchange racing the deletion back: the
	// revocation covers every token the deleted client will ever have.
	var coversFuture bool
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT revoked_before > now() + interval '1 hour' FROM revoked_clients WHERE client_id = $1`,
		client.ID).Scan(&coversFuture); err != nil || !coversFuture {
		t.Errorf("the deleted client's revocation does not cover tokens issued after it (%v)", err)
	}
}
