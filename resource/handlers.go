package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"

	"github.com/numverify/numverify/internal/pg"
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
	release, capped := s.failures.reserve(p)
	if capped != nil {
		return capped
	}
	if err := s.consume(req.Context(), p); err != nil {
		release()
		return err
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	if vr.matches(p.phoneNumber, d) {
		release()
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

// consume records a single-use token's jti (when tokens are single-use); a
// second use is refused as an invalid token. Postgres unreachable: 503.
func (s *Server) consume(ctx context.Context, p principal) error {
	if !s.cfg.SingleUseTokens {
		return nil
	}
	if p.jti == "" {
		return errInvalidCredentials.with("The access token has no identifier; tokens are single-use here.")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tag, err := s.cfg.Pool.Exec(ctx,
		`INSERT INTO used_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`,
		p.jti, p.expiresAt)
	if err != nil {
		// Postgres refusing the statement is a bug of ours (500); anything
		// else (refused, reset or timed-out connections, EOF mid-answer)
		// means it cannot be reached.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pg.IsConnectionError(err) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "single-use check unavailable", errAttr(err))
			return errUnavailable.with("The service cannot record the token's use right now.")
		}
		return fmt.Errorf("record access token use: %w", err)
	}
	if tag.RowsAffected() == 0 {
		s.metrics.rejectedReason("reused")
		return errInvalidCredentials.with("The access token has already been used.")
	}
	return nil
}
