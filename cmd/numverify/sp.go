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

// spCommand serves the reference service-provider backend: a page with a
// phone-number form that runs the whole verification.
func spCommand() command {
	return command{name: "sp", summary: "serve a minimal service-provider web page that verifies a number through the operator (the SP reference)",
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			addr := fs.String("sp-addr", ":8080", "listen address of the SP page")
			issuer := fs.String("sp-issuer", "http://localhost:9090", "the operator's OpenID Connect issuer (discovery)")
			clientID := fs.String("sp-client-id", "", "the SP's client id (numverify client create) (required unless --sp-client-file)")
			clientSecret := fs.String("sp-client-secret", "", "the SP's client secret, sent with client_secret_basic (required unless --sp-client-file)")
			clientKey := fs.String("sp-client-key", "", "PEM P-256 private key of the SP's client: authenticate with private_key_jwt (with --sp-client-id, no secret) and redeem operator tokens handed to POST /wifi by JWT-bearer or CIBA; numverify sp jwks prints the JWKS to register")
			clientFile := fs.String("sp-client-file", "", "read client_id and client_secret from this JSON file, as numverify client create --output FILE writes it (instead of --sp-client-id and --sp-client-secret)")
			redirectURL := fs.String("sp-redirect-url", "http://localhost:8080/callback", "the SP's registered redirect URI; its path is served as the callback")
			apiURL := fs.String("sp-api-url", "http://localhost:9091/number-verification/v2", "the Number Verification API base URL")
			scope := fs.String("sp-scope", sim.DefaultScope, "space-separated scopes to ask for")
			logs := addLogFlags(fs)
			shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "on SIGTERM, time allowed for in-flight requests to finish")
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if *clientFile != "" {
					if *clientID != "" || *clientSecret != "" {
						return errors.New("--sp-client-file and --sp-client-id/--sp-client-secret exclude each other")
					}
					creds, err := sim.ReadClientFile(*clientFile)
					if err != nil {
						return fmt.Errorf("--sp-client-file: %w", err)
					}
					*clientID, *clientSecret = creds.ClientID, creds.ClientSecret
				}
				var key *sim.ClientKey
				if *clientKey != "" {
					if *clientFile != "" || *clientSecret != "" {
						return errors.New("--sp-client-key authenticates the client with private_key_jwt: give --sp-client-id, not a secret")
					}
					var err error
					if key, err = sim.ReadClientKey(*clientKey); err != nil {
						return fmt.Errorf("--sp-client-key: %w", err)
					}
				}
				if *clientID == "" || (*clientSecret == "" && key == nil) {
					return errors.New("--sp-client-id and --sp-client-secret (or --sp-client-key), or --sp-client-file, are required (register a client with `numverify client create`)")
				}
				logger := logs.logger()
				sp, err := sim.NewSP(sim.RPConfig{Issuer: *issuer, ClientID: *clientID, ClientSecret: *clientSecret, ClientKey: key,
					RedirectURL: *redirectURL, Scopes: strings.Fields(*scope), APIURL: *apiURL}, logger)
				if err != nil {
					return err
				}
				web := &httpFlags{readHeaderTimeout: 5 * time.Second, readTimeout: 10 * time.Second,
					writeTimeout: 30 * time.Second, idleTimeout: 60 * time.Second, shutdownTimeout: *shutdown}
				return runServers(ctx, logger, web, []*server{{name: "sp", addr: *addr, handler: sp.Handler()}}, nil)
			}
		}}
}
