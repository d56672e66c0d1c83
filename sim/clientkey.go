package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ClientKey is an SP's private_key_jwt key (CAMARA ICM): an ECDSA P-256 key
// signing ES256, named by its RFC 7638 thumbprint. The public half is what
// `numverify client create --jwks-file` registers.
type ClientKey struct {
	Private *ecdsa.PrivateKey
	KeyID   string
}

// ClientAssertionType is the client_assertion_type of private_key_jwt.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is exp − iat of the JWTs a ClientKey signs (ICM: ≤ 300 s).
const assertionLifetime = time.Minute

// GenerateClientKey makes a fresh P-256 key.
func GenerateClientKey() (*ClientKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return newClientKey(key)
}

// ReadClientKey reads a PEM P-256 private key (PKCS #8, as `openssl genpkey
// -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes it, or SEC 1). Its
// errors never quote the file.
func ReadClientKey(path string) (*ClientKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	var key any
	for rest := raw; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		break
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if err != nil || !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("client key %s: not a PEM P-256 private key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s)", path, path)
	}
	return newClientKey(ec)
}

func newClientKey(key *ecdsa.PrivateKey) (*ClientKey, error) {
	public := jose.JSONWebKey{Key: &key.PublicKey}
	thumb, err := public.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &ClientKey{Private: key, KeyID: base64.RawURLEncoding.EncodeToString(thumb)}, nil
}

// PEM is the private key in PKCS #8 PEM.
func (k *ClientKey) PEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// JWKS is the public key set to register for the client.
func (k *ClientKey) JWKS() ([]byte, error) {
	return json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &k.Private.PublicKey, KeyID: k.KeyID, Algorithm: string(jose.ES256), Use: "sig"}}})
}

// Sign signs claims (ES256, with the kid).
func (k *ClientKey) Sign(claims any) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), k.KeyID))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// Assertion is a JWT of clientID for audience: iss clientID, sub (clientID
// when empty: a client assertion), iat now, exp a minute later, a fresh jti,
// and the extra claims (scope for a JWT-bearer grant).
func (k *ClientKey) Assertion(clientID, audience, subject string, extra map[string]any) (string, error) {
	if subject == "" {
		subject = clientID
	}
	now := time.Now()
	claims := map[string]any{"iss": clientID, "sub": subject, "aud": audience,
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(), "jti": rand.Text()}
	for name, value := range extra {
		claims[name] = value
	}
	return k.Sign(claims)
}

// ClientAuth returns the private_key_jwt parameters for a request to the
// issuer's endpoints (the assertion's aud is the issuer alone).
func (k *ClientKey) ClientAuth(clientID, issuer string) (map[string]string, error) {
	if k == nil {
		return nil, errors.New("no client key")
	}
	assertion, err := k.Assertion(clientID, issuer, "", nil)
	if err != nil {
		return nil, err
	}
	return map[string]string{"client_id": clientID, "client_assertion_type": ClientAssertionType, "client_assertion": assertion}, nil
}
