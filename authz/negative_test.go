package authz_test

import (
	"context"
	"crypto/ecdsa"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/testclock"
)

// authorizeURL is an authorization request with PKCE S256 and a state.
func authorizeURL(conf *oauth2.Config, verifier string, extra ...oauth2.AuthCodeOption) string {
	return conf.AuthCodeURL("state-"+randomString(), append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, extra...)...)
}

// code gets a code for d with c, or fails.
func (s *testServer) code(t testing.TB, c testClient, d device) (conf *oauth2.Config, code, verifier string) {
	t.Helper()
	conf, _ = s.oauthConfig(t, c)
	verifier = oauth2.GenerateVerifier()
	q := d.authorize(t, authorizeURL(conf, verifier), nil)
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	return conf, q.Get("code"), verifier
}

// wantRedirectError asserts the authorization request was answered by a
// redirect to the client carrying error and the request's state.
func wantRedirectError(t testing.TB, d device, authURL string, header http.Header, want string) {
	t.Helper()
	q := d.authorize(t, authURL, header)
	state, _ := url.Parse(authURL)
	if q.Get("error") != want || q.Get("code") != "" {
		t.Fatalf("error=%q (%s) code=%q, want error=%q", q.Get("error"), q.Get("error_description"), q.Get("code"), want)
	}
	if q.Get("state") != state.Query().Get("state") {
		t.Errorf("state %q not returned", state.Query().Get("state"))
	}
}

// wantErrorPage asserts the request was not redirected anywhere.
func wantErrorPage(t testing.TB, d device, authURL string, wantStatus int, wantError string) {
	t.Helper()
	resp := d.get(t, authURL, nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus || resp.Header.Get("Location") != "" {
		t.Fatalf("status %d, Location %q; want %d and no redirect", resp.StatusCode, resp.Header.Get("Location"), wantStatus)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), wantError) {
		t.Fatalf("want an HTML page naming %s, got %s: %s", wantError, resp.Header.Get("Content-Type"), body)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	loopback := srv.client(store.ClientSpec{RedirectURIs: []string{"http://127.0.0.1:8080/callback"}})
	dev := srv.newDevice()
	conf, _ := srv.oauthConfig(t, sp)
	verifier := oauth2.GenerateVerifier()

	t.Run("address no session holds", func(t *testing.T) {
		wantRedirectError(t, newDetachedDevice(), authorizeURL(conf, verifier), nil, "access_denied")
	})
	t.Run("forged X-Forwarded-For from an untrusted peer", func(t *testing.T) {
		header := http.Header{"X-Forwarded-For": {dev.addr.String()}, "Forwarded": {"for=" + dev.addr.String()}}
		wantRedirectError(t, newDetachedDevice(), authorizeURL(conf, verifier), header, "access_denied")
	})
	t.Run("no PKCE", func(t *testing.T) {
		wantRedirectError(t, dev, conf.AuthCodeURL("state-"+randomString()), nil, "invalid_request")
	})
	t.Run("plain PKCE", func(t *testing.T) {
		authURL := conf.AuthCodeURL("state-"+randomString(),
			oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		wantRedirectError(t, dev, authURL, nil, "invalid_request")
	})
	t.Run("PKCE without a method (plain by default)", func(t *testing.T) {
		authURL := conf.AuthCodeURL("state-"+randomString(), oauth2.SetAuthURLParam("code_challenge", s256(verifier)))
		wantRedirectError(t, dev, authURL, nil, "invalid_request")
	})
	t.Run("unknown scope", func(t *testing.T) {
		c := *conf
		c.Scopes = []string{"openid", "number-verification:everything"}
		wantRedirectError(t, dev, authorizeURL(&c, verifier), nil, "invalid_scope")
	})
	t.Run("scope the client was not registered for", func(t *testing.T) {
		verifyOnly := srv.client(store.ClientSpec{Scopes: []string{"openid", contract.ScopeVerify}})
		c, _ := srv.oauthConfig(t, verifyOnly, "openid", contract.ScopeShare)
		wantRedirectError(t, dev, authorizeURL(c, verifier), nil, "invalid_scope")
	})
	t.Run("malformed login_hint", func(t *testing.T) {
		wantRedirectError(t, dev, authorizeURL(conf, verifier, oauth2.SetAuthURLParam("login_hint", "tel:0612345678")), nil, "invalid_request")
	})
	t.Run("request_uri", func(t *testing.T) {
		authURL := authorizeURL(conf, verifier, oauth2.SetAuthURLParam("request_uri", "urn:ietf:params:oauth:request_uri:abc"))
		wantRedirectError(t, dev, authURL, nil, "request_uri_not_supported")
	})
	t.Run("unregistered redirect URI", func(t *testing.T) {
		c := *conf
		c.RedirectURL = "https://attacker.example/callback"
		wantErrorPage(t, dev, authorizeURL(&c, verifier), http.StatusBadRequest, "invalid_request")
	})
	t.Run("loopback redirect URI on another port", func(t *testing.T) {
		c, _ := srv.oauthConfig(t, loopback)
		c.RedirectURL = "http://127.0.0.1:9999/callback"
		wantErrorPage(t, dev, authorizeURL(c, verifier), http.StatusBadRequest, "invalid_request")
	})
	t.Run("unknown client", func(t *testing.T) {
		c := *conf
		c.ClientID = "no-such-client"
		wantErrorPage(t, dev, authorizeURL(&c, verifier), http.StatusUnauthorized, "invalid_client")
	})
}

func TestLoginHintNeverChangesWhoLogsIn(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	dev, other := srv.newDevice(), srv.newDevice()
	want := srv.login(t, sp, dev, "ES256").idToken.Subject
	conf, _ := srv.oauthConfig(t, sp)
	for _, hint := range []string{"tel:" + other.msisdn, other.msisdn, "ipport:" + other.addr.String() + ":5000"} {
		verifier := oauth2.GenerateVerifier()
		q := dev.authorize(t, authorizeURL(conf, verifier, oauth2.SetAuthURLParam("login_hint", hint)), nil)
		token, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("hint %q: %v", hint, err)
		}
		claims, err := contract.Open(token.AccessToken, srv.openKey)
		if err != nil || claims.Subject != want || claims.PhoneNumber != dev.msisdn {
			t.Errorf("hint %q logged in %+v (err %v), want the device's subscriber", hint, claims, err)
		}
	}
}

func TestTokenRefusals(t *testing.T) {
	clock := &testclock.Offset{}
	srv := startServer(t, func(s *serverSetup) { s.now = clock.Now })
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	ctx := context.Background()

	t.Run("wrong PKCE verifier", func(t *testing.T) {
		conf, code, _ := srv.code(t, sp, dev)
		_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if e, status := tokenError(t, err); e != "invalid_grant" || status != http.StatusBadRequest {
			t.Fatalf("got %s %d, want invalid_grant 400", e, status)
		}
	})
	t.Run("no verifier", func(t *testing.T) {
		conf, code, _ := srv.code(t, sp, dev)
		_, err := conf.Exchange(ctx, code)
		if e, _ := tokenError(t, err); e != "invalid_grant" {
			t.Fatalf("got %s, want invalid_grant", e)
		}
	})
	t.Run("bad client secret", func(t *testing.T) {
		conf, code, verifier := srv.code(t, sp, dev)
		conf.ClientSecret = "not-the-secret"
		_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if e, status := tokenError(t, err); e != "invalid_client" || status != http.StatusUnauthorized {
			t.Fatalf("got %s %d, want invalid_client 401", e, status)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		lifetime := srv.server.Config().AuthorizeCodeLifetime
		conf, early, earlyVerifier := srv.code(t, sp, dev)
		_, late, lateVerifier := srv.code(t, sp, dev)
		defer func() { clock.Advance(-clock.Advanced()) }()
		clock.Advance(lifetime - 5*time.Second)
		if _, err := conf.Exchange(ctx, early, oauth2.VerifierOption(earlyVerifier)); err != nil {
			t.Fatalf("a code 5 s before its expiry: %v", err)
		}
		clock.Advance(10 * time.Second)
		_, err := conf.Exchange(ctx, late, oauth2.VerifierOption(lateVerifier))
		if e, _ := tokenError(t, err); e != "invalid_grant" {
			t.Fatalf("a code 5 s after its expiry: got %s, want invalid_grant", e)
		}
	})
	t.Run("redirect_uri differs", func(t *testing.T) {
		conf, code, verifier := srv.code(t, sp, dev)
		conf.RedirectURL = "https://sp.example/elsewhere"
		_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if e, _ := tokenError(t, err); e != "invalid_grant" {
			t.Fatalf("got %s, want invalid_grant", e)
		}
	})
	t.Run("redirect_uri omitted", func(t *testing.T) {
		conf, code, verifier := srv.code(t, sp, dev)
		conf.RedirectURL = ""
		_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if e, _ := tokenError(t, err); e != "invalid_grant" {
			t.Fatalf("got %s, want invalid_grant (the client does not allow a missing redirect_uri)", e)
		}
	})
	t.Run("redirect_uri omitted, allowed for this client", func(t *testing.T) {
		lenient := srv.client(store.ClientSpec{AllowMissingRedirectURI: true})
		conf, code, verifier := srv.code(t, lenient, dev)
		conf.RedirectURL = ""
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("exchange: %v", err)
		}
		// PKCE still binds the code.
		conf, code, _ = srv.code(t, lenient, dev)
		conf.RedirectURL = ""
		_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if e, _ := tokenError(t, err); e != "invalid_grant" {
			t.Fatalf("got %s, want invalid_grant", e)
		}
	})
	t.Run("unsupported grant type", func(t *testing.T) {
		status, body := postForm(t, srv.issuer+"/token", url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, sp.id, sp.secret)
		if status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
			t.Fatalf("got %d %v", status, body)
		}
	})
}

// assertion is a private_key_jwt client assertion.
func assertion(t testing.TB, c testClient, aud string, iat time.Time, life time.Duration, jti string) string {
	t.Helper()
	return signJWT(t, c.key, c.kid, map[string]any{
		"iss": c.id, "sub": c.id, "aud": aud, "jti": jti,
		"iat": iat.Unix(), "exp": iat.Add(life).Unix(),
	})
}

func signJWT(t testing.TB, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPrivateKeyJWT(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT})
	dev := srv.newDevice()
	ctx := context.Background()
	tokenURL := srv.issuer + "/token"

	exchange := func(t *testing.T, clientAssertion string) error {
		conf, code, verifier := srv.code(t, sp, dev)
		conf.ClientSecret = ""
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier),
			oauth2.SetAuthURLParam("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
			oauth2.SetAuthURLParam("client_assertion", clientAssertion))
		return err
	}
	wantInvalidClient := func(t *testing.T, err error) {
		t.Helper()
		if e, status := tokenError(t, err); e != "invalid_client" || status != http.StatusUnauthorized {
			t.Fatalf("got %s %d, want invalid_client 401", e, status)
		}
	}

	replayed := assertion(t, sp, srv.issuer, time.Now(), time.Minute, randomString())
	t.Run("aud = issuer", func(t *testing.T) {
		if err := exchange(t, replayed); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("aud = token endpoint", func(t *testing.T) {
		wantInvalidClient(t, exchange(t, assertion(t, sp, tokenURL, time.Now(), time.Minute, randomString())))
	})
	t.Run("replayed", func(t *testing.T) { wantInvalidClient(t, exchange(t, replayed)) })
	t.Run("expired", func(t *testing.T) {
		wantInvalidClient(t, exchange(t, assertion(t, sp, srv.issuer, time.Now().Add(-3*time.Minute), time.Minute, randomString())))
	})
	t.Run("another audience", func(t *testing.T) {
		wantInvalidClient(t, exchange(t, assertion(t, sp, "https://other-as.example/token", time.Now(), time.Minute, randomString())))
	})
	t.Run("lifetime over 300 s", func(t *testing.T) {
		wantInvalidClient(t, exchange(t, assertion(t, sp, srv.issuer, time.Now(), 10*time.Minute, randomString())))
	})
	t.Run("no iat", func(t *testing.T) {
		wantInvalidClient(t, exchange(t, signJWT(t, sp.key, sp.kid, map[string]any{
			"iss": sp.id, "sub": sp.id, "aud": srv.issuer, "jti": randomString(), "exp": time.Now().Add(time.Minute).Unix()})))
	})
	t.Run("signed by another key", func(t *testing.T) {
		impostor := srv.client(store.ClientSpec{TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT})
		impostor.id = sp.id
		wantInvalidClient(t, exchange(t, assertion(t, impostor, srv.issuer, time.Now(), time.Minute, randomString())))
	})
}
