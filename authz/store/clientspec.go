package store

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/numverify/numverify/internal/contract"
)

// ClientSpec is what an operator registers for a client.
type ClientSpec struct {
	ID                      string // optional; a random UUID when empty
	Name                    string
	RedirectURIs            []string
	Scopes                  []string
	Audience                []string
	GrantTypes              []string // default authorization_code (none for an introspection-only client)
	ResponseTypes           []string // default code
	TokenEndpointAuthMethod string   // default client_secret_basic
	JWKS                    json.RawMessage
	SectorIdentifier        string
	AllowMissingRedirectURI bool
	CanReadPhoneNumber      bool
	// IDTokenSignedResponseAlg: RS256 or ES256; default RS256
	// (DefaultIDTokenSigningAlgorithm, OpenID Connect's default).
	IDTokenSignedResponseAlg string
}

var (
	knownAuthMethods    = []string{AuthMethodClientSecretBasic, AuthMethodClientSecretPost, AuthMethodPrivateKeyJWT}
	knownGrantTypes     = []string{"authorization_code", "refresh_token", "client_credentials", GrantTypeJWTBearer, GrantTypeCIBA}
	knownResponseTypes  = []string{"code"}
	supportedSigningAlg = contract.AlgorithmNames(contract.ClientSigningAlgorithms)
)

// ErrInvalidClient wraps every validation problem of a ClientSpec.
var ErrInvalidClient = errors.New("invalid client")

func (s ClientSpec) withDefaults() ClientSpec {
	if s.TokenEndpointAuthMethod == "" {
		s.TokenEndpointAuthMethod = AuthMethodClientSecretBasic
	}
	if s.IDTokenSignedResponseAlg == "" {
		s.IDTokenSignedResponseAlg = DefaultIDTokenSigningAlgorithm
	}
	if s.GrantTypes == nil {
		// A client registered only to introspect (a resource server) gets
		// no grant at all.
		if len(s.RedirectURIs) == 0 && s.CanReadPhoneNumber {
			s.GrantTypes = []string{}
		} else {
			s.GrantTypes = []string{"authorization_code"}
		}
	}
	if s.ResponseTypes == nil {
		s.ResponseTypes = []string{}
		if slices.Contains(s.GrantTypes, "authorization_code") {
			s.ResponseTypes = []string{"code"}
		}
	}
	for _, list := range []*[]string{&s.RedirectURIs, &s.Scopes, &s.Audience} {
		if *list == nil {
			*list = []string{}
		}
	}
	return s
}

// Validate reports every problem of the spec at once (wrapping
// ErrInvalidClient), or nil.
func (s ClientSpec) Validate() error {
	s = s.withDefaults()
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if s.ID != "" && (len(s.ID) > 128 || strings.ContainsFunc(s.ID, isSpaceOrControl)) {
		add("client id must be at most 128 characters, without spaces")
	}
	if strings.TrimSpace(s.Name) == "" {
		add("name is required")
	} else if len(s.Name) > 200 {
		add("name is longer than 200 characters")
	}
	codeFlow := slices.Contains(s.GrantTypes, "authorization_code")
	if codeFlow && len(s.RedirectURIs) == 0 {
		add("at least one redirect URI is required")
	}
	hosts := map[string]bool{}
	for _, u := range s.RedirectURIs {
		host, err := checkRedirectURI(u)
		if err != nil {
			add("redirect URI %q: %v", u, err)
		} else if host != "" {
			hosts[host] = true
		}
	}
	if len(hosts) > 1 && s.SectorIdentifier == "" {
		add("redirect URIs on more than one host need a sector identifier (pairwise subjects are per sector)")
	}
	if s.SectorIdentifier != "" && (len(s.SectorIdentifier) > 255 || strings.ContainsFunc(s.SectorIdentifier, isSpaceOrControl)) {
		add("sector identifier must be a host name or https URL of at most 255 characters")
	}
	if (codeFlow || operatorTokenGrant(s.GrantTypes)) && len(s.Scopes) == 0 {
		add("at least one scope is required")
	}
	if slices.Contains(s.GrantTypes, GrantTypeJWTBearer) && s.TokenEndpointAuthMethod != AuthMethodPrivateKeyJWT {
		add("the jwt-bearer grant needs private_key_jwt: the client signs its assertions with its registered keys")
	}
	for _, scope := range s.Scopes {
		if _, ok := contract.ScopePermission(scope); !ok {
			add("scope %q is not one this server grants", scope)
		}
	}
	for _, aud := range s.Audience {
		if u, err := url.Parse(aud); err != nil || !u.IsAbs() {
			add("audience %q is not an absolute URL", aud)
		}
	}
	for _, g := range s.GrantTypes {
		if !slices.Contains(knownGrantTypes, g) {
			add("grant type %q is not one of %s", g, strings.Join(knownGrantTypes, ", "))
		}
	}
	for _, r := range s.ResponseTypes {
		if !slices.Contains(knownResponseTypes, r) {
			add("response type %q is not one of %s", r, strings.Join(knownResponseTypes, ", "))
		}
	}
	if !slices.Contains(knownAuthMethods, s.TokenEndpointAuthMethod) {
		add("token endpoint auth method %q is not one of %s", s.TokenEndpointAuthMethod, strings.Join(knownAuthMethods, ", "))
	}
	if !slices.Contains(IDTokenSigningAlgorithms, s.IDTokenSignedResponseAlg) {
		add("ID token signing algorithm %q is not one of %s", s.IDTokenSignedResponseAlg, strings.Join(IDTokenSigningAlgorithms, ", "))
	}
	if s.TokenEndpointAuthMethod == AuthMethodPrivateKeyJWT && len(s.JWKS) == 0 {
		add("private_key_jwt needs the client's public keys (a JWKS)")
	}
	if len(s.JWKS) > 0 {
		for _, p := range checkJWKS(s.JWKS) {
			add("jwks: %s", p)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidClient, strings.Join(problems, "; "))
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// checkRedirectURI accepts an absolute URI without fragment: https, http on
// loopback only (native apps, RFC 8252 §7.3), or a private-use scheme
// (RFC 8252 §7.1). It returns the host for the sector check ("" for a
// private-use scheme).
func checkRedirectURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URI")
	}
	if !u.IsAbs() {
		return "", errors.New("not absolute")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", errors.New("must not have a fragment")
	}
	switch scheme := strings.ToLower(u.Scheme); scheme {
	case "https":
		if u.Hostname() == "" {
			return "", errors.New("has no host")
		}
		return u.Hostname(), nil
	case "http":
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return u.Hostname(), nil
		}
		return "", errors.New("http is allowed only for localhost, 127.0.0.1 and [::1]; use https")
	case "javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss":
		return "", fmt.Errorf("scheme %q cannot be a redirect URI", scheme)
	default:
		if !strings.Contains(scheme, ".") {
			return "", fmt.Errorf("a private-use scheme must be a reverse domain name (com.example.app), not %q", scheme)
		}
		return "", nil
	}
}

// checkJWKS lists the problems of a client's JWK Set: it must parse, hold at
// least one key, only public keys, and signing keys of an algorithm fosite
// verifies.
func checkJWKS(raw json.RawMessage) []string {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return []string{fmt.Sprintf("not a JWK Set: %v", err)}
	}
	if len(set.Keys) == 0 {
		return []string{"has no keys"}
	}
	var problems []string
	for i, k := range set.Keys {
		name := k.KeyID
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		if !k.IsPublic() {
			problems = append(problems, fmt.Sprintf("key %s is a private key; register only the public part", name))
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		alg := k.Algorithm
		if alg == "" {
			alg = algorithmForKey(k)
		}
		if !slices.Contains(supportedSigningAlg, alg) {
			problems = append(problems, fmt.Sprintf("key %s: signing algorithm %q is not one of %s", name, alg, strings.Join(supportedSigningAlg, ", ")))
		}
	}
	return problems
}

// algorithmForKey is the usual signing algorithm for a key without "alg".
func algorithmForKey(k jose.JSONWebKey) string {
	switch key := k.Key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return string(jose.RS256)
	case *ecdsa.PublicKey:
		return ecAlgorithm(key.Curve)
	case *ecdsa.PrivateKey:
		return ecAlgorithm(key.Curve)
	case ed25519.PublicKey:
		return string(jose.EdDSA)
	}
	return ""
}

func ecAlgorithm(c elliptic.Curve) string {
	switch c {
	case elliptic.P256():
		return string(jose.ES256)
	case elliptic.P384():
		return string(jose.ES384)
	case elliptic.P521():
		return string(jose.ES512)
	}
	return ""
}

// client turns a validated spec into a Client (without id and secret).
func (s ClientSpec) client() *Client {
	return &Client{
		ID:                       s.ID,
		Name:                     strings.TrimSpace(s.Name),
		RedirectURIs:             s.RedirectURIs,
		Scopes:                   s.Scopes,
		Audience:                 s.Audience,
		GrantTypes:               s.GrantTypes,
		ResponseTypes:            s.ResponseTypes,
		TokenEndpointAuthMethod:  s.TokenEndpointAuthMethod,
		JWKS:                     s.JWKS,
		SectorIdentifier:         s.SectorIdentifier,
		AllowMissingRedirectURI:  s.AllowMissingRedirectURI,
		CanReadPhoneNumber:       s.CanReadPhoneNumber,
		IDTokenSignedResponseAlg: s.IDTokenSignedResponseAlg,
	}
}
