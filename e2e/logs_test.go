package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// TestLogHygiene is issue 6's log check: the three servers run as separate
// processes with JSON logs at debug level; a whole flow and its usual
// mistakes go through them (attach, lookup, authorize with a login_hint,
// token, verify plain and hashed on v2 and v0, a wrong and a malformed
// number, share, userinfo, introspect, revoke, the revoked token refused, the
// code replayed, a wrong client secret, a device on Wi-Fi). Then no line of
// any server's output may hold the number in any form, its SHA-256, the
// access token, the ID token, the code or the client secret; and the lines
// that must be there (one per request, with route and x-correlator) are.
func TestLogHygiene(t *testing.T) {
	t.Parallel()
	s := testbed.NewStack(t, "")
	debug := []string{"--log-level", "debug", "--log-format", "json"}
	// Reusable tokens: one token makes every call below, the revocation last.
	a := s.ServeApart(append([]string{"--database-max-conns", "8"}, debug...), append([]string{"--single-use-tokens=false"}, debug...), debug)
	client := s.CreateClient("log-sp")

	const number, other = "+33612345678", "+33698765432"
	prefix := testbed.DevicePrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := s.Attach(a.Network, number, testbed.NthAddr(prefix, 10))
	admin := &sim.NetworkAdmin{BaseURL: a.Network, Token: s.AdminToken}
	if held, err := admin.Lookup(ctx, d.Addr); err != nil || held == nil || held.MSISDN != number {
		t.Fatalf("lookup: %+v %v", held, err)
	}

	sp := testbed.NewSP(t, a.Authz, client, "openid", testbed.ScopeVerify, testbed.ScopeShare)
	code, req, err := sp.Authorize(ctx, d, number)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sp.Exchange(ctx, code, req)
	if err != nil {
		t.Fatal(err)
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	correlator := map[string]string{"x-correlator": "log-hygiene-correlator"}
	api := func(method, u, token string, body *string, wantStatus int) *apiResponse {
		t.Helper()
		r, err := callAPI(hc, method, u, token, body, correlator)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, u, r.Status, r.Body, wantStatus)
		}
		return r
	}
	hash := sha(number)
	api(http.MethodPost, a.API("v2")+"/verify", l.AccessToken, str(`{"phoneNumber":"`+number+`"}`), 200)
	api(http.MethodPost, a.API("v0")+"/verify", l.AccessToken, str(`{"hashedPhoneNumber":"`+strings.ToUpper(hash)+`"}`), 200)
	api(http.MethodPost, a.API("v2")+"/verify", l.AccessToken, str(`{"phoneNumber":"`+other+`"}`), 200)
	api(http.MethodPost, a.API("v2")+"/verify", l.AccessToken, str(`{"phoneNumber":"0612345678"}`), 400)
	api(http.MethodPost, a.API("v0")+"/verify", l.AccessToken, str(`{"phoneNumber":"33612345678","x":1}`), 400)
	if r := api(http.MethodGet, a.API("v2")+"/device-phone-number", l.AccessToken, nil, 200); r.JSON["devicePhoneNumber"] != number {
		t.Fatalf("share: %s", r.Body)
	}
	api(http.MethodGet, a.API("v0")+"/device-phone-number", l.AccessToken, nil, 200)
	api(http.MethodGet, a.Authz+"/userinfo", l.AccessToken, nil, 200)

	form := func(path string, values url.Values, id, secret string) int {
		req, _ := http.NewRequest(http.MethodPost, a.Authz+path, strings.NewReader(values.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := form("/introspect", url.Values{"token": {l.AccessToken}}, client.ID, client.Secret); status != 200 {
		t.Errorf("introspect: %d", status)
	}
	if status := form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {client.Redirect}, "code_verifier": {req.Verifier}}, client.ID, client.Secret+"x"); status != 401 {
		t.Errorf("token with a wrong secret: %d, want 401", status)
	}
	if _, err := sp.Exchange(ctx, code, req); sim.ErrorKindOf(err) != "http 400 invalid_grant" {
		t.Errorf("the code replayed: %v, want invalid_grant", err)
	}
	if status := form("/revoke", url.Values{"token": {l.AccessToken}}, client.ID, client.Secret); status != 200 {
		t.Errorf("revoke: %d", status)
	}
	// A replayed code revokes what it issued anyway; either way the token is
	// refused within a second or two (revocation by NOTIFY).
	deadline := time.Now().Add(3 * time.Second)
	for {
		r, err := callAPI(hc, http.MethodPost, a.API("v2")+"/verify", l.AccessToken, str(`{"phoneNumber":"`+number+`"}`), correlator)
		if err == nil && r.Status == 401 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token is still accepted: %v %+v", err, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wifi := sim.NewDevice(testbed.NthAddr(prefix, 99), "", 1)
	defer wifi.Close()
	if _, _, err := sp.Authorize(ctx, wifi, number); sim.ErrorKindOf(err) != "oauth access_denied" {
		t.Errorf("device on Wi-Fi: %v, want access_denied", err)
	}

	time.Sleep(200 * time.Millisecond) // the last access-log lines
	logs := map[string]string{"authz": a.AuthzProc.Output(), "resource": a.ResourceProc.Output(), "network": a.NetworkProc.Output()}

	secrets := []struct{ what, value string }{
		{"the number (E.164)", number},
		{"the number without +", strings.TrimPrefix(number, "+")},
		{"the number, national form", "0612345678"},
		{"the number, URL-encoded", url.QueryEscape(number)},
		{"the subscriber number's digits", "612345678"},
		{"the other number", "698765432"},
		{"the number's SHA-256", hash},
		{"the number's SHA-256 (upper case)", strings.ToUpper(hash)},
		{"the access token", l.AccessToken},
		{"the access token's last segment", lastSegment(l.AccessToken)},
		{"the ID token", l.RawIDToken},
		{"the ID token's signature", lastSegment(l.RawIDToken)},
		{"the code", code},
		{"the PKCE verifier", req.Verifier},
		{"the client secret", client.Secret},
		{"the network admin token", s.AdminToken},
	}
	for server, out := range logs {
		for _, sec := range secrets {
			if len(sec.value) < 8 {
				t.Fatalf("%s: %q is too short to look for", sec.what, sec.value)
			}
			for i, line := range strings.Split(out, "\n") {
				if strings.Contains(line, sec.value) {
					t.Errorf("%s log line %d holds %s: %s", server, i+1, sec.what, line)
				}
			}
		}
	}

	// The lines that must be there: the test would prove nothing if the log
	// were not captured.
	// (Route labels may or may not carry the method: "/token", "POST /token".)
	for _, want := range []struct{ server, pattern string }{
		{"authz", `"route":"(GET )?/authorize","status":302`},
		{"authz", `"route":"(POST )?/token","status":200`},
		{"authz", `"route":"(POST )?/token","status":401`},
		{"authz", `"route":"(POST )?/token","status":400`},
		{"authz", `"route":"(POST )?/introspect","status":200`},
		{"authz", `"route":"(POST )?/revoke","status":200`},
		{"authz", `"route":"(GET )?/userinfo","status":200`},
		{"resource", `"route":"/number-verification/v2/verify","status":200`},
		{"resource", `"route":"/number-verification/v0/verify","status":200`},
		{"resource", `"route":"/number-verification/v2/verify","status":400`},
		{"resource", `"route":"/number-verification/v2/verify","status":401`},
		{"resource", `device-phone-number","status":200`},
		{"resource", `"x_correlator":"log-hygiene-correlator"`},
		{"network", `"route":"/sessions","status":201`},
		{"network", `"route":"/lookup","status":200`},
	} {
		if !regexp.MustCompile(want.pattern).MatchString(logs[want.server]) {
			t.Errorf("the %s log has no line matching %s", want.server, want.pattern)
		}
	}
	// Issue 6: the request line names the client. The resource server's do;
	// the authorization server's must too, at least where the client
	// authenticated (token, introspect, revoke).
	t.Run("authz access log names the client", func(t *testing.T) {
		for _, route := range []string{"/token", "/introspect", "/revoke"} {
			found := false
			line200 := regexp.MustCompile(`"route":"(POST )?` + route + `","status":200`)
			for _, line := range strings.Split(logs["authz"], "\n") {
				if strings.Contains(line, `"msg":"request"`) && line200.MatchString(line) {
					found = true
					if !strings.Contains(line, `"client_id":"`+client.ID+`"`) {
						t.Errorf("access-log line without the client id: %s", line)
					}
				}
			}
			if !found {
				t.Errorf("no access-log line for %s 200", route)
			}
		}
	})
	if t.Failed() {
		return
	}
	var lines int
	for _, out := range logs {
		lines += strings.Count(out, "\n")
	}
	t.Logf("%d log lines (authz, resource, network at debug level) hold none of %d secrets", lines, len(secrets))
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func lastSegment(token string) string {
	return token[strings.LastIndexByte(token, '.')+1:]
}
