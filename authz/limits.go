package authz

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/ratelimit"
	"github.com/numverify/numverify/network"
)

// Abuse limits (issues 6 and 9), on by default (Config.WithDefaults; a
// negative rate turns one off). Every bucket is a token bucket
// (internal/ratelimit) on the server's clock; each is keyed so that nobody
// can spend somebody else's budget:
//
//   - at the door of /authorize and /token, before any work: an address
//     whose failed client authentications (invalid_client: a wrong secret
//     at /token, an unknown client_id at /authorize) have emptied its
//     bucket is refused; requests that succeed cost nothing there, so an
//     SP's backend, which sends every token request from one address, is
//     limited only per client. No redirect URI is known to be good yet: 429
//     with Retry-After (the error page at /authorize).
//   - per address, /authorize: spent just before the network is asked, by
//     the source address (IPv6: its /64). Behind CGNAT many subscribers
//     share one public address, so it is generous: a backstop that bounds
//     the network lookups one address can cause. The client and redirect
//     URI are known good by then: a redirect with
//     error=temporarily_unavailable (OIDC Core §3.1.2.6 / RFC 6749
//     §4.1.2.1, what a client must already handle) and Retry-After: the
//     answer a client also gets when the network cannot answer, so a client
//     retrying hard through a Postgres outage sees one kind of error.
//   - per device, /authorize: spent once the network has said which session
//     holds the address (and, behind CGNAT, the source port), keyed by the
//     client and that session's address and port block. CGNAT neighbours
//     (one address, different port blocks) have their own buckets, and
//     anonymous requests naming an SP's public client_id spend only the
//     sender's own budget, never the SP's: the client is not authenticated
//     at /authorize, so its id alone keys nothing. Over it: the same
//     redirect.
//   - per client, /token: spent once the client has authenticated (counting
//     unauthenticated claims would let anyone spend an SP's budget), before
//     the code is touched, so the code stays usable.
//   - an address that cannot be read (a forwarding header the configured
//     source cannot parse) fails closed: all such requests share one small
//     bucket, spent at the door of /authorize and /token (and never reach
//     the network).
//   - Every /token refusal is 429 with Retry-After and an RFC 6749 §5.2 body
//     {"error":"temporarily_unavailable"}. RFC 6749 names no rate-limit error
//     at the token endpoint; "slow_down" is RFC 8628's device-flow polling
//     error and a client would not expect it here, whereas
//     temporarily_unavailable is the registered OAuth error meaning "try
//     again later" (the one this server already answers when Postgres is
//     down), and HTTP 429 with Retry-After says how long.
//
// Buckets live in the process: behind a balancer each replica counts its own.

// Defaults of the abuse limits (requests per second, burst). They are sized
// so that nothing a real deployment does comes near them and this
// repository's load tests are not throttled (`numverify bench` on a 2-core
// machine: 64 devices make about 500 logins/s from one SP client, 8 each;
// 6 devices about 77 each; during a Postgres outage a device retries at
// about 850/s, answered 503 or temporarily_unavailable), while a flood is.
// One device alone running flows back to back (about 250/s) outruns the
// per-device limit after a few seconds.
const (
	DefaultRateLimitPerIP                  = 500
	DefaultRateLimitPerIPBurst             = 1000
	DefaultRateLimitPerDevice              = 100
	DefaultRateLimitPerDeviceBurst         = 1000
	DefaultRateLimitPerClient              = 5000
	DefaultRateLimitPerClientBurst         = 10000
	DefaultRateLimitAuthFailuresPerIP      = 10
	DefaultRateLimitAuthFailuresPerIPBurst = 100
)

// The bucket shared by every request whose address cannot be read.
const (
	unreadableAddressRate  = 10
	unreadableAddressBurst = 20
	unreadableAddressKey   = "unreadable"
)

// NoRateLimit as a Config rate turns that limit off (0 is the default's).
const NoRateLimit = -1

// maxLimiterKeys bounds the memory of each limiter.
const maxLimiterKeys = 100_000

// Reasons of a login refused for rate (metrics.go lists the others).
const reasonRateLimitedDevice = "rate_limited_device"

// rateLimit is one configured limit: a rate and its burst.
type rateLimit struct {
	name  string
	rate  *float64
	burst *int
	def   float64
	defB  int
}

func (c *Config) rateLimits() []rateLimit {
	return []rateLimit{
		{"rate limit per IP", &c.RateLimitPerIP, &c.RateLimitPerIPBurst, DefaultRateLimitPerIP, DefaultRateLimitPerIPBurst},
		{"rate limit per device", &c.RateLimitPerDevice, &c.RateLimitPerDeviceBurst, DefaultRateLimitPerDevice, DefaultRateLimitPerDeviceBurst},
		{"rate limit per client", &c.RateLimitPerClient, &c.RateLimitPerClientBurst, DefaultRateLimitPerClient, DefaultRateLimitPerClientBurst},
		{"rate limit of authentication failures per IP", &c.RateLimitAuthFailuresPerIP, &c.RateLimitAuthFailuresPerIPBurst,
			DefaultRateLimitAuthFailuresPerIP, DefaultRateLimitAuthFailuresPerIPBurst},
	}
}

// withRateLimitDefaults sets each unset (zero) limit to its default and
// each unset burst to the rate rounded up.
func (c Config) withRateLimitDefaults() Config {
	for _, l := range c.rateLimits() {
		if *l.rate == 0 {
			*l.rate = l.def
			if *l.burst == 0 {
				*l.burst = l.defB
			}
		}
		if *l.burst == 0 && *l.rate > 0 {
			*l.burst = int(math.Ceil(*l.rate))
		}
	}
	return c
}

func (c Config) validateRateLimits() []error {
	var problems []error
	for _, l := range c.rateLimits() {
		if math.IsNaN(*l.rate) || math.IsInf(*l.rate, 0) {
			problems = append(problems, fmt.Errorf("%s %v: want a number of requests per second (negative: off)", l.name, *l.rate))
		}
		if *l.burst < 0 {
			problems = append(problems, fmt.Errorf("%s burst %d: want 0 or more", l.name, *l.burst))
		}
	}
	return problems
}

type limits struct {
	now          func() time.Time
	perIP        *ratelimit.Limiter
	perDevice    *ratelimit.Limiter
	perClient    *ratelimit.Limiter
	authFailures *ratelimit.Limiter
	unreadable   *ratelimit.Limiter
}

// newLimits makes the limiters of cfg (defaults applied); a negative rate
// gives a limiter that allows everything.
func newLimits(cfg Config, now func() time.Time) limits {
	if now == nil {
		now = time.Now
	}
	return limits{
		now:          now,
		perIP:        ratelimit.New(cfg.RateLimitPerIP, cfg.RateLimitPerIPBurst, maxLimiterKeys),
		perDevice:    ratelimit.New(cfg.RateLimitPerDevice, cfg.RateLimitPerDeviceBurst, maxLimiterKeys),
		perClient:    ratelimit.New(cfg.RateLimitPerClient, cfg.RateLimitPerClientBurst, maxLimiterKeys),
		authFailures: ratelimit.New(cfg.RateLimitAuthFailuresPerIP, cfg.RateLimitAuthFailuresPerIPBurst, maxLimiterKeys),
		unreadable:   ratelimit.New(unreadableAddressRate, unreadableAddressBurst, 1),
	}
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

// deviceKey is the rate-limit key of a client's logins from one session:
// its address (or IPv6 prefix) and port block, which behind CGNAT tells
// neighbours apart.
func deviceKey(clientID string, session network.Session) string {
	return clientID + " " + session.IP.String() + " " + strconv.Itoa(int(session.Ports.Low)) + "-" + strconv.Itoa(int(session.Ports.High))
}

// admit is the door of /authorize and /token, before any work: a request
// whose address cannot be read spends one of the bucket all such requests
// share; any other is refused while its address has used up its failed
// client authentications (spending nothing otherwise).
func (s *Server) admit(r *http.Request, endpoint string) (bool, time.Duration) {
	addr, err := s.clientAddress(r)
	if err != nil {
		return s.spend(s.limits.unreadable, unreadableAddressKey, endpoint, "unreadable_address")
	}
	if blocked, retry := s.limits.authFailures.Blocked(addressKey(addr.Addr()), s.limits.now()); blocked {
		s.metrics.rateLimited.WithLabelValues(endpoint, "auth_failures").Inc()
		return false, retry
	}
	return true, 0
}

// allowAddress spends one network lookup of a source address at
// /authorize (an unreadable address never gets one).
func (s *Server) allowAddress(addr netip.AddrPort, endpoint string) (bool, time.Duration) {
	return s.spend(s.limits.perIP, addressKey(addr.Addr()), endpoint, "ip")
}

// allowDevice spends one login of the client from the session the network
// resolved the request to.
func (s *Server) allowDevice(clientID string, session network.Session) (bool, time.Duration) {
	return s.spend(s.limits.perDevice, deviceKey(clientID, session), "authorize", "device")
}

// allowClient spends one request of an authenticated client.
func (s *Server) allowClient(clientID, endpoint string) (bool, time.Duration) {
	return s.spend(s.limits.perClient, clientID, endpoint, "client")
}

// chargeAuthFailure spends one failure of the request's address when err
// is a failed client authentication at /token, or an unknown client at
// /authorize (invalid_client).
func (s *Server) chargeAuthFailure(r *http.Request, err error) {
	// fosite wraps a store that cannot answer in invalid_client too: that is
	// an outage (answered temporarily_unavailable), not a failure to count.
	if err == nil || unavailable(err) || fosite.ErrorToRFC6749Error(err).ErrorField != fosite.ErrInvalidClient.ErrorField {
		return
	}
	if addr, addrErr := s.clientAddress(r); addrErr == nil {
		s.limits.authFailures.Allow(addressKey(addr.Addr()), s.limits.now())
	}
}

func (s *Server) spend(l *ratelimit.Limiter, key, endpoint, kind string) (bool, time.Duration) {
	ok, retry := l.Allow(key, s.limits.now())
	if !ok {
		s.metrics.rateLimited.WithLabelValues(endpoint, kind).Inc()
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
