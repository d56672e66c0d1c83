package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestObserveAndMount(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	app := http.NewServeMux()
	app.HandleFunc("POST /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		SetClientID(r.Context(), "client-7")
		SetCorrelator(r.Context(), "corr-1")
		w.WriteHeader(http.StatusCreated)
	})
	down := errors.New("postgres unreachable")
	var failing bool
	checks := map[string]Check{"postgres": func(context.Context) error {
		if failing {
			return down
		}
		return nil
	}}
	srv := httptest.NewServer(Mount(Observe("test", app, logger, NewMetrics(reg)), checks, MetricsHandler(reg, "")))
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/things/+33612345678", "text/plain", nil)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %v %v", resp, err)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("log line %q: %v", logs.String(), err)
	}
	if line["route"] != "POST /things/{id}" || line["status"] != float64(201) || line["client_id"] != "client-7" || line["x_correlator"] != "corr-1" {
		t.Errorf("log line %v", line)
	}
	if strings.Contains(logs.String(), "33612345678") {
		t.Error("the raw path (with a number in it) reached the log")
	}

	for _, tc := range []struct {
		path    string
		failing bool
		want    int
	}{
		{"/healthz", false, 200}, {"/readyz", false, 200}, {"/healthz", true, 200}, {"/readyz", true, 503}, {"/metrics", false, 200},
	} {
		failing = tc.failing
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil || resp.StatusCode != tc.want {
			t.Errorf("%s (postgres failing %v): %v %v, want %d", tc.path, tc.failing, resp.Status, err, tc.want)
		}
		resp.Body.Close()
	}
	resp, _ = http.Get(srv.URL + "/metrics")
	families := parseMetrics(t, resp)
	labels := map[string]string{"method": "POST", "route": "POST /things/{id}", "server": "test", "status": "201"}
	if v, ok := counter(families, "numverify_http_requests_total", labels); !ok || v != 1 {
		t.Errorf("numverify_http_requests_total%v = %v (found %v), want 1", labels, v, ok)
	}
}

// parseMetrics reads a /metrics answer in the Prometheus text format.
func parseMetrics(t *testing.T, resp *http.Response) map[string]*dto.MetricFamily {
	t.Helper()
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return families
}

// counter is the value of the counter name whose labels are exactly labels.
func counter(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, m := range families[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if maps.Equal(got, labels) {
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// TestObserveRecordsTheFinalStatus: an informational answer (103 Early
// Hints) before the final one is not the request's status, and the
// wrapped writer still offers what the server's writer offers.
func TestObserveRecordsTheFinalStatus(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	var hijackable, flushable bool
	h := Observe("test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, hijackable = w.(http.Hijacker)
		_, flushable = w.(http.Flusher)
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusNoContent)
	}), slog.New(slog.NewJSONHandler(&logs, nil)), NewMetrics(reg))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), `"status":204`) {
		t.Errorf("log line records another status than the final 204: %s", logs.String())
	}
	if !hijackable || !flushable {
		t.Errorf("behind Observe the writer is a Hijacker %v, a Flusher %v; want both", hijackable, flushable)
	}
}

func TestClientGoneIsNotAServerError(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	h := Observe("test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}), slog.New(slog.NewJSONHandler(&logs, nil)), NewMetrics(reg))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil).WithContext(ctx))
	if !strings.Contains(logs.String(), `"status":499`) {
		t.Fatalf("log: %s", logs.String())
	}
}
