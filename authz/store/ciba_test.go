package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/numverify/numverify/internal/contract"
)

// A client may be registered for the operator-token grants; the jwt-bearer
// grant needs private_key_jwt (the client signs its assertions), and either
// needs scopes.
func TestClientSpecOperatorTokenGrants(t *testing.T) {
	jwks, _ := testJWKS(t, true)
	base := ClientSpec{Name: "SP", Scopes: []string{contract.Purpose, contract.ScopeVerify},
		TokenEndpointAuthMethod: AuthMethodPrivateKeyJWT, JWKS: jwks}
	for _, c := range []struct {
		name    string
		mutate  func(*ClientSpec)
		problem string // "" = valid
	}{
		{"jwt-bearer and ciba, no redirect URI", func(s *ClientSpec) { s.GrantTypes = []string{GrantTypeJWTBearer, GrantTypeCIBA} }, ""},
		{"with the code flow", func(s *ClientSpec) {
			s.GrantTypes = []string{"authorization_code", GrantTypeJWTBearer, GrantTypeCIBA}
			s.RedirectURIs = []string{"https://sp.example/cb"}
		}, ""},
		{"jwt-bearer with a secret", func(s *ClientSpec) {
			s.GrantTypes = []string{GrantTypeJWTBearer}
			s.TokenEndpointAuthMethod, s.JWKS = AuthMethodClientSecretBasic, nil
		}, "private_key_jwt"},
		{"ciba with a secret", func(s *ClientSpec) {
			s.GrantTypes = []string{GrantTypeCIBA}
			s.TokenEndpointAuthMethod, s.JWKS = AuthMethodClientSecretBasic, nil
		}, ""},
		{"ciba without scopes", func(s *ClientSpec) { s.GrantTypes, s.Scopes = []string{GrantTypeCIBA}, nil }, "scope"},
		{"unknown grant", func(s *ClientSpec) { s.GrantTypes = []string{"urn:example:grant"} }, "grant type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := base
			c.mutate(&spec)
			err := spec.Validate()
			switch {
			case c.problem == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.problem != "" && (!errors.Is(err, ErrInvalidClient) || !strings.Contains(err.Error(), c.problem)):
				t.Fatalf("got %v, want a problem about %q", err, c.problem)
			}
		})
	}
}
