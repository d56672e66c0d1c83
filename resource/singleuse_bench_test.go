package resource

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkVerifySingleUse runs POST /number-verification/v2/verify through
// the real handler with single-use tokens (the default of serve), each token
// used once, from 64 concurrent callers: every call is one durable use
// record, committed together with the calls waiting beside it. It reports the
// commits and uses per commit observed; the reusable variant (no record) is
// the baseline of the same run.
//
//	go test ./resource -run X -bench VerifySingleUse -benchtime 20000x
func BenchmarkVerifySingleUse(b *testing.B) {
	is := newTestIssuer(b)
	body := []byte(`{"phoneNumber":"` + testPhone + `"}`)
	for _, variant := range []struct {
		name      string
		format    TokenFormat
		singleUse bool
		seal      func() string
	}{
		{"nested", FormatJWT, true, func() string { return is.token(testPhone) }},
		{"direct", FormatJWTDirect, true, func() string { return is.direct(is.claims(testPhone)) }},
		{"direct-reusable", FormatJWTDirect, false, func() string { return is.direct(is.claims(testPhone)) }},
	} {
		ts := startServer(b, is, func(c *Config) { c.TokenFormat, c.SingleUseTokens = variant.format, variant.singleUse })
		handler := ts.Handler()
		b.Run(variant.name, func(b *testing.B) {
			tokens := mintTokens(b.N, variant.seal)
			var batches0 uint64
			var uses0 float64
			if ts.uses != nil {
				batches0, uses0 = commits(ts.uses)
			}
			var next atomic.Int64
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			failures := verifyParallel(b, handler, body, nil, func() string { return tokens[next.Add(1)-1] })
			b.StopTimer()
			if failures > 0 {
				b.Fatalf("%d of %d calls failed", failures, b.N)
			}
			if ts.uses == nil {
				return
			}
			batches, uses := commits(ts.uses)
			if n := batches - batches0; n > 0 {
				b.ReportMetric(float64(n), "commits")
				b.ReportMetric((uses-uses0)/float64(n), "uses/commit")
			}
		})
	}
}

// mintTokens seals n distinct tokens, on every core.
func mintTokens(n int, mint func() string) []string {
	tokens := make([]string, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				tokens[i] = "Bearer " + mint()
			}
		}()
	}
	wg.Wait()
	return tokens
}
