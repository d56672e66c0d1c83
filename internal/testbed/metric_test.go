package testbed

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestMetric: the samples whose labels include the asked ones are summed (a
// label value may hold spaces), a series not created yet is 0, and
// /metrics is asked with MetricsToken.
func TestMetric(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" || r.Header.Get("Authorization") != "Bearer "+MetricsToken {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`# TYPE requests_total counter
requests_total{route="/token",status="200"} 3
requests_total{route="/token",status="400"} 2
requests_total{route="POST /token x",status="200"} 7
# TYPE goroutines gauge
goroutines 12
`))
	}))
	defer srv.Close()
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"requests_total", nil, 12},
		{"requests_total", map[string]string{"route": "/token"}, 5},
		{"requests_total", map[string]string{"route": "/token", "status": "200"}, 3},
		{"requests_total", map[string]string{"route": "POST /token x"}, 7},
		{"requests_total", map[string]string{"route": "/revoke"}, 0},
		{"goroutines", nil, 12},
		{"absent_total", nil, 0},
	} {
		if got := Metric(t, srv.URL, c.name, c.labels); got != c.want {
			t.Errorf("Metric(%s, %v) = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
