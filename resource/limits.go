package resource

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Abuse limits of the resource server, on by default (issue 9):
//
//   - per client (the token's client_id): Config.RateLimit requests per
//     second over verify and share, 429 TOO_MANY_REQUESTS beyond (the
//     middleware, authorized). An SP backend sends every user's call with
//     its one client, so the default is high: thousands per second.
//   - false answers per token: a token that has answered
//     devicePhoneNumberVerified=false Config.MaxFailedVerifies times is
//     refused by verify from then on, so a verify-only token cannot be used
//     to guess the number it was issued for (an oracle: "is it +33…00? …01?").
//
// The cap answers 403 PERMISSION_DENIED on /number-verification/v2: the
// verify operation of CAMARA Number Verification v2.1.0 lists 200, 400, 401
// and 403 only, and its 403 PERMISSION_DENIED is documented for "when the
// user fails operational security"; a 429 would tell the client to retry
// later, but the token never answers again. On /number-verification/v0 it is
// the Orange edition's 403 with code 53 "Too many requests".
//
// The counts are kept in memory until the token expires: behind a balancer
// each replica counts its own, so a token can get MaxFailedVerifies false
// answers from each replica it reaches (single-use tokens, recorded in
// Postgres, allow one call in all).

// Defaults of the resource server's limits.
const (
	DefaultRateLimit         = 20000 // requests per second per client
	DefaultRateBurst         = 40000
	DefaultMaxFailedVerifies = 3 // false answers per token
)

// NoLimit as Config.RateLimit or Config.MaxFailedVerifies turns the limit
// off (0 is the default's).
const NoLimit = -1

// maxTrackedTokens bounds the memory of the false-answer counts: tokens that
// have answered false at least once and not yet expired. Past it, a new
// token's verify is answered 503 (over capacity) rather than uncounted.
const maxTrackedTokens = 1_000_000

// errTooManyFailedVerifies refuses a token that has used its false answers.
var errTooManyFailedVerifies = apiError{status: 403, code: "PERMISSION_DENIED", orange: 53, orangeMessage: "Too many requests",
	message: errPermissionDenied.message}

// setLimitDefaults applies the limits' defaults: a zero rate or cap is the
// default, a negative one is off.
func (c *Config) setLimitDefaults() {
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
		if c.RateBurst == 0 {
			c.RateBurst = DefaultRateBurst
		}
	}
	if c.RateBurst == 0 && c.RateLimit > 0 {
		c.RateBurst = max(1, int(c.RateLimit))
	}
	if c.MaxFailedVerifies == 0 {
		c.MaxFailedVerifies = DefaultMaxFailedVerifies
	}
}

// verifyFailures counts the false answers of each token (by jti) until it
// expires. A verify reserves one false answer before it compares, and gives
// it back when the answer is true, so concurrent calls with one token cannot
// get more than max false answers between them.
type verifyFailures struct {
	max     int           // <= 0: no cap
	skew    time.Duration // a token is accepted this long after exp
	now     func() time.Time
	refused prometheus.Counter

	mu        sync.Mutex
	byToken   map[string]*falseAnswers
	lastSweep time.Time
}

type falseAnswers struct {
	n         int // answered false, or being answered
	expiresAt time.Time
}

func newVerifyFailures(max int, skew time.Duration, now func() time.Time, reg prometheus.Registerer) *verifyFailures {
	f := &verifyFailures{max: max, skew: skew, now: now, byToken: map[string]*falseAnswers{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "numverify_resource_verify_failures_capped_total",
			Help: "Verify calls refused because their token had already answered false the maximum number of times.",
		})}
	if reg != nil {
		reg.MustRegister(f.refused)
	}
	return f
}

// failureKey is the token's jti, or when it has none what identifies it
// well enough: its client, number and expiry.
func failureKey(p principal) string {
	if p.jti != "" {
		return "jti " + p.jti
	}
	return "token " + p.clientID + " " + p.phoneNumber + " " + strconv.FormatInt(p.expiresAt.UnixNano(), 10)
}

// reserve takes one of the token's false answers before the answer is known;
// release gives it back when the answer was true (or none was given).
func (f *verifyFailures) reserve(p principal) (release func(), err *apiError) {
	if f.max <= 0 {
		return func() {}, nil
	}
	key, now := failureKey(p), f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweep(now)
	c := f.byToken[key]
	if c == nil {
		if len(f.byToken) >= maxTrackedTokens {
			return nil, errUnavailable.with("The service is over capacity; retry later.")
		}
		expiresAt := p.expiresAt.Add(f.skew)
		if p.expiresAt.IsZero() || expiresAt.Before(now) {
			expiresAt = now.Add(time.Hour) // cannot happen: expired tokens are refused
		}
		c = &falseAnswers{expiresAt: expiresAt}
		f.byToken[key] = c
	}
	if c.n >= f.max {
		f.refused.Inc()
		return nil, errTooManyFailedVerifies.with("The access token has answered false " + strconv.Itoa(f.max) + " times; it verifies no more numbers.")
	}
	c.n++
	return func() { f.release(key) }, nil
}

func (f *verifyFailures) release(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.byToken[key]; c != nil {
		c.n--
		if c.n <= 0 {
			delete(f.byToken, key)
		}
	}
}

// sweep drops the counts of expired tokens every 10 s, or every second
// while the table is full.
func (f *verifyFailures) sweep(now time.Time) {
	since := now.Sub(f.lastSweep)
	if since < time.Second || (since < 10*time.Second && len(f.byToken) < maxTrackedTokens) {
		return
	}
	f.lastSweep = now
	for k, c := range f.byToken {
		if !now.Before(c.expiresAt) {
			delete(f.byToken, k)
		}
	}
}
