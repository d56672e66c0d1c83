package sim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// With IDTokenSignatureEvery 4, the relying party verifies the signature of
// the 1st, 5th, 9th… ID token: a forged one is refused there and passes
// between them; an unsigned one (alg none) is refused every time, as is one
// for another audience; with 1 every forged token is refused.
func TestIDTokenSignatureEvery(t *testing.T) {
	op := newFakeOperator(t, "http://127.0.0.1:1/callback")
	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key *rsa.PrivateKey, aud string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		raw, err := jwt.Signed(signer).Claims(map[string]any{"iss": op.srv.URL, "aud": aud, "sub": "s",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	claims, _ := json.Marshal(map[string]any{"iss": op.srv.URL, "aud": op.clientID, "sub": "s",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()})
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(claims) + "."
	genuine, forged, elsewhere := sign(op.key, op.clientID), sign(forger, op.clientID), sign(op.key, "another-sp")

	ctx := context.Background()
	accepted := func(every int, raws ...string) []bool {
		cfg := op.rpConfig()
		cfg.IDTokenSignatureEvery = every
		rp, err := NewRelyingParty(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got []bool
		for _, raw := range raws {
			_, _, err := rp.verifyIDToken(ctx, raw)
			got = append(got, err == nil)
		}
		return got
	}
	repeat := func(raw string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = raw
		}
		return out
	}
	check := func(name string, got []bool, want ...bool) {
		t.Helper()
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: accepted %v, want %v", name, got, want)
				return
			}
		}
	}
	check("genuine, every 4", accepted(4, repeat(genuine, 6)...), true, true, true, true, true, true)
	check("forged, every 4", accepted(4, repeat(forged, 6)...), false, true, true, true, false, true)
	check("forged, every 1", accepted(1, repeat(forged, 3)...), false, false, false)
	check("unsigned, every 4", accepted(4, repeat(unsigned, 3)...), false, false, false)
	check("another audience, every 4", accepted(4, repeat(elsewhere, 3)...), false, false, false)
}
