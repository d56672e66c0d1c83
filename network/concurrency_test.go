package network

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentAttach races 50 real goroutines (each on its own Postgres
// connection) for one small pool: no address and port may be handed out
// twice, every attach either succeeds or reports exhaustion, and exactly as
// many succeed as the pool has room for.
func TestConcurrentAttach(t *testing.T) {
	const attaches = 50
	tests := []struct {
		name          string
		pools         Pools
		req           AttachRequest
		wantSucceeded int
		wantRefusal   error
	}{
		{"ipv4 pool with room for all", Pools{IPv4: netipPrefix("127.10.0.0/26")}, AttachRequest{}, attaches, nil},
		{"ipv4 pool of 30 hosts", Pools{IPv4: netipPrefix("127.10.0.0/27")}, AttachRequest{}, 30, ErrPoolExhausted},
		{"ipv6 pool of 32 /64s", Pools{IPv6: netipPrefix("fd00:6e76::/59")}, AttachRequest{Pool: PoolIPv6}, 32, ErrPoolExhausted},
		{"cgnat pool of 31 blocks", Pools{CGNATAddress: netipAddr("127.20.0.1"), CGNATBlockSize: 2048},
			AttachRequest{Pool: PoolCGNAT}, 31, ErrPoolExhausted},
		{"one fixed address", Pools{}, AttachRequest{IP: "127.10.0.77"}, 1, ErrAddressInUse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := newTestStore(t, tt.pools)
			sessions, errs := attachConcurrently(store, tt.req, attaches)
			seen := map[string]bool{}
			succeeded := 0
			for i, err := range errs {
				if err != nil {
					if !errors.Is(err, tt.wantRefusal) {
						t.Errorf("attach %d: %v; want success or %v", i, err, tt.wantRefusal)
					}
					continue
				}
				succeeded++
				key := sessions[i].IP.String() + " " + sessions[i].Ports.String()
				if seen[key] {
					t.Errorf("%s handed out twice", key)
				}
				seen[key] = true
			}
			if succeeded != tt.wantSucceeded {
				t.Errorf("%d attaches succeeded; want %d", succeeded, tt.wantSucceeded)
			}
			if rows := countRows(t, store); rows != succeeded {
				t.Errorf("%d rows stored; want %d", rows, succeeded)
			}
		})
	}
}

func attachConcurrently(store *Store, req AttachRequest, n int) ([]Session, []error) {
	sessions := make([]Session, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := req
			r.MSISDN = fmt.Sprintf("+336120000%02d", i)
			<-start
			sessions[i], errs[i] = store.Attach(context.Background(), r)
		}()
	}
	close(start)
	wg.Wait()
	return sessions, errs
}
