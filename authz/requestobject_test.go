package authz_test

import (
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

func TestRequestObjects(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT})
	dev := srv.newDevice()
	conf, _ := srv.oauthConfig(t, sp)
	verifier := oauth2.GenerateVerifier()
	state := "state-" + randomString()

	// object is a request object repeating the plain parameters.
	object := func(change func(map[string]any)) string {
		now := time.Now()
		claims := map[string]any{
			"iss": sp.id, "aud": srv.issuer, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randomString(),
			"client_id": sp.id, "response_type": "code", "redirect_uri": sp.redirectURI, "state": state,
			"scope": "openid " + contract.ScopeVerify, "code_challenge": s256(verifier), "code_challenge_method": "S256",
		}
		if change != nil {
			change(claims)
		}
		return signJWT(t, sp.key, sp.kid, claims)
	}
	withObject := func(request string) string {
		return conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("request", request))
	}

	t.Run("valid", func(t *testing.T) {
		q := dev.authorize(t, withObject(object(nil)), nil)
		if q.Get("code") == "" {
			t.Fatalf("no code: %v", q)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		same := object(nil)
		if q := dev.authorize(t, withObject(same), nil); q.Get("code") == "" {
			t.Fatalf("first use: %v", q)
		}
		wantRedirectError(t, dev, withObject(same), nil, "invalid_request_object")
	})
	for name, change := range map[string]func(map[string]any){
		"wrong aud":       func(c map[string]any) { c["aud"] = "https://other-as.example" },
		"life over 300 s": func(c map[string]any) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() },
		"expired": func(c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-3*time.Minute).Unix(), time.Now().Add(-time.Minute).Unix()
		},
		"iss not the client": func(c map[string]any) { c["iss"] = "someone-else" },
		"no jti":             func(c map[string]any) { delete(c, "jti") },
		"no iat":             func(c map[string]any) { delete(c, "iat") },
		"plain scope differs": func(c map[string]any) {
			c["scope"] = "openid " + contract.ScopeShare
		},
		"plain state differs": func(c map[string]any) { c["state"] = "state-other" },
	} {
		t.Run(name, func(t *testing.T) {
			wantRedirectError(t, dev, withObject(object(change)), nil, "invalid_request_object")
		})
	}
	t.Run("redirect_uri of the object not registered", func(t *testing.T) {
		wantErrorPage(t, dev, withObject(object(func(c map[string]any) { c["redirect_uri"] = "https://attacker.example/cb" })),
			400, "invalid_request")
	})
	t.Run("signed by another key", func(t *testing.T) {
		other := srv.client(store.ClientSpec{TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT})
		forged := signJWT(t, other.key, sp.kid, map[string]any{"iss": sp.id, "aud": srv.issuer, "iat": time.Now().Unix(),
			"exp": time.Now().Add(time.Minute).Unix(), "jti": randomString()})
		wantRedirectError(t, dev, withObject(forged), nil, "invalid_request_object")
	})
}
