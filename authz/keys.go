package authz

import (
	"context"

	"github.com/go-jose/go-jose/v4"

	"github.com/numverify/numverify/internal/keystore"
)

var _ Keys = (*keystore.Store)(nil)

// accessTokenSigningAlgorithm signs every JWT access token, whatever the
// client's ID token algorithm: access tokens are read only by the operator's
// resource servers, so the fast algorithm always (an RS256 signature costs
// about as much as the rest of a login).
const accessTokenSigningAlgorithm = jose.ES256

// Keys is what the authorization server needs from the key store
// (internal/keystore.Store): its current signing key of each algorithm, the
// public keys it publishes, the resource server's encryption key, and the
// shared direct key. All are served from memory.
type Keys interface {
	// SigningKey is the current private signing key of alg (kid and alg set).
	SigningKey(ctx context.Context, alg jose.SignatureAlgorithm) (jose.JSONWebKey, error)
	// PublicSigningKeys are the keys /jwks.json publishes, of every algorithm.
	PublicSigningKeys(ctx context.Context) ([]jose.JSONWebKey, error)
	// EncryptionKey is the resource server's private P-256 key; its Public()
	// part is what access tokens are encrypted to.
	EncryptionKey(ctx context.Context) (jose.JSONWebKey, error)
	// DirectKey is the 256-bit key shared with the resource server (jwt-dir).
	DirectKey(ctx context.Context) (kid string, key []byte, err error)
}
