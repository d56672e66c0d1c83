// Package resource is the Number Verification resource server: POST …/verify
// and GET …/device-phone-number under /number-verification/v2 (CAMARA
// v2.1.0) and /number-verification/v0 (the Orange edition of v0.3.1), on
// Echo. It validates access tokens offline (the jwt format: decrypt, verify
// against the authorization server's JWKS, check the claims) or through RFC
// 7662 introspection (the opaque format), follows revocations announced by
// the authorization server, and answers every client mistake with its
// documented error.
//
// It shares nothing with the authorization server but internal/contract.
package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/ratelimit"
)

// TokenFormat is how access tokens reach this server.
type TokenFormat string

const (
	// FormatJWT: RFC 9068 tokens signed by the authorization server and
	// encrypted to this server's key (nested, ECDH-ES), validated offline.
	FormatJWT TokenFormat = "jwt"
	// FormatJWTDirect: RFC 9068 claims encrypted with the key both servers
	// share (dir, A256GCM), validated offline. Each JWT format refuses the
	// other's tokens.
	FormatJWTDirect TokenFormat = "jwt-dir"
	// FormatOpaque: tokens the authorization server introspects (RFC 7662).
	FormatOpaque TokenFormat = "opaque"
)

// KeySource returns the resource server's decryption keys: private P-256
// JWKs (FormatJWT) or 32-byte symmetric JWKs whose Key is a []byte
// (FormatJWTDirect), each with its kid; keys of the other format are ignored. It is called at start and again, rate
// limited, when a token names a kid it has not returned; keys it stops
// returning stay usable for Config.KeyGrace, so a rotation never fails a
// token issued just before it.
type KeySource func(ctx context.Context) ([]jose.JSONWebKey, error)

// Config is everything the resource server needs; New validates it.
type Config struct {
	Logger *slog.Logger
	// Pool is Postgres: the revocation listener takes one connection of it
	// for LISTEN, and single-use tokens are recorded through it.
	Pool *pgxpool.Pool
	// Registry receives the server's own metrics (optional).
	Registry prometheus.Registerer

	// Issuer is the authorization server: the iss tokens must carry, and
	// where its discovery document is (Issuer + /.well-known/openid-configuration)
	// unless DiscoveryURL says otherwise.
	Issuer       string
	DiscoveryURL string
	// Audience must be among a token's aud.
	Audience    string
	TokenFormat TokenFormat
	// DecryptionKeys is required for the jwt and jwt-dir formats.
	DecryptionKeys KeySource
	KeyGrace       time.Duration // default 1 h
	// KeyRefreshInterval is the least time between two fetches of keys
	// (JWKS or DecryptionKeys) caused by an unknown kid; default 1 s.
	KeyRefreshInterval time.Duration
	// The resource server's client credentials at the introspection
	// endpoint (opaque format).
	IntrospectionClientID     string
	IntrospectionClientSecret string
	// HTTPClient fetches discovery, JWKS and introspection; default: 5 s timeout.
	HTTPClient *http.Client

	// SingleUseTokens accepts each token (by jti) for one successful call
	// (CAMARA Number Verification 2.1.1), recorded in Postgres with
	// concurrent uses committed together (singleuse.go). serve turns it on
	// unless --single-use-tokens=false (deployments still following NV 2.0).
	SingleUseTokens bool
	// AllowNonNetworkAuthentication accepts tokens whose amr lacks "nba"
	// (a playground deployment); off, they get 403
	// NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK.
	AllowNonNetworkAuthentication bool
	// RateLimit is the requests per second allowed to each client (by the
	// token's client_id), with bursts of RateBurst; 0 is DefaultRateLimit,
	// NoLimit (any negative value) none.
	RateLimit float64
	RateBurst int
	// MaxFailedVerifies is how many times one token may answer
	// devicePhoneNumberVerified=false before verify refuses it (limits.go);
	// 0 is DefaultMaxFailedVerifies, NoLimit (any negative value) no cap.
	MaxFailedVerifies int
	// MaxBodyBytes bounds a request body; default 4096.
	MaxBodyBytes int64
	// ClockSkew is the leeway on exp, nbf and iat; 0 means the default 30 s,
	// NoClockSkew (any negative value) none at all.
	ClockSkew time.Duration
	// RevocationMaxStaleness: when the revocation feed has been down this
	// long, answer 503 rather than risk honouring a revoked token; 0 never.
	RevocationMaxStaleness time.Duration

	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Audience == "" {
		c.Audience = contract.DefaultAudience
	}
	if c.TokenFormat == "" {
		c.TokenFormat = FormatJWT
	}
	if c.KeyGrace == 0 {
		c.KeyGrace = time.Hour
	}
	if c.KeyRefreshInterval == 0 {
		c.KeyRefreshInterval = time.Second
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4096
	}
	switch {
	case c.ClockSkew == 0:
		c.ClockSkew = 30 * time.Second
	case c.ClockSkew < 0:
		c.ClockSkew = 0
	}
	c.setLimitDefaults()
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DiscoveryURL == "" && c.Issuer != "" {
		c.DiscoveryURL = strings.TrimSuffix(c.Issuer, "/") + "/.well-known/openid-configuration"
	}
}

// NoClockSkew as Config.ClockSkew asks for no leeway at all (0 is the
// default's).
const NoClockSkew time.Duration = -1

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var problems []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Errorf(format, args...))
		}
	}
	check(c.Pool != nil, "a Postgres pool is required (revocations, single-use tokens)")
	check(isHTTPURL(c.Issuer), "issuer %q must be an http(s) URL", c.Issuer)
	check(c.DiscoveryURL == "" || isHTTPURL(c.DiscoveryURL), "discovery URL %q must be an http(s) URL", c.DiscoveryURL)
	check(c.Audience != "", "audience must not be empty")
	check(c.TokenFormat == FormatJWT || c.TokenFormat == FormatJWTDirect || c.TokenFormat == FormatOpaque,
		"token format %q must be jwt, jwt-dir or opaque", c.TokenFormat)
	check(c.TokenFormat == FormatOpaque || c.DecryptionKeys != nil, "the %s token format needs decryption keys", c.TokenFormat)
	check(c.TokenFormat != FormatOpaque || c.IntrospectionClientID != "", "the opaque token format needs an introspection client id")
	check(!math.IsNaN(c.RateLimit) && !math.IsInf(c.RateLimit, 0), "rate limit %v must be a number (negative: off)", c.RateLimit)
	check(c.RateBurst >= 0, "rate burst %d must not be negative", c.RateBurst)
	check(c.MaxBodyBytes > 0, "max body bytes %d must be positive", c.MaxBodyBytes)
	check(c.ClockSkew >= 0 && c.ClockSkew <= 5*time.Minute, "clock skew %v must be between 0 and 5m", c.ClockSkew)
	check(c.RevocationMaxStaleness >= 0, "revocation max staleness %v must not be negative", c.RevocationMaxStaleness)
	return errors.Join(problems...)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Server is the resource server. Handler serves it; Close stops its
// background work (revocation listener, key refreshes).
type Server struct {
	cfg       Config
	log       *slog.Logger
	echo      *echo.Echo
	realm     string
	tokens    tokenValidator
	revoked   *revocations
	listener  *revocationListener
	limiter   *ratelimit.Limiter
	failures  *verifyFailures
	uses      *useRecorder // nil: tokens are reusable
	metrics   *metrics
	openapiV2 []byte
	openapiV0 []byte

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds the server and starts its revocation listener; it returns once
// the revoked tokens have been loaded (or ctx ends). The authorization
// server need not be up yet: keys are fetched in the background and on
// demand.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("resource server configuration: %w", err)
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With(slog.String("component", "resource")),
		realm:   "number-verification",
		revoked: newRevocations(cfg.ClockSkew),
		limiter: ratelimit.New(cfg.RateLimit, cfg.RateBurst, 100_000),
		metrics: newMetrics(cfg.Registry),
		cancel:  cancel,
	}
	maxFailed := cfg.MaxFailedVerifies
	if cfg.SingleUseTokens {
		// A single-use token answers one call: the false-answer cap has
		// nothing left to bound, and concurrent reuses get their 401.
		maxFailed = NoLimit
	}
	s.failures = newVerifyFailures(maxFailed, cfg.ClockSkew, cfg.Now, cfg.Registry)
	var err error
	if s.openapiV2, s.openapiV0, err = openAPIDocuments(); err != nil {
		cancel()
		return nil, err
	}
	disco := newDiscovery(cfg.DiscoveryURL, cfg.Issuer, cfg.HTTPClient)
	switch cfg.TokenFormat {
	case FormatJWT, FormatJWTDirect:
		s.tokens = newJWTValidator(bg, cfg, disco, s.metrics, s.log, &s.wg)
	case FormatOpaque:
		s.tokens = newIntrospector(bg, cfg, disco, s.metrics, s.log)
	}
	if cfg.SingleUseTokens {
		s.uses = newUseRecorder(cfg.Pool, s.log, cfg.Registry)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.uses.run(bg) }()
	}
	s.listener = newRevocationListener(cfg.Pool, s.revoked, s.log, s.metrics, cfg.Now)
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.listener.run(bg) }()
	if err := s.listener.waitLoaded(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("load revoked tokens: %w", err)
	}
	s.echo = s.newEcho()
	return s, nil
}

// Handler is the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.echo }

// Ready reports whether the server can validate tokens now (keys loaded,
// revocation feed connected); for the readiness endpoint.
func (s *Server) Ready(ctx context.Context) error {
	if err := s.tokens.ready(ctx); err != nil {
		return err
	}
	if !s.listener.connected() {
		return errors.New("revocation feed disconnected")
	}
	return nil
}

// Close stops the background work and waits for it.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.Logger.SetOutput(discard{})
	e.Use(s.observe)
	s.routes(e)
	return e
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func levelFor(status int) slog.Level {
	if status >= 500 && status != http.StatusServiceUnavailable {
		return slog.LevelError
	}
	return slog.LevelWarn
}

func errAttr(err error) slog.Attr { return slog.String("err", err.Error()) }

func stackAttr(stack []byte) slog.Attr { return slog.String("stack", string(stack)) }
