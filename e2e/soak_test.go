package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testbed"
)

// TestSoak is issue 6's soak: `numverify serve` under a steady load of full
// flows from `numverify bench` (8 devices, one flow in flight each) for
// NUMVERIFY_SOAK_DURATION (default 10m). It samples the server process's
// resident memory (/proc/<pid>/status) and goroutines (/metrics
// go_goroutines) idle before the load, once the load has warmed up, every
// minute, at the end of the load and idle after it, logs them, and fails on
// clear growth: goroutines +50 % or resident memory ×2 from the warmed-up
// sample to the end, or goroutines idle after the load +50 % over idle
// before it.
//
//	NUMVERIFY_SOAK=1 go test ./e2e -run Soak -timeout 20m -v
func TestSoak(t *testing.T) {
	if os.Getenv("NUMVERIFY_SOAK") != "1" {
		t.Skip("soak: set NUMVERIFY_SOAK=1 (and NUMVERIFY_SOAK_DURATION, default 10m)")
	}
	duration := 10 * time.Minute
	if v := os.Getenv("NUMVERIFY_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			t.Fatalf("NUMVERIFY_SOAK_DURATION %q: want a duration of at least 30s", v)
		}
		duration = d
	}
	s := testbed.NewStack(t, "")
	sv := s.Serve("--database-max-conns", "40", "--log-level", "warn")
	client := s.CreateClient("soak-sp")
	pid := sv.Proc.Cmd.Process.Pid

	sample := func(label string) soakSample {
		t.Helper()
		rss, err := residentKB(pid)
		if err != nil {
			t.Fatal(err)
		}
		g := testbed.Metric(t, sv.Authz, "go_goroutines", nil)
		if g == 0 {
			t.Fatal("/metrics has no go_goroutines")
		}
		sm := soakSample{label: label, at: time.Now(), rssKB: rss, goroutines: g}
		t.Logf("%-14s RSS %7.1f MiB  goroutines %4.0f", label, float64(rss)/1024, g)
		return sm
	}
	idleBefore := sample("idle before")

	bench := startBench(s, sv, client, testbed.DevicePrefix(), "+33700300000", 8, duration)
	waitForLoad(t, sv.Authz, 30, bench)
	loadStart := time.Now()
	warmup := min(30*time.Second, duration/6)
	time.Sleep(warmup)
	warm := sample("warmed up")
	for time.Until(loadStart.Add(duration-warmup)) > time.Minute {
		time.Sleep(time.Minute)
		sample(fmt.Sprintf("at %v", time.Since(loadStart).Round(time.Second)))
	}
	time.Sleep(time.Until(loadStart.Add(duration - 5*time.Second)))
	end := sample("end of load")
	rep := benchReport(t, bench, time.Minute)
	time.Sleep(2 * time.Second) // the devices' connections closed, the handlers gone
	idleAfter := sample("idle after")

	t.Logf("bench: %d flows ok, %d failed in %.0f s (%.1f flows/s); errors %+v", rep.OK, rep.Failed, rep.Seconds, rep.PerSec, rep.Errors)
	for _, st := range rep.Steps {
		t.Logf("  %-9s p50 %6.2f ms  p99 %6.2f ms  max %7.2f ms", st.Step, st.P50, st.P99, st.Max)
	}
	if rep.OK == 0 || rep.Failed > rep.OK/1000 {
		t.Errorf("under steady load: %d ok, %d failed", rep.OK, rep.Failed)
	}
	if end.goroutines > warm.goroutines*1.5 {
		t.Errorf("goroutines grew under the same load: %.0f → %.0f", warm.goroutines, end.goroutines)
	}
	if end.rssKB > warm.rssKB*2 {
		t.Errorf("resident memory doubled under the same load: %d → %d KiB", warm.rssKB, end.rssKB)
	}
	if idleAfter.goroutines > idleBefore.goroutines*1.5 {
		t.Errorf("goroutines left behind by the load: %.0f idle before, %.0f idle after", idleBefore.goroutines, idleAfter.goroutines)
	}
}

type soakSample struct {
	label      string
	at         time.Time
	rssKB      int64
	goroutines float64
}

// residentKB is VmRSS of a process, in KiB.
func residentKB(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest) // "123456 kB"
			if len(fields) == 0 {
				break
			}
			return strconv.ParseInt(fields[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
