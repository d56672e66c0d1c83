package authz_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
)

// loginResult is what the SP holds after a silent login.
type loginResult struct {
	idToken *oidc.IDToken
	token   *oauth2.Token
	claims  struct {
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
		Nonce    string   `json:"nonce"`
	}
}

// login runs the whole flow as an SP and a device would: discovery, PKCE
// S256, the device's request from its own address, the exchange, and the ID
// token verified against the published keys.
func (s *testServer) login(t testing.TB, c testClient, d device, alg string) loginResult {
	t.Helper()
	ctx := context.Background()
	conf, provider := s.oauthConfig(t, c)
	verifier, state, nonce := oauth2.GenerateVerifier(), randomString(), randomString()
	q := d.authorize(t, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), nil)
	if q.Get("error") != "" {
		t.Fatalf("authorize: error=%s (%s)", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("authorize: redirect query %v", q)
	}
	token, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := token.Extra("id_token").(string)
	idToken, err := provider.Verifier(&oidc.Config{ClientID: c.id, SupportedSigningAlgs: []string{alg}}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	res := loginResult{idToken: idToken, token: token}
	if err := idToken.Claims(&res.claims); err != nil {
		t.Fatal(err)
	}
	if res.claims.Nonce != nonce || idToken.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", res.claims.Nonce, nonce)
	}
	return res
}

func TestSilentLoginEndToEnd(t *testing.T) {
	srv := startServer(t)
	sp := srv.client(store.ClientSpec{})
	sameSector := srv.client(store.ClientSpec{RedirectURIs: []string{"https://sp.example/other-callback"}})
	otherSector := srv.client(store.ClientSpec{RedirectURIs: []string{"https://other.example/callback"}})
	dev := srv.newDevice()

	first := srv.login(t, sp, dev, "ES256")
	sub := first.idToken.Subject
	digits := strings.TrimPrefix(dev.msisdn, "+")
	if sub == "" || strings.Contains(sub, digits) || strings.Contains(sub, digits[len(digits)-6:]) {
		t.Errorf("sub %q reveals the MSISDN %s", sub, dev.msisdn)
	}
	if !slices.Equal(first.claims.AMR, []string{contract.AMRNetwork}) {
		t.Errorf("amr = %v, want [nba]", first.claims.AMR)
	}
	if at := time.Unix(first.claims.AuthTime, 0); time.Since(at) > time.Minute || time.Until(at) > 5*time.Second {
		t.Errorf("auth_time = %v", at)
	}
	if first.idToken.Issuer != srv.issuer {
		t.Errorf("iss = %q", first.idToken.Issuer)
	}

	// The access token: sealed for the resource server, which alone reads
	// the number.
	claims, err := contract.Open(first.token.AccessToken, srv.openKey)
	if err != nil {
		t.Fatalf("open access token: %v", err)
	}
	if claims.PhoneNumber != dev.msisdn || claims.Subject != sub || claims.ClientID != sp.id ||
		claims.Issuer != srv.issuer || !slices.Equal([]string(claims.Audience), []string{contract.DefaultAudience}) ||
		!claims.NetworkAuthenticated() || claims.ID == "" {
		t.Errorf("access token claims = %+v", claims)
	}
	if _, perms, _ := contract.ParseScope(claims.Scope); !perms.Verify || perms.Share {
		t.Errorf("scope = %q, want verify only", claims.Scope)
	}
	if life := claims.ExpiresAt().Sub(claims.IssuedAt.Time()); life != 300*time.Second {
		t.Errorf("access token lifetime %s, want 300s", life)
	}
	if strings.Contains(first.token.AccessToken, digits) {
		t.Error("the access token shows the number in clear")
	}
	if rt := first.token.RefreshToken; rt != "" {
		t.Error("a refresh token was issued for a Number Verification scope")
	}

	// The same subscriber again with the same client: the same subject.
	if again := srv.login(t, sp, dev, "ES256"); again.idToken.Subject != sub {
		t.Errorf("second login: sub %q, want %q", again.idToken.Subject, sub)
	}
	// Another client of the same sector (redirect host): the same subject.
	if same := srv.login(t, sameSector, dev, "ES256"); same.idToken.Subject != sub {
		t.Errorf("same sector: sub %q, want %q", same.idToken.Subject, sub)
	}
	// A client of another sector: a different subject.
	if other := srv.login(t, otherSector, dev, "ES256"); other.idToken.Subject == sub {
		t.Error("two sectors see the same subject")
	}
	// Another subscriber with the same client: a different subject.
	if someoneElse := srv.login(t, sp, srv.newDevice(), "ES256"); someoneElse.idToken.Subject == sub {
		t.Error("two subscribers share a subject")
	}
}
