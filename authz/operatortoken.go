package authz

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/network"
)

// Logins off the mobile data path (CAMARA NV 2.x): a TS.43 operator token,
// minted by the entitlement server after the device proved its SIM, is
// redeemed (once, by the client it was minted for) through the JWT-bearer
// grant (grant_jwtbearer.go) or CIBA in poll mode (handle_backchannel.go,
// grant_ciba.go). What both share is here: the operator token itself, the
// ICM scope rules, the client's signed JWTs, the pairwise subject.

// Grant types and the login_hint / sub prefix of an operator token.
const (
	grantTypeJWTBearer  = store.GrantTypeJWTBearer
	grantTypeCIBA       = store.GrantTypeCIBA
	operatorTokenPrefix = "operatortoken:"
	// purposePrefix marks a purpose scope (ICM: dpv:<W3C DPV purpose>).
	purposePrefix = "dpv:"
)

// Consent decides whether the subscriber msisdn allows clientID the scopes
// (ICM: "if required by the applicable legal basis"); false refuses the
// request (JWT-bearer: invalid_grant; CIBA: access_denied when polled).
type Consent func(ctx context.Context, clientID, msisdn string, scopes []string) (bool, error)

// backchannel is what the two operator-token grants need.
type backchannel struct {
	tokens   network.OperatorTokenRedeemer // nil: no operator token is accepted
	subjects subjects
	consent  Consent // nil: everyone consents
	now      func() time.Time
	jtis     jtiRecorder
}

// redeem turns login_hint or sub "operatortoken:<token>" into the MSISDN:
// errOperatorToken when the token cannot be redeemed (unknown, used,
// expired, another client's), or the network's own error.
func (b *backchannel) redeem(ctx context.Context, value, clientID string) (string, error) {
	token, ok := strings.CutPrefix(value, operatorTokenPrefix)
	if !ok || token == "" || b.tokens == nil {
		return "", errOperatorToken
	}
	msisdn, err := b.tokens.RedeemOperatorToken(ctx, token, clientID)
	if errors.Is(err, network.ErrOperatorTokenInvalid) {
		return "", errOperatorToken
	}
	return msisdn, err
}

var errOperatorToken = errors.New("operator token cannot be redeemed")

// consents asks the consent hook.
func (b *backchannel) consents(ctx context.Context, clientID, msisdn string, scopes []string) (bool, error) {
	if b.consent == nil {
		return true, nil
	}
	return b.consent(ctx, clientID, msisdn, scopes)
}

// subject is the client's pairwise subject for msisdn, the one its network
// logins get: its sector identifier, or the host of its redirect URIs (one
// host unless a sector identifier is registered), or, for a client without
// redirect URIs, its own id.
func (b *backchannel) subject(client fosite.Client, msisdn string) string {
	var redirect *url.URL
	if uris := client.GetRedirectURIs(); len(uris) > 0 {
		redirect, _ = url.Parse(uris[0])
	}
	sector := sectorOf(client, redirect)
	if sector == "" {
		sector = "client:" + client.GetID()
	}
	return b.subjects.pairwise(sector, msisdn)
}

// checkPurposeScopes applies the CAMARA ICM scope rules of the operator-
// token flows: every value known and allowed to the client, exactly one
// purpose (dpv:…, alone or as the prefix of a scope), and at least one
// Number Verification scope. It returns the scopes to grant (offline_access
// never: these flows issue no refresh token).
func checkPurposeScopes(client fosite.Client, scopes []string) ([]string, error) {
	if n := len(purposesOf(scopes)); n != 1 {
		return nil, fosite.ErrInvalidScope.WithHintf("The scope must hold exactly one purpose (%s…), not %d.", purposePrefix, n)
	}
	if len(scopes) > contract.MaxScopes {
		return nil, fosite.ErrInvalidScope.WithHintf("At most %d scope values.", contract.MaxScopes)
	}
	grant := make([]string, 0, len(scopes))
	api := false
	for _, s := range scopes {
		if s == scopeOfflineAccess {
			continue
		}
		if _, ok := contract.ScopePermission(s); !ok {
			return nil, fosite.ErrInvalidScope.WithHintf("Unknown scope %q.", s)
		}
		if !scopeAllowed(client.GetScopes(), s) {
			return nil, fosite.ErrInvalidScope.WithHintf("The client is not allowed the scope %q.", s)
		}
		api = api || contract.IsNumberVerificationScope(s)
		if !slices.Contains(grant, s) {
			grant = append(grant, s)
		}
	}
	if !api {
		return nil, fosite.ErrInvalidScope.WithHint("The scope must hold a Number Verification scope.")
	}
	return grant, nil
}

// purposesOf lists the distinct purposes among scopes.
func purposesOf(scopes []string) []string {
	var purposes []string
	for _, s := range scopes {
		purpose, _, _ := strings.Cut(s, "#")
		if strings.HasPrefix(purpose, purposePrefix) && !slices.Contains(purposes, purpose) {
			purposes = append(purposes, purpose)
		}
	}
	return purposes
}

// errClientJWT is what verifyClientJWT refuses; callers map it to their
// error (invalid_grant, invalid_request_object).
var errClientJWT = errors.New("not a JWT signed with the client's registered key")

// verifyClientJWT verifies raw's signature with the client's registered
// keys, in the algorithm of its registration, and decodes its claims into
// out (any number of destinations).
func verifyClientJWT(client fosite.Client, raw string, out ...any) error {
	c, ok := client.(*store.Client)
	if !ok || len(c.JWKS) == 0 {
		return errClientJWT
	}
	alg := jose.SignatureAlgorithm(c.GetTokenEndpointAuthSigningAlgorithm())
	parsed, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{alg})
	if err != nil || len(parsed.Headers) != 1 {
		return errClientJWT
	}
	// The key set the store parsed when it loaded the client (for fosite).
	set := c.GetJSONWebKeys()
	if set == nil {
		return errClientJWT
	}
	kid := parsed.Headers[0].KeyID
	for _, k := range set.Keys {
		if (k.Use != "" && k.Use != "sig") || (kid != "" && k.KeyID != kid) {
			continue
		}
		if parsed.Claims(k.Key, out...) == nil {
			return nil
		}
	}
	return errClientJWT
}

// clientJWTClaims are the registered claims of a JWT a client signs (a
// client assertion, a JWT-bearer assertion, a CIBA signed authentication
// request).
type clientJWTClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  json.RawMessage  `json:"aud"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Expiry    *jwt.NumericDate `json:"exp"`
	ID        string           `json:"jti"`
}

// maxClockLeeway is how far in the future a client's iat (or nbf) may be.
const maxClockLeeway = 5 * time.Second

// check applies the ICM rules to a client's JWT received at now: iss the
// client, aud one of audiences (one value), iat and exp present and at most
// maxAssertionLifetime apart, iat not in the future, not expired, jti
// present. It returns what is wrong, for a hint.
func (c clientJWTClaims) check(clientID string, audiences []string, now time.Time) string {
	if !slices.ContainsFunc(audiences, func(a string) bool { return onlyAudience(c.Audience, a) }) {
		return "its aud must be the issuer " + audiences[0] + " (or the endpoint's URL), one value"
	}
	switch {
	case c.Issuer != clientID:
		return "its iss must be the client_id"
	case c.IssuedAt == nil || c.Expiry == nil:
		return "it must carry iat and exp"
	case c.ID == "" || len(c.ID) > 256 || !cleanText(c.ID):
		return "it must carry a jti of at most 256 characters"
	}
	iat, exp := c.IssuedAt.Time(), c.Expiry.Time()
	switch {
	case exp.Sub(iat) <= 0 || exp.Sub(iat) > maxAssertionLifetime:
		return "its exp must be after its iat and at most 300 seconds later"
	case iat.After(now.Add(maxClockLeeway)):
		return "its iat is in the future"
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(maxClockLeeway)):
		return "its nbf is in the future"
	case !exp.After(now):
		return "it has expired"
	}
	return ""
}

// recordJTI spends the jti of a client's JWT (namespaced by its use and
// client) until it expires; false when it was already spent.
func (b *backchannel) recordJTI(ctx context.Context, use, clientID string, c clientJWTClaims) (bool, error) {
	err := b.jtis.SetClientAssertionJWT(ctx, use+":"+clientID+":"+c.ID, c.Expiry.Time())
	if errors.Is(err, fosite.ErrJTIKnown) {
		return false, nil
	}
	return err == nil, err
}

// backchannelSession is the session of a subscriber an operator token
// identified, authenticated at authTime.
func backchannelSession(sess *Session, subject, msisdn, amr string, requestedAt, authTime time.Time) {
	fresh := newLoginSession(subject, msisdn, requestedAt, amr)
	fresh.Claims.AuthTime = authTime
	*sess = *fresh
}

// newBackchannel gathers the operator-token grants' collaborators.
func newBackchannel(deps Deps, subjects subjects, now func() time.Time) *backchannel {
	tokens := deps.OperatorTokens
	if tokens == nil {
		tokens, _ = deps.Resolver.(network.OperatorTokenRedeemer)
	}
	return &backchannel{tokens: tokens, subjects: subjects, consent: deps.Consent, now: now, jtis: deps.Store}
}
