// Package ratelimit keeps one token bucket (golang.org/x/time/rate) per key
// (a source address, a client id) in bounded memory: idle buckets are swept.
package ratelimit

import (
	"math"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter limits each key to Rate events per second with bursts of Burst.
// A zero or negative rate disables limiting.
type Limiter struct {
	rate  rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
	maxKeys   int
}

type bucket struct {
	limiter  *rate.Limiter
	lastSeen time.Time
}

// New returns a limiter of perSecond events per key with burst; maxKeys bounds
// the memory (when full, buckets idle the longest are dropped first).
func New(perSecond float64, burst, maxKeys int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if maxKeys < 1 {
		maxKeys = 100_000
	}
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}, maxKeys: maxKeys}
}

// Allow reports whether an event for key may happen now; when not, it says
// how long until one may (for Retry-After).
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil || l.rate <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	l.sweep(now, !found)
	if !found {
		b = &bucket{limiter: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	} else if _, kept := l.buckets[key]; !kept {
		l.buckets[key] = b // idle long enough to be dropped, but in use again
	}
	b.lastSeen = now
	r := b.limiter.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		return false, delay
	}
	return true, 0
}

// RetryAfterSeconds rounds a delay up to whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// sweep drops buckets that have been idle long enough to be full again
// (every 10 s), and when a new key finds the table full the tenth of them
// idle the longest: a full table costs one sort per maxKeys/10 new keys, not
// a scan per new key, so a flood of distinct keys cannot make every request
// pay for the whole table.
func (l *Limiter) sweep(now time.Time, newKey bool) {
	full := newKey && len(l.buckets) >= l.maxKeys
	if now.Sub(l.lastSweep) < 10*time.Second && !full {
		return
	}
	l.lastSweep = now
	refill := time.Duration(float64(l.burst) / float64(l.rate) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.lastSeen) > refill {
			delete(l.buckets, k)
		}
	}
	if !newKey || len(l.buckets) < l.maxKeys {
		return
	}
	type seen struct {
		key  string
		last time.Time
	}
	all := make([]seen, 0, len(l.buckets))
	for k, b := range l.buckets {
		all = append(all, seen{k, b.lastSeen})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].last.Before(all[j].last) })
	drop := len(all) - l.maxKeys + max(1, l.maxKeys/10)
	for _, s := range all[:min(drop, len(all))] {
		delete(l.buckets, s.key)
	}
}
