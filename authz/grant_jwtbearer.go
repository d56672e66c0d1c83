package authz

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

// jwtBearerGrant is RFC 7523 §2.1 as CAMARA ICM profiles it for Number
// Verification over an operator token: grant_type
// urn:ietf:params:oauth:grant-type:jwt-bearer with an assertion the client
// signed with its registered key, whose iss is the client, sub
// "operatortoken:<token>", aud this issuer (or the token endpoint), exp at
// most 300 s after iat, a jti never used before, and a scope claim (the
// scope parameter is not sent) with exactly one purpose. The client also
// authenticates, with private_key_jwt. The answer is a short-lived access
// token, amr ["sim"], never a refresh token nor an ID token.
type jwtBearerGrant struct {
	*oauth2.HandleHelper
	*backchannel
	lifetime  time.Duration
	audiences []string // the issuer, then the token endpoint
}

var _ fosite.TokenEndpointHandler = (*jwtBearerGrant)(nil)

// jwtBearerClaims are the assertion's claims.
type jwtBearerClaims struct {
	clientJWTClaims
	Scope string `json:"scope"`
}

func (g *jwtBearerGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(grantTypeJWTBearer)
}

// CanSkipClientAuth: the client authenticates (private_key_jwt).
func (g *jwtBearerGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

func (g *jwtBearerGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	client := ar.GetClient()
	if !client.GetGrantTypes().Has(grantTypeJWTBearer) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed the jwt-bearer grant.")
	}
	if oidc, ok := client.(fosite.OpenIDConnectClient); !ok || oidc.GetTokenEndpointAuthMethod() != store.AuthMethodPrivateKeyJWT {
		return fosite.ErrUnauthorizedClient.WithHint("The jwt-bearer grant needs a client that authenticates with private_key_jwt.")
	}
	form := ar.GetRequestForm()
	if _, sent := form["scope"]; sent {
		return fosite.ErrInvalidRequest.WithHint("The scope parameter must not be sent with the jwt-bearer grant: the assertion's scope claim says it.")
	}
	raw := form.Get("assertion")
	if raw == "" {
		return fosite.ErrInvalidRequest.WithHint("The assertion parameter is required.")
	}
	var claims jwtBearerClaims
	if err := verifyClientJWT(client, raw, &claims); err != nil {
		return fosite.ErrInvalidGrant.WithHint("The assertion is not a JWT signed with the client's registered key.")
	}
	now := g.now()
	if problem := claims.check(client.GetID(), g.audiences, now); problem != "" {
		return fosite.ErrInvalidGrant.WithHintf("The assertion is not valid: %s.", problem)
	}
	if !strings.HasPrefix(claims.Subject, operatorTokenPrefix) {
		return fosite.ErrInvalidGrant.WithHintf("The assertion's sub must be %s<token>.", operatorTokenPrefix)
	}
	if claims.Scope == "" {
		return fosite.ErrInvalidScope.WithHint("The assertion must carry a scope claim.")
	}
	scopes, err := checkPurposeScopes(client, strings.Fields(claims.Scope))
	if err != nil {
		return err
	}
	fresh, err := g.recordJTI(ctx, "jwt-bearer", client.GetID(), claims.clientJWTClaims)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if !fresh {
		return fosite.ErrInvalidGrant.WithHint("The assertion's jti was already used.")
	}
	msisdn, err := g.redeem(ctx, claims.Subject, client.GetID())
	switch {
	case errors.Is(err, errOperatorToken):
		return fosite.ErrInvalidGrant.WithHint("The operator token is unknown, used, expired or was minted for another client.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err)
	}
	if ok, err := g.consents(ctx, client.GetID(), msisdn, scopes); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	} else if !ok {
		return fosite.ErrInvalidGrant.WithHint("The subscriber has not consented to this purpose and scope.")
	}

	sess, ok := ar.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithHint("Unexpected session type.")
	}
	backchannelSession(sess, g.subject(client, msisdn), msisdn, contract.AMRSIM, now, now)
	sess.SetExpiresAt(fosite.AccessToken, now.Add(g.lifetime))
	ar.SetRequestedScopes(scopes)
	for _, s := range scopes {
		ar.GrantScope(s)
	}
	return nil
}

// PopulateTokenEndpointResponse issues the access token, alone.
func (g *jwtBearerGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	_, err := g.IssueAccessToken(ctx, g.lifetime, ar, resp)
	return err
}
