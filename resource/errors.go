package resource

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// apiError is an error a client is told about. One value carries both
// dialects: the CAMARA ErrorInfo of /number-verification/v2 ({status, code,
// message}) and the Orange edition's {code: int, message, description} of
// /number-verification/v0. Values are never mutated once declared: the
// helpers below return copies.
type apiError struct {
	status  int
	code    string // CAMARA code
	message string // CAMARA message: the spec's text where it has one
	orange  int    // Orange numeric code
	// orangeMessage is the Orange title ("Invalid body"); detail explains
	// this occurrence (v0 description; replaces the v2 message when set and
	// the v2 message is generic).
	orangeMessage string
	detail        string
	// bearerError is the RFC 6750 error of the WWW-Authenticate challenge
	// ("invalid_token", "insufficient_scope"); challenge marks 401s that carry
	// a challenge without an error code (no credentials at all).
	bearerError string
	challenge   bool
	scope       string // for insufficient_scope
	retryAfter  int    // seconds, for 429
}

func (e *apiError) Error() string {
	if e.detail != "" {
		return e.code + ": " + e.detail
	}
	return e.code + ": " + e.message
}

// with returns a copy of e explaining this occurrence.
func (e apiError) with(detail string) *apiError {
	e.detail = detail
	return &e
}

const invalidArgumentMessage = "Client specified an invalid argument, request body or query param."

// The errors this server answers with. The CAMARA messages of 401 and 403
// are the spec's (the test definitions compare them verbatim).
var (
	errInvalidURLParameter = apiError{status: 400, code: "INVALID_ARGUMENT", message: invalidArgumentMessage, orange: 20, orangeMessage: "Invalid URL parameter value"}
	errMissingBody         = apiError{status: 400, code: "INVALID_ARGUMENT", message: invalidArgumentMessage, orange: 21, orangeMessage: "Missing body"}
	errInvalidBody         = apiError{status: 400, code: "INVALID_ARGUMENT", message: invalidArgumentMessage, orange: 22, orangeMessage: "Invalid body"}
	errMissingBodyField    = apiError{status: 400, code: "INVALID_ARGUMENT", message: invalidArgumentMessage, orange: 23, orangeMessage: "Missing body field"}
	errInvalidBodyField    = apiError{status: 400, code: "INVALID_ARGUMENT", message: invalidArgumentMessage, orange: 24, orangeMessage: "Invalid body field"}
	errInvalidHeader       = apiError{status: 400, code: "INVALID_ARGUMENT", message: invalidArgumentMessage, orange: 26, orangeMessage: "Invalid header value"}

	errMissingCredentials = apiError{status: 401, code: "UNAUTHENTICATED", orange: 40, orangeMessage: "Missing credentials", challenge: true,
		message: "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required."}
	errInvalidCredentials = apiError{status: 401, code: "UNAUTHENTICATED", orange: 41, orangeMessage: "Invalid credentials", bearerError: "invalid_token",
		message: "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required."}
	errExpiredCredentials = apiError{status: 401, code: "UNAUTHENTICATED", orange: 42, orangeMessage: "Expired credentials", bearerError: "invalid_token",
		message: "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required."}

	errPermissionDenied = apiError{status: 403, code: "PERMISSION_DENIED", orange: 50, orangeMessage: "Access denied",
		message: "Client does not have sufficient permissions to perform this action."}
	errNotNetworkAuthenticated = apiError{status: 403, code: "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK", orange: 52, orangeMessage: "Forbidden user",
		message: "Client must authenticate via the mobile network to use this service"}

	errNotFound         = apiError{status: 404, code: "NOT_FOUND", message: "The specified resource is not found.", orange: 60, orangeMessage: "Resource not found"}
	errMethodNotAllowed = apiError{status: 405, code: "METHOD_NOT_ALLOWED", message: "The requested method is not allowed/supported on the target resource.", orange: 61, orangeMessage: "Method not allowed"}
	errNotAcceptable    = apiError{status: 406, code: "NOT_ACCEPTABLE", message: "The server cannot produce a response matching the content requested by the client through Accept-* headers.", orange: 62, orangeMessage: "Not acceptable"}
	errTooLarge         = apiError{status: 413, code: "PAYLOAD_TOO_LARGE", message: "The request body is larger than the server accepts.", orange: 66, orangeMessage: "Request entity too large"}
	errUnsupportedMedia = apiError{status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: "The server refuses to accept the request because the payload format is in an unsupported format.", orange: 68, orangeMessage: "Unsupported media type"}
	errTooManyRequests  = apiError{status: 429, code: "TOO_MANY_REQUESTS", message: "Either out of resource quota or reaching rate limiting.", orange: 53, orangeMessage: "Too many requests"}
	errInternal         = apiError{status: 500, code: "INTERNAL", message: "Unknown server error. Typically a server bug.", orange: 1, orangeMessage: "Internal error"}
	errUnavailable      = apiError{status: 503, code: "UNAVAILABLE", message: "Service Unavailable.", orange: 5, orangeMessage: "The service is temporarily unavailable"}
)

// dialect is the error format of a request, chosen by its path.
type dialect uint8

const (
	dialectCAMARA dialect = iota // /number-verification/v2 and anything unknown
	dialectOrange                // /number-verification/v0
)

func dialectOf(path string) dialect {
	if strings.HasPrefix(path, basePathV0) {
		return dialectOrange
	}
	return dialectCAMARA
}

// handleError is the Echo HTTPErrorHandler: every error, ours or Echo's,
// becomes one of the documented bodies. Anything unexpected is a 500 whose
// cause is logged (never with request data) and never shown.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := s.toAPIError(err, c)
	h := c.Response().Header()
	switch {
	case e.challenge:
		h.Set("WWW-Authenticate", `Bearer realm="`+s.realm+`"`)
	case e.bearerError != "":
		challenge := `Bearer realm="` + s.realm + `", error="` + e.bearerError + `"`
		if e.detail != "" {
			challenge += `, error_description="` + e.detail + `"`
		}
		if e.scope != "" {
			challenge += `, scope="` + e.scope + `"`
		}
		h.Set("WWW-Authenticate", challenge)
	}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	h.Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(e.status)
		return
	}
	_ = c.JSONBlob(e.status, renderError(e, dialectOf(c.Request().URL.Path)))
}

func (s *Server) toAPIError(err error, c echo.Context) *apiError {
	var e *apiError
	if errors.As(err, &e) {
		if e.status >= 500 {
			s.log.LogAttrs(c.Request().Context(), levelFor(e.status), "request failed", errAttr(err))
		}
		return e
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &errNotFound
		case http.StatusMethodNotAllowed:
			return &errMethodNotAllowed
		case http.StatusRequestEntityTooLarge:
			return &errTooLarge
		case http.StatusUnsupportedMediaType:
			return &errUnsupportedMedia
		case http.StatusBadRequest:
			return &errInvalidBody
		case http.StatusServiceUnavailable:
			return &errUnavailable
		}
	}
	s.log.LogAttrs(c.Request().Context(), levelFor(500), "request failed", errAttr(err))
	return &errInternal
}

// camaraBody and orangeBody are the two error shapes.
type camaraBody struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type orangeBody struct {
	Code        int    `json:"code"`
	Message     string `json:"message"`
	Description string `json:"description"`
}

func renderError(e *apiError, d dialect) []byte {
	var v any
	if d == dialectOrange {
		description := e.detail
		if description == "" {
			description = e.message
		}
		v = orangeBody{Code: e.orange, Message: e.orangeMessage, Description: description}
	} else {
		message := e.message
		if e.detail != "" && e.status != http.StatusUnauthorized && e.status != http.StatusForbidden {
			// 401 and 403 keep the spec's wording; others say what was wrong.
			message = e.detail
		}
		v = camaraBody{Status: e.status, Code: e.code, Message: message}
	}
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for these types
		return []byte(`{"status":500,"code":"INTERNAL","message":"Unknown server error."}`)
	}
	return b
}
