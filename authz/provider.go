package authz

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/hmac"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/keystore"
)

// fositeConfig is fosite's configuration with the token endpoint's accepted
// assertion audiences widened to the issuer (CAMARA ICM: a private_key_jwt
// assertion's aud is the token endpoint URL or the issuer).
type fositeConfig struct {
	*fosite.Config
	tokenURLs []string
}

func (c *fositeConfig) GetTokenURLs(context.Context) []string { return c.tokenURLs }

// coreStrategy combines the access-token strategy of the configured format
// with fosite's HMAC refresh tokens and this server's sealed codes.
type coreStrategy struct {
	oauth2.AccessTokenStrategy
	oauth2.RefreshTokenStrategy
	oauth2.AuthorizeCodeStrategy
}

var _ oauth2.CoreStrategy = coreStrategy{}

// Key labels for keystore.DeriveKey.
const (
	labelTokenHMAC = "authz-fosite-hmac"
	labelPairwise  = "authz-pairwise-subject"
)

// newProvider composes fosite with exactly what this server offers, each
// handler built with its concrete type (no compose.Compose and its runtime
// type assertions). Handler order matters and is explained where it does.
// It also returns the authorization-code strategy, with which the token
// endpoint finds a code's records before fosite asks for them.
// allowClient is the per-client abuse limit of the token endpoint, applied
// once a client has authenticated.
// backchannel serves the operator-token grants (JWT-bearer, CIBA).
func newProvider(cfg Config, st *store.Store, keys Keys, allowClient func(string) (bool, time.Duration), backchannel *backchannel) (*fosite.Fosite, *sealedCodes) {
	tokenURL := cfg.Issuer + "/token"
	conf := &fositeConfig{tokenURLs: []string{tokenURL, cfg.Issuer}, Config: &fosite.Config{
		IDTokenIssuer:         cfg.Issuer,
		AccessTokenIssuer:     cfg.Issuer,
		TokenURL:              tokenURL,
		AccessTokenLifespan:   cfg.AccessTokenLifetime,
		AuthorizeCodeLifespan: cfg.AuthorizeCodeLifetime,
		IDTokenLifespan:       cfg.IDTokenLifetime,
		RefreshTokenLifespan:  cfg.RefreshTokenLifetime,
		// Refresh tokens only where offline_access was granted, which
		// handleAuthorize does only for clients allowed the refresh_token
		// grant and never with a Number Verification scope.
		RefreshTokenScopes: []string{scopeOfflineAccess},
		// PKCE: S256, required for everyone (pkceS256 enforces it; these say
		// the same to anything else in fosite that reads them).
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  scopeAllowed,
		AudienceMatchingStrategy:       fosite.DefaultAudienceMatchingStrategy,
		// The login is silent: prompt=none is the only prompt (handleAuthorize
		// sets it).
		AllowedPromptValues: []string{"none"},
		ClientSecretsHasher: st.SecretHasher(),
		GlobalSecret:        keystore.DeriveKey(cfg.SecretsKey, labelTokenHMAC),
		TokenEntropy:        32,
		// state is the client's CSRF value, opaque to this server (RFC 6749
		// §10.12; with PKCE required it is not even the CSRF defence, RFC
		// 9700 §2.1), so its entropy is the client's business: real SDKs send
		// short states, and fosite's default (8) refused them with
		// invalid_state. It must still be present (at least 1 character).
		// fosite applies the same minimum to nonce only in flows not
		// offered here; checkAuthorizeParameters keeps nonce at 8 or more.
		MinParameterEntropy:        1,
		SendDebugMessagesToClients: false,
		OmitRedirectScopeParam:     true,
	}}

	hmacTokens := oauth2.NewHMACSHAStrategy(&hmac.HMACStrategy{Config: conf}, conf)
	codes := newSealedCodes(cfg.SecretsKey, backchannel.now)
	strategy := coreStrategy{
		AccessTokenStrategy:   hmacTokens,
		RefreshTokenStrategy:  hmacTokens,
		AuthorizeCodeStrategy: codes,
	}
	if cfg.AccessTokenFormat != FormatOpaque {
		strategy.AccessTokenStrategy = &jwtAccessTokens{
			keys: keys, issuer: cfg.Issuer, audience: cfg.AccessTokenAudience,
			lifetime: cfg.AccessTokenLifetime, direct: cfg.AccessTokenFormat == FormatJWTDirect,
		}
	}
	idSigner := newIDTokenSigner(keys)
	// Each client's ID tokens with the algorithm of its registration.
	idTokens := &openid.IDTokenHandleHelper{IDTokenStrategy: clientIDTokens{openid.DefaultStrategy{Signer: idSigner, Config: conf}}}

	code := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
		AuthorizeCodeStrategy:  strategy,
		CoreStorage:            missingRedirectStorage{st},
		TokenRevocationStorage: st,
		Config:                 conf,
	}
	pkce := &pkceS256{codes: strategy, storage: st}
	oidc := &openid.OpenIDConnectExplicitHandler{
		OpenIDConnectRequestStorage:   st,
		OpenIDConnectRequestValidator: openid.NewOpenIDConnectRequestValidator(idSigner, conf),
		IDTokenHandleHelper:           idTokens,
		Config:                        conf,
	}
	refresh := &oauth2.RefreshTokenGrantHandler{
		AccessTokenStrategy:    strategy,
		RefreshTokenStrategy:   strategy,
		TokenRevocationStorage: st,
		Config:                 conf,
	}
	oidcRefresh := &openid.OpenIDConnectRefreshHandler{IDTokenHandleHelper: idTokens, Config: conf}
	// The operator-token grants: an access token (no refresh token) from
	// the helper fosite's own grants use; CIBA adds the ID token.
	issue := &oauth2.HandleHelper{AccessTokenStrategy: strategy, AccessTokenStorage: st, Config: conf}
	jwtBearer := &jwtBearerGrant{HandleHelper: issue, backchannel: backchannel,
		lifetime: cfg.AccessTokenLifetime, audiences: []string{cfg.Issuer, tokenURL}}
	ciba := &cibaGrant{HandleHelper: issue, idTokens: idTokens, requests: st, now: backchannel.now,
		lifetime: cfg.AccessTokenLifetime, idLifetime: cfg.IDTokenLifetime}

	// /authorize: the code handler issues the code; PKCE and OpenID Connect
	// store their records under it, so they come after it.
	conf.AuthorizeEndpointHandlers = fosite.AuthorizeEndpointHandlers{code, pkce, oidc}
	// /token: the code handler first, so that a replayed code is answered
	// invalid_grant and revokes what it issued before PKCE looks at the
	// (already consumed) challenge; the ID token is added after the access
	// token exists (its at_hash covers it).
	conf.TokenEndpointHandlers = fosite.TokenEndpointHandlers{code, pkce, oidc, refresh, oidcRefresh, jwtBearer, ciba}
	conf.TokenIntrospectionHandlers = fosite.TokenIntrospectionHandlers{
		&oauth2.CoreValidator{CoreStrategy: strategy, CoreStorage: st, Config: conf},
	}
	conf.RevocationHandlers = fosite.RevocationHandlers{
		&oauth2.TokenRevocationHandler{TokenRevocationStorage: st, AccessTokenStrategy: strategy, RefreshTokenStrategy: strategy},
	}

	provider := fosite.NewOAuth2Provider(st, conf)
	auth := &clientAuthentication{provider: provider, allowClient: allowClient}
	conf.ClientAuthenticationStrategy = auth.authenticate
	return provider, codes
}

const scopeOfflineAccess = "offline_access"

// scopeAllowed is fosite's ScopeStrategy: may a client registered with
// granted scopes ask for scope? Exactly registered, or the purpose forms of
// a registered API scope ("dpv:FraudPreventionAndDetection" alone, or
// prefixed to it with "#"), openid (which grants nothing by itself), or
// offline_access (granted only under handleAuthorize's conditions).
func scopeAllowed(granted []string, scope string) bool {
	if fosite.Arguments(granted).Has(scope) || scope == contract.ScopeOpenID || scope == scopeOfflineAccess {
		return true
	}
	if scope == contract.Purpose {
		for _, g := range granted {
			if contract.IsNumberVerificationScope(g) {
				return true
			}
		}
		return false
	}
	if purpose, api, ok := strings.Cut(scope, "#"); ok && purpose == contract.Purpose {
		return fosite.Arguments(granted).Has(api)
	}
	return false
}

// endpoint is the URL of path below the issuer.
func endpoint(issuer, path string) string {
	u, _ := url.JoinPath(issuer, path)
	return u
}
