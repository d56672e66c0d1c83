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
	maxBodyBytes           int64
	clockSkew              time.Duration
	revocationMaxStaleness time.Duration
	secretsKey             *flag.Flag // shared with the authorization server: registered once
	sharedIssuer           *flag.Flag // --issuer: the authorization server's, or ours when served alone
	sharedFormat           *flag.Flag // --access-token-format, likewise
}

func resourceServeFlags(fs *flag.FlagSet) buildServer {
	f := &resourceFlags{}
	fs.StringVar(&f.addr, "resource-addr", ":9091", "listen address of the resource server")
	if fs.Lookup("issuer") == nil { // served without the authorization server
		fs.String("issuer", defaultResourceIssuer, "public base URL of the authorization server (the iss of its tokens)")
	}
	f.sharedIssuer = fs.Lookup("issuer")
	fs.StringVar(&f.issuer, "resource-issuer", "",
		"the authorization server whose tokens the resource server accepts (their iss; its discovery document gives the JWKS and introspection endpoint), when not --issuer")
	fs.StringVar(&f.discoveryURL, "resource-discovery-url", "", "where to fetch the authorization server's discovery document, when not at the issuer (e.g. an internal address)")
	fs.StringVar(&f.audience, "resource-audience", contract.DefaultAudience, "the aud access tokens must carry")
	fs.StringVar(&f.tokenFormat, "resource-token-format", string(resource.FormatJWT),
		"access token format: jwt (validated offline, nested or direct) or opaque (introspected); served together with authz, follows --access-token-format unless set")
	fs.StringVar(&f.introspectionID, "resource-introspection-client-id", "", "client id of the resource server at the introspection endpoint (opaque format)")
	fs.StringVar(&f.introspectionSecret, "resource-introspection-client-secret", "", "client secret of the resource server at the introspection endpoint (opaque format)")
	fs.BoolVar(&f.singleUse, "single-use-tokens", false, "accept each access token (by jti) for one successful call only, recorded in Postgres")
	fs.BoolVar(&f.allowNonNetwork, "resource-allow-non-network-auth", false,
		"accept tokens from logins that were not network-based (playground); otherwise 403 USER_NOT_AUTHENTICATED_BY_MOBILE_NETWORK")
	fs.Float64Var(&f.rateLimit, "resource-rate-limit", 0, "requests per second allowed to each client (0: no limit)")
	fs.IntVar(&f.rateBurst, "resource-rate-burst", 0, "burst allowed above --resource-rate-limit (0: the rate, at least 1)")
	fs.Int64Var(&f.maxBodyBytes, "resource-max-body-bytes", 4096, "largest request body accepted (413 beyond)")
	fs.DurationVar(&f.clockSkew, "resource-clock-skew", 30*time.Second, "leeway on token exp, nbf and iat")
	fs.DurationVar(&f.revocationMaxStaleness, "resource-revocation-max-staleness", 30*time.Second,
		"answer 503 when the revocation feed (Postgres LISTEN) has been down this long (0: keep answering)")
	if fs.Lookup("secrets-key") == nil {
		addSecretsKeyFlag(fs)
	}
	f.secretsKey = fs.Lookup("secrets-key")
	f.sharedFormat = fs.Lookup("access-token-format")
	return f.build
}

// build wires the resource server: its decryption keys from the key store
// (encrypted at rest with the secrets key), the shared pool, the registry.
func (f *resourceFlags) build(ctx context.Context, deps serveDeps) (*server, error) {
	var problems []error
	cfg := resource.Config{
		Logger: deps.Logger, Pool: deps.Pool, Registry: deps.Registry,
		Issuer: f.issuer, DiscoveryURL: f.discoveryURL, Audience: f.audience,
		TokenFormat:           resource.TokenFormat(f.tokenFormat),
		IntrospectionClientID: f.introspectionID, IntrospectionClientSecret: f.introspectionSecret,
		SingleUseTokens: f.singleUse, AllowNonNetworkAuthentication: f.allowNonNetwork,
		RateLimit: f.rateLimit, RateBurst: f.rateBurst, MaxBodyBytes: f.maxBodyBytes,
		ClockSkew: f.clockSkew, RevocationMaxStaleness: f.revocationMaxStaleness,
	}
	if cfg.Issuer == "" {
		cfg.Issuer = f.sharedIssuer.Value.String()
	}
	if f.clockSkew == 0 { // --resource-clock-skew 0s: none (resource.Config's 0 is its default, 30 s)
		cfg.ClockSkew = resource.NoClockSkew
	}
	// Served with the authorization server: follow its token format unless told otherwise.
	if f.tokenFormat == string(resource.FormatJWT) && f.sharedFormat != nil && f.sharedFormat.Value.String() == "opaque" {
		cfg.TokenFormat = resource.FormatOpaque
	}
	if cfg.TokenFormat == resource.FormatJWT {
		secretsKey, err := (&secretsKeyFlag{value: f.secretsKey.Value.String()}).key()
		if err != nil {
			problems = append(problems, err)
		} else if keys, err := keystore.New(deps.Pool, secretsKey); err != nil {
			problems = append(problems, fmt.Errorf("key store: %w", err))
		} else {
			cfg.DecryptionKeys = decryptionKeys(keys)
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

// decryptionKeys reads the resource server's keys from the key store: the
// ECDH-ES private key of nested tokens and the shared key of direct ones.
// Either may be missing (the authorization server creates them on its first
// start); the resource server retries until one is there.
func decryptionKeys(keys *keystore.Store) resource.KeySource {
	return func(ctx context.Context) ([]jose.JSONWebKey, error) {
		if err := keys.Refresh(ctx); err != nil {
			return nil, err
		}
		var out []jose.JSONWebKey
		var problems []error
		if enc, err := keys.EncryptionKey(ctx); err == nil {
			out = append(out, enc)
		} else {
			problems = append(problems, err)
		}
		if kid, key, err := keys.DirectKey(ctx); err == nil {
			out = append(out, jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.DIRECT)})
		} else {
			problems = append(problems, err)
		}
		if len(out) == 0 {
			return nil, errors.Join(problems...)
		}
		return out, nil
	}
}
