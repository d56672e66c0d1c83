package main

import (
	"strings"
	"testing"

	"github.com/numverify/numverify/sim"
)

// TestDeviceFollowExitsNonZeroWhenNotVerified: the compose handset's exit
// status is the SP's verdict. Attached as one number, it opens the SP's page
// for another: the SP answers 200 "Not verified", and the runner must fail
// (it exited 0 on any 2xx page before).
func TestDeviceFollowExitsNonZeroWhenNotVerified(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts four servers")
	}
	tb := startTestbed(t)
	out, err := runBinaryErr(tb.bin, nil, append([]string{"device", "--msisdn", "+33612340078", "--attach-self", "--follow",
		"--connect-to", "localhost:" + tb.ports[3] + ":127.0.0.1:" + tb.ports[3],
		"--authorize-url", tb.startURL("+33612340079")}, tb.networkArgs()...)...)
	if err == nil {
		t.Fatalf("device --follow exited 0 on the SP's \"Not verified\" page:\n%s", out)
	}
	if !strings.Contains(out, "HTTP 200") || !strings.Contains(out, "Not verified") || !strings.Contains(out, "the SP says: not verified") {
		t.Fatalf("want the SP's 200 \"Not verified\" page and the reason in the output:\n%s", out)
	}
}

func TestDeviceReportFailureFollowsTheVerdict(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		name string
		page sim.Page
		ok   bool
	}{
		{"verified", sim.Page{Status: 200, Verified: &yes}, true},
		{"not verified", sim.Page{Status: 200, Verified: &no}, false},
		{"no verdict on the page", sim.Page{Status: 200}, false},
		{"error page", sim.Page{Status: 502, Verified: &no}, false},
	} {
		err := deviceReport{Page: &tt.page}.failure()
		if (err == nil) != tt.ok {
			t.Errorf("%s: failure() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
