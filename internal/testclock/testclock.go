// Package testclock gives tests clocks they move by hand instead of
// sleeping past a TTL.
package testclock

import (
	"sync"
	"sync/atomic"
	"time"
)

// Frozen is a clock that stands still until the test moves it.
type Frozen struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a frozen clock reading start.
func New(start time.Time) *Frozen { return &Frozen{t: start} }

// Now is the time the clock stands at.
func (c *Frozen) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (backwards when d is negative).
func (c *Frozen) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Offset is real time moved by what the test has advanced it; its zero
// value reads real time.
type Offset struct{ offset atomic.Int64 }

// Now is real time plus the offset.
func (c *Offset) Now() time.Time { return time.Now().Add(c.Advanced()) }

// Advance moves the clock by d (backwards when d is negative).
func (c *Offset) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// Advanced is how far the clock has been moved from real time.
func (c *Offset) Advanced() time.Duration { return time.Duration(c.offset.Load()) }
