package resource

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestKeyRingRetriesSoonUntilLoaded: while the ring holds no key (the
// server is not ready: its issuer is not up yet, or restarting) a failed
// refresh is retried within notLoadedRetry, however many failed before, so
// that the server is ready within seconds of its source coming back; once
// keys are loaded the backoff grows past it (those keys keep serving).
func TestKeyRingRetriesSoonUntilLoaded(t *testing.T) {
	down := errors.New("connection refused")
	var serve []jose.JSONWebKey
	fetch := func(context.Context) ([]jose.JSONWebKey, error) {
		if serve == nil {
			return nil, down
		}
		return serve, nil
	}
	accept := func(jose.JSONWebKey) (any, bool) { return "key", true }
	r := newKeyRing(context.Background(), "issuer JWKS", fetch, accept, 0, 0, time.Now, slog.New(slog.DiscardHandler), nil)

	retry := retryDelays(250*time.Millisecond, 30*time.Second)
	for i := range 12 {
		if err := r.load(context.Background()); err == nil {
			t.Fatal("loaded from a source that is down")
		}
		if wait := r.retryWait(retry); wait > notLoadedRetry {
			t.Fatalf("failure %d with no key loaded: next try in %s, want at most %s", i+1, wait, notLoadedRetry)
		}
	}

	serve = []jose.JSONWebKey{{KeyID: "k1"}}
	if err := r.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	serve = nil
	var longest time.Duration
	for range 12 {
		longest = max(longest, r.retryWait(retry))
	}
	if longest <= notLoadedRetry {
		t.Fatalf("with keys loaded the backoff stayed at %s or less: want it to grow (to 30 s)", longest)
	}
}
