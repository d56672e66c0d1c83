package authz_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
)

// wantRetryAfter asserts a whole number of seconds, at least 1.
func wantRetryAfter(t testing.TB, h http.Header) int {
	t.Helper()
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want a number of seconds >= 1", h.Get("Retry-After"))
	}
	return n
}

// slow is a rate so low that a bucket never refills during a test.
const slow = 0.001

func TestAuthorizeRateLimitPerAddress(t *testing.T) {
	srv := startServer(t, config(func(c *authz.Config) { c.RateLimitPerIP, c.RateLimitPerIPBurst = slow, 2 }))
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	dev, other := srv.newDevice(), srv.newDevice()
	for i := range 2 {
		if q := dev.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
			t.Fatalf("request %d within the burst: %v", i+1, q)
		}
	}
	// Over the limit no redirect URI has been checked yet: a 429 page.
	resp := dev.get(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Location") != "" ||
		!strings.Contains(string(body), "temporarily_unavailable") {
		t.Fatalf("over the limit: status %d Location %q body %s; want a 429 page", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	wantRetryAfter(t, resp.Header)
	// Another address has its own budget.
	if q := other.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
		t.Fatalf("another address was limited too: %v", q)
	}
}

func TestAuthorizeRateLimitPerClient(t *testing.T) {
	srv := startServer(t, config(func(c *authz.Config) { c.RateLimitPerClient, c.RateLimitPerClientBurst = slow, 2 }))
	sp, otherSP := srv.client(store.ClientSpec{}), srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	otherConf, _ := srv.oauthConfig(t, otherSP)
	for i := range 2 {
		if q := srv.newDevice().authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
			t.Fatalf("login %d within the burst: %v", i+1, q)
		}
	}
	// The client and its redirect URI are known good: a redirect.
	dev := srv.newDevice()
	authURL := authorizeURL(conf, oauth2.GenerateVerifier())
	resp := dev.get(t, authURL, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), sp.redirectURI) {
		t.Fatalf("over the limit: status %d Location %q, want a redirect to the client", resp.StatusCode, resp.Header.Get("Location"))
	}
	want, _ := url.Parse(authURL)
	if q := loc.Query(); q.Get("error") != "temporarily_unavailable" || q.Get("code") != "" || q.Get("state") != want.Query().Get("state") {
		t.Fatalf("redirect query %v, want error=temporarily_unavailable with the state", q)
	}
	wantRetryAfter(t, resp.Header)
	if q := dev.authorize(t, authorizeURL(otherConf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
		t.Fatalf("another client was limited too: %v", q)
	}
}

func TestTokenRateLimitPerAddress(t *testing.T) {
	srv := startServer(t, config(func(c *authz.Config) { c.RateLimitPerIP, c.RateLimitPerIPBurst = slow, 2 }))
	sp := srv.client(store.ClientSpec{})
	bogus := url.Values{"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "redirect_uri": {sp.redirectURI},
		"code_verifier": {oauth2.GenerateVerifier()}}
	for _, want := range []struct {
		status int
		error  string
	}{
		{http.StatusBadRequest, "invalid_grant"}, // failed requests count too
		{http.StatusBadRequest, "invalid_grant"},
		{http.StatusTooManyRequests, "temporarily_unavailable"},
	} {
		status, header, body := postToken(t, srv.issuer+"/token", bogus, sp.id, sp.secret)
		if status != want.status || body["error"] != want.error {
			t.Fatalf("status %d body %v, want %d %s", status, body, want.status, want.error)
		}
		if status == http.StatusTooManyRequests {
			wantRetryAfter(t, header)
			if header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
				t.Errorf("429 headers %v, want a no-store JSON error", header)
			}
		}
	}
}

// The client's budget is spent only once it has authenticated, and a token
// request refused for rate leaves its code usable.
func TestTokenRateLimitPerClient(t *testing.T) {
	const rate = 0.5 // one request every 2 s
	srv := startServer(t, config(func(c *authz.Config) { c.RateLimitPerClient, c.RateLimitPerClientBurst = rate, 3 }))
	sp := srv.client(store.ClientSpec{})
	ctx := context.Background()
	conf, codeA, verifierA := srv.code(t, sp, srv.newDevice()) // 1
	_, codeB, verifierB := srv.code(t, sp, srv.newDevice())    // 2
	for range 3 {                                              // wrong secret: invalid_client, never 429, spends nothing
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codeA}, "redirect_uri": {sp.redirectURI}, "code_verifier": {verifierA}}
		if status, _, body := postToken(t, conf.Endpoint.TokenURL, form, sp.id, "wrong"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("wrong secret: %d %v, want 401 invalid_client", status, body)
		}
	}
	if _, err := conf.Exchange(ctx, codeA, oauth2.VerifierOption(verifierA)); err != nil { // 3
		t.Fatalf("exchange within the burst: %v", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {codeB}, "redirect_uri": {sp.redirectURI}, "code_verifier": {verifierB}}
	status, header, body := postToken(t, conf.Endpoint.TokenURL, form, sp.id, sp.secret) // 4
	if status != http.StatusTooManyRequests || body["error"] != "temporarily_unavailable" {
		t.Fatalf("over the limit: %d %v, want 429 temporarily_unavailable", status, body)
	}
	time.Sleep(time.Duration(wantRetryAfter(t, header)) * time.Second)
	if _, err := conf.Exchange(ctx, codeB, oauth2.VerifierOption(verifierB)); err != nil {
		t.Fatalf("the code refused for rate is no longer usable after Retry-After: %v", err)
	}
}

func TestRequestBodyLimits(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	big := url.Values{"grant_type": {"authorization_code"}, "padding": {strings.Repeat("x", 17<<10)}}.Encode()
	small := url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "token": {"nope"}}.Encode()
	for _, path := range []string{"/token", "/introspect", "/revoke"} {
		for _, tc := range []struct {
			name    string
			body    io.Reader
			status  int
			errCode string
		}{
			{"over the limit, with Content-Length", strings.NewReader(big), http.StatusRequestEntityTooLarge, "invalid_request"},
			{"over the limit, chunked", io.MultiReader(strings.NewReader(big)), http.StatusRequestEntityTooLarge, "invalid_request"},
			{"within the limit", strings.NewReader(small), 0, ""},
		} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, srv.issuer+path, tc.body)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(sp.id, sp.secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&body)
				if tc.status == 0 {
					if resp.StatusCode == http.StatusRequestEntityTooLarge {
						t.Fatalf("a small body was refused as too large")
					}
					return
				}
				if resp.StatusCode != tc.status || body["error"] != tc.errCode {
					t.Fatalf("status %d body %v, want %d %s", resp.StatusCode, body, tc.status, tc.errCode)
				}
			})
		}
	}
}
