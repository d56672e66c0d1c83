package network

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/testclock"
)

// clientFrom is an HTTP client whose connections leave from source (on
// Linux every 127.0.0.0/8 address reaches loopback), without keep-alive so
// each request is a new connection from that address.
func clientFrom(source string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	return &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
}

// TestAdminThrottlesFailedAuthentication: after a burst of wrong tokens from
// one address, that address gets 429 with Retry-After, even with the right
// token, until the bucket refills; other addresses and successes are not
// charged.
func TestAdminThrottlesFailedAuthentication(t *testing.T) {
	store, _ := newTestStore(t, testPools)
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	admin, err := NewAdmin(store, AdminConfig{Token: testToken, Failures: FailureLimit{Burst: 3, PerSecond: 0.1}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(admin)
	t.Cleanup(server.Close)
	get := func(source, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", server.URL+"/sessions?limit=1", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := clientFrom(source).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	attacker, operator := "127.0.0.1", "127.0.0.2"
	// Successes are never charged.
	for i := 0; i < 20; i++ {
		if resp := get(attacker, testToken); resp.StatusCode != http.StatusOK {
			t.Fatalf("success %d: %d", i, resp.StatusCode)
		}
	}
	for i := 0; i < 3; i++ {
		wrong := "wrong"
		if i == 1 {
			wrong = "" // no token at all is a failure too
		}
		if resp := get(attacker, wrong); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d; want 401 within the burst", i, resp.StatusCode)
		}
	}
	for _, token := range []string{"wrong", testToken} {
		resp := get(attacker, token)
		retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || retry < 1 || retry > 10 {
			t.Fatalf("after the burst (token %q): %d Retry-After %q; want 429 with 1..10", token, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if resp := get(operator, testToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("another address: %d; want 200 (buckets are per address)", resp.StatusCode)
	}
	if resp := get(attacker, "wrong again"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("still within the block: %d", resp.StatusCode)
	}
	clock.Advance(10 * time.Second)
	if resp := get(attacker, testToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the refill: %d; want 200", resp.StatusCode)
	}
	// Health needs no token and is never throttled.
	resp, err := clientFrom(attacker).Get(server.URL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestPoolsMustBeUnicast: no pool may hand out the unspecified, a multicast
// or the broadcast address.
func TestPoolsMustBeUnicast(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pools Pools
	}{
		{"IPv4 pool in this-network", Pools{IPv4: netipPrefix("0.0.0.0/16")}},
		{"IPv4 pool of multicast", Pools{IPv4: netipPrefix("224.0.0.0/24")}},
		{"IPv4 pool holding the broadcast", Pools{IPv4: netipPrefix("255.255.255.0/24")}},
		{"IPv6 pool of multicast", Pools{IPv6: netipPrefix("ff02::/48")}},
		{"CGNAT unspecified", Pools{CGNATAddress: netipAddr("0.0.0.0")}},
		{"CGNAT multicast", Pools{CGNATAddress: netipAddr("239.255.0.1")}},
		{"CGNAT broadcast", Pools{CGNATAddress: netipAddr("255.255.255.255")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.pools.Validate(); err == nil {
				t.Fatal("Validate accepted it")
			}
		})
	}
	if err := testPools.Validate(); err != nil {
		t.Fatalf("the test pools: %v", err)
	}
}
