package contract

import "testing"

// A login through an operator token (amr sim) is network authentication for
// Number Verification; a playground login is not.
func TestNetworkAuthenticated(t *testing.T) {
	for _, c := range []struct {
		amr  []string
		want bool
	}{
		{[]string{AMRNetwork}, true},
		{[]string{AMRSIM}, true},
		{[]string{AMRPlayground}, false},
		{[]string{"pwd", "otp"}, false},
		{nil, false},
	} {
		if got := (AccessClaims{AMR: c.amr}).NetworkAuthenticated(); got != c.want {
			t.Errorf("amr %v: NetworkAuthenticated() = %v, want %v", c.amr, got, c.want)
		}
	}
}
