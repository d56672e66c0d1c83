package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	if !strings.Contains(body.String(), `numverify_http_requests_total{method="POST",route="POST /things/{id}",server="test",status="201"} 1`) {
		t.Errorf("metrics lack the request counter:\n%s", body.String())
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
