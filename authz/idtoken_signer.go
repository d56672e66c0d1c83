package authz

import (
	"context"
	"errors"
	"fmt"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	fositejwt "github.com/ory/fosite/token/jwt"

	"github.com/numverify/numverify/authz/store"
)

// ID tokens are signed with the algorithm of the client's registration
// (id_token_signed_response_alg: ES256, or RS256 for relying parties that
// need it), each with the key store's current key of that algorithm.
//
// fosite's OpenID Connect strategy signs ID tokens with go-jose v3 and hands
// its signer only a context; the rest of numverify, and the key store, use
// v4. This file is the only place the two meet: clientIDTokens puts the
// client's algorithm in the context, and idTokenSigner turns the v4 key of
// that algorithm into a v3 JSONWebKey (same key material, kid and alg) each
// time fosite asks, so a rotated key is used as soon as the key store serves
// it.

// idTokenAlgorithms are the ID token signing algorithms a client may
// register, all listed in discovery (id_token_signing_alg_values_supported).
var idTokenAlgorithms = store.IDTokenSigningAlgorithms

// idTokenAlgorithmKey carries the algorithm of the ID token being signed.
type idTokenAlgorithmKey struct{}

// idTokenAlgorithm is the algorithm of client's ID tokens: its registration's,
// RS256 (OpenID Connect's default) when it names none.
func idTokenAlgorithm(client fosite.Client) jose.SignatureAlgorithm {
	if c, ok := client.(interface{ GetIDTokenSignedResponseAlgorithm() string }); ok {
		if alg := c.GetIDTokenSignedResponseAlgorithm(); alg != "" {
			return jose.SignatureAlgorithm(alg)
		}
	}
	return jose.SignatureAlgorithm(store.DefaultIDTokenSigningAlgorithm)
}

// clientIDTokens is fosite's ID token strategy, signing with the algorithm of
// the requester's client.
type clientIDTokens struct{ openid.DefaultStrategy }

var _ openid.OpenIDConnectTokenStrategy = clientIDTokens{}

func (s clientIDTokens) GenerateIDToken(ctx context.Context, lifespan time.Duration, requester fosite.Requester) (string, error) {
	ctx = context.WithValue(ctx, idTokenAlgorithmKey{}, idTokenAlgorithm(requester.GetClient()))
	return s.DefaultStrategy.GenerateIDToken(ctx, lifespan, requester)
}

// idTokenSigner is fosite's signer of ID tokens. Hashes (at_hash, c_hash)
// are SHA-256, as both algorithms use it. Tokens it is asked to read back
// (id_token_hint) are verified against the published key their kid names.
type idTokenSigner struct {
	*fositejwt.DefaultSigner
	keys Keys
}

var _ fositejwt.Signer = (*idTokenSigner)(nil)

func newIDTokenSigner(keys Keys) *idTokenSigner {
	s := &idTokenSigner{keys: keys}
	s.DefaultSigner = &fositejwt.DefaultSigner{GetPrivateKey: s.privateKey}
	return s
}

// privateKey is the current key of the algorithm clientIDTokens chose.
func (s *idTokenSigner) privateKey(ctx context.Context) (interface{}, error) {
	alg, ok := ctx.Value(idTokenAlgorithmKey{}).(jose.SignatureAlgorithm)
	if !ok {
		return nil, errors.New("ID token: no signing algorithm chosen for the client")
	}
	k, err := s.keys.SigningKey(ctx, alg)
	if err != nil {
		return nil, fmt.Errorf("ID token signing key: %w", err)
	}
	return &josev3.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: string(alg), Use: "sig"}, nil
}

// Decode parses and verifies one of our ID tokens with the published key
// its kid names, of the algorithm its header says.
func (s *idTokenSigner) Decode(ctx context.Context, token string) (*fositejwt.Token, error) {
	return fositejwt.ParseWithClaims(token, fositejwt.MapClaims{}, func(t *fositejwt.Token) (interface{}, error) {
		kid, _ := t.Header["kid"].(string)
		keys, err := s.keys.PublicSigningKeys(ctx)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k.KeyID == kid && kid != "" && k.Algorithm == string(t.Method) {
				return k.Key, nil
			}
		}
		return nil, fmt.Errorf("no published %s key with kid %q", t.Method, kid)
	})
}

// Validate verifies token as Decode does and returns its signature.
func (s *idTokenSigner) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}
