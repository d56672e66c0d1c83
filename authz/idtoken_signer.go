package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"

	josev3 "github.com/go-jose/go-jose/v3"
	fositejwt "github.com/ory/fosite/token/jwt"
)

// fosite's OpenID Connect strategy signs ID tokens with go-jose v3; the rest
// of numverify, and the key store, use v4. This file is the only place the two
// meet: the v4 key from the key store becomes a v3 JSONWebKey (same key
// material, kid and alg) each time fosite asks, so a rotated key is used as
// soon as the key store serves it.

// newIDTokenSigner returns the fosite signer of ID tokens.
func newIDTokenSigner(keys Keys) *fositejwt.DefaultSigner {
	return &fositejwt.DefaultSigner{GetPrivateKey: func(ctx context.Context) (interface{}, error) {
		k, err := keys.SigningKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("ID token signing key: %w", err)
		}
		alg := k.Algorithm
		if alg == "" {
			switch k.Key.(type) {
			case *rsa.PrivateKey:
				alg = "RS256"
			case *ecdsa.PrivateKey:
				alg = "ES256"
			}
		}
		return &josev3.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: alg, Use: "sig"}, nil
	}}
}
