package main

import (
	"testing"

	"github.com/numverify/numverify/sim"
)

// TestDeviceReportFailureFollowsTheVerdict: the compose handset's exit
// status is the SP's verdict (e2e's TestDeviceFollowExitsNonZeroWhenNotVerified
// runs the command).
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
