package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testbed"
)

// radclientPath is FreeRADIUS's radclient (Debian freeradius-utils): a RADIUS
// client nobody here wrote. Without it the test is skipped, unless
// NUMVERIFY_REQUIRE_RADIUS is set (CI), where that is a failure.
func radclientPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("radclient")
	if err != nil {
		if os.Getenv("NUMVERIFY_REQUIRE_RADIUS") != "" {
			t.Fatalf("radclient not found and NUMVERIFY_REQUIRE_RADIUS is set: %v", err)
		}
		t.Skip("radclient (freeradius-utils) not installed")
	}
	return path
}

// gateway sends accounting as a packet gateway would, through radclient.
type gateway struct {
	t      *testing.T
	bin    string
	raddb  string // an empty local dictionary: radclient needs one, the system's /etc/freeradius may be absent
	server string
	secret string
}

// send sends one Accounting-Request (attributes as radclient reads them,
// one per line) and reports whether an Accounting-Response came back.
func (g *gateway) send(secret string, attrs ...string) bool {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, "-d", g.raddb, "-r", "2", "-t", "1", g.server, "acct", secret)
	cmd.Stdin = strings.NewReader(strings.Join(attrs, "\n") + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	answered := err == nil && strings.Contains(out.String(), "Accounting-Response")
	if err != nil && !strings.Contains(out.String(), "Sent Accounting-Request") { // not sent: radclient refused the attributes
		g.t.Fatalf("radclient: %v\n%s", err, out.String())
	}
	return answered
}

// acct is the attributes of one request of a 3GPP gateway.
func acct(status, nasIP, sessionID, msisdn, address string, extra ...string) []string {
	attrs := []string{"Acct-Status-Type = " + status, "NAS-IP-Address = " + nasIP}
	if sessionID != "" {
		attrs = append(attrs, `Acct-Session-Id = "`+sessionID+`"`)
	}
	if msisdn != "" {
		attrs = append(attrs, `Calling-Station-Id = "`+msisdn+`"`, `Called-Station-Id = "internet"`,
			`3GPP-IMSI = "208019900000001"`, "3GPP-RAT-Type = EUTRAN")
	}
	switch {
	case strings.Contains(address, ":"):
		attrs = append(attrs, "Framed-IPv6-Prefix = "+address)
	case address != "":
		attrs = append(attrs, "Framed-IP-Address = "+address)
	}
	return append(attrs, extra...)
}

// holder runs `numverify network lookup` and returns the MSISDN holding
// address now ("" when nobody does).
func holder(t *testing.T, s *testbed.Stack, address string) string {
	t.Helper()
	out, err := testbed.RunErr(t, s.Env, "network", "lookup", "--ip", address, "--json")
	if err != nil {
		if strings.Contains(out, "no session holds") {
			return ""
		}
		t.Fatalf("network lookup --ip %s: %v\n%s", address, err, out)
	}
	var session struct {
		MSISDN string `json:"msisdn"`
	}
	if err := json.Unmarshal([]byte(out), &session); err != nil {
		t.Fatalf("network lookup printed %q: %v", out, err)
	}
	return session.MSISDN
}

var radiusListening = regexp.MustCompile(`"server":"radius","addr":"([^"]+)"`)

// startRADIUSNetwork starts `serve network` with a RADIUS listener on a free
// port that shares secret with the gateways, and returns the process, the
// base URL of its HTTP listener and the RADIUS address.
func startRADIUSNetwork(t *testing.T, s *testbed.Stack, secret string) (*testbed.Process, string, string) {
	t.Helper()
	port := testbed.FreePorts(t, 1)[0]
	p := s.Start("serve", "network", "--network-addr", "127.0.0.1:"+port, "--radius-addr", "127.0.0.1:0", "--radius-secret", secret)
	testbed.WaitHealthy(t, p, "http://127.0.0.1:"+port+"/readyz")
	m := radiusListening.FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no RADIUS listening line:\n%s", p.Tail(20))
	}
	return p, "http://127.0.0.1:" + port, m[1]
}

// TestRADIUSAccountingWithRadclient drives a real `numverify serve network`
// with FreeRADIUS's radclient as the packet gateway, and reads the result
// with `numverify network lookup` after each request.
func TestRADIUSAccountingWithRadclient(t *testing.T) {
	bin := radclientPath(t)
	s := testbed.NewStack(t, "")
	const secret = "gateway-shared-secret-0123"
	p, base, radiusAddr := startRADIUSNetwork(t, s, secret)
	raddb := t.TempDir()
	if err := os.WriteFile(filepath.Join(raddb, "dictionary"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, bin: bin, raddb: raddb, server: radiusAddr, secret: secret}
	prefix := testbed.DevicePrefix()
	ip := testbed.NthAddr(prefix, 1).String()
	ip2 := testbed.NthAddr(prefix, 2).String()
	const (
		alice = "33612345601"
		bob   = "33612345602"
		carol = "33612345603"
	)
	pgw1, pgw2 := "192.0.2.1", "192.0.2.2"
	ipv6Prefix := fmt.Sprintf("fd00:6e77:%x::/64", time.Now().UnixNano()&0xffff)
	ipv6Host := strings.TrimSuffix(ipv6Prefix, "::/64") + "::1234"

	steps := []struct {
		name     string
		secret   string
		attrs    []string
		answered bool
		address  string
		holder   string
	}{
		{"Start", secret, acct("Start", pgw1, "a-1", alice, ip), true, ip, "+" + alice},
		{"Interim-Update", secret, acct("Interim-Update", pgw1, "a-1", alice, ip, "Acct-Session-Time = 60"), true, ip, "+" + alice},
		{"a duplicate Start", secret, acct("Start", pgw1, "a-1", alice, ip), true, ip, "+" + alice},
		{"a Start whose Stop was lost takes the address", secret, acct("Start", pgw2, "b-1", bob, ip), true, ip, "+" + bob},
		{"the late Stop closes only its own session", secret, acct("Stop", pgw1, "a-1", alice, ip), true, ip, "+" + bob},
		{"a late Interim-Update does not reopen it", secret, acct("Interim-Update", pgw1, "a-1", alice, ip), true, ip, "+" + bob},
		{"a wrong secret gets no answer and changes nothing", "not-the-secret", acct("Stop", pgw2, "b-1", bob, ip), false, ip, "+" + bob},
		{"Stop", secret, acct("Stop", pgw2, "b-1", bob, ip), true, ip, ""},
		{"a duplicate Stop", secret, acct("Stop", pgw2, "b-1", bob, ip), true, ip, ""},
		{"a malformed number is answered and recorded as nothing", secret, acct("Start", pgw1, "m-1", "33-6x", ip), true, ip, ""},
		{"a Stop delivered before its Start", secret, acct("Stop", pgw1, "c-0", carol, ip), true, ip, ""},
		{"… keeps that Start from opening", secret, acct("Start", pgw1, "c-0", carol, ip), true, ip, ""},
		{"Start on IPv6", secret, acct("Start", pgw1, "c-1", carol, ipv6Prefix), true, ipv6Host, "+" + carol},
		{"an Interim-Update whose Start was lost opens", secret, acct("Interim-Update", pgw2, "a-2", alice, ip2), true, ip2, "+" + alice},
		{"Accounting-On closes the NAS's sessions", secret, acct("Accounting-On", pgw1, "", "", ""), true, ipv6Host, ""},
		{"… and no other NAS's", secret, nil, false, ip2, "+" + alice},
	}
	for _, step := range steps {
		if step.attrs != nil {
			if got := g.send(step.secret, step.attrs...); got != step.answered {
				t.Fatalf("%s: answered %v; want %v", step.name, got, step.answered)
			}
		}
		if got := holder(t, s, step.address); got != step.holder {
			t.Fatalf("%s: network lookup --ip %s = %q; want %q", step.name, step.address, got, step.holder)
		}
	}
	for reason, want := range map[string]float64{"bad_authenticator": 1, "invalid_msisdn": 1} {
		if v := testbed.Metric(t, base, "numverify_radius_rejected_total", map[string]string{"reason": reason}); v < want {
			t.Errorf("numverify_radius_rejected_total{reason=%q} = %v; want at least %v", reason, v, want)
		}
	}
	for _, number := range []string{alice, bob, carol} {
		if strings.Contains(p.Output(), number[2:]) {
			t.Errorf("the server's log holds a subscriber number")
		}
	}
}

// TestRADIUSBenchMatchesModel runs a short `numverify bench --mode radius`
// against `serve network` and requires its check of the session table
// against the generator's model to pass.
func TestRADIUSBenchMatchesModel(t *testing.T) {
	s := testbed.NewStack(t, "")
	const secret = "gateway-shared-secret-0123"
	_, _, radiusAddr := startRADIUSNetwork(t, s, secret)
	out := s.Run("bench", "--mode", "radius", "--radius-addr", radiusAddr, "--radius-secret", secret, "--devices", "300",
		"--rate", "300", "--duration", "2s", "--device-prefix", "10.77.0.0/16", "--verify", "--json")
	var report struct {
		Answered   uint64 `json:"answered"`
		Unanswered uint64 `json:"unanswered"`
		Verify     *struct {
			Model int `json:"model_open"`
			Table int `json:"table_open"`
		} `json:"verify"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || report.Verify == nil {
		t.Fatalf("bench printed %q: %v", out, err)
	}
	if report.Answered < 500 || report.Unanswered != 0 || report.Verify.Model != report.Verify.Table || report.Verify.Model < 150 {
		t.Fatalf("bench report %s", out)
	}
}
