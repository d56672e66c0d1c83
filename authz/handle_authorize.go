package authz

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/network"
)

// maxAuthorizeBody bounds a POSTed authorization request.
const maxAuthorizeBody = 64 << 10

// handleAuthorize is the silent network login: fosite validates the request
// (client, exact redirect URI, response type, scopes, request object), the
// network says who holds the request's source address right now, and the
// code is issued to that subscriber's pairwise subject, or access_denied
// when nobody does. Nothing else logs anyone in.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if ok, retry := s.admit(r, "authorize"); !ok {
		s.authorizeError(ctx, w, nil, rateLimitError(retry, reasonRateLimitedIP))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAuthorizeBody)
	if err := r.ParseForm(); err != nil {
		writeErrorPage(w, fosite.ErrInvalidRequest.WithHint("The request cannot be parsed."))
		return
	}
	// A multipart body too, here rather than in fosite, so that its values
	// go through the same checks and a body cut short is the client's error.
	if err := r.ParseMultipartForm(maxAuthorizeBody); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		writeErrorPage(w, fosite.ErrInvalidRequest.WithHint("The request body cannot be parsed."))
		return
	}
	if err := checkRedirectParameters(r.Form); err != nil {
		s.authorizeError(ctx, w, nil, err)
		return
	}
	// The parameters as sent, before fosite merges a request object in.
	plain := cloneValues(r.Form)
	// request_uri is not supported; fosite would take it for a pushed
	// request. It is refused once the redirect URI is known to be good, as
	// is a response_mode other than query (fosite would answer in it).
	requestURI := r.Form.Get("request_uri") != ""
	r.Form.Del("request_uri")
	r.Form.Del("response_mode")

	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	queryResponseMode(ar)
	if ar != nil && ar.GetClient() != nil { // a registered client
		httpx.SetClientID(ctx, ar.GetClient().GetID())
	}
	if err != nil {
		s.chargeAuthFailure(r, err) // an unknown client_id
		if hygiene := checkParameters(plain); hygiene != nil && ar != nil && ar.IsRedirectURIValid() && !unavailable(err) {
			err = hygiene // what fosite refused may be the bad parameter itself
		} else if plain.Get("request") != "" && !unavailable(err) {
			err = requestObjectError(ar, plain, err)
		}
		s.authorizeError(ctx, w, ar, err)
		return
	}
	// fosite names the request with a random UUID; the code, and the rows
	// its exchange writes, carry a time-ordered one instead (randomID).
	id, err := randomID()
	if err != nil {
		s.authorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	ar.SetID(id)
	if raw := ar.GetRequestForm().Get("redirect_uri"); raw != "" && !registeredExactly(ar.GetClient(), raw) {
		s.authorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("The redirect_uri is not registered for this client."))
		return
	}
	if err := s.checkAuthorizeParameters(ctx, ar, plain, requestURI); err != nil {
		s.authorizeError(ctx, w, ar, err)
		return
	}

	msisdn, amr, err := s.login(ctx, r, ar) // the network, or the playground (playground.go)
	if err != nil {
		s.authorizeError(ctx, w, ar, err)
		return
	}
	s.grantScopes(ar)
	subject := s.subjects.pairwise(sectorOf(ar.GetClient(), ar.GetRedirectURI()), msisdn)
	session := newLoginSession(subject, msisdn, ar.GetRequestedAt(), amr)

	// The code, PKCE and OpenID Connect records travel inside the code
	// (sealedcode.go): nothing is written.
	var resp fosite.AuthorizeResponder
	records, err := s.store.CollectAuthorizeRecords(ctx, func(ctx context.Context) error {
		var err error
		resp, err = s.provider.NewAuthorizeResponse(ctx, ar, session)
		return err
	})
	if err == nil {
		var code string
		if code, err = s.codes.seal(records); err == nil {
			resp.GetParameters().Set("code", code)
		}
	}
	if err != nil {
		s.authorizeError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAuthorizeResponse(ctx, s.redirectWriter(w), ar, resp)
	s.metrics.logins.WithLabelValues("success", reasonNone).Inc()
}

// checkAuthorizeParameters applies what this server adds to fosite's checks,
// once the client and redirect URI are known (so errors are redirected).
func (s *Server) checkAuthorizeParameters(ctx context.Context, ar fosite.AuthorizeRequester, plain url.Values, requestURI bool) error {
	form := ar.GetRequestForm()
	if requestURI {
		return fosite.ErrRequestURINotSupported.WithHint("request_uri is not supported; send the request object by value (request=).")
	}
	// The parameters as sent, and as merged with a request object's claims.
	if err := checkParameters(plain); err != nil {
		return err
	}
	if err := checkParameterText(form); err != nil {
		return err
	}
	if err := checkResponseMode(plain.Get("response_mode"), form.Get("response_mode")); err != nil {
		return err
	}
	// fosite matches response types case-insensitively and in any order;
	// the one offered is exactly "code".
	if form.Get("response_type") != "code" {
		return fosite.ErrUnsupportedResponseType.WithHint("The only response_type supported is code.")
	}
	if raw := plain.Get("request"); raw != "" {
		if !fosite.Arguments(fosite.RemoveEmpty(strings.Split(plain.Get("scope"), " "))).Has("openid") {
			// fosite reads request objects of OpenID Connect requests only.
			return fosite.ErrInvalidRequestObject.WithHint("A request object requires scope openid among the request's parameters.")
		}
		if err := checkRequestObject(ctx, raw, plain, ar.GetClient().GetID(), s.cfg.Issuer, s.store); err != nil {
			if req, ok := ar.(*fosite.AuthorizeRequest); ok {
				req.State = plain.Get("state") // the client's, not the refused object's
			}
			return err
		}
	}
	// The login is silent whatever the client asks: a fresh network
	// authentication satisfies prompt=login and max_age, and no page is shown.
	form.Set("prompt", "none")
	if err := checkAuthorizePurposes(ar.GetRequestedScopes()); err != nil {
		return err
	}
	var unknown []string
	_, _, parsedUnknown := contract.ParseScope(strings.Join(ar.GetRequestedScopes(), " "))
	for _, u := range parsedUnknown {
		if u != scopeOfflineAccess {
			unknown = append(unknown, u)
		}
	}
	if len(unknown) > 0 {
		return fosite.ErrInvalidScope.WithHintf("Unknown scope %q.", unknown[0])
	}
	if nonce := form.Get("nonce"); nonce != "" && len(nonce) < fosite.MinParameterEntropy {
		return fosite.ErrInvalidRequest.WithHintf("nonce must be at least %d characters.", fosite.MinParameterEntropy)
	}
	if _, err := parseLoginHint(form.Get("login_hint")); err != nil {
		return fosite.ErrInvalidRequest.WithHint(errLoginHint.Error())
	}
	return nil
}

// identify returns the MSISDN of the subscriber holding the request's
// source address now: access_denied when nobody does (or the address cannot
// be told), temporarily_unavailable when the network cannot answer.
func (s *Server) identify(ctx context.Context, r *http.Request, ar fosite.AuthorizeRequester) (string, error) {
	addr, err := s.clientAddress(r)
	if err != nil {
		return "", fosite.ErrAccessDenied.WithHint("The device's network address cannot be determined.").
			WithWrap(&refusal{reason: reasonNoAddress, cause: err})
	}
	if ok, retry := s.allowAddress(addr, "authorize"); !ok {
		return "", rateLimitError(retry, reasonRateLimitedIP)
	}
	session, err := s.resolver.Resolve(ctx, addr.Addr(), addr.Port(), ar.GetRequestedAt())
	switch {
	case errors.Is(err, network.ErrNotFound):
		return "", fosite.ErrAccessDenied.WithHint("The device is not connected through this mobile network.").
			WithWrap(&refusal{reason: reasonNotOnNetwork})
	case err != nil:
		return "", temporarilyUnavailable.WithWrap(&refusal{reason: reasonResolverUnavailable, cause: err})
	}
	if ok, retry := s.allowDevice(ar.GetClient().GetID(), session); !ok {
		return "", rateLimitError(retry, reasonRateLimitedDevice)
	}
	return session.MSISDN, nil
}

// grantScopes grants what was asked (fosite has checked the client may ask
// it), except offline_access, granted only to a client allowed refresh
// tokens and never together with a Number Verification scope.
func (s *Server) grantScopes(ar fosite.AuthorizeRequester) {
	numberVerification := false
	for _, scope := range ar.GetRequestedScopes() {
		if contract.IsNumberVerificationScope(scope) {
			numberVerification = true
		}
	}
	for _, scope := range ar.GetRequestedScopes() {
		if scope == scopeOfflineAccess && (numberVerification || !ar.GetClient().GetGrantTypes().Has("refresh_token")) {
			continue
		}
		ar.GrantScope(scope)
	}
}

// authorizeError redirects the error to the client when its redirect URI
// is registered (exactly), and shows an error page otherwise.
func (s *Server) authorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	if unavailable(err) {
		err = temporarilyUnavailable.WithWrap(err)
	}
	clientID := ""
	if ar != nil && ar.GetClient() != nil {
		clientID = ar.GetClient().GetID()
	}
	s.logError(ctx, "authorize", clientID, err)
	s.metrics.logins.WithLabelValues(fosite.ErrorToRFC6749Error(err).ErrorField, loginReason(err)).Inc()
	setRetryAfter(w, err)
	if ar == nil || !ar.IsRedirectURIValid() {
		writeErrorPage(w, err)
		return
	}
	if raw := ar.GetRequestForm().Get("redirect_uri"); raw != "" && !registeredExactly(ar.GetClient(), raw) {
		writeErrorPage(w, fosite.ErrInvalidRequest.WithHint("The redirect_uri is not registered for this client."))
		return
	}
	s.provider.WriteAuthorizeError(ctx, s.redirectWriter(w), ar, err)
}

// requestObjectError makes a request object that fosite refused an
// invalid_request_object error (fosite passes an expired one through as a
// plain error, which would be a 500), and lets it be redirected: fosite
// refuses the object before it looks at the redirect URI, so the plain
// redirect_uri is used when it is registered, exactly, for the client.
func requestObjectError(ar fosite.AuthorizeRequester, plain url.Values, err error) error {
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		err = fosite.ErrInvalidRequestObject.WithHint("The request object is not valid.").WithWrap(err)
	} else if !errors.Is(err, fosite.ErrInvalidRequestObject) {
		return err
	}
	req, ok := ar.(*fosite.AuthorizeRequest)
	raw := plain.Get("redirect_uri")
	if !ok || req.RedirectURI != nil || req.Client == nil || !registeredExactly(req.Client, raw) {
		return err
	}
	if u, parseErr := url.Parse(raw); parseErr == nil {
		req.RedirectURI = u
		req.State = plain.Get("state")
		req.Form.Set("redirect_uri", raw)
	}
	return err
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
