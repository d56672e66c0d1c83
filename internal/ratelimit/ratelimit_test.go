package ratelimit

import (
	"testing"
	"time"
)

func TestAllowPerKey(t *testing.T) {
	l := New(2, 3, 10)
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	ok, retry := l.Allow("a", now)
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("4th event: ok=%v retry=%v, want refused with retry ≤ 1s", ok, retry)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.Allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("no refill after 0.5 s at 2/s")
	}
	if RetryAfterSeconds(100*time.Millisecond) != 1 || RetryAfterSeconds(1500*time.Millisecond) != 2 {
		t.Fatal("RetryAfterSeconds rounding")
	}
}

func TestDisabledAndBounded(t *testing.T) {
	if ok, _ := New(0, 1, 1).Allow("x", time.Now()); !ok {
		t.Fatal("rate 0 must disable limiting")
	}
	l := New(1, 1, 5)
	now := time.Unix(0, 0)
	for i := 0; i < 50; i++ {
		l.Allow(string(rune('a'+i)), now)
	}
	if len(l.buckets) > 5 {
		t.Fatalf("%d buckets kept, bound is 5", len(l.buckets))
	}
}

// A full table makes room only for new keys: using a key already there
// drops nobody's bucket, so a spent bucket stays spent.
func TestFullTableKeepsKnownKeys(t *testing.T) {
	l := New(0.001, 1, 3)
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	for i, k := range []string{"a", "b", "c"} {
		if ok, _ := l.Allow(k, at(i)); !ok {
			t.Fatalf("first event of %s refused", k)
		}
	}
	if ok, _ := l.Allow("c", at(3)); ok {
		t.Fatal("second event of c allowed")
	}
	if ok, _ := l.Allow("a", at(4)); ok {
		t.Fatal("second event of a allowed: its spent bucket was dropped although no new key needed room")
	}
	if ok, _ := l.Allow("d", at(5)); !ok {
		t.Fatal("a new key refused")
	}
	if len(l.buckets) > 3 {
		t.Fatalf("%d buckets kept, bound is 3", len(l.buckets))
	}
}
