package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"
)

// Client authentication at /token, /introspect and /revoke: fosite's own
// (client_secret_basic, client_secret_post, private_key_jwt with the
// assertion's signature, iss, sub, aud and jti checked, the jti recorded
// until it expires), plus what RFC 7523 and the CAMARA ICM profile add:
// iat and exp are required and at most maxAssertionLifetime apart, and a
// replayed jti is invalid_client (401), not fosite's non-standard jti_known.

const (
	clientAssertionType  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxAssertionLifetime = 300 * time.Second
)

// assertionAlgorithms are the algorithms a client's JWTs (assertions and
// request objects) may use; fosite checks each client's own.
var assertionAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// clientAuthentication wraps fosite's default strategy; provider is set once
// the provider exists (the strategy is part of the provider's config).
type clientAuthentication struct {
	provider *fosite.Fosite
	// allowClient spends one request of a client's budget at /token.
	allowClient func(clientID string) (bool, time.Duration)
}

func (a *clientAuthentication) authenticate(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	if form.Get("client_assertion_type") == clientAssertionType {
		if err := checkAssertionLifetime(form.Get("client_assertion")); err != nil {
			return nil, err
		}
	}
	client, err := a.provider.DefaultClientAuthenticationStrategy(ctx, r, form)
	var rfc *fosite.RFC6749Error
	switch {
	case err == nil && isTokenEndpoint(ctx):
		// The client's budget is spent only once it has proven who it is.
		if ok, retry := a.allowClient(client.GetID()); !ok {
			return nil, rateLimitError(retry, reasonRateLimitedClient)
		}
		return client, nil
	case err == nil:
		return client, nil
	case errors.Is(err, fosite.ErrJTIKnown):
		return nil, fosite.ErrInvalidClient.WithHint("The client assertion's jti was already used.").WithWrap(err)
	case !errors.As(err, &rfc) && !unavailable(err):
		// fosite passes some assertion failures (an expired token) through
		// as plain errors, which would be a 500.
		return nil, fosite.ErrInvalidClient.WithHint("The client assertion is not valid.").WithWrap(err)
	}
	return nil, err
}

// checkAssertionLifetime refuses an assertion without iat and exp or whose
// exp is more than maxAssertionLifetime after iat. It reads the claims
// before fosite verifies the signature, which is safe: it can only refuse.
func checkAssertionLifetime(assertion string) error {
	iat, exp, err := unverifiedLifetime(assertion)
	if err != nil {
		return fosite.ErrInvalidClient.WithHint("The client assertion is not a signed JWT with iat and exp.")
	}
	if lifetime := exp.Sub(iat); lifetime <= 0 || lifetime > maxAssertionLifetime {
		return fosite.ErrInvalidClient.WithHintf("The client assertion's exp must be after its iat and at most %d seconds later.", int(maxAssertionLifetime.Seconds()))
	}
	if !exp.After(time.Now()) {
		return fosite.ErrInvalidClient.WithHint("The client assertion has expired.")
	}
	return nil
}

// unverifiedLifetime returns the iat and exp of a compact JWS, unverified.
func unverifiedLifetime(token string) (iat, exp time.Time, err error) {
	parsed, err := jwt.ParseSigned(token, assertionAlgorithms)
	if err != nil {
		return iat, exp, err
	}
	var claims struct {
		IssuedAt *jwt.NumericDate `json:"iat"`
		Expiry   *jwt.NumericDate `json:"exp"`
	}
	if err := parsed.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return iat, exp, err
	}
	if claims.IssuedAt == nil || claims.Expiry == nil {
		return iat, exp, errors.New("iat and exp are required")
	}
	return claims.IssuedAt.Time(), claims.Expiry.Time(), nil
}
