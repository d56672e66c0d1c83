package resource

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/numverify/numverify/internal/contract"
)

// jwtValidator validates the jwt format offline: contract.Open decrypts
// with this server's key and verifies the signature with the authorization
// server's JWKS (nested tokens) or authenticates with the shared key (direct
// tokens); then time, issuer and audience are checked. No request leaves the
// process unless a kid is unknown.
type jwtValidator struct {
	decryption   *keyRing
	verification *keyRing
	keys         contract.Keys
	checks       claimChecks
}

func newJWTValidator(ctx context.Context, cfg Config, disco *discovery, m *metrics, log *slog.Logger, wg *sync.WaitGroup) *jwtValidator {
	v := &jwtValidator{
		decryption: newKeyRing(ctx, "decryption keys", cfg.DecryptionKeys, acceptDecryptionKey,
			cfg.KeyGrace, cfg.KeyRefreshInterval, cfg.Now, log, m),
		verification: newKeyRing(ctx, "issuer JWKS", disco.fetchJWKS, acceptVerificationKey,
			0, cfg.KeyRefreshInterval, cfg.Now, log, m),
		checks: claimChecks{issuer: cfg.Issuer, audience: cfg.Audience, skew: cfg.ClockSkew, now: cfg.Now},
	}
	v.keys = contract.Keys{Decryption: v.decryption.lookup, Verification: v.verification.lookup}
	for _, ring := range []*keyRing{v.decryption, v.verification} {
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
	return errors.Join(v.decryption.ready(), v.verification.ready())
}
