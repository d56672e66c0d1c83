package contract

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func testClaims() AccessClaims {
	now := time.Now()
	return AccessClaims{
		Issuer: "http://localhost:9090", Subject: "pairwise", Audience: jwt.Audience{DefaultAudience},
		ClientID: "c1", Scope: ScopeVerify, AMR: []string{AMRNetwork},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
		ID: "jti-1", PhoneNumber: "+33612345678",
	}
}

func TestSealOpenNested(t *testing.T) {
	sigKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	encKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	token, err := SealNested(testClaims(),
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: sigKey, KeyID: "sig1"}},
		jose.JSONWebKey{Key: &encKey.PublicKey, KeyID: "enc1"})
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys{
		Decryption:   func(kid string) (any, bool) { return encKey, kid == "enc1" },
		Verification: func(kid string) (any, bool) { return &sigKey.PublicKey, kid == "sig1" },
	}
	claims, err := Open(token, keys)
	if err != nil {
		t.Fatal(err)
	}
	if claims.PhoneNumber != "+33612345678" || !claims.NetworkAuthenticated() || claims.ID != "jti-1" {
		t.Fatalf("claims = %+v", claims)
	}
	// Signed by someone else: the signature must not verify.
	forged := keys
	forged.Verification = func(string) (any, bool) { return &otherKey.PublicKey, true }
	if _, err := Open(token, forged); !errors.Is(err, errBadSignature) {
		t.Fatalf("foreign signer: %v", err)
	}
	// Encrypted for someone else.
	wrongDecrypt := keys
	wrongDecrypt.Decryption = func(string) (any, bool) { return otherKey, true }
	if _, err := Open(token, wrongDecrypt); !errors.Is(err, errBadSignature) {
		t.Fatalf("wrong decryption key: %v", err)
	}
	if _, err := Open(token[:len(token)-4]+"AAAA", keys); err == nil {
		t.Fatal("tampered token opened")
	}
	if _, err := Open("not-a-token", keys); !errors.Is(err, errMalformed) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestSealOpenDirect(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	token, err := SealDirect(testClaims(), key, "dir1")
	if err != nil {
		t.Fatal(err)
	}
	keys := Keys{Decryption: func(kid string) (any, bool) { return key, kid == "dir1" }}
	claims, err := Open(token, keys)
	if err != nil || claims.PhoneNumber != "+33612345678" {
		t.Fatalf("open: %+v %v", claims, err)
	}
	other := make([]byte, 32)
	if _, err := Open(token, Keys{Decryption: func(string) (any, bool) { return other, true }}); !errors.Is(err, errBadSignature) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestScopes(t *testing.T) {
	for _, tc := range []struct {
		scope string
		perm  Permission
		ok    bool
	}{
		{"number-verification:verify", PermissionVerify, true},
		{"number-verification:device-phone-number:read", PermissionShare, true},
		{"number-verification-verify-read", PermissionVerify, true},
		{"number-verification-share-read", PermissionShare, true},
		{"dpv:FraudPreventionAndDetection#number-verification-verify-read", PermissionVerify, true},
		{"dpv:FraudPreventionAndDetection#number-verification:device-phone-number:read", PermissionShare, true},
		{"dpv:FraudPreventionAndDetection", permissionNone, true},
		{"openid", permissionNone, true},
		{"dpv:Marketing#number-verification:verify", permissionNone, false},
		{"dpv:FraudPreventionAndDetection#openid", permissionNone, false},
		{"number-verification:verify ", permissionNone, false},
		{"", permissionNone, false},
	} {
		p, ok := ScopePermission(tc.scope)
		if p != tc.perm || ok != tc.ok {
			t.Errorf("ScopePermission(%q) = %v, %v; want %v, %v", tc.scope, p, ok, tc.perm, tc.ok)
		}
	}
	values, perms, unknown := ParseScope("openid  dpv:FraudPreventionAndDetection number-verification-share-read bogus")
	if len(values) != 3 || !perms.Share || perms.Verify || len(unknown) != 1 {
		t.Fatalf("ParseScope = %v %+v %v", values, perms, unknown)
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"openid number-verification:verify", "dpv:FraudPreventionAndDetection#number-verification-verify-read", "", "   ", "a#b#c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		values, perms, unknown := ParseScope(s)
		if len(values) > MaxScopes {
			t.Fatalf("%d values", len(values))
		}
		for _, v := range values {
			p, ok := ScopePermission(v)
			if !ok {
				t.Fatalf("accepted %q that ScopePermission refuses", v)
			}
			if p == PermissionVerify && !perms.Verify || p == PermissionShare && !perms.Share {
				t.Fatalf("permission of %q lost", v)
			}
		}
		_ = unknown
	})
}

// TestOpenOneAlgorithm: Keys.Algorithm refuses the other way of sealing as
// malformed, without looking up any key.
func TestOpenOneAlgorithm(t *testing.T) {
	sigKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	encKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dirKey := make([]byte, 32)
	nested, err := SealNested(testClaims(),
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: sigKey, KeyID: "sig1"}},
		jose.JSONWebKey{Key: &encKey.PublicKey, KeyID: "enc1"})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := SealDirect(testClaims(), dirKey, "dir1")
	if err != nil {
		t.Fatal(err)
	}
	lookups := 0
	keysFor := func(alg jose.KeyAlgorithm) Keys {
		return Keys{Algorithm: alg,
			Decryption: func(kid string) (any, bool) {
				lookups++
				if kid == "dir1" {
					return dirKey, true
				}
				return encKey, kid == "enc1"
			},
			Verification: func(kid string) (any, bool) { return &sigKey.PublicKey, kid == "sig1" },
		}
	}
	for _, tc := range []struct {
		name  string
		token string
		alg   jose.KeyAlgorithm
		ok    bool
	}{
		{"nested as nested", nested, NestedKeyAlgorithm, true},
		{"direct as direct", direct, DirectKeyAlgorithm, true},
		{"direct where nested", direct, NestedKeyAlgorithm, false},
		{"nested where direct", nested, DirectKeyAlgorithm, false},
		{"nested, any", nested, "", true},
		{"direct, any", direct, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookups = 0
			_, err := Open(tc.token, keysFor(tc.alg))
			if tc.ok && err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !tc.ok && (!errors.Is(err, errMalformed) || lookups != 0) {
				t.Fatalf("Open = %v after %d key lookups, want errMalformed before any", err, lookups)
			}
		})
	}
}
