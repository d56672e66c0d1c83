package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/numverify/numverify/internal/httpx"
)

// serveDeps is what `serve` hands every component: the shared pool, logger
// and metrics registry (for the component's own metrics).
type serveDeps struct {
	Pool        *pgxpool.Pool
	Logger      *slog.Logger
	DatabaseURL string
	Registry    prometheus.Registerer
}

// server is what a component contributes to `serve`: an HTTP handler and
// where to listen, plus work to stop after the HTTP server has drained.
type server struct {
	name     string
	addr     string       // listen address, e.g. ":9090"
	listener net.Listener // when set, used instead of addr (demo, tests)
	handler  http.Handler
	close    func()                 // optional
	ready    map[string]httpx.Check // optional readiness checks beyond Postgres (keys loaded…)
	conns    httpx.ConnLimit        // connections per peer address (set by observe)

	// wrapListener, optional, wraps the listener (the PROXY protocol); its
	// argument is the time allowed to read request headers.
	wrapListener func(l net.Listener, headerTimeout time.Duration) net.Listener

	// background, optional, is work that runs while the server serves (the
	// purge timer); its context ends at shutdown.
	background func(ctx context.Context)

	// companions, optional, are further servers the component runs on their
	// own addresses (the network's entitlement server).
	companions []*server
}

// buildServer constructs a component's server once flags are parsed.
type buildServer func(ctx context.Context, deps serveDeps) (*server, error)

// httpFlags are the HTTP server settings every server shares.
type httpFlags struct {
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	shutdownTimeout   time.Duration
	shutdownDrain     time.Duration
	metricsAddr       string
	metricsToken      string
	maxConnsPerAddr   int
	trustedProxies    func() []netip.Prefix // exempt from maxConnsPerAddr
	draining          atomic.Bool           // set on SIGTERM: /readyz fails, responses close their connection
}

func addHTTPFlags(fs *flag.FlagSet) *httpFlags {
	h := &httpFlags{}
	fs.DurationVar(&h.readHeaderTimeout, "http-read-header-timeout", 5*time.Second, "time allowed to read request headers")
	fs.DurationVar(&h.readTimeout, "http-read-timeout", 10*time.Second, "time allowed to read a whole request")
	fs.DurationVar(&h.writeTimeout, "http-write-timeout", 15*time.Second, "time allowed to write a response")
	fs.DurationVar(&h.idleTimeout, "http-idle-timeout", 60*time.Second, "keep-alive idle timeout")
	fs.DurationVar(&h.shutdownTimeout, "shutdown-timeout", 20*time.Second, "on SIGTERM, time allowed for in-flight requests to finish")
	fs.DurationVar(&h.shutdownDrain, "shutdown-drain", time.Second,
		"on SIGTERM, keep serving this long first, failing /readyz and closing each connection after its response, so keep-alive clients leave before the listener closes")
	fs.StringVar(&h.metricsAddr, "metrics-addr", "127.0.0.1:9100",
		"serve /metrics (unauthenticated) on this separate address, loopback by default; e.g. :9100 where Prometheus scrapes the pod, empty for none")
	fs.StringVar(&h.metricsToken, "metrics-token", "", fmt.Sprintf(
		"also serve /metrics on each server's own port, to requests with this bearer token (at least %d characters); empty: never there", httpx.MinMetricsTokenLength))
	fs.IntVar(&h.maxConnsPerAddr, "max-conns-per-address", httpx.DefaultMaxConnsPerAddress,
		"most concurrent connections one peer address may hold on each server (more are closed at once); the --trusted-proxies are exempt; 0: no cap")
	h.trustedProxies = func() []netip.Prefix { return parsePrefixes(fs.Lookup("trusted-proxies")) }
	return h
}

// validate reports every problem of the HTTP settings at once.
func (h *httpFlags) validate() error {
	var problems []error
	if h.metricsToken != "" && len(h.metricsToken) < httpx.MinMetricsTokenLength {
		problems = append(problems, fmt.Errorf("--metrics-token (NUMVERIFY_METRICS_TOKEN) must be at least %d characters (openssl rand -hex 16)", httpx.MinMetricsTokenLength))
	}
	if h.maxConnsPerAddr < 0 {
		problems = append(problems, errors.New("--max-conns-per-address must not be negative"))
	}
	return errors.Join(problems...)
}

// parsePrefixes reads a CIDR list flag (--trusted-proxies: repeatable or
// comma-separated CIDRs or addresses) when the command has it; what does
// not parse is left for its owner to report.
func parsePrefixes(f *flag.Flag) []netip.Prefix {
	if f == nil {
		return nil
	}
	var prefixes []netip.Prefix
	for _, v := range strings.FieldsFunc(f.Value.String(), func(r rune) bool { return r == ',' || r == ' ' }) {
		if p, err := netip.ParsePrefix(v); err == nil {
			prefixes = append(prefixes, p.Masked())
		} else if a, err := netip.ParseAddr(v); err == nil {
			prefixes = append(prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return prefixes
}

func serveCommand() command {
	return serveComponents("serve", "run the authorization, resource and network servers in one process",
		authzServeFlags, resourceServeFlags, networkServeFlags)
}

func serveAuthzCommand() command {
	return serveComponents("serve authz", "run the OAuth2/OpenID Connect authorization server (default :9090)", authzServeFlags)
}

func serveResourceCommand() command {
	return serveComponents("serve resource", "run the Number Verification resource server (default :9091)", resourceServeFlags)
}

func serveNetworkCommand() command {
	return serveComponents("serve network", "run the simulated mobile network's admin API (default :9092)", networkServeFlags)
}

func serveComponents(name, summary string, components ...func(*flag.FlagSet) buildServer) command {
	return command{name: name, summary: summary,
		setup: func(fs *flag.FlagSet) func(context.Context, []string) error {
			db := addDatabaseFlags(fs)
			logs := addLogFlags(fs)
			web := addHTTPFlags(fs)
			builders := make([]buildServer, len(components))
			for i, register := range components {
				builders[i] = register(fs)
			}
			return func(ctx context.Context, args []string) error {
				if err := noArgs(args); err != nil {
					return err
				}
				if err := web.validate(); err != nil {
					return err
				}
				logger := logs.logger()
				pool, err := db.open(ctx, name, true)
				if err != nil {
					return err
				}
				defer pool.Close()
				registry := newRegistry(pool)
				deps := serveDeps{Pool: pool, Logger: logger, DatabaseURL: db.url, Registry: registry}
				var servers []*server
				for _, build := range builders {
					s, err := build(ctx, deps)
					if err != nil {
						closeServers(servers)
						return err
					}
					servers = append(servers, s)
					servers = append(servers, s.companions...)
				}
				return runServers(ctx, logger, web, observe(servers, pool, registry, logger, web), pool)
			}
		}}
}

// newRegistry is the process's Prometheus registry: Go runtime, process and
// Postgres pool statistics; components add their own.
func newRegistry(pool *pgxpool.Pool) *prometheus.Registry {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpx.NewPoolCollector(pool))
	return registry
}

// observe wraps every server with the access log and metrics, mounts
// /healthz and /readyz on it, and /metrics only behind --metrics-token; with
// --metrics-addr it adds a server for /metrics alone. It sets each server's
// cap on connections per peer address.
func observe(servers []*server, pool *pgxpool.Pool, registry *prometheus.Registry, logger *slog.Logger, web *httpFlags) []*server {
	metrics := httpx.NewMetrics(registry)
	var onServerPorts http.Handler
	if web.metricsToken != "" {
		onServerPorts = httpx.MetricsHandler(registry, web.metricsToken)
	}
	var exempt []netip.Prefix
	if web.trustedProxies != nil {
		exempt = web.trustedProxies()
	}
	for _, s := range servers {
		s.conns = httpx.ConnLimit{PerAddress: web.maxConnsPerAddr, Exempt: exempt, Rejected: metrics.RejectedConnections(s.name)}
		checks := map[string]httpx.Check{"postgres": httpx.PoolCheck(pool), "shutdown": web.notDraining}
		for name, check := range s.ready {
			checks[name] = check
		}
		s.handler = httpx.Mount(httpx.Observe(s.name, s.handler, logger, metrics), checks, onServerPorts)
	}
	if web.metricsAddr != "" {
		servers = append(servers, &server{name: "metrics", addr: web.metricsAddr,
			handler: httpx.Mount(http.NotFoundHandler(), nil, httpx.MetricsHandler(registry, ""))})
	}
	return servers
}

func closeServers(servers []*server) {
	for _, s := range servers {
		if s.close != nil {
			s.close()
		}
	}
}

// notDraining is the readiness check that fails once shutdown has begun.
func (h *httpFlags) notDraining(context.Context) error {
	if h.draining.Load() {
		return errors.New("shutting down")
	}
	return nil
}

// closeWhenDraining answers with Connection: close once shutdown has begun,
// so a keep-alive client opens its next request on a new connection (to
// another replica) instead of racing the close of an idle one.
func closeWhenDraining(web *httpFlags, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if web.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// runServers serves until ctx is cancelled (SIGTERM, SIGINT), then stops
// accepting, lets in-flight requests finish within the shutdown timeout, and
// stops each component's background work.
func runServers(ctx context.Context, logger *slog.Logger, web *httpFlags, servers []*server, pool *pgxpool.Pool) error {
	defer closeServers(servers)
	httpServers := make([]*http.Server, len(servers))
	errs := make(chan error, len(servers))
	for i, s := range servers {
		l := s.listener
		if l == nil {
			var err error
			if l, err = net.Listen("tcp", s.addr); err != nil {
				for _, started := range httpServers[:i] {
					started.Close()
				}
				return fmt.Errorf("%s: listen: %w", s.name, err)
			}
		}
		l = httpx.LimitConnections(l, s.conns) // on the TCP peer, under any PROXY header
		if s.wrapListener != nil {
			l = s.wrapListener(l, web.readHeaderTimeout)
		}
		hs := &http.Server{
			Handler:           closeWhenDraining(web, s.handler),
			ReadHeaderTimeout: web.readHeaderTimeout,
			ReadTimeout:       web.readTimeout,
			WriteTimeout:      web.writeTimeout,
			IdleTimeout:       web.idleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		httpServers[i] = hs
		logger.Info("listening", "server", s.name, "addr", l.Addr().String())
		go func(name string) {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}(s.name)
	}
	stopBackground := startBackground(ctx, servers)
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "drain", web.shutdownDrain.String(), "timeout", web.shutdownTimeout.String())
		web.draining.Store(true)
		select {
		case <-time.After(web.shutdownDrain):
		case runErr = <-errs:
		}
	case runErr = <-errs:
		logger.Error("server failed", "err", runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), web.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, hs := range httpServers {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			if err := hs.Shutdown(shutdownCtx); err != nil {
				logger.Warn("shutdown incomplete", "server", name, "err", err)
			}
		}(servers[i].name)
	}
	wg.Wait()
	stopBackground()
	if pool != nil {
		pool.Close()
	}
	return runErr
}

// startBackground starts each server's background work; the function it
// returns ends it and waits for it (before the pool closes).
func startBackground(ctx context.Context, servers []*server) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range servers {
		if s.background != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.background(ctx)
			}()
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
