package sim

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records durations in fixed log-linear buckets, HDR-style: exact
// below 128 µs, then 128 buckets per power of two (a relative error under
// 0.4 %) up to about 2^47 µs. Memory is fixed (about 43 KiB) whatever the
// number of samples, and record is lock-free, so one histogram can take the
// samples of every worker.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sumUS  atomic.Uint64
	maxUS  atomic.Uint64
}

const (
	subBits     = 7
	subCount    = 1 << subBits // 128
	maxExponent = 40
	histBuckets = subCount + (maxExponent+1)*subCount
)

// bucketOf maps a value in microseconds to its bucket index.
func bucketOf(us uint64) int {
	if us < subCount {
		return int(us)
	}
	e := bits.Len64(us) - (subBits + 1) // us>>e is in [128, 255]
	if e > maxExponent {
		return histBuckets - 1
	}
	return subCount + e*subCount + int(us>>uint(e)) - subCount
}

// bucketRange is the [low, high) range of values of a bucket, in µs.
func bucketRange(i int) (low, high uint64) {
	if i < subCount {
		return uint64(i), uint64(i) + 1
	}
	e := (i - subCount) / subCount
	mantissa := uint64((i-subCount)%subCount + subCount)
	return mantissa << uint(e), (mantissa + 1) << uint(e)
}

// record adds one duration.
func (h *histogram) record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(us)].Add(1)
	h.n.Add(1)
	h.sumUS.Add(us)
	for {
		old := h.maxUS.Load()
		if us <= old || h.maxUS.CompareAndSwap(old, us) {
			return
		}
	}
}

// count is the number of recorded durations.
func (h *histogram) count() uint64 { return h.n.Load() }

// max is the largest recorded duration (exact).
func (h *histogram) max() time.Duration { return time.Duration(h.maxUS.Load()) * time.Microsecond }

// mean is the average recorded duration.
func (h *histogram) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sumUS.Load()/n) * time.Microsecond
}

// quantile returns the duration at or below which a fraction q (0 < q ≤ 1)
// of the samples fall: the midpoint of the bucket holding the rank-⌈q·n⌉
// sample, never above max.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			low, high := bucketRange(i)
			mid := low + (high-low)/2
			if i < subCount {
				mid = low
			}
			return time.Duration(min(mid, h.maxUS.Load())) * time.Microsecond
		}
	}
	return h.max()
}
