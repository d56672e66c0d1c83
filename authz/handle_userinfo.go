package authz

import (
	"errors"
	"net/http"

	"github.com/ory/fosite"
)

// handleUserinfo answers the OpenID Connect UserInfo request: the pairwise
// subject only (no phone scope is offered; the number goes to the resource
// server alone).
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := fosite.AccessTokenFromRequest(r)
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="numverify"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "A bearer access token is required."})
		return
	}
	_, ar, err := s.provider.IntrospectToken(ctx, token, fosite.AccessToken, newSession(), "openid")
	switch {
	case unavailable(err):
		s.accessError(ctx, w, nil, err)
		return
	case errors.Is(err, fosite.ErrInvalidScope):
		w.Header().Set("WWW-Authenticate", `Bearer realm="numverify", error="insufficient_scope", scope="openid"`)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "insufficient_scope"})
		return
	case err != nil:
		w.Header().Set("WWW-Authenticate", `Bearer realm="numverify", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"sub": ar.GetSession().GetSubject()})
}
