package authz_test

import (
	"context"
	"testing"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/internal/pgtest"
)

// newTestKeys is the real key store on the test database, with its keys
// made (a signing key of each algorithm), and what the resource server opens
// access tokens with.
func newTestKeys(t testing.TB, db *pgtest.DB, secretsKey []byte, opts ...keystore.Option) (*keystore.Store, contract.Keys) {
	t.Helper()
	ks, err := keystore.New(db.Pool, secretsKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.EnsureKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ks, resourceKeys(t, ks)
}

// resourceKeys opens access tokens the way the resource server does.
func resourceKeys(t testing.TB, k authz.Keys) contract.Keys {
	ctx := context.Background()
	return contract.Keys{
		Decryption: func(kid string) (any, bool) {
			enc, err := k.EncryptionKey(ctx)
			if err == nil && enc.KeyID == kid {
				return enc.Key, true
			}
			id, key, err := k.DirectKey(ctx)
			return key, err == nil && id == kid
		},
		Verification: func(kid string) (any, bool) {
			keys, err := k.PublicSigningKeys(ctx)
			if err != nil {
				t.Errorf("public keys: %v", err)
				return nil, false
			}
			for _, key := range keys {
				if key.KeyID == kid {
					return key.Key, true
				}
			}
			return nil, false
		},
	}
}
