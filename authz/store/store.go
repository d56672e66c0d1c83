// Package store keeps the authorization server's fosite state in Postgres:
// OAuth2 clients, authorization codes, PKCE and OpenID Connect sessions,
// access and refresh token records, and client-assertion jti values.
//
// It implements fosite's own storage interfaces (asserted below), so the
// provider composes it directly. Every method runs on the transaction carried
// in the context when there is one (tx.go), in a login's unit of work when
// the context carries one (unit.go), otherwise on the pool.
package store

import (
	"context"
	"time"

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
	pool    *pgxpool.Pool
	hasher  *SecretHasher
	clients *clientCache // nil: every GetClient reads Postgres
	now     func() time.Time
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

// Option changes how a Store works.
type Option func(*Store)

// WithClientCache keeps clients read by GetClient in memory for ttl (a
// login reads its client at /authorize and again at /token). A client
// deleted through this Store is forgotten at once; one deleted by another
// process (`numverify client delete`) may still be accepted by this one for
// up to ttl. A ttl of zero or less disables the cache.
func WithClientCache(ttl time.Duration) Option {
	return func(s *Store) {
		if ttl > 0 {
			s.clients = newClientCache(ttl)
		}
	}
}

// WithClock sets the clock the client cache's TTL is measured with
// (tests move it); default time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// New returns a store over pool; hasher hashes the client secrets it makes
// (the provider must use the same hasher to compare them).
func New(pool *pgxpool.Pool, hasher *SecretHasher, opts ...Option) *Store {
	s := &Store{pool: pool, hasher: hasher, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// SecretHasher is the hasher the store makes client secrets with: the one
// the provider must compare them with.
func (s *Store) SecretHasher() *SecretHasher { return s.hasher }

// GetPool returns the pool the store runs on.
func (s *Store) GetPool() *pgxpool.Pool { return s.pool }

// querier is what both a pool and a pgx.Tx offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
