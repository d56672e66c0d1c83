package store

import (
	"encoding/json"
	"time"

	josev3 "github.com/go-jose/go-jose/v3"
	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/numverify/numverify/internal/contract"
)

// ID token signing algorithms a client may register
// (id_token_signed_response_alg).
const (
	// DefaultIDTokenSigningAlgorithm is what a registration naming none gets:
	// RS256, OpenID Connect's default (Dynamic Client Registration §2), which
	// every relying party supports. `numverify client create` asks for ES256
	// unless told otherwise.
	DefaultIDTokenSigningAlgorithm = "RS256"
)

// IDTokenSigningAlgorithms are the accepted id_token_signed_response_alg
// values: the authorization server keeps a signing key of each.
var IDTokenSigningAlgorithms = contract.AlgorithmNames(contract.SigningAlgorithms)

// Token endpoint authentication methods a client may register.
const (
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
	AuthMethodPrivateKeyJWT     = "private_key_jwt"
)

// Client is a registered service provider. It implements fosite.Client and
// fosite.OpenIDConnectClient; go-jose v3 (fosite's) appears only in
// GetJSONWebKeys, the rest of numverify uses v4.
type Client struct {
	ID                      string
	Name                    string
	SecretHash              []byte // HMAC of the secret; nil for private_key_jwt
	RedirectURIs            []string
	Scopes                  []string
	Audience                []string
	GrantTypes              []string
	ResponseTypes           []string
	TokenEndpointAuthMethod string
	JWKS                    json.RawMessage // public JWK Set (RFC 7517), nil when none
	SectorIdentifier        string
	AllowMissingRedirectURI bool
	// CanReadPhoneNumber marks a resource-server client allowed to see the
	// phone_number of a token in introspection answers.
	CanReadPhoneNumber bool
	// IDTokenSignedResponseAlg is the algorithm of the client's ID tokens
	// (OIDC Dynamic Client Registration id_token_signed_response_alg): one
	// of IDTokenSigningAlgorithms; empty means RS256.
	IDTokenSignedResponseAlg string
	CreatedAt                time.Time

	jwksV3     *josev3.JSONWebKeySet // parsed once, for fosite
	signingAlg string                // derived from JWKS
}

var (
	_ fosite.Client              = (*Client)(nil)
	_ fosite.OpenIDConnectClient = (*Client)(nil)
)

// prepare parses the JWKS for fosite and derives the signing algorithm the
// client's assertions and request objects must use.
func (c *Client) prepare() error {
	c.jwksV3, c.signingAlg = nil, ""
	if len(c.JWKS) == 0 {
		return nil
	}
	var set josev3.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &set); err != nil {
		return err
	}
	c.jwksV3 = &set
	var v4 jose.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &v4); err != nil {
		return err
	}
	c.signingAlg = signingAlgorithm(v4)
	return nil
}

// signingAlgorithm is the algorithm of the first signing key of set: its
// "alg" when given, otherwise the one its key type implies.
func signingAlgorithm(set jose.JSONWebKeySet) string {
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" {
			return k.Algorithm
		}
		if alg := algorithmForKey(k); alg != "" {
			return alg
		}
	}
	return ""
}

func (c *Client) GetID() string             { return c.ID }
func (c *Client) GetHashedSecret() []byte   { return c.SecretHash }
func (c *Client) GetRedirectURIs() []string { return c.RedirectURIs }
func (c *Client) IsPublic() bool            { return false }
func (c *Client) GetScopes() fosite.Arguments {
	return fosite.Arguments(c.Scopes)
}
func (c *Client) GetAudience() fosite.Arguments { return fosite.Arguments(c.Audience) }

func (c *Client) GetGrantTypes() fosite.Arguments {
	if c.GrantTypes == nil { // a literal Client; stored clients always have a list
		return fosite.Arguments{"authorization_code"}
	}
	return fosite.Arguments(c.GrantTypes)
}

func (c *Client) GetResponseTypes() fosite.Arguments {
	if c.ResponseTypes == nil {
		return fosite.Arguments{"code"}
	}
	return fosite.Arguments(c.ResponseTypes)
}

// GetRequestURIs: request_uri is not supported.
func (c *Client) GetRequestURIs() []string { return nil }

// GetJSONWebKeys returns the client's registered keys (fosite's go-jose v3 type).
func (c *Client) GetJSONWebKeys() *josev3.JSONWebKeySet { return c.jwksV3 }

// GetJSONWebKeysURI: keys are registered by value only.
func (c *Client) GetJSONWebKeysURI() string { return "" }

// GetRequestObjectSigningAlgorithm is the algorithm of the client's key, and
// RS256 when it has none, so an unsigned ("none") request object is never
// accepted.
func (c *Client) GetRequestObjectSigningAlgorithm() string {
	return c.GetTokenEndpointAuthSigningAlgorithm()
}

func (c *Client) GetTokenEndpointAuthMethod() string { return c.TokenEndpointAuthMethod }

// GetIDTokenSignedResponseAlgorithm is the algorithm the client's ID tokens
// are signed with: its registration's, RS256 when it names none.
func (c *Client) GetIDTokenSignedResponseAlgorithm() string {
	if c.IDTokenSignedResponseAlg == "" {
		return DefaultIDTokenSigningAlgorithm
	}
	return c.IDTokenSignedResponseAlg
}

// GetTokenEndpointAuthSigningAlgorithm is the algorithm private_key_jwt
// assertions must be signed with: the client's key's.
func (c *Client) GetTokenEndpointAuthSigningAlgorithm() string {
	if c.signingAlg == "" {
		return string(jose.RS256)
	}
	return c.signingAlg
}
