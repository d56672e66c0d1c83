package authz

import (
	"errors"
	"mime"
	"net/http"
	"strings"

	"github.com/ory/fosite"
)

// handleUserinfo answers the OpenID Connect UserInfo request: the pairwise
// subject only (no phone scope is offered; the number goes to the resource
// server alone).
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token, err := bearerToken(w, r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="numverify", error="invalid_request"`)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
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

// bearerToken is the access token of a UserInfo request (RFC 6750): in the
// Authorization header (§2.1) or, for a POST, in the form-encoded body
// (§2.2), by one method only (§2). Never in the query (§2.3, kept out of
// access logs and Referer headers): a request that tries is refused, not
// ignored, so the client learns of its mistake. "" when there is none.
func bearerToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if _, ok := r.URL.Query()["access_token"]; ok {
		return "", errors.New("the access token must not be sent in the query: use the Authorization header")
	}
	var found []string
	if headers := r.Header.Values("Authorization"); len(headers) > 1 {
		return "", errors.New("only one Authorization header may be sent")
	} else if len(headers) == 1 {
		scheme, token, _ := strings.Cut(headers[0], " ")
		if token = strings.TrimSpace(token); strings.EqualFold(scheme, "Bearer") && token != "" {
			found = append(found, token)
		}
	}
	if r.Method == http.MethodPost {
		if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType == "application/x-www-form-urlencoded" {
			if err := readForm(w, r); err != nil {
				return "", errors.New("the request body cannot be parsed")
			}
			found = append(found, r.PostForm["access_token"]...)
		}
	}
	switch {
	case len(found) > 1:
		return "", errors.New("the access token must be sent by one method, once")
	case len(found) == 0:
		return "", nil
	case !cleanText(found[0]):
		return "", errors.New("the access token holds a control character or is not UTF-8")
	}
	return found[0], nil
}
