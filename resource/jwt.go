package resource

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/numverify/numverify/internal/contract"
)

// jwtValidator validates a JWT format offline: contract.Open decrypts
// with this server's key and verifies the signature with the authorization
// server's JWKS (FormatJWT, nested tokens) or authenticates with the shared
// key (FormatJWTDirect, direct tokens); then time, issuer and audience are
// checked. A token sealed the other way is refused before any key lookup.
// No request leaves the process unless a kid is unknown.
type jwtValidator struct {
	rings  []*keyRing // decryption, then (nested) the issuer's JWKS
	keys   contract.Keys
	checks claimChecks
}

func newJWTValidator(ctx context.Context, cfg Config, disco *discovery, m *metrics, log *slog.Logger, wg *sync.WaitGroup) *jwtValidator {
	v := &jwtValidator{
		checks: claimChecks{issuer: cfg.Issuer, audience: cfg.Audience, skew: cfg.ClockSkew, now: cfg.Now},
	}
	if cfg.TokenFormat == FormatJWTDirect {
		decryption := newKeyRing(ctx, "decryption keys", cfg.DecryptionKeys, acceptDirectKey,
			cfg.KeyGrace, cfg.KeyRefreshInterval, cfg.Now, log, m)
		v.rings = []*keyRing{decryption}
		v.keys = contract.Keys{Algorithm: contract.DirectKeyAlgorithm, Decryption: decryption.lookup,
			Verification: func(string) (any, bool) { return nil, false }}
	} else {
		decryption := newKeyRing(ctx, "decryption keys", cfg.DecryptionKeys, acceptNestedDecryptionKey,
			cfg.KeyGrace, cfg.KeyRefreshInterval, cfg.Now, log, m)
		verification := newKeyRing(ctx, "issuer JWKS", disco.fetchJWKS, acceptVerificationKey,
			0, cfg.KeyRefreshInterval, cfg.Now, log, m)
		v.rings = []*keyRing{decryption, verification}
		v.keys = contract.Keys{Algorithm: contract.NestedKeyAlgorithm, Decryption: decryption.lookup,
			Verification: verification.lookup}
	}
	for _, ring := range v.rings {
		wg.Add(1)
		go func() { defer wg.Done(); ring.run(ctx) }()
	}
	return v
}

func (v *jwtValidator) validate(_ context.Context, token string) (principal, error) {
	claims, err := contract.Open(token, v.keys)
	if err != nil {
		if errors.Is(err, contract.ErrUnknownKey) {
			return principal{}, errInvalidCredentials.with("The access token names an unknown key.")
		}
		return principal{}, errInvalidCredentials.with("The access token is invalid.")
	}
	var nbf, iat = claims.NotBefore, claims.IssuedAt
	if err := v.checks.check(claims.Issuer, claims.Audience, false, claims.ExpiresAt(),
		nbf.Time(), iat.Time()); err != nil {
		return principal{}, claimError(err)
	}
	return principalFromClaims(claims), nil
}

func (v *jwtValidator) ready(context.Context) error {
	var problems []error
	for _, ring := range v.rings {
		problems = append(problems, ring.ready())
	}
	return errors.Join(problems...)
}
