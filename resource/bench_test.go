package resource

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchWriter is a ResponseWriter that keeps only the status, so that the
// benchmark counts the handler's allocations, not a recorder's.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }

// verifyParallel calls POST /verify with body (and header) through handler
// from b.RunParallel's goroutines, each call with the Authorization value
// token gives, and returns how many calls were not answered 200.
func verifyParallel(b *testing.B, handler http.Handler, body []byte, header http.Header, token func() string) int64 {
	var failures atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: http.Header{}}
		reader := bytes.NewReader(body)
		req, _ := http.NewRequest(http.MethodPost, "http://localhost"+basePathV2+"/verify", reader)
		req.Header.Set("Content-Type", "application/json")
		for name, values := range header {
			req.Header[name] = values
		}
		for pb.Next() {
			reader.Reset(body)
			req.Body = io.NopCloser(reader)
			req.ContentLength = int64(len(body))
			req.Header.Set("Authorization", token())
			clear(w.h)
			w.status = 0
			handler.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	return failures.Load()
}

// BenchmarkVerify runs POST /number-verification/v2/verify through the real
// handler (Echo, correlator, token validation, decoding, constant-time
// comparison), with distinct valid tokens, from parallel goroutines.
func BenchmarkVerify(b *testing.B) {
	is := newTestIssuer(b)
	for _, variant := range []struct {
		name   string
		format TokenFormat
		seal   func() string
	}{
		{"nested", FormatJWT, func() string { return is.token(testPhone) }},
		{"direct", FormatJWTDirect, func() string { return is.direct(is.claims(testPhone)) }},
	} {
		handler := startServer(b, is, func(c *Config) { c.TokenFormat = variant.format }).Handler()
		tokens := make([]string, 2000)
		for i := range tokens {
			tokens[i] = "Bearer " + variant.seal()
		}
		body := []byte(`{"phoneNumber":"` + testPhone + `"}`)
		b.Run(variant.name, func(b *testing.B) {
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			failures := verifyParallel(b, handler, body, http.Header{"X-Correlator": {"bench-correlator"}},
				func() string { return tokens[next.Add(1)%int64(len(tokens))] })
			if failures > 0 {
				b.Fatalf("%d requests failed", failures)
			}
		})
	}
}

// BenchmarkVerifyHTTP is the same over loopback HTTP/1.1 with keep-alive
// (client and server share the machine's cores).
func BenchmarkVerifyHTTP(b *testing.B) {
	is := newTestIssuer(b)
	ts := startServer(b, is, nil)
	tokens := make([]string, 2000)
	for i := range tokens {
		tokens[i] = "Bearer " + is.token(testPhone)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	body := `{"phoneNumber":"` + testPhone + `"}`
	var next, failures atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, ts.url+basePathV2+"/verify", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", tokens[next.Add(1)%int64(len(tokens))])
			resp, err := client.Do(req)
			if err != nil {
				failures.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failures.Add(1)
			}
		}
	})
	if failures.Load() > 0 {
		b.Fatalf("%d requests failed", failures.Load())
	}
}
