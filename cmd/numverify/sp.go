package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/numverify/numverify/sim"
)

// spCommand is `numverify sp`: it serves the reference service-provider
// backend, a page with a phone-number form that runs the whole verification.
type spCommand struct {
	addr         string
	issuer       string
	clientID     string
	clientSecret string
	clientKey    string
	clientFile   string
	redirectURL  string
	apiURL       string
	scope        string
	logs         logFlags
	shutdown     time.Duration
}

func (c *spCommand) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "sp-addr", ":8080", "listen address of the SP page")
	fs.StringVar(&c.issuer, "sp-issuer", "http://localhost:9090", "the operator's OpenID Connect issuer (discovery)")
	fs.StringVar(&c.clientID, "sp-client-id", "", "the SP's client id (numverify client create) (required unless --sp-client-file)")
	fs.StringVar(&c.clientSecret, "sp-client-secret", "", "the SP's client secret, sent with client_secret_basic (required unless --sp-client-file)")
	fs.StringVar(&c.clientKey, "sp-client-key", "", "PEM P-256 private key of the SP's client: authenticate with private_key_jwt (with --sp-client-id, no secret) and redeem operator tokens handed to POST /wifi by JWT-bearer or CIBA; numverify sp jwks prints the JWKS to register")
	fs.StringVar(&c.clientFile, "sp-client-file", "", "read client_id and client_secret from this JSON file, as numverify client create --output FILE writes it (instead of --sp-client-id and --sp-client-secret)")
	fs.StringVar(&c.redirectURL, "sp-redirect-url", "http://localhost:8080/callback", "the SP's registered redirect URI; its path is served as the callback")
	fs.StringVar(&c.apiURL, "sp-api-url", "http://localhost:9091/number-verification/v2", "the Number Verification API base URL")
	fs.StringVar(&c.scope, "sp-scope", sim.DefaultScope, "space-separated scopes to ask for")
	c.logs.register(fs)
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 10*time.Second, "on SIGTERM, time allowed for in-flight requests to finish")
}

func (c *spCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	rp, err := c.relyingParty()
	if err != nil {
		return err
	}
	logger := c.logs.logger()
	sp, err := sim.NewSP(rp, logger)
	if err != nil {
		return err
	}
	web := httpFlags{readHeaderTimeout: 5 * time.Second, readTimeout: 10 * time.Second,
		writeTimeout: 30 * time.Second, idleTimeout: 60 * time.Second, shutdownTimeout: c.shutdown}
	return newServerSet(logger, web, []*server{{name: "sp", addr: c.addr, handler: sp.Handler()}}).run(ctx, nil)
}

// relyingParty is the SP's client: its credentials from the flags or
// --sp-client-file.
func (c *spCommand) relyingParty() (sim.RPConfig, error) {
	rp := sim.RPConfig{Issuer: c.issuer, ClientID: c.clientID, ClientSecret: c.clientSecret,
		RedirectURL: c.redirectURL, Scopes: strings.Fields(c.scope), APIURL: c.apiURL}
	if c.clientFile != "" {
		if c.clientID != "" || c.clientSecret != "" {
			return rp, errors.New("--sp-client-file and --sp-client-id/--sp-client-secret exclude each other")
		}
		creds, err := sim.ReadClientFile(c.clientFile)
		if err != nil {
			return rp, fmt.Errorf("--sp-client-file: %w", err)
		}
		rp.ClientID, rp.ClientSecret = creds.ClientID, creds.ClientSecret
	}
	if c.clientKey != "" {
		if c.clientFile != "" || rp.ClientSecret != "" {
			return rp, errors.New("--sp-client-key authenticates the client with private_key_jwt: give --sp-client-id, not a secret")
		}
		key, err := sim.ReadClientKey(c.clientKey)
		if err != nil {
			return rp, fmt.Errorf("--sp-client-key: %w", err)
		}
		rp.ClientKey = key
	}
	if rp.ClientID == "" || (rp.ClientSecret == "" && rp.ClientKey == nil) {
		return rp, errors.New("--sp-client-id and --sp-client-secret (or --sp-client-key), or --sp-client-file, are required (register a client with `numverify client create`)")
	}
	return rp, nil
}
