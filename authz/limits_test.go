package authz_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/testclock"
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

// withClock runs the server, and so the abuse limits, on c.
func withClock(c *testclock.Frozen) serverOption { return func(s *serverSetup) { s.now = c.Now } }

// tokenFrom posts a token request from d's address with Basic credentials.
func tokenFrom(t testing.TB, d device, endpoint string, form url.Values, user, password string) (int, http.Header, map[string]any) {
	t.Helper()
	return doRequest(t, d.http, http.MethodPost, endpoint, form.Encode(), formHeader(user, password))
}

// wantRateLimitPage asserts a 429 error page (no redirect) with Retry-After.
func wantRateLimitPage(t testing.TB, resp *http.Response) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Location") != "" ||
		!strings.Contains(string(body), "temporarily_unavailable") {
		t.Fatalf("status %d Location %q body %s; want a 429 page", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	wantRetryAfter(t, resp.Header)
}

// A server built with the default configuration throttles a flood: failed
// client authentications at /token, and /authorize requests from one
// address. The clock stands still, so no bucket refills.
func TestLimitsHoldByDefault(t *testing.T) {
	clock := testclock.New(time.Now())
	srv := startServer(t, withClock(clock))
	sp := srv.client(store.ClientSpec{})
	if cfg := srv.server.Config(); cfg.RateLimitPerIP <= 0 || cfg.RateLimitPerDevice <= 0 || cfg.RateLimitPerClient <= 0 || cfg.RateLimitAuthFailuresPerIP <= 0 {
		t.Fatalf("a limit is off by default: per IP %v, per device %v, per client %v, auth failures %v",
			cfg.RateLimitPerIP, cfg.RateLimitPerDevice, cfg.RateLimitPerClient, cfg.RateLimitAuthFailuresPerIP)
	}

	t.Run("wrong credentials at /token", func(t *testing.T) {
		guesser := newDetachedDevice()
		form := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {sp.redirectURI}, "code_verifier": {oauth2.GenerateVerifier()}}
		for i := range authz.DefaultRateLimitAuthFailuresPerIPBurst {
			if status, _, body := tokenFrom(t, guesser, srv.issuer+"/token", form, sp.id, "guess-"+strconv.Itoa(i)); status != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d %v, want 401 invalid_client", i, status, body)
			}
		}
		// Now even the right secret is refused from that address, before it is checked.
		status, header, body := tokenFrom(t, guesser, srv.issuer+"/token", form, sp.id, sp.secret)
		if status != http.StatusTooManyRequests || body["error"] != "temporarily_unavailable" {
			t.Fatalf("after %d failures: %d %v, want 429 temporarily_unavailable", authz.DefaultRateLimitAuthFailuresPerIPBurst, status, body)
		}
		wantRetryAfter(t, header)
		// The SP, from its own address, is not affected.
		if status, _, body := postToken(t, srv.issuer+"/token", form, sp.id, sp.secret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("the SP from another address: %d %v, want 400 invalid_grant", status, body)
		}
	})

	t.Run("/authorize from one address", func(t *testing.T) {
		conf, _ := srv.oauthConfig(t, sp)
		flooder := newDetachedDevice() // not on the network: every request is access_denied
		authURL := authorizeURL(conf, oauth2.GenerateVerifier())
		var wg sync.WaitGroup
		var refused, failed atomic.Int32
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range authz.DefaultRateLimitPerIPBurst / 4 {
					resp, err := flooder.http.Get(authURL)
					if err != nil {
						failed.Add(1)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusFound {
						refused.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if n, f := refused.Load(), failed.Load(); n != 0 || f != 0 {
			t.Fatalf("within the default burst: %d requests refused, %d failed", n, f)
		}
		wantRedirectError(t, flooder, authURL, nil, "temporarily_unavailable")
		if q := srv.newDevice().authorize(t, authURL, nil); q.Get("code") == "" {
			t.Fatalf("another address was limited too: %v", q)
		}
	})

	t.Run("unknown clients at /authorize", func(t *testing.T) {
		guesser := newDetachedDevice()
		conf, _ := srv.oauthConfig(t, testClient{id: "no-such-client", redirectURI: sp.redirectURI})
		for i := range authz.DefaultRateLimitAuthFailuresPerIPBurst {
			resp := guesser.get(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil)
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusFound {
				t.Fatalf("unknown client %d: status %d, want an error page", i, resp.StatusCode)
			}
		}
		spConf, _ := srv.oauthConfig(t, sp)
		wantRateLimitPage(t, guesser.get(t, authorizeURL(spConf, oauth2.GenerateVerifier()), nil))
	})
}

func TestAuthorizeRateLimitPerAddress(t *testing.T) {
	srv := startServer(t, withClock(testclock.New(time.Now())), config(func(c *authz.Config) { c.RateLimitPerIP, c.RateLimitPerIPBurst = slow, 2 }))
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	dev, other := srv.newDevice(), srv.newDevice()
	for i := range 2 {
		if q := dev.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
			t.Fatalf("request %d within the burst: %v", i+1, q)
		}
	}
	// The client and redirect URI are known good by then: a redirect.
	wantRedirectError(t, dev, authorizeURL(conf, oauth2.GenerateVerifier()), nil, "temporarily_unavailable")
	// Another address has its own budget.
	if q := other.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
		t.Fatalf("another address was limited too: %v", q)
	}
}

// Once the network has resolved the device, its logins with one client are
// limited: a redirect to the client (known good by then).
func TestAuthorizeRateLimitPerDevice(t *testing.T) {
	srv := startServer(t, withClock(testclock.New(time.Now())), config(func(c *authz.Config) { c.RateLimitPerDevice, c.RateLimitPerDeviceBurst = slow, 2 }))
	sp, otherSP := srv.client(store.ClientSpec{}), srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	otherConf, _ := srv.oauthConfig(t, otherSP)
	dev := srv.newDevice()
	for i := range 2 {
		if q := dev.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
			t.Fatalf("login %d within the burst: %v", i+1, q)
		}
	}
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
	if q := srv.newDevice().authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
		t.Fatalf("another device of the client was limited too: %v", q)
	}
	if q := dev.authorize(t, authorizeURL(otherConf, oauth2.GenerateVerifier()), nil); q.Get("code") == "" {
		t.Fatalf("the device with another client was limited too: %v", q)
	}
}

// The client is not authenticated at /authorize: anyone can name an SP's
// public client_id. An attacker flooding /authorize with it, from an address
// off the network or from their own device, spends only their own budget:
// the victim's login from another address still gets a code, and the SP's
// /token still answers.
func TestAuthorizeFloodDoesNotSpendTheClientsBudget(t *testing.T) {
	srv := startServer(t, withClock(testclock.New(time.Now())), config(func(c *authz.Config) {
		c.RateLimitPerIP, c.RateLimitPerIPBurst = slow, 5
		c.RateLimitPerDevice, c.RateLimitPerDeviceBurst = slow, 2
		c.RateLimitPerClient, c.RateLimitPerClientBurst = slow, 2
	}))
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	offNetwork, ownDevice := newDetachedDevice(), srv.newDevice()
	for _, attacker := range []device{offNetwork, ownDevice} {
		for range 8 {
			resp := attacker.get(t, authorizeURL(conf, oauth2.GenerateVerifier()), nil)
			io.Copy(io.Discard, resp.Body)
		}
		wantRedirectError(t, attacker, authorizeURL(conf, oauth2.GenerateVerifier()), nil, "temporarily_unavailable")
	}
	victim := srv.newDevice()
	_, code, verifier := srv.code(t, sp, victim)
	if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("the SP's token request after the flood: %v", err)
	}
}

// Behind CGNAT one public address carries many subscribers, each on its own
// port block: one of them running into its limit leaves its neighbours'
// logins alone.
func TestCGNATNeighboursHaveTheirOwnBudget(t *testing.T) {
	srv := startServer(t, withClock(testclock.New(time.Now())), config(func(c *authz.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.20.0.0/16")}
		c.ClientAddressFrom = authz.AddressFromForwarded
		c.RateLimitPerDevice, c.RateLimitPerDeviceBurst = slow, 2
	}))
	const public = "100.64.7.9"
	for i, ports := range []string{"[1024,2047]", "[2048,3071]"} {
		srv.db.Exec(t, `INSERT INTO network_sessions (msisdn, ip, ports) VALUES ($1, $2::inet, $3::int4range)`,
			"+3369900000"+strconv.Itoa(i), public, ports)
	}
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	proxy := newDetachedDeviceAt(netip.MustParseAddr("127.20.0.9"))
	from := func(port int) http.Header {
		return http.Header{"Forwarded": {`for="` + public + `:` + strconv.Itoa(port) + `"`}}
	}
	for i := range 2 {
		if q := proxy.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), from(1100+i)); q.Get("code") == "" {
			t.Fatalf("first subscriber, login %d: %v", i+1, q)
		}
	}
	wantRedirectError(t, proxy, authorizeURL(conf, oauth2.GenerateVerifier()), from(1500), "temporarily_unavailable")
	if q := proxy.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), from(2100)); q.Get("code") == "" {
		t.Fatalf("the neighbour on the same address was limited too: %v", q)
	}
}

// A request whose address cannot be read is not let through unlimited: all
// such requests share one small bucket, at /authorize and at /token.
func TestUnreadableAddressFailsClosed(t *testing.T) {
	srv := startServer(t, withClock(testclock.New(time.Now())), config(func(c *authz.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.20.0.0/16")}
		c.ClientAddressFrom = authz.AddressFromXForwardedFor
	}))
	sp := srv.client(store.ClientSpec{})
	conf, _ := srv.oauthConfig(t, sp)
	proxy := newDetachedDeviceAt(netip.MustParseAddr("127.20.0.10"))
	garbage := http.Header{"X-Forwarded-For": {"not-an-address"}}
	refused := 0
	for range 40 {
		resp := proxy.get(t, authorizeURL(conf, oauth2.GenerateVerifier()), garbage)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused < 20 {
		t.Fatalf("%d of 40 requests with an unreadable address refused for rate, want at least 20", refused)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.issuer+"/token", strings.NewReader("grant_type=authorization_code&code=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header["X-Forwarded-For"] = garbage["X-Forwarded-For"]
	req.SetBasicAuth(sp.id, sp.secret)
	resp, err := proxy.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("/token with an unreadable address after the flood: %d, want 429", resp.StatusCode)
	}
	// A device behind the same proxy, whose address is readable, has its own bucket.
	dev := srv.newDevice()
	if q := proxy.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier()), http.Header{"X-Forwarded-For": {dev.addr.String()}}); q.Get("code") == "" {
		t.Fatalf("a readable address was limited too: %v", q)
	}
}

// Failed client authentications spend the address's budget; once it is
// spent the address is refused before anything is checked, while requests
// that authenticate cost nothing there.
func TestTokenAuthFailuresPerAddress(t *testing.T) {
	srv := startServer(t, withClock(testclock.New(time.Now())), config(func(c *authz.Config) { c.RateLimitAuthFailuresPerIP, c.RateLimitAuthFailuresPerIPBurst = slow, 2 }))
	sp := srv.client(store.ClientSpec{})
	bogus := url.Values{"grant_type": {"authorization_code"}, "code": {"not-a-code"}, "redirect_uri": {sp.redirectURI},
		"code_verifier": {oauth2.GenerateVerifier()}}
	for _, want := range []struct {
		secret string
		status int
		error  string
	}{
		{sp.secret, http.StatusBadRequest, "invalid_grant"}, // authenticated: costs nothing here
		{sp.secret, http.StatusBadRequest, "invalid_grant"},
		{sp.secret, http.StatusBadRequest, "invalid_grant"},
		{"wrong", http.StatusUnauthorized, "invalid_client"},
		{"wrong", http.StatusUnauthorized, "invalid_client"},
		{sp.secret, http.StatusTooManyRequests, "temporarily_unavailable"},
	} {
		status, header, body := postToken(t, srv.issuer+"/token", bogus, sp.id, want.secret)
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
// request refused for rate leaves its code usable once the limit allows.
func TestTokenRateLimitPerClient(t *testing.T) {
	const rate = 0.5 // one request every 2 s
	clock := testclock.New(time.Now())
	srv := startServer(t, withClock(clock), config(func(c *authz.Config) { c.RateLimitPerClient, c.RateLimitPerClientBurst = rate, 2 }))
	sp := srv.client(store.ClientSpec{})
	ctx := context.Background()
	conf, codeA, verifierA := srv.code(t, sp, srv.newDevice())
	_, codeB, verifierB := srv.code(t, sp, srv.newDevice())
	_, codeC, verifierC := srv.code(t, sp, srv.newDevice()) // /authorize spends nothing of the client's
	for range 3 {                                           // wrong secret: invalid_client, never 429, spends nothing
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codeA}, "redirect_uri": {sp.redirectURI}, "code_verifier": {verifierA}}
		if status, _, body := postToken(t, conf.Endpoint.TokenURL, form, sp.id, "wrong"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("wrong secret: %d %v, want 401 invalid_client", status, body)
		}
	}
	for _, c := range []struct{ code, verifier string }{{codeA, verifierA}, {codeB, verifierB}} {
		if _, err := conf.Exchange(ctx, c.code, oauth2.VerifierOption(c.verifier)); err != nil {
			t.Fatalf("exchange within the burst: %v", err)
		}
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {codeC}, "redirect_uri": {sp.redirectURI}, "code_verifier": {verifierC}}
	status, header, body := postToken(t, conf.Endpoint.TokenURL, form, sp.id, sp.secret)
	if status != http.StatusTooManyRequests || body["error"] != "temporarily_unavailable" {
		t.Fatalf("over the limit: %d %v, want 429 temporarily_unavailable", status, body)
	}
	clock.Advance(time.Duration(wantRetryAfter(t, header)) * time.Second)
	if _, err := conf.Exchange(ctx, codeC, oauth2.VerifierOption(verifierC)); err != nil {
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
