package ratelimit

import "time"

// Blocked reports, without spending an event, whether key's bucket is empty
// at now, and how long until it holds one again. A limiter that charges only
// failures (wrong credentials) uses it to refuse before checking, so that an
// exhausted address cannot keep guessing while successes cost nothing.
func (l *Limiter) Blocked(key string, now time.Time) (blocked bool, retryAfter time.Duration) {
	if l == nil || l.rate <= 0 {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		return false, 0
	}
	tokens := b.limiter.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) / float64(l.rate) * float64(time.Second))
}
