package authz_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

// unlimited turns the abuse limits off: a fuzz target sends thousands of
// requests from one address and must reach the code behind the limits.
func unlimited() serverOption {
	return config(func(c *authz.Config) {
		c.RateLimitPerIP = authz.NoRateLimit
		c.RateLimitPerDevice = authz.NoRateLimit
		c.RateLimitPerClient = authz.NoRateLimit
		c.RateLimitAuthFailuresPerIP = authz.NoRateLimit
	})
}

// tokenFuzzer issues real codes, refresh tokens and client assertions for
// the placeholders of a fuzzed token request, through the server's handler.
type tokenFuzzer struct {
	srv     *testServer
	handler http.Handler
	dev     device
	clients []testClient // Basic, post, private_key_jwt
}

// authorize returns a fresh code of c (scope openid and scope) and its verifier.
func (z *tokenFuzzer) authorize(t testing.TB, c testClient, scope string) (code, verifier string) {
	verifier = oauth2.GenerateVerifier()
	q := url.Values{
		"client_id": {c.id}, "response_type": {"code"}, "redirect_uri": {c.redirectURI}, "scope": {scope},
		"state": {"fuzz-state"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
	}
	req := httptest.NewRequest(http.MethodGet, "/authorize?"+q.Encode(), nil)
	req.RemoteAddr = z.dev.addr.String() + ":40000"
	rec := httptest.NewRecorder()
	z.handler.ServeHTTP(rec, req)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code for the fuzzer: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	return loc.Query().Get("code"), verifier
}

// refreshToken returns a fresh refresh token of the Basic client.
func (z *tokenFuzzer) refreshToken(t testing.TB) string {
	c := z.clients[0]
	code, verifier := z.authorize(t, c, "openid offline_access")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {c.redirectURI}}
	rec := z.post(form.Encode(), "application/x-www-form-urlencoded", basicAuth(c))
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.RefreshToken == "" {
		t.Fatalf("no refresh token for the fuzzer: %d %s", rec.Code, rec.Body)
	}
	return body.RefreshToken
}

func (z *tokenFuzzer) post(body, contentType, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.RemoteAddr = "127.0.0.1:40001"
	rec := httptest.NewRecorder()
	z.handler.ServeHTTP(rec, req)
	return rec
}

func basicAuth(c testClient) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.id)+":"+url.QueryEscape(c.secret)))
}

// expand replaces the placeholders of a fuzzed body or header with real
// values of client c, issued only when the input names them:
// $CLIENT, $SECRET, $REDIRECT, $CODE and $VERIFIER (a fresh code of c),
// $REFRESH (a fresh refresh token), $ASSERTION (a fresh private_key_jwt
// assertion of the private_key_jwt client), $BASIC (c's Basic credentials),
// each escaped by escape.
func (z *tokenFuzzer) expand(t testing.TB, s string, c testClient, values map[string]string, escape func(string) string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	if _, done := values["$CODE"]; !done && (strings.Contains(s, "$CODE") || strings.Contains(s, "$VERIFIER")) {
		values["$CODE"], values["$VERIFIER"] = z.authorize(t, c, "openid "+contract.ScopeVerify)
	}
	if _, done := values["$REFRESH"]; !done && strings.Contains(s, "$REFRESH") {
		values["$REFRESH"] = z.refreshToken(t)
	}
	if _, done := values["$ASSERTION"]; !done && strings.Contains(s, "$ASSERTION") {
		jwtClient := z.clients[2]
		values["$ASSERTION"] = assertion(t, jwtClient, z.srv.issuer, time.Now(), time.Minute, randomString())
	}
	values["$CLIENT"], values["$SECRET"], values["$REDIRECT"] = c.id, c.secret, c.redirectURI
	values["$BASIC"] = strings.TrimPrefix(basicAuth(c), "Basic ")
	for _, name := range []string{"$CLIENT", "$SECRET", "$REDIRECT", "$CODE", "$VERIFIER", "$REFRESH", "$ASSERTION", "$BASIC"} {
		if v, ok := values[name]; ok {
			s = strings.ReplaceAll(s, name, escape(v))
		}
	}
	return s
}

var errorCode = regexp.MustCompile(`^[a-z_]+$`)

// FuzzToken posts arbitrary token requests, every grant (authorization_code,
// refresh_token, and any other string) with every client authentication
// (none, Basic, client_secret_post, private_key_jwt, and whatever the input
// writes in the Authorization header), over a real store. Placeholders in
// the input become real codes, verifiers, refresh tokens and assertions, so
// that the fuzzer mutates around requests that succeed. Whatever the input:
// no 5xx; an error is an RFC 6749 §5.2 JSON object; a success is a bearer
// token.
func FuzzToken(f *testing.F) {
	srv := startServer(f, unlimited())
	scopes := []string{"openid", contract.ScopeVerify, contract.ScopeShare}
	z := &tokenFuzzer{srv: srv, handler: srv.server.Handler(), dev: srv.newDevice(), clients: []testClient{
		srv.client(store.ClientSpec{Scopes: scopes, GrantTypes: []string{"authorization_code", "refresh_token"}}),
		srv.client(store.ClientSpec{Scopes: scopes, TokenEndpointAuthMethod: store.AuthMethodClientSecretPost}),
		srv.client(store.ClientSpec{Scopes: scopes, TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT}),
	}}
	const code = "grant_type=authorization_code&code=$CODE&code_verifier=$VERIFIER&redirect_uri=$REDIRECT"
	seeds := []struct {
		which         uint8 // client: 0 Basic, 1 post, 2 private_key_jwt; +3 multipart, +6 no Content-Type
		body, header  string
		wantSucceeded bool
	}{
		{0, code, "Basic $BASIC", true},
		{1, code + "&client_id=$CLIENT&client_secret=$SECRET", "", true},
		{2, code + "&client_id=$CLIENT&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=$ASSERTION", "", true},
		{0, "grant_type=refresh_token&refresh_token=$REFRESH", "Basic $BASIC", true},
		{0, "grant_type=refresh_token&refresh_token=$REFRESH&scope=openid+offline_access", "Basic $BASIC", true},
		// fosite ignores a refresh request's scope: the grant keeps its own.
		{0, "grant_type=refresh_token&refresh_token=$REFRESH&scope=openid+number-verification%3Averify", "Basic $BASIC", true},
		{1, "grant_type=refresh_token&refresh_token=$REFRESH&client_id=$CLIENT&client_secret=$SECRET", "", false},
		{0, "grant_type=client_credentials&scope=openid", "Basic $BASIC", false},
		{0, "grant_type=password&username=a&password=b", "Basic $BASIC", false},
		{0, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=$ASSERTION", "Basic $BASIC", false},
		{0, "grant_type=authorization_code+refresh_token&code=$CODE&refresh_token=$REFRESH", "Basic $BASIC", false},
		{0, code + "&code=$CODE", "Basic $BASIC", false},
		{0, "grant_type=authorization_code&code=$CODE.x&code_verifier=%00", "Basic $BASIC", false},
		{0, code, "Basic Og==", false},
		{0, code, "Bearer $CODE", false},
		{3, code, "Basic $BASIC", false},
		{6, code, "Basic $BASIC", false},
		{2, code + "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.", "", false},
	}
	for _, s := range seeds {
		f.Add(s.which, s.body, s.header)
	}
	send := func(t testing.TB, which uint8, body, header string) *httptest.ResponseRecorder {
		c := z.clients[int(which%3)]
		values := map[string]string{}
		body, header = z.expand(t, body, c, values, url.QueryEscape), z.expand(t, header, c, values, func(v string) string { return v })
		contentType := "application/x-www-form-urlencoded"
		switch which / 3 % 3 {
		case 1:
			contentType = "multipart/form-data; boundary=b"
			body = "--b\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n" + body + "\r\n--b--\r\n"
		case 2:
			contentType = ""
		}
		return z.post(body, contentType, header)
	}
	// The good seeds reach the code paths behind the checks.
	for _, s := range seeds {
		if rec := send(f, s.which, s.body, s.header); (rec.Code == http.StatusOK) != s.wantSucceeded {
			f.Fatalf("seed %q: %d %s", s.body, rec.Code, rec.Body)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body, header string) {
		if strings.ContainsAny(header, "\r\n") {
			return // not a header a client can send
		}
		rec := send(t, which, body, header)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q (Authorization %q): %s", rec.Code, body, header, rec.Body)
		}
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("status %d, not a JSON object: %q", rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK {
			tok, _ := answer["access_token"].(string)
			if typ, _ := answer["token_type"].(string); tok == "" || !strings.EqualFold(typ, "bearer") {
				t.Fatalf("200 without a bearer token: %v", answer)
			}
			return
		}
		code, _ := answer["error"].(string)
		if !errorCode.MatchString(code) || answer["access_token"] != nil {
			t.Fatalf("status %d, error %v: %v", rec.Code, answer["error"], answer)
		}
		if d, ok := answer["error_description"]; ok {
			if _, isString := d.(string); !isString {
				t.Fatalf("error_description %v", d)
			}
		}
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d for error %s", rec.Code, code)
		}
	})
}
