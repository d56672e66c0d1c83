package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/migrations"
)

func openStore(t *testing.T, pool *pgxpool.Pool, secrets Secrets) *Store {
	t.Helper()
	s, err := Open(pool, secrets)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestResourceRoleHoldsNoSigningKey: a resource server's store, opened with
// its own secrets key, gets its decryption keys and nothing else; with the
// key material it holds, the stored signing private key does not decrypt.
func TestResourceRoleHoldsNoSigningKey(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	authzSecret, resourceSecret := randomKey(t), randomKey(t)
	authz := openStore(t, db.Pool, Secrets{Authz: authzSecret, Resource: resourceSecret})
	if err := authz.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	enc, _ := authz.EncryptionKey(ctx)
	dirKid, dirKey, _ := authz.DirectKey(ctx)

	resource := openStore(t, db.Pool, Secrets{Resource: resourceSecret})
	if err := resource.Refresh(ctx); err != nil {
		t.Fatalf("resource store Refresh: %v", err)
	}
	if got, err := resource.EncryptionKey(ctx); err != nil || got.KeyID != enc.KeyID || got.IsPublic() {
		t.Errorf("resource EncryptionKey = %s (public %v), %v; want the private key %s", got.KeyID, got.IsPublic(), err, enc.KeyID)
	}
	if kid, key, err := resource.DirectKey(ctx); err != nil || kid != dirKid || !bytes.Equal(key, dirKey) {
		t.Errorf("resource DirectKey = %s, %v; want %s", kid, err, dirKid)
	}
	if k, err := resource.SigningKey(ctx, jose.ES256); !errors.Is(err, ErrNoKey) {
		t.Errorf("resource SigningKey = %s, %v; want ErrNoKey", k.KeyID, err)
	}
	if public, err := resource.PublicSigningKeys(ctx); err != nil || len(public) != 0 {
		t.Errorf("resource PublicSigningKeys = %d keys, %v; want none (it reads the JWKS)", len(public), err)
	}
	for _, k := range resource.cache {
		if k.use == useSig {
			t.Errorf("the resource store loaded signing key %s", k.jwk.KeyID)
		}
	}

	// What the resource server holds, tried as every key it could be: the
	// signing key's ciphertext opens with none of them.
	var kid string
	var sealed []byte
	if err := db.Pool.QueryRow(ctx, `SELECT kid, private_jwk FROM keys WHERE use = 'sig'`).Scan(&kid, &sealed); err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{labelPrivateKeyEncryption, labelResourcePrivateKeyEncryption} {
		s, err := newSealer(resourceSecret, label, errWrongSecretsKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.open(kid, sealed); !errors.Is(err, errWrongSecretsKey) {
			t.Errorf("the signing key opened with the resource secrets key (label %s): %v", label, err)
		}
	}
	posing := openStore(t, db.Pool, Secrets{Authz: resourceSecret})
	if _, err := posing.SigningKey(ctx, jose.ES256); !errors.Is(err, errWrongSecretsKey) {
		t.Errorf("resource secrets key given as the secrets key: SigningKey err %v, want errWrongSecretsKey", err)
	}

	// Nor can it make or rotate keys, and the schema refuses a signing key
	// sealed for it.
	if err := resource.EnsureKeys(ctx); err == nil {
		t.Errorf("EnsureKeys on the resource store succeeded")
	}
	if _, err := resource.Rotate(ctx, jose.ES256, 0, time.Minute); err == nil {
		t.Errorf("Rotate on the resource store succeeded")
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE keys SET sealed_for = 'resource' WHERE use = 'sig'`); err == nil {
		t.Errorf("the schema let a signing key be sealed for the resource server")
	}

	// The authorization server with another resource secrets key is told which key is wrong.
	wrong := openStore(t, db.Pool, Secrets{Authz: authzSecret, Resource: randomKey(t)})
	if err := wrong.Refresh(ctx); !errors.Is(err, errWrongResourceSecretsKey) ||
		!strings.Contains(err.Error(), "NUMVERIFY_RESOURCE_SECRETS_KEY") {
		t.Errorf("Refresh with another resource secrets key = %v, want errWrongResourceSecretsKey", err)
	}
	// Signing keys rotate with the secrets key alone (`numverify keys rotate`).
	signer := openStore(t, db.Pool, Secrets{Authz: authzSecret})
	if _, err := signer.Rotate(ctx, jose.ES256, 0, time.Minute); err != nil {
		t.Errorf("Rotate with the secrets key alone: %v", err)
	}
}

// TestUpgradeFromOneSecretsKey: a database made before roles (every key
// sealed with the secrets key, no sealed_for) keeps working: after the
// migration the authorization server reads it as it is, reseals the
// resource server's keys at start (the same kids, no new key), and a
// resource server then opens them with the resource secrets key.
func TestUpgradeFromOneSecretsKey(t *testing.T) {
	_, url := pgtest.NewEmpty(t)
	ctx := context.Background()
	if err := migrations.Up(url); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Down(url, int(migrations.Latest()-3)); err != nil { // the schema of before roles
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	secrets := randomKey(t)
	old, err := newSealer(secrets, labelPrivateKeyEncryption, errWrongSecretsKey)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := newSigningKey(jose.ES256)
	enc, _ := newEncryptionKey()
	dir, _ := newDirectKey()
	for _, k := range []struct {
		jwk jose.JSONWebKey
		use string
	}{{sig, useSig}, {enc, useEnc}, {dir, useSecret}} {
		private, _ := k.jwk.MarshalJSON()
		sealed, err := old.seal(k.jwk.KeyID, private)
		if err != nil {
			t.Fatal(err)
		}
		var public any
		if k.use != useSecret {
			b, _ := json.Marshal(k.jwk.Public())
			public = string(b)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO keys (kid, use, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4, $5::jsonb)`,
			k.jwk.KeyID, k.use, k.jwk.Algorithm, sealed, public); err != nil {
			t.Fatal(err)
		}
	}
	if err := migrations.Up(url); err != nil {
		t.Fatalf("migrate up over keys of before roles: %v", err)
	}

	resourceSecret := DeriveResourceSecretsKey(secrets)
	resource := openStore(t, pool, Secrets{Resource: resourceSecret})
	if _, err := resource.EncryptionKey(ctx); !errors.Is(err, ErrNoKey) {
		t.Errorf("before the authorization server reseals, the resource store sees %v, want no key", err)
	}
	authz, err := New(pool, secrets)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := authz.SigningKey(ctx, jose.ES256); err != nil || got.KeyID != sig.KeyID {
		t.Fatalf("after the migration SigningKey = %s, %v; want the old key %s", got.KeyID, err, sig.KeyID)
	}
	if err := authz.EnsureKeys(ctx); err != nil {
		t.Fatalf("EnsureKeys over keys of before roles: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM keys`).Scan(&n); err != nil || n != 4 {
		t.Errorf("%d keys after EnsureKeys, want the 3 old ones and an RS256 signing key (%v)", n, err)
	}
	if err := resource.Refresh(ctx); err != nil {
		t.Fatalf("resource Refresh after reseal: %v", err)
	}
	if got, err := resource.EncryptionKey(ctx); err != nil || got.KeyID != enc.KeyID {
		t.Errorf("resource EncryptionKey = %s, %v; want the old key %s", got.KeyID, err, enc.KeyID)
	}
	if kid, key, err := resource.DirectKey(ctx); err != nil || kid != dir.KeyID || !bytes.Equal(key, dir.Key.([]byte)) {
		t.Errorf("resource DirectKey = %s, %v; want the old key %s", kid, err, dir.KeyID)
	}
	if _, err := resource.SigningKey(ctx, jose.ES256); !errors.Is(err, ErrNoKey) {
		t.Errorf("resource SigningKey after the upgrade: %v, want ErrNoKey", err)
	}
	if err := authz.Refresh(ctx); err != nil {
		t.Errorf("authz Refresh after reseal: %v", err)
	}
}
