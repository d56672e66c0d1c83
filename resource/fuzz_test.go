package resource

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/numverify/numverify/internal/phone"
)

// FuzzDecodeVerifyRequest: decoding never panics, refuses with a 400 of the
// body family (21-24), and what it accepts is a JSON object of exactly one
// known string property whose value has the spec's shape.
func FuzzDecodeVerifyRequest(f *testing.F) {
	for _, seed := range []string{
		`{"phoneNumber":"+33612345678"}`, `{"hashedPhoneNumber":"` + sha(testPhone) + `"}`, `{}`, ``, ` `, `null`, `[]`,
		`{"phoneNumber":"+33612345678","hashedPhoneNumber":"ab"}`, `{"phoneNumber":33612345678}`, `{"phoneNumber":null}`,
		`{"phoneNumber":"+33612345678"}{}`, `{"phone\u004eumber":"+33612345678"}`, `{"phoneNumber":"\u002b33612345678"}`,
		`{"PHONENUMBER":"+33612345678"}`, `{"phoneNumber":"+33612345678","phoneNumber":"+33612345678"}`, "{\"phoneNumber\":\"+336\xff\"}",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, orange bool) {
		d := dialectCAMARA
		if orange {
			d = dialectOrange
		}
		req, e := decodeVerifyRequest(body, d)
		if e != nil {
			if e.status != 400 || e.orange < 21 || e.orange > 24 {
				t.Fatalf("refused with %d/%d", e.status, e.orange)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
			t.Fatalf("accepted %q, which is not an object of one property (%v)", body, err)
		}
		if req.hashed {
			if s, ok := m[propertyHashedPhoneNumber].(string); !ok || len(s) != 64 {
				t.Fatalf("accepted hash from %q", body)
			}
			return
		}
		if !phone.MatchesPattern(req.phoneNumber) {
			t.Fatalf("accepted number %q from %q", req.phoneNumber, body)
		}
		if s, _ := m[propertyPhoneNumber].(string); s != req.phoneNumber && !(orange && "+"+s == req.phoneNumber) {
			t.Fatalf("decoded %q, JSON says %q", req.phoneNumber, s)
		}
	})
}

// FuzzVerifyHandler: whatever body, Content-Type and x-correlator a client
// with a valid token sends, the answer is a documented one (200, 400, 413,
// 415), never a 500, always with a valid x-correlator and a JSON body. Each
// input gets a token of its own, as a client would: a token that answered
// false three times is refused (403), whatever the body.
func FuzzVerifyHandler(f *testing.F) {
	is := newTestIssuer(f)
	ts := startServer(f, is, nil)
	f.Add([]byte(`{"phoneNumber":"+33612345678"}`), "application/json", "abc-123", false)
	f.Add([]byte(`{"hashedPhoneNumber":"`+sha(testPhone)+`"}`), "application/json; charset=utf-8", "", true)
	f.Add([]byte(`{}`), "text/plain", "bad correlator", false)
	f.Add([]byte(``), "", "{}<>", true)
	f.Fuzz(func(t *testing.T, body []byte, contentType, correlator string, orange bool) {
		path := basePathV2 + "/verify"
		if orange {
			path = basePathV0 + "/verify"
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+is.token(testPhone))
		if contentType != "" {
			req.Header["Content-Type"] = []string{contentType}
		}
		if correlator != "" {
			req.Header["X-Correlator"] = []string{correlator}
		}
		rec := httptest.NewRecorder()
		ts.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 413, 415:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("body %q is not JSON", rec.Body)
		}
		if c := rec.Header().Get("X-Correlator"); c == "" || !validCorrelator(c) {
			t.Fatalf("x-correlator %q", c)
		}
	})
}
