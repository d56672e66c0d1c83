package authz_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
)

// appendQuery adds raw (already encoded) parameters to a URL.
func appendQuery(rawURL, raw string) string { return rawURL + "&" + raw }

// rawPost posts an already encoded form body and returns the status and
// JSON body; a body that is not a JSON object fails the test.
func rawPost(t testing.TB, endpoint, body string, header http.Header) (int, map[string]any) {
	t.Helper()
	status, _, out := doRequest(t, http.DefaultClient, http.MethodPost, endpoint, body, header)
	if out == nil {
		t.Fatalf("status %d, body not a JSON object", status)
	}
	return status, out
}

// startWithDevice is a server, an SP registered with the defaults, a device
// and the SP's OAuth configuration.
func startWithDevice(t testing.TB) (*testServer, testClient, device, *oauth2.Config) {
	t.Helper()
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	conf, _ := srv.oauthConfig(t, sp)
	return srv, sp, dev, conf
}

// wantInvalidRequest fails the test unless the answer is 400
// invalid_request.
func wantInvalidRequest(t testing.TB, status int, body map[string]any) {
	t.Helper()
	if status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("got %d %v, want 400 invalid_request", status, body)
	}
}

// wantExchange fails the test unless sp can still exchange the code in
// good: the refusals before spent nothing of it.
func wantExchange(t testing.TB, tokenURL string, good url.Values, sp testClient) {
	t.Helper()
	if status, body := postForm(t, tokenURL, good, sp.id, sp.secret); status != http.StatusOK {
		t.Fatalf("exchange after the refusals: %d %v", status, body)
	}
}

// TestControlBytesAreInvalidRequest: a NUL or other control byte, or bytes
// that are not UTF-8, in any parameter are invalid_request (redirected once
// the redirect URI is known to be good), never a 500 (jsonb and text refuse
// them) nor a 503.
func TestControlBytesAreInvalidRequest(t *testing.T) {
	srv, sp, dev, conf := startWithDevice(t)

	for name, raw := range map[string]string{
		"nonce NUL":          "nonce=abcdefgh%00",
		"max_age NUL":        "max_age=%00",
		"acr_values NUL":     "acr_values=%00",
		"claims_locales DEL": "claims_locales=fr%7F",
		"ui_locales newline": "ui_locales=fr%0Aen",
		"login_hint SOH":     "login_hint=tel%3A%2B33612345678%01",
		"audience NUL":       "audience=%00",
		"unknown parameter":  "foo=%00",
		"parameter name":     "f%00o=bar",
		"nonce not UTF-8":    "nonce=abcdefgh%FF",
		"nonce C1 control":   "nonce=abcdefgh%C2%85",
		"display escape":     "display=%1B",
		"response_mode NUL":  "response_mode=query%00",
	} {
		t.Run(name, func(t *testing.T) {
			wantRedirectError(t, dev, appendQuery(authorizeURL(conf, oauth2.GenerateVerifier()), raw), nil, "invalid_request")
		})
	}
	t.Run("scope openid NUL", func(t *testing.T) {
		c := *conf
		c.Scopes = []string{"openid\x00", "number-verification:verify"}
		wantRedirectError(t, dev, authorizeURL(&c, oauth2.GenerateVerifier()), nil, "invalid_request")
	})
	t.Run("state NUL", func(t *testing.T) {
		authURL := conf.AuthCodeURL("state\x00", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
		if q := dev.authorize(t, authURL, nil); q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Fatalf("got %v", q)
		}
	})
	t.Run("client_id NUL", func(t *testing.T) {
		c := *conf
		c.ClientID = sp.id + "\x00"
		wantErrorPage(t, dev, authorizeURL(&c, oauth2.GenerateVerifier()), http.StatusBadRequest, "invalid_request")
	})
	t.Run("client_id not UTF-8", func(t *testing.T) {
		c := *conf
		c.ClientID = "\xff"
		wantErrorPage(t, dev, authorizeURL(&c, oauth2.GenerateVerifier()), http.StatusBadRequest, "invalid_request")
	})

	_, code, verifier := srv.code(t, sp, dev)
	tokenURL := srv.issuer + "/token"
	good := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {sp.redirectURI}}
	for name, tc := range map[string]struct {
		endpoint, body string
		header         http.Header
	}{
		"token: code NUL":           {tokenURL, "grant_type=authorization_code&code=abc.%00&code_verifier=" + verifier, basic(sp.id, sp.secret)},
		"token: code not UTF-8":     {tokenURL, "grant_type=authorization_code&code=abc.%FF&code_verifier=" + verifier, basic(sp.id, sp.secret)},
		"token: refresh token NUL":  {tokenURL, "grant_type=refresh_token&refresh_token=abc.%00", basic(sp.id, sp.secret)},
		"token: verifier NUL":       {tokenURL, good.Encode() + "&x=%00", basic(sp.id, sp.secret)},
		"token: grant_type NUL":     {tokenURL, "grant_type=authorization_code%00&code=x", basic(sp.id, sp.secret)},
		"token: client_id NUL":      {tokenURL, good.Encode() + "&client_id=%00&client_secret=x", nil},
		"token: Basic user NUL":     {tokenURL, good.Encode(), basic(sp.id+"\x00", sp.secret)},
		"token: Basic not UTF-8":    {tokenURL, good.Encode(), basic("\xff", sp.secret)},
		"token: query NUL":          {tokenURL + "?code=%00", good.Encode(), basic(sp.id, sp.secret)},
		"introspect: token NUL":     {srv.issuer + "/introspect", "token=abc.%00", basic(sp.id, sp.secret)},
		"introspect: Basic NUL":     {srv.issuer + "/introspect", "token=abc", basic("\x00", "x")},
		"revoke: token NUL":         {srv.issuer + "/revoke", "token=abc.%00", basic(sp.id, sp.secret)},
		"revoke: token not UTF-8":   {srv.issuer + "/revoke", "token=abc.%FF&token_type_hint=refresh_token", basic(sp.id, sp.secret)},
		"revoke: client_id NUL":     {srv.issuer + "/revoke", "token=abc&client_id=%00", nil},
		"revoke: token_type_hint ^": {srv.issuer + "/revoke", "token=abc&token_type_hint=%1F", basic(sp.id, sp.secret)},
	} {
		t.Run(name, func(t *testing.T) {
			status, body := rawPost(t, tc.endpoint, tc.body, tc.header)
			wantInvalidRequest(t, status, body)
		})
	}
	// The code survived every refused request above.
	wantExchange(t, tokenURL, good, sp)
}

// TestResponseTypeMatchedExactly: response_type is the exact string "code";
// anything else is unsupported_response_type, redirected in the query.
func TestResponseTypeMatchedExactly(t *testing.T) {
	_, _, dev, conf := startWithDevice(t)
	for _, rt := range []string{"CODE", "Code", "token", "code id_token", "id_token"} {
		t.Run(rt, func(t *testing.T) {
			authURL := authorizeURL(conf, oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("response_type", rt))
			wantRedirectError(t, dev, authURL, nil, "unsupported_response_type")
		})
	}
}

// TestDuplicateParametersRefused: RFC 6749 §3.1 and §3.2, a parameter MUST
// NOT appear more than once: invalid_request, redirected unless it is the
// client_id or redirect_uri (then no redirect URI can be trusted).
func TestDuplicateParametersRefused(t *testing.T) {
	srv, sp, dev, conf := startWithDevice(t)

	for _, name := range []string{"state", "nonce", "scope", "code_challenge", "response_type", "login_hint"} {
		t.Run("authorize "+name, func(t *testing.T) {
			authURL := authorizeURL(conf, oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("nonce", randomString()))
			u, _ := url.Parse(authURL)
			q := u.Query()
			if q.Get(name) == "" {
				q.Set(name, "tel:+33612345678") // a well-formed login_hint
			}
			q.Add(name, q.Get(name))
			u.RawQuery = q.Encode()
			resp := dev.get(t, u.String(), nil)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), sp.redirectURI+"?") ||
				loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
				t.Fatalf("status %d, Location %q", resp.StatusCode, loc)
			}
		})
	}
	for _, name := range []string{"client_id", "redirect_uri"} {
		t.Run("authorize "+name, func(t *testing.T) {
			authURL := authorizeURL(conf, oauth2.GenerateVerifier())
			u, _ := url.Parse(authURL)
			wantErrorPage(t, dev, appendQuery(authURL, name+"="+url.QueryEscape(u.Query().Get(name))), http.StatusBadRequest, "invalid_request")
		})
	}
	t.Run("POST authorize: body and query", func(t *testing.T) {
		authURL := authorizeURL(conf, oauth2.GenerateVerifier())
		u, _ := url.Parse(authURL)
		req, _ := http.NewRequest(http.MethodPost, authURL, strings.NewReader("state="+url.QueryEscape(u.Query().Get("state"))))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := dev.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("status %d, Location %q", resp.StatusCode, loc)
		}
	})

	_, code, verifier := srv.code(t, sp, dev)
	tokenURL := srv.issuer + "/token"
	good := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {sp.redirectURI}}
	for _, name := range []string{"grant_type", "code", "code_verifier", "redirect_uri"} {
		t.Run("token "+name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range good {
				form[k] = append([]string(nil), v...)
			}
			form.Add(name, form.Get(name))
			status, body := postForm(t, tokenURL, form, sp.id, sp.secret)
			wantInvalidRequest(t, status, body)
		})
	}
	t.Run("token client_id in the body twice", func(t *testing.T) {
		status, body := rawPost(t, tokenURL, good.Encode()+"&client_id="+sp.id+"&client_id="+sp.id+"&client_secret="+sp.secret, nil)
		wantInvalidRequest(t, status, body)
	})
	wantExchange(t, tokenURL, good, sp)
}

// TestClientInputIsNeverUnavailable: errors that only the client's input
// causes are never temporarily_unavailable, however they read: a *url.Error
// (a net.Error) from an audience that is not a URL, a multipart body cut
// short (io.ErrUnexpectedEOF, like a connection Postgres dropped).
func TestClientInputIsNeverUnavailable(t *testing.T) {
	srv, sp, dev, conf := startWithDevice(t)
	t.Run("audience not a URL", func(t *testing.T) {
		authURL := appendQuery(authorizeURL(conf, oauth2.GenerateVerifier()), "audience="+url.QueryEscape("http://[::1"))
		q := dev.authorize(t, authURL, nil)
		if q.Get("error") == "" || q.Get("error") == "temporarily_unavailable" || q.Get("code") != "" {
			t.Fatalf("got %v", q)
		}
	})
	const cut = "--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nabc"
	for _, path := range []string{"/revoke", "/introspect", "/token", "/authorize"} {
		t.Run("multipart cut short at "+path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.issuer+path+"?client_id="+sp.id, strings.NewReader(cut))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
			req.SetBasicAuth(sp.id, sp.secret)
			resp, err := dev.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

// TestMultipartAuthorizeParametersChecked: the values of a multipart body
// at /authorize go through the same checks as the query's.
func TestMultipartAuthorizeParametersChecked(t *testing.T) {
	_, sp, dev, conf := startWithDevice(t)
	for name, tc := range map[string]struct {
		field, value string
		status       int
	}{
		"client_id NUL":     {"client_id", sp.id + "\x00", http.StatusBadRequest},
		"client_id twice":   {"client_id", sp.id, http.StatusBadRequest},
		"nonce NUL":         {"nonce", "abcdefgh\x00", http.StatusFound},
		"state in the body": {"state", "again", http.StatusFound},
	} {
		t.Run(name, func(t *testing.T) {
			body := "--b\r\nContent-Disposition: form-data; name=\"" + tc.field + "\"\r\n\r\n" + tc.value + "\r\n--b--\r\n"
			req, _ := http.NewRequest(http.MethodPost, authorizeURL(conf, oauth2.GenerateVerifier()), strings.NewReader(body))
			req.Header.Set("Content-Type", "multipart/form-data; boundary=b")
			resp, err := dev.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != tc.status || (tc.status == http.StatusFound && loc.Query().Get("error") != "invalid_request") {
				t.Fatalf("status %d, Location %q", resp.StatusCode, loc)
			}
		})
	}
}
