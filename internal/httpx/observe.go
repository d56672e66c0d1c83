// Package httpx is the HTTP plumbing every numverify server shares: one access
// log line and the Prometheus metrics per request, and the liveness,
// readiness and metrics endpoints. Components report the route template and
// the client id of a request with SetRoute and SetClientID; the wrapper logs
// them. Nothing here ever sees a body, so no number, token or code can reach
// the log line.
package httpx

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/felixge/httpsnoop"
	"github.com/prometheus/client_golang/prometheus"
)

// statusClientClosedRequest is what the log and metrics record for a request
// whose client went away before its answer (nginx's 499), so that a client
// giving up is not counted as a server error.
const statusClientClosedRequest = 499

type infoKey struct{}

// requestInfo is filled in by the component while it handles the request.
type requestInfo struct {
	route      string
	clientID   string
	correlator string
}

func info(ctx context.Context) *requestInfo {
	i, _ := ctx.Value(infoKey{}).(*requestInfo)
	return i
}

// SetRoute records the route template ("/number-verification/v2/verify",
// "/authorize") for the request's metrics and log line.
func SetRoute(ctx context.Context, route string) {
	if i := info(ctx); i != nil {
		i.route = route
	}
}

// SetClientID records the OAuth2 client the request was made by or for.
func SetClientID(ctx context.Context, clientID string) {
	if i := info(ctx); i != nil {
		i.clientID = clientID
	}
}

// SetCorrelator records the request's x-correlator for the log line.
func SetCorrelator(ctx context.Context, correlator string) {
	if i := info(ctx); i != nil {
		i.correlator = correlator
	}
}

// Metrics are the HTTP metrics of one process, labelled by server.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	rejected *prometheus.CounterVec
}

// NewMetrics registers the HTTP metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_http_requests_total", Help: "HTTP requests by server, route, method and status.",
		}, []string{"server", "route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "numverify_http_request_duration_seconds", Help: "HTTP request latency by server, route and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"server", "route", "status"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "numverify_http_requests_in_flight", Help: "HTTP requests being served.",
		}, []string{"server"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "numverify_connections_rejected_total", Help: "Connections closed at once because their peer address held the most allowed (--max-conns-per-address).",
		}, []string{"server"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.rejected)
	return m
}

// RejectedConnections is the counter of server's connections refused by
// LimitConnections.
func (m *Metrics) RejectedConnections(server string) prometheus.Counter {
	return m.rejected.WithLabelValues(server)
}

// Observe wraps a server's handler with its access log line and metrics.
// The route label is what the component set with SetRoute, else the
// ServeMux pattern, else "unmatched" (never the raw path: bounded cardinality).
func Observe(server string, next http.Handler, logger *slog.Logger, m *Metrics) http.Handler {
	inFlight := m.inFlight.WithLabelValues(server)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		inFlight.Inc()
		defer inFlight.Dec()
		// The first final status written (200 when the handler writes none);
		// the wrapper keeps Flusher, Hijacker, ReaderFrom… of w.
		captured := httpsnoop.CaptureMetrics(next, w, r)
		code := captured.Code
		if code >= 500 && errors.Is(r.Context().Err(), context.Canceled) {
			// The client hung up before the answer: not a server error.
			code = statusClientClosedRequest
		}
		route := ri.route
		if route == "" {
			route = r.Pattern
		}
		if route == "" {
			route = "unmatched"
		}
		status := strconv.Itoa(code)
		elapsed := captured.Duration
		m.requests.WithLabelValues(server, route, r.Method, status).Inc()
		m.duration.WithLabelValues(server, route, status).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if code >= 500 {
			level = slog.LevelError
		}
		logger.LogAttrs(r.Context(), level, "request",
			slog.String("server", server),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", code),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("client_id", ri.clientID),
			slog.String("x_correlator", ri.correlator),
		)
	})
}
