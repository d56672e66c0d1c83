package authz_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/keystore"
)

// Keys by job: each client's ID tokens are signed with the algorithm of its
// registration, verified by go-oidc against the published JWKS, while every
// access token is signed with ES256; both algorithms are in discovery and
// the JWKS, and a rotation of every key keeps both kinds of client working.
func TestIDTokenAlgorithmPerClient(t *testing.T) {
	srv := startServer(t)
	clients := map[string]testClient{
		"ES256": srv.client(store.ClientSpec{IDTokenSignedResponseAlg: "ES256"}),
		"RS256": srv.client(store.ClientSpec{IDTokenSignedResponseAlg: "RS256"}),
	}

	var discovery struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	resp, err := http.Get(srv.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	err = jsonDecode(resp, &discovery)
	resp.Body.Close()
	if err != nil || !slices.Contains(discovery.Algs, "ES256") || !slices.Contains(discovery.Algs, "RS256") {
		t.Fatalf("discovery id_token_signing_alg_values_supported = %v (%v), want ES256 and RS256", discovery.Algs, err)
	}
	published := map[string]bool{}
	for _, k := range fetchJWKS(t, srv.issuer).Keys {
		published[k.Algorithm] = true
	}
	if !published["ES256"] || !published["RS256"] {
		t.Fatalf("JWKS publishes algorithms %v, want ES256 and RS256", published)
	}

	loginAll := func(t *testing.T, phase string) map[string]string {
		kids := map[string]string{}
		for alg, c := range clients {
			t.Run(phase+"/"+alg, func(t *testing.T) {
				// srv.login verifies the ID token with go-oidc, accepting only alg.
				dev := srv.newDevice()
				res := srv.login(t, c, dev, alg)
				raw, _ := res.token.Extra("id_token").(string)
				header := jwsHeader(t, raw)
				if header.Algorithm != alg {
					t.Errorf("ID token alg %s, want %s", header.Algorithm, alg)
				}
				kids[alg] = header.KeyID
				if got := accessTokenSigningAlgorithm(t, srv, res.token.AccessToken); got != "ES256" {
					t.Errorf("access token of an %s client signed with %s, want ES256", alg, got)
				}
				if _, err := contract.Open(res.token.AccessToken, srv.openKey); err != nil {
					t.Errorf("access token does not open: %v", err)
				}
				// A later request naming this ID token as id_token_hint is read
				// back with the published key of its algorithm.
				conf, _ := srv.oauthConfig(t, c)
				q := dev.authorize(t, authorizeURL(conf, oauth2.GenerateVerifier(),
					oauth2.SetAuthURLParam("id_token_hint", raw)), nil)
				if q.Get("code") == "" {
					t.Errorf("id_token_hint of an %s client: %s (%s), want a code", alg, q.Get("error"), q.Get("error_description"))
				}
			})
		}
		return kids
	}
	before := loginAll(t, "before rotation")

	// `numverify keys rotate` (every algorithm) from another process; the
	// server's key cache is refreshed, the SP's verifier refetches the JWKS on
	// the unknown kid.
	rotator, err := keystore.New(srv.db.Pool, srv.secretsKey)
	if err != nil {
		t.Fatal(err)
	}
	newKids, err := rotator.RotateAll(context.Background(), 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.keys.(*keystore.Store).Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := loginAll(t, "after rotation")
	for alg, kid := range after {
		if kid != newKids[jose.SignatureAlgorithm(alg)] || kid == before[alg] {
			t.Errorf("%s ID token after the rotation signed by %s, want the new key %s", alg, kid, newKids[jose.SignatureAlgorithm(alg)])
		}
	}
}

// jwsHeader is the protected header of a compact JWS.
func jwsHeader(t *testing.T, raw string) jose.Header {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	return tok.Headers[0]
}

// accessTokenSigningAlgorithm decrypts a nested access token with the
// resource server's key and returns the alg of the JWS inside.
func accessTokenSigningAlgorithm(t *testing.T, srv *testServer, token string) string {
	t.Helper()
	jwe, err := jose.ParseEncrypted(token,
		[]jose.KeyAlgorithm{contract.NestedKeyAlgorithm}, []jose.ContentEncryption{contract.ContentEncryption})
	if err != nil {
		t.Fatalf("access token is not a nested JWT: %v", err)
	}
	enc, err := srv.keys.EncryptionKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inner, err := jwe.Decrypt(enc.Key)
	if err != nil {
		t.Fatalf("decrypt access token: %v", err)
	}
	jws, err := jose.ParseSigned(string(inner), []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatalf("access token holds no JWS: %v", err)
	}
	return jws.Signatures[0].Protected.Algorithm
}
