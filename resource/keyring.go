package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-jose/go-jose/v4"
)

// keyRing is a set of keys by kid, read without locks on every request and
// refreshed from its source: periodically, and when a token names a kid it
// does not hold — then at most once per minInterval, with every request
// waiting for the same unknown kid sharing one fetch.
type keyRing struct {
	name        string
	fetch       func(ctx context.Context) ([]jose.JSONWebKey, error)
	accept      func(jose.JSONWebKey) (any, bool) // which keys of the source this ring holds
	grace       time.Duration                     // keep keys the source dropped this long (0: drop at once)
	minInterval time.Duration
	timeout     time.Duration
	period      time.Duration
	now         func() time.Time
	log         *slog.Logger
	metrics     *metrics
	ctx         context.Context // ends with the server

	keys atomic.Pointer[map[string]ringKey]

	mu          sync.Mutex
	inflight    *refreshCall
	lastUnknown time.Time // last fetch caused by an unknown kid
}

type ringKey struct {
	key       any
	droppedAt time.Time // zero while the source still returns it
}

type refreshCall struct {
	done chan struct{}
	err  error
}

func newKeyRing(ctx context.Context, name string, fetch func(context.Context) ([]jose.JSONWebKey, error),
	accept func(jose.JSONWebKey) (any, bool), grace, minInterval time.Duration, now func() time.Time,
	log *slog.Logger, m *metrics) *keyRing {
	r := &keyRing{name: name, fetch: fetch, accept: accept, grace: grace, minInterval: minInterval,
		timeout: 5 * time.Second, period: 5 * time.Minute, now: now, log: log, metrics: m, ctx: ctx}
	empty := map[string]ringKey{}
	r.keys.Store(&empty)
	return r
}

// lookup returns the key with this kid, fetching the source again when the
// kid is unknown and the last fetch is old enough. It has the shape of
// contract.Keys' functions.
func (r *keyRing) lookup(kid string) (any, bool) {
	if k, ok := (*r.keys.Load())[kid]; ok {
		return k.key, true
	}
	r.mu.Lock()
	call := r.inflight
	if call == nil {
		if !r.lastUnknown.IsZero() && r.now().Sub(r.lastUnknown) < r.minInterval {
			r.mu.Unlock()
			return nil, false
		}
		r.lastUnknown = r.now()
		call = r.startLocked()
	}
	r.mu.Unlock()
	<-call.done
	k, ok := (*r.keys.Load())[kid]
	return k.key, ok
}

// refresh fetches the source now (or joins a fetch in flight).
func (r *keyRing) refresh() error {
	r.mu.Lock()
	call := r.inflight
	if call == nil {
		call = r.startLocked()
	}
	r.mu.Unlock()
	<-call.done
	return call.err
}

func (r *keyRing) startLocked() *refreshCall {
	call := &refreshCall{done: make(chan struct{})}
	r.inflight = call
	go func() {
		ctx, cancel := context.WithTimeout(r.ctx, r.timeout)
		call.err = r.load(ctx)
		cancel()
		r.metrics.keyRefresh(r.name, call.err)
		r.mu.Lock()
		r.inflight = nil
		r.mu.Unlock()
		close(call.done)
	}()
	return call
}

func (r *keyRing) load(ctx context.Context) error {
	fetched, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	now := r.now()
	next := make(map[string]ringKey, len(fetched))
	for _, jwk := range fetched {
		if jwk.KeyID == "" {
			continue
		}
		if key, ok := r.accept(jwk); ok {
			next[jwk.KeyID] = ringKey{key: key}
		}
	}
	if r.grace > 0 {
		for kid, old := range *r.keys.Load() {
			if _, still := next[kid]; still {
				continue
			}
			if old.droppedAt.IsZero() {
				old.droppedAt = now
			}
			if now.Sub(old.droppedAt) < r.grace {
				next[kid] = old
			}
		}
	}
	if len(next) == 0 {
		return errors.New(r.name + ": the source returned no usable key")
	}
	r.keys.Store(&next)
	return nil
}

// run loads the keys at start, retrying with backoff until it succeeds
// (the authorization server may start after this server, or restart), then
// refreshes them every period, until ctx ends. Until the first load the
// server is not ready and waits at most notLoadedRetry between tries, so that
// it is ready within seconds of its source coming back; once loaded, the
// backoff may grow to 30 s (the keys it holds keep serving).
func (r *keyRing) run(ctx context.Context) {
	retry := retryDelays(250*time.Millisecond, 30*time.Second)
	for {
		next := r.period
		if err := r.refresh(); err != nil {
			next = r.retryWait(retry)
			r.log.LogAttrs(ctx, slog.LevelWarn, "key refresh failed", slog.String("keys", r.name), errAttr(err),
				slog.Duration("retry_in", next))
		} else {
			retry.Reset()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

// notLoadedRetry bounds the wait between tries while no key is loaded.
const notLoadedRetry = 2 * time.Second

// retryWait is the wait after a failed refresh: the backoff's next delay,
// at most notLoadedRetry while the ring holds no key.
func (r *keyRing) retryWait(retry *backoff.ExponentialBackOff) time.Duration {
	next := retry.NextBackOff()
	if r.ready() != nil {
		next = min(next, notLoadedRetry)
	}
	return next
}

func (r *keyRing) ready() error {
	if len(*r.keys.Load()) == 0 {
		return errors.New(r.name + " not loaded")
	}
	return nil
}

// acceptVerificationKey keeps the public signing keys of a JWKS.
func acceptVerificationKey(jwk jose.JSONWebKey) (any, bool) {
	if jwk.Use != "" && jwk.Use != "sig" || !jwk.IsPublic() || !jwk.Valid() {
		return nil, false
	}
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		return k, k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return k, k.N.BitLen() >= 2048
	}
	return nil, false
}

// acceptNestedDecryptionKey keeps private P-256 keys (FormatJWT).
func acceptNestedDecryptionKey(jwk jose.JSONWebKey) (any, bool) {
	k, ok := jwk.Key.(*ecdsa.PrivateKey)
	return k, ok && k.Curve == elliptic.P256()
}

// acceptDirectKey keeps 256-bit symmetric keys (FormatJWTDirect).
func acceptDirectKey(jwk jose.JSONWebKey) (any, bool) {
	k, ok := jwk.Key.([]byte)
	return k, ok && len(k) == 32
}
