package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/sim"
)

// TestEndToEndSeparateProcesses is issue 5's acceptance test: the built
// binary runs `serve authz`, `serve resource` and `serve network` as three
// processes on a fresh database, the SP backend as a fourth, and three
// devices, each from its own loopback address through `numverify device`,
// run the whole flow through the SP page; then the same devices go straight
// to /authorize, one types someone else's number, and a device on Wi-Fi is
// refused.
func TestEndToEndSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts four servers")
	}
	bin := buildBinary(t)
	_, dbURL := pgtest.NewEmpty(t)
	adminToken := randomHex(32) // at least 32 characters
	env := []string{
		"DATABASE_URL=" + dbURL,
		"NUMVERIFY_SECRETS_KEY=" + randomHex(32),
		"NUMVERIFY_NETWORK_ADMIN_TOKEN=" + adminToken,
		"NUMVERIFY_LOG_FORMAT=text",
	}
	// Keys by role: the resource server gets its own secrets key and never
	// the one sealing the signing keys; the authorization server both.
	resourceKey := "NUMVERIFY_RESOURCE_SECRETS_KEY=" + randomHex(32)
	componentEnv := map[string][]string{
		"authz":    append(slices.Clone(env), resourceKey),
		"resource": {"DATABASE_URL=" + dbURL, "NUMVERIFY_LOG_FORMAT=text", resourceKey},
		"network":  env,
	}
	runBinary(t, bin, env, "migrate", "up")

	ports := freePorts(t, 4)
	stack := e2eStack{
		issuer:     "http://127.0.0.1:" + ports[0],
		apiURL:     "http://127.0.0.1:" + ports[1] + "/number-verification/v2",
		networkURL: "http://127.0.0.1:" + ports[2],
		spURL:      "http://127.0.0.1:" + ports[3],
	}
	for _, component := range []string{"authz", "resource", "network"} {
		startBinary(t, bin, componentEnv[component], append([]string{"serve", component}, e2eServeArgs(component, stack, ports)...)...)
	}
	waitHealthy(t, stack.issuer+"/healthz", strings.TrimSuffix(stack.apiURL, "/number-verification/v2")+"/healthz", stack.networkURL+"/healthz")

	redirect := stack.spURL + "/callback"
	created := runBinary(t, bin, env, "client", "create", "--name", "e2e-sp", "--redirect-uri", redirect,
		"--scope", "openid", "--scope", "dpv:FraudPreventionAndDetection#number-verification:verify", "--json")
	var client struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(created), &client); err != nil || client.ID == "" || client.Secret == "" {
		t.Fatalf("client create --json printed %q: %v", created, err)
	}
	startBinary(t, bin, env, "sp", "--sp-addr", "127.0.0.1:"+ports[3], "--sp-issuer", stack.issuer,
		"--sp-client-id", client.ID, "--sp-client-secret", client.Secret, "--sp-redirect-url", redirect, "--sp-api-url", stack.apiURL)
	waitHealthy(t, stack.spURL+"/healthz")

	network := []string{"--network-url", stack.networkURL, "--network-admin-token", adminToken}
	base := randomDeviceBase()
	numbers := []string{"+33612340001", "+33612340002", "+33612340003"}
	startURL := func(number string) string {
		return stack.spURL + "/start?" + url.Values{"phoneNumber": {number}}.Encode()
	}
	for i, number := range numbers {
		addr := nthAddr(base, i+1)
		t.Run("device "+strconv.Itoa(i+1), func(t *testing.T) {
			// Attached through the admin API by `device --msisdn`, then the SP
			// page, from the device's address, as the phone's browser.
			out := runBinary(t, bin, nil, append([]string{"device", "--msisdn", number, "--ip", addr.String(),
				"--keep-session", "--follow", "--authorize-url", startURL(number)}, network...)...)
			if !strings.Contains(out, "Verified: "+number) {
				t.Fatalf("the SP page did not verify the device's own number:\n%s", out)
			}
			// Someone else's number, typed on this device: not verified.
			other := numbers[(i+1)%len(numbers)]
			// The runner exits non-zero unless the SP page says verified.
			out, err := runBinaryErr(bin, nil, "device", "--ip", addr.String(), "--follow", "--authorize-url", startURL(other))
			if err == nil || !strings.Contains(out, "Not verified") || strings.Contains(out, "Verified: ") {
				t.Fatalf("another subscriber's number was not refused (exit %v):\n%s", err, out)
			}
			// Straight at /authorize, as an SDK would: a code for the SP.
			authorize := authorizeURL(stack.issuer, client.ID, redirect, "e2e-state-"+strconv.Itoa(i))
			out = runBinary(t, bin, nil, "device", "--ip", addr.String(), "--json", "--authorize-url", authorize)
			var report struct {
				Device  string      `json:"device"`
				Outcome sim.Outcome `json:"outcome"`
			}
			if err := json.Unmarshal([]byte(out), &report); err != nil {
				t.Fatalf("device --json: %v\n%s", err, out)
			}
			if report.Device != addr.String() || report.Outcome.Code == "" || report.Outcome.State != "e2e-state-"+strconv.Itoa(i) ||
				!strings.HasPrefix(report.Outcome.Callback, redirect+"?") {
				t.Fatalf("outcome %+v", report)
			}
		})
	}

	t.Run("device on Wi-Fi", func(t *testing.T) {
		wifi := nthAddr(base, 200).String()
		out, err := runBinaryErr(bin, nil, "device", "--ip", wifi, "--follow", "--authorize-url", startURL(numbers[0]))
		if err == nil || !strings.Contains(out, "Not verified") || !strings.Contains(out, "access_denied") {
			t.Fatalf("the SP page should say access_denied (exit %v):\n%s", err, out)
		}
		out, err = runBinaryErr(bin, nil, "device", "--ip", wifi, "--authorize-url", authorizeURL(stack.issuer, client.ID, redirect, "e2e-state-wifi"))
		if err == nil || !strings.Contains(out, "error access_denied") {
			t.Fatalf("device on Wi-Fi: exit %v, output:\n%s", err, out)
		}
	})
}

type e2eStack struct{ issuer, apiURL, networkURL, spURL string }

func authorizeURL(issuer, clientID, redirect, state string) string {
	verifier := oauth2.GenerateVerifier()
	config := oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: strings.Fields(sim.DefaultScope),
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/authorize"}}
	return config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rand.Text()))
}

// buildBinary builds cmd/numverify into the test's temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "numverify")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs the binary to completion and returns its stdout; a non-zero
// exit fails the test.
func runBinary(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	out, err := runBinaryErr(bin, env, args...)
	if err != nil {
		t.Fatalf("numverify %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func runBinaryErr(bin string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// startBinary starts a long-running command, stopped with SIGTERM when the
// test ends; its output is logged if the test fails.
func startBinary(t *testing.T, bin string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("numverify %s:\n%s", strings.Join(args, " "), output.String())
		}
	})
}

// waitHealthy waits until every URL answers 200.
func waitHealthy(t *testing.T, urls ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range urls {
		for {
			resp, err := http.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not become healthy: %v", u, errors.Join(err))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func freePorts(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]string, n)
	seen := map[int]bool{}
	for i := range ports {
		for {
			p, err := pgcluster.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			if !seen[p] {
				seen[p] = true
				ports[i] = strconv.Itoa(p)
				break
			}
		}
	}
	return ports
}

// randomDeviceBase is a random 127.10.x.0 so that runs side by side (and
// the demo) use different addresses.
func randomDeviceBase() netip.Addr {
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	return netip.AddrFrom4([4]byte{127, 10, 100 + b[0]%100, 0})
}

func nthAddr(base netip.Addr, n int) netip.Addr {
	a := base.As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// e2eServeArgs are the flags of `serve <component>` for the test's ports
// (each process's metrics listener on a port of its own).
func e2eServeArgs(component string, stack e2eStack, ports []string) []string {
	metrics := []string{"--metrics-addr", "127.0.0.1:0"}
	switch component {
	case "authz":
		return append(metrics, "--authz-addr", "127.0.0.1:"+ports[0], "--issuer", stack.issuer)
	case "resource":
		return append(metrics, "--resource-addr", "127.0.0.1:"+ports[1], "--issuer", stack.issuer)
	case "network":
		return append(metrics, "--network-addr", "127.0.0.1:"+ports[2])
	}
	return nil
}
