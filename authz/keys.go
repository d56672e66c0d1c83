package authz

import (
	"context"

	"github.com/go-jose/go-jose/v4"

	"github.com/numverify/numverify/internal/keystore"
)

var _ Keys = (*keystore.Store)(nil)

// Keys is what the authorization server needs from the key store
// (internal/keystore.Store): its current signing key, the public keys it
// publishes, the resource server's encryption key, and the shared direct key.
// All are served from memory.
type Keys interface {
	// SigningKey is the current private signing key (kid and alg set).
	SigningKey(ctx context.Context) (jose.JSONWebKey, error)
	// PublicSigningKeys are the keys /jwks.json publishes.
	PublicSigningKeys(ctx context.Context) ([]jose.JSONWebKey, error)
	// EncryptionKey is the resource server's private P-256 key; its Public()
	// part is what access tokens are encrypted to.
	EncryptionKey(ctx context.Context) (jose.JSONWebKey, error)
	// DirectKey is the 256-bit key shared with the resource server (jwt-dir).
	DirectKey(ctx context.Context) (kid string, key []byte, err error)
}
