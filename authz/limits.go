package authz

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/ratelimit"
)

// Abuse limits (issue 6). Two token buckets per key, shared by /authorize
// and /token: one per source address (the resolved client address, after
// trusted-proxy handling; an IPv6 address counts as its /64, which one
// subscriber holds), one per client. A login is one request from the
// device's address and one from the SP's, and two requests of its client.
//
// Answers:
//   - /authorize, source address over its limit: checked first, before any
//     work (not even the client is looked up), so no redirect URI is known
//     to be good: 429 with Retry-After and the error page.
//   - /authorize, client over its limit: checked once fosite has validated
//     the client and redirect URI, before the network is asked: a redirect
//     with error=temporarily_unavailable (OIDC Core §3.1.2.6 / RFC 6749
//     §4.1.2.1, what a client must already handle) and Retry-After.
//   - /token, source address over its limit: checked before the body is read.
//   - /token, client over its limit: checked once the client has
//     authenticated (counting unauthenticated claims would let anyone spend
//     an SP's budget), before the code is touched, so the code stays usable.
//   - Both /token answers are 429 with Retry-After and an RFC 6749 §5.2 body
//     {"error":"temporarily_unavailable"}. RFC 6749 names no rate-limit error
//     at the token endpoint; "slow_down" is RFC 8628's device-flow polling
//     error and a client would not expect it here, whereas
//     temporarily_unavailable is the registered OAuth error meaning "try
//     again later" (the one this server already answers when Postgres is
//     down), and HTTP 429 with Retry-After says how long.

// maxLimiterKeys bounds the memory of each limiter.
const maxLimiterKeys = 100_000

type limits struct {
	perIP, perClient *ratelimit.Limiter
}

func newLimits(cfg Config) limits {
	var l limits
	if cfg.RateLimitPerIP > 0 {
		l.perIP = ratelimit.New(cfg.RateLimitPerIP, cfg.RateLimitPerIPBurst, maxLimiterKeys)
	}
	if cfg.RateLimitPerClient > 0 {
		l.perClient = ratelimit.New(cfg.RateLimitPerClient, cfg.RateLimitPerClientBurst, maxLimiterKeys)
	}
	return l
}

// addressKey is the rate-limit key of a source address.
func addressKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// allowAddress spends one request of the request's source address; when it
// cannot be told (no limit applies then: such a login is refused anyway).
func (s *Server) allowAddress(r *http.Request, endpoint string) (bool, time.Duration) {
	if s.limits.perIP == nil {
		return true, 0
	}
	addr, err := clientAddress(r, s.trusted)
	if err != nil {
		return true, 0
	}
	ok, retry := s.limits.perIP.Allow(addressKey(addr.Addr()), time.Now())
	if !ok {
		s.metrics.rateLimited.WithLabelValues(endpoint, "ip").Inc()
	}
	return ok, retry
}

func (s *Server) allowClient(clientID, endpoint string) (bool, time.Duration) {
	ok, retry := s.limits.perClient.Allow(clientID, time.Now())
	if !ok {
		s.metrics.rateLimited.WithLabelValues(endpoint, "client").Inc()
	}
	return ok, retry
}

// rateLimited is the cause of a refusal for rate, carrying the delay.
type rateLimited struct{ retryAfter time.Duration }

func (e *rateLimited) Error() string { return "rate limited" }

// rateLimitError is temporarily_unavailable with status 429; reason is the
// login reason it records at /authorize.
func rateLimitError(retry time.Duration, reason string) error {
	seconds := ratelimit.RetryAfterSeconds(retry)
	rfc := fosite.ErrTemporarilyUnavailable.WithHintf("Too many requests; retry after %d seconds.", seconds)
	rfc.CodeField = http.StatusTooManyRequests
	return rfc.WithWrap(&refusal{reason: reason, cause: &rateLimited{retryAfter: retry}})
}

// setRetryAfter sets Retry-After when err is a refusal for rate.
func setRetryAfter(w http.ResponseWriter, err error) {
	var rl *rateLimited
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(rl.retryAfter)))
	}
}

// tokenEndpointKey marks the context of a /token request: only there does
// client authentication spend the client's budget (not at /introspect or
// /revoke).
type tokenEndpointKey struct{}

// Request bodies: /token, /introspect and /revoke carry a few form fields
// (the largest, a private_key_jwt assertion, is a few KiB).
const maxFormBody = 16 << 10

// errBodyTooLarge is invalid_request with status 413.
func errBodyTooLarge() error {
	rfc := fosite.ErrInvalidRequest.WithHintf("The request body is larger than %d bytes.", maxFormBody)
	rfc.CodeField = http.StatusRequestEntityTooLarge
	return rfc
}

// readForm parses a form body of at most maxFormBody bytes: 413
// invalid_request when it is larger, 400 invalid_request when it is not a
// form.
func readForm(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > maxFormBody {
		return errBodyTooLarge()
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errBodyTooLarge()
		}
		return fosite.ErrInvalidRequest.WithHint("The request body cannot be parsed.")
	}
	return nil
}

func withTokenEndpoint(ctx context.Context) context.Context {
	return context.WithValue(ctx, tokenEndpointKey{}, true)
}

func isTokenEndpoint(ctx context.Context) bool {
	v, _ := ctx.Value(tokenEndpointKey{}).(bool)
	return v
}
