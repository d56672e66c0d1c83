package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/numverify/numverify/authz/store"
)

// clientJSON is how the client commands print a client.
type clientJSON struct {
	ClientID                string          `json:"client_id"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	Name                    string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	Scope                   string          `json:"scope"` // RFC 7591: space-separated
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	SectorIdentifier        string          `json:"sector_identifier,omitempty"`
	AllowMissingRedirectURI bool            `json:"allow_missing_redirect_uri"`
	CanReadPhoneNumber      bool            `json:"can_read_phone_number"`
	IDTokenAlg              string          `json:"id_token_signed_response_alg"`
	CreatedAt               time.Time       `json:"created_at"`
}

func toClientJSON(c *store.Client, secret string) clientJSON {
	return clientJSON{
		ClientID: c.ID, ClientSecret: secret, Name: c.Name, RedirectURIs: c.RedirectURIs,
		Scope: strings.Join(c.Scopes, " "), GrantTypes: c.GrantTypes, ResponseTypes: c.ResponseTypes,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, JWKS: c.JWKS,
		SectorIdentifier: c.SectorIdentifier, AllowMissingRedirectURI: c.AllowMissingRedirectURI,
		CanReadPhoneNumber: c.CanReadPhoneNumber, IDTokenAlg: c.GetIDTokenSignedResponseAlgorithm(), CreatedAt: c.CreatedAt,
	}
}

// clientCreateCommand is `numverify client create`: it registers a
// service-provider client and prints its credentials.
type clientCreateCommand struct {
	db        databaseFlags
	secrets   secretsKeyFlag
	spec      store.ClientSpec
	redirects stringList
	scopes    stringList
	grants    stringList
	jwksFile  string
	asJSON    bool
	output    string
	ifMissing bool
}

func (c *clientCreateCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	c.secrets.register(fs)
	fs.StringVar(&c.spec.Name, "name", "", "the client's name, shown to operators (required)")
	fs.Var(&c.redirects, "redirect-uri", "a redirect URI (repeatable): https, http on localhost/127.0.0.1, or a private-use scheme")
	fs.Var(&c.scopes, "scope", "a scope the client may request (repeatable), e.g. openid, number-verification:verify")
	fs.StringVar(&c.spec.TokenEndpointAuthMethod, "auth-method", store.AuthMethodClientSecretBasic,
		"token endpoint authentication: client_secret_basic, client_secret_post or private_key_jwt")
	fs.Var(&c.grants, "grant", "a grant the client may use (repeatable; default authorization_code): authorization_code, refresh_token, "+
		store.GrantTypeJWTBearer+" (operator token, private_key_jwt), "+store.GrantTypeCIBA+" (operator token, poll mode)")
	fs.StringVar(&c.jwksFile, "jwks-file", "", "file holding the client's public JWK Set (required for private_key_jwt)")
	fs.StringVar(&c.spec.SectorIdentifier, "sector-identifier", "", "the sector pairwise subjects are computed for (default: the redirect URIs' host)")
	fs.BoolVar(&c.spec.AllowMissingRedirectURI, "allow-missing-redirect-uri", false, "accept authorization requests without redirect_uri (the registered one is used)")
	fs.BoolVar(&c.spec.CanReadPhoneNumber, "can-read-phone-number", false, "a resource-server client: introspection answers show it the phone_number")
	// ES256 here, though a registration naming none gets RS256 (OpenID Connect's default).
	fs.StringVar(&c.spec.IDTokenSignedResponseAlg, "id-token-alg", "ES256",
		"algorithm of the client's ID tokens (id_token_signed_response_alg): ES256, or RS256 for an SP whose library needs it")
	fs.BoolVar(&c.asJSON, "json", false, "print the client as JSON")
	fs.StringVar(&c.output, "output", "", "also write the credentials as JSON to this file (mode 0600), for tools that read them")
	fs.BoolVar(&c.ifMissing, "if-missing", false, "with --output: do nothing when the file already exists (idempotent provisioning)")
}

// Run validates the registration before connecting, stores the client and
// prints it (and writes it to --output).
func (c *clientCreateCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.ifMissing && c.output == "" {
		return fmt.Errorf("--if-missing needs --output: %w", errUsage)
	}
	if c.ifMissing {
		if _, err := os.Stat(c.output); err == nil {
			fmt.Fprintf(os.Stderr, "%s exists: client already provisioned\n", c.output)
			return nil
		}
	}
	key, err := c.secrets.key()
	if err != nil {
		return err
	}
	spec, err := c.clientSpec()
	if err != nil {
		return err
	}
	pool, err := c.db.open(ctx, "client", true)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := newClientStore(pool, key)
	if err != nil {
		return err
	}
	client, secret, err := st.CreateClient(ctx, spec)
	if err != nil {
		return err
	}
	if c.output != "" {
		if err := writeClientFile(c.output, client, secret); err != nil {
			return err
		}
	}
	return printCreatedClient(os.Stdout, client, secret, c.asJSON)
}

// clientSpec is the registration the flags describe, validated.
func (c *clientCreateCommand) clientSpec() (store.ClientSpec, error) {
	spec := c.spec
	spec.RedirectURIs, spec.Scopes = c.redirects, c.scopes
	if len(c.grants) > 0 {
		spec.GrantTypes = c.grants
	}
	if c.jwksFile != "" {
		b, err := os.ReadFile(c.jwksFile)
		if err != nil {
			return spec, fmt.Errorf("--jwks-file: %w", err)
		}
		spec.JWKS = b
	}
	return spec, spec.Validate()
}

// writeClientFile writes the credentials as JSON, readable by the owner only.
func writeClientFile(path string, c *store.Client, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--output: %w", err)
	}
	if err := printJSON(f, toClientJSON(c, secret)); err != nil {
		f.Close()
		return fmt.Errorf("--output: %w", err)
	}
	return f.Close()
}

func printCreatedClient(out io.Writer, c *store.Client, secret string, asJSON bool) error {
	if asJSON {
		return printJSON(out, toClientJSON(c, secret))
	}
	fmt.Fprintf(out, "client_id:     %s\n", c.ID)
	if secret != "" {
		fmt.Fprintf(out, "client_secret: %s\n(shown once: only a keyed hash of it is stored)\n", secret)
	}
	fmt.Fprintf(out, "name:          %s\nauth method:   %s\nredirect URIs: %s\nscopes:        %s\n",
		c.Name, c.TokenEndpointAuthMethod, strings.Join(c.RedirectURIs, " "), strings.Join(c.Scopes, " "))
	return nil
}

// clientListCommand is `numverify client list`.
type clientListCommand struct {
	db     databaseFlags
	asJSON bool
}

func (c *clientListCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.BoolVar(&c.asJSON, "json", false, "print the clients as JSON")
}

func (c *clientListCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	pool, err := c.db.open(ctx, "client", true)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Listing needs no secret: the hasher is never used.
	clients, err := store.New(pool, nil).ListClients(ctx)
	if err != nil {
		return err
	}
	return printClients(os.Stdout, clients, c.asJSON)
}

func printClients(out io.Writer, clients []*store.Client, asJSON bool) error {
	if asJSON {
		list := make([]clientJSON, 0, len(clients))
		for _, c := range clients {
			list = append(list, toClientJSON(c, ""))
		}
		return printJSON(out, list)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLIENT ID\tNAME\tAUTH METHOD\tSCOPES\tREDIRECT URIS\tCREATED")
	for _, c := range clients {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, c.TokenEndpointAuthMethod,
			strings.Join(c.Scopes, " "), strings.Join(c.RedirectURIs, " "), c.CreatedAt.Format(time.RFC3339))
	}
	return w.Flush()
}

// clientDeleteCommand is `numverify client delete`.
type clientDeleteCommand struct {
	db     databaseFlags
	id     string
	retain time.Duration
}

func (c *clientDeleteCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.StringVar(&c.id, "id", "", "the client id (required)")
	fs.DurationVar(&c.retain, "revocation-retention", store.DefaultClientRevocationRetention,
		"how long the resource servers keep refusing the client's tokens: at least serve authz's --access-token-lifetime")
}

func (c *clientDeleteCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.id == "" {
		return fmt.Errorf("--id is required: %w", errUsage)
	}
	if c.retain <= 0 {
		return fmt.Errorf("--revocation-retention must be positive: %w", errUsage)
	}
	pool, err := c.db.open(ctx, "client", true)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := store.New(pool, nil).DeleteClientAndRevoke(ctx, c.id, c.retain); err != nil {
		return err
	}
	fmt.Printf("deleted client %s; every token it was issued is revoked\n", c.id)
	return nil
}
