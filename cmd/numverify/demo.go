package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/authz/store"
	"github.com/numverify/numverify/internal/keystore"
	"github.com/numverify/numverify/internal/logging"
	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/internal/phone"
	"github.com/numverify/numverify/migrations"
	"github.com/numverify/numverify/network/entitlement"
	"github.com/numverify/numverify/network/radius"
	"github.com/numverify/numverify/sim"
)

// demoCommand is `numverify demo`: the whole silent verification working
// on this machine.
type demoCommand struct {
	db      databaseFlags
	verbose bool
}

func (c *demoCommand) register(fs *flag.FlagSet) {
	c.db.register(fs)
	fs.BoolVar(&c.verbose, "verbose", false, "also print the servers' logs (to stderr)")
}

func (c *demoCommand) Run(ctx context.Context, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if c.verbose {
		logger = logging.New(os.Stderr, "info", "text")
	}
	return runDemo(ctx, c.db.url, os.Stdout, logger)
}

// runDemo finds Postgres (the server of databaseURL, else a throwaway
// cluster), creates a database for the demo alone, starts the three servers
// in this process, registers a client and runs sim.RunDemo; everything it
// made is removed at the end.
func runDemo(ctx context.Context, databaseURL string, out io.Writer, logger *slog.Logger) error {
	fmt.Fprintln(out, "numverify demo: the CAMARA Number Verification flow, silent login from the mobile network")
	maintenance, where, stopCluster, err := demoPostgres(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer stopCluster()
	dbURL, dropDatabase, err := createDemoDatabase(ctx, maintenance)
	if err != nil {
		return err
	}
	defer dropDatabase()
	fmt.Fprintf(out, "  postgres: %s, database %s (dropped at exit)\n", where, pgDatabase(dbURL))
	if err := migrations.Up(dbURL); err != nil {
		return fmt.Errorf("migrate the demo database: %w", err)
	}
	pool, err := pg.Open(ctx, dbURL, pg.Options{ApplicationName: "numverify-demo"})
	if err != nil {
		return err
	}
	defer pool.Close()

	registry := newRegistry(pool)
	stack, err := startDemoStack(ctx, serveDeps{Pool: pool, Logger: logger, DatabaseURL: dbURL, Registry: registry}, registry)
	if err != nil {
		return err
	}
	defer stack.stop()
	fmt.Fprintf(out, "  authz     %s\n  resource  %s\n  network   %s (admin token %s)\n  radius    udp %s (RADIUS accounting, secret %s)\n",
		stack.issuer, stack.apiURL, stack.networkURL, sim.Mask(stack.adminToken), stack.radiusAddr, sim.Mask(stack.radiusSecret))

	redirect := "http://localhost:8080/callback"
	scopes := []string{"openid", "number-verification:verify", "number-verification:device-phone-number:read"}
	key, err := sim.GenerateClientKey()
	if err != nil {
		return err
	}
	clientID, err := registerDemoClient(ctx, pool, stack.secretsKey, redirect, scopes, key)
	if err != nil {
		return fmt.Errorf("register the demo client: %w", err)
	}
	fmt.Fprintf(out, "  client    %s (private_key_jwt, ES256 key %s; grants authorization_code, jwt-bearer, ciba), redirect URI %s\n",
		clientID, sim.Mask(key.KeyID), redirect)
	subscribers := []sim.DemoSubscriber{{MSISDN: "+33612345678"}, {MSISDN: "+33698765432"}}
	wifiSIM, err := provisionDemoSIM(ctx, pool, subscribers[0].MSISDN)
	if err != nil {
		return fmt.Errorf("provision the demo SIM: %w", err)
	}
	fmt.Fprintf(out, "  entitlement %s (TS.43, EAP-AKA), SIM %s provisioned for %s\n", stack.entitlementURL,
		sim.Mask(wifiSIM.IMSI), phone.Mask(subscribers[0].MSISDN))

	base := demoAddressBase()
	subscribers[0].Addr, subscribers[1].Addr = base.Next(), base.Next().Next()
	return sim.RunDemo(ctx, sim.DemoConfig{
		RP: sim.RPConfig{Issuer: stack.issuer, ClientID: clientID, ClientKey: key,
			RedirectURL: redirect, Scopes: scopes, APIURL: stack.apiURL},
		Network:        &sim.NetworkAdmin{BaseURL: stack.networkURL, Token: stack.adminToken},
		Subscribers:    subscribers,
		WiFi:           base.Next().Next().Next(),
		WiFiSIM:        wifiSIM,
		EntitlementURL: stack.entitlementURL,
		// The subscribers' sessions come from the packet gateway, as in an
		// operator's network: RADIUS accounting, not the admin API.
		Gateway: &sim.Gateway{Addr: stack.radiusAddr, Secret: stack.radiusSecret, NAS: "numverify-demo-pgw"},
	}, out)
}

// provisionDemoSIM provisions a SIM with fresh K and OPc for msisdn at the
// entitlement server's store, as `numverify network sim add` does.
func provisionDemoSIM(ctx context.Context, pool *pgxpool.Pool, msisdn string) (*sim.SIM, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	imsi := fmt.Sprintf("20801%010d", binary.BigEndian.Uint32(b))
	credentials, err := entitlement.NewSIMCredentials(imsi, msisdn, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := entitlement.NewSIMStore(pool).Add(ctx, credentials); err != nil {
		return nil, err
	}
	return &sim.SIM{IMSI: credentials.IMSI, MNCDigits: 2, K: credentials.K, OPc: credentials.OPc}, nil
}

// demoAddressBase picks a /24-ish corner of 127.10.0.0/16 for this run, so
// two demos at once on one machine do not meet (their databases differ
// anyway; only the local addresses are shared).
func demoAddressBase() netip.Addr {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return netip.AddrFrom4([4]byte{127, 10, b[0], b[1] &^ 3})
}

// demoPostgres returns the maintenance-database URL of a server that
// answers: databaseURL's, else a throwaway cluster's (stopped by the
// returned function), else an error that says what to install.
func demoPostgres(ctx context.Context, databaseURL string) (maintenance, where string, stop func(), err error) {
	maintenance, err = withDatabaseName(databaseURL, "postgres")
	if err != nil {
		return "", "", nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, pingErr := pgx.Connect(pingCtx, maintenance)
	if pingErr == nil {
		conn.Close(ctx)
		return maintenance, "the server of DATABASE_URL (" + pg.Redact(databaseURL) + ")", func() {}, nil
	}
	if _, err := pgcluster.FindBinaries(); err != nil {
		return "", "", nil, fmt.Errorf("no PostgreSQL answers at %s and none can be started here: install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL to a running server", pg.Redact(databaseURL))
	}
	cluster, err := pgcluster.Start(ctx)
	if err != nil {
		return "", "", nil, fmt.Errorf("no PostgreSQL answers at %s, and a throwaway cluster did not start: %w", pg.Redact(databaseURL), err)
	}
	return cluster.URL("postgres"), fmt.Sprintf("a throwaway cluster on 127.0.0.1:%d (nothing answered at %s)", cluster.Port(), pg.Redact(databaseURL)),
		func() { cluster.Remove() }, nil
}

// createDemoDatabase creates a uniquely named database and returns its URL
// and the function that drops it.
func createDemoDatabase(ctx context.Context, maintenance string) (string, func(), error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("numverify_demo_%d_%s", time.Now().Unix(), hex.EncodeToString(b))
	conn, err := pgx.Connect(ctx, maintenance)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("create the demo database: %w", err)
	}
	dbURL, err := withDatabaseName(maintenance, name)
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, maintenance); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			conn.Close(ctx)
		}
	}
	if err != nil {
		drop()
		return "", nil, err
	}
	return dbURL, drop, nil
}

func withDatabaseName(raw, database string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "", errors.New("DATABASE_URL: not a URL (postgres://user@host:port/database)")
	}
	u.Path = "/" + database
	return u.String(), nil
}

func pgDatabase(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Path[1:]
}

// demoStack is the three servers running in this process, with the
// network's RADIUS accounting server.
type demoStack struct {
	issuer, apiURL, networkURL string
	entitlementURL             string
	adminToken                 string
	secretsKey                 string
	radiusAddr, radiusSecret   string // UDP host:port
	stop                       func()
}

// startDemoStack starts authz, resource and network on free ports of
// 127.0.0.1, each built by its own component's builder from flags set here
// as a user would set them.
func startDemoStack(ctx context.Context, deps serveDeps, registry *prometheus.Registry) (*demoStack, error) {
	listeners := make([]net.Listener, 4) // authz, resource, network, entitlement
	for i := range listeners {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, open := range listeners[:i] {
				open.Close()
			}
			return nil, err
		}
		listeners[i] = l
	}
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	url := func(l net.Listener) string { return "http://" + l.Addr().String() }
	stack := &demoStack{
		issuer:     url(listeners[0]),
		apiURL:     url(listeners[1]) + "/number-verification/v2",
		networkURL: url(listeners[2]),
		// The entitlement server's URL is the TS.43 endpoint, at its root.
		entitlementURL: url(listeners[3]) + "/",
		adminToken:     randomHex(32),
		secretsKey:     randomHex(32),
		radiusSecret:   randomHex(16),
	}
	accounting, err := startDemoRadius(stack, deps)
	if err != nil {
		closeAll()
		return nil, err
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serve := newServeCommand("demo", &authzFlags{}, &resourceFlags{}, &networkFlags{})
	serve.registerServers(fs)
	if err := setFlags(fs, demoFlagValues(stack, listeners)); err != nil {
		closeAll()
		accounting.close()
		return nil, err
	}
	servers, err := serve.build(ctx, deps)
	if err != nil {
		closeAll()
		accounting.close()
		return nil, fmt.Errorf("start the demo servers: %w", err)
	}
	byName := map[string]net.Listener{"authz": listeners[0], "resource": listeners[1], "network": listeners[2], "entitlement": listeners[3]}
	for _, s := range servers {
		s.listener = byName[s.name]
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	web := httpFlags{readHeaderTimeout: 5 * time.Second, readTimeout: 10 * time.Second, writeTimeout: 15 * time.Second,
		idleTimeout: 30 * time.Second, shutdownTimeout: 5 * time.Second}
	set := newServerSet(deps.Logger, web, servers)
	set.observe(deps.Pool, registry, nil)
	go func() {
		defer close(done)
		if err := set.run(runCtx, nil); err != nil {
			deps.Logger.Error("demo servers", "err", err)
		}
	}()
	accountingDone := make(chan struct{})
	go func() {
		defer close(accountingDone)
		defer accounting.pool.Close()
		if err := accounting.server.Serve(runCtx, accounting.conn); err != nil {
			deps.Logger.Warn("demo radius: close", "err", err)
		}
	}()
	stack.stop = func() { cancel(); <-done; <-accountingDone }
	return stack, nil
}

// demoRadius is the RADIUS accounting server of the demo, bound and not yet
// serving.
type demoRadius struct {
	server *radius.Server
	conn   net.PacketConn
	pool   *pgxpool.Pool // the accounting server's own (openAccountingStore)
}

func (r *demoRadius) close() { r.conn.Close(); r.pool.Close() }

// startDemoRadius builds the accounting server `serve network` runs with
// --radius-secret, on a free UDP port of 127.0.0.1 (bound here, as the
// HTTP listeners are, since its address must be known before the demo's
// gateway sends to it), recording into the network's session table; it
// sets stack.radiusAddr.
func startDemoRadius(stack *demoStack, deps serveDeps) (*demoRadius, error) {
	store, pool, err := openAccountingStore(deps)
	if err != nil {
		return nil, err
	}
	server, err := radius.NewServer(store, radius.Config{Clients: radius.NewClients(stack.radiusSecret, nil),
		Logger: deps.Logger, Registerer: deps.Registry, Committers: accountingCommitters})
	if err != nil {
		pool.Close()
		return nil, err
	}
	conn, err := radius.Listen("127.0.0.1:0")
	if err != nil {
		pool.Close()
		return nil, err
	}
	stack.radiusAddr = conn.LocalAddr().String()
	return &demoRadius{server: server, conn: conn, pool: pool}, nil
}

// demoFlagValues are the settings of the three components for the demo.
func demoFlagValues(stack *demoStack, listeners []net.Listener) map[string]string {
	return map[string]string{
		"issuer":              stack.issuer,
		"secrets-key":         stack.secretsKey,
		"network-admin-token": stack.adminToken,
		// The listeners are handed over directly; the addresses only keep
		// a default port from being bound by mistake.
		"authz-addr":       listeners[0].Addr().String(),
		"resource-addr":    listeners[1].Addr().String(),
		"network-addr":     listeners[2].Addr().String(),
		"entitlement-addr": listeners[3].Addr().String(),
		// Device addresses: the demo attaches explicit ones, inside it.
		"network-ipv4-pool": "127.10.0.0/16",
		// The network's own RADIUS listener stays off: its address would be
		// unknown (port 0) or fixed (:1813, maybe taken); startDemoRadius
		// binds the demo's.
		"radius-addr": "",
	}
}

// setFlags sets flags by name, failing on a name the components do not
// register (a renamed flag must break the demo's build test, not silently
// change what it runs).
func setFlags(fs *flag.FlagSet, values map[string]string) error {
	var problems []error
	for name, value := range values {
		if fs.Lookup(name) == nil {
			problems = append(problems, fmt.Errorf("no flag --%s", name))
			continue
		}
		if err := fs.Set(name, value); err != nil {
			problems = append(problems, fmt.Errorf("--%s: %w", name, err))
		}
	}
	return errors.Join(problems...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// registerDemoClient registers the demo SP through the authorization
// server's store (as `numverify client create` does) with key's public half
// for private_key_jwt, allowed the code flow and both operator-token grants,
// and returns its id.
func registerDemoClient(ctx context.Context, pool *pgxpool.Pool, secretsKey, redirect string, scopes []string, key *sim.ClientKey) (string, error) {
	secrets, err := keystore.ParseSecretsKey(secretsKey)
	if err != nil {
		return "", err
	}
	clients, err := newClientStore(pool, secrets)
	if err != nil {
		return "", err
	}
	jwks, err := key.JWKS()
	if err != nil {
		return "", err
	}
	client, _, err := clients.CreateClient(ctx, store.ClientSpec{Name: "numverify demo SP",
		RedirectURIs: []string{redirect}, Scopes: scopes, TokenEndpointAuthMethod: store.AuthMethodPrivateKeyJWT, JWKS: jwks,
		GrantTypes:               []string{"authorization_code", store.GrantTypeJWTBearer, store.GrantTypeCIBA},
		IDTokenSignedResponseAlg: "ES256"}) // as `client create` registers by default
	if err != nil {
		return "", err
	}
	return client.ID, nil
}
