// Package contract is the one thing the authorization server (authz) and the
// resource server (resource) share: what an access token says, how it is
// sealed and opened, what scopes mean, and how revocations are announced. The
// two servers never import each other; both import this.
package contract

import (
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// accessTokenType is the JOSE "typ" of an RFC 9068 JWT access token.
	accessTokenType = "at+jwt"
	// AMRNetwork is the authentication method reference of a silent
	// network-based login ("nba"), the only one Number Verification accepts.
	AMRNetwork = "nba"
	// AMRSIM is the authentication method reference of a login through a
	// TS.43 operator token (RFC 8176 "sim": the device proved its SIM to the
	// operator's entitlement server with EAP-AKA). Number Verification
	// accepts it as network authentication.
	AMRSIM = "sim"
	// AMRPlayground marks a login made from login_hint in playground mode
	// (for SP developers without a SIM): not network-based.
	AMRPlayground = "playground"
	// DefaultAudience is the audience access tokens are issued for, the
	// resource server's base URL in the default local set-up.
	DefaultAudience = "http://localhost:9091"
	// RevocationChannel is the Postgres NOTIFY channel on which the
	// authorization server announces revoked token ids (payload: the jti).
	RevocationChannel = "numverify_revocations"
)

// AccessClaims are the claims of a numverify JWT access token (RFC 9068, plus
// the subscriber's number that only the resource server can read).
type AccessClaims struct {
	Issuer      string           `json:"iss"`
	Subject     string           `json:"sub"`
	Audience    jwt.Audience     `json:"aud"`
	ClientID    string           `json:"client_id"`
	Scope       string           `json:"scope"`
	AMR         []string         `json:"amr"`
	IssuedAt    *jwt.NumericDate `json:"iat"`
	NotBefore   *jwt.NumericDate `json:"nbf,omitempty"`
	Expiry      *jwt.NumericDate `json:"exp"`
	AuthTime    *jwt.NumericDate `json:"auth_time,omitempty"`
	ID          string           `json:"jti"`
	PhoneNumber string           `json:"phone_number"`
}

// NetworkAuthenticated reports whether the login behind the token was made
// by the mobile network: network-based (amr contains "nba") or by the SIM
// through an operator token ("sim").
func (c AccessClaims) NetworkAuthenticated() bool {
	return slices.Contains(c.AMR, AMRNetwork) || slices.Contains(c.AMR, AMRSIM)
}

// ExpiresAt is the token's expiry as a time (zero when absent).
func (c AccessClaims) ExpiresAt() time.Time {
	if c.Expiry == nil {
		return time.Time{}
	}
	return c.Expiry.Time()
}
