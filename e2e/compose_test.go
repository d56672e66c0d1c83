package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/numverify/numverify/sim"
)

// The compose testbed brought up for real (issue 13): opt-in, as it needs a
// container engine. NUMVERIFY_COMPOSE=1 runs it (`.ci/compose` does, after
// deploy/testbed/setup-podman.sh), and then a missing piece fails it.
const (
	composeProject = "nvcompose"
	composeNumber  = "+33612345678" // the compose device service's number
	composeOther   = "+33612345679"
	// The network's gateway: the host's address on the testbed bridge
	// (docker-compose.yml's fixed subnet), the source of the host's
	// connections to the containers.
	composeGateway = "172.28.0.1"
)

// TestCompose builds the images docker-compose.yml names from local bases
// (deploy/testbed/build-images.sh: numverify:dev FROM scratch, Postgres from
// debootstrap), brings the stack up with docker-compose against podman's
// Docker API (the healthcheck-dependent order: Postgres → migrate → authz →
// resource, network, register-sp → sp → device), and checks: the device
// service ended "Verified" with exit 0; a second handset on the testbed
// network, attached as another number, gets the SP's "Not verified" and
// exit 1; from the host, a handset attached on the gateway address logs in
// silently, its code buys a token, verify answers true for its number and
// false for another; detached (Wi-Fi), its login is refused with
// access_denied. `down -v` then leaves no container, network or volume.
func TestCompose(t *testing.T) {
	if os.Getenv("NUMVERIFY_COMPOSE") != "1" {
		t.Skip("set NUMVERIFY_COMPOSE=1 to run the compose testbed (needs podman or Docker: deploy/testbed/setup-podman.sh)")
	}
	c := newComposeRun(t)

	start := time.Now()
	c.run(10*time.Minute, "bash", "deploy/testbed/build-images.sh")
	t.Logf("timing: images built in %s (the Postgres image is cached once built)", time.Since(start).Round(time.Second))

	c.compose(time.Minute, "down", "-v", "--remove-orphans") // a previous run's leftovers
	t.Cleanup(func() {
		if t.Failed() {
			// Each container's own log (compose's shows nothing of a
			// container that restarted), then every container's state
			// (podman's own words if it could not say).
			states, err := c.try(time.Minute, "podman", "ps", "-a", "--filter", "label=com.docker.compose.project="+composeProject,
				"--format", "{{.Names}} {{.Status}}") // "Up 11 seconds" beside older ones: a restart
			for _, line := range strings.Split(strings.TrimSpace(states), "\n") {
				if name, _, ok := strings.Cut(line, " "); ok {
					out, _ := c.try(time.Minute, "podman", "logs", "--tail", "40", name)
					t.Logf("podman logs --tail 40 %s:\n%s", name, out)
					c.logStuck(name)
				}
			}
			t.Logf("containers (%v):\n%s", err, states)
			// Repeated last: CI keeps the tail of the output.
			t.Logf("TestCompose failed, at %s", c.failure)
		}
		c.try(2*time.Minute, c.composeArgs("down", "-v", "--remove-orphans")...)
	})
	stopHealth := c.runHealthchecks()
	t.Cleanup(stopHealth)

	start = time.Now()
	c.compose(5*time.Minute, "up", "-d", "--no-build")
	t.Logf("timing: up -d %s", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	// The device service: started last by up -d, exits 0 only on "Verified".
	device := c.container("device")
	code := strings.TrimSpace(c.run(2*time.Minute, "podman", "wait", device)) // the device gives up by itself before
	logs := c.run(time.Minute, "podman", "logs", device)
	if code != "0" || !strings.Contains(logs, "Verified: "+composeNumber) {
		c.fatalf("device service: exit %s, want 0 and the SP's \"Verified\" page:\n%s", code, logs)
	}
	t.Logf("device service: exit 0, %q", lastLine(logs))

	// Another handset on the testbed network (compose 1.29 against podman
	// refuses a second `run` on the project: "Network … needs to be
	// recreated"), attached as one number, asking the SP for another.
	out, err := c.try(time.Minute, "podman", "run", "--rm", "--network", composeProject+"_mobile",
		"--read-only", "--cap-drop", "ALL", "--env", "NUMVERIFY_NETWORK_ADMIN_TOKEN="+c.env["NUMVERIFY_NETWORK_ADMIN_TOKEN"],
		"numverify:dev", "device", "--msisdn", composeOther, "--attach-self", "--follow",
		"--network-url", "http://network:9092", "--connect-to", "localhost:8080:sp:8080",
		"--authorize-url", "http://localhost:8080/start?phoneNumber=%2B"+composeNumber[1:])
	if err == nil || !strings.Contains(out, "Not verified") || !strings.Contains(out, "does not have this number") {
		c.fatalf("handset %s asking for %s through the SP: want \"Not verified\" (verify false) and a non-zero exit, got %v:\n%s",
			composeOther[:6]+"…", composeNumber[:6]+"…", err, out)
	}

	c.hostFlow()
	t.Logf("timing: flow %s (device service, a second handset through the SP, the host's login, token, verify true/false, Wi-Fi refusal)",
		time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	c.compose(3*time.Minute, "down", "-v", "--remove-orphans")
	t.Logf("timing: down -v %s", time.Since(start).Round(100*time.Millisecond))
	c.assertNothingLeft()
}

type composeRun struct {
	t       *testing.T
	began   time.Time
	failure string // what fatalf said, repeated after the logs
	root    string
	cmd     []string // docker-compose, or docker compose
	env     map[string]string
}

func newComposeRun(t *testing.T) *composeRun {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	c := &composeRun{t: t, root: root, began: time.Now()}
	switch {
	case lookPath("docker-compose"):
		c.cmd = []string{"docker-compose"}
	case lookPath("docker") && exec.Command("docker", "compose", "version").Run() == nil:
		c.cmd = []string{"docker", "compose"}
	default:
		t.Fatal("NUMVERIFY_COMPOSE=1 but neither docker-compose nor docker compose is installed (deploy/testbed/setup-podman.sh)")
	}
	if !lookPath("podman") {
		t.Fatal("NUMVERIFY_COMPOSE=1 but podman is missing (deploy/testbed/setup-podman.sh)")
	}
	if os.Getenv("DOCKER_HOST") == "" {
		t.Setenv("DOCKER_HOST", "unix:///run/podman/podman.sock")
	}
	if out, err := exec.Command("curl", "-fsS", "--unix-socket", strings.TrimPrefix(os.Getenv("DOCKER_HOST"), "unix://"),
		"http://d/_ping").CombinedOutput(); err != nil {
		t.Fatalf("NUMVERIFY_COMPOSE=1 but no Docker API at %s (podman system service: deploy/testbed/setup-podman.sh): %v %s",
			os.Getenv("DOCKER_HOST"), err, out)
	}
	c.env = readEnvFile(t, filepath.Join(root, "deploy/compose/.env.example"))
	return c
}

func lookPath(name string) bool { _, err := exec.LookPath(name); return err == nil }

// readEnvFile reads KEY=VALUE lines, as compose does with --env-file.
func readEnvFile(t *testing.T, path string) map[string]string {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	return env
}

func (c *composeRun) composeArgs(args ...string) []string {
	return append(append(append([]string{}, c.cmd...), "-p", composeProject, "-f", "docker-compose.yml",
		"-f", "deploy/testbed/compose.podman.yml", "--env-file", "deploy/compose/.env.example"), args...)
}

// fatalf fails the test, keeping the message for the end of the output
// (after the compose logs, which the cleanup prints).
func (c *composeRun) fatalf(format string, args ...any) {
	c.t.Helper()
	msg := fmt.Sprintf(format, args...)
	c.failure = fmt.Sprintf("%s after the start: %s", time.Since(c.began).Round(100*time.Millisecond), msg)
	c.t.Fatal(msg)
}

func (c *composeRun) compose(timeout time.Duration, args ...string) string {
	c.t.Helper()
	return c.run(timeout, c.composeArgs(args...)...)
}

func (c *composeRun) run(timeout time.Duration, args ...string) string {
	c.t.Helper()
	out, err := c.try(timeout, args...)
	if err != nil {
		c.fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *composeRun) try(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = c.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// logStuck logs, for a failed run, where a request may be held up: what
// every Postgres backend is doing (the postgres container), and each
// container's TCP connections with their unacknowledged bytes and timers
// (ss in its network namespace). A /token once hung 15 s in its code
// exchange, with nothing in Postgres's log of slow statements or lock waits:
// this says whether the statement was in Postgres and waiting there, or its
// bytes were never acknowledged.
func (c *composeRun) logStuck(name string) {
	if strings.Contains(name, "_postgres_") {
		out, err := c.try(time.Minute, "podman", "exec", name, "psql", "-U", "numverify", "-d", "numverify", "-c",
			`SELECT pid, backend_type, client_addr, state, wait_event_type, wait_event,
				now() - xact_start AS xact, now() - query_start AS query, left(query, 60) AS statement
			FROM pg_stat_activity ORDER BY pid`)
		c.t.Logf("pg_stat_activity in %s (%v):\n%s", name, err, out)
	}
	pid, err := c.try(time.Minute, "podman", "inspect", "--format", "{{.State.Pid}}", name)
	if pid = strings.TrimSpace(pid); err != nil || pid == "" || pid == "0" {
		return // exited
	}
	out, err := c.try(time.Minute, "nsenter", "--target", pid, "--net", "ss", "-tnio")
	c.t.Logf("TCP connections of %s (%v):\n%s", name, err, out)
}

// container is the name compose 1.29 gives a service's first container.
func (c *composeRun) container(service string) string {
	c.t.Helper()
	id := strings.TrimSpace(c.compose(time.Minute, "ps", "-q", service))
	if id == "" {
		c.fatalf("no container for service %s", service)
	}
	return strings.Fields(id)[0]
}

// runHealthchecks runs `podman healthcheck run` on the project's running
// containers every second: without systemd, podman runs no healthcheck by
// itself, and compose waits for "healthy" before starting the dependents.
// (Docker runs them itself; there this only adds checks.)
func (c *composeRun) runHealthchecks() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Every 2 s, the shortest interval docker-compose.yml gives: its
		// retries then last as long as they would under Docker.
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			out, _ := exec.CommandContext(ctx, "podman", "ps", "-q", "--filter", "label=com.docker.compose.project="+composeProject,
				"--filter", "status=running").Output()
			var each sync.WaitGroup
			for _, id := range strings.Fields(string(out)) {
				each.Add(1)
				go func() {
					defer each.Done()
					hc, cancelHC := context.WithTimeout(ctx, 5*time.Second)
					defer cancelHC()
					_ = exec.CommandContext(hc, "podman", "healthcheck", "run", id).Run()
				}()
			}
			each.Wait()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// hostFlow is the device flow step by step from the host, on the gateway
// address (the host's own address on the testbed network, which authz sees
// as the source of the host's connections to its container): attach,
// silent login, token, verify true and false, then detached (Wi-Fi), the
// login refused. The issuer's URLs say authz.localhost:9090; the host sends
// them to authz's container, the RP's own requests to the published ports.
func (c *composeRun) hostFlow() {
	t := c.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gateway := netip.MustParseAddr(composeGateway)
	if err := sim.CheckLocal(gateway); err != nil {
		c.fatalf("the host has no address on the testbed network: %v", err)
	}
	authzIP := strings.TrimSpace(c.run(time.Minute, "podman", "inspect", "--format",
		"{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c.container("authz")))
	if _, err := netip.ParseAddr(authzIP); err != nil {
		c.fatalf("authz's address on the testbed network: %q", authzIP)
	}

	volume := strings.TrimSpace(c.run(time.Minute, "podman", "volume", "inspect", "--format", "{{.Mountpoint}}", composeProject+"_sp-client"))
	creds, err := sim.ReadClientFile(filepath.Join(volume, "sp-client.json"))
	if err != nil {
		c.fatalf("the SP's credentials that register-sp wrote: %v", err)
	}
	published := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == "authz.localhost:9090" {
				addr = "127.0.0.1:9090"
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	issuer := "http://authz.localhost:9090"
	rp, err := sim.NewRelyingParty(ctx, sim.RPConfig{Issuer: issuer, ClientID: creds.ClientID, ClientSecret: creds.ClientSecret,
		RedirectURL: "http://localhost:8080/callback", Scopes: strings.Fields(sim.DefaultScope),
		APIURL: "http://127.0.0.1:9091/number-verification/v2", HTTP: published})
	if err != nil {
		c.fatalf("discovery through the published port: %v", err)
	}
	admin := &sim.NetworkAdmin{BaseURL: "http://127.0.0.1:9092", Token: c.env["NUMVERIFY_NETWORK_ADMIN_TOKEN"], HTTP: published}
	session, err := admin.Attach(ctx, composeNumber, gateway)
	if err != nil {
		c.fatalf("attach the gateway address: %v", err)
	}
	device := sim.NewDevice(gateway, composeNumber, 0)
	defer device.Close()
	device.ConnectTo("authz.localhost:9090", net.JoinHostPort(authzIP, "9090"))

	login := func() *sim.Tokens {
		t.Helper()
		req := rp.NewAuthRequest("")
		out, err := device.Authorize(ctx, req.URL)
		if err != nil || out.Code == "" {
			c.fatalf("silent login from %s: %v, %+v", gateway, err, out)
		}
		tokens, err := rp.Exchange(ctx, out.Code, req)
		if err != nil {
			c.fatalf("code exchange: %v", err)
		}
		return tokens
	}
	for _, tt := range []struct {
		number string
		want   bool
	}{{composeNumber, true}, {composeOther, false}} {
		got, err := rp.Verify(ctx, login().AccessToken, tt.number, false)
		if err != nil || got != tt.want {
			c.fatalf("verify %s…: %v, %v; want %v", tt.number[:6], got, err, tt.want)
		}
	}

	if err := admin.Detach(ctx, session.ID); err != nil {
		c.fatalf("%v", err)
	}
	out, err := device.Authorize(ctx, rp.NewAuthRequest("").URL)
	if err != nil || out.Error != "access_denied" || out.Code != "" {
		c.fatalf("login from %s with no session (Wi-Fi): %v, %+v; want access_denied", gateway, err, out)
	}
}

// assertNothingLeft: after `down -v`, no container, network or volume of
// the project remains.
func (c *composeRun) assertNothingLeft() {
	c.t.Helper()
	for _, kind := range [][]string{
		{"ps", "-a", "--format", "{{.Names}}"},
		{"network", "ls", "--format", "{{.Name}}"},
		{"volume", "ls", "--format", "{{.Name}}"},
	} {
		for _, name := range strings.Fields(c.run(time.Minute, append([]string{"podman"}, kind...)...)) {
			if strings.HasPrefix(name, composeProject+"_") {
				c.t.Errorf("after down -v, podman %s still lists %s", kind[0], name)
			}
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
