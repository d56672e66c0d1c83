package testclock

import (
	"testing"
	"time"
)

func TestFrozenMovesOnlyWhenTold(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now() = %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Advance: Now() = %v, want %v", got, want)
	}
	c.Advance(-90 * time.Second)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("after moving back: Now() = %v, want %v", got, start)
	}
}

func TestOffsetIsRealTimePlusAdvance(t *testing.T) {
	var c Offset
	c.Advance(time.Hour)
	before := time.Now().Add(time.Hour)
	got := c.Now()
	after := time.Now().Add(time.Hour)
	if got.Before(before) || got.After(after) {
		t.Fatalf("Now() = %v, want between %v and %v", got, before, after)
	}
	if c.Advanced() != time.Hour {
		t.Fatalf("Advanced() = %v, want 1h", c.Advanced())
	}
	c.Advance(-c.Advanced())
	if c.Advanced() != 0 {
		t.Fatalf("Advanced() after reset = %v, want 0", c.Advanced())
	}
}
