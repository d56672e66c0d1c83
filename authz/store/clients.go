package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/pg"
)

// ErrNotFound is returned by DeleteClient for an unknown client.
var ErrNotFound = pg.ErrNotFound

// secretBytes is the size of a client secret: 256 random bits (DESIGN
// "Client authentication").
const secretBytes = 32

// clientColumnList are the columns scanClient reads, in order.
var clientColumnList = []string{"id", "name", "secret_hash", "redirect_uris", "scopes", "audiences",
	"grant_types", "response_types", "token_endpoint_auth_method", "jwks", "sector_identifier",
	"allow_missing_redirect_uri", "can_read_phone_number", "id_token_signed_response_alg", "created_at"}

var clientColumns = clientColumnsOf("")

// clientColumnsOf lists the client columns qualified by a table alias.
func clientColumnsOf(alias string) string {
	prefix := ""
	if alias != "" {
		prefix = alias + "."
	}
	return prefix + strings.Join(clientColumnList, ", "+prefix)
}

// CreateClient registers a client from spec (validated first, every problem
// reported at once). For the secret methods it returns the plain secret,
// shown this once; only its HMAC is stored. private_key_jwt clients get none.
func (s *Store) CreateClient(ctx context.Context, spec ClientSpec) (client *Client, plainSecret string, err error) {
	spec = spec.withDefaults()
	if err := spec.Validate(); err != nil {
		return nil, "", err
	}
	c := spec.client()
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.TokenEndpointAuthMethod != AuthMethodPrivateKeyJWT {
		if plainSecret, err = randomToken(secretBytes); err != nil {
			return nil, "", err
		}
		if c.SecretHash, err = s.hasher.Hash(ctx, []byte(plainSecret)); err != nil {
			return nil, "", fmt.Errorf("hash client secret: %w", err)
		}
	}
	if err := c.prepare(); err != nil {
		return nil, "", fmt.Errorf("client jwks: %w", err)
	}
	var jwks any
	if len(c.JWKS) > 0 {
		jwks = string(c.JWKS)
	}
	err = s.db(ctx).QueryRow(ctx, `
		INSERT INTO oauth2_clients (id, name, secret_hash, redirect_uris, scopes, audiences,
			grant_types, response_types, token_endpoint_auth_method, jwks, sector_identifier,
			allow_missing_redirect_uri, can_read_phone_number, id_token_signed_response_alg)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14)
		RETURNING created_at`,
		c.ID, c.Name, c.SecretHash, c.RedirectURIs, c.Scopes, c.Audience, c.GrantTypes,
		c.ResponseTypes, c.TokenEndpointAuthMethod, jwks, c.SectorIdentifier,
		c.AllowMissingRedirectURI, c.CanReadPhoneNumber, c.GetIDTokenSignedResponseAlgorithm()).Scan(&c.CreatedAt)
	if err != nil {
		return nil, "", fmt.Errorf("create client: %w", pg.MapError(err))
	}
	s.clients.forget(c.ID)
	return c, plainSecret, nil
}

// GetClient loads a client, from the client cache when it is on;
// fosite.ErrNotFound when there is none.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	now := s.now()
	if c, ok := s.clients.get(id, now); ok {
		return c, nil
	}
	c, err := scanClient(s.db(ctx).QueryRow(ctx, `SELECT `+clientColumns+` FROM oauth2_clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get client: %w", pg.MapError(err))
	}
	s.clients.put(c, now)
	return c, nil
}

// ListClients returns every client, oldest first.
func (s *Store) ListClients(ctx context.Context) ([]*Client, error) {
	rows, err := s.db(ctx).Query(ctx, `SELECT `+clientColumns+` FROM oauth2_clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", pg.MapError(err))
	}
	defer rows.Close()
	var clients []*Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("list clients: %w", err)
		}
		clients = append(clients, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list clients: %w", pg.MapError(err))
	}
	return clients, nil
}

// DeleteClient removes a client and every request record issued to it, and
// revokes every token it was issued (DeleteClientAndRevoke with the default
// retention); ErrNotFound when there is none.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.DeleteClientAndRevoke(ctx, id, DefaultClientRevocationRetention)
}

func scanClient(row pgx.Row) (*Client, error) {
	var c Client
	var jwks []byte
	if err := row.Scan(c.scanDest(&jwks)...); err != nil {
		return nil, err
	}
	if err := c.finishScan(jwks); err != nil {
		return nil, err
	}
	return &c, nil
}

// scanDest are the destinations of clientColumnList; jwks receives the raw
// JWK Set for finishScan.
func (c *Client) scanDest(jwks *[]byte) []any {
	return []any{&c.ID, &c.Name, &c.SecretHash, &c.RedirectURIs, &c.Scopes, &c.Audience,
		&c.GrantTypes, &c.ResponseTypes, &c.TokenEndpointAuthMethod, jwks, &c.SectorIdentifier,
		&c.AllowMissingRedirectURI, &c.CanReadPhoneNumber, &c.IDTokenSignedResponseAlg, &c.CreatedAt}
}

func (c *Client) finishScan(jwks []byte) error {
	if len(jwks) > 0 {
		c.JWKS = jwks
	}
	if err := c.prepare(); err != nil {
		return fmt.Errorf("client %q: stored jwks: %w", c.ID, err)
	}
	return nil
}

// ClientAssertionJWTValid returns fosite.ErrJTIKnown when jti was used by a
// client assertion that has not yet expired.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var known bool
	err := s.db(ctx).QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM oauth2_client_assertion_jtis WHERE jti = $1 AND expires_at > now())`,
		jti).Scan(&known)
	if err != nil {
		return fmt.Errorf("check client assertion jti: %w", pg.MapError(err))
	}
	if known {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT records jti as used until exp; fosite.ErrJTIKnown
// when it already is (an expired record is replaced). One atomic statement,
// so of two concurrent uses of one jti exactly one succeeds.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	tag, err := s.db(ctx).Exec(ctx, `
		INSERT INTO oauth2_client_assertion_jtis (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
			WHERE oauth2_client_assertion_jtis.expires_at <= now()`, jti, exp)
	if err != nil {
		return fmt.Errorf("record client assertion jti: %w", pg.MapError(err))
	}
	if tag.RowsAffected() == 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
