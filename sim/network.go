package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// NetworkAdmin is a client of the simulated network's admin API
// (`numverify serve network`, default :9092).
type NetworkAdmin struct {
	BaseURL string // e.g. http://localhost:9092
	Token   string // the admin bearer token
	HTTP    *http.Client
}

// Session is the part of the network's session JSON the simulators use.
type Session struct {
	ID     int64  `json:"id"`
	MSISDN string `json:"msisdn"`
	// IP is the session's address as the API prints it: "127.10.0.7",
	// "127.10.0.7/32", or an IPv6 /64 prefix.
	IP        string          `json:"ip"`
	Ports     json.RawMessage `json:"ports,omitempty"`
	StartedAt time.Time       `json:"started_at"`
}

// Addr is the address a device holding the session sends from: the host
// address, or for an IPv6 prefix its first host.
func (s Session) Addr() (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s.IP); err == nil {
		if p.IsSingleIP() {
			return p.Addr(), nil
		}
		return p.Masked().Addr().Next(), nil
	}
	a, err := netip.ParseAddr(s.IP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("session %d: address %q: %w", s.ID, s.IP, err)
	}
	return a, nil
}

// APIError is a non-2xx answer of one of the servers.
type APIError struct {
	Method, URL string
	Status      int
	Code        string // CAMARA code, OAuth2 error, or the v0 numeric code
	Message     string
}

func (e *APIError) Error() string {
	msg := e.Message
	if e.Code != "" {
		msg = e.Code + ": " + msg
	}
	return fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.URL, e.Status, strings.TrimSpace(msg))
}

// Attach opens a session for msisdn, at addr when it is valid, else at an
// address the network allocates from its pool.
func (n *NetworkAdmin) Attach(ctx context.Context, msisdn string, addr netip.Addr) (Session, error) {
	body := map[string]string{"msisdn": msisdn}
	if addr.IsValid() {
		body["ip"] = addr.String()
	}
	var s Session
	err := n.do(ctx, http.MethodPost, "/sessions", body, &s)
	return s, err
}

// Detach closes a session.
func (n *NetworkAdmin) Detach(ctx context.Context, id int64) error {
	return n.do(ctx, http.MethodDelete, "/sessions/"+strconv.FormatInt(id, 10), nil, nil)
}

// Lookup asks who holds addr now (nil session when nobody does).
func (n *NetworkAdmin) Lookup(ctx context.Context, addr netip.Addr) (*Session, error) {
	var s Session
	err := n.do(ctx, http.MethodGet, "/lookup?ip="+url.QueryEscape(addr.String()), nil, &s)
	if apiErr, ok := err.(*APIError); ok && apiErr.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (n *NetworkAdmin) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	u := strings.TrimRight(n.BaseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if n.Token != "" {
		req.Header.Set("Authorization", "Bearer "+n.Token)
	}
	client := n.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("network admin API: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return apiError(method, u, resp.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, u, err)
		}
	}
	return nil
}

// apiError decodes whichever error body a numverify server sent: CAMARA
// ErrorInfo {status, code, message}, Orange v0 {code: int, message,
// description}, OAuth2 {error, error_description}, Echo {message}, or text.
func apiError(method, u string, status int, raw []byte) *APIError {
	e := &APIError{Method: method, URL: u, Status: status}
	var body struct {
		Code             json.RawMessage `json:"code"`
		Message          string          `json:"message"`
		Description      string          `json:"description"`
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(raw, &body) != nil {
		e.Message = firstLine(string(raw), 200)
		return e
	}
	switch {
	case body.Error != "":
		e.Code, e.Message = body.Error, body.ErrorDescription
	case len(body.Code) > 0:
		var s string
		if json.Unmarshal(body.Code, &s) != nil {
			s = string(body.Code)
		}
		e.Code, e.Message = s, strings.TrimSpace(body.Message+" "+body.Description)
	default:
		e.Message = body.Message
	}
	return e
}

func firstLine(s string, limit int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}
