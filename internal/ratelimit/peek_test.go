package ratelimit

import (
	"testing"
	"time"
)

func TestBlockedDoesNotSpend(t *testing.T) {
	l := New(1, 2, 10)
	now := time.Unix(1000, 0)
	if blocked, _ := l.Blocked("a", now); blocked {
		t.Fatal("an unknown key is blocked")
	}
	for i := 0; i < 2; i++ {
		if blocked, _ := l.Blocked("a", now); blocked {
			t.Fatalf("blocked before event %d of the burst", i)
		}
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("event %d of the burst refused: Blocked spent one", i)
		}
	}
	blocked, retry := l.Blocked("a", now)
	if !blocked || retry <= 0 || retry > time.Second {
		t.Fatalf("after the burst: blocked=%v retry=%v, want blocked ≤ 1s", blocked, retry)
	}
	if blocked, _ := l.Blocked("a", now.Add(time.Second)); blocked {
		t.Fatal("still blocked after a refill")
	}
	if blocked, _ := New(0, 1, 1).Blocked("a", now); blocked {
		t.Fatal("a disabled limiter blocks")
	}
}
