package authz

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/httpx"
)

// handleBackchannel is the CIBA backchannel authentication endpoint (OpenID
// CIBA Core §7, poll mode, as CAMARA ICM profiles it): an authenticated
// client allowed the CIBA grant sends login_hint=operatortoken:<token> (and
// only login_hint) and a scope with exactly one purpose, in plain or in a
// request object it signed (CIBA Core §7.1.1). The operator token is
// redeemed at once: it proves the subscriber, so the request needs no user
// interaction, and its decision (consent) is ready after a short simulated
// step (Config.BackchannelApprovalDelay), which the client polls /token for.
// Answer: {auth_req_id, expires_in, interval}. acr_values, binding_message,
// user_code and requested_expiry are ignored (ICM).
func (s *Server) handleBackchannel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := s.admitClientForm(w, r, "bc-authorize"); err != nil {
		s.backchannelError(ctx, w, nil, err)
		return
	}
	client, err := s.provider.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil {
		s.chargeAuthFailure(r, err)
		s.backchannelError(ctx, w, nil, err)
		return
	}
	httpx.SetClientID(ctx, client.GetID())
	if ok, retry := s.allowClient(client.GetID(), "bc-authorize"); !ok {
		s.backchannelError(ctx, w, client, rateLimitError(retry, reasonRateLimitedClient))
		return
	}
	answer, err := s.backchannelRequest(ctx, client, r.PostForm)
	if err != nil {
		s.backchannelError(ctx, w, client, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, answer)
}

// backchannelAnswer is the successful authentication response (CIBA §7.3).
type backchannelAnswer struct {
	AuthReqID string `json:"auth_req_id"`
	ExpiresIn int    `json:"expires_in"`
	Interval  int    `json:"interval"`
}

// backchannelRequest checks the authentication request, redeems its
// operator token and stores the request.
func (s *Server) backchannelRequest(ctx context.Context, client fosite.Client, form url.Values) (backchannelAnswer, error) {
	if !client.GetGrantTypes().Has(grantTypeCIBA) {
		return backchannelAnswer{}, fosite.ErrUnauthorizedClient.WithHint("The client is not allowed the CIBA grant.")
	}
	params, err := s.backchannelParameters(ctx, client, form)
	if err != nil {
		return backchannelAnswer{}, err
	}
	for _, other := range []string{"login_hint_token", "id_token_hint"} {
		if params.Get(other) != "" {
			return backchannelAnswer{}, fosite.ErrInvalidRequest.WithHintf("Send login_hint, not %s.", other)
		}
	}
	hint := params.Get("login_hint")
	if hint == "" {
		return backchannelAnswer{}, fosite.ErrInvalidRequest.WithHint("login_hint=operatortoken:<token> is required.")
	}
	if !strings.HasPrefix(hint, operatorTokenPrefix) {
		if _, err := parseLoginHint(hint); err != nil {
			return backchannelAnswer{}, fosite.ErrInvalidRequest.WithHint("login_hint is not operatortoken:<token>, tel:+<E.164> or ipport:<address>.")
		}
		return backchannelAnswer{}, fosite.ErrAccessDenied.WithHint("Only an operator token (login_hint=operatortoken:<token>) authenticates a subscriber through CIBA here.")
	}
	scope := params.Get("scope")
	if scope == "" {
		return backchannelAnswer{}, fosite.ErrInvalidScope.WithHint("The scope parameter is required.")
	}
	scopes, err := checkPurposeScopes(client, strings.Fields(scope))
	if err != nil {
		return backchannelAnswer{}, err
	}
	msisdn, err := s.backchannel.redeem(ctx, hint, client.GetID())
	switch {
	case errors.Is(err, errOperatorToken):
		return backchannelAnswer{}, errUnknownUserID.WithHint("The operator token is unknown, used, expired or was minted for another client.")
	case err != nil:
		return backchannelAnswer{}, fosite.ErrServerError.WithWrap(err)
	}
	consent, err := s.backchannel.consents(ctx, client.GetID(), msisdn, scopes)
	if err != nil {
		return backchannelAnswer{}, fosite.ErrServerError.WithWrap(err)
	}
	id, err := newAuthReqID()
	if err != nil {
		return backchannelAnswer{}, fosite.ErrServerError.WithWrap(err)
	}
	now := s.backchannel.now()
	req := store.BackchannelRequest{
		ClientID: client.GetID(), MSISDN: msisdn, Subject: s.backchannel.subject(client, msisdn),
		AMR: contract.AMRSIM, Scopes: scopes, Denied: !consent,
		CreatedAt: now, ReadyAt: now.Add(s.cfg.BackchannelApprovalDelay),
		ExpiresAt: now.Add(s.cfg.BackchannelRequestLifetime), Interval: s.cfg.BackchannelPollInterval,
	}
	if err := s.store.CreateBackchannelRequest(ctx, id, req); err != nil {
		return backchannelAnswer{}, fosite.ErrServerError.WithWrap(err)
	}
	return backchannelAnswer{
		AuthReqID: id,
		ExpiresIn: int(s.cfg.BackchannelRequestLifetime / time.Second),
		Interval:  int(s.cfg.BackchannelPollInterval / time.Second),
	}, nil
}

// backchannelParameters are the request's parameters: the form's, or, with
// request=, the signed request object's (CIBA Core §7.1.1: iss the client,
// aud this issuer or the endpoint, iat, exp at most 300 s later, nbf, jti
// never used), with any parameter also sent in plain equal to the object's.
func (s *Server) backchannelParameters(ctx context.Context, client fosite.Client, form url.Values) (url.Values, error) {
	raw := form.Get("request")
	if raw == "" {
		return form, nil
	}
	var claims clientJWTClaims
	var all map[string]any
	if err := verifyClientJWT(client, raw, &claims, &all); err != nil {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object is not a JWT signed with the client's registered key.")
	}
	audiences := []string{s.cfg.Issuer, endpoint(s.cfg.Issuer, "/bc-authorize")}
	if problem := claims.check(client.GetID(), audiences, s.backchannel.now()); problem != "" {
		return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object is not valid: %s.", problem)
	}
	params := url.Values{}
	for name, value := range all {
		switch name {
		case "iss", "aud", "iat", "exp", "nbf", "jti", "sub":
			continue
		}
		v, ok := value.(string)
		if !ok || !cleanText(v) {
			return nil, fosite.ErrInvalidRequestObject.WithHintf("The request object's %q must be a string.", name)
		}
		params.Set(name, v)
	}
	for name, values := range form {
		if name == "request" || isClientAuthParameter(name) || len(values) == 0 {
			continue
		}
		if claim, present := all[name]; !present || !sameParameter(name, values[0], claim) {
			return nil, fosite.ErrInvalidRequestObject.WithHintf("The parameter %q must be sent in the request object only.", name)
		}
	}
	fresh, err := s.backchannel.recordJTI(ctx, "ciba_request", client.GetID(), claims)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	if !fresh {
		return nil, fosite.ErrInvalidRequestObject.WithHint("The request object's jti was already used.")
	}
	return params, nil
}

func isClientAuthParameter(name string) bool {
	switch name {
	case "client_id", "client_secret", "client_assertion", "client_assertion_type":
		return true
	}
	return false
}

// newAuthReqID is 256 random bits, base64url; only its hash is stored.
func newAuthReqID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// backchannelError answers an authentication error (CIBA Core §13): the
// RFC 6749 §5.2 JSON body, 401 for invalid_client, 403 for access_denied,
// 400 otherwise; a dependency that is down is 503 temporarily_unavailable.
func (s *Server) backchannelError(ctx context.Context, w http.ResponseWriter, client fosite.Client, err error) {
	err = asProtocolError(err)
	ar := fosite.NewAccessRequest(newSession())
	clientID := ""
	if client != nil {
		ar.Client = client
		clientID = client.GetID()
	}
	s.logError(ctx, "bc-authorize", clientID, err)
	setRetryAfter(w, err)
	s.provider.WriteAccessError(ctx, w, ar, err)
}

// Defaults of the CIBA settings.
const (
	defaultBackchannelRequestLifetime = 120 * time.Second
	defaultBackchannelPollInterval    = 2 * time.Second
	defaultBackchannelApprovalDelay   = time.Second
)

func (c Config) withBackchannelDefaults() Config {
	if c.BackchannelRequestLifetime == 0 {
		c.BackchannelRequestLifetime = defaultBackchannelRequestLifetime
	}
	if c.BackchannelPollInterval == 0 {
		c.BackchannelPollInterval = defaultBackchannelPollInterval
	}
	if c.BackchannelApprovalDelay == 0 {
		c.BackchannelApprovalDelay = defaultBackchannelApprovalDelay
	}
	return c
}

func (c Config) validateBackchannel() []error {
	var problems []error
	if c.BackchannelRequestLifetime < 10*time.Second || c.BackchannelRequestLifetime > 10*time.Minute {
		problems = append(problems, fmt.Errorf("CIBA request lifetime %s: want between 10s and 10m", c.BackchannelRequestLifetime))
	}
	if c.BackchannelPollInterval < time.Second || c.BackchannelPollInterval%time.Second != 0 || c.BackchannelPollInterval > time.Minute {
		problems = append(problems, fmt.Errorf("CIBA poll interval %s: want whole seconds between 1s and 1m", c.BackchannelPollInterval))
	}
	if c.BackchannelApprovalDelay < 0 || c.BackchannelApprovalDelay >= c.BackchannelRequestLifetime {
		problems = append(problems, fmt.Errorf("CIBA approval delay %s: want 0 or more, less than the request lifetime", c.BackchannelApprovalDelay))
	}
	return problems
}
