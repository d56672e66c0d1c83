// Package keystore keeps the key material both servers use in Postgres
// (table keys): the authorization server's signing keys (rotated, published
// ahead of use and kept after it), the resource server's encryption key, and
// the direct key both use for `dir` JWE access tokens. Private parts are
// encrypted at rest with AES-256-GCM, each for one role (keys.sealed_for):
// signing keys under a key derived from NUMVERIFY_SECRETS_KEY, which only the
// authorization server holds; the resource server's decryption keys under a
// key derived from NUMVERIFY_RESOURCE_SECRETS_KEY, which the resource server
// holds (and the authorization server, which creates them and opens its own
// tokens). A resource server's store reads only the rows sealed for it, so
// it never holds a signing private key. Reads are served from memory,
// refreshed every few seconds, so the request path does no query.
//
// It imports neither authz nor resource; cmd wires it into both.
package keystore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/pg"
)

// Key uses, as stored in keys.use.
const (
	useSig    = "sig"    // signs ID tokens and JWT access tokens (one active key per algorithm)
	useEnc    = "enc"    // the resource server's key access tokens are encrypted to
	useSecret = "secret" // the shared key of direct-encrypted (dir, A256GCM) access tokens
)

// keyRole is whose key a private key is sealed under (keys.sealed_for).
type keyRole string

const (
	// roleAuthz: the signing keys (and, in a database made before roles, every key).
	roleAuthz keyRole = "authz"
	// roleResource: the resource server's encryption key and the direct key.
	roleResource keyRole = "resource"
)

// sealedFor is the role a new key of this use is sealed for.
func sealedFor(use string) keyRole {
	if use == useSig {
		return roleAuthz
	}
	return roleResource
}

// Secrets are the secrets keys a process holds (32 bytes each); either may
// be nil. The authorization server holds both; a resource server only
// Resource.
type Secrets struct {
	Authz    []byte // NUMVERIFY_SECRETS_KEY
	Resource []byte // NUMVERIFY_RESOURCE_SECRETS_KEY
}

// defaultCacheTTL is how long reads are served from memory before the keys
// are loaded again.
const defaultCacheTTL = 5 * time.Second

// maxStale is how long a cache is still served when reloading fails (a
// database blip must not stop token signing or validation).
const maxStale = 10 * time.Minute

// ErrNoKey means no key of the wanted use is usable now (EnsureKeys has not
// run, or every key is retired).
var ErrNoKey = errors.New("no usable key")

// Store reads and writes the keys table. It loads only the keys sealed for
// the roles whose secrets it holds.
type Store struct {
	pool    *pgxpool.Pool
	sealers map[keyRole]*sealer
	ttl     time.Duration
	now     func() time.Time

	mu        sync.Mutex
	cache     []storedKey
	loadedAt  time.Time
	reloading bool // a background reload is under way
}

// storedKey is one decrypted row.
type storedKey struct {
	jwk       jose.JSONWebKey
	use       string
	alg       string // keys.alg: the signing algorithm of a signing key
	notBefore time.Time
	retireAt  *time.Time
}

// usableAt reports whether the key may be used to sign or decrypt at t.
func (k storedKey) usableAt(t time.Time) bool {
	return !k.notBefore.After(t) && (k.retireAt == nil || k.retireAt.After(t))
}

// publishedAt reports whether the key belongs in the JWKS at t (it may not
// be active yet).
func (k storedKey) publishedAt(t time.Time) bool {
	return k.retireAt == nil || k.retireAt.After(t)
}

// New returns the authorization server's key store over pool with
// secretsKey (32 bytes, see ParseSecretsKey) and the resource secrets key
// derived from it (DeriveResourceSecretsKey): what `serve` uses when no
// resource secrets key is configured.
func New(pool *pgxpool.Pool, secretsKey []byte, opts ...Option) (*Store, error) {
	if len(secretsKey) != SecretsKeyLength {
		return nil, fmt.Errorf("secrets key is %d bytes, want %d (%s)", len(secretsKey), SecretsKeyLength, SecretsKeyHelp)
	}
	return Open(pool, Secrets{Authz: secretsKey, Resource: DeriveResourceSecretsKey(secretsKey)}, opts...)
}

// Option changes how a Store works.
type Option func(*Store)

// WithClock sets the clock that says which keys are active, published or
// retired, and how old the cache is (tests move it instead of sleeping
// through a publish-ahead or a grace); default time.Now. The database's
// clock still stamps the keys a rotation writes.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// Open returns a key store over pool holding the given secrets: it reads
// (and can create) only the keys sealed for those roles. A resource server
// opens it with Secrets{Resource: …} alone.
func Open(pool *pgxpool.Pool, secrets Secrets, opts ...Option) (*Store, error) {
	sealers := map[keyRole]*sealer{}
	if secrets.Authz != nil {
		s, err := newSealer(secrets.Authz, labelPrivateKeyEncryption, errWrongSecretsKey)
		if err != nil {
			return nil, err
		}
		sealers[roleAuthz] = s
	}
	if secrets.Resource != nil {
		s, err := newSealer(secrets.Resource, labelResourcePrivateKeyEncryption, errWrongResourceSecretsKey)
		if err != nil {
			return nil, fmt.Errorf("resource %w", err)
		}
		sealers[roleResource] = s
	}
	if len(sealers) == 0 {
		return nil, errors.New("key store: no secrets key")
	}
	s := &Store{pool: pool, sealers: sealers, ttl: defaultCacheTTL, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// holds reports whether the store has the secrets key of role.
func (s *Store) holds(role keyRole) bool { return s.sealers[role] != nil }

// roles are the roles whose keys the store reads.
func (s *Store) roles() []string {
	var roles []string
	for _, role := range []keyRole{roleAuthz, roleResource} {
		if s.holds(role) {
			roles = append(roles, string(role))
		}
	}
	return roles
}

// SetCacheTTL changes how long reads are cached (0: every read queries).
func (s *Store) SetCacheTTL(ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ttl = ttl
}

// Refresh loads the keys now, whatever the cache's age.
func (s *Store) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(ctx)
}

// keys returns the cached keys. Only the first load (or one after the cache
// has been stale past maxStale) happens on the caller's path; a cache older
// than the TTL is served as it is while one background reload runs. So the
// request path never waits for Postgres here, and never needs a second pool
// connection while its transaction holds one (with a small pool, that wait
// would deadlock every token request at once).
func (s *Store) keys(ctx context.Context) ([]storedKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	age := s.now().Sub(s.loadedAt)
	if s.cache != nil && age < s.ttl {
		return s.cache, nil
	}
	if s.cache != nil && age < maxStale {
		if !s.reloading {
			s.reloading = true
			go s.reloadInBackground()
		}
		return s.cache, nil
	}
	err := s.loadLocked(ctx)
	return s.cache, err
}

func (s *Store) reloadInBackground() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Load outside the lock, so readers keep being served meanwhile.
	keys, err := s.load(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloading = false
	if err == nil {
		s.cache, s.loadedAt = keys, s.now()
	}
}

func (s *Store) loadLocked(ctx context.Context) error {
	keys, err := s.load(ctx)
	if err != nil {
		return err
	}
	s.cache, s.loadedAt = keys, s.now()
	return nil
}

// load reads and decrypts every key not yet retired that is sealed for a
// role the store holds; no other row even leaves the database.
func (s *Store) load(ctx context.Context) ([]storedKey, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT kid, use, alg, sealed_for, private_jwk, not_before, retire_at FROM keys
		WHERE (retire_at IS NULL OR retire_at > now()) AND sealed_for = ANY($1)
		ORDER BY not_before DESC, created_at DESC, kid`, s.roles())
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", pg.MapError(err))
	}
	defer rows.Close()
	var keys []storedKey
	for rows.Next() {
		var (
			k      storedKey
			kid    string
			role   keyRole
			sealed []byte
		)
		if err := rows.Scan(&kid, &k.use, &k.alg, &role, &sealed, &k.notBefore, &k.retireAt); err != nil {
			return nil, fmt.Errorf("load keys: %w", err)
		}
		if role == roleResource && k.use == useSig { // the schema forbids it; never trust it
			return nil, fmt.Errorf("load keys: signing key %s is sealed for the resource server", kid)
		}
		sealer := s.sealers[role]
		if sealer == nil {
			return nil, fmt.Errorf("load keys: key %s is sealed for %q", kid, role)
		}
		plain, err := sealer.open(kid, sealed)
		if err != nil {
			return nil, fmt.Errorf("load keys: %w", err)
		}
		if err := k.jwk.UnmarshalJSON(plain); err != nil {
			return nil, fmt.Errorf("load keys: key %s: %w", kid, err)
		}
		if k.jwk.KeyID != kid {
			return nil, fmt.Errorf("load keys: key %s holds a JWK with kid %q", kid, k.jwk.KeyID)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load keys: %w", pg.MapError(err))
	}
	if keys == nil {
		keys = []storedKey{}
	}
	return keys, nil
}

// newest returns the newest key of use (and, when alg is not empty, of that
// algorithm) usable now (keys are ordered newest first).
func (s *Store) newest(ctx context.Context, use, alg string) (jose.JSONWebKey, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	now := s.now()
	for _, k := range keys {
		if k.use == use && (alg == "" || k.alg == alg) && k.usableAt(now) {
			return k.jwk, nil
		}
	}
	what := use
	if alg != "" {
		what += " " + alg
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w for %q: run the server once (it creates keys) or `numverify keys rotate`", ErrNoKey, what)
}

// SigningKey is the private key that signs with alg now: the newest signing
// key of that algorithm whose not-before has passed and that is not retired.
// There is one per algorithm of contract.SigningAlgorithms (EnsureKeys).
func (s *Store) SigningKey(ctx context.Context, alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	if alg == "" {
		return jose.JSONWebKey{}, errors.New("signing key: no algorithm named")
	}
	return s.newest(ctx, useSig, string(alg))
}

// PublicSigningKeys is the JWKS: the public part of every signing key not
// yet retired, of every algorithm, including one published ahead of its use,
// newest first.
func (s *Store) PublicSigningKeys(ctx context.Context) ([]jose.JSONWebKey, error) {
	keys, err := s.keys(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var public []jose.JSONWebKey
	for _, k := range keys {
		if k.use == useSig && k.publishedAt(now) {
			public = append(public, k.jwk.Public())
		}
	}
	return public, nil
}

// EncryptionKey is the resource server's private encryption key (ECDH-ES);
// its Public() is what the authorization server encrypts access tokens to.
func (s *Store) EncryptionKey(ctx context.Context) (jose.JSONWebKey, error) {
	return s.newest(ctx, useEnc, "")
}

// DirectKey is the shared 256-bit key of direct-encrypted access tokens.
func (s *Store) DirectKey(ctx context.Context) (kid string, key []byte, err error) {
	jwk, err := s.newest(ctx, useSecret, "")
	if err != nil {
		return "", nil, err
	}
	raw, ok := jwk.Key.([]byte)
	if !ok {
		return "", nil, fmt.Errorf("direct key %s is a %T, not a symmetric key", jwk.KeyID, jwk.Key)
	}
	return jwk.KeyID, append([]byte(nil), raw...), nil
}

// inLockedTx runs fn in a durable transaction holding the keys advisory
// lock, so two processes starting or rotating at once take turns.
func (s *Store) inLockedTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pg.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('numverify.keys'))`); err != nil {
			return fmt.Errorf("lock keys: %w", pg.MapError(err))
		}
		return fn(tx)
	})
}
