package resource

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/internal/phone"
	"github.com/numverify/numverify/internal/ratelimit"
)

const headerCorrelator = "X-Correlator"

// observe runs around every request, matched or not: it settles the
// x-correlator (validated, echoed, generated when absent), reports the route
// and correlator for the access log line (httpx.Observe writes it), renders
// any error in the path's dialect, and turns a panic into a 500.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		req := c.Request()
		ctx := req.Context()
		route := c.Path()
		if route == "" || route == "/*" {
			route = "unmatched"
		}
		httpx.SetRoute(ctx, route)
		correlator := req.Header.Get(headerCorrelator)
		valid := validCorrelator(correlator)
		if correlator == "" || !valid {
			// An invalid one cannot be echoed (it would break the response's
			// schema); the error answer carries a fresh one instead.
			correlator = uuid.NewString()
		}
		c.Response().Header().Set(headerCorrelator, correlator)
		httpx.SetCorrelator(ctx, correlator)
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.LogAttrs(ctx, levelFor(500), "panic while serving", errAttr(fmt.Errorf("%v", r)),
					stackAttr(debug.Stack()))
				c.Error(&errInternal)
				err = nil
			}
		}()
		if !valid {
			err = errInvalidHeader.with("The x-correlator header does not match ^[a-zA-Z0-9-_:;.\\/<>{}]{0,256}$.")
		} else {
			err = next(c)
		}
		if err != nil {
			c.Error(err)
		}
		return nil
	}
}

// validCorrelator reports whether v matches the spec's XCorrelator pattern
// ^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$ (the empty string matches: absent).
func validCorrelator(v string) bool {
	if len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case strings.IndexByte("-_:;./<>{}", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// handlerWithPrincipal is an API handler: it runs once the token has been
// validated and allows the operation.
type handlerWithPrincipal func(c echo.Context, p principal) error

// authorized validates the request's access token and checks that it allows
// permission, in the order a client can act on: 401 (no or bad token), 503
// (revocations unknown), 403 (scope), 403 (not network-authenticated), 403
// (no number in the token), 429 (rate limit of the token's client).
func (s *Server) authorized(permission contract.Permission, h handlerWithPrincipal) echo.HandlerFunc {
	required := scopeFor(permission)
	return func(c echo.Context) error {
		req := c.Request()
		token, authErr := bearerToken(req.Header.Get(echo.HeaderAuthorization))
		if authErr != nil {
			s.metrics.rejected(authErr)
			return authErr
		}
		p, err := s.tokens.validate(req.Context(), token)
		if err != nil {
			s.metrics.rejected(err)
			return err
		}
		httpx.SetClientID(req.Context(), p.clientID)
		if p.jti != "" && s.revoked.has(p.jti) || s.revoked.clientRevoked(p.clientID, p.issuedAt) {
			s.metrics.rejectedReason("revoked")
			return errInvalidCredentials.with("The access token has been revoked.")
		}
		if s.listener.stale(s.cfg.RevocationMaxStaleness) {
			return errUnavailable.with("Token revocations cannot be checked right now.")
		}
		if !p.permissions.Has(permission) {
			e := errPermissionDenied.with("The access token lacks the scope " + required + ".")
			e.bearerError, e.scope = "insufficient_scope", required
			return e
		}
		if !p.network && !s.cfg.AllowNonNetworkAuthentication {
			return &errNotNetworkAuthenticated
		}
		if !phone.MatchesPattern(p.phoneNumber) {
			return errPermissionDenied.with("Phone number cannot be deduced from the access token context.")
		}
		if ok, retry := s.limiter.Allow(p.clientID, s.cfg.Now()); !ok {
			e := errTooManyRequests.with("The client's rate limit is exceeded.")
			e.retryAfter = ratelimit.RetryAfterSeconds(retry)
			return e
		}
		return h(c, p)
	}
}

func scopeFor(p contract.Permission) string {
	if p == contract.PermissionShare {
		return contract.ScopeShare
	}
	return contract.ScopeVerify
}
