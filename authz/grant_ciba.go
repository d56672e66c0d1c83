package authz

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

// cibaGrant is the token endpoint of CIBA in poll mode (OpenID CIBA Core
// §10-11, CAMARA ICM Appendix A): grant_type urn:openid:params:grant-type:ciba
// with the auth_req_id that /bc-authorize answered (handle_backchannel.go).
// Until the request's decision is ready: authorization_pending, or
// slow_down to a poll sooner than the interval after the previous one (the
// interval then grows by 5 s); then access_denied, or the tokens: a
// short-lived access token, amr ["sim"], and an ID token when openid was
// asked, never a refresh token. Past its expiry: expired_token. Each poll
// reads and locks the request's row in the token transaction, so concurrent
// polls are decided one after the other and tokens are issued once.
type cibaGrant struct {
	*oauth2.HandleHelper
	idTokens   *openid.IDTokenHandleHelper
	requests   backchannelRequests
	now        func() time.Time
	lifetime   time.Duration
	idLifetime time.Duration
}

var _ fosite.TokenEndpointHandler = (*cibaGrant)(nil)

// backchannelRequests is the store of CIBA requests (authz/store).
type backchannelRequests interface {
	CreateBackchannelRequest(ctx context.Context, authReqID string, r store.BackchannelRequest) error
	LockBackchannelRequest(ctx context.Context, authReqID string) (store.BackchannelRequest, error)
	RecordBackchannelPoll(ctx context.Context, authReqID string, at time.Time, interval time.Duration) error
	MarkBackchannelIssued(ctx context.Context, authReqID string, at time.Time) error
}

var _ backchannelRequests = (*store.Store)(nil)

// slowDownStep is what slow_down adds to the interval (CIBA Core §11).
const slowDownStep = 5 * time.Second

// The CIBA errors fosite does not define (CIBA Core §11 and §13).
var (
	errAuthorizationPending = &fosite.RFC6749Error{ErrorField: "authorization_pending", CodeField: http.StatusBadRequest,
		DescriptionField: "The authorization request is still pending."}
	errSlowDown = &fosite.RFC6749Error{ErrorField: "slow_down", CodeField: http.StatusBadRequest,
		DescriptionField: "The authorization request is still pending and polling too fast: increase the interval by at least 5 seconds."}
	errExpiredToken = &fosite.RFC6749Error{ErrorField: "expired_token", CodeField: http.StatusBadRequest,
		DescriptionField: "The auth_req_id has expired; make a new authentication request."}
	errUnknownUserID = &fosite.RFC6749Error{ErrorField: "unknown_user_id", CodeField: http.StatusBadRequest,
		DescriptionField: "The end-user cannot be identified from the login_hint."}
	// errCIBAAccessDenied is access_denied with the 400 of a token error.
	errCIBAAccessDenied = &fosite.RFC6749Error{ErrorField: fosite.ErrAccessDenied.ErrorField, CodeField: http.StatusBadRequest,
		DescriptionField: "The end-user or the authorization server denied the request."}
)

func (g *cibaGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(grantTypeCIBA)
}

// CanSkipClientAuth: the client authenticates, as at /bc-authorize.
func (g *cibaGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (g *cibaGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	client := ar.GetClient()
	if !client.GetGrantTypes().Has(grantTypeCIBA) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed the CIBA grant.")
	}
	id := ar.GetRequestForm().Get("auth_req_id")
	if id == "" {
		return fosite.ErrInvalidRequest.WithHint("The auth_req_id parameter is required.")
	}
	req, err := g.requests.LockBackchannelRequest(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The auth_req_id is unknown.")
	case err != nil:
		return fosite.ErrServerError.WithWrap(err)
	case req.ClientID != client.GetID():
		return fosite.ErrInvalidGrant.WithHint("The auth_req_id is unknown.")
	case req.Issued:
		return fosite.ErrInvalidGrant.WithHint("The auth_req_id was already exchanged.")
	}
	now := g.now()
	if !now.Before(req.ExpiresAt) {
		return errExpiredToken
	}
	if !req.LastPolledAt.IsZero() && now.Sub(req.LastPolledAt) < req.Interval {
		if err := g.requests.RecordBackchannelPoll(ctx, id, now, req.Interval+slowDownStep); err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		return errSlowDown
	}
	if now.Before(req.ReadyAt) {
		if err := g.requests.RecordBackchannelPoll(ctx, id, now, req.Interval); err != nil {
			return fosite.ErrServerError.WithWrap(err)
		}
		return errAuthorizationPending
	}
	if req.Denied {
		return errCIBAAccessDenied
	}
	sess, ok := ar.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithHint("Unexpected session type.")
	}
	backchannelSession(sess, req.Subject, req.MSISDN, req.AMR, now, req.CreatedAt)
	sess.SetExpiresAt(fosite.AccessToken, now.Add(g.lifetime))
	ar.SetRequestedScopes(req.Scopes)
	for _, s := range req.Scopes {
		ar.GrantScope(s)
	}
	return nil
}

// PopulateTokenEndpointResponse issues the access token (and the ID token
// under openid), then spends the auth_req_id in the same transaction.
func (g *cibaGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	if _, err := g.IssueAccessToken(ctx, g.lifetime, ar, resp); err != nil {
		return err
	}
	if ar.GetGrantedScopes().Has(contract.ScopeOpenID) {
		if sess, ok := ar.GetSession().(*Session); ok {
			sess.Claims.AccessTokenHash = g.idTokens.GetAccessTokenHash(ctx, ar, resp)
		}
		if err := g.idTokens.IssueExplicitIDToken(ctx, g.idLifetime, ar, resp); err != nil {
			return err
		}
	}
	if err := g.requests.MarkBackchannelIssued(ctx, ar.GetRequestForm().Get("auth_req_id"), g.now()); err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	return nil
}
