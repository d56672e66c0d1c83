package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/keystore"
)

// secretsKeyFlag is NUMVERIFY_SECRETS_KEY: the authorization server's secret,
// from which the key sealing the signing keys at rest and the client-secret
// HMAC key are derived. Resource servers never get it.
type secretsKeyFlag struct{ value string }

func (s *secretsKeyFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&s.value, "secrets-key", "",
		"the authorization server's secret (required): "+keystore.SecretsKeyHelp+"; the same on every authz server, never on a resource server")
}

// registerResourceSecretsKey is NUMVERIFY_RESOURCE_SECRETS_KEY: the secret
// sealing the resource server's decryption keys at rest, held by the
// resource servers and the authorization server (which makes those keys).
func registerResourceSecretsKey(fs *flag.FlagSet, value *string) {
	fs.StringVar(value, "resource-secrets-key", "",
		"the resource server's secret: "+keystore.SecretsKeyHelp+"; required by `serve resource` (jwt formats), the same on the authz servers; "+
			"where unset beside --secrets-key, derived from it (`numverify keys resource-secrets-key` prints that value)")
}

// resourceSecretsKey decodes --resource-secrets-key; when it is unset and
// the process holds the secrets key (secretsKey not nil), it is derived from
// that. It must differ from the secrets key: a resource server holding the
// secrets key could read the signing keys.
func resourceSecretsKey(value string, secretsKey []byte) ([]byte, error) {
	if value == "" {
		if secretsKey == nil {
			return nil, fmt.Errorf("--resource-secrets-key (NUMVERIFY_RESOURCE_SECRETS_KEY) is required: %s; "+
				"the authorization servers need the same value (`numverify keys resource-secrets-key` prints the one they derive when given none)",
				keystore.SecretsKeyHelp)
		}
		return keystore.DeriveResourceSecretsKey(secretsKey), nil
	}
	k, err := keystore.ParseSecretsKey(value)
	if err != nil {
		return nil, fmt.Errorf("--resource-secrets-key: %w", err)
	}
	if secretsKey != nil && bytes.Equal(k, secretsKey) {
		return nil, errors.New("--resource-secrets-key must differ from --secrets-key: resource servers hold it, and must not be able to read the signing keys")
	}
	return k, nil
}

// keysResourceSecretsKeyCommand is `numverify keys resource-secrets-key`.
type keysResourceSecretsKeyCommand struct {
	secrets secretsKeyFlag
}

func (c *keysResourceSecretsKeyCommand) register(fs *flag.FlagSet) { c.secrets.register(fs) }

func (c *keysResourceSecretsKeyCommand) Run(_ context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	key, err := c.secrets.key()
	if err != nil {
		return err
	}
	fmt.Println(base64.StdEncoding.EncodeToString(keystore.DeriveResourceSecretsKey(key)))
	return nil
}

// key decodes the flag, saying how to make one when it is missing or wrong.
func (s *secretsKeyFlag) key() ([]byte, error) {
	if s.value == "" {
		return nil, fmt.Errorf("--secrets-key (NUMVERIFY_SECRETS_KEY) is required: %s", keystore.SecretsKeyHelp)
	}
	k, err := keystore.ParseSecretsKey(s.value)
	if err != nil {
		return nil, fmt.Errorf("--secrets-key: %w", err)
	}
	return k, nil
}

// newClientStore is the authorization server's store with the client-secret
// hasher derived from the secrets key: the one place it is derived (`serve
// authz`, whose provider compares with the store's hasher, `client create`,
// the demo).
func newClientStore(pool *pgxpool.Pool, secretsKey []byte, opts ...store.Option) (*store.Store, error) {
	hasher, err := store.NewSecretHasher(keystore.DeriveKey(secretsKey, keystore.LabelClientSecretHMAC))
	if err != nil {
		return nil, err
	}
	return store.New(pool, hasher, opts...), nil
}

// keysRotateCommand is `numverify keys rotate`.
type keysRotateCommand struct {
	db      databaseFlags
	secrets secretsKeyFlag
	alg     string
	ahead   time.Duration
	grace   time.Duration
}

func (c *keysRotateCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	c.secrets.register(fs)
	fs.StringVar(&c.alg, "alg", "all", "algorithm of the key to rotate: ES256, RS256 or all (one new key of each; the server keeps an active signing key of each)")
	fs.DurationVar(&c.ahead, "publish-ahead", time.Minute,
		"how long the new key is in the JWKS before it signs (at least the verifiers' JWKS cache time)")
	fs.DurationVar(&c.grace, "grace", 10*time.Minute,
		"how long the old keys stay published after the new one starts signing (at least the longest token lifetime)")
}

func (c *keysRotateCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	var problems []error
	key, err := c.secrets.key()
	if err != nil {
		problems = append(problems, err)
	}
	if c.alg != "all" && !slices.Contains(contract.SigningAlgorithms, jose.SignatureAlgorithm(c.alg)) {
		problems = append(problems, fmt.Errorf("--alg %q: want ES256, RS256 or all", c.alg))
	}
	if c.ahead < 0 || c.grace < 0 {
		problems = append(problems, errors.New("--publish-ahead and --grace must not be negative"))
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	pool, err := c.db.open(ctx, "keys", true)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Signing keys only: they are sealed with the secrets key alone.
	keys, err := keystore.Open(pool, keystore.Secrets{Authz: key})
	if err != nil {
		return err
	}
	// Checks the secrets key against the stored keys before adding one
	// that the servers could not read.
	if err := keys.Refresh(ctx); err != nil {
		return err
	}
	kids, err := c.rotate(ctx, keys)
	if err != nil {
		return err
	}
	for _, a := range contract.SigningAlgorithms {
		if kid, ok := kids[a]; ok {
			fmt.Printf("new %s signing key %s: in the JWKS now, signing from %s; previous %s keys retire at %s\n",
				a, kid, time.Now().Add(c.ahead).Format(time.RFC3339), a, time.Now().Add(c.ahead+c.grace).Format(time.RFC3339))
		}
	}
	return nil
}

// rotate adds the new key of --alg, or one of each algorithm.
func (c *keysRotateCommand) rotate(ctx context.Context, keys *keystore.Store) (map[jose.SignatureAlgorithm]string, error) {
	if c.alg == "all" {
		return keys.RotateAll(ctx, c.ahead, c.grace)
	}
	alg := jose.SignatureAlgorithm(c.alg)
	kid, err := keys.Rotate(ctx, alg, c.ahead, c.grace)
	return map[jose.SignatureAlgorithm]string{alg: kid}, err
}
