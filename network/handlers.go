package network

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// maxBodyBytes bounds an attach request body.
const maxBodyBytes = 16 << 10

// attachBody is the JSON of POST /sessions.
type attachBody struct {
	MSISDN string `json:"msisdn"`
	IP     string `json:"ip"`
	Ports  string `json:"ports"`
	Pool   string `json:"pool"`
	APN    string `json:"apn"`
	RAT    string `json:"rat"`
	IMSI   string `json:"imsi"`
}

// decodeBody reads the request's one JSON object (of known fields only)
// into v; what names it in the 4xx answers.
func decodeBody(c echo.Context, what string, v any) error {
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" {
		if media, _, err := mime.ParseMediaType(ct); err != nil || media != echo.MIMEApplicationJSON {
			return &apiError{http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json"}
		}
	}
	decoder := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, maxBodyBytes))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return badRequest("a JSON body is required")
		}
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &apiError{http.StatusRequestEntityTooLarge, "payload_too_large", "the body is too large"}
		}
		return badRequest("the body is not a valid %s: %s", what, jsonProblem(err))
	}
	if decoder.More() {
		return badRequest("the body must hold one JSON object")
	}
	return nil
}

// handleAttach: POST /sessions {msisdn, ip?, ports?, pool?, apn?, rat?, imsi?} → 201 session.
func (a *Admin) handleAttach(c echo.Context) error {
	var body attachBody
	if err := decodeBody(c, "session request", &body); err != nil {
		return err
	}
	session, err := a.store.Attach(c.Request().Context(), AttachRequest{
		MSISDN: body.MSISDN, IP: body.IP, Ports: body.Ports, Pool: PoolKind(body.Pool),
		APN: body.APN, RAT: body.RAT, IMSI: body.IMSI,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, session)
}

// jsonProblem describes a decoding error without echoing the body.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return "field " + typeErr.Field + " must be a " + typeErr.Type.String()
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return "malformed JSON"
}

// handleDetach: DELETE /sessions/{id} → 200 the closed session.
func (a *Admin) handleDetach(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest("id must be a positive integer")
	}
	session, err := a.store.Detach(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, session)
}

// handleList: GET /sessions?msisdn=…&active=true|false&limit=n → {"sessions": […]}.
// active=true (the default) lists attached sessions only; active=false
// lists history too.
func (a *Admin) handleList(c echo.Context) error {
	filter := ListFilter{MSISDN: queryMSISDN(c.QueryParam("msisdn"))}
	if v := c.QueryParam("active"); v != "" {
		active, err := strconv.ParseBool(v)
		if err != nil {
			return badRequest("active must be true or false")
		}
		filter.All = !active
	}
	if v := c.QueryParam("limit"); v != "" {
		limit, err := strconv.Atoi(v)
		if err != nil || limit < 1 {
			return badRequest("limit must be a positive integer")
		}
		filter.Limit = limit
	}
	sessions, err := a.store.List(c.Request().Context(), filter)
	if err != nil {
		return err
	}
	if sessions == nil {
		sessions = []Session{}
	}
	return c.JSON(http.StatusOK, map[string][]Session{"sessions": sessions})
}

// queryMSISDN restores the '+' that an unencoded query string turns into a space.
func queryMSISDN(v string) string {
	if strings.HasPrefix(v, " ") {
		return "+" + strings.TrimLeft(v, " ")
	}
	return v
}

// handleLookup: GET /lookup?ip=…&port=…&at=RFC3339 → the session, or 404.
// Without a port, an address shared behind CGNAT is refused with 400.
func (a *Admin) handleLookup(c echo.Context) error {
	rawIP := c.QueryParam("ip")
	if rawIP == "" {
		return badRequest("ip is required")
	}
	addr, err := ParseHost(rawIP)
	if err != nil {
		return badRequest("ip must be an IP address")
	}
	at := time.Now()
	if v := c.QueryParam("at"); v != "" {
		if at, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+")); err != nil {
			return badRequest("at must be an RFC 3339 instant, e.g. 2026-03-01T14:02:00Z")
		}
	}
	ctx := c.Request().Context()
	var session Session
	if v := c.QueryParam("port"); v != "" {
		port, parseErr := strconv.ParseUint(v, 10, 16)
		if parseErr != nil {
			return badRequest("port must be between 0 and 65535")
		}
		session, err = a.store.Resolve(ctx, addr, uint16(port), at)
	} else {
		session, err = a.store.LookupAddress(ctx, addr, at)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, session)
}

// handleHealth: GET /healthz → 200 when Postgres answers, 503 otherwise.
func (a *Admin) handleHealth(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := a.store.db.Ping(ctx); err != nil {
		return &apiError{http.StatusServiceUnavailable, "unavailable", "the session database is unreachable"}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
