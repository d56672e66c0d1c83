package sim

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBenchRunsFlowsFromEachDevice(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		lie      string
		wantKind string
	}{
		{"flow", ModeFlow, "", ""},
		{"verify with pre-issued tokens", ModeVerify, "", ""},
		{"a wrong answer is counted", ModeFlow, "+33700000001", "wrong-subscriber"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := newFakeOperator(t, "http://127.0.0.1:1/callback")
			op.lieAbout = tt.lie
			rep, err := RunBench(context.Background(), BenchConfig{
				RP: op.rpConfig(), Mode: tt.mode, Devices: 4, Concurrency: 8, Duration: 700 * time.Millisecond,
				Network:      op.network(),
				DevicePrefix: netip.MustParsePrefix("127.21." + string(rune('0'+i)) + ".0/24"),
			})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.Print(&out)
			t.Log("\n" + out.String())
			if rep.OK == 0 || rep.Concurrency != 4 {
				t.Fatalf("report %+v", rep)
			}
			if tt.wantKind == "" && (rep.Failed != 0 || len(rep.Errors) != 0) {
				t.Fatalf("unexpected errors %+v", rep.Errors)
			}
			if tt.wantKind != "" && (len(rep.Errors) != 1 || rep.Errors[0].Kind != tt.wantKind || rep.Errors[0].Step != "verify") {
				t.Fatalf("errors %+v, want only %s", rep.Errors, tt.wantKind)
			}
			if wantSteps := map[string]int{ModeFlow: 4, ModeVerify: 1}[tt.mode]; len(rep.Steps) < wantSteps || rep.Steps[0].Count == 0 {
				t.Fatalf("steps %+v", rep.Steps)
			}
			op.mu.Lock()
			left := len(op.sessions)
			op.mu.Unlock()
			if left != 0 {
				t.Errorf("%d sessions left attached", left)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&APIError{Status: 503, Code: "UNAVAILABLE"}, "http 503 UNAVAILABLE"},
		{&APIError{Status: 500}, "http 500"},
		{&OutcomeError{Outcome: &Outcome{Error: "temporarily_unavailable"}}, "oauth temporarily_unavailable"},
		{&OutcomeError{Outcome: &Outcome{Status: 400}}, "http 400 (no redirect)"},
		{&ConnectionError{Err: context.Canceled}, "connection"},
		{&ConnectionError{Err: context.DeadlineExceeded}, "timeout"},
		{errWrongSubscriber, "wrong-subscriber"},
	}
	for _, tt := range tests {
		if got := ErrorKindOf(tt.err); got != tt.want {
			t.Errorf("%v: kind %q, want %q", tt.err, got, tt.want)
		}
	}
	if !strings.HasPrefix(ErrorKindOf(&ProtocolError{Step: "token", Problem: "no id_token"}), "protocol") {
		t.Error("protocol kind")
	}
}
