package resource

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/numverify/numverify/internal/contract"
)

// principal is what a validated access token says about the call.
type principal struct {
	clientID    string
	jti         string
	phoneNumber string // E.164 with '+'
	permissions contract.Permissions
	network     bool // amr contains "nba"
	expiresAt   time.Time
	issuedAt    time.Time // zero when the token has no iat
}

// tokenValidator turns a bearer token into a principal, or an *apiError
// (401 for every kind of bad token; 503 when the authority cannot be asked).
type tokenValidator interface {
	validate(ctx context.Context, token string) (principal, error)
	// ready reports whether tokens can be validated now (keys known).
	ready(ctx context.Context) error
}

// maxTokenLength bounds what is parsed as a token at all.
const maxTokenLength = 8192

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header (RFC 6750 §2.1). No header, or another scheme, is "no credentials";
// a Bearer header whose value is not a b64token is an invalid token.
func bearerToken(header string) (string, *apiError) {
	if header == "" {
		return "", &errMissingCredentials
	}
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", &errMissingCredentials
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > maxTokenLength || !isB64Token(token) {
		return "", errInvalidCredentials.with("The access token is malformed.")
	}
	return token, nil
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			b == '-' || b == '.' || b == '_' || b == '~' || b == '+' || b == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// Why a token's claims are refused.
var (
	errTokenExpired     = errors.New("expired")
	errTokenNotYetValid = errors.New("not yet valid")
	errTokenIssuer      = errors.New("wrong issuer")
	errTokenAudience    = errors.New("wrong audience")
	errTokenNoExpiry    = errors.New("no expiry")
)

// claimChecks are the checks every token passes whatever its format.
type claimChecks struct {
	issuer   string
	audience string
	skew     time.Duration
	now      func() time.Time
}

// check validates time, issuer and audience. audiences may be empty only
// when allowEmptyAudience (introspection answers without aud).
func (cc claimChecks) check(issuer string, audiences []string, allowEmptyAudience bool, exp, nbf, iat time.Time) error {
	now := cc.now()
	switch {
	case exp.IsZero():
		return errTokenNoExpiry
	case !now.Before(exp.Add(cc.skew)):
		return errTokenExpired
	case !nbf.IsZero() && now.Add(cc.skew).Before(nbf):
		return errTokenNotYetValid
	case !iat.IsZero() && now.Add(cc.skew).Before(iat):
		return errTokenNotYetValid
	case issuer != cc.issuer:
		return errTokenIssuer
	case len(audiences) == 0 && allowEmptyAudience:
		return nil
	case !slices.Contains(audiences, cc.audience):
		return errTokenAudience
	}
	return nil
}

// claimError is the 401 a refused claim gets.
func claimError(err error) *apiError {
	switch {
	case errors.Is(err, errTokenExpired):
		return errExpiredCredentials.with("The access token expired.")
	case errors.Is(err, errTokenNotYetValid):
		return errInvalidCredentials.with("The access token is not valid yet.")
	case errors.Is(err, errTokenIssuer):
		return errInvalidCredentials.with("The access token was issued by another authority.")
	case errors.Is(err, errTokenAudience):
		return errInvalidCredentials.with("The access token is not meant for this server.")
	default:
		return errInvalidCredentials.with("The access token is invalid.")
	}
}

func principalFromClaims(c contract.AccessClaims) principal {
	_, perms, _ := contract.ParseScope(c.Scope)
	return principal{
		clientID:    c.ClientID,
		jti:         c.ID,
		phoneNumber: c.PhoneNumber,
		permissions: perms,
		network:     c.NetworkAuthenticated(),
		expiresAt:   c.ExpiresAt(),
		issuedAt:    c.IssuedAt.Time(),
	}
}
