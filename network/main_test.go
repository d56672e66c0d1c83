package network

import (
	"testing"

	"github.com/numverify/numverify/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testPools are small pools, so exhaustion is reachable.
var testPools = Pools{
	IPv4:           netipPrefix("127.10.0.0/26"), // 62 hosts
	IPv6:           netipPrefix("fd00:6e76::/48"),
	CGNATAddress:   netipAddr("127.20.0.1"),
	CGNATBlockSize: 1024,
}

func newTestStore(t testing.TB, pools Pools) (*Store, *pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	store, err := NewStore(db.Pool, pools)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return store, db
}
