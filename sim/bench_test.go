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
		{"flow", modeFlow, "", ""},
		{"verify with pre-issued tokens", modeVerify, "", ""},
		{"a wrong answer is counted", modeFlow, "+33700000001", "wrong-subscriber"},
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
			if wantSteps := map[string]int{modeFlow: 4, modeVerify: 1}[tt.mode]; len(rep.Steps) < wantSteps || rep.Steps[0].Count == 0 {
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

// Verify mode against single-use tokens: each call spends one pre-issued
// token and a device out of tokens logs in again, so no call is refused;
// sending one token for every call (ReuseTokens, for NV 2.0 servers) is.
func TestBenchVerifySpendsEachTokenOnce(t *testing.T) {
	for i, tt := range []struct {
		name      string
		reuse     bool
		wantFails bool
	}{
		{"single-use: one token per call", false, false},
		{"reusing a token against single-use", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			op := newFakeOperator(t, "http://127.0.0.1:1/callback")
			op.singleUse = true
			rep, err := RunBench(context.Background(), BenchConfig{
				RP: op.rpConfig(), Mode: modeVerify, Devices: 4, Duration: 700 * time.Millisecond,
				Network: op.network(), TokensPerDevice: 3, ReuseTokens: tt.reuse,
				DevicePrefix: netip.MustParsePrefix("127.22." + string(rune('0'+i)) + ".0/24"),
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK == 0 {
				t.Fatalf("no call answered: %+v", rep)
			}
			if failed := rep.Failed != 0; failed != tt.wantFails {
				t.Fatalf("failed %d (errors %+v), want failures: %v", rep.Failed, rep.Errors, tt.wantFails)
			}
			if !tt.reuse {
				var refresh uint64
				for _, s := range rep.Steps {
					if s.Step == "refresh" {
						refresh = s.Count
					}
				}
				// 12 tokens were issued before the clock; every call beyond
				// them needed a login of its own.
				if rep.OK > 12 && refresh < rep.OK-12 {
					t.Errorf("%d calls answered with 12 tokens issued and %d logins during the run", rep.OK, refresh)
				}
			}
		})
	}
}
