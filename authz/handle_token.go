package authz

import (
	"context"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/httpx"
)

// handleToken exchanges a code (with its PKCE verifier) or a refresh token.
// A code carries its records (sealedcode.go); its exchange writes in one
// statement (store.WithSealedCodeExchange) whose tokens are stored only with
// the code's single use, so that of concurrent redemptions of one code exactly
// one gets tokens and the others are answered invalid_grant and revoke what
// the code issued. A CIBA poll runs in one transaction (store.WithTokenTx),
// which locks its auth_req_id; the other grants need none.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	ctx := withTokenEndpoint(r.Context())
	if err := s.admitClientForm(w, r, "token"); err != nil {
		s.accessError(ctx, w, nil, err)
		return
	}
	switch grant := r.PostForm.Get("grant_type"); grant {
	case "authorization_code", "refresh_token", grantTypeJWTBearer, grantTypeCIBA:
	case "":
		s.accessError(ctx, w, nil, fosite.ErrInvalidRequest.WithHint("grant_type is required."))
		return
	default:
		s.accessError(ctx, w, nil, fosite.ErrUnsupportedGrantType.WithHint("Supported grant types: authorization_code, refresh_token, "+grantTypeJWTBearer+", "+grantTypeCIBA+"."))
		return
	}

	var ar fosite.AccessRequester
	var resp fosite.AccessResponder
	exchange := func(ctx context.Context) error {
		var err error
		if ar, err = s.provider.NewAccessRequest(ctx, r, newSession()); err != nil {
			return err
		}
		resp, err = s.provider.NewAccessResponse(ctx, ar)
		return err
	}
	var err error
	switch grant := r.PostForm.Get("grant_type"); {
	case grant == "authorization_code" && r.PostForm.Get("code") != "":
		// The code carries its records; one statement writes its single use
		// with the tokens.
		code := r.PostForm.Get("code")
		if records, openErr := s.codes.open(code); openErr == nil {
			err = s.store.WithSealedCodeExchange(ctx, records, s.codes.AuthorizeCodeSignature(ctx, code), code, exchange)
		} else {
			err = exchange(ctx) // no such code: fosite answers invalid_grant
		}
	case grant == grantTypeCIBA:
		// The poll locks its auth_req_id until the exchange commits.
		err = s.store.WithTokenTx(ctx, exchange)
	default:
		// Each write is atomic on its own (fosite opens a transaction where
		// it needs one); no connection is held while the network is asked.
		err = exchange(ctx)
	}
	if err != nil {
		s.chargeAuthFailure(r, err)
		s.accessError(ctx, w, ar, err)
		return
	}
	httpx.SetClientID(ctx, ar.GetClient().GetID())
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
	s.metrics.tokens.WithLabelValues(s.cfg.AccessTokenFormat, tokenGrantType(ar)).Inc()
}

// tokenGrantType is the grant of an exchange, as a metric label.
func tokenGrantType(ar fosite.AccessRequester) string {
	for _, grant := range []string{"refresh_token", grantTypeJWTBearer, grantTypeCIBA} {
		if ar.GetGrantTypes().ExactOne(grant) {
			return grant
		}
	}
	return "authorization_code"
}

// accessError writes an RFC 6749 §5.2 error; a dependency that is down is
// 503 temporarily_unavailable, never a 500.
func (s *Server) accessError(ctx context.Context, w http.ResponseWriter, ar fosite.AccessRequester, err error) {
	err = asProtocolError(err)
	if ar == nil {
		ar = fosite.NewAccessRequest(newSession())
	}
	clientID := ""
	if ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
		httpx.SetClientID(ctx, clientID)
	}
	s.logError(ctx, "token", clientID, err)
	if isTokenEndpoint(ctx) {
		s.metrics.tokenErrors.WithLabelValues(fosite.ErrorToRFC6749Error(err).ErrorField).Inc()
	}
	setRetryAfter(w, err)
	s.provider.WriteAccessError(ctx, w, ar, err)
}

// asProtocolError is err as the RFC 6749 error it is answered with: a
// dependency that is down is temporarily_unavailable, anything else that is
// not a protocol error (a transaction whose begin or commit failed)
// server_error.
func asProtocolError(err error) error {
	var rfc *fosite.RFC6749Error
	switch {
	case unavailable(err):
		return temporarilyUnavailable.WithWrap(err)
	case !errors.As(err, &rfc):
		return fosite.ErrServerError.WithWrap(err)
	}
	return err
}
