package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// Issue 13: replicas behind a real L4 load balancer. HAProxy (Debian), run
// with the configuration operators start from (deploy/haproxy/haproxy.cfg:
// TCP mode, send-proxy-v2 to the authz replicas, /readyz health checks), in
// front of two `serve authz` and two `serve resource` processes on one
// database, beside one `serve network`. It shows: devices behind CGNAT
// logged in by their source port through the balancer; a code issued by one
// replica redeemed at the other; a revocation at one authz refused by both
// resource replicas within a second; a key rotated by `numverify keys
// rotate` signing at both authz replicas and verifying at both resource
// replicas; single-use enforced across resource replicas; one authz and one
// resource replica killed (SIGKILL) under load with no wrong subscriber, no
// 5xx, and only connection-level errors while HAProxy notices.
//
// Opt-in locally (NUMVERIFY_E2E_REPLICAS=1), run by CI; with the variable
// set, a missing HAProxy fails the test.

// haproxyConfig is the configuration shipped for operators; the test runs it
// unchanged, setting its addresses through HAProxy's setenv.
const haproxyConfig = "../deploy/haproxy/haproxy.cfg"

// requireOptIn skips unless env is set; with it set, a missing tool fails.
func requireOptIn(t *testing.T, env string, tools ...string) {
	t.Helper()
	if os.Getenv(env) == "" {
		t.Skipf("set %s=1 to run this test (CI does)", env)
	}
	for _, tool := range tools {
		if _, err := os.Stat(tool); err != nil {
			t.Fatalf("%s is set but %s is missing (%v)", env, tool, err)
		}
	}
}

func TestReplicasBehindHAProxy(t *testing.T) {
	requireOptIn(t, "NUMVERIFY_E2E_REPLICAS", haproxyBin)
	began := time.Now()
	s := testbed.NewStack(t, "")
	ports := testbed.FreePorts(t, 7)
	lbAuthzAddr, lbResourceAddr := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1]
	issuer := "http://" + lbAuthzAddr

	networkURL := "http://127.0.0.1:" + ports[2]
	networkProc := s.Start("serve", "network", "--network-addr", "127.0.0.1:"+ports[2])
	testbed.WaitHealthy(t, networkProc, networkURL+"/readyz")
	authzURL := make([]string, 2)
	authzProc := make([]*testbed.Process, 2)
	for i := range authzURL {
		authzURL[i] = "http://127.0.0.1:" + ports[3+i]
		authzProc[i] = s.Start("serve", "authz", "--authz-addr", "127.0.0.1:"+ports[3+i], "--issuer", issuer,
			"--client-address-from", "proxy-protocol", "--trusted-proxies", haproxySource, "--log-level", "warn")
	}
	for i := range authzURL {
		testbed.WaitHealthy(t, authzProc[i], authzURL[i]+"/readyz")
	}
	resourceURL := []string{"http://127.0.0.1:" + ports[5], "http://127.0.0.1:" + ports[6]}
	lb := startLoadBalancer(t, lbAuthzAddr, lbResourceAddr, hostPort(t, authzURL[0]), hostPort(t, authzURL[1]),
		hostPort(t, resourceURL[0]), hostPort(t, resourceURL[1]))
	resourceProc := make([]*testbed.Process, 2)
	for i := range resourceURL {
		// The resource servers fetch the issuer's discovery document and
		// keys through the balancer, as they would in production.
		_, resourceProc[i] = s.StartResource(ports[5+i], issuer, "--single-use-tokens", "--log-level", "warn")
	}
	lb.waitUp(t, "authz/authz1", "authz/authz2", "resource/resource1", "resource/resource2")
	t.Logf("5 numverify processes and HAProxy up in %v", time.Since(began).Round(time.Millisecond))

	sp := s.CreateClient("replicas-sp")
	lbServers := testbed.Servers{Authz: lb.authz, Resource: lb.resource, Network: networkURL}
	share := testbed.NewSP(t, issuer, sp, "openid", testbed.ScopeShare)
	verify := testbed.NewSP(t, issuer, sp, "openid", testbed.ScopeVerify)
	prefix := testbed.DevicePrefix()
	hc := &http.Client{Timeout: 10 * time.Second}

	t.Run("CGNAT logins through the balancer, by source port", func(t *testing.T) {
		public := testbed.NthAddr(prefix, 100)
		a, b := "+33613"+randomDigits(6), "+33614"+randomDigits(6)
		s.Run("network", "attach", "--msisdn", a, "--ip", public.String(), "--ports", "41000-41999")
		s.Run("network", "attach", "--msisdn", b, "--ip", public.String(), "--ports", "42000-42999")
		before := authorizeCounts(t, authzURL)
		for range 3 {
			if got := loginThrough(t, lbServers, share, public, 41000, nil); got != a {
				t.Fatalf("from %s, port block 41000-41999: logged in as %q, want the subscriber holding it", public, got)
			}
			if got := loginThrough(t, lbServers, share, public, 42000, nil); got != b {
				t.Fatalf("from %s, port block 42000-42999: logged in as %q, want the subscriber holding it", public, got)
			}
		}
		// A port of the shared address that no subscriber holds: no login.
		wantRefused(t, share, public, 45000, nil)
		after := authorizeCounts(t, authzURL)
		for i := range after {
			if after[i] <= before[i] {
				t.Errorf("authz replica %d served no /authorize of the 7 sent through the balancer (round robin)", i+1)
			}
		}
		t.Logf("/authorize served by the replicas: %v", []float64{after[0] - before[0], after[1] - before[1]})
	})

	device := testbed.NthAddr(prefix, 7)
	msisdn := "+33612" + randomDigits(6)
	s.Run("network", "attach", "--msisdn", msisdn, "--ip", device.String())

	t.Run("a code issued by one replica is redeemed at the other", func(t *testing.T) {
		for _, from := range []int{0, 1} {
			to := 1 - from
			// The device goes to one replica directly (a peer it does not
			// trust, sending no PROXY header: its own address counts); the
			// SP redeems at the other.
			code, req, errCode := authorizeFrom(t, share.Via(t, authzURL[from]), device, 0, nil)
			if code == "" {
				t.Fatalf("authz %d: error=%q, want a code", from+1, errCode)
			}
			l, err := share.Via(t, authzURL[to]).Exchange(context.Background(), code, req)
			if err != nil {
				t.Fatalf("code of authz %d redeemed at authz %d: %v", from+1, to+1, err)
			}
			if got, err := sharedNumber(hc, lb.resource+"/number-verification/v2", l.AccessToken); err != nil || got != msisdn {
				t.Fatalf("token of authz %d: number %q (%v), want the device's", to+1, got, err)
			}
			// The code is spent on every replica.
			if _, err := share.Via(t, authzURL[from]).Exchange(context.Background(), code, req); sim.ErrorKindOf(err) != "http 400 invalid_grant" {
				t.Fatalf("code redeemed again at its own replica: %s (%v), want 400 invalid_grant", sim.ErrorKindOf(err), err)
			}
		}
	})

	t.Run("single use across resource replicas", func(t *testing.T) {
		l := directLogin(t, verify.Via(t, authzURL[0]), device)
		verifyAt(t, resourceURL[0], l.AccessToken, msisdn, http.StatusOK)
		reusedBefore := testbed.Metric(t, resourceURL[1], "numverify_resource_token_rejections_total", map[string]string{"reason": "reused"})
		verifyAt(t, resourceURL[1], l.AccessToken, msisdn, http.StatusUnauthorized)
		if got := testbed.Metric(t, resourceURL[1], "numverify_resource_token_rejections_total", map[string]string{"reason": "reused"}); got != reusedBefore+1 {
			t.Fatalf("resource 2 refused the token used at resource 1, but not as reused (%v → %v)", reusedBefore, got)
		}
	})

	t.Run("a revocation at one authz is refused by both resource replicas within a second", func(t *testing.T) {
		l := directLogin(t, verify.Via(t, authzURL[1]), device)
		before := []float64{testbed.Metric(t, resourceURL[0], "numverify_resource_revoked_tokens", nil),
			testbed.Metric(t, resourceURL[1], "numverify_resource_revoked_tokens", nil)}
		revoked := time.Now()
		revoke(t, authzURL[0], sp, l.AccessToken)
		for i, base := range resourceURL {
			for testbed.Metric(t, base, "numverify_resource_revoked_tokens", nil) <= before[i] {
				if time.Since(revoked) > time.Second {
					t.Fatalf("resource %d does not hold the revocation 1 s after /revoke answered", i+1)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("resource %d holds the revocation %v after /revoke answered", i+1, time.Since(revoked).Round(time.Millisecond))
		}
		for i, base := range resourceURL {
			refusedBefore := testbed.Metric(t, base, "numverify_resource_token_rejections_total", map[string]string{"reason": "revoked"})
			verifyAt(t, base, l.AccessToken, msisdn, http.StatusUnauthorized)
			if got := testbed.Metric(t, base, "numverify_resource_token_rejections_total", map[string]string{"reason": "revoked"}); got != refusedBefore+1 {
				t.Fatalf("resource %d refused the revoked token, but not as revoked", i+1)
			}
		}
	})

	t.Run("a key rotated is used by every replica", func(t *testing.T) {
		oldKid := jwtKid(t, directLogin(t, verify.Via(t, authzURL[0]), device).RawIDToken)
		// Published at once, signing after 7 s: longer than the authz
		// replicas' key cache (5 s), so every replica's JWKS has the new key
		// before any replica signs with it (--publish-ahead's rule).
		rotated := time.Now()
		s.Run("keys", "rotate", "--publish-ahead", "7s")
		for i, base := range authzURL {
			var tokens []*sim.Tokens
			rp := verify.Via(t, base)
			for len(tokens) < 2 {
				l := directLogin(t, rp, device)
				if jwtKid(t, l.RawIDToken) != oldKid {
					tokens = append(tokens, l)
					continue
				}
				if time.Since(rotated) > 20*time.Second {
					t.Fatalf("authz %d still signs with the old key %v after keys rotate", i+1, time.Since(rotated))
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Logf("authz %d signs with the new key %s %v after keys rotate", i+1, jwtKid(t, tokens[0].RawIDToken), time.Since(rotated).Round(100*time.Millisecond))
			for j, res := range resourceURL {
				verifyAt(t, res, tokens[j].AccessToken, msisdn, http.StatusOK)
			}
		}
	})

	t.Run("a replica of each killed under load", func(t *testing.T) {
		killUnderLoad(t, s, lb, verify, networkURL, authzProc[1], resourceProc[1], []*testbed.Process{authzProc[0], resourceProc[0]})
	})
	t.Logf("whole test %v", time.Since(began).Round(time.Millisecond))
}

// killUnderLoad runs devices through the balancer (authorize, token, verify,
// on keep-alive connections), SIGKILLs one authz and one resource replica
// mid-run, and checks every outcome.
func killUnderLoad(t *testing.T, s *testbed.Stack, lb *loadBalancer, rp *testbed.SP, networkURL string, authzVictim, resourceVictim *testbed.Process, survivors []*testbed.Process) {
	const workers = 6
	prefix := testbed.DevicePrefix()
	devices := make([]*sim.Device, workers)
	for i := range devices {
		devices[i] = s.Attach(networkURL, fmt.Sprintf("+3370%07d", 2000000+i), testbed.NthAddr(prefix, 10+i))
	}
	var (
		mu       sync.Mutex
		kinds    = map[string]int{}
		lastFail time.Time
		requests atomic.Int64
		flows    atomic.Int64
		killedAt atomic.Int64 // unix ns, 0 before the kill
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		phase := "before the kill"
		if killedAt.Load() != 0 {
			phase = "after the kill"
			lastFail = time.Now()
		}
		kinds[phase+": "+loadErrorKind(err)]++
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	spClient := &http.Client{Timeout: 10 * time.Second}
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				code, req, err := rp.Authorize(ctx, d, "")
				requests.Add(1)
				if err == nil {
					var l *sim.Tokens
					l, err = rp.Exchange(ctx, code, req)
					requests.Add(1)
					if err == nil {
						err = verifyOwnNumber(spClient, lb.resource, l.AccessToken, d.MSISDN)
						requests.Add(1)
					}
				}
				cancel()
				if err != nil {
					fail(err)
					continue
				}
				flows.Add(1)
			}
		}()
	}
	time.Sleep(3 * time.Second)
	flowsBefore := flows.Load()
	if flowsBefore == 0 {
		close(stop)
		wg.Wait()
		t.Fatalf("no flow completed in 3 s of load: %v", kinds)
	}
	killed := time.Now()
	killedAt.Store(killed.UnixNano())
	_ = authzVictim.Cmd.Process.Kill()
	_ = resourceVictim.Cmd.Process.Kill()
	downAfter := lb.waitDown(t, killed, "authz/authz2", "resource/resource2")
	time.Sleep(5*time.Second - time.Since(killed))
	close(stop)
	wg.Wait()
	flowsAfter := flows.Load() - flowsBefore

	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var report []string
	for _, k := range names {
		report = append(report, fmt.Sprintf("%d × %s", kinds[k], k))
	}
	t.Logf("load: %d HTTP requests, %d flows ok (%d before the kill, %d in the 5 s after); errors: %s",
		requests.Load(), flowsBefore+flowsAfter, flowsBefore, flowsAfter, strings.Join(report, ", "))
	for name, d := range downAfter {
		t.Logf("HAProxy stopped routing to %s %v after SIGKILL", name, d.Round(time.Millisecond))
	}
	if !lastFail.IsZero() {
		t.Logf("last failure %v after the kill", lastFail.Sub(killed).Round(time.Millisecond))
	}
	for k, n := range kinds {
		phase, kind, _ := strings.Cut(k, ": ")
		if phase == "before the kill" || !connectionLevel(kind) {
			t.Errorf("%d × %s %s: only connection-level errors are allowed, and only while the replicas die", n, kind, phase)
		}
	}
	if flowsAfter == 0 {
		t.Error("no flow completed after the kill: the survivors did not take over")
	}
	// The failures belong to the kill: none after HAProxy marked the dead
	// replicas down (give or take a second for requests in flight).
	var slowest time.Duration
	for _, d := range downAfter {
		slowest = max(slowest, d)
	}
	if !lastFail.IsZero() && lastFail.Sub(killed) > slowest+time.Second {
		t.Errorf("a failure %v after the kill, later than HAProxy marking the dead replicas down (%v) + 1 s", lastFail.Sub(killed), slowest)
	}
	for _, p := range survivors {
		if p.Exited(0) {
			t.Errorf("survivor %v exited: %v", p.Args, p.Err())
		}
	}
}

// connectionLevel: the failures a client may see while a replica dies under
// it (its open connections cut), never an answer.
func connectionLevel(kind string) bool {
	switch kind {
	case "connection reset", "connection closed (EOF)", "connection closed (idle)":
		return true
	}
	return false
}

// loadErrorKind names a failure by what the client saw, finer than
// sim.ErrorKindOf for connections.
func loadErrorKind(err error) string {
	var (
		outcome *sim.OutcomeError
		apiErr  *sim.APIError
		wrong   *wrongSubscriberError
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.As(err, &wrong):
		return "wrong subscriber"
	case errors.As(err, &outcome):
		return sim.ErrorKindOf(err)
	case errors.As(err, &apiErr):
		return strings.TrimSpace(fmt.Sprintf("http %d %s", apiErr.Status, apiErr.Code))
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed (EOF)"
	case strings.Contains(err.Error(), "server closed idle connection"):
		return "connection closed (idle)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &timeout) && timeout.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "other: " + err.Error()
}

type wrongSubscriberError struct{ got string }

func (e *wrongSubscriberError) Error() string {
	return "verify answered " + e.got + " for the device's own number"
}

// verifyOwnNumber asks the API whether number is the device's: anything but
// 200 true is an error.
func verifyOwnNumber(hc *http.Client, base, token, number string) error {
	r, err := callAPI(hc, http.MethodPost, base+"/number-verification/v2/verify", token, str(`{"phoneNumber":"`+number+`"}`), nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		code, _ := r.field("code").(string)
		return &sim.APIError{Status: r.Status, Code: code}
	}
	if r.JSON["devicePhoneNumberVerified"] != true {
		return &wrongSubscriberError{got: fmt.Sprint(r.JSON["devicePhoneNumberVerified"])}
	}
	return nil
}

// verifyAt verifies the device's number with token at one resource replica
// and wants status (200: verified true).
func verifyAt(t *testing.T, base, token, number string, status int) {
	t.Helper()
	r, err := callAPI(&http.Client{Timeout: 10 * time.Second}, http.MethodPost, base+"/number-verification/v2/verify", token,
		str(`{"phoneNumber":"`+number+`"}`), nil)
	if err != nil {
		t.Fatalf("verify at %s: %v", base, err)
	}
	if r.Status != status || (status == http.StatusOK && r.JSON["devicePhoneNumberVerified"] != true) {
		t.Fatalf("verify at %s: %d %s, want %d", base, r.Status, strings.TrimSpace(string(r.Body)), status)
	}
}

// directLogin logs the device in with rp (at the authz replica it goes via).
func directLogin(t *testing.T, rp *testbed.SP, device netip.Addr) *sim.Tokens {
	t.Helper()
	code, req, errCode := authorizeFrom(t, rp, device, 0, nil)
	if code == "" {
		t.Fatalf("login: error=%q", errCode)
	}
	l, err := rp.Exchange(context.Background(), code, req)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return l
}

// revoke revokes an access token at authzBase (RFC 7009, client_secret_basic).
func revoke(t *testing.T, authzBase string, sp testbed.Client, token string) {
	t.Helper()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequest(http.MethodPost, authzBase+"/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(sp.ID), url.QueryEscape(sp.Secret))
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
}

// jwtKid is the kid in a compact JWS's header.
func jwtKid(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	var h struct {
		Kid string `json:"kid"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &h)
	}
	if err != nil || h.Kid == "" {
		t.Fatalf("no kid in the token's header: %v", err)
	}
	return h.Kid
}

// authorizeCounts is each authz replica's count of /authorize requests.
func authorizeCounts(t *testing.T, bases []string) []float64 {
	t.Helper()
	counts := make([]float64, len(bases))
	for i, base := range bases {
		counts[i] = testbed.Metric(t, base, "numverify_http_requests_total", map[string]string{"route": "/authorize"})
	}
	return counts
}

// loadBalancer is HAProxy running deploy/haproxy/haproxy.cfg.
type loadBalancer struct {
	authz, resource string // the frontends' URLs
	socket          string // the stats socket
	log             string
}

// startLoadBalancer runs HAProxy with the shipped configuration, its
// addresses set by a first configuration file of the test's (setenv, and a
// stats socket to watch the servers' states), connecting to the replicas
// from haproxySource, the one address they trust.
func startLoadBalancer(t *testing.T, authzBind, resourceBind, authz1, authz2, resource1, resource2 string) *loadBalancer {
	t.Helper()
	if _, err := os.Stat(haproxyConfig); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lb := &loadBalancer{authz: "http://" + authzBind, resource: "http://" + resourceBind, socket: filepath.Join(dir, "stats.sock")}
	settings := fmt.Sprintf(`global
	setenv NUMVERIFY_LB_AUTHZ_BIND %s
	setenv NUMVERIFY_LB_RESOURCE_BIND %s
	setenv NUMVERIFY_LB_AUTHZ_1 %s
	setenv NUMVERIFY_LB_AUTHZ_2 %s
	setenv NUMVERIFY_LB_RESOURCE_1 %s
	setenv NUMVERIFY_LB_RESOURCE_2 %s
	setenv NUMVERIFY_LB_SOURCE %s
	stats socket %s mode 600 level admin
`, authzBind, resourceBind, authz1, authz2, resource1, resource2, haproxySource, lb.socket)
	path := filepath.Join(dir, "test.cfg")
	if err := os.WriteFile(path, []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	lb.log = startProxy(t, dir, haproxyBin, "-db", "-f", path, "-f", haproxyConfig)
	waitProxy(t, lb.authz, lb.log)
	return lb
}

// states reads each server's status (UP, DOWN, …) from the stats socket,
// keyed backend/server.
func (lb *loadBalancer) states() (map[string]string, error) {
	conn, err := net.DialTimeout("unix", lb.socket, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	col := map[string]int{}
	states := map[string]string{}
	for sc.Scan() {
		fields := strings.Split(strings.TrimPrefix(sc.Text(), "# "), ",")
		if len(col) == 0 {
			for i, f := range fields {
				col[f] = i
			}
			continue
		}
		if len(fields) > col["status"] && len(fields) > 1 {
			states[fields[col["pxname"]]+"/"+fields[col["svname"]]] = fields[col["status"]]
		}
	}
	if len(col) == 0 || col["status"] == 0 {
		return nil, fmt.Errorf("show stat: no header (%v)", sc.Err())
	}
	return states, nil
}

// waitUp waits until HAProxy has every named server UP.
func (lb *loadBalancer) waitUp(t *testing.T, names ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		states, err := lb.states()
		up := err == nil
		for _, n := range names {
			up = up && states[n] == "UP"
		}
		if up {
			return
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(lb.log)
			t.Fatalf("HAProxy servers not UP in 20 s: %v %v\n%s", states, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDown waits until HAProxy has marked each named server DOWN and
// returns how long after since that took.
func (lb *loadBalancer) waitDown(t *testing.T, since time.Time, names ...string) map[string]time.Duration {
	t.Helper()
	took := map[string]time.Duration{}
	for len(took) < len(names) {
		states, err := lb.states()
		for _, n := range names {
			if _, done := took[n]; !done && err == nil && strings.HasPrefix(states[n], "DOWN") {
				took[n] = time.Since(since)
			}
		}
		if time.Since(since) > 15*time.Second {
			t.Fatalf("HAProxy did not mark %v down within 15 s: %v %v", names, states, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return took
}
