package e2e

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// TestEndToEndSeparateProcesses is issue 5's acceptance test: the built
// binary runs `serve authz`, `serve resource` and `serve network` as three
// processes on a fresh database (the resource server given only its own
// secrets key), the SP backend as a fourth, and three devices, each from
// its own loopback address through `numverify device`, run the whole flow
// through the SP page; then the same devices go straight to /authorize, one
// types someone else's number, and a device on Wi-Fi is refused.
func TestEndToEndSeparateProcesses(t *testing.T) {
	s := testbed.NewStack(t, "")
	a := s.ServeApart(nil, nil, nil)

	port := testbed.FreePorts(t, 1)[0]
	spURL := "http://127.0.0.1:" + port
	redirect := spURL + "/callback"
	created := s.Run("client", "create", "--name", "e2e-sp", "--redirect-uri", redirect,
		"--scope", "openid", "--scope", testbed.ScopeVerify, "--json")
	client := testbed.Client{Redirect: redirect}
	if err := json.Unmarshal([]byte(created), &client); err != nil || client.ID == "" || client.Secret == "" {
		t.Fatalf("client create --json printed no client: %v", err)
	}
	sp := s.Start("sp", "--sp-addr", "127.0.0.1:"+port, "--sp-issuer", a.Authz,
		"--sp-client-id", client.ID, "--sp-client-secret", client.Secret, "--sp-redirect-url", redirect, "--sp-api-url", a.API("v2"))
	testbed.WaitHealthy(t, sp, spURL+"/healthz")
	rp := testbed.NewSP(t, a.Authz, client, strings.Fields(sim.DefaultScope)...)

	network := []string{"--network-url", a.Network, "--network-admin-token", s.AdminToken}
	prefix := testbed.DevicePrefix()
	numbers := []string{"+33612340001", "+33612340002", "+33612340003"}
	startURL := func(number string) string {
		return spURL + "/start?" + url.Values{"phoneNumber": {number}}.Encode()
	}
	for i, number := range numbers {
		addr := testbed.NthAddr(prefix, i+1)
		t.Run("device "+strconv.Itoa(i+1), func(t *testing.T) {
			// Attached through the admin API by `device --msisdn`, then the SP
			// page, from the device's address, as the phone's browser.
			out := testbed.Run(t, nil, append([]string{"device", "--msisdn", number, "--ip", addr.String(),
				"--keep-session", "--follow", "--authorize-url", startURL(number)}, network...)...)
			if !strings.Contains(out, "Verified: "+number) {
				t.Fatalf("the SP page did not verify the device's own number:\n%s", out)
			}
			// Someone else's number, typed on this device: not verified.
			other := numbers[(i+1)%len(numbers)]
			// The runner exits non-zero unless the SP page says verified.
			out, err := testbed.RunErr(t, nil, "device", "--ip", addr.String(), "--follow", "--authorize-url", startURL(other))
			if err == nil || !strings.Contains(out, "Not verified") || strings.Contains(out, "Verified: ") {
				t.Fatalf("another subscriber's number was not refused (exit %v):\n%s", err, out)
			}
			// Straight at /authorize, as an SDK would: a code for the SP.
			req := rp.NewAuthRequest("")
			out = testbed.Run(t, nil, "device", "--ip", addr.String(), "--json", "--authorize-url", req.URL)
			var report struct {
				Device  string      `json:"device"`
				Outcome sim.Outcome `json:"outcome"`
			}
			if err := json.Unmarshal([]byte(out), &report); err != nil {
				t.Fatalf("device --json: %v\n%s", err, out)
			}
			if report.Device != addr.String() || report.Outcome.Code == "" || report.Outcome.State != req.State ||
				!strings.HasPrefix(report.Outcome.Callback, redirect+"?") {
				t.Fatalf("outcome %+v", report)
			}
		})
	}

	t.Run("device on Wi-Fi", func(t *testing.T) {
		wifi := testbed.NthAddr(prefix, 200).String()
		out, err := testbed.RunErr(t, nil, "device", "--ip", wifi, "--follow", "--authorize-url", startURL(numbers[0]))
		if err == nil || !strings.Contains(out, "Not verified") || !strings.Contains(out, "access_denied") {
			t.Fatalf("the SP page should say access_denied (exit %v):\n%s", err, out)
		}
		out, err = testbed.RunErr(t, nil, "device", "--ip", wifi, "--authorize-url", rp.NewAuthRequest("").URL)
		if err == nil || !strings.Contains(out, "error access_denied") {
			t.Fatalf("device on Wi-Fi: exit %v, output:\n%s", err, out)
		}
	})
}
