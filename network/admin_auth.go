package network

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/numverify/numverify/internal/ratelimit"
)

// FailureLimit throttles failed authentications at the admin API, per
// source address: a token bucket of Burst failures refilled at PerSecond.
// Only failures spend it; once it is empty every request from that address,
// right or wrong, is answered 429 with Retry-After until it refills, so that
// guessing the token stops while a client that authenticates is never
// charged. The zero value means the defaults.
type FailureLimit struct {
	Burst     int     // failures allowed in a row (default DefaultFailureBurst)
	PerSecond float64 // refill rate (default DefaultFailureRate); negative disables
}

// Defaults of FailureLimit: 5 failures, then one every 10 seconds.
const (
	DefaultFailureBurst = 5
	DefaultFailureRate  = 0.1
)

// validate reports every problem of the configuration at once.
func (cfg AdminConfig) validate() error {
	var problems []error
	switch {
	case cfg.Token == "" && !cfg.Insecure:
		problems = append(problems, errors.New("network admin API: an admin token is required (or insecure development mode)"))
	case len(cfg.Token) < MinAdminTokenLength && cfg.Token != "" && !cfg.Insecure:
		problems = append(problems, fmt.Errorf("network admin API: the admin token must be at least %d characters (e.g. openssl rand -hex 16)", MinAdminTokenLength))
	}
	if cfg.Failures.Burst < 0 {
		problems = append(problems, errors.New("network admin API: the failure burst must not be negative"))
	}
	return errors.Join(problems...)
}

// failureThrottle is the per-address bucket of failed authentications.
type failureThrottle struct {
	limiter *ratelimit.Limiter
	now     func() time.Time
}

func newFailureThrottle(limit FailureLimit, now func() time.Time) *failureThrottle {
	burst, rate := limit.Burst, limit.PerSecond
	if burst == 0 {
		burst = DefaultFailureBurst
	}
	if rate == 0 {
		rate = DefaultFailureRate
	}
	if now == nil {
		now = time.Now
	}
	return &failureThrottle{limiter: ratelimit.New(rate, burst, 10_000), now: now}
}

// key is the request's TCP peer address (never a forwarding header: the
// admin API is reached directly). An unreadable peer shares one bucket:
// it fails closed, never open.
func (f *failureThrottle) key(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return "unknown"
	}
	return peer.Addr().Unmap().String()
}

// check refuses a request from an address whose failures are used up.
func (f *failureThrottle) check(c echo.Context, source string) error {
	if blocked, retry := f.limiter.Blocked(source, f.now()); blocked {
		return tooManyFailures(c, retry)
	}
	return nil
}

// failed charges one failure to source and returns err, or 429 when that
// failure was one too many.
func (f *failureThrottle) failed(c echo.Context, source string, err error) error {
	if ok, retry := f.limiter.Allow(source, f.now()); !ok {
		return tooManyFailures(c, retry)
	}
	return err
}

func tooManyFailures(c echo.Context, retry time.Duration) error {
	c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(ratelimit.RetryAfterSeconds(retry)))
	return &apiError{http.StatusTooManyRequests, "too_many_requests", "too many failed authentications from this address; retry later"}
}
