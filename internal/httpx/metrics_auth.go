package httpx

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MinMetricsTokenLength is the shortest bearer token accepted for /metrics
// on the servers' own ports.
const MinMetricsTokenLength = 32

// MetricsHandler serves gatherer's metrics in the Prometheus text format.
// With a token, only to requests carrying "Authorization: Bearer <token>"
// (401 otherwise): that is how /metrics may sit on a server's public port.
// Without one it answers everyone, for a listener only Prometheus reaches
// (--metrics-addr, loopback by default).
func MetricsHandler(gatherer prometheus.Gatherer, token string) http.Handler {
	metrics := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	if token == "" {
		return metrics
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, given, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(given)))
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="numverify-metrics"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "message": "/metrics needs the metrics bearer token"})
			return
		}
		metrics.ServeHTTP(w, r)
	})
}
