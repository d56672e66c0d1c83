package network

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/internal/pg"
)

// MinAdminTokenLength is the shortest admin token accepted outside insecure
// development mode: 32 characters (e.g. `openssl rand -hex 16`) put guessing
// out of reach even unthrottled.
const MinAdminTokenLength = 32

// AdminConfig configures the admin API.
type AdminConfig struct {
	// Token is the bearer token every request must carry: required, and at
	// least MinAdminTokenLength characters, unless Insecure.
	Token string
	// Insecure is development only: a short token is accepted, and with no
	// token at all the API runs without authentication.
	Insecure bool
	// Failures throttles failed authentications per source address.
	Failures FailureLimit
	Logger   *slog.Logger
	Now      func() time.Time // default time.Now
}

// Admin is the simulated core's admin API: attach, detach, list, lookup.
type Admin struct {
	store     *Store
	tokenHash [sha256.Size]byte
	insecure  bool
	failures  *failureThrottle
	logger    *slog.Logger
	echo      *echo.Echo
}

// NewAdmin builds the admin API on store.
func NewAdmin(store *Store, cfg AdminConfig) (*Admin, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &Admin{store: store, tokenHash: sha256.Sum256([]byte(cfg.Token)), insecure: cfg.Insecure && cfg.Token == "",
		failures: newFailureThrottle(cfg.Failures, cfg.Now), logger: logger}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.handleError
	e.Use(middleware.Recover(), routeLabel)
	a.echo = e
	a.routes(e)
	return a, nil
}

// routeLabel reports the route template ("/sessions/:id") for the access log
// line and the metrics; without it every admin request was labelled "/", the
// pattern the API is mounted at.
func routeLabel(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route := c.Path()
		if route == "" || route == "/*" {
			route = "unmatched"
		}
		httpx.SetRoute(c.Request().Context(), route)
		return next(c)
	}
}

// ServeHTTP makes the admin API an http.Handler.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.echo.ServeHTTP(w, r) }

// requireToken refuses requests without the admin bearer token. Both sides
// are hashed first so the comparison takes the same time whatever the length.
func (a *Admin) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.insecure {
			return next(c)
		}
		source := a.failures.key(c.Request())
		if err := a.failures.check(c, source); err != nil {
			return err
		}
		scheme, token, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="numverify-network"`)
			return a.failures.failed(c, source, &apiError{http.StatusUnauthorized, "unauthenticated", "a bearer token is required"})
		}
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.tokenHash[:]) != 1 {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="numverify-network", error="invalid_token"`)
			return a.failures.failed(c, source, &apiError{http.StatusUnauthorized, "unauthenticated", "the bearer token is not valid"})
		}
		return next(c)
	}
}

// apiError is an error with the status and body it is answered with.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.message) }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "invalid_argument", fmt.Sprintf(format, args...)}
}

// statusOf maps an error to the answer the client gets. Only what the client
// sent is echoed back; unexpected errors become a bare 500.
func statusOf(err error) *apiError {
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &he):
		return &apiError{he.Code, strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), http.StatusText(he.Code)}
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrPoolNotConfigured), errors.Is(err, ErrPortRequired):
		return &apiError{http.StatusBadRequest, "invalid_argument", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")}
	case errors.Is(err, ErrSessionNotFound):
		return &apiError{http.StatusNotFound, "not_found", "no such session"}
	case errors.Is(err, ErrNotFound):
		return &apiError{http.StatusNotFound, "not_found", "no session holds this address (and port) at that instant"}
	case errors.Is(err, ErrAddressInUse):
		return &apiError{http.StatusConflict, "address_in_use", "address in use"}
	case errors.Is(err, ErrPoolExhausted):
		return &apiError{http.StatusConflict, "pool_exhausted", "every address of the pool is in use"}
	case errors.Is(err, ErrAlreadyDetached):
		return &apiError{http.StatusConflict, "already_detached", "the session is already detached"}
	case pg.IsConnectionError(err):
		return &apiError{http.StatusServiceUnavailable, "unavailable", "the session database is unreachable; retry later"}
	}
	return &apiError{http.StatusInternalServerError, "internal", "internal error"}
}

// handleError renders every error as {"error", "message"}.
func (a *Admin) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	answer := statusOf(err)
	if answer.status >= 500 {
		a.logger.ErrorContext(c.Request().Context(), "network admin request failed",
			"method", c.Request().Method, "route", c.Path(), "status", answer.status, "err", err)
	}
	body := map[string]string{"error": answer.code, "message": answer.message}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(answer.status)
	} else {
		err = c.JSON(answer.status, body)
	}
	if err != nil {
		a.logger.WarnContext(c.Request().Context(), "network admin: writing error response", "err", err)
	}
}
