package resource

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
)

var (
	verifiedTrue  = []byte(`{"devicePhoneNumberVerified":true}`)
	verifiedFalse = []byte(`{"devicePhoneNumberVerified":false}`)
)

// handleVerify answers POST …/verify: does the number (or its hash) in the
// body belong to the device the token was issued for?
func (s *Server) handleVerify(c echo.Context, p principal) error {
	req := c.Request()
	if !acceptsJSON(req.Header.Get(echo.HeaderAccept)) {
		return errNotAcceptable.with("This operation answers application/json only.")
	}
	contentType := req.Header.Get(echo.HeaderContentType)
	if contentType != "" && !isJSONContentType(contentType) {
		return errUnsupportedMedia.with("The request body must be application/json.")
	}
	body, release, e := readBody(req, s.cfg.MaxBodyBytes)
	defer release()
	if e != nil {
		return e
	}
	d := dialectOf(req.URL.Path)
	if contentType == "" && len(body) > 0 {
		return errUnsupportedMedia.with("The request body must be application/json.")
	}
	vr, e := decodeVerifyRequest(body, d)
	if e != nil {
		return e
	}
	// One of the token's false answers is taken before the answer is known
	// (limits.go); a true answer, or none, gives it back.
	giveBack, capped := s.failures.reserve(p)
	if capped != nil {
		return capped
	}
	if err := s.consume(req.Context(), p); err != nil {
		giveBack()
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	if vr.matches(p.phoneNumber, d) {
		giveBack()
		return c.JSONBlob(http.StatusOK, verifiedTrue)
	}
	return c.JSONBlob(http.StatusOK, verifiedFalse)
}

// handleShare answers GET …/device-phone-number with the device's number.
func (s *Server) handleShare(c echo.Context, p principal) error {
	req := c.Request()
	if !acceptsJSON(req.Header.Get(echo.HeaderAccept)) {
		return errNotAcceptable.with("This operation answers application/json only.")
	}
	if err := s.consume(req.Context(), p); err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	// The number matched ^\+[1-9][0-9]{4,14}$ (authorized checked it): no escaping needed.
	body := make([]byte, 0, 48)
	body = append(body, `{"devicePhoneNumber":"`...)
	body = append(body, p.phoneNumber...)
	body = append(body, `"}`...)
	return c.JSONBlob(http.StatusOK, body)
}

// handleOpenAPI serves the OpenAPI document of one edition.
func (s *Server) handleOpenAPI(doc []byte) echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", doc)
	}
}

// consume records the use of a single-use token (unless tokens are reusable
// here); a second use is refused as an invalid token (401 UNAUTHENTICATED,
// v0 code 41) and counted. Postgres unreachable or too slow: 503, and the
// call is not answered, since its use was not recorded.
//
// What uses a token up: the call the API answers. The handlers call consume
// after everything that a request can get wrong by itself (406, 415, 413,
// 400 for the body, 403 for the scope or the false-answer cap, 429) and just
// before the 200: CAMARA restricts the token to a single API call, and a call
// refused for its malformed body has not been one, so an SP that sent a bad
// body can fix it and retry with its token, but no token ever gets two
// answers.
func (s *Server) consume(ctx context.Context, p principal) error {
	if s.uses == nil {
		return nil
	}
	if !recordable(p.jti, p.expiresAt) {
		return errInvalidCredentials.with("The access token has no usable identifier; tokens are single-use here.")
	}
	ctx, cancel := context.WithTimeout(ctx, s.uses.timeout)
	defer cancel()
	first, err := s.uses.record(ctx, p.jti, p.expiresAt)
	if err != nil {
		if !useUnavailable(err) {
			return fmt.Errorf("record access token use: %w", err)
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "single-use check unavailable", errAttr(err))
		s.metrics.rejectedReason("unavailable")
		return errUnavailable.with("The service cannot record the token's use right now.")
	}
	if !first {
		s.metrics.rejectedReason("reused")
		return errInvalidCredentials.with("The access token has already been used.")
	}
	return nil
}
