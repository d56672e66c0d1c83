package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/resource"
)

// TestServeResourceHoldsOnlyItsKey: `serve resource` has no --secrets-key
// at all, starts with --resource-secrets-key alone, gets its decryption key
// and no signing private key; without a resource secrets key it refuses to
// start, saying what is missing.
func TestServeResourceHoldsOnlyItsKey(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	secretsKey, resourceKey := randomHex(32), randomHex(32)
	authzKeys, err := keystore.Open(db.Pool, keystore.Secrets{Authz: mustSecretsKey(t, secretsKey), Resource: mustSecretsKey(t, resourceKey)})
	if err != nil {
		t.Fatal(err)
	}
	if err := authzKeys.EnsureKeys(ctx); err != nil {
		t.Fatal(err)
	}
	enc, _ := authzKeys.EncryptionKey(ctx)
	newDeps := func() serveDeps {
		return serveDeps{Pool: db.Pool, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()}
	}

	newServe := func(t *testing.T, env map[string]string, args ...string) *serveCommand {
		t.Helper()
		c := newServeCommand("serve resource", nil, &resourceFlags{}, nil)
		fs := flag.NewFlagSet("serve resource", flag.ContinueOnError)
		c.register(fs)
		if fs.Lookup("secrets-key") != nil {
			t.Fatal("serve resource has a --secrets-key flag: it must never be given the key sealing the signing keys")
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := applyEnv(fs, func(name string) string { return env[name] }); err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("its own key", func(t *testing.T) {
		c := newServe(t, map[string]string{"NUMVERIFY_SECRETS_KEY": secretsKey, "NUMVERIFY_RESOURCE_SECRETS_KEY": resourceKey})
		key := c.shared.keys(false)
		keys, err := resourceKeyStore(newDeps(), key.resource, key.resourceErr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := keys.EncryptionKey(ctx); err != nil || got.KeyID != enc.KeyID {
			t.Errorf("EncryptionKey = %s, %v; want %s", got.KeyID, err, enc.KeyID)
		}
		if _, err := keys.SigningKey(ctx, jose.ES256); !errors.Is(err, keystore.ErrNoKey) {
			t.Errorf("the resource server's store gave a signing key (%v)", err)
		}
		servers, err := c.build(ctx, newDeps())
		if err != nil {
			t.Fatalf("serve resource with NUMVERIFY_RESOURCE_SECRETS_KEY alone: %v", err)
		}
		closeServers(servers)
	})
	t.Run("no key", func(t *testing.T) {
		c := newServe(t, map[string]string{"NUMVERIFY_SECRETS_KEY": secretsKey})
		if _, err := c.build(ctx, newDeps()); err == nil || !strings.Contains(err.Error(), "NUMVERIFY_RESOURCE_SECRETS_KEY") {
			t.Fatalf("serve resource without a resource secrets key: %v, want it named", err)
		}
	})
	t.Run("opaque needs no key", func(t *testing.T) {
		c := newServe(t, nil, "--resource-token-format", "opaque", "--resource-introspection-client-id", "rs")
		servers, err := c.build(ctx, newDeps())
		if err != nil {
			t.Fatalf("serve resource --resource-token-format opaque: %v", err)
		}
		closeServers(servers)
	})
}

// TestResourceTokenFormatFollowsAuthz: served together, the resource server
// accepts the format the authorization server issues; apart, what it is told.
func TestResourceTokenFormatFollowsAuthz(t *testing.T) {
	// format passes authz's name on as the resource server's.
	for a, r := range map[string]resource.TokenFormat{authz.FormatJWTDirect: resource.FormatJWTDirect,
		authz.FormatJWT: resource.FormatJWT, authz.FormatOpaque: resource.FormatOpaque} {
		if a != string(r) {
			t.Errorf("authz names a format %q, the resource server %q", a, r)
		}
	}
	for _, tc := range []struct {
		together bool
		args     []string
		want     resource.TokenFormat
	}{
		{true, nil, resource.FormatJWTDirect},
		{true, []string{"--access-token-format", "jwt"}, resource.FormatJWT},
		{true, []string{"--access-token-format", "jwt-dir"}, resource.FormatJWTDirect},
		{true, []string{"--access-token-format", "opaque"}, resource.FormatOpaque},
		{false, nil, resource.FormatJWTDirect},
		{false, []string{"--resource-token-format", "jwt"}, resource.FormatJWT},
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		c := newServeCommand("serve resource", nil, &resourceFlags{}, nil)
		if tc.together {
			c = newServeCommand("serve", &authzFlags{}, &resourceFlags{}, nil)
		}
		c.register(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := c.resource.format(c.authzFormat()); got != tc.want {
			t.Errorf("together %v, %v: format %q, want %q", tc.together, tc.args, got, tc.want)
		}
	}
}

func TestResourceSecretsKey(t *testing.T) {
	secrets := mustSecretsKey(t, randomHex(32))
	if got, err := resourceSecretsKey("", secrets); err != nil || string(got) != string(keystore.DeriveResourceSecretsKey(secrets)) {
		t.Errorf("unset beside the secrets key: %x, %v; want the derived key", got, err)
	}
	if _, err := resourceSecretsKey("", nil); err == nil {
		t.Errorf("unset without the secrets key: no error")
	}
	if _, err := resourceSecretsKey(randomHex(32)[:10], secrets); err == nil {
		t.Errorf("a short key: no error")
	}
	same := randomHex(32)
	if _, err := resourceSecretsKey(same, mustSecretsKey(t, same)); err == nil {
		t.Errorf("the resource secrets key equal to the secrets key was accepted")
	}
}

func mustSecretsKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := keystore.ParseSecretsKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
