package network

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

const testToken = "s3cret-admin-token-of-32-characters"

type apiCase struct {
	name       string
	method     string
	path       string
	token      string // "" = no Authorization header
	body       string
	wantStatus int
	wantError  string // the "error" field, when an error is expected
	check      func(t *testing.T, body []byte)
}

func (tt apiCase) run(t *testing.T, baseURL string) []byte {
	t.Helper()
	var body io.Reader
	if tt.body != "" {
		body = strings.NewReader(tt.body)
	}
	req, err := http.NewRequest(tt.method, baseURL+tt.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if tt.token != "" {
		req.Header.Set("Authorization", "Bearer "+tt.token)
	}
	if tt.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != tt.wantStatus {
		t.Fatalf("%s %s = %d %s; want %d", tt.method, tt.path, resp.StatusCode, raw, tt.wantStatus)
	}
	if resp.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: Bearer (got %q)", resp.Header.Get("WWW-Authenticate"))
	}
	if tt.wantError != "" {
		var e struct{ Error, Message string }
		if err := json.Unmarshal(raw, &e); err != nil || e.Error != tt.wantError || e.Message == "" {
			t.Errorf("error body %s; want error %q with a message", raw, tt.wantError)
		}
	}
	if tt.check != nil {
		tt.check(t, raw)
	}
	return raw
}

func newTestAdmin(t *testing.T, store *Store, logs *bytes.Buffer) string {
	t.Helper()
	admin, err := NewAdmin(store, AdminConfig{Token: testToken, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(admin)
	t.Cleanup(server.Close)
	return server.URL
}

func decodeSession(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("session body %s: %v", raw, err)
	}
	return s
}

func wantField(key string, want any) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		if got := decodeSession(t, raw)[key]; got != want {
			t.Errorf("%s = %v; want %v (body %s)", key, got, want, raw)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	var logs bytes.Buffer
	base := newTestAdmin(t, store, &logs)
	held := mustAttach(t, store, AttachRequest{MSISDN: "+33687654321", IP: "127.10.0.50"})
	detached := mustAttach(t, store, AttachRequest{MSISDN: "+33687654322", IP: "127.10.0.51"})
	if _, err := store.Detach(context.Background(), detached.ID); err != nil {
		t.Fatal(err)
	}
	tok := testToken
	// An offset written with an unencoded '+' reaches the server as a space.
	pastWithOffset := held.Start.Add(time.Millisecond).In(time.FixedZone("", 3600)).Format(time.RFC3339Nano)
	tests := []apiCase{
		{"no token", "GET", "/sessions", "", "", 401, "unauthenticated", nil},
		{"wrong token", "GET", "/sessions", "not-the-token", "", 401, "unauthenticated", nil},
		{"token prefix only", "GET", "/lookup?ip=127.10.0.50", testToken[:5], "", 401, "unauthenticated", nil},
		{"attach given address", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"127.10.0.7","apn":"internet"}`, 201, "",
			wantField("ip", "127.10.0.7")},
		{"attach cgnat block", "POST", "/sessions", tok, `{"msisdn":"+33612345679","ip":"127.20.0.1","ports":"2048-3071"}`, 201, "",
			wantField("ports", "2048-3071")},
		{"attach ipv6 from pool", "POST", "/sessions", tok, `{"msisdn":"+33612345670","pool":"ipv6"}`, 201, "",
			func(t *testing.T, raw []byte) {
				if ip, _ := decodeSession(t, raw)["ip"].(string); !strings.HasPrefix(ip, "fd00:6e76:") || !strings.HasSuffix(ip, "::/64") {
					t.Errorf("ip %q; want a /64 of fd00:6e76::/48", ip)
				}
			}},
		{"attach address in use", "POST", "/sessions", tok, `{"msisdn":"+33612345671","ip":"127.10.0.50"}`, 409, "address_in_use",
			func(t *testing.T, raw []byte) {
				if strings.Contains(string(raw), "87654321") {
					t.Errorf("409 body %s discloses the holder", raw)
				}
			}},
		{"attach malformed msisdn", "POST", "/sessions", tok, `{"msisdn":"0612345678"}`, 400, "invalid_argument", nil},
		{"attach malformed address", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"999.1.1.1"}`, 400, "invalid_argument", nil},
		{"attach unspecified IPv4", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"0.0.0.0"}`, 400, "invalid_argument", nil},
		{"attach unspecified IPv6", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"::"}`, 400, "invalid_argument", nil},
		{"attach unspecified IPv6 /64", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"::/64"}`, 400, "invalid_argument", nil},
		{"attach IPv4 multicast", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"239.1.2.3"}`, 400, "invalid_argument", nil},
		{"attach IPv4 link-local multicast", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"224.0.0.1"}`, 400, "invalid_argument", nil},
		{"attach IPv6 link-local multicast", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"ff02::1"}`, 400, "invalid_argument", nil},
		{"attach IPv6 multicast /64", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"ff0e::/64"}`, 400, "invalid_argument", nil},
		{"attach broadcast", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"255.255.255.255"}`, 400, "invalid_argument", nil},
		{"attach mapped unspecified", "POST", "/sessions", tok, `{"msisdn":"+33612345678","ip":"::ffff:0.0.0.0"}`, 400, "invalid_argument", nil},
		{"attach malformed JSON", "POST", "/sessions", tok, `{"msisdn":`, 400, "invalid_argument", nil},
		{"attach wrong JSON type", "POST", "/sessions", tok, `{"msisdn":33612345678}`, 400, "invalid_argument", nil},
		{"attach unknown field", "POST", "/sessions", tok, `{"msisdn":"+33612345678","owner":"x"}`, 400, "invalid_argument", nil},
		{"attach empty body", "POST", "/sessions", tok, "", 400, "invalid_argument", nil},
		{"attach pool not configured", "POST", "/sessions", tok, `{"msisdn":"+33612345678","pool":"ipx"}`, 400, "invalid_argument", nil},
		{"detach unknown", "DELETE", "/sessions/999999", tok, "", 404, "not_found", nil},
		{"detach non-numeric id", "DELETE", "/sessions/abc", tok, "", 400, "invalid_argument", nil},
		{"detach negative id", "DELETE", "/sessions/-3", tok, "", 400, "invalid_argument", nil},
		{"detach huge id", "DELETE", "/sessions/99999999999999999999999", tok, "", 400, "invalid_argument", nil},
		{"detach already detached", "DELETE", "/sessions/" + itoa(detached.ID), tok, "", 409, "already_detached", nil},
		{"lookup held address", "GET", "/lookup?ip=127.10.0.50&port=443", tok, "", 200, "", wantField("msisdn", "+33687654321")},
		{"lookup without port", "GET", "/lookup?ip=127.10.0.50", tok, "", 200, "", wantField("msisdn", "+33687654321")},
		{"lookup at a past instant", "GET", "/lookup?ip=127.10.0.51&at=" + detached.Start.UTC().Format(time.RFC3339Nano), tok, "", 200, "",
			wantField("msisdn", "+33687654322")},
		{"lookup past instant with unencoded offset", "GET", "/lookup?ip=127.10.0.50&at=" + pastWithOffset, tok, "", 200, "", wantField("msisdn", "+33687654321")},
		{"lookup detached address now", "GET", "/lookup?ip=127.10.0.51&port=443", tok, "", 404, "not_found", nil},
		{"lookup nobody", "GET", "/lookup?ip=192.0.2.1&port=443", tok, "", 404, "not_found", nil},
		{"lookup cgnat without port", "GET", "/lookup?ip=127.20.0.1", tok, "", 400, "invalid_argument", nil},
		{"lookup cgnat outside every block", "GET", "/lookup?ip=127.20.0.1&port=80", tok, "", 404, "not_found", nil},
		{"lookup missing ip", "GET", "/lookup", tok, "", 400, "invalid_argument", nil},
		{"lookup malformed ip", "GET", "/lookup?ip=127.10.0", tok, "", 400, "invalid_argument", nil},
		{"lookup prefix instead of address", "GET", "/lookup?ip=127.10.0.0/24", tok, "", 400, "invalid_argument", nil},
		{"lookup port out of range", "GET", "/lookup?ip=127.10.0.50&port=70000", tok, "", 400, "invalid_argument", nil},
		{"lookup malformed instant", "GET", "/lookup?ip=127.10.0.50&at=yesterday", tok, "", 400, "invalid_argument", nil},
		{"list active by msisdn", "GET", "/sessions?msisdn=%2B33687654321", tok, "", 200, "", wantSessions(1)},
		{"list with unencoded plus", "GET", "/sessions?msisdn=+33687654322&active=false", tok, "", 200, "", wantSessions(1)},
		{"list detached subscriber, active only", "GET", "/sessions?msisdn=%2B33687654322&active=true", tok, "", 200, "", wantSessions(0)},
		{"list malformed active", "GET", "/sessions?active=maybe", tok, "", 400, "invalid_argument", nil},
		{"list malformed msisdn", "GET", "/sessions?msisdn=abc", tok, "", 400, "invalid_argument", nil},
		{"list limit too large", "GET", "/sessions?limit=1000000", tok, "", 400, "invalid_argument", nil},
		{"unknown route", "GET", "/nope", tok, "", 404, "not_found", nil},
		{"wrong method", "PUT", "/sessions", tok, "", 405, "method_not_allowed", nil},
		{"health", "GET", "/healthz", "", "", 200, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, base) })
	}
	t.Run("attach then detach over the API", func(t *testing.T) {
		raw := apiCase{"", "POST", "/sessions", tok, `{"msisdn":"+44 7700 900123","pool":"cgnat"}`, 201, "", wantField("msisdn", "+447700900123")}.run(t, base)
		id := int64(decodeSession(t, raw)["id"].(float64))
		apiCase{"", "DELETE", "/sessions/" + itoa(id), tok, "", 200, "", wantField("active", false)}.run(t, base)
		apiCase{"", "DELETE", "/sessions/" + itoa(id), tok, "", 409, "already_detached", nil}.run(t, base)
	})
	if strings.Contains(logs.String(), "+33") || strings.Contains(logs.String(), testToken) {
		t.Errorf("logs carry a phone number or the token:\n%s", logs.String())
	}
}

func wantSessions(n int) func(*testing.T, []byte) {
	return func(t *testing.T, raw []byte) {
		var body struct{ Sessions []Session }
		if err := json.Unmarshal(raw, &body); err != nil || len(body.Sessions) != n {
			t.Errorf("list body %s: %v; want %d sessions", raw, err, n)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestAdminDatabaseDown: with Postgres unreachable, requests get 503, never
// 500, and the log line carries no phone number.
func TestAdminDatabaseDown(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store, err := NewStore(pool, testPools)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	base := newTestAdmin(t, store, &logs)
	tests := []apiCase{
		{"attach", "POST", "/sessions", testToken, `{"msisdn":"+33612345678"}`, 503, "unavailable", nil},
		{"attach given address", "POST", "/sessions", testToken, `{"msisdn":"+33612345678","ip":"127.10.0.9"}`, 503, "unavailable", nil},
		{"lookup", "GET", "/lookup?ip=127.10.0.9&port=1", testToken, "", 503, "unavailable", nil},
		{"list", "GET", "/sessions?msisdn=%2B33612345678", testToken, "", 503, "unavailable", nil},
		{"detach", "DELETE", "/sessions/1", testToken, "", 503, "unavailable", nil},
		{"health", "GET", "/healthz", "", "", 503, "unavailable", nil},
		{"bad input still 400", "POST", "/sessions", testToken, `{"msisdn":"nope"}`, 400, "invalid_argument", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, base) })
	}
	if strings.Contains(logs.String(), "612345678") {
		t.Errorf("logs carry a phone number:\n%s", logs.String())
	}
}

func TestNewAdminRequiresToken(t *testing.T) {
	if _, err := NewAdmin(nil, AdminConfig{}); err == nil {
		t.Fatal("NewAdmin without token and without insecure mode succeeded")
	}
	if _, err := NewAdmin(nil, AdminConfig{Insecure: true}); err != nil {
		t.Fatalf("NewAdmin insecure: %v", err)
	}
	for _, short := range []string{"x", strings.Repeat("a", MinAdminTokenLength-1)} {
		if _, err := NewAdmin(nil, AdminConfig{Token: short}); err == nil || !strings.Contains(err.Error(), "32") {
			t.Errorf("NewAdmin with a %d-character token: %v; want refused", len(short), err)
		}
		if _, err := NewAdmin(nil, AdminConfig{Token: short, Insecure: true}); err != nil {
			t.Errorf("NewAdmin insecure with a short token: %v", err)
		}
	}
	if _, err := NewAdmin(nil, AdminConfig{Token: strings.Repeat("a", MinAdminTokenLength)}); err != nil {
		t.Errorf("NewAdmin with a %d-character token: %v", MinAdminTokenLength, err)
	}
}
