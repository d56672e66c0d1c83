package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/sim"
)

// TestGatewayCommandsAndDeviceOverRadius drives the demo's stack (the
// network's RADIUS accounting server beside the three servers) as the
// compose testbed does: `network gateway start|stop` open and close a
// session the admin API then sees; `device --attach-via radius` opens its
// own by a Start, logs in silently from that address, and stops it at exit.
func TestGatewayCommandsAndDeviceOverRadius(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the three servers against Postgres")
	}
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	registry := prometheus.NewRegistry()
	stack, err := startDemoStack(ctx, serveDeps{Pool: db.Pool, Logger: slog.New(slog.DiscardHandler), DatabaseURL: db.URL, Registry: registry}, registry)
	if err != nil {
		t.Fatal(err)
	}
	defer stack.stop()
	admin := &sim.NetworkAdmin{BaseURL: stack.networkURL, Token: stack.adminToken}
	env := map[string]string{"NUMVERIFY_RADIUS_ADDR": stack.radiusAddr, "NUMVERIFY_RADIUS_SECRET": stack.radiusSecret}
	run := func(t *testing.T, env map[string]string, args ...string) (int, string) {
		t.Helper()
		var errOut bytes.Buffer
		code := execute(ctx, commands(), args, &errOut, &errOut, func(k string) string { return env[k] })
		return code, errOut.String()
	}
	base := demoAddressBase()
	number, ip := "+33612345678", base.Next()

	if code, out := run(t, env, "network", "gateway", "start", "--msisdn", number, "--ip", ip.String(), "--session-id", "gw-test-1", "--rat", "LTE"); code != 0 {
		t.Fatalf("network gateway start: exit %d\n%s", code, out)
	}
	if s, err := admin.Lookup(ctx, ip); err != nil || s == nil || s.MSISDN != number {
		t.Fatalf("after gateway start, lookup %s = %+v, %v; want %s…", ip, s, err, number[:6])
	}
	if code, out := run(t, env, "network", "gateway", "stop", "--session-id", "gw-test-1", "--ip", ip.String()); code != 0 {
		t.Fatalf("network gateway stop: exit %d\n%s", code, out)
	}
	if s, err := admin.Lookup(ctx, ip); err != nil || s != nil {
		t.Fatalf("after gateway stop, lookup %s = %+v, %v; want no session", ip, s, err)
	}

	// The handset: a silent login from the address its own Start attached.
	key, err := sim.GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	redirect, scopes := "http://localhost:8080/callback", []string{"openid", "number-verification:verify"}
	clientID, err := registerDemoClient(ctx, db.Pool, stack.secretsKey, redirect, scopes, key)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := sim.NewRelyingParty(ctx, sim.RPConfig{Issuer: stack.issuer, ClientID: clientID, ClientKey: key,
		RedirectURL: redirect, Scopes: scopes, APIURL: stack.apiURL})
	if err != nil {
		t.Fatal(err)
	}
	device := base.Next().Next()
	if code, out := run(t, env, "device", "--msisdn", number, "--ip", device.String(), "--attach-via", "radius",
		"--authorize-url", rp.NewAuthRequest("").URL); code != 0 {
		t.Fatalf("device --attach-via radius: exit %d (no code from %s?)\n%s", code, device, out)
	}
	if s, err := admin.Lookup(ctx, device); err != nil || s != nil {
		t.Fatalf("after the device exited, lookup %s = %+v, %v; want no session (its Stop)", device, s, err)
	}

	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"start without a secret", map[string]string{"NUMVERIFY_RADIUS_ADDR": stack.radiusAddr},
			[]string{"network", "gateway", "start", "--msisdn", number, "--ip", ip.String()}, "--radius-secret (NUMVERIFY_RADIUS_SECRET) is required"},
		{"start with a wrong secret", map[string]string{"NUMVERIFY_RADIUS_ADDR": stack.radiusAddr, "NUMVERIFY_RADIUS_SECRET": "not-the-secret-0123456789"},
			[]string{"network", "gateway", "start", "--msisdn", number, "--ip", ip.String(), "--radius-timeout", "100ms", "--radius-retries", "1"},
			"no Accounting-Response"},
		{"start with a bad number", env, []string{"network", "gateway", "start", "--msisdn", "0612345678", "--ip", ip.String()}, "--msisdn"},
		{"start with a bad address", env, []string{"network", "gateway", "start", "--msisdn", number, "--ip", "127.10.0"}, `--ip "127.10.0"`},
		{"device by radius without an address", env,
			[]string{"device", "--msisdn", number, "--attach-via", "radius", "--authorize-url", "http://127.0.0.1:1/authorize"},
			"--attach-via radius needs --msisdn and an address"},
		{"device by neither", env,
			[]string{"device", "--msisdn", number, "--ip", device.String(), "--attach-via", "carrier-pigeon", "--authorize-url", "http://127.0.0.1:1/authorize"},
			`--attach-via "carrier-pigeon": admin or radius`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := run(t, tt.env, tt.args...)
			if code != 1 || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tt.want, out)
			}
			if strings.Contains(out, "612345678") || strings.Contains(out, stack.radiusSecret) {
				t.Errorf("the error shows the number or the secret:\n%s", out)
			}
		})
	}
	if s, err := admin.Lookup(ctx, ip); err != nil || s != nil {
		t.Fatalf("a refused command opened a session at %s: %+v, %v", ip, s, err)
	}
}
