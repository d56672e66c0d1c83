package contract

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// How access tokens are sealed.
//
// Nested (default): a JWS (typ at+jwt, ES256 or RS256, kid of the
// authorization server's signing key) inside a JWE (alg ECDH-ES, enc A256GCM,
// cty JWT, kid of the resource server's P-256 encryption key). The resource
// server needs only the authorization server's public keys.
//
// Direct: a JWE (alg dir, enc A256GCM, typ at+jwt, kid of a 256-bit key both
// servers share through Postgres) whose plaintext is the claims JSON; the AEAD
// tag authenticates it.
const (
	NestedKeyAlgorithm = jose.ECDH_ES
	DirectKeyAlgorithm = jose.DIRECT
	ContentEncryption  = jose.A256GCM
)

// SigningAlgorithms are the algorithms the authorization server signs
// with, and the one list of them: the key store keeps one active signing key
// of each. ES256 signs the access tokens (internal to the operator, so the
// fast one always) and the ID tokens of clients registered with it; RS256
// the ID tokens of clients registered with RS256 (OpenID Connect's default,
// for SPs whose libraries need it).
var SigningAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.RS256}

// ClientSigningAlgorithms are the algorithms a client's own JWTs (client
// assertions, JWT-bearer grants, request objects) and the keys it registers
// may use.
var ClientSigningAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
}

// AlgorithmNames spells algs as strings (client metadata, discovery).
func AlgorithmNames(algs []jose.SignatureAlgorithm) []string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return names
}

// SealNested signs the claims with signingKey (a private key with kid and
// alg) and encrypts the JWS to encryptionKey (the resource server's public
// key with its kid).
func SealNested(claims AccessClaims, signingKey jose.SigningKey, encryptionKey jose.JSONWebKey) (string, error) {
	signer, err := jose.NewSigner(signingKey, (&jose.SignerOptions{}).WithType(accessTokenType))
	if err != nil {
		return "", fmt.Errorf("access token signer: %w", err)
	}
	encrypter, err := jose.NewEncrypter(ContentEncryption,
		jose.Recipient{Algorithm: NestedKeyAlgorithm, Key: encryptionKey.Key, KeyID: encryptionKey.KeyID},
		(&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		return "", fmt.Errorf("access token encrypter: %w", err)
	}
	return jwt.SignedAndEncrypted(signer, encrypter).Claims(claims).Serialize()
}

// SealDirect encrypts the claims with a shared 256-bit key.
func SealDirect(claims AccessClaims, key []byte, kid string) (string, error) {
	if len(key) != 32 {
		return "", errors.New("direct access-token key must be 32 bytes")
	}
	encrypter, err := jose.NewEncrypter(ContentEncryption,
		jose.Recipient{Algorithm: DirectKeyAlgorithm, Key: key, KeyID: kid},
		(&jose.EncrypterOptions{}).WithType(accessTokenType))
	if err != nil {
		return "", fmt.Errorf("access token encrypter: %w", err)
	}
	return jwt.Encrypted(encrypter).Claims(claims).Serialize()
}

// Errors of Open; all mean "401 invalid_token" to a client.
var (
	errMalformed    = errors.New("access token is malformed")
	ErrUnknownKey   = errors.New("access token names an unknown key")
	errBadSignature = errors.New("access token signature or encryption does not verify")
	errWrongType    = errors.New("access token has the wrong typ")
)

// Keys are what Open needs to open tokens: decryption keys by kid (the
// resource server's private P-256 key, and shared direct keys as []byte), and
// a lookup of the authorization server's public signing keys by kid.
type Keys struct {
	// Decryption returns the private key (or []byte for dir) with this kid.
	Decryption func(kid string) (any, bool)
	// Verification returns the public key with this kid; it may fetch the
	// JWKS again when the kid is unknown.
	Verification func(kid string) (any, bool)
	// Algorithm, when set, is the one key algorithm accepted
	// (NestedKeyAlgorithm or DirectKeyAlgorithm): a server configured for one
	// way of sealing refuses the other as malformed, before any key lookup.
	Algorithm jose.KeyAlgorithm
}

// Open decrypts (and for nested tokens verifies) an access token and returns
// its claims, without checking time, issuer or audience: Validate does that.
func Open(token string, keys Keys) (AccessClaims, error) {
	var claims AccessClaims
	algorithms := []jose.KeyAlgorithm{NestedKeyAlgorithm, DirectKeyAlgorithm}
	if keys.Algorithm != "" {
		algorithms = []jose.KeyAlgorithm{keys.Algorithm}
	}
	jwe, err := jose.ParseEncryptedCompact(token, algorithms, []jose.ContentEncryption{ContentEncryption})
	if err != nil {
		return claims, fmt.Errorf("%w: %v", errMalformed, err)
	}
	key, ok := keys.Decryption(jwe.Header.KeyID)
	if !ok {
		return claims, ErrUnknownKey
	}
	plaintext, err := jwe.Decrypt(key)
	if err != nil {
		return claims, errBadSignature
	}
	if jwe.Header.Algorithm == string(DirectKeyAlgorithm) {
		if typ, _ := jwe.Header.ExtraHeaders[jose.HeaderType].(string); typ != accessTokenType {
			return claims, errWrongType
		}
		if err := json.Unmarshal(plaintext, &claims); err != nil {
			return claims, fmt.Errorf("%w: %v", errMalformed, err)
		}
		return claims, nil
	}
	if cty, _ := jwe.Header.ExtraHeaders[jose.HeaderContentType].(string); cty != "JWT" {
		return claims, errWrongType
	}
	jws, err := jose.ParseSignedCompact(string(plaintext), SigningAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return claims, fmt.Errorf("%w: inner JWS: %v", errMalformed, err)
	}
	header := jws.Signatures[0].Protected
	if typ, _ := header.ExtraHeaders[jose.HeaderType].(string); typ != accessTokenType {
		return claims, errWrongType
	}
	verificationKey, ok := keys.Verification(header.KeyID)
	if !ok {
		return claims, ErrUnknownKey
	}
	payload, err := jws.Verify(verificationKey)
	if err != nil {
		return claims, errBadSignature
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return claims, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return claims, nil
}
