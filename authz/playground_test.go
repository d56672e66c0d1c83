package authz_test

import (
	"context"
	"net/http"
	"testing"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

// The playground logs an SP developer in by login_hint=tel:+… without the
// network; its tokens say so (amr playground), and the resource server
// refuses them unless allowed. Off (the default), a hint logs nobody in.
func TestPlayground(t *testing.T) {
	laptop := newDetachedDevice() // no SIM, no session
	const number = "+33698765432"
	login := func(t *testing.T, srv *testServer) (string, map[string]string) {
		t.Helper()
		sp := srv.client(store.ClientSpec{})
		conf, _ := srv.oauthConfig(t, sp)
		verifier := oauth2.GenerateVerifier()
		q := laptop.authorize(t, authorizeURL(conf, verifier, oauth2.SetAuthURLParam("login_hint", "tel:"+number)), nil)
		if q.Get("code") == "" {
			return "", map[string]string{"error": q.Get("error")}
		}
		token, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		return token.AccessToken, nil
	}

	t.Run("off", func(t *testing.T) {
		srv := startServer(t)
		if token, refused := login(t, srv); token != "" || refused["error"] != "access_denied" {
			t.Fatalf("without the playground: token %v, refusal %v; want access_denied", token != "", refused)
		}
	})
	t.Run("on", func(t *testing.T) {
		srv := startServer(t, config(func(c *authz.Config) { c.Playground = true }))
		token, refused := login(t, srv)
		if token == "" {
			t.Fatalf("playground login refused: %v", refused)
		}
		claims, err := contract.Open(token, srv.openKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(claims.AMR) != 1 || claims.AMR[0] != contract.AMRPlayground || claims.PhoneNumber != number || claims.NetworkAuthenticated() {
			t.Fatalf("amr %v phone %q: want [playground], %s, not network-authenticated", claims.AMR, claims.PhoneNumber, number)
		}
		strict := startResourceServer(t, srv, false)
		status, body := verify(t, strict, "v2", token, number)
		if status != http.StatusForbidden || body["code"] != "NUMBER_VERIFICATION.USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK" {
			t.Errorf("v2: %d %v, want 403 USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK", status, body)
		}
		status, body = verify(t, strict, "v0", token, number)
		if status != http.StatusForbidden || body["code"] != float64(52) {
			t.Errorf("v0: %d %v, want 403 code 52", status, body)
		}
		allowing := startResourceServer(t, srv, true)
		if status, body := verify(t, allowing, "v2", token, number); status != http.StatusOK || body["devicePhoneNumberVerified"] != true {
			t.Errorf("with non-network authentication allowed: %d %v", status, body)
		}
	})
	t.Run("on, device on the network without a hint", func(t *testing.T) {
		srv := startServer(t, config(func(c *authz.Config) { c.Playground = true }))
		dev := srv.newDevice()
		res := srv.login(t, srv.client(store.ClientSpec{}), dev, "ES256")
		if len(res.claims.AMR) != 1 || res.claims.AMR[0] != contract.AMRNetwork {
			t.Errorf("amr %v, want [nba]", res.claims.AMR)
		}
	})
}

// CAMARA ICM at /authorize: acr_values is ignored, an ipport: hint
// accepted, more than one purpose refused with invalid_scope.
func TestAuthorizeICMRules(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	dev := srv.newDevice()
	conf, _ := srv.oauthConfig(t, sp)
	for _, extra := range [][]oauth2.AuthCodeOption{
		{oauth2.SetAuthURLParam("acr_values", "urn:camara:loa:3")},
		{oauth2.SetAuthURLParam("login_hint", "ipport:"+dev.addr.String())},
	} {
		q := dev.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier(), extra...), nil)
		if q.Get("code") == "" {
			t.Errorf("no code: %v", q)
		}
	}
	twoPurposes := *conf
	twoPurposes.Scopes = []string{"openid", contract.Purpose + "#" + contract.ScopeVerify, "dpv:Marketing#" + contract.ScopeVerify}
	q := dev.authorize(t, authorizeURL(&twoPurposes, oauth2.GenerateVerifier()), nil)
	if q.Get("error") != "invalid_scope" || q.Get("code") != "" {
		t.Errorf("two purposes: %v, want error=invalid_scope", q)
	}
}
