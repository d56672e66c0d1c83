package authz

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/httpx"
)

// handleIntrospect answers RFC 7662 introspection to an authenticated
// client. A resource-server client (CanReadPhoneNumber) may introspect any
// token and is the only one told the phone_number; any other client learns
// only about its own tokens.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := readForm(w, r); err != nil {
		s.accessError(ctx, w, nil, err)
		return
	}
	caller, err := s.provider.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		s.accessError(ctx, w, nil, err)
		return
	}
	httpx.SetClientID(ctx, caller.GetID())
	token := r.PostForm.Get("token")
	if token == "" {
		s.accessError(ctx, w, nil, fosite.ErrInvalidRequest.WithHint("token is required."))
		return
	}
	use := fosite.AccessToken
	if r.PostForm.Get("token_type_hint") == "refresh_token" {
		use = fosite.RefreshToken
	}
	tokenUse, ar, err := s.provider.IntrospectToken(ctx, token, use, newSession())
	if unavailable(err) {
		s.accessError(ctx, w, nil, err)
		return
	}
	resourceServer := false
	if c, ok := caller.(*store.Client); ok {
		resourceServer = c.CanReadPhoneNumber
	}
	if err != nil || (!resourceServer && ar.GetClient().GetID() != caller.GetID()) {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	writeJSON(w, http.StatusOK, s.introspection(ar, tokenUse, resourceServer))
}

// introspection is the RFC 7662 answer for an active token.
func (s *Server) introspection(ar fosite.AccessRequester, use fosite.TokenUse, withPhoneNumber bool) map[string]any {
	out := map[string]any{
		"active":    true,
		"iss":       s.cfg.Issuer,
		"client_id": ar.GetClient().GetID(),
		"scope":     strings.Join(ar.GetGrantedScopes(), " "),
		"iat":       ar.GetRequestedAt().Unix(),
	}
	sess, _ := ar.GetSession().(*Session)
	if sess == nil {
		return out
	}
	if sub := sess.GetSubject(); sub != "" {
		out["sub"] = sub
	}
	if amr := sess.IDTokenClaims().AuthenticationMethodsReferences; len(amr) > 0 {
		out["amr"] = amr
	}
	if at := sess.IDTokenClaims().AuthTime; !at.IsZero() {
		out["auth_time"] = at.Unix()
	}
	if use == fosite.AccessToken {
		out["token_type"] = "Bearer"
		out["aud"] = s.cfg.AccessTokenAudience
		if exp := sess.GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
			out["exp"] = exp.Unix()
		}
		if sess.TokenID != "" {
			out["jti"] = sess.TokenID
		}
		if withPhoneNumber && sess.PhoneNumber != "" {
			out["phone_number"] = sess.PhoneNumber
		}
	} else {
		out["token_type"] = "refresh_token"
		if exp := sess.GetExpiresAt(fosite.RefreshToken); !exp.IsZero() {
			out["exp"] = exp.Unix()
		}
	}
	return out
}

// handleRevoke is RFC 7009 revocation; revoking a token revokes everything
// its grant issued, recorded (by the store) for offline validators too.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := readForm(w, r); err != nil {
		s.accessError(ctx, w, nil, err)
		return
	}
	err := s.provider.NewRevocationRequest(ctx, r)
	if unavailable(err) {
		s.accessError(ctx, w, nil, err)
		return
	}
	if err != nil {
		s.logError(ctx, "revoke", "", err)
	} else {
		// fosite authenticated the client; name it in the access log.
		httpx.SetClientID(ctx, claimedClientID(r))
	}
	s.provider.WriteRevocationResponse(ctx, w, err)
}

// claimedClientID is the client id a token-endpoint-style request names: the
// Basic user, the client_id parameter, or the issuer of a client assertion's
// (unverified here: call it only once fosite has authenticated the client).
func claimedClientID(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
	}
	if id := r.PostForm.Get("client_id"); id != "" {
		return id
	}
	if assertion := r.PostForm.Get("client_assertion"); assertion != "" {
		if tok, err := jwt.ParseSigned(assertion, assertionAlgorithms); err == nil {
			var claims jwt.Claims
			if tok.UnsafeClaimsWithoutVerification(&claims) == nil {
				return claims.Issuer
			}
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
