package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testbed"
	"github.com/numverify/numverify/sim"
)

// TestSIGTERMUnderLoad is issue 6's graceful-shutdown test: `numverify serve`
// gets SIGTERM while `numverify bench` runs full flows and the test's own
// workers send verify requests, each with its own x-correlator.
//
//   - Every request the server accepted (it has an access-log line with its
//     x-correlator) got its whole answer; a worker request that failed
//     without an answer was never accepted (refused at connect, or the
//     keep-alive race on a connection the server had closed as idle).
//   - A request whose body is still arriving when SIGTERM comes (accepted,
//     in flight for a second) is answered 200, with Connection: close.
//   - New connections are refused right after SIGTERM.
//   - The process exits 0 within --shutdown-timeout.
//   - The bench saw no failure but connection failures after the signal:
//     no timeout, no 5xx, no wrong subscriber.
func TestSIGTERMUnderLoad(t *testing.T) {
	const shutdownTimeout = 5 * time.Second
	// During the drain the server still accepts, fails /readyz and closes each
	// connection after its answer, so keep-alive clients move off it before
	// the listener closes.
	const shutdownDrain = 500 * time.Millisecond
	s := testbed.NewStack(t, "")
	// Reusable tokens: each worker verifies in a loop with its one token.
	sv := s.Serve("--database-max-conns", "40", "--shutdown-timeout", shutdownTimeout.String(),
		"--shutdown-drain", shutdownDrain.String(), "--single-use-tokens=false")
	client := s.CreateClient("sigterm-sp")
	prefix := testbed.DevicePrefix()

	// The test's workers and the slow request, each a device with a token.
	const workers = 4
	devices := make([]*sim.Device, workers+1)
	tokens := make([]string, workers+1)
	sp := testbed.NewSP(t, sv.Authz, client, "openid", testbed.ScopeVerify)
	for i := range devices {
		devices[i] = s.Attach(sv.Network, "+336120002"+fmt.Sprintf("%02d", i), testbed.NthAddr(prefix, 200+i))
		tokens[i] = mustLogin(t, sp, devices[i]).AccessToken
	}

	bench := startBench(s, sv, client, prefix, "+33700200000", 6, 4*time.Second)
	waitForLoad(t, sv.Authz, 30, bench)

	// Workers: verify in a loop until the server has exited.
	var (
		mu      sync.Mutex
		results = map[string]workerResult{} // by x-correlator
	)
	stopWorkers := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := devices[w]
			for n := 0; ; n++ {
				select {
				case <-stopWorkers:
					return
				default:
				}
				correlator := "sigterm-" + strconv.Itoa(w) + "-" + strconv.Itoa(n)
				r, err := callAPI(d.Client, http.MethodPost, sv.API("v2")+"/verify", tokens[w],
					str(`{"phoneNumber":"`+d.MSISDN+`"}`), map[string]string{"x-correlator": correlator})
				res := workerResult{err: err}
				if r != nil {
					res.status = r.Status
					res.verified = r.JSON["devicePhoneNumberVerified"] == true
				}
				mu.Lock()
				results[correlator] = res
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)

	// The slow request: headers and half the body now, the rest after SIGTERM.
	slow := devices[workers]
	body := `{"phoneNumber":"` + slow.MSISDN + `"}`
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: slow.Addr.AsSlice()}, Timeout: 5 * time.Second}
	conn, err := dialer.Dial("tcp", strings.TrimPrefix(sv.Resource, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /number-verification/v2/verify HTTP/1.1\r\nHost: " + strings.TrimPrefix(sv.Resource, "http://") +
		"\r\nAuthorization: Bearer " + tokens[workers] + "\r\nContent-Type: application/json\r\nAccept: application/json\r\n" +
		"x-correlator: sigterm-slow\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server has read the headers: the request is in flight

	sigAt := time.Now()
	if err := sv.Proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// During the drain a new request is still served, telling the client to
	// close; /readyz says the server is going away.
	time.Sleep(shutdownDrain / 5)
	ready, err := http.Get(sv.Resource + "/readyz")
	if err != nil {
		t.Fatalf("readyz during the drain: %v", err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusServiceUnavailable || !ready.Close {
		t.Errorf("readyz during the drain: %d (close %v), want 503 with Connection: close", ready.StatusCode, ready.Close)
	}

	// New connections are refused once the drain is over and the listeners are closed.
	refusedAfter := time.Duration(-1)
	for time.Since(sigAt) < shutdownDrain+time.Second {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(sv.Resource, "http://"), time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			refusedAfter = time.Since(sigAt)
			break
		}
		if c != nil {
			c.Close()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if refusedAfter < 0 {
		t.Errorf("new connections still accepted %v after SIGTERM", shutdownDrain+time.Second)
	}

	time.Sleep(time.Second)
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatalf("the in-flight request's connection was closed under it: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"devicePhoneNumberVerified":true`) {
		t.Errorf("the in-flight request: %d %s", resp.StatusCode, raw)
	}
	if !resp.Close {
		t.Errorf("the answer during shutdown does not close the connection (Connection: %q)", resp.Header.Get("Connection"))
	}

	if !sv.Proc.Exited(shutdownTimeout + time.Second) {
		t.Fatalf("still running %v after SIGTERM (shutdown timeout %v)", time.Since(sigAt), shutdownTimeout)
	}
	exitAfter := time.Since(sigAt)
	if code := sv.Proc.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0: %v\n%s", code, sv.Proc.Err(), sv.Proc.Tail(20))
	}
	close(stopWorkers)
	wg.Wait()
	t.Logf("SIGTERM: new connections refused after %v, process exited 0 after %v", refusedAfter.Round(time.Millisecond), exitAfter.Round(time.Millisecond))

	// What the server accepted: its access-log lines, by x-correlator.
	accepted := map[string]int{}
	for _, line := range strings.Split(sv.Proc.Output(), "\n") {
		var rec struct {
			Msg        string `json:"msg"`
			Server     string `json:"server"`
			Status     int    `json:"status"`
			Correlator string `json:"x_correlator"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && strings.HasPrefix(rec.Correlator, "sigterm-") {
			accepted[rec.Correlator] = rec.Status
		}
	}
	if _, ok := accepted["sigterm-slow"]; !ok {
		t.Errorf("the slow request has no access-log line: is the log captured?")
	}
	var ok, refused, unaccepted int
	for correlator, res := range results {
		status, wasAccepted := accepted[correlator]
		switch {
		case res.err == nil:
			if !wasAccepted {
				t.Errorf("%s: answered %d but not in the access log", correlator, res.status)
			} else if status != res.status {
				t.Errorf("%s: logged %d, client got %d", correlator, status, res.status)
			}
			if res.status != http.StatusOK || !res.verified {
				t.Errorf("%s: answered %d, verified %v", correlator, res.status, res.verified)
			}
			ok++
		case wasAccepted:
			t.Errorf("%s: accepted by the server (logged %d) but cut off: %v", correlator, status, res.err)
		case errors.Is(res.err, syscall.ECONNREFUSED):
			refused++
		default:
			unaccepted++ // the request never reached a handler: the idle keep-alive race
			t.Logf("%s: no answer, never accepted: %v", correlator, res.err)
		}
	}
	t.Logf("workers: %d answered, %d refused at connect, %d failed before being accepted", ok, refused, unaccepted)
	if ok == 0 || refused == 0 {
		t.Errorf("the workers must run through the signal: %d answered, %d refused", ok, refused)
	}

	rep := benchReport(t, bench, 30*time.Second)
	t.Logf("bench: %d flows ok, %d failed; errors %+v", rep.OK, rep.Failed, rep.Errors)
	for _, e := range rep.Errors {
		if e.Kind != "connection" {
			t.Errorf("bench: %d × %s at %s; only connection failures after the signal are allowed", e.Count, e.Kind, e.Step)
		}
	}
	first, _ := failureWindow(rep)
	if first < 0 || rep.OK == 0 {
		t.Fatalf("the bench must run through the signal\n%+v", rep.PerTick)
	}
	// Failures start at the signal: none before, and no success after the
	// second the signal came in (and the one after, for requests in flight).
	if n := okBetween(rep, first+2, len(rep.PerTick)); n > 0 {
		t.Errorf("flows succeeded after failures began: failures are not all after the signal\n%+v", rep.PerTick)
	}
}

type workerResult struct {
	status   int
	verified bool
	err      error
}
