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

// spJWKSCommand is `numverify sp jwks`: it prints the public JWKS of an
// SP's private_key_jwt key, to register with `numverify client create
// --jwks-file`.
type spJWKSCommand struct {
	keyFile string
}

func (c *spJWKSCommand) register(fs *flag.FlagSet) {
	fs.StringVar(&c.keyFile, "key", "", "PEM P-256 private key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out sp.pem) (required)")
}

func (c *spJWKSCommand) Run(_ context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.keyFile == "" {
		return fmt.Errorf("--key is required: %w", errUsage)
	}
	key, err := sim.ReadClientKey(c.keyFile)
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

// spAssertCommand is `numverify sp assert`: it signs the JWTs an SP backend
// sends by hand (curl): a private_key_jwt client assertion, or with
// --operator-token the JWT-bearer grant's assertion.
type spAssertCommand struct {
	keyFile       string
	clientID      string
	issuer        string
	operatorToken string
	scope         string
}

func (c *spAssertCommand) register(fs *flag.FlagSet) {
	fs.StringVar(&c.keyFile, "key", "", "PEM P-256 private key of the client (required)")
	fs.StringVar(&c.clientID, "client-id", "", "the client's id: iss (and sub of a client assertion) (required)")
	fs.StringVar(&c.issuer, "issuer", "http://localhost:9090", "the authorization server's issuer: aud")
	fs.StringVar(&c.operatorToken, "operator-token", "", "sign a JWT-bearer grant assertion with sub operatortoken:<this token> (with or without the prefix) instead of a client assertion")
	fs.StringVar(&c.scope, "scope", sim.OperatorTokenScope, "with --operator-token: the assertion's scope claim")
}

func (c *spAssertCommand) Run(_ context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.keyFile == "" || c.clientID == "" {
		return fmt.Errorf("--key and --client-id are required: %w", errUsage)
	}
	key, err := sim.ReadClientKey(c.keyFile)
	if err != nil {
		return err
	}
	subject, extra := "", map[string]any(nil)
	if c.operatorToken != "" {
		token := strings.TrimPrefix(c.operatorToken, sim.OperatorTokenPrefix)
		if token == "" || c.scope == "" {
			return errors.New("--operator-token and --scope must not be empty")
		}
		subject, extra = sim.OperatorTokenPrefix+token, map[string]any{"scope": c.scope}
	}
	jwt, err := key.Assertion(c.clientID, c.issuer, subject, extra)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, jwt)
	return err
}
