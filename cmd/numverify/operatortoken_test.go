package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/syncbuf"
)

// `client create --grant` registers the grants a client may use; the
// jwt-bearer grant needs private_key_jwt.
func TestClientCreateGrants(t *testing.T) {
	db := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_SECRETS_KEY": randomHex(32)}
	run := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := execute(context.Background(), commands(), args, &out, &errOut, func(k string) string { return env[k] })
		return out.String() + errOut.String(), code
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"client", "create", "--name", "SP", "--redirect-uri", "https://sp.example/cb",
		"--scope", "openid", "--scope", "number-verification:verify"}
	grants := []string{"authorization_code", store.GrantTypeJWTBearer, store.GrantTypeCIBA}
	args := append(append([]string{}, common...), "--auth-method", "private_key_jwt", "--jwks-file", jwksFile)
	for _, g := range grants {
		args = append(args, "--grant", g)
	}
	file := filepath.Join(t.TempDir(), "client.json")
	out, code := run(append(args, "--output", file)...)
	raw, _ := os.ReadFile(file)
	var created struct {
		GrantTypes []string `json:"grant_types"`
	}
	if code != 0 || json.Unmarshal(raw, &created) != nil || !slices.Equal(created.GrantTypes, grants) {
		t.Fatalf("client create: exit %d, grant_types %v: %s", code, created.GrantTypes, out)
	}
	if out, code := run(append(append([]string{}, common...), "--grant", store.GrantTypeJWTBearer)...); code == 0 || !strings.Contains(out, "private_key_jwt") {
		t.Errorf("jwt-bearer with a client secret: exit %d: %s", code, out)
	}
	if out, code := run(append(append([]string{}, common...), "--grant", "password")...); code == 0 {
		t.Errorf("--grant password: exit 0: %s", out)
	}
}

// `serve --playground` says loudly at start that it is on; without it, nothing.
func TestServePlaygroundWarning(t *testing.T) {
	db := pgtest.New(t)
	secrets, resourceSecrets := randomHex(32), randomHex(32)
	for _, on := range []bool{true, false} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		c := newServeCommand("serve authz", &authzFlags{}, nil, nil)
		c.register(fs)
		args := []string{"--secrets-key", secrets, "--resource-secrets-key", resourceSecrets}
		if on {
			args = append(args, "--playground")
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		var logs syncbuf.Buffer
		deps := serveDeps{Pool: db.Pool, Logger: slog.New(slog.NewTextHandler(&logs, nil)), DatabaseURL: db.URL, Registry: prometheus.NewRegistry()}
		servers, err := c.build(context.Background(), deps)
		if err != nil {
			t.Fatal(err)
		}
		closeServers(servers)
		if warned := strings.Contains(logs.String(), "PLAYGROUND MODE IS ON"); warned != on {
			t.Errorf("--playground=%v: warning logged %v: %s", on, warned, logs.String())
		}
	}
}
