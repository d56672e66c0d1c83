package authz

import (
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	fositejwt "github.com/ory/fosite/token/jwt"
)

// Session is what fosite keeps with every code and token: the ID-token
// claims (pairwise subject, auth_time, amr), and the subscriber's number,
// which only the resource server reads (inside the encrypted access token,
// or from /introspect). It round-trips through JSON in Postgres.
type Session struct {
	openid.DefaultSession
	// PhoneNumber is the MSISDN the network resolved (E.164).
	PhoneNumber string `json:"phone_number,omitempty"`
	// TokenID is the jti of the access token last issued with this session;
	// the store records it so that revocation reaches offline validators.
	TokenID string `json:"token_id,omitempty"`
}

var (
	_ openid.Session = (*Session)(nil)
	_ fosite.Session = (*Session)(nil)
	// The store saves the jti of a session that reports one.
	_ interface{ AccessTokenID() string } = (*Session)(nil)
)

// newSession returns the empty session fosite fills from storage.
func newSession() *Session {
	return &Session{DefaultSession: openid.DefaultSession{
		Claims:  &fositejwt.IDTokenClaims{},
		Headers: &fositejwt.Headers{},
	}}
}

// newLoginSession is the session of a subscriber the network recognised at
// requestedAt. AuthTime equals RequestedAt: fosite answers login_required to
// an auth_time after the request under prompt=none.
func newLoginSession(subject, msisdn string, requestedAt time.Time, amr string) *Session {
	s := newSession()
	s.Subject = subject
	s.PhoneNumber = msisdn
	s.Claims.Subject = subject
	s.Claims.RequestedAt = requestedAt
	s.Claims.AuthTime = requestedAt
	s.Claims.AuthenticationMethodsReferences = []string{amr}
	return s
}

// AccessTokenID is the jti of the access token issued with this session.
func (s *Session) AccessTokenID() string { return s.TokenID }

// Clone returns a deep copy (fosite clones sessions between requests).
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(*Session)
}
