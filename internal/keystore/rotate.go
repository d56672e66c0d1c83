package keystore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pg"
)

// rsaBits is the size of an RS256 signing key.
const rsaBits = 2048

// EnsureKeys creates, at every start, whatever key is missing: a signing key
// of each of contract.SigningAlgorithms sealed for the authorization server, the
// resource server's encryption key (P-256, ECDH-ES) and the direct key (256
// bits, dir) sealed for the resource server. Keys already there are kept, so
// it is idempotent, and two processes starting at once take turns (an
// advisory lock). A database made when one algorithm signed everything gets
// the other algorithm's key here, signing at once (no token was signed with
// it before, so no verifier can be misled: they fetch the JWKS again on an
// unknown kid). First it moves the resource server's keys of a database made
// before roles (sealed with the secrets key) under the resource secrets key.
// It then loads the keys, failing clearly when they cannot be decrypted with
// these secrets keys. Only the authorization server's store (holding both
// secrets) may call it.
func (s *Store) EnsureKeys(ctx context.Context) error {
	if !s.holds(roleAuthz) || !s.holds(roleResource) {
		return errors.New("ensure keys: only the authorization server (holding the secrets key and the resource secrets key) creates keys")
	}
	err := s.inLockedTx(ctx, func(tx pgx.Tx) error {
		if err := s.resealForResource(ctx, tx); err != nil {
			return err
		}
		// Signing keys count per algorithm, the others per use.
		rows, err := tx.Query(ctx, `SELECT DISTINCT use, CASE WHEN use = 'sig' THEN alg ELSE '' END FROM keys
			WHERE retire_at IS NULL OR retire_at > now()`)
		if err != nil {
			return fmt.Errorf("ensure keys: %w", pg.MapError(err))
		}
		type kind struct{ use, alg string }
		present, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kind, error) {
			var k kind
			return k, r.Scan(&k.use, &k.alg)
		})
		if err != nil {
			return fmt.Errorf("ensure keys: %w", pg.MapError(err))
		}
		has := map[kind]bool{}
		for _, k := range present {
			has[k] = true
		}
		type maker struct {
			kind kind
			make func() (jose.JSONWebKey, error)
		}
		var makers []maker
		for _, alg := range contract.SigningAlgorithms {
			makers = append(makers, maker{kind{useSig, string(alg)}, func() (jose.JSONWebKey, error) { return newSigningKey(alg) }})
		}
		makers = append(makers, maker{kind{useEnc, ""}, newEncryptionKey}, maker{kind{useSecret, ""}, newDirectKey})
		for _, m := range makers {
			if has[m.kind] {
				continue
			}
			jwk, err := m.make()
			if err != nil {
				return err
			}
			if err := s.insert(ctx, tx, jwk, m.kind.use, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.Refresh(ctx)
}

// Rotate adds a new signing key of alg that is published at once and signs
// from now+publishAhead, so every verifier has it before the first token it
// signs; the keys of alg signing until then retire at that moment +
// oldKeyGrace (keys of the other algorithms are untouched). oldKeyGrace must
// be at least the longest token lifetime, so tokens they signed still verify
// until they expire. When no signing key of alg exists yet, the new one signs
// at once.
func (s *Store) Rotate(ctx context.Context, alg jose.SignatureAlgorithm, publishAhead, oldKeyGrace time.Duration) (newKid string, err error) {
	kids, err := s.rotate(ctx, []jose.SignatureAlgorithm{alg}, publishAhead, oldKeyGrace)
	if err != nil {
		return "", err
	}
	return kids[alg], nil
}

// RotateAll is Rotate for every algorithm of contract.SigningAlgorithms, in one
// transaction; it returns the new kid of each.
func (s *Store) RotateAll(ctx context.Context, publishAhead, oldKeyGrace time.Duration) (map[jose.SignatureAlgorithm]string, error) {
	return s.rotate(ctx, contract.SigningAlgorithms, publishAhead, oldKeyGrace)
}

func (s *Store) rotate(ctx context.Context, algs []jose.SignatureAlgorithm, publishAhead, oldKeyGrace time.Duration) (map[jose.SignatureAlgorithm]string, error) {
	if publishAhead < 0 || oldKeyGrace < 0 {
		return nil, errors.New("rotate: publish-ahead and grace must not be negative")
	}
	if !s.holds(roleAuthz) {
		return nil, errors.New("rotate: signing keys are sealed with the secrets key, which this store lacks")
	}
	fresh := make(map[jose.SignatureAlgorithm]jose.JSONWebKey, len(algs))
	for _, alg := range algs {
		jwk, err := newSigningKey(alg) // before locking: an RSA key takes a while
		if err != nil {
			return nil, err
		}
		fresh[alg] = jwk
	}
	err := s.inLockedTx(ctx, func(tx pgx.Tx) error {
		for _, alg := range algs {
			if err := s.rotateInTx(ctx, tx, fresh[alg], publishAhead, oldKeyGrace); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	kids := make(map[jose.SignatureAlgorithm]string, len(fresh))
	for alg, jwk := range fresh {
		kids[alg] = jwk.KeyID
	}
	return kids, s.Refresh(ctx)
}

// rotateInTx stores jwk, a new signing key, and retires the other keys of
// its algorithm, in tx (which holds the keys lock).
func (s *Store) rotateInTx(ctx context.Context, tx pgx.Tx, jwk jose.JSONWebKey, publishAhead, oldKeyGrace time.Duration) error {
	var current bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM keys WHERE use = 'sig' AND alg = $1
		AND (retire_at IS NULL OR retire_at > now()))`, jwk.Algorithm).Scan(&current); err != nil {
		return fmt.Errorf("rotate: %w", pg.MapError(err))
	}
	if !current {
		publishAhead = 0 // nothing signs with alg yet: no verifier to warn ahead
	}
	if err := s.insert(ctx, tx, jwk, useSig, publishAhead); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		UPDATE keys SET retire_at = (SELECT not_before FROM keys WHERE kid = $1) + make_interval(secs => $2)
		WHERE use = 'sig' AND alg = $3 AND kid <> $1
		  AND (retire_at IS NULL OR retire_at > (SELECT not_before FROM keys WHERE kid = $1) + make_interval(secs => $2))`,
		jwk.KeyID, oldKeyGrace.Seconds(), jwk.Algorithm)
	if err != nil {
		return fmt.Errorf("rotate: retire old %s keys: %w", jwk.Algorithm, pg.MapError(err))
	}
	return nil
}

// resealForResource moves the resource server's keys still sealed for the
// authorization server (every key of a database made before roles, where one
// secrets key sealed all) under the resource secrets key, in tx.
func (s *Store) resealForResource(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT kid, private_jwk FROM keys WHERE use <> 'sig' AND sealed_for = 'authz'`)
	if err != nil {
		return fmt.Errorf("reseal keys: %w", pg.MapError(err))
	}
	type row struct {
		kid    string
		sealed []byte
	}
	legacy, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.kid, &x.sealed)
	})
	if err != nil {
		return fmt.Errorf("reseal keys: %w", pg.MapError(err))
	}
	for _, k := range legacy {
		plain, err := s.sealers[roleAuthz].open(k.kid, k.sealed)
		if err != nil {
			return fmt.Errorf("reseal keys: %w", err)
		}
		resealed, err := s.sealers[roleResource].seal(k.kid, plain)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET private_jwk = $2, sealed_for = 'resource' WHERE kid = $1`,
			k.kid, resealed); err != nil {
			return fmt.Errorf("reseal key %s: %w", k.kid, pg.MapError(err))
		}
	}
	return nil
}

// insert stores jwk (private part encrypted for the role of its use) with
// not_before = now()+ahead.
func (s *Store) insert(ctx context.Context, tx pgx.Tx, jwk jose.JSONWebKey, use string, ahead time.Duration) error {
	private, err := jwk.MarshalJSON()
	if err != nil {
		return fmt.Errorf("key %s: encode: %w", jwk.KeyID, err)
	}
	role := sealedFor(use)
	sealer := s.sealers[role]
	if sealer == nil {
		return fmt.Errorf("key %s: no %s secrets key to seal it with", jwk.KeyID, role)
	}
	sealed, err := sealer.seal(jwk.KeyID, private)
	if err != nil {
		return err
	}
	var public any // NULL for the direct key: it has no public part
	if use != useSecret {
		b, err := json.Marshal(jwk.Public())
		if err != nil {
			return fmt.Errorf("key %s: encode public part: %w", jwk.KeyID, err)
		}
		public = string(b)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO keys (kid, use, alg, private_jwk, public_jwk, not_before, sealed_for)
		VALUES ($1, $2, $3, $4, $5::jsonb, now() + make_interval(secs => $6), $7)`,
		jwk.KeyID, use, jwk.Algorithm, sealed, public, ahead.Seconds(), string(role))
	if err != nil {
		return fmt.Errorf("key %s: store: %w", jwk.KeyID, pg.MapError(err))
	}
	return nil
}

func newKid() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kid: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func newSigningKey(alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	var key any
	var err error
	switch alg {
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("signing algorithm %q: want one of %v", alg, contract.SigningAlgorithms)
	}
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return withKid(jose.JSONWebKey{Key: key, Algorithm: string(alg), Use: "sig"})
}

func newEncryptionKey() (jose.JSONWebKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("generate encryption key: %w", err)
	}
	return withKid(jose.JSONWebKey{Key: key, Algorithm: string(jose.ECDH_ES), Use: "enc"})
}

func newDirectKey() (jose.JSONWebKey, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("generate direct key: %w", err)
	}
	return withKid(jose.JSONWebKey{Key: key, Algorithm: string(jose.DIRECT)})
}

func withKid(jwk jose.JSONWebKey) (jose.JSONWebKey, error) {
	kid, err := newKid()
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	jwk.KeyID = kid
	return jwk, nil
}
