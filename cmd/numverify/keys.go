package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/keystore"
)

// secretsKeyFlag is NUMVERIFY_SECRETS_KEY: the one secret from which the key
// encrypting private keys at rest and the client-secret HMAC key are derived.
type secretsKeyFlag struct{ value string }

func addSecretsKeyFlag(fs *flag.FlagSet) *secretsKeyFlag {
	s := &secretsKeyFlag{}
	fs.StringVar(&s.value, "secrets-key", "",
		"the server secret (required): "+keystore.SecretsKeyHelp+"; the same on every authz and resource server")
	return s
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
// hasher derived from the secrets key, as the provider derives it.
func newClientStore(pool *pgxpool.Pool, secretsKey []byte) (*store.Store, error) {
	hasher, err := store.NewSecretHasher(keystore.DeriveKey(secretsKey, keystore.LabelClientSecretHMAC))
	if err != nil {
		return nil, err
	}
	return store.New(pool, hasher), nil
}

func keysRotateCommand() command {
	return command{name: "keys rotate", summary: "add a new signing key: published now, signing after --publish-ahead; old keys retire after --grace",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			secrets := addSecretsKeyFlag(fs)
			alg := fs.String("alg", string(jose.ES256), "algorithm of the new signing key: ES256 or RS256")
			ahead := fs.Duration("publish-ahead", time.Minute,
				"how long the new key is in the JWKS before it signs (at least the verifiers' JWKS cache time)")
			grace := fs.Duration("grace", 10*time.Minute,
				"how long the old keys stay published after the new one starts signing (at least the longest token lifetime)")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				var problems []error
				key, err := secrets.key()
				if err != nil {
					problems = append(problems, err)
				}
				if *alg != string(jose.ES256) && *alg != string(jose.RS256) {
					problems = append(problems, fmt.Errorf("--alg %q: want ES256 or RS256", *alg))
				}
				if *ahead < 0 || *grace < 0 {
					problems = append(problems, errors.New("--publish-ahead and --grace must not be negative"))
				}
				if err := errors.Join(problems...); err != nil {
					return err
				}
				pool, err := db.open(ctx, "keys", true)
				if err != nil {
					return err
				}
				defer pool.Close()
				keys, err := keystore.New(pool, key)
				if err != nil {
					return err
				}
				// Checks the secrets key against the stored keys before adding one
				// that the servers could not read.
				if err := keys.Refresh(ctx); err != nil {
					return err
				}
				kid, err := keys.Rotate(ctx, jose.SignatureAlgorithm(*alg), *ahead, *grace)
				if err != nil {
					return err
				}
				fmt.Printf("new %s signing key %s: in the JWKS now, signing from %s; previous keys retire at %s\n",
					*alg, kid, time.Now().Add(*ahead).Format(time.RFC3339), time.Now().Add(*ahead+*grace).Format(time.RFC3339))
				return nil
			}
		}}
}
