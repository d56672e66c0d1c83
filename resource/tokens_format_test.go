package resource

import (
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/numverify/numverify/internal/contract"
)

// TestOnlyTheConfiguredJWTFormat: a resource server in jwt mode (nested,
// ECDH-ES) refuses direct (dir) tokens, and one in jwt-dir mode refuses
// nested tokens, with 401 (v0 code 41) — even when its key source holds
// keys of both kinds — and neither asks for keys again because of them.
func TestOnlyTheConfiguredJWTFormat(t *testing.T) {
	is := newTestIssuer(t)
	for _, tc := range []struct {
		format  TokenFormat
		valid   func() string
		refused func() string
	}{
		{FormatJWT, func() string { return is.token(testPhone) }, func() string { return is.direct(is.claims(testPhone)) }},
		{FormatJWTDirect, func() string { return is.direct(is.claims(testPhone)) }, func() string { return is.token(testPhone) }},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			ts := startServer(t, is, func(c *Config) { c.TokenFormat = tc.format })
			if r := ts.do(t, verifyCall(tc.valid())); r.status != 200 {
				t.Fatalf("token of the configured format: %d %s", r.status, r.body)
			}
			jwksBefore := is.jwksHits.Load()
			for _, base := range []string{basePathV2, basePathV0} {
				c := verifyCall(tc.refused())
				c.path = base + "/verify"
				r := ts.do(t, c)
				if r.status != 401 {
					t.Fatalf("%s: token of the other format: %d %s, want 401", base, r.status, r.body)
				}
				if base == basePathV0 && r.errorCode() != "41" {
					t.Errorf("v0 code %s, want 41", r.errorCode())
				}
			}
			if tc.format == FormatJWTDirect {
				// A nested token sealed to a kid the server does not hold either.
				other := must(contract.SealNested(is.claims(testPhone), is.signingKey("sig-1"),
					jose.JSONWebKey{Key: &is.encKey.PublicKey, KeyID: "enc-other"}))
				if r := ts.do(t, verifyCall(other)); r.status != 401 {
					t.Errorf("nested token with an unknown kid in jwt-dir mode: %d", r.status)
				}
			}
			if got := is.jwksHits.Load(); got != jwksBefore {
				t.Errorf("tokens of the other format made %d JWKS fetches, want none", got-jwksBefore)
			}
		})
	}
}
