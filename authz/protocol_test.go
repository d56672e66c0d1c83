package authz_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
)

// discoveryDocument fetches the server's metadata.
func (s *testServer) discoveryDocument(t testing.TB) map[string]any {
	t.Helper()
	resp, err := http.Get(s.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestIssuerInAuthorizationResponses: RFC 9207, every authorization
// response redirected to the client carries iss, the issuer of discovery.
func TestIssuerInAuthorizationResponses(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{RedirectURIs: []string{"https://sp.example/callback?tenant=a"}})
	dev := srv.newDevice()
	conf, _ := srv.oauthConfig(t, sp)
	doc := srv.discoveryDocument(t)
	if doc["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("discovery: authorization_response_iss_parameter_supported = %v", doc["authorization_response_iss_parameter_supported"])
	}
	issuer, _ := doc["issuer"].(string)
	for name, tc := range map[string]struct {
		device  device
		authURL string
		want    string // the code or error expected
	}{
		"code":          {dev, authorizeURL(conf, oauth2.GenerateVerifier()), "code"},
		"access_denied": {newDetachedDevice(), authorizeURL(conf, oauth2.GenerateVerifier()), "access_denied"},
		"fosite's own":  {dev, authorizeURL(conf, oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("scope", "openid nothing")), "invalid_scope"},
		"no PKCE":       {dev, conf.AuthCodeURL("state-x"), "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			q := tc.device.authorize(t, tc.authURL, nil)
			if tc.want == "code" && q.Get("code") == "" || tc.want != "code" && q.Get("error") != tc.want {
				t.Fatalf("want %s, got %v", tc.want, q)
			}
			if got := q["iss"]; len(got) != 1 || got[0] != issuer || issuer == "" {
				t.Errorf("iss = %q, want [%q]", got, issuer)
			}
			if q.Get("tenant") != "a" {
				t.Errorf("the registered URI's own query was lost: %v", q)
			}
		})
	}
}

// TestResponseModeOnlyQuery: discovery lists only query; form_post,
// fragment and anything else are invalid_request, redirected in the query
// of the registered URI.
func TestResponseModeOnlyQuery(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	conf, _ := srv.oauthConfig(t, sp)
	if modes, _ := srv.discoveryDocument(t)["response_modes_supported"].([]any); len(modes) != 1 || modes[0] != "query" {
		t.Fatalf("discovery lists response modes %v", modes)
	}
	for _, mode := range []string{"form_post", "fragment", "query.jwt", "FORM_POST", "nonsense"} {
		t.Run(mode, func(t *testing.T) {
			authURL := authorizeURL(conf, oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("response_mode", mode))
			resp := dev.get(t, authURL, nil)
			body, _ := io.ReadAll(resp.Body)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, sp.redirectURI+"?") || strings.Contains(loc, "#") {
				t.Fatalf("status %d, Location %q, body %.200s", resp.StatusCode, loc, body)
			}
			u, _ := url.Parse(loc)
			if u.Query().Get("error") != "invalid_request" || u.Query().Get("code") != "" {
				t.Fatalf("Location %q", loc)
			}
		})
	}
	t.Run("query", func(t *testing.T) {
		q := dev.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("response_mode", "query")), nil)
		if q.Get("code") == "" {
			t.Fatalf("response_mode=query: %v", q)
		}
	})
}

// TestUserinfoBearerTokenNotInQuery: the access token is accepted in the
// Authorization header and, for POST, in the form body (RFC 6750 §2.1 and
// §2.2), never in the query string (§2.3, which leaks it to logs), and by
// one method only.
func TestUserinfoBearerTokenNotInQuery(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	conf, code, verifier := srv.code(t, sp, dev)
	token, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	userinfo := srv.issuer + "/userinfo"
	bearer := http.Header{"Authorization": {"Bearer " + token.AccessToken}}
	form := "access_token=" + url.QueryEscape(token.AccessToken)
	for name, tc := range map[string]struct {
		method, target, body string
		header               http.Header
		status               int
		error                string
	}{
		"header":               {http.MethodGet, userinfo, "", bearer, http.StatusOK, ""},
		"POST form body":       {http.MethodPost, userinfo, form, nil, http.StatusOK, ""},
		"GET query":            {http.MethodGet, userinfo + "?" + form, "", nil, http.StatusBadRequest, "invalid_request"},
		"POST query":           {http.MethodPost, userinfo + "?" + form, "", nil, http.StatusBadRequest, "invalid_request"},
		"header and query":     {http.MethodGet, userinfo + "?" + form, "", bearer, http.StatusBadRequest, "invalid_request"},
		"header and body":      {http.MethodPost, userinfo, form, bearer, http.StatusBadRequest, "invalid_request"},
		"body twice":           {http.MethodPost, userinfo, form + "&" + form, nil, http.StatusBadRequest, "invalid_request"},
		"no token":             {http.MethodGet, userinfo, "", nil, http.StatusUnauthorized, "invalid_token"},
		"unknown token header": {http.MethodGet, userinfo, "", http.Header{"Authorization": {"Bearer nope"}}, http.StatusUnauthorized, "invalid_token"},
	} {
		t.Run(name, func(t *testing.T) {
			status, _, body := doRequest(t, http.DefaultClient, tc.method, tc.target, tc.body, tc.header)
			if status != tc.status || (tc.error != "" && body["error"] != tc.error) || (tc.error == "" && body["sub"] == nil) {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.error)
			}
		})
	}
}

// TestClientAssertionAudienceIsTheIssuer: a private_key_jwt assertion's aud
// is the issuer, one value (a string, or an array of exactly the issuer);
// the token URL, another endpoint's URL and several audiences are refused.
func TestClientAssertionAudienceIsTheIssuer(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT})
	dev := srv.newDevice()
	tokenURL := srv.issuer + "/token"
	withAud := func(aud any) string {
		now := time.Now()
		return signJWT(t, sp.key, sp.kid, map[string]any{
			"iss": sp.id, "sub": sp.id, "aud": aud, "jti": randomString(),
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		})
	}
	for name, tc := range map[string]struct {
		aud any
		ok  bool
	}{
		"issuer":                 {srv.issuer, true},
		"[issuer]":               {[]string{srv.issuer}, true},
		"token URL":              {tokenURL, false},
		"[token URL]":            {[]string{tokenURL}, false},
		"[issuer, token URL]":    {[]string{srv.issuer, tokenURL}, false},
		"[issuer, other]":        {[]string{srv.issuer, "https://other-as.example"}, false},
		"[issuer, issuer]":       {[]string{srv.issuer, srv.issuer}, false},
		"issuer with a slash":    {srv.issuer + "/", false},
		"introspection endpoint": {srv.issuer + "/introspect", false},
		"empty array":            {[]string{}, false},
		"number":                 {42, false},
	} {
		t.Run(name, func(t *testing.T) {
			conf, code, verifier := srv.code(t, sp, dev)
			form := url.Values{
				"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
				"redirect_uri": {conf.RedirectURL}, "client_id": {sp.id},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {withAud(tc.aud)},
			}
			status, body := postForm(t, tokenURL, form, "", "")
			switch {
			case tc.ok && status != http.StatusOK:
				t.Fatalf("got %d %v, want tokens", status, body)
			case !tc.ok && (status != http.StatusUnauthorized || body["error"] != "invalid_client"):
				t.Fatalf("got %d %v, want 401 invalid_client", status, body)
			}
		})
	}
	t.Run("introspection", func(t *testing.T) {
		form := url.Values{"token": {"x"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
		form.Set("client_assertion", withAud(srv.issuer+"/introspect"))
		if status, body := postForm(t, srv.issuer+"/introspect", form, "", ""); status != http.StatusUnauthorized {
			t.Fatalf("aud = introspection URL: %d %v", status, body)
		}
		form.Set("client_assertion", withAud(srv.issuer))
		if status, body := postForm(t, srv.issuer+"/introspect", form, "", ""); status != http.StatusOK || body["active"] != false {
			t.Fatalf("aud = issuer: %d %v", status, body)
		}
	})
}
