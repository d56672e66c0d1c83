package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/numverify/numverify/internal/syncbuf"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/sim"
)

// The binary is built once per test run, into buildDir, removed by TestMain;
// so is the throwaway cluster started when no server answers at DATABASE_URL.
var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error

	dbOnce    sync.Once
	dbServer  string // maintenance URL of the shared server
	dbErr     error
	dbCluster *pgcluster.Cluster
)

func TestMain(m *testing.M) {
	code := m.Run()
	if dbCluster != nil {
		_ = dbCluster.Remove()
	}
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary returns the path of cmd/numverify built for this run.
func binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and starts servers as processes")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "numverify-e2e-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "numverify")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/numverify/numverify/cmd/numverify").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// newDatabase creates an empty database on the shared server (DATABASE_URL,
// default the local one, else a throwaway cluster) and drops it at the end.
func newDatabase(t testing.TB) string {
	t.Helper()
	dbOnce.Do(func() {
		base := os.Getenv("DATABASE_URL")
		if base == "" {
			base = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
		}
		u, err := url.Parse(base)
		if err != nil {
			dbErr = err
			return
		}
		u.Path = "/postgres"
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, u.String()); err == nil {
			conn.Close(ctx)
			dbServer = u.String()
			return
		}
		if dbCluster, dbErr = pgcluster.Start(context.Background()); dbErr == nil {
			dbServer = dbCluster.URL("postgres")
		}
	})
	if dbErr != nil {
		t.Fatalf("no PostgreSQL: %v", dbErr)
	}
	name := "nve2e_" + strings.ToLower(rand.Text()[:12])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbServer)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dbServer); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	u, _ := url.Parse(dbServer)
	u.Path = "/" + name
	return u.String()
}

// syncBuffer captures server output written from other goroutines.
type syncBuffer = syncbuf.Buffer

// process is a running numverify command.
type process struct {
	args   []string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // once done
}

// exited waits at most d for the process to exit.
func (p *process) exited(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *process) exitCode() int {
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

func (p *process) output() string { return p.stdout.String() + p.stderr.String() }

// tail is the last n lines of the output, for failure messages.
func (p *process) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stack is one test's numverify installation: its database, its secrets, and
// the processes it started (stopped with SIGTERM at the end of the test).
type stack struct {
	t          testing.TB
	bin        string
	dbURL      string
	adminToken string
	env        []string
}

func newStack(t testing.TB, dbURL string) *stack {
	t.Helper()
	s := &stack{t: t, bin: binary(t), dbURL: dbURL, adminToken: rand.Text() + rand.Text()}
	key, resourceKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(key)
	_, _ = rand.Read(resourceKey)
	s.env = []string{
		"DATABASE_URL=" + dbURL,
		"NUMVERIFY_SECRETS_KEY=" + hex.EncodeToString(key),
		// Keys by role: the resource server's own secrets key (a resource
		// server started alone reads only this one).
		"NUMVERIFY_RESOURCE_SECRETS_KEY=" + hex.EncodeToString(resourceKey),
		"NUMVERIFY_NETWORK_ADMIN_TOKEN=" + s.adminToken,
		"NUMVERIFY_LOG_FORMAT=json",
		// /metrics on each server's port behind a token, and each process's
		// own metrics listener on a free port (processes run side by side).
		"NUMVERIFY_METRICS_TOKEN=" + e2eMetricsToken,
		"NUMVERIFY_METRICS_ADDR=127.0.0.1:0",
	}
	s.run("migrate", "up")
	return s
}

// run runs a command to completion and returns its stdout.
func (s *stack) run(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("numverify %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// start starts a long-running command. At the end of the test it gets
// SIGTERM (then SIGKILL after 15 s); its output is logged if the test failed.
func (s *stack) start(args ...string) *process {
	s.t.Helper()
	p := &process{args: args, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(s.bin, args...)
	p.cmd.Env = append(os.Environ(), s.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	s.t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if !p.exited(15 * time.Second) {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if s.t.Failed() {
			s.t.Logf("numverify %s (last lines):\n%s", strings.Join(args, " "), p.tail(40))
		}
	})
	return p
}

// servers are the base URLs of a running authz, resource and network.
type servers struct {
	authz, resource, network string
	proc                     *process // the `serve` process, when one runs all three
}

func (sv servers) api(edition string) string { return sv.resource + "/number-verification/" + edition }

// serve starts `numverify serve` (the three servers in one process) on free
// ports, with extra flags, and waits until every server answers /readyz.
func (s *stack) serve(extra ...string) servers {
	s.t.Helper()
	ports := freePorts(s.t, 3)
	sv := servers{authz: "http://127.0.0.1:" + ports[0], resource: "http://127.0.0.1:" + ports[1], network: "http://127.0.0.1:" + ports[2]}
	args := append([]string{"serve", "--authz-addr", "127.0.0.1:" + ports[0], "--resource-addr", "127.0.0.1:" + ports[1],
		"--network-addr", "127.0.0.1:" + ports[2], "--issuer", sv.authz}, extra...)
	sv.proc = s.start(args...)
	waitReady(s.t, sv.proc, sv.authz, sv.resource, sv.network)
	return sv
}

// waitReady waits until each base URL answers 200 at /readyz.
func waitReady(t testing.TB, p *process, bases ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for _, base := range bases {
		for {
			resp, err := client.Get(base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-p.done:
				t.Fatalf("numverify %s exited: %v\n%s", strings.Join(p.args, " "), p.err, p.tail(30))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/readyz did not answer 200 in 30 s (last: %v)", base, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func freePorts(t testing.TB, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var ports []string
	for len(ports) < n {
		p, err := pgcluster.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, strconv.Itoa(p))
		}
	}
	return ports
}

// oauthClient is a registered SP client.
type oauthClient struct {
	ID       string `json:"client_id"`
	Secret   string `json:"client_secret"`
	Redirect string `json:"-"`
}

const redirectURI = "http://localhost:8080/callback"

// Scopes as SPs send them.
const (
	scopeVerify = "dpv:FraudPreventionAndDetection#number-verification:verify"
	scopeShare  = "number-verification:device-phone-number:read"
)

// createClient registers an SP client allowed openid, verify and share.
func (s *stack) createClient(name string, extra ...string) oauthClient {
	s.t.Helper()
	args := append([]string{"client", "create", "--name", name, "--redirect-uri", redirectURI,
		"--scope", "openid", "--scope", scopeVerify, "--scope", scopeShare, "--json"}, extra...)
	out := s.run(args...)
	var c oauthClient
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" || c.Secret == "" {
		s.t.Fatalf("client create printed %q: %v", out, err)
	}
	c.Redirect = redirectURI
	return c
}

// devicePrefix is a random /24 of 127.0.0.0/8 outside the network's default
// pool (127.10.0.0/16) and the bench's default (127.30.0.0/16), so that test
// runs side by side use different addresses.
func devicePrefix() netip.Prefix {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 40 + b[0]%80, b[1], 0}), 24)
}

func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// attach opens a network session for msisdn at addr and returns a device
// sending from that address.
func (s *stack) attach(sv servers, msisdn string, addr netip.Addr) *sim.Device {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := &sim.NetworkAdmin{BaseURL: sv.network, Token: s.adminToken}
	if _, err := admin.Attach(ctx, msisdn, addr); err != nil {
		s.t.Fatalf("attach %s at %s: %v", msisdn, addr, err)
	}
	d := sim.NewDevice(addr, msisdn, 2)
	s.t.Cleanup(d.Close)
	return d
}

// login is what one silent login gave.
type login struct {
	Code        string
	AccessToken string
	IDToken     string
	Expiry      time.Time
}

// oauthConf is an SP's OAuth2 configuration against one authorization
// server's endpoints.
type oauthConf = oauth2.Config

func confFor(authzBase string, c oauthClient, scopes ...string) oauthConf {
	return oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: c.Redirect, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: authzBase + "/authorize", TokenURL: authzBase + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
}

// authorize sends the authorization request as the operator SDK does: from
// the device's address, prompt=none, PKCE S256; it returns the code and the
// verifier to redeem it with. A redirect without a code is an
// *sim.OutcomeError.
func authorize(ctx context.Context, d *sim.Device, conf oauthConf, extra ...oauth2.AuthCodeOption) (code, verifier string, err error) {
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("nonce", rand.Text()), oauth2.SetAuthURLParam("prompt", "none")}, extra...)
	out, err := d.Authorize(ctx, conf.AuthCodeURL(state, opts...))
	if err != nil {
		return "", "", err
	}
	if out.Code == "" {
		return "", "", &sim.OutcomeError{Outcome: out}
	}
	if out.State != state {
		return "", "", fmt.Errorf("state %q, want %q", out.State, state)
	}
	return out.Code, verifier, nil
}

// silentLogin is the whole login: authorize from the device, then the code
// exchanged at authzBase/token with client_secret_basic, as the SP backend
// does. Failures are of the sim kinds (OutcomeError, APIError,
// ConnectionError), so sim.ErrorKindOf names them.
func silentLogin(ctx context.Context, d *sim.Device, authzBase string, c oauthClient, scopes ...string) (*login, error) {
	conf := confFor(authzBase, c, scopes...)
	code, verifier, err := authorize(ctx, d, conf)
	if err != nil {
		return nil, err
	}
	l, err := exchange(ctx, conf, code, verifier)
	if l != nil {
		l.Code = code
	}
	return l, err
}

func exchange(ctx context.Context, conf oauthConf, code, verifier string) (*login, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			return nil, &sim.APIError{Method: http.MethodPost, URL: conf.Endpoint.TokenURL, Status: re.Response.StatusCode, Code: re.ErrorCode}
		}
		return nil, &sim.ConnectionError{Method: http.MethodPost, URL: conf.Endpoint.TokenURL, Err: err}
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		return nil, errors.New("no id_token in the token response")
	}
	return &login{AccessToken: tok.AccessToken, IDToken: idToken, Expiry: tok.Expiry}, nil
}

// apiResponse is one answer of the Number Verification API.
type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// field returns a top-level JSON field; numbers as their decimal text.
func (r *apiResponse) field(name string) any {
	v := r.JSON[name]
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return v
}

// callAPI sends one request; body nil means no body at all.
func callAPI(client *http.Client, method, u, token string, body *string, headers map[string]string) (*apiResponse, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(*body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	return r, nil
}

func str(s string) *string { return &s }

// e2eMetricsToken is the --metrics-token of every stack.
const e2eMetricsToken = "e2e-metrics-token-of-at-least-32-characters"

// metric returns the sum of the samples of a metric whose label set
// contains every one of labels (e.g. `route="/token"`), read from /metrics.
func metric(base, name string, labels ...string) (float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e2eMetricsToken)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		cut := strings.LastIndexByte(line, ' ') // label values may hold spaces ("POST /token")
		if cut < 0 {
			continue
		}
		series, value := line[:cut], line[cut+1:]
		match := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, err
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("%s/metrics has no %s%v", base, name, labels)
	}
	return sum, sc.Err()
}

// waitForLoad waits until the authorization server has issued n tokens, so
// that a load generator started before is known to be running.
func waitForLoad(t testing.TB, authz string, n float64, bench *process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, _ := metric(authz, "numverify_http_requests_total", `/token"`, `server="authz"`, `status="200"`)
		if v >= n {
			return
		}
		select {
		case <-bench.done:
			t.Fatalf("bench exited early: %v\n%s", bench.err, bench.tail(30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no load: %v tokens issued after 30 s\n%s", v, bench.tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startBench starts `numverify bench --json` in flow mode against sv with
// devices from prefix, numbers from firstMSISDN.
func (s *stack) startBench(sv servers, c oauthClient, prefix netip.Prefix, firstMSISDN string, devices int, duration time.Duration, extra ...string) *process {
	s.t.Helper()
	args := append([]string{"bench", "--json", "--issuer", sv.authz, "--api-url", sv.api("v2"), "--network-url", sv.network,
		"--client-id", c.ID, "--client-secret", c.Secret, "--redirect-url", c.Redirect,
		"--devices", strconv.Itoa(devices), "--duration", duration.String(),
		"--device-prefix", prefix.String(), "--first-msisdn", firstMSISDN}, extra...)
	return s.start(args...)
}

// benchReport waits for the bench to exit (0) and parses its report.
func benchReport(t testing.TB, bench *process, within time.Duration) *sim.BenchReport {
	t.Helper()
	if !bench.exited(within) {
		t.Fatalf("bench still running after %s\n%s", within, bench.tail(30))
	}
	if bench.err != nil {
		t.Fatalf("bench: %v\n%s", bench.err, bench.tail(30))
	}
	var rep sim.BenchReport
	if err := json.Unmarshal([]byte(bench.stdout.String()), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, bench.stdout.String())
	}
	return &rep
}

// failureWindow is the first and last second of the timeline with failures
// (-1, -1 when none).
func failureWindow(rep *sim.BenchReport) (first, last int) {
	first, last = -1, -1
	for _, tick := range rep.PerTick {
		if tick.Failed > 0 {
			if first < 0 {
				first = tick.Second
			}
			last = tick.Second
		}
	}
	return first, last
}

// okBetween counts successes in the timeline's seconds [from, to].
func okBetween(rep *sim.BenchReport, from, to int) uint64 {
	var n uint64
	for _, tick := range rep.PerTick {
		if tick.Second >= from && tick.Second <= to {
			n += tick.OK
		}
	}
	return n
}

// apart are the three servers run as separate processes (`serve authz`,
// `serve resource`, `serve network`).
type apart struct {
	servers
	authzProc, resourceProc, networkProc *process
}

// serveApart starts the network, then the authorization server (which
// creates the keys), then the resource server, each with its extra flags,
// and waits until each is ready.
func (s *stack) serveApart(authzFlags, resourceFlags, networkFlags []string) apart {
	s.t.Helper()
	ports := freePorts(s.t, 3)
	var a apart
	a.authz, a.resource, a.network = "http://127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1], "http://127.0.0.1:"+ports[2]
	a.networkProc = s.start(append([]string{"serve", "network", "--network-addr", "127.0.0.1:" + ports[2]}, networkFlags...)...)
	waitReady(s.t, a.networkProc, a.network)
	a.authzProc = s.start(append([]string{"serve", "authz", "--authz-addr", "127.0.0.1:" + ports[0], "--issuer", a.authz}, authzFlags...)...)
	waitReady(s.t, a.authzProc, a.authz)
	_, a.resourceProc = s.startResource(ports[1], a.authz, resourceFlags...)
	return a
}

// startAuthz starts one more authorization server for issuer (same
// database and keys; "" for its own URL) on a free port and returns its base
// URL.
func (s *stack) startAuthz(issuer string, extra ...string) string {
	s.t.Helper()
	port := freePorts(s.t, 1)[0]
	if issuer == "" {
		issuer = "http://127.0.0.1:" + port
	}
	p := s.start(append([]string{"serve", "authz", "--authz-addr", "127.0.0.1:" + port, "--issuer", issuer}, extra...)...)
	waitReady(s.t, p, "http://127.0.0.1:"+port)
	return "http://127.0.0.1:" + port
}

// startResource starts a resource server for issuer on port ("" for a free
// one).
func (s *stack) startResource(port, issuer string, extra ...string) (string, *process) {
	s.t.Helper()
	if port == "" {
		port = freePorts(s.t, 1)[0]
	}
	p := s.start(append([]string{"serve", "resource", "--resource-addr", "127.0.0.1:" + port, "--issuer", issuer}, extra...)...)
	waitReady(s.t, p, "http://127.0.0.1:"+port)
	return "http://127.0.0.1:" + port, p
}
