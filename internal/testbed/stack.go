package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/sim"
)

// MetricsToken is the --metrics-token of every stack (Metric sends it).
const MetricsToken = "testbed-metrics-token-of-at-least-32-characters"

// Stack is one test's numverify installation: a migrated database, its
// secrets, and the processes it started.
type Stack struct {
	t           testing.TB
	DatabaseURL string
	AdminToken  string   // the network's admin API token
	Env         []string // every command's environment (beside this process's)
	resourceEnv []string // a resource server's: its own key, never the authorization server's
}

// NewStack migrates the database at databaseURL ("": a fresh one from
// pgtest) with `migrate up` and returns its stack: fresh secrets keys (the
// authorization server's and the resource server's own), an admin token,
// JSON logs, /metrics behind MetricsToken on each server's port beside each
// process's own listener on a free port, and the network's entitlement
// server on a free port.
func NewStack(t testing.TB, databaseURL string) *Stack {
	t.Helper()
	Binary(t) // skips in -short mode before a database is made
	if databaseURL == "" {
		_, databaseURL = pgtest.NewEmpty(t)
	}
	s := &Stack{t: t, DatabaseURL: databaseURL, AdminToken: rand.Text() + rand.Text()}
	common := []string{"DATABASE_URL=" + databaseURL, "NUMVERIFY_LOG_FORMAT=json",
		"NUMVERIFY_METRICS_TOKEN=" + MetricsToken, "NUMVERIFY_METRICS_ADDR=127.0.0.1:0"}
	resourceKey := "NUMVERIFY_RESOURCE_SECRETS_KEY=" + randomKey()
	s.resourceEnv = append(common[:len(common):len(common)], resourceKey)
	s.Env = append(common[:len(common):len(common)], resourceKey,
		"NUMVERIFY_SECRETS_KEY="+randomKey(), "NUMVERIFY_NETWORK_ADMIN_TOKEN="+s.AdminToken,
		"NUMVERIFY_ENTITLEMENT_ADDR=127.0.0.1:0") // the network's TS.43 server, on a free port too
	s.Run("migrate", "up")
	return s
}

func randomKey() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return hex.EncodeToString(key)
}

// Run runs a command with the stack's environment; see Run.
func (s *Stack) Run(args ...string) string {
	s.t.Helper()
	return Run(s.t, s.Env, args...)
}

// Start starts a command with the stack's environment; see Start.
func (s *Stack) Start(args ...string) *Process {
	s.t.Helper()
	return Start(s.t, s.Env, args...)
}

// Servers are the base URLs of a running authz, resource and network.
type Servers struct {
	Authz, Resource, Network string
	Proc                     *Process // the `serve` process, when one runs all three
}

// API is the Number Verification API's base URL of an edition (v0, v2).
func (sv Servers) API(edition string) string { return sv.Resource + "/number-verification/" + edition }

// Serve starts `numverify serve` (the three servers in one process) on free
// ports with extra flags, the authorization server's URL as issuer, and
// waits until every server is ready.
func (s *Stack) Serve(extra ...string) Servers {
	s.t.Helper()
	ports := FreePorts(s.t, 3)
	sv := Servers{Authz: "http://127.0.0.1:" + ports[0], Resource: "http://127.0.0.1:" + ports[1], Network: "http://127.0.0.1:" + ports[2]}
	args := append([]string{"serve", "--authz-addr", "127.0.0.1:" + ports[0], "--resource-addr", "127.0.0.1:" + ports[1],
		"--network-addr", "127.0.0.1:" + ports[2], "--issuer", sv.Authz}, extra...)
	sv.Proc = s.Start(args...)
	WaitHealthy(s.t, sv.Proc, sv.Authz+"/readyz", sv.Resource+"/readyz", sv.Network+"/readyz")
	return sv
}

// Apart are the three servers run as separate processes.
type Apart struct {
	Servers
	AuthzProc, ResourceProc, NetworkProc *Process
}

// ServeApart starts `serve network`, then `serve authz` (which creates the
// signing keys), then `serve resource`, each with its extra flags, and
// waits until each is ready.
func (s *Stack) ServeApart(authzFlags, resourceFlags, networkFlags []string) Apart {
	s.t.Helper()
	ports := FreePorts(s.t, 2)
	var a Apart
	a.Network = "http://127.0.0.1:" + ports[1]
	a.NetworkProc = s.Start(append([]string{"serve", "network", "--network-addr", "127.0.0.1:" + ports[1]}, networkFlags...)...)
	WaitHealthy(s.t, a.NetworkProc, a.Network+"/readyz")
	a.Authz, a.AuthzProc = s.StartAuthz(ports[0], "", authzFlags...)
	a.Resource, a.ResourceProc = s.StartResource("", a.Authz, resourceFlags...)
	return a
}

// StartAuthz starts `serve authz` on port ("": a free one) for issuer ("":
// its own URL), on the stack's database and keys, and waits until it is
// ready.
func (s *Stack) StartAuthz(port, issuer string, extra ...string) (string, *Process) {
	s.t.Helper()
	if port == "" {
		port = FreePorts(s.t, 1)[0]
	}
	base := "http://127.0.0.1:" + port
	if issuer == "" {
		issuer = base
	}
	p := s.Start(append([]string{"serve", "authz", "--authz-addr", "127.0.0.1:" + port, "--issuer", issuer}, extra...)...)
	WaitHealthy(s.t, p, base+"/readyz")
	return base, p
}

// StartResource starts `serve resource` on port ("": a free one) for
// issuer, given only its own secrets key (keys by role), and waits until it
// is ready.
func (s *Stack) StartResource(port, issuer string, extra ...string) (string, *Process) {
	s.t.Helper()
	if port == "" {
		port = FreePorts(s.t, 1)[0]
	}
	base := "http://127.0.0.1:" + port
	p := Start(s.t, s.resourceEnv, append([]string{"serve", "resource", "--resource-addr", "127.0.0.1:" + port, "--issuer", issuer}, extra...)...)
	WaitHealthy(s.t, p, base+"/readyz")
	return base, p
}

// Scopes as service providers send them.
const (
	ScopeVerify = "dpv:FraudPreventionAndDetection#number-verification:verify"
	ScopeShare  = "number-verification:device-phone-number:read"
)

// Client is a registered service provider's client.
type Client struct {
	ID       string `json:"client_id"`
	Secret   string `json:"client_secret"`
	Redirect string `json:"-"`
}

// CreateClient registers a client with `client create`, allowed openid,
// verify and share, redirecting to http://localhost:8080/callback.
func (s *Stack) CreateClient(name string, extra ...string) Client {
	s.t.Helper()
	const redirect = "http://localhost:8080/callback"
	args := append([]string{"client", "create", "--name", name, "--redirect-uri", redirect,
		"--scope", "openid", "--scope", ScopeVerify, "--scope", ScopeShare, "--json"}, extra...)
	out := s.Run(args...)
	var c Client
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" || c.Secret == "" {
		s.t.Fatalf("client create printed something else than a client: %v", err) // not the output: it holds the secret
	}
	c.Redirect = redirect
	return c
}

// Attach opens a network session for msisdn at addr through the network's
// admin API and returns a device sending from that address (closed when
// the test ends).
func (s *Stack) Attach(network, msisdn string, addr netip.Addr) *sim.Device {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := &sim.NetworkAdmin{BaseURL: network, Token: s.AdminToken}
	if _, err := admin.Attach(ctx, msisdn, addr); err != nil {
		s.t.Fatalf("attach at %s: %v", addr, err)
	}
	d := sim.NewDevice(addr, msisdn, 2)
	s.t.Cleanup(d.Close)
	return d
}

// DevicePrefix is a random /24 of 127.0.0.0/8 outside the network's default
// pool (127.10.0.0/16) and the bench's default (127.30.0.0/16), so that
// test runs side by side use different addresses.
func DevicePrefix() netip.Prefix {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 40 + b[0]%80, b[1], 0}), 24)
}

// NthAddr is the nth address of an IPv4 /24.
func NthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}
