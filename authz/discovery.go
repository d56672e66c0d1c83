package authz

import (
	"encoding/json"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/numverify/numverify/internal/contract"
)

// metadata is the discovery document (OpenID Connect Discovery 1.0 and
// RFC 8414, one document for both): only what is implemented.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestObjectSigningAlgValuesSupported     []string `json:"request_object_signing_alg_values_supported"`
	AuthorizationResponseISSParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// CIBA (OpenID CIBA Core §4), poll mode only.
	BackchannelEndpoint      string   `json:"backchannel_authentication_endpoint"`
	BackchannelDeliveryModes []string `json:"backchannel_token_delivery_modes_supported"`
	BackchannelSigningAlgs   []string `json:"backchannel_authentication_request_signing_alg_values_supported"`
	BackchannelUserCode      bool     `json:"backchannel_user_code_parameter_supported"`
}

func newMetadata(cfg Config) metadata {
	authMethods := []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	algs := make([]string, len(assertionAlgorithms))
	for i, a := range assertionAlgorithms {
		algs[i] = string(a)
	}
	return metadata{
		Issuer:                endpoint(cfg.Issuer, ""),
		AuthorizationEndpoint: endpoint(cfg.Issuer, "/authorize"),
		TokenEndpoint:         endpoint(cfg.Issuer, "/token"),
		UserinfoEndpoint:      endpoint(cfg.Issuer, "/userinfo"),
		JWKSURI:               endpoint(cfg.Issuer, "/jwks.json"),
		IntrospectionEndpoint: endpoint(cfg.Issuer, "/introspect"),
		RevocationEndpoint:    endpoint(cfg.Issuer, "/revoke"),
		ScopesSupported: []string{
			contract.ScopeOpenID, contract.ScopeVerify, contract.ScopeShare,
			contract.ScopeVerifyV0, contract.ScopeShareV0, contract.Purpose, scopeOfflineAccess,
		},
		ResponseTypesSupported: []string{"code"},
		ResponseModesSupported: []string{"query"},
		GrantTypesSupported:    []string{"authorization_code", "refresh_token", grantTypeJWTBearer, grantTypeCIBA},
		SubjectTypesSupported:  []string{"pairwise"},
		// Each client's ID tokens use the algorithm of its registration.
		IDTokenSigningAlgValuesSupported:           idTokenAlgorithms,
		TokenEndpointAuthMethodsSupported:          authMethods,
		TokenEndpointAuthSigningAlgValuesSupported: algs,
		IntrospectionEndpointAuthMethodsSupported:  authMethods,
		RevocationEndpointAuthMethodsSupported:     authMethods,
		CodeChallengeMethodsSupported:              []string{"S256"},
		ClaimsSupported:                            []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash"},
		PromptValuesSupported:                      []string{"none"},
		RequestParameterSupported:                  true,
		RequestURIParameterSupported:               false,
		ClaimsParameterSupported:                   false,
		RequestObjectSigningAlgValuesSupported:     algs,
		// RFC 9207: every authorization response carries iss (foundWriter).
		AuthorizationResponseISSParameterSupported: true,
		// CIBA: poll mode, signed requests in the client's algorithms.
		BackchannelEndpoint:      endpoint(cfg.Issuer, "/bc-authorize"),
		BackchannelDeliveryModes: []string{"poll"},
		BackchannelSigningAlgs:   algs,
		BackchannelUserCode:      false,
	}
}

func (m metadata) marshal() ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// handleDiscovery serves /.well-known/openid-configuration and
// /.well-known/oauth-authorization-server.
func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(s.metadata)
}

// handleJWKS publishes the public signing keys, the current one and those
// still verifying tokens they signed (and the next one, before it signs).
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	keys, err := s.keys.PublicSigningKeys(r.Context())
	if err != nil {
		s.logError(r.Context(), "jwks", "", temporarilyUnavailable.WithWrap(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	set := jose.JSONWebKeySet{Keys: keys}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	// Short: a new key is published before it signs, but clients should
	// see it soon.
	h.Set("Cache-Control", "public, max-age=60")
	_ = json.NewEncoder(w).Encode(set)
}
