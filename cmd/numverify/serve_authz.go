package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/contract"
	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/network"
)

// authzFlags are the authorization server's settings.
type authzFlags struct {
	addr                    string
	clientAddressFrom       string
	clientPortHeader        string
	accessTokenFormat       string
	idTokenAlg              string
	accessTokenLifetime     time.Duration
	accessTokenAudience     stringList
	authorizeCodeLifetime   time.Duration
	idTokenLifetime         time.Duration
	refreshTokenLifetime    time.Duration
	rateLimitPerIP          float64
	rateLimitPerIPBurst     int
	rateLimitPerDevice      float64
	rateLimitPerDeviceBurst int
	rateLimitPerClient      float64
	rateLimitPerClientBurst int
	rateLimitAuthFailures   float64
	rateLimitAuthFailBurst  int
	clientCacheTTL          time.Duration
	playground              bool
	purge                   purgeFlags
}

// authzShared is what the authorization server reads of the settings
// `serve` shares between components.
type authzShared struct {
	issuer         string
	trustedProxies []string
	keys           serveKeys
	purgeClockSkew time.Duration // margin of the purge on revocations and used jtis
}

// defaultClientCacheTTL is how long the authorization server keeps a client
// it has read; a client deleted by another process stays usable that long.
const defaultClientCacheTTL = 5 * time.Second

// register defines the authorization server's own flags (`serve` defines
// those it shares: --issuer, --trusted-proxies, the secrets keys).
func (f *authzFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "authz-addr", ":9090", "listen address of the authorization server")
	fs.StringVar(&f.clientAddressFrom, "client-address-from", authz.AddressFromPeer,
		"the one source of the device's address: peer (the TCP connection), proxy-protocol (PROXY v1/v2 header from the --trusted-proxies on the authz listener), forwarded (Forwarded) or x-forwarded-for (X-Forwarded-For); every source but peer needs --trusted-proxies")
	fs.StringVar(&f.clientPortHeader, "client-port-header", "",
		"header in which the nearest trusted proxy sets the device's source port (e.g. X-Real-Port from nginx's $remote_port), with --client-address-from forwarded or x-forwarded-for; never X-Forwarded-Port")
	fs.StringVar(&f.accessTokenFormat, "access-token-format", authz.FormatJWTDirect,
		"access token format: jwt-dir (encrypted with the key the resource servers share, kept in Postgres: an AEAD tag, no public-key work), "+
			"jwt (signed, then encrypted to the resource server: four P-256 operations a token, and a resource server that holds nothing able to mint one) or opaque")
	fs.StringVar(&f.idTokenAlg, "id-token-alg", "", "obsolete and ignored (a warning at start): each client's registration names its ID token algorithm (numverify client create --id-token-alg); access tokens of the jwt format are always signed with ES256")
	fs.DurationVar(&f.accessTokenLifetime, "access-token-lifetime", authz.DefaultAccessTokenLifetime, "access token lifetime")
	fs.Var(&f.accessTokenAudience, "access-token-audience", "aud of JWT access tokens (repeatable; default "+contract.DefaultAudience+")")
	fs.DurationVar(&f.authorizeCodeLifetime, "authz-code-lifetime", authz.DefaultAuthorizeCodeLifetime, "authorization code lifetime")
	fs.DurationVar(&f.idTokenLifetime, "id-token-lifetime", authz.DefaultIDTokenLifetime, "ID token lifetime")
	fs.DurationVar(&f.refreshTokenLifetime, "refresh-token-lifetime", authz.DefaultRefreshTokenLifetime, "refresh token lifetime (refresh tokens are never issued with Number Verification scopes)")
	fs.Float64Var(&f.rateLimitPerIP, "authz-rate-limit-per-ip", authz.DefaultRateLimitPerIP,
		"requests per second to /authorize allowed from each source address (IPv6: each /64), before the network is asked; generous, as subscribers behind one CGNAT address share it (0: no limit)")
	fs.IntVar(&f.rateLimitPerIPBurst, "authz-rate-limit-per-ip-burst", authz.DefaultRateLimitPerIPBurst, "burst of --authz-rate-limit-per-ip (0: the rate, rounded up)")
	fs.Float64Var(&f.rateLimitPerDevice, "authz-rate-limit-per-device", authz.DefaultRateLimitPerDevice,
		"logins per second at /authorize allowed for each client from each subscriber session (its address and, behind CGNAT, port block), once the network has resolved it (0: no limit)")
	fs.IntVar(&f.rateLimitPerDeviceBurst, "authz-rate-limit-per-device-burst", authz.DefaultRateLimitPerDeviceBurst, "burst of --authz-rate-limit-per-device (0: the rate, rounded up)")
	fs.Float64Var(&f.rateLimitPerClient, "authz-rate-limit-per-client", authz.DefaultRateLimitPerClient,
		"requests per second to /token allowed for each client, counted once it has authenticated (0: no limit)")
	fs.IntVar(&f.rateLimitPerClientBurst, "authz-rate-limit-per-client-burst", authz.DefaultRateLimitPerClientBurst, "burst of --authz-rate-limit-per-client (0: the rate, rounded up)")
	fs.Float64Var(&f.rateLimitAuthFailures, "authz-rate-limit-auth-failures-per-ip", authz.DefaultRateLimitAuthFailuresPerIP,
		"failed client authentications per second at /token allowed from each source address; past them the address is refused before its request is read (0: no limit)")
	fs.IntVar(&f.rateLimitAuthFailBurst, "authz-rate-limit-auth-failures-per-ip-burst", authz.DefaultRateLimitAuthFailuresPerIPBurst, "burst of --authz-rate-limit-auth-failures-per-ip (0: the rate, rounded up)")
	fs.DurationVar(&f.clientCacheTTL, "authz-client-cache-ttl", defaultClientCacheTTL, "how long the authorization server keeps a client in memory; a client deleted by another process is still accepted for up to this long (0: no cache)")
	fs.BoolVar(&f.playground, "playground", false,
		"DEVELOPMENT ONLY: log in by login_hint=tel:+… at /authorize without the network; such tokens (amr playground) are refused by the resource server unless --resource-allow-non-network-auth")
	f.purge.register(fs)
}

// config is the authorization server's configuration, every problem of the
// settings reported at once.
func (f *authzFlags) config(shared authzShared) (authz.Config, error) {
	var problems []error
	keys := shared.keys
	if keys.secretsErr != nil {
		problems = append(problems, keys.secretsErr)
	} else if keys.resourceErr != nil {
		problems = append(problems, keys.resourceErr)
	}
	proxies, err := authz.ParseTrustedProxies(shared.trustedProxies)
	if err != nil {
		problems = append(problems, fmt.Errorf("--trusted-proxies: %w", err))
	}
	cfg := authz.Config{
		Issuer:                shared.issuer,
		TrustedProxies:        proxies,
		ClientAddressFrom:     f.clientAddressFrom,
		ClientPortHeader:      f.clientPortHeader,
		AccessTokenFormat:     f.accessTokenFormat,
		AccessTokenAudience:   f.accessTokenAudience,
		AccessTokenLifetime:   f.accessTokenLifetime,
		AuthorizeCodeLifetime: f.authorizeCodeLifetime,
		IDTokenLifetime:       f.idTokenLifetime,
		RefreshTokenLifetime:  f.refreshTokenLifetime,
		SecretsKey:            keys.secrets,
		Playground:            f.playground,

		// On the command line 0 turns a limit off; in authz.Config 0 is the default.
		RateLimitPerIP:                  rateOrOff(f.rateLimitPerIP),
		RateLimitPerIPBurst:             f.rateLimitPerIPBurst,
		RateLimitPerDevice:              rateOrOff(f.rateLimitPerDevice),
		RateLimitPerDeviceBurst:         f.rateLimitPerDeviceBurst,
		RateLimitPerClient:              rateOrOff(f.rateLimitPerClient),
		RateLimitPerClientBurst:         f.rateLimitPerClientBurst,
		RateLimitAuthFailuresPerIP:      rateOrOff(f.rateLimitAuthFailures),
		RateLimitAuthFailuresPerIPBurst: f.rateLimitAuthFailBurst,
	}.WithDefaults()
	check := cfg
	if keys.secrets == nil { // already reported; check the rest
		check.SecretsKey = make([]byte, keystore.SecretsKeyLength)
	}
	if err := check.Validate(); err != nil {
		problems = append(problems, err)
	}
	if f.clientCacheTTL < 0 {
		problems = append(problems, fmt.Errorf("--authz-client-cache-ttl %s: want 0 or more", f.clientCacheTTL))
	}
	if err := f.purge.validate(); err != nil {
		problems = append(problems, err)
	}
	return cfg, errors.Join(problems...)
}

// build wires the authorization server: key store, fosite store, network
// resolver, all on the shared pool.
func (f *authzFlags) build(ctx context.Context, deps serveDeps, shared authzShared) (*server, error) {
	cfg, err := f.config(shared)
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	// Signing keys sealed with the secrets key; the resource server's keys
	// (which this server makes, and opens its own tokens with) with the
	// resource secrets key.
	keys, err := keystore.Open(deps.Pool, keystore.Secrets{Authz: shared.keys.secrets, Resource: shared.keys.resource})
	if err != nil {
		return nil, fmt.Errorf("authz: key store: %w", err)
	}
	// Makes whatever key is missing: a signing key of each algorithm (a
	// database from before keys by job gets its ES256 or RS256 one here), the
	// encryption and direct keys.
	if err := keys.EnsureKeys(ctx); err != nil {
		return nil, fmt.Errorf("authz: keys: %w", err)
	}
	if f.idTokenAlg != "" {
		deps.Logger.Warn(obsoleteIDTokenAlgMessage, "id_token_alg", f.idTokenAlg)
	}
	if cfg.Playground {
		deps.Logger.Warn(playgroundWarning)
	}
	// The store `client create` makes secrets with; fosite compares them
	// with its hasher.
	st, err := newClientStore(deps.Pool, shared.keys.secrets, store.WithClientCache(f.clientCacheTTL))
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	resolver, err := network.NewStore(deps.Pool, network.Pools{})
	if err != nil {
		return nil, fmt.Errorf("authz: network resolver: %w", err)
	}
	operatorTokens, redeemPool, err := openOperatorTokens(ctx, deps)
	if err != nil {
		return nil, err
	}
	srv, err := authz.New(cfg, authz.Deps{
		Store: st, Keys: keys, Resolver: resolver,
		OperatorTokens: operatorTokens,
		Logger:         deps.Logger, Registerer: deps.Registry,
	})
	if err != nil {
		redeemPool.Close()
		return nil, err
	}
	return &server{
		name:         "authz",
		addr:         f.addr,
		handler:      srv.Handler(),
		wrapListener: proxyProtocolListener(cfg),
		background:   f.purge.purger(deps, cfg.AccessTokenLifetime, shared.purgeClockSkew),
		close:        redeemPool.Close,
		ready:        map[string]httpx.Check{"signing-key": signingKeysReady(keys)},
	}, nil
}

// openOperatorTokens opens the store operator tokens are redeemed from, on
// a pool of its own. They are redeemed inside the token endpoint's
// transaction, which already holds a connection of the shared pool: from
// that pool, as many concurrent JWT-bearer exchanges as it has connections
// would each wait for a second one, forever. The redemption (one autocommit
// UPDATE) draws from a small pool of its own instead.
func openOperatorTokens(ctx context.Context, deps serveDeps) (*network.Store, *pgxpool.Pool, error) {
	store, pool, err := openNetworkStoreAlone(ctx, deps, "authz-redeem", operatorTokenPoolSize)
	if err != nil {
		return nil, nil, fmt.Errorf("authz: operator tokens: %w", err)
	}
	return store, pool, nil
}

// proxyProtocolListener reads the PROXY header of the trusted proxies on
// the authz listener, with --client-address-from proxy-protocol (else nil).
func proxyProtocolListener(cfg authz.Config) func(net.Listener, time.Duration) net.Listener {
	if cfg.ClientAddressFrom != authz.AddressFromProxyProtocol {
		return nil
	}
	return func(l net.Listener, timeout time.Duration) net.Listener {
		return httpx.ProxyProtocolListener(l, cfg.TrustedProxies, timeout)
	}
}

// signingKeysReady is the readiness check that the store holds an active
// signing key of each algorithm.
func signingKeysReady(keys *keystore.Store) httpx.Check {
	return func(ctx context.Context) error {
		for _, alg := range contract.SigningAlgorithms {
			if _, err := keys.SigningKey(ctx, alg); err != nil {
				return err
			}
		}
		return nil
	}
}

// operatorTokenPoolSize is the connections of the operator-token
// redemption pool (openOperatorTokens).
const operatorTokenPoolSize = 4

// rateOrOff maps a rate flag's 0 ("no limit") to authz.NoRateLimit (a
// negative rate is off too).
func rateOrOff(rate float64) float64 {
	if rate == 0 {
		return authz.NoRateLimit
	}
	return rate
}

// obsoleteIDTokenAlgMessage is logged when --id-token-alg
// (NUMVERIFY_ID_TOKEN_ALG) is still set.
const obsoleteIDTokenAlgMessage = "--id-token-alg (NUMVERIFY_ID_TOKEN_ALG) is obsolete and ignored: " +
	"each client's ID tokens are signed with the algorithm of its registration " +
	"(`numverify client create --id-token-alg RS256|ES256`, ES256 by default), access tokens always with ES256; " +
	"remove the setting"

// playgroundWarning is logged at start with --playground.
const playgroundWarning = "PLAYGROUND MODE IS ON (--playground): /authorize logs in ANY phone number given as login_hint=tel:+…, " +
	"without the mobile network; never run this in production. Its tokens carry amr [\"playground\"] and are refused by the " +
	"resource server unless --resource-allow-non-network-auth"
