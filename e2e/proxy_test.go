package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/numverify/numverify/sim"

	"github.com/numverify/numverify/internal/testbed"
)

// Issue 9: the device's address behind real proxies, the way operators run
// them: Debian's nginx as its docs and ingress-nginx configure it, and
// HAProxy in HTTP mode (option forwardfor) and in TCP mode with the PROXY
// protocol (send-proxy, send-proxy-v2), each in front of a real
// `numverify serve authz`. A device logs in as itself through each; an
// off-network device forging Forwarded, X-Forwarded-For, X-Real-IP,
// X-Forwarded-Port or X-Real-Port is refused; behind CGNAT the source port
// decides; a PROXY header from anyone but the balancer is refused.

// The proxies connect to numverify from addresses of their own, which are the
// only trusted ones: the test's own requests (readiness, the SP's) come from
// 127.0.0.1, an untrusted direct client.
const (
	nginxSource   = "127.0.0.2"
	haproxySource = "127.0.0.3"
)

const (
	nginxBin   = "/usr/sbin/nginx"
	haproxyBin = "/usr/sbin/haproxy"
)

// requireProxies skips when nginx or HAProxy is not installed, unless
// NUMVERIFY_REQUIRE_PROXIES is set (CI), where it fails.
func requireProxies(t *testing.T) {
	t.Helper()
	var missing []string
	for _, bin := range []string{nginxBin, haproxyBin} {
		if _, err := os.Stat(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("NUMVERIFY_REQUIRE_PROXIES") != "" {
		t.Fatalf("NUMVERIFY_REQUIRE_PROXIES is set but %s is missing (apt-get install nginx haproxy)", strings.Join(missing, ", "))
	}
	t.Skipf("%s not installed (set NUMVERIFY_REQUIRE_PROXIES to fail instead)", strings.Join(missing, ", "))
}

// proxyRoute is one way into the authorization server.
type proxyRoute struct {
	name string
	base string // the proxy's URL
	// portFromProxy: the route carries the device's source port (PROXY
	// protocol, or the X-Real-Port header the proxy sets).
	portFromProxy bool
}

func TestClientAddressBehindProxies(t *testing.T) {
	requireProxies(t)
	s := testbed.NewStack(t, "")
	sv := s.Serve()
	sp := s.CreateClient("proxy-sp")

	// Two authorization servers on the same database: one reading
	// X-Forwarded-For (and the port from X-Real-Port) from nginx and HAProxy
	// in HTTP mode, one behind HAProxy in TCP mode with the PROXY protocol.
	// Both name the direct server's URL as issuer, so the resource server of
	// `serve` accepts their tokens.
	xffAuthz, _ := s.StartAuthz("", sv.Authz, "--client-address-from", "x-forwarded-for",
		"--trusted-proxies", nginxSource+","+haproxySource, "--client-port-header", "X-Real-Port")
	ppAuthz, _ := s.StartAuthz("", sv.Authz, "--client-address-from", "proxy-protocol", "--trusted-proxies", haproxySource)

	ports := testbed.FreePorts(t, 4)
	nginxURL := startNginx(t, ports[0], hostPort(t, xffAuthz))
	haproxyHTTP, haproxyPP1, haproxyPP2 := startHAProxy(t, ports[1:], hostPort(t, xffAuthz), hostPort(t, ppAuthz))
	routes := []proxyRoute{
		{"nginx", nginxURL, true},
		{"haproxy http", haproxyHTTP, true},
		{"haproxy send-proxy", haproxyPP1, true},
		{"haproxy send-proxy-v2", haproxyPP2, true},
	}

	prefix := testbed.DevicePrefix()
	victim, victimMSISDN := testbed.NthAddr(prefix, 7), "+33612"+randomDigits(6)
	offNetwork := testbed.NthAddr(prefix, 66)
	s.Run("network", "attach", "--msisdn", victimMSISDN, "--ip", victim.String())
	// Behind CGNAT: two subscribers on one public address, by port block.
	public := testbed.NthAddr(prefix, 100)
	cgnatA, cgnatB := "+33613"+randomDigits(6), "+33614"+randomDigits(6)
	s.Run("network", "attach", "--msisdn", cgnatA, "--ip", public.String(), "--ports", "41000-41999")
	s.Run("network", "attach", "--msisdn", cgnatB, "--ip", public.String(), "--ports", "42000-42999")

	share := testbed.NewSP(t, sv.Authz, sp, "openid", testbed.ScopeShare)
	for _, route := range routes {
		t.Run(route.name, func(t *testing.T) {
			rp := share.Via(t, route.base)
			t.Run("device logs in as itself", func(t *testing.T) {
				if got := loginThrough(t, sv, rp, victim, 0, nil); got != victimMSISDN {
					t.Fatalf("logged in as %q, want the device's own number", got)
				}
			})
			t.Run("forged headers from off the network", func(t *testing.T) {
				for name, header := range map[string]http.Header{
					"Forwarded":              {"Forwarded": {"for=" + victim.String()}},
					"Forwarded IPv4-mapped":  {"Forwarded": {`for="[::ffff:` + mappedHex(victim) + `]"`}},
					"Forwarded For=":         {"Forwarded": {"For=" + victim.String()}},
					"Forwarded padded":       {"Forwarded": {"for=" + victim.String() + strings.Repeat(", for="+nginxSource+", for="+haproxySource, 20)}},
					"X-Forwarded-For":        {"X-Forwarded-For": {victim.String()}},
					"X-Forwarded-For padded": {"X-Forwarded-For": {victim.String() + strings.Repeat(", "+nginxSource, 20)}},
					"X-Real-IP":              {"X-Real-Ip": {victim.String()}},
					"garbage then victim":    {"X-Forwarded-For": {`"[, ` + victim.String()}, "Forwarded": {`for="` + victim.String()}},
				} {
					t.Run(name, func(t *testing.T) {
						wantRefused(t, rp, offNetwork, 0, header)
					})
				}
			})
			t.Run("CGNAT: the source port decides", func(t *testing.T) {
				if got := loginThrough(t, sv, rp, public, 41000, nil); got != cgnatA {
					t.Fatalf("from port block 41000-41999 logged in as %q, want the subscriber holding it", got)
				}
				if got := loginThrough(t, sv, rp, public, 42000, nil); got != cgnatB {
					t.Fatalf("from port block 42000-42999 logged in as %q, want the subscriber holding it", got)
				}
			})
			t.Run("CGNAT: forged ports", func(t *testing.T) {
				// From the shared address, a port no subscriber holds, naming
				// a port of subscriber A.
				for name, header := range map[string]http.Header{
					"X-Forwarded-Port": {"X-Forwarded-Port": {"41500"}},
					"X-Real-Port":      {"X-Real-Port": {"41500"}},
					"Forwarded":        {"Forwarded": {`for="` + public.String() + `:41500"`}},
					"all of them":      {"X-Forwarded-Port": {"41500"}, "X-Real-Port": {"41500"}, "Forwarded": {`for="` + public.String() + `:41500"`}},
				} {
					t.Run(name, func(t *testing.T) {
						wantRefused(t, rp, public, 45000, header)
					})
				}
			})
		})
	}

	t.Run("PROXY header from an untrusted peer is refused", func(t *testing.T) {
		header := "PROXY TCP4 " + victim.String() + " 127.0.0.1 40000 80\r\n"
		if answer, err := rawRequest(offNetwork, hostPort(t, ppAuthz), header); err == nil {
			t.Fatalf("answered %q; want the connection closed", firstLine(answer))
		}
		// Without one, the same peer is served as itself: not on the network.
		wantRefused(t, share.Via(t, ppAuthz), offNetwork, 0, http.Header{"Forwarded": {"for=" + victim.String()}})
	})
	t.Run("trusted peer without a PROXY header is refused", func(t *testing.T) {
		if answer, err := rawRequest(netip.MustParseAddr(haproxySource), hostPort(t, ppAuthz), ""); err == nil {
			t.Fatalf("answered %q; want the connection closed", firstLine(answer))
		}
	})
}

// TestClientAddressFlagsRefused: serve authz refuses to start with trusted
// proxies and the peer as source, or a proxy source without trusted proxies,
// reporting every problem at once.
func TestClientAddressFlagsRefused(t *testing.T) {
	s := testbed.NewStack(t, "")
	port := testbed.FreePorts(t, 1)[0]
	for name, tc := range map[string]struct {
		args []string
		want []string
	}{
		"trusted proxies with the peer, X-Forwarded-Port": {
			[]string{"--trusted-proxies", "127.0.0.2", "--client-port-header", "X-Forwarded-Port"},
			[]string{"trusted proxies are set but the client address comes from the TCP peer", "X-Forwarded-Port"},
		},
		"proxy source without trusted proxies": {
			[]string{"--client-address-from", "forwarded"},
			[]string{"client address from forwarded: needs the trusted proxies"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := s.Start(append([]string{"serve", "authz", "--authz-addr", "127.0.0.1:" + port}, tc.args...)...)
			if !p.Exited(30 * time.Second) {
				t.Fatal("serve authz started")
			}
			if p.ExitCode() == 0 {
				t.Fatalf("exit 0\n%s", p.Tail(20))
			}
			for _, want := range tc.want {
				if !strings.Contains(p.Output(), want) {
					t.Errorf("output does not say %q:\n%s", want, p.Tail(20))
				}
			}
		})
	}
}

// loginThrough logs the device at addr (source port in the block starting
// at portBlock, or any port when 0) in with rp (through the proxy it goes
// via), exchanges the code and asks the resource server whose number it is.
func loginThrough(t *testing.T, sv testbed.Servers, rp *testbed.SP, addr netip.Addr, portBlock int, header http.Header) string {
	t.Helper()
	code, req, errCode := authorizeFrom(t, rp, addr, portBlock, header)
	if code == "" {
		t.Fatalf("from %s: error=%q, want a code", addr, errCode)
	}
	l, err := rp.Exchange(context.Background(), code, req)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	r, err := callAPI(&http.Client{Timeout: 10 * time.Second}, http.MethodGet, sv.API("v2")+"/device-phone-number", l.AccessToken, nil, nil)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("device-phone-number: %v %v %s", r, err, rBody(r))
	}
	number, _ := r.JSON["devicePhoneNumber"].(string)
	return number
}

func rBody(r *apiResponse) string {
	if r == nil {
		return ""
	}
	return string(r.Body)
}

// wantRefused sends the authorization request with header from addr and
// wants access_denied, never a code.
func wantRefused(t *testing.T, rp *testbed.SP, addr netip.Addr, portBlock int, header http.Header) {
	t.Helper()
	code, _, errCode := authorizeFrom(t, rp, addr, portBlock, header)
	if code != "" || errCode != "access_denied" {
		t.Fatalf("from %s with %v: code %t, error %q; want access_denied", addr, header, code != "", errCode)
	}
}

// authorizeFrom sends one authorization request (prompt=none, PKCE) from
// addr, from a source port in [portBlock, portBlock+1000) when portBlock > 0,
// with extra headers, on a connection of its own, and returns the code or
// the error of the redirect.
func authorizeFrom(t *testing.T, rp *testbed.SP, addr netip.Addr, portBlock int, header http.Header) (code string, auth sim.AuthRequest, errCode string) {
	t.Helper()
	auth = rp.NewAuthRequest("")
	req, err := http.NewRequest(http.MethodGet, auth.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := deviceClient(addr, portBlock).Do(req)
	if err != nil {
		t.Fatalf("GET /authorize from %s: %v", addr, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	location, err := resp.Location()
	if err != nil {
		t.Fatalf("GET /authorize from %s: %d without a redirect", addr, resp.StatusCode)
	}
	q := location.Query()
	if q.Get("code") != "" && q.Get("state") != auth.State {
		t.Fatalf("state %q, want %q", q.Get("state"), auth.State)
	}
	return q.Get("code"), auth, q.Get("error")
}

// deviceClient sends from addr (and from a free port of the block when
// portBlock > 0), one connection per request, without following redirects.
func deviceClient(addr netip.Addr, portBlock int) *http.Client {
	dial := func(ctx context.Context, network, target string) (net.Conn, error) {
		var lastErr error
		for range 20 {
			local := &net.TCPAddr{IP: addr.AsSlice()}
			if portBlock > 0 {
				n, _ := rand.Int(rand.Reader, big.NewInt(1000))
				local.Port = portBlock + int(n.Int64())
			}
			d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
			conn, err := d.DialContext(ctx, network, target)
			if err == nil {
				return conn, nil
			}
			lastErr = err
			if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
				break
			}
		}
		return nil, lastErr
	}
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DialContext: dial, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// rawRequest connects from addr to target, writes prefix then a request for
// /readyz, and returns what came back; an error when the connection closed
// without a response.
func rawRequest(addr netip.Addr, target, prefix string) (string, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: addr.AsSlice()}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", target)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, prefix+"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return resp.Status, nil
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// mappedHex is a's IPv4-mapped IPv6 form in hex groups (::ffff:7f0a:7).
func mappedHex(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("%x:%x", uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3]))
}

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteString(d.String())
	}
	return b.String()
}

func hostPort(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// startNginx runs nginx configured as its documentation and ingress-nginx
// do by default, in front of upstream, listening on 127.0.0.1:port and
// connecting from nginxSource; it returns its URL.
func startNginx(t *testing.T, port, upstream string) string {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]s;
		location / {
			proxy_pass http://%[3]s;
			proxy_bind %[4]s;
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Real-IP $remote_addr;
			proxy_set_header X-Forwarded-Proto $scheme;
			proxy_set_header X-Forwarded-Host $host;
			proxy_set_header X-Forwarded-Port $server_port;
			# the device's source port, for CGNAT (--client-port-header X-Real-Port)
			proxy_set_header X-Real-Port $remote_port;
		}
	}
}
`, dir, port, upstream, nginxSource)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProxy(t, dir, nginxBin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
	base := "http://127.0.0.1:" + port
	waitProxy(t, base, filepath.Join(dir, "error.log"))
	return base
}

// startHAProxy runs HAProxy with three frontends on ports: HTTP mode with
// option forwardfor (and X-Real-Port set from the source port) to httpUpstream,
// and TCP mode with send-proxy and send-proxy-v2 to ppUpstream, all
// connecting from haproxySource.
func startHAProxy(t *testing.T, ports []string, httpUpstream, ppUpstream string) (httpURL, pp1URL, pp2URL string) {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`global
	maxconn 256
defaults
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend http_in
	mode http
	bind 127.0.0.1:%[1]s
	option forwardfor
	http-request set-header X-Real-Port %%[src_port]
	default_backend authz_http
backend authz_http
	mode http
	server authz %[4]s source %[6]s
frontend pp1_in
	mode tcp
	bind 127.0.0.1:%[2]s
	default_backend authz_pp1
backend authz_pp1
	mode tcp
	server authz %[5]s send-proxy source %[6]s
frontend pp2_in
	mode tcp
	bind 127.0.0.1:%[3]s
	default_backend authz_pp2
backend authz_pp2
	mode tcp
	server authz %[5]s send-proxy-v2 source %[6]s
`, ports[0], ports[1], ports[2], httpUpstream, ppUpstream, haproxySource)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := startProxy(t, dir, haproxyBin, "-db", "-f", path)
	httpURL, pp1URL, pp2URL = "http://127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1], "http://127.0.0.1:"+ports[2]
	for _, base := range []string{httpURL, pp1URL, pp2URL} {
		waitProxy(t, base, out)
	}
	return httpURL, pp1URL, pp2URL
}

// startProxy starts a proxy process, its output in dir/output.log, and
// stops it (SIGTERM, then SIGKILL) at the end of the test. It returns the
// output file.
func startProxy(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	outPath := filepath.Join(dir, "output.log")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done); out.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			logs, _ := os.ReadFile(outPath)
			t.Logf("%s output:\n%s", filepath.Base(bin), logs)
		}
	})
	return outPath
}

// waitProxy waits until base/readyz answers 200 through the proxy.
func waitProxy(t *testing.T, base, logPath string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(logPath)
			t.Fatalf("%s/readyz through the proxy: %v\n%s", base, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
