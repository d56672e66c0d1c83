package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/resource"
)

const defaultResourceIssuer = "http://localhost:9090"

// resourceFlags are the resource server's settings.
type resourceFlags struct {
	addr                   string
	issuer                 string
	discoveryURL           string
	audience               string
	tokenFormat            string
	introspectionID        string
	introspectionSecret    string
	singleUse              bool
	allowNonNetwork        bool
	rateLimit              float64
	rateBurst              int
	maxFailedVerifies      int
	maxBodyBytes           int64
	clockSkew              time.Duration
	revocationMaxStaleness time.Duration
}

// resourceShared is what the resource server reads of the settings `serve`
// shares between components.
type resourceShared struct {
	issuer      string // --issuer: the authorization server's, or ours when served alone
	key         []byte // the resource secrets key (derived from the secrets key beside the authorization server)
	keyErr      error  // why there is no key
	authzFormat string // --access-token-format when served with the authorization server, else ""
}

// register defines the resource server's own flags (`serve` defines those
// it shares: --issuer, --resource-secrets-key).
func (f *resourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "resource-addr", ":9091", "listen address of the resource server")
	fs.StringVar(&f.issuer, "resource-issuer", "",
		"the authorization server whose tokens the resource server accepts (their iss; its discovery document gives the JWKS and introspection endpoint), when not --issuer")
	fs.StringVar(&f.discoveryURL, "resource-discovery-url", "", "where to fetch the authorization server's discovery document, when not at the issuer (e.g. an internal address)")
	fs.StringVar(&f.audience, "resource-audience", contract.DefaultAudience, "the aud access tokens must carry")
	fs.StringVar(&f.tokenFormat, "resource-token-format", string(resource.FormatJWTDirect),
		"access token format accepted, the one the authorization server issues (--access-token-format): jwt-dir (encrypted with the shared key), "+
			"jwt (nested: signed, then encrypted to this server) or opaque (introspected); tokens of another format are refused; served together with authz, follows --access-token-format unless set")
	fs.StringVar(&f.introspectionID, "resource-introspection-client-id", "", "client id of the resource server at the introspection endpoint (opaque format)")
	fs.StringVar(&f.introspectionSecret, "resource-introspection-client-secret", "", "client secret of the resource server at the introspection endpoint (opaque format)")
	fs.BoolVar(&f.singleUse, "single-use-tokens", true,
		"accept each access token (by jti) for one successful call only, as CAMARA Number Verification 2.1.1 requires, recorded in Postgres "+
			"(concurrent uses committed together); --single-use-tokens=false for deployments that still follow NV 2.0 (a token answers until it expires)")
	fs.BoolVar(&f.allowNonNetwork, "resource-allow-non-network-auth", false,
		"accept tokens from logins that were not network-based (playground); otherwise 403 USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK")
	fs.Float64Var(&f.rateLimit, "resource-rate-limit", resource.DefaultRateLimit, "requests per second to verify and share allowed to each client (0: no limit)")
	fs.IntVar(&f.rateBurst, "resource-rate-burst", resource.DefaultRateBurst, "burst allowed above --resource-rate-limit (0: the rate, at least 1)")
	fs.IntVar(&f.maxFailedVerifies, "resource-max-failed-verifies", resource.DefaultMaxFailedVerifies,
		"how many times one access token may answer devicePhoneNumberVerified=false; verify refuses it afterwards, 403 (counted per replica, until the token expires; 0: no cap)")
	fs.Int64Var(&f.maxBodyBytes, "resource-max-body-bytes", 4096, "largest request body accepted (413 beyond)")
	fs.DurationVar(&f.clockSkew, "resource-clock-skew", 30*time.Second, "leeway on token exp, nbf and iat")
	fs.DurationVar(&f.revocationMaxStaleness, "resource-revocation-max-staleness", 30*time.Second,
		"answer 503 when the revocation feed (Postgres LISTEN) has been down this long (0: keep answering)")
}

// build wires the resource server: its decryption keys from the key store
// (sealed at rest with the resource secrets key; it reads no other key), the
// shared pool, the registry.
func (f *resourceFlags) build(ctx context.Context, deps serveDeps, shared resourceShared) (*server, error) {
	var problems []error
	cfg := resource.Config{
		Logger: deps.Logger, Pool: deps.Pool, Registry: deps.Registry,
		Issuer: f.issuer, DiscoveryURL: f.discoveryURL, Audience: f.audience,
		TokenFormat:           resource.TokenFormat(f.tokenFormat),
		IntrospectionClientID: f.introspectionID, IntrospectionClientSecret: f.introspectionSecret,
		SingleUseTokens: f.singleUse, AllowNonNetworkAuthentication: f.allowNonNetwork,
		RateLimit: limitOrOff(f.rateLimit), RateBurst: f.rateBurst, MaxBodyBytes: f.maxBodyBytes,
		ClockSkew: f.clockSkew, RevocationMaxStaleness: f.revocationMaxStaleness,
		MaxFailedVerifies: int(limitOrOff(float64(f.maxFailedVerifies))),
	}
	if cfg.Issuer == "" {
		cfg.Issuer = shared.issuer
	}
	if f.clockSkew == 0 { // --resource-clock-skew 0s: none (resource.Config's 0 is its default, 30 s)
		cfg.ClockSkew = resource.NoClockSkew
	}
	cfg.TokenFormat = f.format(shared.authzFormat)
	if cfg.TokenFormat == resource.FormatJWT || cfg.TokenFormat == resource.FormatJWTDirect {
		if keys, err := resourceKeyStore(deps, shared.key, shared.keyErr); err != nil {
			problems = append(problems, err)
		} else {
			cfg.DecryptionKeys = decryptionKeys(keys, cfg.TokenFormat)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	s, err := resource.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &server{name: "resource", addr: f.addr, handler: s.Handler(), close: s.Close,
		ready: map[string]httpx.Check{"tokens": s.Ready}}, nil
}

// format is the token format accepted: --resource-token-format, or, served
// with the authorization server and left at its default, the one that server
// issues (authzFormat, its --access-token-format).
// Both servers name the formats alike (jwt-dir, jwt, opaque); a name authz
// does not know stops authz's own build first.
func (f *resourceFlags) format(authzFormat string) resource.TokenFormat {
	if authzFormat != "" && f.tokenFormat == string(resource.FormatJWTDirect) {
		return resource.TokenFormat(authzFormat)
	}
	return resource.TokenFormat(f.tokenFormat)
}

// limitOrOff maps a limit flag's 0 ("no limit") to resource.NoLimit (0 is
// resource.Config's default).
func limitOrOff(v float64) float64 {
	if v == 0 {
		return resource.NoLimit
	}
	return v
}

// resourceKeyStore opens the key store with the resource secrets key alone
// (key, or why there is none: keyErr).
func resourceKeyStore(deps serveDeps, key []byte, keyErr error) (*keystore.Store, error) {
	if keyErr != nil {
		return nil, keyErr
	}
	keys, err := keystore.Open(deps.Pool, keystore.Secrets{Resource: key})
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	return keys, nil
}

// decryptionKeys reads the resource server's key of its token format from
// the key store: the ECDH-ES private key of nested tokens (jwt) or the
// shared key of direct ones (jwt-dir). It may be missing (the authorization
// server creates it on its first start); the resource server retries until
// it is there.
func decryptionKeys(keys *keystore.Store, format resource.TokenFormat) resource.KeySource {
	return func(ctx context.Context) ([]jose.JSONWebKey, error) {
		if err := keys.Refresh(ctx); err != nil {
			return nil, err
		}
		if format == resource.FormatJWTDirect {
			kid, key, err := keys.DirectKey(ctx)
			if err != nil {
				return nil, err
			}
			return []jose.JSONWebKey{{Key: key, KeyID: kid, Algorithm: string(jose.DIRECT)}}, nil
		}
		enc, err := keys.EncryptionKey(ctx)
		if err != nil {
			return nil, err
		}
		return []jose.JSONWebKey{enc}, nil
	}
}
