package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/syncbuf"
	"github.com/numverify/numverify/internal/testbed"
)

const testAdminToken = "serve-test-admin-token-32-chars-long"

// serveInProcess runs `numverify <args>` in this process with env as its
// environment, waits until ready answers 200, and stops it at the end.
func serveInProcess(t *testing.T, env map[string]string, ready string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr syncbuf.Buffer
	go func() {
		done <- execute(ctx, commands(), args, io.Discard, &stderr, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case code := <-done:
			t.Fatalf("numverify %s exited %d: %s", strings.Join(args, " "), code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", ready, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getStatus(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServeRefusesShortAdminToken: the admin token must have 32 characters
// or more, unless --insecure-dev.
func TestServeRefusesShortAdminToken(t *testing.T) {
	db := pgtest.New(t)
	ports := testbed.FreePorts(t, 2)
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_NETWORK_ADMIN_TOKEN": "a-31-character-admin-token-xxxx"}
	var stderr bytes.Buffer
	code := execute(context.Background(), commands(), []string{"serve", "network", "--network-addr", "127.0.0.1:" + ports[0],
		"--metrics-addr", ""}, io.Discard, &stderr, func(k string) string { return env[k] })
	if code == 0 || !strings.Contains(stderr.String(), "at least 32 characters") {
		t.Fatalf("exit %d, stderr %q; want a refusal naming 32 characters", code, stderr.String())
	}
	if strings.Contains(stderr.String(), env["NUMVERIFY_NETWORK_ADMIN_TOKEN"]) {
		t.Fatal("the refusal prints the token")
	}
	base := "http://127.0.0.1:" + ports[1]
	serveInProcess(t, env, base+"/healthz", "serve", "network", "--network-addr", "127.0.0.1:"+ports[1], "--metrics-addr", "", "--insecure-dev")
	if status, _ := getStatus(t, base+"/sessions", env["NUMVERIFY_NETWORK_ADMIN_TOKEN"]); status != http.StatusOK {
		t.Fatalf("--insecure-dev with the short token: %d", status)
	}
	if status, _ := getStatus(t, base+"/sessions", "wrong"); status != http.StatusUnauthorized {
		t.Fatalf("--insecure-dev with a token set still checks it: got %d", status)
	}
}

// TestServeListenDefaults: the admin API and /metrics listen on loopback
// unless told otherwise.
func TestServeListenDefaults(t *testing.T) {
	cmd, _ := findCommand(commands(), []string{"serve"})
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cmd.cmd.register(fs)
	for name, want := range map[string]string{
		"network-addr": "127.0.0.1:9092", "metrics-addr": "127.0.0.1:9100", "metrics-token": "", "max-conns-per-address": "256",
	} {
		if f := fs.Lookup(name); f == nil || f.DefValue != want {
			t.Errorf("--%s default %v; want %q", name, f, want)
		}
	}
}

// TestServeMetricsPlacement: /metrics is never on a server's own port
// without --metrics-token; it is on --metrics-addr; with the token it is on
// the server's port for requests that carry it.
func TestServeMetricsPlacement(t *testing.T) {
	db := pgtest.New(t)
	ports := testbed.FreePorts(t, 3)
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_NETWORK_ADMIN_TOKEN": testAdminToken}
	base, metricsBase := "http://127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1]
	serveInProcess(t, env, base+"/healthz", "serve", "network", "--network-addr", "127.0.0.1:"+ports[0], "--metrics-addr", "127.0.0.1:"+ports[1])
	if status, body := getStatus(t, base+"/metrics", ""); status == http.StatusOK || strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics on the admin port without a metrics token: %d %.80s", status, body)
	}
	if status, body := getStatus(t, metricsBase+"/metrics", ""); status != http.StatusOK || parseMetrics(t, body)["numverify_http_requests_total"] == nil {
		t.Fatalf("/metrics on --metrics-addr: %d %.200s", status, body)
	}

	const metricsToken = "metrics-token-at-least-32-characters"
	env["NUMVERIFY_METRICS_TOKEN"] = "too-short"
	var stderr bytes.Buffer
	if code := execute(context.Background(), commands(), []string{"serve", "network", "--network-addr", "127.0.0.1:" + ports[2]},
		io.Discard, &stderr, func(k string) string { return env[k] }); code == 0 || !strings.Contains(stderr.String(), "--metrics-token") {
		t.Fatalf("a short metrics token: exit %d %q", code, stderr.String())
	}
	env["NUMVERIFY_METRICS_TOKEN"] = metricsToken
	other := "http://127.0.0.1:" + ports[2]
	serveInProcess(t, env, other+"/healthz", "serve", "network", "--network-addr", "127.0.0.1:"+ports[2], "--metrics-addr", "")
	for _, token := range []string{"", "wrong", testAdminToken} {
		if status, body := getStatus(t, other+"/metrics", token); status != http.StatusUnauthorized || strings.Contains(body, "go_goroutines") {
			t.Errorf("/metrics with token %q: %d; want 401", token, status)
		}
	}
	if status, body := getStatus(t, other+"/metrics", metricsToken); status != http.StatusOK || parseMetrics(t, body)["go_goroutines"] == nil {
		t.Fatalf("/metrics with the metrics token: %d %.80s", status, body)
	}
}

// TestServeCapsConnectionsPerAddress: --max-conns-per-address closes a
// peer's connections beyond the cap at once, and counts them.
func TestServeCapsConnectionsPerAddress(t *testing.T) {
	db := pgtest.New(t)
	ports := testbed.FreePorts(t, 2)
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_NETWORK_ADMIN_TOKEN": testAdminToken}
	addr, metricsBase := "127.0.0.1:"+ports[0], "http://127.0.0.1:"+ports[1]
	serveInProcess(t, env, "http://"+addr+"/healthz", "serve", "network", "--network-addr", addr,
		"--metrics-addr", "127.0.0.1:"+ports[1], "--max-conns-per-address", "2")
	answered := func(conn net.Conn) bool {
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	dial := func(source string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	source := "127.0.0.77" // not the readiness poll's address

	for i := 0; i < 2; i++ {
		if !answered(dial(source)) {
			t.Fatalf("connection %d of 2 refused", i+1)
		}
	}
	if answered(dial(source)) {
		t.Fatal("a 3rd concurrent connection from one address was served with --max-conns-per-address 2")
	}
	if !answered(dial("127.0.0.78")) {
		t.Fatal("another address refused")
	}
	_, body := getStatus(t, metricsBase+"/metrics", "")
	if v, ok := metricValue(parseMetrics(t, body), "numverify_connections_rejected_total", map[string]string{"server": "network"}); !ok || v != 1 {
		t.Fatalf("metrics lack the rejected connection:\n%s", grepLines(body, "connections"))
	}
}

// parseMetrics reads a /metrics body in the Prometheus text format.
func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%.300s", err, body)
	}
	return families
}

// metricValue is the value of the counter or gauge name whose labels are
// exactly labels.
func metricValue(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range families[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if !maps.Equal(got, labels) {
			continue
		}
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue(), true
		}
		return m.GetCounter().GetValue(), true
	}
	return 0, false
}

func grepLines(text, word string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, word) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestNetworkAttachRefusesNonUnicast: `network attach --ip` takes only a
// unicast address.
func TestNetworkAttachRefusesNonUnicast(t *testing.T) {
	db := pgtest.New(t)
	env := map[string]string{"DATABASE_URL": db.URL}
	for _, ip := range []string{"0.0.0.0", "::", "224.0.0.251", "ff02::1", "255.255.255.255"} {
		var stderr bytes.Buffer
		code := execute(context.Background(), commands(), []string{"network", "attach", "--msisdn", "+33612345678", "--ip", ip},
			io.Discard, &stderr, func(k string) string { return env[k] })
		if code != 1 || !strings.Contains(stderr.String(), "no device's address") {
			t.Errorf("attach --ip %s: exit %d %q; want refused", ip, code, stderr.String())
		}
	}
	if code := execute(context.Background(), commands(), []string{"network", "attach", "--msisdn", "+33612345678", "--ip", "127.10.9.9"},
		io.Discard, io.Discard, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("attach a unicast address: exit %d", code)
	}
}
