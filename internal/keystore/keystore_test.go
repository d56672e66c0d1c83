package keystore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/testclock"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, SecretsKeyLength)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newStore(t *testing.T, db *pgtest.DB, secretsKey []byte) *Store {
	t.Helper()
	s, err := New(db.Pool, secretsKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func kids(keys []jose.JSONWebKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}

func TestParseSecretsKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, 32) // 0xfb makes + and / in base64
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"base64", base64.StdEncoding.EncodeToString(key), true},
		{"base64 raw", base64.RawStdEncoding.EncodeToString(key), true},
		{"base64url", base64.URLEncoding.EncodeToString(key), true},
		{"base64url raw", base64.RawURLEncoding.EncodeToString(key), true},
		{"hex", hex.EncodeToString(key), true},
		{"with newline (openssl output)", base64.StdEncoding.EncodeToString(key) + "\n", true},
		{"empty", "", false},
		{"16 bytes", base64.StdEncoding.EncodeToString(key[:16]), false},
		{"not an encoding", "correct horse battery staple", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSecretsKey(tc.in)
			if tc.ok && (err != nil || !bytes.Equal(got, key)) {
				t.Fatalf("ParseSecretsKey = %x, %v; want the key", got, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "openssl rand -base64 32")) {
				t.Fatalf("ParseSecretsKey = %v, want an error saying how to make a key", err)
			}
		})
	}
}

func TestDeriveKey(t *testing.T) {
	k := randomKey(t)
	a, b := DeriveKey(k, LabelClientSecretHMAC), DeriveKey(k, labelPrivateKeyEncryption)
	if len(a) != 32 || bytes.Equal(a, b) || bytes.Equal(a, k) {
		t.Errorf("derived keys must be 32 bytes, differ by label and from the secrets key")
	}
	if !bytes.Equal(a, DeriveKey(k, LabelClientSecretHMAC)) {
		t.Errorf("DeriveKey is not deterministic")
	}
	if _, err := New(nil, k[:16]); err == nil {
		t.Errorf("New with a 16-byte secrets key succeeded")
	}
}

func TestEnsureKeys(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	secrets := randomKey(t)
	s := newStore(t, db, secrets)
	if err := s.EnsureKeys(ctx); err != nil {
		t.Fatalf("EnsureKeys: %v", err)
	}
	signers := map[jose.SignatureAlgorithm]jose.JSONWebKey{}
	for _, alg := range contract.SigningAlgorithms {
		sig, err := s.SigningKey(ctx, alg)
		if err != nil || sig.Algorithm != string(alg) || sig.IsPublic() || !sig.Valid() {
			t.Fatalf("SigningKey(%s) = %+v, %v; want a private %s key", alg, sig, err, alg)
		}
		switch alg {
		case jose.ES256:
			if _, ok := sig.Key.(*ecdsa.PrivateKey); !ok {
				t.Errorf("ES256 key is a %T", sig.Key)
			}
		case jose.RS256:
			if k, ok := sig.Key.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
				t.Errorf("RS256 key is a %T", sig.Key)
			}
		}
		signers[alg] = sig
	}
	enc, err := s.EncryptionKey(ctx)
	if err != nil || enc.Algorithm != string(jose.ECDH_ES) || enc.Use != "enc" || enc.IsPublic() {
		t.Fatalf("EncryptionKey = %+v, %v", enc, err)
	}
	dirKid, dirKey, err := s.DirectKey(ctx)
	if err != nil || len(dirKey) != 32 || dirKid == "" {
		t.Fatalf("DirectKey = %q, %d bytes, %v", dirKid, len(dirKey), err)
	}

	// Twice, and from two more processes at once: the same keys.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = newStore(t, db, secrets).EnsureKeys(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("EnsureKeys again: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM keys`).Scan(&n); err != nil || n != 4 {
		t.Fatalf("%d keys after four EnsureKeys, want 4 (ES256, RS256, enc, dir) (%v)", n, err)
	}
	other := newStore(t, db, secrets)
	for alg, sig := range signers {
		if sig2, _ := other.SigningKey(ctx, alg); sig2.KeyID != sig.KeyID {
			t.Errorf("another process signs %s with %s, want %s", alg, sig2.KeyID, sig.KeyID)
		}
	}
	enc2, _ := other.EncryptionKey(ctx)
	dirKid2, dirKey2, _ := other.DirectKey(ctx)
	if enc2.KeyID != enc.KeyID || dirKid2 != dirKid || !bytes.Equal(dirKey, dirKey2) {
		t.Errorf("another process sees different keys")
	}
	public, err := s.PublicSigningKeys(ctx)
	want := []string{signers[jose.ES256].KeyID, signers[jose.RS256].KeyID}
	slices.Sort(want)
	if err != nil || !slices.Equal(kids(public), want) {
		t.Errorf("PublicSigningKeys = %v, %v; want both signing keys %v", kids(public), err, want)
	}
	for _, k := range public {
		if !k.IsPublic() {
			t.Errorf("JWKS key %s is private", k.KeyID)
		}
	}
	t.Run("unknown algorithm", func(t *testing.T) {
		if _, err := s.SigningKey(ctx, jose.HS256); !errors.Is(err, ErrNoKey) {
			t.Errorf("SigningKey(HS256) = %v, want ErrNoKey", err)
		}
		if _, err := s.Rotate(ctx, jose.HS256, 0, 0); err == nil {
			t.Errorf("Rotate(HS256) succeeded")
		}
	})
}

// TestEnsureKeysAddsMissingAlgorithm: a database from when one algorithm
// (--id-token-alg, RS256 by default) signed everything gets a key of the
// other at start, signing at once; the existing keys stay as they are.
func TestEnsureKeysAddsMissingAlgorithm(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	s := newStore(t, db, randomKey(t))
	var old [3]jose.JSONWebKey
	var err error
	for i, make := range []func() (jose.JSONWebKey, error){
		func() (jose.JSONWebKey, error) { return newSigningKey(jose.RS256) }, newEncryptionKey, newDirectKey,
	} {
		if old[i], err = make(); err != nil {
			t.Fatal(err)
		}
	}
	err = s.inLockedTx(ctx, func(tx pgx.Tx) error {
		for i, use := range []string{useSig, useEnc, useSecret} {
			if err := s.insert(ctx, tx, old[i], use, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SigningKey(ctx, jose.ES256); !errors.Is(err, ErrNoKey) {
		t.Fatalf("before EnsureKeys: SigningKey(ES256) = %v, want ErrNoKey", err)
	}
	if err := s.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := s.SigningKey(ctx, jose.ES256)
	if err != nil || es.Algorithm != string(jose.ES256) {
		t.Fatalf("after EnsureKeys: SigningKey(ES256) = %v, %v; want a new ES256 key signing at once", es.KeyID, err)
	}
	if rs, err := s.SigningKey(ctx, jose.RS256); err != nil || rs.KeyID != old[0].KeyID {
		t.Errorf("after EnsureKeys: SigningKey(RS256) = %v, %v; want the existing %s", rs.KeyID, err, old[0].KeyID)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM keys WHERE retire_at IS NULL`).Scan(&n); err != nil || n != 4 {
		t.Errorf("%d active keys, want the 3 old ones and the new ES256 key (%v)", n, err)
	}
}

func TestEncryptedAtRest(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	secrets := randomKey(t)
	s := newStore(t, db, secrets)
	if err := s.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	sig, _ := s.SigningKey(ctx, jose.ES256)
	d := base64.RawURLEncoding.EncodeToString(sig.Key.(*ecdsa.PrivateKey).D.FillBytes(make([]byte, 32)))
	_, direct, _ := s.DirectKey(ctx)
	rows, err := db.Pool.Query(ctx, `SELECT kid, private_jwk, coalesce(public_jwk::text, '') FROM keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var kid, public string
		var private []byte
		if err := rows.Scan(&kid, &private, &public); err != nil {
			t.Fatal(err)
		}
		for _, secret := range [][]byte{[]byte(d), []byte(base64.RawURLEncoding.EncodeToString(direct)), direct} {
			if bytes.Contains(private, secret) || strings.Contains(public, string(secret)) {
				t.Errorf("key %s: stored bytes contain private material %q", kid, secret)
			}
		}
	}

	t.Run("wrong secrets key", func(t *testing.T) {
		wrong := newStore(t, db, randomKey(t))
		err := wrong.Refresh(ctx)
		if !errors.Is(err, errWrongSecretsKey) || !strings.Contains(err.Error(), "NUMVERIFY_SECRETS_KEY") {
			t.Fatalf("Refresh with another secrets key = %v, want errWrongSecretsKey naming NUMVERIFY_SECRETS_KEY", err)
		}
		if _, err := wrong.SigningKey(ctx, jose.ES256); !errors.Is(err, errWrongSecretsKey) {
			t.Errorf("SigningKey with another secrets key = %v, want errWrongSecretsKey", err)
		}
		if err := wrong.EnsureKeys(ctx); !errors.Is(err, errWrongSecretsKey) {
			t.Errorf("EnsureKeys with another secrets key = %v, want errWrongSecretsKey", err)
		}
	})
	t.Run("kid bound to its row", func(t *testing.T) {
		// Swapping two rows' ciphertexts must not hand one key out as another.
		db.Exec(t, `UPDATE keys SET private_jwk = (SELECT private_jwk FROM keys WHERE use = 'enc') WHERE use = 'sig'`)
		if err := newStore(t, db, secrets).Refresh(ctx); !errors.Is(err, errWrongSecretsKey) {
			t.Errorf("Refresh after moving a ciphertext = %v, want it refused", err)
		}
	})
}

// TestRotate: a rotation of one algorithm publishes its new key at once,
// signs with it after the publish-ahead, retires its old key after the
// grace, and leaves the other algorithm's key alone.
func TestRotate(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	clock := &testclock.Offset{} // real time moved on: never behind the database's clock, which stamps the keys
	s, err := New(db.Pool, randomKey(t), WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	old, _ := s.SigningKey(ctx, jose.ES256)
	rsaKey, _ := s.SigningKey(ctx, jose.RS256)
	const ahead, grace = time.Minute, 10 * time.Minute
	newKid, err := s.Rotate(ctx, jose.ES256, ahead, grace)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}

	check := func(when string, wantSigner string, wantPublished []string) {
		t.Helper()
		signer, err := s.SigningKey(ctx, jose.ES256)
		if err != nil || signer.KeyID != wantSigner {
			t.Errorf("%s: signing ES256 with %s (%v), want %s", when, signer.KeyID, err, wantSigner)
		}
		if other, err := s.SigningKey(ctx, jose.RS256); err != nil || other.KeyID != rsaKey.KeyID {
			t.Errorf("%s: signing RS256 with %s (%v), want the untouched %s", when, other.KeyID, err, rsaKey.KeyID)
		}
		public, err := s.PublicSigningKeys(ctx)
		wantPublished = append(wantPublished, rsaKey.KeyID)
		slices.Sort(wantPublished)
		if err != nil || !slices.Equal(kids(public), wantPublished) {
			t.Errorf("%s: JWKS %v (%v), want %v", when, kids(public), err, wantPublished)
		}
	}
	check("right after rotating", old.KeyID, []string{old.KeyID, newKid})
	clock.Advance(ahead - 5*time.Second)
	check("just before the publish-ahead ends", old.KeyID, []string{old.KeyID, newKid})
	clock.Advance(10 * time.Second)
	check("after publish-ahead", newKid, []string{old.KeyID, newKid})
	clock.Advance(grace)
	check("after the grace", newKid, []string{newKid})
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the grace, reloaded", newKid, []string{newKid})
	if _, err := s.Rotate(ctx, jose.ES256, -time.Second, 0); err == nil {
		t.Errorf("Rotate with a negative publish-ahead succeeded")
	}
}

// TestRotateAll rotates the key of every algorithm at once.
func TestRotateAll(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	s := newStore(t, db, randomKey(t))
	if err := s.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	before := map[jose.SignatureAlgorithm]string{}
	for _, alg := range contract.SigningAlgorithms {
		k, _ := s.SigningKey(ctx, alg)
		before[alg] = k.KeyID
	}
	newKids, err := s.RotateAll(ctx, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(newKids) != len(contract.SigningAlgorithms) {
		t.Fatalf("RotateAll made %v, want one key per algorithm", newKids)
	}
	for _, alg := range contract.SigningAlgorithms {
		k, err := s.SigningKey(ctx, alg)
		if err != nil || k.KeyID != newKids[alg] || k.KeyID == before[alg] || k.Algorithm != string(alg) {
			t.Errorf("%s signer after RotateAll: %s (%v), want the new %s", alg, k.KeyID, err, newKids[alg])
		}
	}
	if public, _ := s.PublicSigningKeys(ctx); len(public) != 4 {
		t.Errorf("JWKS after RotateAll: %v, want the old and the new key of each algorithm", kids(public))
	}
}

func TestRotateWithoutKeys(t *testing.T) {
	s := newStore(t, pgtest.New(t), randomKey(t))
	ctx := context.Background()
	kid, err := s.Rotate(ctx, jose.ES256, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if signer, err := s.SigningKey(ctx, jose.ES256); err != nil || signer.KeyID != kid {
		t.Errorf("first key ever, rotated in with an hour's publish-ahead: signer %q (%v), want it signing at once", signer.KeyID, err)
	}
}

func TestCache(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	secrets := randomKey(t)
	writer := newStore(t, db, secrets)
	if err := writer.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	reader := newStore(t, db, secrets)
	first, err := reader.PublicSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	newKid, err := writer.Rotate(ctx, jose.ES256, time.Minute, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := reader.PublicSigningKeys(ctx)
	if !slices.Equal(kids(cached), kids(first)) {
		t.Errorf("a read within the TTL queried the database (saw %v)", kids(cached))
	}
	if err := reader.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	refreshed, _ := reader.PublicSigningKeys(ctx)
	if !slices.Contains(kids(refreshed), newKid) {
		t.Errorf("after Refresh the JWKS %v lacks the new key %s", kids(refreshed), newKid)
	}
}

// TestStaleCacheNeverWaitsForThePool: once loaded, reads never wait for a
// pool connection — a token request holding the pool's last connection in
// its transaction must still get the signing key (else a small pool
// deadlocks under load) — and a background reload picks up changes.
func TestStaleCacheNeverWaitsForThePool(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg := db.Pool.Config()
	cfg.MaxConns = 1
	small, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	secretsKey := randomKey(t)
	clock := &testclock.Offset{}
	s, err := New(small, secretsKey, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	first, err := s.SigningKey(ctx, jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	s.SetCacheTTL(time.Millisecond)
	clock.Advance(time.Second) // the cache is stale

	held, err := small.Acquire(ctx) // the pool's only connection
	if err != nil {
		t.Fatal(err)
	}
	readCtx, cancel := context.WithTimeout(ctx, time.Second)
	start := time.Now()
	got, err := s.SigningKey(readCtx, jose.ES256)
	waited := time.Since(start)
	cancel()
	// Waiting for the pool would end at readCtx's deadline (1 s) with an
	// error; the bound only has to be well below it (-race is slow).
	if err != nil || got.KeyID != first.KeyID || waited > 500*time.Millisecond {
		t.Fatalf("stale read with an exhausted pool: kid %v err %v after %v (want the cached key at once)", got.KeyID, err, waited)
	}
	held.Release()

	other := newStore(t, db, secretsKey)
	newKid, err := other.Rotate(ctx, jose.ES256, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := s.SigningKey(ctx, jose.ES256)
		if err == nil && got.KeyID == newKid {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the background reload never picked up the rotated key %s (still %s, %v)", newKid, got.KeyID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
