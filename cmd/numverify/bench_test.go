package main

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/numverify/numverify/internal/pgtest"
	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// TestBenchAgainstServe runs `numverify bench` against `numverify serve`
// (every server, single-use tokens): an open loop of flow+verify (a second
// use of any token would fail) and a closed loop of logins, each reporting
// per-interval lines.
func TestBenchAgainstServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the three servers and load")
	}
	db := pgtest.New(t)
	ports := testbed.FreePorts(t, 3)
	issuer := "http://127.0.0.1:" + ports[0]
	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_SECRETS_KEY": randomHex(32),
		"NUMVERIFY_RESOURCE_SECRETS_KEY": randomHex(32), "NUMVERIFY_NETWORK_ADMIN_TOKEN": testAdminToken}
	serveInProcess(t, env, issuer+"/healthz", "serve", "--single-use-tokens", "--issuer", issuer,
		"--authz-addr", "127.0.0.1:"+ports[0], "--resource-addr", "127.0.0.1:"+ports[1], "--network-addr", "127.0.0.1:"+ports[2],
		"--metrics-addr", "")
	clientID, secret := createTestClient(t, env)

	bench := func(t *testing.T, prefix netip.Prefix, args ...string) *sim.BenchReport {
		t.Helper()
		out := t.TempDir() + "/report.json"
		args = append([]string{"bench", "--json", "--output", out, "--issuer", issuer,
			"--api-url", "http://127.0.0.1:" + ports[1] + "/number-verification/v2", "--network-url", "http://127.0.0.1:" + ports[2],
			"--network-admin-token", testAdminToken, "--client-id", clientID, "--client-secret", secret,
			"--device-prefix", prefix.String(), "--report-every", "500ms"}, args...)
		if code := execute(context.Background(), commands(), args, io.Discard, io.Discard, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("bench exited %d", code)
		}
		raw, err := os.ReadFile(out)
		var rep sim.BenchReport
		if err != nil || json.Unmarshal(raw, &rep) != nil {
			t.Fatalf("report: %v %s", err, raw)
		}
		return &rep
	}
	steps := func(rep *sim.BenchReport) map[string]uint64 {
		counts := map[string]uint64{}
		for _, s := range rep.Steps {
			counts[s.Step] = s.Count
		}
		return counts
	}
	prefix := testbed.DevicePrefix()
	base := prefix.Addr()

	t.Run("open loop, flow+verify", func(t *testing.T) {
		rep := bench(t, netip.PrefixFrom(base, 26), "--mode", "flow+verify", "--rate", "40", "--devices", "8", "--duration", "2s")
		c := steps(rep)
		if rep.Failed != 0 || len(rep.Errors) != 0 || rep.OK < 40 {
			t.Fatalf("ok %d failed %d errors %+v; want about 80 flows and no error", rep.OK, rep.Failed, rep.Errors)
		}
		// At 40/s for 2 s about 80 arrivals; well under the capacity, so
		// the open loop starts them on schedule (not as fast as it can).
		if rep.OK > 90 || rep.Rate != 40 {
			t.Errorf("ok %d at rate %v: more than the schedule allows", rep.OK, rep.Rate)
		}
		if c["token"] != rep.OK || c["verify"] != rep.OK || c["flow"] != rep.OK {
			t.Errorf("steps %v: want one token and exactly one verify per flow (%d)", c, rep.OK)
		}
		if len(rep.Intervals) < 3 {
			t.Errorf("%d interval lines in 2 s at --report-every 500ms", len(rep.Intervals))
		}
		var sum uint64
		for _, iv := range rep.Intervals {
			sum += iv.OK
			if iv.OK > 0 && (iv.P50 <= 0 || iv.P99 < iv.P50) {
				t.Errorf("interval %+v", iv)
			}
		}
		if sum != rep.OK {
			t.Errorf("intervals count %d flows, the report %d", sum, rep.OK)
		}
	})
	t.Run("closed loop, login", func(t *testing.T) {
		rep := bench(t, netip.PrefixFrom(testbed.NthAddr(prefix, 64), 26),
			"--mode", "login", "--devices", "4", "--duration", "1s")
		c := steps(rep)
		if rep.Failed != 0 || rep.OK == 0 || c["verify"] != 0 || c["login"] != rep.OK {
			t.Fatalf("ok %d failed %d steps %v errors %+v; want logins only", rep.OK, rep.Failed, c, rep.Errors)
		}
	})
}
