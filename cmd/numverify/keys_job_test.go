package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// TestKeysByJob, through the command line: a database whose only signing
// key is RS256 (what --id-token-alg's default made) gets an ES256 key when
// `serve` starts, still given the obsolete --id-token-alg; `client create`
// registers ES256 ID tokens unless told RS256; each client's ID token is
// verified by go-oidc accepting only its algorithm; `keys rotate` rotates
// both algorithms and both clients keep logging in.
func TestKeysByJob(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	secretsKey := randomHex(32)
	legacy, err := keystore.Open(db.Pool, keystore.Secrets{Authz: mustSecretsKey(t, secretsKey)})
	if err != nil {
		t.Fatal(err)
	}
	oldKid, err := legacy.Rotate(ctx, jose.RS256, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	ports := testbed.FreePorts(t, 3)
	issuer, api := "http://127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1]+"/number-verification/v2"
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_SECRETS_KEY": secretsKey, "NUMVERIFY_NETWORK_ADMIN_TOKEN": testAdminToken,
		"NUMVERIFY_LOG_LEVEL": "warn"}
	run := func(args ...string) (string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		code := execute(context.Background(), commands(), args, &out, &errOut, func(k string) string { return env[k] })
		return out.String() + errOut.String(), code
	}
	serveInProcess(t, env, api[:strings.Index(api, "/number")]+"/readyz", "serve", "--authz-addr", "127.0.0.1:"+ports[0],
		"--resource-addr", "127.0.0.1:"+ports[1], "--network-addr", "127.0.0.1:"+ports[2], "--issuer", issuer, "--metrics-addr", "",
		"--id-token-alg", "RS256")
	msisdn, addr := "+33612349877", testbed.NthAddr(testbed.DevicePrefix(), 11)
	if out, code := run("network", "attach", "--msisdn", msisdn, "--ip", addr.String()); code != 0 {
		t.Fatalf("network attach: %s", out)
	}
	device := sim.NewDevice(addr, msisdn, 2)
	defer device.Close()

	type registered struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
		Alg    string `json:"id_token_signed_response_alg"`
	}
	create := func(extra ...string) registered {
		t.Helper()
		file := filepath.Join(t.TempDir(), "client.json")
		args := append([]string{"client", "create", "--output", file, "--name", "SP", "--redirect-uri", "http://localhost:8080/callback",
			"--scope", "openid", "--scope", "number-verification:verify"}, extra...)
		out, code := run(args...)
		b, _ := os.ReadFile(file)
		var c registered
		if code != 0 || json.Unmarshal(b, &c) != nil {
			t.Fatalf("client create %v: exit %d: %s", extra, code, out)
		}
		return c
	}
	clients := map[string]registered{"ES256": create(), "RS256": create("--id-token-alg", "RS256")}
	for alg, c := range clients {
		if c.Alg != alg {
			t.Errorf("client created for %s registered id_token_signed_response_alg %q", alg, c.Alg)
		}
	}
	if out, code := run("client", "create", "--name", "SP", "--redirect-uri", "http://localhost:8080/callback",
		"--scope", "openid", "--id-token-alg", "HS256"); code == 0 {
		t.Errorf("client create --id-token-alg HS256 succeeded: %s", out)
	}

	login := func(alg string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := clients[alg]
		rp, err := sim.NewRelyingParty(ctx, sim.RPConfig{Issuer: issuer, ClientID: c.ID, ClientSecret: c.Secret,
			RedirectURL: "http://localhost:8080/callback", Scopes: strings.Fields(sim.DefaultScope), APIURL: api,
			IDTokenSigningAlg: alg})
		if err != nil {
			t.Fatal(err)
		}
		req := rp.NewAuthRequest("")
		out, err := device.Authorize(ctx, req.URL)
		if err != nil || out.Code == "" {
			t.Fatalf("authorize: %v %+v", err, out)
		}
		tokens, err := rp.Exchange(ctx, out.Code, req) // go-oidc verifies the ID token, accepting only alg
		if err != nil {
			t.Fatalf("%s client: %v", alg, err)
		}
		tok, err := jwt.ParseSigned(tokens.RawIDToken, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
		if err != nil || tok.Headers[0].Algorithm != alg {
			t.Fatalf("%s client's ID token: %v, alg %v", alg, err, tok)
		}
		return tok.Headers[0].KeyID
	}
	if kid := login("RS256"); kid != oldKid {
		t.Errorf("RS256 ID token signed by %s, want the database's existing key %s", kid, oldKid)
	}
	before := map[jose.SignatureAlgorithm]string{jose.RS256: oldKid, jose.ES256: login("ES256")}

	if out, code := run("keys", "rotate", "--publish-ahead", "0"); code != 0 {
		t.Fatalf("keys rotate: exit %d: %s", code, out)
	}
	after, err := keystore.Open(db.Pool, keystore.Secrets{Authz: mustSecretsKey(t, secretsKey)})
	if err != nil {
		t.Fatal(err)
	}
	for alg, kid := range before {
		if k, err := after.SigningKey(ctx, alg); err != nil || k.KeyID == kid {
			t.Errorf("after keys rotate the %s signing key is %s (%v), want a new one", alg, k.KeyID, err)
		}
	}
	for range 2 {
		login("ES256")
		login("RS256")
	}
}
