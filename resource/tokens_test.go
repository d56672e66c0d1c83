package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/pgtest"
)

func verifyCall(token string) call {
	return call{method: http.MethodPost, path: basePathV2 + "/verify", token: token, body: str(`{"phoneNumber":"` + testPhone + `"}`)}
}

// TestTokenValidation: the jwt format is refused for every way a token can
// be wrong, and accepted in each way the authorization server may seal it.
func TestTokenValidation(t *testing.T) {
	is := newTestIssuer(t)
	is.addSigningKey("sig-rsa", jose.RS256)
	ts := startServer(t, is, nil)
	foreignSigner := jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), KeyID: "sig-1"}}
	otherResourceKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	valid := is.token(testPhone)
	mutate := func(f func(*contract.AccessClaims)) string {
		c := is.claims(testPhone)
		f(&c)
		return is.nested(c)
	}
	for _, tc := range []struct {
		name   string
		token  string
		status int
		orange string
	}{
		{"nested_es256", valid, 200, ""},
		{"nested_rs256", is.nestedWith(is.claims(testPhone), "sig-rsa"), 200, ""},
		{"direct_in_jwt_mode", is.direct(is.claims(testPhone)), 401, "41"},
		{"signed_by_foreign_key_same_kid", must(contract.SealNested(is.claims(testPhone), foreignSigner, jose.JSONWebKey{Key: &is.encKey.PublicKey, KeyID: is.encKID})), 401, "41"},
		{"encrypted_for_another_server", must(contract.SealNested(is.claims(testPhone), is.signingKey("sig-1"), jose.JSONWebKey{Key: &otherResourceKey.PublicKey, KeyID: is.encKID})), 401, "41"},
		{"unknown_encryption_kid", must(contract.SealNested(is.claims(testPhone), is.signingKey("sig-1"), jose.JSONWebKey{Key: &is.encKey.PublicKey, KeyID: "enc-unknown"})), 401, "41"},
		{"tampered_ciphertext", tamper(valid, 3), 401, "41"},
		{"tampered_tag", tamper(valid, 4), 401, "41"},
		{"tampered_header", tamper(valid, 0), 401, "41"},
		{"truncated", valid[:len(valid)/2], 401, "41"},
		{"wrong_issuer", mutate(func(c *contract.AccessClaims) { c.Issuer = "https://evil.example" }), 401, "41"},
		{"wrong_audience", mutate(func(c *contract.AccessClaims) { c.Audience = jwt.Audience{"https://other-api.example"} }), 401, "41"},
		{"no_audience", mutate(func(c *contract.AccessClaims) { c.Audience = nil }), 401, "41"},
		{"no_expiry", mutate(func(c *contract.AccessClaims) { c.Expiry = nil }), 401, "41"},
		{"expired", mutate(func(c *contract.AccessClaims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }), 401, "42"},
		{"expired_within_skew", mutate(func(c *contract.AccessClaims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-5 * time.Second)) }), 200, ""},
		{"not_yet_valid", mutate(func(c *contract.AccessClaims) { c.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), 401, "41"},
		{"issued_in_future", mutate(func(c *contract.AccessClaims) { c.IssuedAt = jwt.NewNumericDate(time.Now().Add(time.Hour)) }), 401, "41"},
		{"no_phone_number", mutate(func(c *contract.AccessClaims) { c.PhoneNumber = "" }), 403, "50"},
		{"bad_phone_number", mutate(func(c *contract.AccessClaims) { c.PhoneNumber = "0612345678" }), 403, "50"},
		{"no_scope", mutate(func(c *contract.AccessClaims) { c.Scope = "" }), 403, "50"},
		{"scope_with_other_purpose", mutate(func(c *contract.AccessClaims) { c.Scope = "dpv:Marketing#number-verification:verify" }), 403, "50"},
		{"scope_v0", mutate(func(c *contract.AccessClaims) { c.Scope = "number-verification-verify-read" }), 200, ""},
		{"no_amr", mutate(func(c *contract.AccessClaims) { c.AMR = nil }), 403, "52"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, base := range []string{basePathV2, basePathV0} {
				c := verifyCall(tc.token)
				c.path = base + "/verify"
				r := ts.do(t, c)
				if r.status != tc.status {
					t.Fatalf("%s: status %d, want %d: %s", base, r.status, tc.status, r.body)
				}
				if base == basePathV0 && tc.orange != "" && r.errorCode() != tc.orange {
					t.Errorf("v0 code %s, want %s", r.errorCode(), tc.orange)
				}
				if tc.status == 403 && r.errorCode() == "PERMISSION_DENIED" && strings.Contains(tc.name, "scope") &&
					!strings.Contains(r.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// tamper flips a character of one compact-serialization part.
func tamper(token string, part int) string {
	parts := strings.Split(token, ".")
	p := []byte(parts[part])
	i := len(p) / 2
	if p[i] == 'A' {
		p[i] = 'B'
	} else {
		p[i] = 'A'
	}
	parts[part] = string(p)
	return strings.Join(parts, ".")
}

// TestJWKSRefetch: a token signed with a key published after start is
// accepted (one refetch); a flood of unknown kids refetches at most once per
// KeyRefreshInterval.
func TestJWKSRefetch(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, func(c *Config) { c.KeyRefreshInterval = time.Hour })
	before := is.jwksHits.Load()
	is.addSigningKey("sig-2", jose.ES256) // the authorization server rotates
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses { // concurrent first uses of the new kid share one fetch
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = ts.do(t, verifyCall(is.nestedWith(is.claims(testPhone), "sig-2"))).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("request %d with the new kid: %d", i, s)
		}
	}
	if got := is.jwksHits.Load() - before; got != 1 {
		t.Errorf("%d JWKS fetches for one new kid, want 1", got)
	}
	// Unknown kids (forged) within the interval: no fetch at all.
	is.addSigningKey("sig-3", jose.ES256)
	for i := 0; i < 20; i++ {
		if r := ts.do(t, verifyCall(is.nestedWith(is.claims(testPhone), "sig-3"))); r.status != 401 {
			t.Fatalf("kid unknown within the refresh interval: %d", r.status)
		}
	}
	if got := is.jwksHits.Load() - before; got != 1 {
		t.Errorf("%d JWKS fetches after a flood of unknown kids, want still 1", got)
	}
}

// TestDecryptionKeyRotation: a new decryption key is picked up on first
// sight; the previous one keeps working for KeyGrace.
func TestDecryptionKeyRotation(t *testing.T) {
	is := newTestIssuer(t)
	var mu sync.Mutex
	current := []jose.JSONWebKey{{Key: is.encKey, KeyID: "enc-1"}}
	ts := startServer(t, is, func(c *Config) {
		c.KeyRefreshInterval = time.Millisecond
		c.DecryptionKeys = func(context.Context) ([]jose.JSONWebKey, error) {
			mu.Lock()
			defer mu.Unlock()
			return current, nil
		}
	})
	oldToken := is.token(testPhone)
	newKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	mu.Lock()
	current = []jose.JSONWebKey{{Key: newKey, KeyID: "enc-2"}} // the keystore rotated: only the new key
	mu.Unlock()
	newToken := must(contract.SealNested(is.claims(testPhone), is.signingKey("sig-1"), jose.JSONWebKey{Key: &newKey.PublicKey, KeyID: "enc-2"}))
	if r := ts.do(t, verifyCall(newToken)); r.status != 200 {
		t.Fatalf("token for the new key: %d %s", r.status, r.body)
	}
	if r := ts.do(t, verifyCall(oldToken)); r.status != 200 {
		t.Fatalf("token for the previous key within the grace: %d %s", r.status, r.body)
	}
}

// TestRevocation: revoked before start (loaded), revoked while running
// (NOTIFY: refused within a second), revoked while the listener was cut off
// (reloaded on reconnect).
func TestRevocation(t *testing.T) {
	is := newTestIssuer(t)
	db := pgtest.New(t)
	ctx := context.Background()
	early := is.claims(testPhone)
	if err := contract.RecordRevocation(ctx, db.Pool, early.ID, early.ExpiresAt()); err != nil {
		t.Fatal(err)
	}
	ts := startServerOn(t, is, db, nil)
	if r := ts.do(t, verifyCall(is.nested(early))); r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("token revoked before start: %d", r.status)
	}

	live := is.claims(testPhone)
	liveToken := is.nested(live)
	if r := ts.do(t, verifyCall(liveToken)); r.status != 200 {
		t.Fatalf("before revocation: %d", r.status)
	}
	revokedAt := time.Now()
	if err := contract.RecordRevocation(ctx, db.Pool, live.ID, live.ExpiresAt()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "revocation to take effect", func() bool { return ts.do(t, verifyCall(liveToken)).status == 401 })
	t.Logf("revocation took effect in %v", time.Since(revokedAt))

	// Cut the listener's connection; revoke meanwhile; it reloads on reconnect.
	gap := is.claims(testPhone)
	gapToken := is.nested(gap)
	var terminated int
	if err := db.Pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&terminated); err != nil || terminated == 0 {
		t.Fatalf("terminate the listener: %d %v", terminated, err)
	}
	if err := contract.RecordRevocation(ctx, db.Pool, gap.ID, gap.ExpiresAt()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "revocation made while disconnected", func() bool { return ts.do(t, verifyCall(gapToken)).status == 401 })
	if r := ts.do(t, verifyCall(is.token(testPhone))); r.status != 200 {
		t.Errorf("an unrevoked token after reconnect: %d", r.status)
	}
}

// TestSingleUse: with single-use tokens the second call with a token is
// refused, on verify and share alike; failed calls do not use it up.
func TestSingleUse(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, func(c *Config) { c.SingleUseTokens = true })
	token := is.token(testPhone)
	bad := verifyCall(token)
	bad.body = str(`{}`)
	if r := ts.do(t, bad); r.status != 400 {
		t.Fatalf("bad request: %d", r.status)
	}
	if r := ts.do(t, verifyCall(token)); r.status != 200 {
		t.Fatalf("first use: %d %s", r.status, r.body)
	}
	r := ts.do(t, verifyCall(token))
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("second use: %d %s", r.status, r.body)
	}
	share := call{method: "GET", path: basePathV0 + "/device-phone-number", token: is.token(testPhone)}
	if r := ts.do(t, share); r.status != 200 {
		t.Fatalf("share first use: %d", r.status)
	}
	if r := ts.do(t, share); r.status != 401 || r.errorCode() != "41" {
		t.Fatalf("share second use: %d %s", r.status, r.body)
	}
	var n int
	if err := ts.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM used_access_tokens WHERE expires_at > now()`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("used_access_tokens: %d %v", n, err)
	}
	// Concurrent uses of one token: exactly one wins.
	token = is.token(testPhone)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ts.do(t, verifyCall(token)).status == 200 {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent uses succeeded, want 1", wins)
	}
}
