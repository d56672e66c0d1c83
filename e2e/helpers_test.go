package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// The processes, the stacks, /metrics and the logins are internal/testbed's;
// what is here is e2e's own: calling the API, and `numverify bench` runs.

func TestMain(m *testing.M) { testbed.Main(m) }

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

// waitForLoad waits until the authorization server has issued n tokens, so
// that a load generator started before is known to be running.
func waitForLoad(t testing.TB, authz string, n float64, bench *testbed.Process) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := testbed.Metric(t, authz, "numverify_http_requests_total", map[string]string{"route": "/token", "server": "authz", "status": "200"})
		if v >= n {
			return
		}
		if bench.Exited(0) {
			t.Fatalf("bench exited early: %v\n%s", bench.Err(), bench.Tail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no load: %v tokens issued after 30 s\n%s", v, bench.Tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startBench starts `numverify bench --json` in flow mode against sv with
// devices from prefix, numbers from firstMSISDN.
func startBench(s *testbed.Stack, sv testbed.Servers, c testbed.Client, prefix netip.Prefix, firstMSISDN string, devices int, duration time.Duration, extra ...string) *testbed.Process {
	args := append([]string{"bench", "--json", "--issuer", sv.Authz, "--api-url", sv.API("v2"), "--network-url", sv.Network,
		"--client-id", c.ID, "--client-secret", c.Secret, "--redirect-url", c.Redirect,
		"--devices", strconv.Itoa(devices), "--duration", duration.String(),
		"--device-prefix", prefix.String(), "--first-msisdn", firstMSISDN}, extra...)
	return s.Start(args...)
}

// benchReport waits for the bench to exit (0) and parses its report.
func benchReport(t testing.TB, bench *testbed.Process, within time.Duration) *sim.BenchReport {
	t.Helper()
	if !bench.Exited(within) {
		t.Fatalf("bench still running after %s\n%s", within, bench.Tail(30))
	}
	if bench.Err() != nil {
		t.Fatalf("bench: %v\n%s", bench.Err(), bench.Tail(30))
	}
	var rep sim.BenchReport
	if err := json.Unmarshal([]byte(bench.Stdout()), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, bench.Stdout())
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
