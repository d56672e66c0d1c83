package resource

import (
	"testing"
	"time"
)

// TestClientRevocation: a client-level revocation refuses the client's
// tokens issued at or before its instant (and those without iat), not later
// ones nor other clients', and is pruned after it expires.
func TestClientRevocation(t *testing.T) {
	r := newRevocations(0)
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

// TestRevocationOutlivesExpiryBySkew: a token is accepted up to the clock
// skew after its exp, so its revocation (and its client's) is kept that
// long; pruning at exp would let a revoked token through for the skew.
func TestRevocationOutlivesExpiryBySkew(t *testing.T) {
	const skew = 30 * time.Second
	r := newRevocations(skew)
	exp := time.Unix(1_700_000_000, 0)
	r.add("jti-1", exp)
	r.revokeClient("c1", clientRevocation{before: exp.Add(-time.Hour), expires: exp})
	r.prune(exp.Add(skew - time.Second))
	if !r.has("jti-1") || !r.clientRevoked("c1", exp.Add(-2*time.Hour)) {
		t.Fatal("revocations pruned within the clock skew after expiry: the token would be accepted again")
	}
	r.prune(exp.Add(skew + time.Second))
	if r.has("jti-1") || r.clientRevoked("c1", exp.Add(-2*time.Hour)) {
		t.Error("revocations kept past expiry plus skew")
	}
}
