package authz

import (
	"context"
	"errors"
	"net/http"

	"github.com/ory/fosite"
)

// maxFormBody bounds the body of the token, introspection and revocation
// requests.
const maxFormBody = 64 << 10

// handleToken exchanges a code (with its PKCE verifier) or a refresh token.
// The whole exchange runs in one transaction (store.WithTokenTx), in which
// the code's row is locked from its first read, so that of concurrent
// redemptions of one code exactly one gets tokens and the others are
// answered invalid_grant and revoke what the code issued.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		s.accessError(ctx, w, nil, fosite.ErrInvalidRequest.WithHint("The request body cannot be parsed."))
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "authorization_code", "refresh_token":
	case "":
		s.accessError(ctx, w, nil, fosite.ErrInvalidRequest.WithHint("grant_type is required."))
		return
	default:
		s.accessError(ctx, w, nil, fosite.ErrUnsupportedGrantType.WithHint("Supported grant types: authorization_code, refresh_token."))
		return
	}

	var ar fosite.AccessRequester
	var resp fosite.AccessResponder
	err := s.store.WithTokenTx(ctx, func(ctx context.Context) error {
		var err error
		if ar, err = s.provider.NewAccessRequest(ctx, r, newSession()); err != nil {
			return err
		}
		resp, err = s.provider.NewAccessResponse(ctx, ar)
		return err
	})
	if err != nil {
		s.accessError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// accessError writes an RFC 6749 §5.2 error; a dependency that is down is
// 503 temporarily_unavailable, never a 500.
func (s *Server) accessError(ctx context.Context, w http.ResponseWriter, ar fosite.AccessRequester, err error) {
	var rfc *fosite.RFC6749Error
	switch {
	case unavailable(err):
		err = temporarilyUnavailable.WithWrap(err)
	case !errors.As(err, &rfc):
		// Not a protocol error: the transaction (begin or commit) failed.
		err = fosite.ErrServerError.WithWrap(err)
	}
	if ar == nil {
		ar = fosite.NewAccessRequest(newSession())
	}
	clientID := ""
	if ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
	}
	s.logError(ctx, "token", clientID, err)
	s.provider.WriteAccessError(ctx, w, ar, err)
}
