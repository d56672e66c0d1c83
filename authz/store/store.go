// Package store keeps the authorization server's fosite state in Postgres:
// OAuth2 clients, authorization codes, PKCE and OpenID Connect sessions,
// access and refresh token records, and client-assertion jti values.
//
// It implements fosite's own storage interfaces (asserted below), so the
// provider composes it directly. Every method runs on the transaction carried
// in the context when there is one (see BeginTX), otherwise on the pool.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
)

// Store is the Postgres implementation of fosite's storage.
type Store struct {
	pool   *pgxpool.Pool
	hasher *SecretHasher
}

var (
	_ fosite.ClientManager               = (*Store)(nil)
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.AuthorizeCodeStorage        = (*Store)(nil)
	_ oauth2.AccessTokenStorage          = (*Store)(nil)
	_ oauth2.RefreshTokenStorage         = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
	_ fositestorage.Transactional        = (*Store)(nil)
)

// New returns a store over pool; hasher hashes the client secrets it makes
// (the provider must use the same hasher to compare them).
func New(pool *pgxpool.Pool, hasher *SecretHasher) *Store {
	return &Store{pool: pool, hasher: hasher}
}

// GetPool returns the pool the store runs on.
func (s *Store) GetPool() *pgxpool.Pool { return s.pool }

// querier is what both a pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

type txKey struct{}

// txFrom returns the transaction carried in ctx, if any.
func txFrom(ctx context.Context) (pgx.Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	return tx, ok && tx != nil
}

// db is the transaction in ctx, or the pool.
func (s *Store) db(ctx context.Context) querier {
	if tx, ok := txFrom(ctx); ok {
		return tx
	}
	return s.pool
}

// BeginTX starts a transaction and returns a context carrying it; every store
// method called with that context runs inside it. Called with a context that
// already carries one, it starts a nested transaction (a savepoint), so
// fosite's own BeginTX inside a caller's transaction commits or rolls back
// only its part.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	tx, err := s.db(ctx).Begin(ctx)
	if err != nil {
		return ctx, fmt.Errorf("begin transaction: %w", err)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// ErrNoTransaction is returned by Commit and Rollback when the context
// carries no transaction.
var ErrNoTransaction = errors.New("no transaction in context")

// Commit commits the transaction carried in ctx (releases the savepoint of a
// nested one).
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := txFrom(ctx)
	if !ok {
		return ErrNoTransaction
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Rollback rolls back the transaction carried in ctx (to the savepoint of a
// nested one). Rolling back a finished transaction is not an error.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := txFrom(ctx)
	if !ok {
		return ErrNoTransaction
	}
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// WithTokenTx runs one token-endpoint exchange (fosite's NewAccessRequest
// followed by NewAccessResponse) in a single transaction, and the provider
// should call it for every token request:
//
//	err := store.WithTokenTx(ctx, func(ctx context.Context) error {
//		ar, err := provider.NewAccessRequest(ctx, r, session)
//		if err != nil { return err }
//		resp, err = provider.NewAccessResponse(ctx, ar)
//		return err
//	})
//
// Inside it the first read of an authorization code locks the code's row
// (SELECT … FOR UPDATE) until the exchange commits, so of concurrent
// redemptions of one code exactly one issues tokens and every other one finds
// the code already used: fosite answers those invalid_grant and revokes what
// the code issued (RFC 6749 §4.1.2). Without it a loser would still get no
// token (the redemption itself is one atomic UPDATE) but fosite would report
// server_error.
//
// The transaction is committed even when fn returns an error: a replayed
// code's revocations must persist, and fosite rolls back its own part (a
// savepoint) when issuing fails. fn's error is returned unless the commit
// fails, in which case the commit error is.
func (s *Store) WithTokenTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	fnErr := fn(txCtx)
	if err := s.Commit(txCtx); err != nil {
		_ = s.Rollback(txCtx)
		if fnErr != nil {
			return errors.Join(fmt.Errorf("token exchange: %w", err), fnErr)
		}
		return fmt.Errorf("token exchange: %w", err)
	}
	return fnErr
}

// Short-lived login records are committed with synchronous_commit off (a crash
// may lose the last milliseconds of them, which costs a user one retry);
// revocations and everything else durably. The setting is local to the
// transaction and decided at commit, so once a transaction has recorded a
// revocation (numverify.durable = on) later short-lived writes in it do not
// turn durability off.
const (
	sqlAsyncCommit = `SELECT set_config('synchronous_commit',
		CASE WHEN current_setting('numverify.durable', true) = 'on' THEN 'on' ELSE 'off' END, true)`
	sqlDurableCommit = `SELECT set_config('numverify.durable', 'on', true), set_config('synchronous_commit', 'on', true)`
)

// execShortLived runs one write of a short-lived record with asynchronous
// commit, in one round trip: the batch is one implicit transaction (or part
// of the transaction in ctx).
func (s *Store) execShortLived(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	b := &pgx.Batch{}
	b.Queue(sqlAsyncCommit)
	b.Queue(sql, args...)
	br := s.db(ctx).SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	return tag, err
}
