package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/numverify/numverify/authz"
	"github.com/numverify/numverify/internal/httpx"
	"github.com/numverify/numverify/internal/janitor"
	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/network"
)

// serveDeps is what `serve` hands every component: the shared pool (and its
// URL, for a component that needs a pool of its own), logger and metrics
// registry (for the component's own metrics).
type serveDeps struct {
	Pool        *pgxpool.Pool
	Logger      *slog.Logger
	DatabaseURL string
	Registry    prometheus.Registerer
}

// parsePrefixes reads --trusted-proxies (CIDRs or addresses); what does not
// parse is left for the authorization server to report.
func parsePrefixes(values []string) []netip.Prefix {
	var prefixes []netip.Prefix
	for _, v := range values {
		if p, err := netip.ParsePrefix(v); err == nil {
			prefixes = append(prefixes, p.Masked())
		} else if a, err := netip.ParseAddr(v); err == nil {
			prefixes = append(prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return prefixes
}

// serveCommand is `numverify serve` and `serve authz|resource|network`: the
// components it runs (nil: not served by this command), the settings every
// server has, and those several components read, each registered once.
type serveCommand struct {
	name     string // the command's words, the pool's application name
	db       databaseFlags
	logs     logFlags
	web      httpFlags
	shared   sharedFlags
	authz    *authzFlags
	resource *resourceFlags
	network  *networkFlags
}

// sharedFlags are the settings of `serve` that more than one component reads.
type sharedFlags struct {
	issuer             string         // the authorization server's iss; the resource server's default --resource-issuer
	secretsKey         secretsKeyFlag // with the authorization server only: resource servers never hold it
	resourceSecretsKey string         // with the authorization or the resource server
	trustedProxies     stringList     // with the authorization server: its address sources, exempt from --max-conns-per-address
}

// newServeCommand is the serve command of name running the components
// given (non-nil).
func newServeCommand(name string, authzServer *authzFlags, resourceServer *resourceFlags, networkServer *networkFlags) *serveCommand {
	return &serveCommand{name: name, authz: authzServer, resource: resourceServer, network: networkServer}
}

func (c *serveCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	c.logs.register(fs)
	c.web.register(fs)
	c.registerServers(fs)
}

// registerServers registers the components' flags and the ones they share.
func (c *serveCommand) registerServers(fs *flag.FlagSet) {
	issuer := defaultResourceIssuer
	if c.authz != nil {
		issuer = authz.DefaultIssuer
		c.shared.secretsKey.register(fs)
		fs.Var(&c.shared.trustedProxies, "trusted-proxies", "CIDRs of the proxies or L4 balancers whose word on the client's address (--client-address-from) is believed; nothing else may send from them (repeatable or comma-separated)")
	}
	if c.authz != nil || c.resource != nil {
		fs.StringVar(&c.shared.issuer, "issuer", issuer, "public base URL of the authorization server (the iss of its tokens)")
		registerResourceSecretsKey(fs, &c.shared.resourceSecretsKey)
	}
	if c.authz != nil {
		c.authz.register(fs)
	}
	if c.resource != nil {
		c.resource.register(fs)
	}
	if c.network != nil {
		c.network.register(fs)
	}
}

// Run builds the components on one pool and serves until ctx ends.
func (c *serveCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if err := c.web.validate(); err != nil {
		return err
	}
	tuneGC()
	logger := c.logs.logger()
	pool, err := c.db.open(ctx, c.name, true)
	if err != nil {
		return err
	}
	defer pool.Close()
	registry := newRegistry(pool)
	servers, err := c.build(ctx, serveDeps{Pool: pool, Logger: logger, DatabaseURL: c.db.url, Registry: registry})
	if err != nil {
		return err
	}
	set := newServerSet(logger, c.web, servers)
	set.observe(pool, registry, parsePrefixes(c.shared.trustedProxies))
	return set.run(ctx, pool)
}

// build constructs the components (authz, resource, network, in that
// order) and their companions; on an error it closes what it built.
func (c *serveCommand) build(ctx context.Context, deps serveDeps) ([]*server, error) {
	keys := c.shared.keys(c.authz != nil)
	var servers []*server
	var err error
	if c.authz != nil {
		s, buildErr := c.authz.build(ctx, deps, authzShared{issuer: c.shared.issuer, trustedProxies: c.shared.trustedProxies,
			keys: keys, purgeClockSkew: c.purgeClockSkew()})
		if servers, err = appendServer(servers, s, buildErr); err != nil {
			return nil, err
		}
	}
	if c.resource != nil {
		s, buildErr := c.resource.build(ctx, deps, resourceShared{issuer: c.shared.issuer, key: keys.resource, keyErr: keys.resourceErr,
			authzFormat: c.authzFormat()})
		if servers, err = appendServer(servers, s, buildErr); err != nil {
			return nil, err
		}
	}
	if c.network != nil {
		s, buildErr := c.network.build(deps)
		if servers, err = appendServer(servers, s, buildErr); err != nil {
			return nil, err
		}
	}
	return servers, nil
}

// appendServer appends s and its companions to servers, or when s failed to
// build (err) closes servers and returns err.
func appendServer(servers []*server, s *server, err error) ([]*server, error) {
	if err != nil {
		closeServers(servers)
		return nil, err
	}
	return append(append(servers, s), s.companions...), nil
}

// purgeClockSkew is the margin of the authorization server's purge on
// revocations and used jtis: the resource server's --resource-clock-skew
// when it is served beside it, else the largest a resource server accepts.
func (c *serveCommand) purgeClockSkew() time.Duration {
	if c.resource != nil && c.resource.clockSkew >= 0 {
		return c.resource.clockSkew
	}
	return janitor.MaxClockSkew
}

// authzFormat is the authorization server's --access-token-format, "" when
// it is not served: the resource server beside it accepts that format.
func (c *serveCommand) authzFormat() string {
	if c.authz == nil {
		return ""
	}
	return c.authz.accessTokenFormat
}

// serveKeys are the secrets keys, decoded once for every component.
type serveKeys struct {
	secrets, resource       []byte // secrets is nil where the authorization server is not served
	secretsErr, resourceErr error
}

// keys decodes --secrets-key (withSecretsKey: the authorization server is
// served) and --resource-secrets-key, derived from the secrets key when unset.
func (s *sharedFlags) keys(withSecretsKey bool) serveKeys {
	var k serveKeys
	if withSecretsKey {
		if k.secrets, k.secretsErr = s.secretsKey.key(); k.secretsErr != nil {
			k.resourceErr = k.secretsErr
			return k
		}
	}
	k.resource, k.resourceErr = resourceSecretsKey(s.resourceSecretsKey, k.secrets)
	return k
}

// newRegistry is the process's Prometheus registry: Go runtime, process and
// Postgres pool statistics; components add their own.
func newRegistry(pool *pgxpool.Pool) *prometheus.Registry {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpx.NewPoolCollector(pool, "shared"))
	return registry
}

// openNetworkStoreAlone opens a network store on a pool of its own of size
// connections, for a component that must not wait for the shared pool (the
// accounting server, the operator-token redemption), named "numverify-"+name
// in pg_stat_activity and pool=name in the metrics.
func openNetworkStoreAlone(ctx context.Context, deps serveDeps, name string, size int32) (*network.Store, *pgxpool.Pool, error) {
	pool, err := pg.Open(ctx, deps.DatabaseURL, pg.Options{MaxConns: size, ApplicationName: "numverify-" + name})
	if err != nil {
		return nil, nil, fmt.Errorf("pool %s: %w", name, err)
	}
	store, err := network.NewStore(pool, network.Pools{})
	if err == nil && deps.Registry != nil {
		err = deps.Registry.Register(httpx.NewPoolCollector(pool, name))
	}
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("pool %s: %w", name, err)
	}
	return store, pool, nil
}
