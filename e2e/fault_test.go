package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgcluster"
	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

const outage = 5 * time.Second

// TestPostgresOutage is issue 6's fault test. On a PostgreSQL cluster the
// test owns, `numverify serve` (single-use tokens, so verify needs Postgres
// too) runs under `numverify bench` while Postgres is stopped for 5 seconds
// and started again. During the outage, probes from a device of their own
// check that every endpoint answers a clean 503 / temporarily_unavailable
// within its timeout, /readyz 503 and /healthz 200; after it, a full flow
// must succeed within 5 seconds, the same process still running. The bench's
// report must hold only those clean errors, none for the wrong subscriber,
// and its failures must fit in the outage plus the recovery bound.
func TestPostgresOutage(t *testing.T) {
	testbed.Binary(t)
	ctx := context.Background()
	cluster, err := pgcluster.Start(ctx)
	if errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Remove() })
	dbURL, err := cluster.CreateDatabase(ctx, "numverify")
	if err != nil {
		t.Fatal(err)
	}
	s := testbed.NewStack(t, dbURL)
	sv := s.Serve("--database-max-conns", "40", "--single-use-tokens", "--log-level", "warn")
	client := s.CreateClient("fault-sp")

	prefix := testbed.DevicePrefix()
	const probeNumber = "+33612000001"
	probe := s.Attach(sv.Network, probeNumber, testbed.NthAddr(prefix, 200))
	// Before the outage: single-use tokens for the API probes (a 503 must not
	// use them up) and a code for the token probe.
	spVerify := testbed.NewSP(t, sv.Authz, client, "openid", testbed.ScopeVerify)
	spShare := testbed.NewSP(t, sv.Authz, client, "openid", testbed.ScopeShare)
	mustLogin(t, spShare, probe) // its keys fetched before the outage, as an SP's are
	beforeV2 := mustLogin(t, spVerify, probe)
	beforeV0 := mustLogin(t, spVerify, probe)
	pendingCode, pendingReq, err := spVerify.Authorize(ctx, probe, "")
	if err != nil {
		t.Fatal(err)
	}

	bench := startBench(s, sv, client, prefix, "+33700100000", 6, 12*time.Second)
	waitForLoad(t, sv.Authz, 30, bench)
	time.Sleep(time.Second)

	stopAt := time.Now()
	if err := cluster.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres stopped in %v", time.Since(stopAt).Round(time.Millisecond))

	probeClient := &http.Client{Timeout: 5 * time.Second}
	rounds := 0
	for time.Since(stopAt) < outage-500*time.Millisecond {
		rounds++
		for _, p := range outageProbes(sv, s.AdminToken, probe, spVerify, beforeV2.AccessToken, beforeV0.AccessToken, pendingCode, pendingReq) {
			start := time.Now()
			problem := p.check(probeClient)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("outage round %d, %s: answered after %v", rounds, p.name, took)
			}
			if problem != "" {
				t.Errorf("outage round %d, %s: %s", rounds, p.name, problem)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if rounds < 3 {
		t.Errorf("only %d probe rounds during the outage", rounds)
	}
	time.Sleep(time.Until(stopAt.Add(outage)))
	if err := cluster.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	t.Logf("postgres back after %v", resumed.Sub(stopAt).Round(time.Millisecond))

	// Recovery: a whole flow (authorize → token → share, the number being the
	// device's) within 5 seconds, the same numverify process.
	var recovered time.Duration
	for recovered == 0 {
		l, err := spShare.Login(ctx, probe)
		if err == nil {
			var number string
			number, err = sharedNumber(probeClient, sv.API("v2"), l.AccessToken)
			if err == nil && number != probeNumber {
				t.Fatalf("after the outage the token is for %s, the device is %s", number, probeNumber)
			}
		}
		if err == nil {
			recovered = time.Since(resumed)
			break
		}
		if kind := sim.ErrorKindOf(err); !cleanUnavailable(kind) {
			t.Errorf("while recovering: %s (%v)", kind, err)
		}
		if time.Since(resumed) > 5*time.Second {
			t.Fatalf("no flow succeeded within 5 s of Postgres returning (last: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first full flow succeeded %v after Postgres returned", recovered.Round(time.Millisecond))
	for _, base := range []string{sv.Authz, sv.Resource, sv.Network} {
		for {
			r, err := callAPI(probeClient, http.MethodGet, base+"/readyz", "", nil, nil)
			if err == nil && r.Status == http.StatusOK {
				break
			}
			if time.Since(resumed) > 5*time.Second {
				t.Errorf("%s/readyz not 200 within 5 s of Postgres returning: %v %+v", base, err, r)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("every /readyz 200 %v after Postgres returned", time.Since(resumed).Round(time.Millisecond))
	// The single-use tokens refused with 503 were not used up, and still
	// verify the device's number; the code survived too.
	for edition, token := range map[string]string{"v2": beforeV2.AccessToken, "v0": beforeV0.AccessToken} {
		r, err := callAPI(probeClient, http.MethodPost, sv.API(edition)+"/verify", token, str(`{"phoneNumber":"`+probeNumber+`"}`), nil)
		if err != nil || r.Status != http.StatusOK || r.JSON["devicePhoneNumberVerified"] != true {
			t.Errorf("%s verify after the outage with a token refused during it: %v %+v", edition, err, r)
		}
	}
	if _, err := spVerify.Exchange(ctx, pendingCode, pendingReq); err != nil {
		t.Errorf("the code refused during the outage cannot be redeemed after it: %v", err)
	}

	rep := benchReport(t, bench, 60*time.Second)
	t.Logf("bench: %d flows ok, %d failed in %.1f s; errors %+v", rep.OK, rep.Failed, rep.Seconds, rep.Errors)
	for _, e := range rep.Errors {
		if !cleanUnavailable(e.Kind) {
			t.Errorf("bench: %d × %s at %s: not a clean 503 / temporarily_unavailable", e.Count, e.Kind, e.Step)
		}
	}
	first, last := failureWindow(rep)
	if first < 0 {
		t.Fatalf("the bench saw no failure: the outage was not under load\n%+v", rep.PerTick)
	}
	// Failures fit in [stop, resume + 5 s], give or take the seconds' edges.
	allowed := int((resumed.Sub(stopAt) + 5*time.Second + 2*time.Second) / time.Second)
	if last-first+1 > allowed {
		t.Errorf("failures span seconds %d–%d of the bench, more than the outage and 5 s of recovery (%d s)\n%+v", first, last, allowed, rep.PerTick)
	}
	if okBetween(rep, 0, first-1) == 0 || okBetween(rep, last+1, len(rep.PerTick)) == 0 {
		t.Errorf("flows must succeed before and after the outage\n%+v", rep.PerTick)
	}
	if proc := sv.Proc; proc.Exited(0) {
		t.Fatalf("numverify exited: %v", proc.Err())
	}
}

// cleanUnavailable: the only failures allowed while Postgres is away.
func cleanUnavailable(kind string) bool {
	switch kind {
	case "oauth temporarily_unavailable", "http 503 (no redirect)", "http 503 temporarily_unavailable", "http 503 UNAVAILABLE", "http 503 5":
		return true
	}
	return false
}

type outageProbe struct {
	name  string
	check func(*http.Client) string // "" when the answer is right
}

func outageProbes(sv testbed.Servers, adminToken string, d *sim.Device, sp *testbed.SP, tokenV2, tokenV0, code string, pending sim.AuthRequest) []outageProbe {
	var probes []outageProbe
	for _, base := range []string{sv.Authz, sv.Resource, sv.Network} {
		probes = append(probes,
			outageProbe{base + "/healthz", func(hc *http.Client) string { return wantStatus(get(hc, base+"/healthz"), 200) }},
			outageProbe{base + "/readyz", func(hc *http.Client) string { return wantStatus(get(hc, base+"/readyz"), 503) }})
	}
	probes = append(probes,
		outageProbe{"authorize", func(*http.Client) string {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := sp.Login(ctx, d)
			// Without Postgres the client and its redirect URIs cannot be
			// checked, so a page (503) is as right as a redirect: it must
			// never redirect to a URI it could not check.
			var outcome *sim.OutcomeError
			if errors.As(err, &outcome) && outcome.Outcome.Status == 503 && strings.Contains(outcome.Outcome.Page, "temporarily_unavailable") {
				return ""
			}
			if kind := sim.ErrorKindOf(err); kind != "oauth temporarily_unavailable" {
				return fmt.Sprintf("got %s (%v), want a redirect with error=temporarily_unavailable or a 503 page saying so", kind, err)
			}
			return ""
		}},
		outageProbe{"token", func(*http.Client) string {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := sp.Exchange(ctx, code, pending)
			if kind := sim.ErrorKindOf(err); kind != "http 503 temporarily_unavailable" {
				return fmt.Sprintf("got %s (%v), want 503 temporarily_unavailable", kind, err)
			}
			return ""
		}},
		outageProbe{"v2 verify", func(hc *http.Client) string {
			return wantAPIError(hc, sv.API("v2")+"/verify", tokenV2, d.MSISDN, "UNAVAILABLE")
		}},
		outageProbe{"v0 verify", func(hc *http.Client) string {
			return wantAPIError(hc, sv.API("v0")+"/verify", tokenV0, d.MSISDN, "5")
		}},
		outageProbe{"network lookup", func(hc *http.Client) string {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := (&sim.NetworkAdmin{BaseURL: sv.Network, Token: adminToken, HTTP: hc}).Lookup(ctx, d.Addr)
			var apiErr *sim.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != 503 {
				return fmt.Sprintf("got %v, want 503", err)
			}
			return ""
		}})
	return probes
}

func wantAPIError(hc *http.Client, u, token, number, code string) string {
	r, err := callAPI(hc, http.MethodPost, u, token, str(`{"phoneNumber":"`+number+`"}`), map[string]string{"x-correlator": "outage-probe"})
	if err != nil {
		return err.Error()
	}
	if r.Status != 503 || r.field("code") != code || r.Header.Get("x-correlator") != "outage-probe" {
		return fmt.Sprintf("got %d %s, want 503 with code %s and the x-correlator", r.Status, strings.TrimSpace(string(r.Body)), code)
	}
	return ""
}

func wantStatus(got, want int) string {
	if got != want {
		return fmt.Sprintf("status %d, want %d", got, want)
	}
	return ""
}

// get returns the status of a GET, 0 when there was no answer.
func get(hc *http.Client, u string) int {
	resp, err := hc.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func mustLogin(t testing.TB, sp *testbed.SP, d *sim.Device) *sim.Tokens {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := sp.Login(ctx, d)
	if err != nil {
		t.Fatalf("silent login of %s from %s: %v", d.MSISDN, d.Addr, err)
	}
	return l
}

func sharedNumber(hc *http.Client, api, token string) (string, error) {
	r, err := callAPI(hc, http.MethodGet, api+"/device-phone-number", token, nil, nil)
	if err != nil {
		return "", &sim.ConnectionError{URL: api, Err: err}
	}
	if r.Status != http.StatusOK {
		code, _ := r.field("code").(string)
		return "", &sim.APIError{Status: r.Status, Code: code}
	}
	n, _ := r.JSON["devicePhoneNumber"].(string)
	return n, nil
}
