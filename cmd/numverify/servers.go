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
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/httpx"
)

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
}

func (h *httpFlags) register(fs *flag.FlagSet) {
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

// serverSet is the servers of one process while they run: their HTTP
// settings and whether shutdown has begun.
type serverSet struct {
	logger   *slog.Logger
	web      httpFlags
	servers  []*server
	draining atomic.Bool // set on SIGTERM: /readyz fails, responses close their connection
}

func newServerSet(logger *slog.Logger, web httpFlags, servers []*server) *serverSet {
	return &serverSet{logger: logger, web: web, servers: servers}
}

// observe wraps every server with the access log and metrics, mounts
// /healthz and /readyz on it, and /metrics only behind --metrics-token; with
// --metrics-addr it adds a server for /metrics alone. It sets each server's
// cap on connections per peer address, from which exempt are exempt.
func (set *serverSet) observe(pool *pgxpool.Pool, registry *prometheus.Registry, exempt []netip.Prefix) {
	metrics := httpx.NewMetrics(registry)
	var onServerPorts http.Handler
	if set.web.metricsToken != "" {
		onServerPorts = httpx.MetricsHandler(registry, set.web.metricsToken)
	}
	for _, s := range set.servers {
		s.conns = httpx.ConnLimit{PerAddress: set.web.maxConnsPerAddr, Exempt: exempt, Rejected: metrics.RejectedConnections(s.name)}
		checks := map[string]httpx.Check{"postgres": httpx.PoolCheck(pool), "shutdown": set.notDraining}
		for name, check := range s.ready {
			checks[name] = check
		}
		s.handler = httpx.Mount(httpx.Observe(s.name, s.handler, set.logger, metrics), checks, onServerPorts)
	}
	if set.web.metricsAddr != "" {
		set.servers = append(set.servers, &server{name: "metrics", addr: set.web.metricsAddr,
			handler: httpx.Mount(http.NotFoundHandler(), nil, httpx.MetricsHandler(registry, ""))})
	}
}

func closeServers(servers []*server) {
	for _, s := range servers {
		if s.close != nil {
			s.close()
		}
	}
}

// notDraining is the readiness check that fails once shutdown has begun.
func (set *serverSet) notDraining(context.Context) error {
	if set.draining.Load() {
		return errors.New("shutting down")
	}
	return nil
}

// closeWhenDraining answers with Connection: close once shutdown has begun,
// so a keep-alive client opens its next request on a new connection (to
// another replica) instead of racing the close of an idle one.
func (set *serverSet) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if set.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// run serves until ctx is cancelled (SIGTERM, SIGINT), then stops
// accepting, lets in-flight requests finish within the shutdown timeout, and
// stops each component's background work; then it closes pool (when set).
func (set *serverSet) run(ctx context.Context, pool *pgxpool.Pool) error {
	defer closeServers(set.servers)
	httpServers, errs, err := set.listen()
	if err != nil {
		return err
	}
	stopBackground := startBackground(ctx, set.servers)
	var runErr error
	select {
	case <-ctx.Done():
		set.logger.Info("shutting down", "drain", set.web.shutdownDrain.String(), "timeout", set.web.shutdownTimeout.String())
		set.draining.Store(true)
		select {
		case <-time.After(set.web.shutdownDrain):
		case runErr = <-errs:
		}
	case runErr = <-errs:
		set.logger.Error("server failed", "err", runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), set.web.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, hs := range httpServers {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			if err := hs.Shutdown(shutdownCtx); err != nil {
				set.logger.Warn("shutdown incomplete", "server", name, "err", err)
			}
		}(set.servers[i].name)
	}
	wg.Wait()
	stopBackground()
	if pool != nil {
		pool.Close()
	}
	return runErr
}

// listen starts serving every server; a server that stops on its own sends
// its error to errs.
func (set *serverSet) listen() ([]*http.Server, <-chan error, error) {
	httpServers := make([]*http.Server, len(set.servers))
	errs := make(chan error, len(set.servers))
	for i, s := range set.servers {
		l := s.listener
		if l == nil {
			var err error
			if l, err = net.Listen("tcp", s.addr); err != nil {
				for _, started := range httpServers[:i] {
					started.Close()
				}
				return nil, nil, fmt.Errorf("%s: listen: %w", s.name, err)
			}
		}
		l = httpx.LimitConnections(l, s.conns) // on the TCP peer, under any PROXY header
		if s.wrapListener != nil {
			l = s.wrapListener(l, set.web.readHeaderTimeout)
		}
		hs := &http.Server{
			Handler:           set.closeWhenDraining(s.handler),
			ReadHeaderTimeout: set.web.readHeaderTimeout,
			ReadTimeout:       set.web.readTimeout,
			WriteTimeout:      set.web.writeTimeout,
			IdleTimeout:       set.web.idleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(set.logger.Handler(), slog.LevelWarn),
		}
		httpServers[i] = hs
		set.logger.Info("listening", "server", s.name, "addr", l.Addr().String())
		go func(name string) {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}(s.name)
	}
	return httpServers, errs, nil
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
