package resource

import (
	"testing"
	"time"
)

// TestClientRevocation: a client-level revocation refuses the client's
// tokens issued at or before its instant (and those without iat), not later
// ones nor other clients', and is pruned after it expires.
func TestClientRevocation(t *testing.T) {
	r := newRevocations()
	at := time.Unix(1_700_000_000, 500_000_000)
	r.revokeClient("c1", clientRevocation{before: at, expires: at.Add(time.Hour)})
	for _, tc := range []struct {
		client string
		iat    time.Time
		want   bool
	}{
		{"c1", at.Add(-time.Minute), true},
		{"c1", at.Truncate(time.Second), true}, // iat has whole seconds
		{"c1", time.Time{}, true},
		{"c1", at.Add(time.Second), false},
		{"c2", at.Add(-time.Minute), false},
	} {
		if got := r.clientRevoked(tc.client, tc.iat); got != tc.want {
			t.Errorf("clientRevoked(%s, %v) = %v; want %v", tc.client, tc.iat, got, tc.want)
		}
	}
	r.revokeClient("c1", clientRevocation{before: at.Add(-time.Hour), expires: at})
	if !r.clientRevoked("c1", at.Add(-time.Minute)) {
		t.Error("an older revocation replaced a newer one")
	}
	r.prune(at.Add(2 * time.Hour))
	if r.clientRevoked("c1", at.Add(-time.Minute)) {
		t.Error("an expired client revocation was not pruned")
	}
}
