package sim

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// An open loop starts arrivals on its schedule whatever the server does,
// and measures each from when it was due: with one device and a server
// slower than the rate, arrivals queue for the device, and their latency
// shows the queue, not just the 50 ms the server takes.
func TestBenchOpenLoopMeasuresFromTheSchedule(t *testing.T) {
	op := newFakeOperator(t, "http://127.0.0.1:1/callback")
	op.verifyDelay = 50 * time.Millisecond
	var progress bytes.Buffer
	rep, err := RunBench(context.Background(), BenchConfig{
		RP: op.rpConfig(), Mode: ModeFlowVerify, Devices: 1, Rate: 40, Duration: time.Second,
		Network: op.network(), DevicePrefix: netip.MustParsePrefix("127.21.9.0/24"),
		Progress: &progress, ReportEvery: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String() + progress.String())
	steps := map[string]StepStats{}
	for _, s := range rep.Steps {
		steps[s.Step] = s
	}
	// One device serves at most 1 s / 50 ms = 20 flows: of the 40 due, the
	// rest wait (and those still waiting at the end never start).
	if rep.OK == 0 || rep.OK > 21 || rep.Failed != 0 {
		t.Fatalf("ok %d failed %d: want at most 20 flows, none failed", rep.OK, rep.Failed)
	}
	if rep.Unstarted == 0 {
		t.Error("no arrival left unstarted, though the device could not keep up")
	}
	if verify, flow := steps["verify"], steps["flow"]; flow.P99 < 3*verify.P99 || flow.Max < 400 {
		t.Errorf("flow p99 %.0f ms, max %.0f ms, verify p99 %.0f ms: the wait for the device is not measured", flow.P99, flow.Max, verify.P99)
	}
	if lines := strings.Count(progress.String(), "\n"); lines < 4 || len(rep.Intervals) != lines {
		t.Errorf("%d progress lines, %d intervals; want one per 250 ms", lines, len(rep.Intervals))
	}
}

// Under capacity, an open loop runs at its rate, not as fast as it can.
func TestBenchOpenLoopKeepsItsRate(t *testing.T) {
	op := newFakeOperator(t, "http://127.0.0.1:1/callback")
	rep, err := RunBench(context.Background(), BenchConfig{
		RP: op.rpConfig(), Mode: modeLogin, Devices: 8, Rate: 50, Duration: time.Second,
		Network: op.network(), DevicePrefix: netip.MustParsePrefix("127.21.10.0/24"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK < 45 || rep.OK > 50 || rep.Failed != 0 || rep.OK+rep.Unstarted != 50 {
		t.Fatalf("ok %d failed %d unstarted %d; want the 50 scheduled logins", rep.OK, rep.Failed, rep.Unstarted)
	}
	for _, s := range rep.Steps {
		if s.Step == "verify" && s.Count != 0 {
			t.Errorf("login mode verified %d times", s.Count)
		}
	}
}
