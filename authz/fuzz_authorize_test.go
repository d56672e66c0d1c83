package authz_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/numverify/numverify/authz/store"
)

// FuzzAuthorize sends arbitrary query strings, with a real client's id in
// front, to the authorization endpoint over a real store, from an address a
// session holds. Whatever the input: no 5xx, never a redirect anywhere but
// the registered redirect URI, and a code only for a request with an S256
// PKCE challenge.
func FuzzAuthorize(f *testing.F) {
	srv := startServer(f)
	client := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	handler := srv.server.Handler()
	seeds := []string{
		"response_type=code&redirect_uri=https%3A%2F%2Fsp.example%2Fcallback&scope=openid+number-verification%3Averify&state=abcdefgh&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2F&scope=openid&state=x",
		"response_type=token&scope=openid&code_challenge_method=plain&code_challenge=abc",
		"request=eyJhbGciOiJub25lIn0.e30.&scope=openid",
		"login_hint=tel%3A%2B33600000000&prompt=login&max_age=0&nonce=12345678",
		"redirect_uri=https%3A%2F%2Fsp.example%2Fcallback&redirect_uri=https%3A%2F%2Fevil.example%2F",
		"%zz&;;==&scope=%00",
	}
	for _, seed := range seeds {
		f.Add(seed)
	}
	send := func(query string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/authorize", nil)
		req.URL.RawQuery = "client_id=" + url.QueryEscape(client.id) + "&" + query
		req.RemoteAddr = dev.addr.String() + ":40000"
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}
	// The first seed is a good request: the target reaches the code path.
	if loc := send(seeds[0]).Header().Get("Location"); !strings.Contains(loc, "code=") {
		f.Fatalf("the good seed did not log in: Location %q", loc)
	}
	f.Fuzz(func(t *testing.T, query string) {
		rec := send(query)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d for %q", rec.Code, query)
		}
		location := rec.Header().Get("Location")
		if rec.Code/100 != 3 {
			if location != "" {
				t.Fatalf("Location %q on a %d", location, rec.Code)
			}
			return
		}
		if !strings.HasPrefix(location, client.redirectURI+"?") && !strings.HasPrefix(location, client.redirectURI+"#") {
			t.Fatalf("redirected to %q for %q", location, query)
		}
		target, err := url.Parse(location)
		if err != nil {
			t.Fatalf("unparseable Location %q", location)
		}
		if target.Query().Get("code") != "" {
			sent, _ := url.ParseQuery(query)
			if sent.Get("code_challenge_method") != "S256" && !strings.Contains(query, "request=") {
				t.Fatalf("code issued without an S256 challenge for %q", query)
			}
		}
	})
}
