package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/numverify/numverify/sim"
)

// spJWKSCommand prints the public JWKS of an SP's private_key_jwt key, to
// register with `numverify client create --jwks-file`.
func spJWKSCommand() command {
	return command{name: "sp jwks", summary: "print the JWKS (public key set) of an SP's P-256 private key, for client create --jwks-file",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			keyFile := fs.String("key", "", "PEM P-256 private key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sp.pem) (required)")
			return func(_ context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *keyFile == "" {
					return fmt.Errorf("--key is required: %w", errUsage)
				}
				key, err := sim.ReadClientKey(*keyFile)
				if err != nil {
					return err
				}
				jwks, err := key.JWKS()
				if err != nil {
					return err
				}
				_, err = fmt.Println(string(jwks))
				return err
			}
		}}
}

// spAssertCommand signs the JWTs an SP backend sends by hand (curl): a
// private_key_jwt client assertion, or with --operator-token the JWT-bearer
// grant's assertion.
func spAssertCommand() command {
	return command{name: "sp assert", summary: "sign an SP's JWT for curl: a private_key_jwt client assertion, or with --operator-token a JWT-bearer grant assertion",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			keyFile := fs.String("key", "", "PEM P-256 private key of the client (required)")
			clientID := fs.String("client-id", "", "the client's id: iss (and sub of a client assertion) (required)")
			issuer := fs.String("issuer", "http://localhost:9090", "the authorization server's issuer: aud")
			operatorToken := fs.String("operator-token", "", "sign a JWT-bearer grant assertion with sub operatortoken:<this token> (with or without the prefix) instead of a client assertion")
			scope := fs.String("scope", sim.OperatorTokenScope, "with --operator-token: the assertion's scope claim")
			return func(_ context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *keyFile == "" || *clientID == "" {
					return fmt.Errorf("--key and --client-id are required: %w", errUsage)
				}
				key, err := sim.ReadClientKey(*keyFile)
				if err != nil {
					return err
				}
				subject, extra := "", map[string]any(nil)
				if *operatorToken != "" {
					token := strings.TrimPrefix(*operatorToken, "operatortoken:")
					if token == "" || *scope == "" {
						return errors.New("--operator-token and --scope must not be empty")
					}
					subject, extra = "operatortoken:"+token, map[string]any{"scope": *scope}
				}
				jwt, err := key.Assertion(*clientID, *issuer, subject, extra)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(os.Stdout, jwt)
				return err
			}
		}}
}
