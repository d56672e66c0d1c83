package resource

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestProtocolErrors: everything a client can send wrong at the HTTP level
// gets its documented answer in both dialects, never a 500.
func TestProtocolErrors(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, func(c *Config) { c.MaxBodyBytes = 256 })
	valid := str(`{"phoneNumber":"` + testPhone + `"}`)
	for _, base := range []string{basePathV2, basePathV0} {
		orange := base == basePathV0
		code := func(camara, o string) string {
			if orange {
				return o
			}
			return camara
		}
		for _, tc := range []struct {
			name       string
			c          call
			status     int
			code       string
			checkExtra func(t *testing.T, r *response)
		}{
			{name: "unknown_path", c: call{method: "GET", path: base + "/nope"}, status: 404, code: code("NOT_FOUND", "60")},
			{name: "unknown_path_with_number", c: call{method: "GET", path: base + "/verify/" + testPhone}, status: 404, code: code("NOT_FOUND", "60")},
			{name: "trailing_slash", c: call{method: "POST", path: base + "/verify/", token: is.token(testPhone), body: valid}, status: 404, code: code("NOT_FOUND", "60")},
			{name: "wrong_method_verify", c: call{method: "GET", path: base + "/verify", token: is.token(testPhone)}, status: 405, code: code("METHOD_NOT_ALLOWED", "61"),
				checkExtra: func(t *testing.T, r *response) {
					if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
						t.Errorf("Allow %q", allow)
					}
				}},
			{name: "wrong_method_share", c: call{method: "DELETE", path: base + "/device-phone-number", token: is.token(testPhone)}, status: 405, code: code("METHOD_NOT_ALLOWED", "61"),
				checkExtra: func(t *testing.T, r *response) {
					if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") {
						t.Errorf("Allow %q", allow)
					}
				}},
			{name: "not_acceptable_verify", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"Accept": "text/html"}}, status: 406, code: code("NOT_ACCEPTABLE", "62")},
			{name: "not_acceptable_q0", c: call{method: "GET", path: base + "/device-phone-number", token: is.token(testPhone), headers: map[string]string{"Accept": "application/json;q=0, text/plain"}}, status: 406, code: code("NOT_ACCEPTABLE", "62")},
			{name: "acceptable_wildcard", c: call{method: "GET", path: base + "/device-phone-number", token: is.token(testPhone), headers: map[string]string{"Accept": "text/html, */*;q=0.1"}}, status: 200},
			{name: "unsupported_media", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"Content-Type": "text/plain"}}, status: 415, code: code("UNSUPPORTED_MEDIA_TYPE", "68")},
			{name: "unsupported_charset", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"Content-Type": "application/json; charset=latin1"}}, status: 415, code: code("UNSUPPORTED_MEDIA_TYPE", "68")},
			{name: "no_content_type", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"Content-Type": ""}}, status: 415, code: code("UNSUPPORTED_MEDIA_TYPE", "68")},
			{name: "json_utf8", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"Content-Type": "Application/JSON; charset=UTF-8"}}, status: 200},
			{name: "too_large", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"phoneNumber":"` + testPhone + `"` + strings.Repeat(" ", 300) + `}`)}, status: 413, code: code("PAYLOAD_TOO_LARGE", "66")},
			{name: "wrong_type_number", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"phoneNumber":33612345678}`)}, status: 400, code: code("INVALID_ARGUMENT", "24")},
			{name: "wrong_type_null", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"phoneNumber":null}`)}, status: 400, code: code("INVALID_ARGUMENT", "24")},
			{name: "wrong_type_object", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"hashedPhoneNumber":{"a":1}}`)}, status: 400, code: code("INVALID_ARGUMENT", "24")},
			{name: "array_body", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`["` + testPhone + `"]`)}, status: 400, code: code("INVALID_ARGUMENT", "22")},
			{name: "invalid_json", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"phoneNumber":"` + testPhone + `"`)}, status: 400, code: code("INVALID_ARGUMENT", "22")},
			{name: "trailing_data", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"phoneNumber":"` + testPhone + `"}{}`)}, status: 400, code: code("INVALID_ARGUMENT", "22")},
			{name: "repeated_property", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"phoneNumber":"` + otherPhone + `","phoneNumber":"` + testPhone + `"}`)}, status: 400, code: code("INVALID_ARGUMENT", "22")},
			{name: "property_case", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"PhoneNumber":"` + testPhone + `"}`)}, status: 400, code: code("INVALID_ARGUMENT", "22")},
			{name: "whitespace_body", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(" \n ")}, status: 400, code: code("INVALID_ARGUMENT", "21")},
			{name: "bad_correlator", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"x-correlator": "bad correlator with spaces"}}, status: 400, code: code("INVALID_ARGUMENT", "26")},
			{name: "long_correlator", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"x-correlator": strings.Repeat("a", 257)}}, status: 400, code: code("INVALID_ARGUMENT", "26")},
			{name: "max_correlator", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: valid, headers: map[string]string{"x-correlator": strings.Repeat("a", 250) + "{}<>;:"}}, status: 200},
			{name: "basic_auth", c: call{method: "POST", path: base + "/verify", body: valid, headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}}, status: 401, code: code("UNAUTHENTICATED", "40")},
			{name: "bearer_malformed", c: call{method: "POST", path: base + "/verify", body: valid, headers: map[string]string{"Authorization": "Bearer a b"}}, status: 401, code: code("UNAUTHENTICATED", "41")},
			{name: "bearer_empty", c: call{method: "POST", path: base + "/verify", body: valid, headers: map[string]string{"Authorization": "Bearer "}}, status: 401, code: code("UNAUTHENTICATED", "40")}, // the client trims it to "Bearer": no token
			{name: "v0_number_without_plus", c: call{method: "POST", path: base + "/verify", token: is.token(testPhone), body: str(`{"phoneNumber":"33612345678"}`)}, status: map[bool]int{true: 200, false: 400}[orange], code: code("INVALID_ARGUMENT", "")},
		} {
			t.Run(strings.TrimPrefix(base, "/number-verification/")+"/"+tc.name, func(t *testing.T) {
				r := ts.do(t, tc.c)
				if r.status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
				}
				if tc.status != 200 && r.errorCode() != tc.code {
					t.Errorf("code %s, want %s: %s", r.errorCode(), tc.code, r.body)
				}
				if tc.checkExtra != nil {
					tc.checkExtra(t, r)
				}
			})
		}
	}
}

func TestCorrelator(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, nil)
	// Generated when absent, on successes and errors alike.
	for _, c := range []call{
		{method: "GET", path: basePathV2 + "/device-phone-number", token: is.token(testPhone)},
		{method: "GET", path: basePathV2 + "/device-phone-number"},
		{method: "GET", path: "/elsewhere"},
	} {
		r := ts.do(t, c)
		if _, err := uuid.Parse(r.header.Get("x-correlator")); err != nil {
			t.Errorf("%s %s: generated x-correlator %q is not a UUID", c.method, c.path, r.header.Get("x-correlator"))
		}
	}
	// An invalid one is not echoed: the answer carries a fresh one.
	r := ts.do(t, call{method: "GET", path: basePathV2 + "/device-phone-number", token: is.token(testPhone),
		headers: map[string]string{"x-correlator": "has space"}})
	if r.status != 400 || r.header.Get("x-correlator") == "has space" {
		t.Errorf("invalid correlator: status %d, echoed %q", r.status, r.header.Get("x-correlator"))
	}
	// The access log line carries the correlator, the route and the client.
	ts.do(t, call{method: "GET", path: basePathV2 + "/device-phone-number", token: is.token(testPhone),
		headers: map[string]string{"x-correlator": "log-line-correlator"}})
	logs := ts.logs.String()
	line := ""
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "log-line-correlator") {
			line = l
		}
	}
	if !strings.Contains(line, `"route":"/number-verification/v2/device-phone-number"`) || !strings.Contains(line, testClientID) {
		t.Errorf("log line %q lacks route or client", line)
	}
	if strings.Contains(logs, testPhone) {
		t.Error("the log carries the number")
	}
}

func TestRateLimit(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, func(c *Config) { c.RateLimit = 0.5; c.RateBurst = 2 })
	for _, base := range []string{basePathV2, basePathV0} {
		token := is.token(testPhone) // one client: the same bucket whatever the token
		var last *response
		for i := 0; i < 3; i++ {
			last = ts.do(t, call{method: "GET", path: base + "/device-phone-number", token: token})
			if i < 2 && base == basePathV2 && last.status != 200 {
				t.Fatalf("request %d within the burst: %d %s", i, last.status, last.body)
			}
		}
		if last.status != http.StatusTooManyRequests {
			t.Fatalf("%s: third request: %d, want 429", base, last.status)
		}
		ra, err := strconv.Atoi(last.header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 2 {
			t.Errorf("Retry-After %q", last.header.Get("Retry-After"))
		}
		if want := map[bool]string{true: "53", false: "TOO_MANY_REQUESTS"}[base == basePathV0]; last.errorCode() != want {
			t.Errorf("code %s, want %s", last.errorCode(), want)
		}
	}
	// Another client has its own bucket.
	c := is.claims(testPhone)
	c.ClientID = "another-client"
	if r := ts.do(t, call{method: "GET", path: basePathV2 + "/device-phone-number", token: is.nested(c)}); r.status != 200 {
		t.Errorf("another client: %d", r.status)
	}
}

func TestOpenAPIServed(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, nil)
	for _, base := range []string{basePathV2, basePathV0} {
		r := ts.do(t, call{method: "GET", path: base + "/openapi.yaml"})
		if r.status != 200 || !strings.Contains(string(r.body), "openapi: 3.0.3") || !strings.Contains(r.header.Get("Content-Type"), "yaml") {
			t.Errorf("%s/openapi.yaml: %d %s", base, r.status, r.header.Get("Content-Type"))
		}
	}
}
