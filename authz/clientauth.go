package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/contract"
)

// Client authentication at /token, /introspect and /revoke: fosite's own
// (client_secret_basic, client_secret_post, private_key_jwt with the
// assertion's signature, iss, sub, aud and jti checked, the jti recorded
// until it expires), plus what RFC 7523 and the CAMARA ICM profile add:
// iat and exp are required and at most maxAssertionLifetime apart, aud is
// the issuer alone, and a replayed jti is invalid_client (401), not fosite's
// non-standard jti_known. Every parameter of the requests that authenticate
// a client is clean text (params.go) before fosite reads one.

const (
	clientAssertionType  = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxAssertionLifetime = 300 * time.Second
)

// assertionAlgorithms are the algorithms a client's JWTs (assertions and
// request objects) may use; fosite checks each client's own.
var assertionAlgorithms = contract.ClientSigningAlgorithms

// clientAuthentication wraps fosite's default strategy; provider is set once
// the provider exists (the strategy is part of the provider's config).
type clientAuthentication struct {
	provider *fosite.Fosite
	// allowClient spends one request of a client's budget at /token.
	allowClient func(clientID string) (bool, time.Duration)
}

func (a *clientAuthentication) authenticate(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	// /introspect and /revoke reach their parameters only through here.
	if err := checkParameterText(form); err != nil {
		return nil, err
	}
	if err := checkParameterText(r.Form); err != nil {
		return nil, err
	}
	if err := checkClientCredentials(r); err != nil {
		return nil, err
	}
	if form.Get("client_assertion_type") == clientAssertionType {
		if err := checkAssertion(form.Get("client_assertion"), a.provider.Config.GetIDTokenIssuer(ctx), time.Now()); err != nil {
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

// checkAssertion refuses an assertion whose aud is not the issuer alone,
// without iat and exp or whose exp is more than maxAssertionLifetime after
// iat, or whose iss, sub or jti is not clean text (they name a client row
// and a jti row). It reads the claims before fosite verifies the
// signature, which is safe: it can only refuse.
//
// aud is the issuer, one value (a string, or an array of just the issuer):
// not the token endpoint's URL nor several audiences, so that an assertion
// made for another server, or for several, is never accepted here (the
// private_key_jwt audience weakness disclosed by the OpenID Foundation in
// 2025; the revision of RFC 7523 in progress also requires the issuer).
func checkAssertion(assertion, issuer string, now time.Time) error {
	claims, err := unverifiedAssertionClaims(assertion)
	if err != nil {
		return fosite.ErrInvalidClient.WithHint("The client assertion is not a signed JWT with iat and exp.")
	}
	if !onlyAudience(claims.Audience, issuer) {
		return fosite.ErrInvalidClient.WithHintf("The client assertion's aud must be the issuer %s, and only it.", issuer)
	}
	if !cleanText(claims.Issuer) || !cleanText(claims.Subject) || !cleanText(claims.ID) {
		return fosite.ErrInvalidClient.WithHint("The client assertion's iss, sub or jti holds a control character.")
	}
	iat, exp := claims.IssuedAt.Time(), claims.Expiry.Time()
	if lifetime := exp.Sub(iat); lifetime <= 0 || lifetime > maxAssertionLifetime {
		return fosite.ErrInvalidClient.WithHintf("The client assertion's exp must be after its iat and at most %d seconds later.", int(maxAssertionLifetime.Seconds()))
	}
	if !exp.After(now) {
		return fosite.ErrInvalidClient.WithHint("The client assertion has expired.")
	}
	return nil
}

// onlyAudience reports whether aud is exactly issuer, as a string or as an
// array of one element.
func onlyAudience(aud json.RawMessage, issuer string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == issuer && issuer != ""
	}
	var many []string
	if json.Unmarshal(aud, &many) == nil {
		return len(many) == 1 && many[0] == issuer && issuer != ""
	}
	return false
}

// unverifiedAssertionClaims returns the claims of a compact JWS, unverified;
// iat and exp are required.
func unverifiedAssertionClaims(token string) (clientJWTClaims, error) {
	var claims clientJWTClaims
	parsed, err := jwt.ParseSigned(token, assertionAlgorithms)
	if err != nil {
		return claims, err
	}
	if err := parsed.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return claims, err
	}
	if claims.IssuedAt == nil || claims.Expiry == nil {
		return claims, errors.New("iat and exp are required")
	}
	return claims, nil
}
