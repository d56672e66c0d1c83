package resource

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// guess is a verify body for a number that is not the token's.
func guess(i int) *string { return str(fmt.Sprintf(`{"phoneNumber":"+3361%07d"}`, i)) }

// The audit's oracle: one verify-only token asked about many numbers. With
// the default configuration it answers false at most
// DefaultMaxFailedVerifies times; after that every verify with it is
// refused, the right number included (otherwise the refusal itself would
// answer), and each refusal is counted.
func TestVerifyOracleCappedByDefault(t *testing.T) {
	is := newTestIssuer(t)
	reg := prometheus.NewRegistry()
	ts := startServer(t, is, func(c *Config) { c.Registry = reg })
	for _, base := range []string{basePathV2, basePathV0} {
		t.Run(base, func(t *testing.T) {
			token := is.token(testPhone)
			before := counterValue(ts.failures.refused)
			answered := 0
			for i := range 20 {
				r := ts.do(t, call{method: http.MethodPost, path: base + "/verify", token: token, body: guess(i)})
				switch {
				case r.status == http.StatusOK && r.field("devicePhoneNumberVerified") == false:
					answered++
				case r.status == http.StatusForbidden:
					want := map[bool]string{true: "53", false: "PERMISSION_DENIED"}[base == basePathV0]
					if r.errorCode() != want {
						t.Fatalf("refusal %s, want %s: %s", r.errorCode(), want, r.body)
					}
				default:
					t.Fatalf("guess %d: %d %s", i, r.status, r.body)
				}
			}
			if answered != DefaultMaxFailedVerifies {
				t.Fatalf("%d guesses answered, want %d", answered, DefaultMaxFailedVerifies)
			}
			r := ts.do(t, call{method: http.MethodPost, path: base + "/verify", token: token, body: str(`{"phoneNumber":"` + testPhone + `"}`)})
			if r.status != http.StatusForbidden {
				t.Fatalf("the right number after the cap: %d %s, want 403", r.status, r.body)
			}
			if got := counterValue(ts.failures.refused) - before; got != 20-DefaultMaxFailedVerifies+1 {
				t.Errorf("metric counted %v refusals, want %d", got, 20-DefaultMaxFailedVerifies+1)
			}
			// Another token of the same client and number is not affected.
			if r := ts.do(t, call{method: http.MethodPost, path: base + "/verify", token: is.token(testPhone), body: guess(99)}); r.status != http.StatusOK {
				t.Fatalf("a fresh token: %d %s", r.status, r.body)
			}
		})
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := false
	for _, f := range families {
		exported = exported || f.GetName() == "numverify_resource_verify_failures_capped_total"
	}
	if !exported {
		t.Error("the refusals metric is not exported")
	}
}

// Guesses sent at once with one token get no more answers between them.
func TestVerifyOracleCappedConcurrently(t *testing.T) {
	is := newTestIssuer(t)
	ts := startServer(t, is, func(c *Config) { c.MaxFailedVerifies = 2 })
	token := is.token(testPhone)
	var answered, other atomic.Int32
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.do(t, call{method: http.MethodPost, path: basePathV2 + "/verify", token: token, body: guess(i)})
			switch r.status {
			case http.StatusOK:
				answered.Add(1)
			case http.StatusForbidden:
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if answered.Load() > 2 || other.Load() != 0 {
		t.Fatalf("%d answers (want at most 2), %d other statuses", answered.Load(), other.Load())
	}
}

// True answers cost nothing; the cap counts false ones, and a count is
// forgotten once its token has expired.
func TestVerifyFailuresCountOnlyFalseAndExpire(t *testing.T) {
	is := newTestIssuer(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := startServer(t, is, func(c *Config) { c.MaxFailedVerifies = 2; c.Now = clock })
	token := is.token(testPhone)
	right := str(`{"phoneNumber":"` + testPhone + `"}`)
	for i, body := range []*string{right, guess(1), right, right, guess(2)} {
		if r := ts.do(t, call{method: http.MethodPost, path: basePathV2 + "/verify", token: token, body: body}); r.status != http.StatusOK {
			t.Fatalf("call %d: %d %s", i, r.status, r.body)
		}
	}
	if r := ts.do(t, call{method: http.MethodPost, path: basePathV2 + "/verify", token: token, body: right}); r.status != http.StatusForbidden {
		t.Fatalf("after two false answers: %d, want 403", r.status)
	}
	if r := ts.do(t, call{method: http.MethodGet, path: basePathV2 + "/device-phone-number", token: token}); r.status != http.StatusOK {
		t.Fatalf("share is not verify: %d %s", r.status, r.body)
	}
	if n := trackedTokens(ts.failures); n != 1 {
		t.Fatalf("%d tokens tracked, want 1", n)
	}
	mu.Lock()
	now = now.Add(10 * time.Minute) // past exp and the clock skew
	mu.Unlock()
	ts.failures.reserve(principal{jti: "another", expiresAt: now.Add(time.Minute)}) // sweeps
	if n := trackedTokens(ts.failures); n != 1 {
		t.Fatalf("%d tokens tracked after the first expired, want 1 (the new one)", n)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func trackedTokens(f *verifyFailures) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.byToken)
}

// The limits are on by default and can each be turned off.
func TestLimitDefaults(t *testing.T) {
	var c Config
	c.setDefaults()
	if c.RateLimit != DefaultRateLimit || c.RateBurst != DefaultRateBurst || c.MaxFailedVerifies != DefaultMaxFailedVerifies {
		t.Fatalf("defaults: rate %v burst %d max failed %d", c.RateLimit, c.RateBurst, c.MaxFailedVerifies)
	}
	off := Config{RateLimit: NoLimit, MaxFailedVerifies: NoLimit}
	off.setDefaults()
	if off.RateLimit > 0 || off.MaxFailedVerifies > 0 {
		t.Fatalf("NoLimit: rate %v max failed %d", off.RateLimit, off.MaxFailedVerifies)
	}
	is := newTestIssuer(t)
	ts := startServer(t, is, func(c *Config) { c.MaxFailedVerifies = NoLimit })
	token := is.token(testPhone)
	for i := range 10 {
		if r := ts.do(t, call{method: http.MethodPost, path: basePathV2 + "/verify", token: token, body: guess(i)}); r.status != http.StatusOK {
			t.Fatalf("no cap, guess %d: %d", i, r.status)
		}
	}
}
