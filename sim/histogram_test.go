package sim

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantilesMatchSortedSamples(t *testing.T) {
	tests := []struct {
		name   string
		sample func(r *rand.Rand) time.Duration
	}{
		{"uniform 0-50ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(50 * time.Millisecond))) }},
		{"exponential mean 2ms", func(r *rand.Rand) time.Duration {
			return time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		}},
		{"microseconds", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(100)) * time.Microsecond }},
		{"heavy tail", func(r *rand.Rand) time.Duration {
			if r.IntN(100) == 0 {
				return time.Duration(1+r.Int64N(5)) * time.Second
			}
			return time.Duration(r.Int64N(int64(3 * time.Millisecond)))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h histogram
			samples := make([]time.Duration, 20000)
			for i := range samples {
				samples[i] = tt.sample(r).Truncate(time.Microsecond)
				h.record(samples[i])
			}
			slices.Sort(samples)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := samples[int(q*float64(len(samples)))-1]
				if q == 1 {
					want = samples[len(samples)-1]
				}
				got := h.quantile(q)
				// One bucket is under 1/128 wide, relative; allow 1 % + 1 µs.
				tolerance := time.Duration(float64(want)*0.01) + time.Microsecond
				if diff := got - want; diff > tolerance || diff < -tolerance {
					t.Errorf("q%.3f = %v, sorted samples say %v (tolerance %v)", q, got, want, tolerance)
				}
			}
			if h.max() != samples[len(samples)-1] {
				t.Errorf("max = %v, want %v", h.max(), samples[len(samples)-1])
			}
			if h.count() != uint64(len(samples)) {
				t.Errorf("count = %d", h.count())
			}
		})
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	for _, us := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 123456, 1 << 30, 1<<47 - 1} {
		i := bucketOf(us)
		low, high := bucketRange(i)
		if us < low || us >= high {
			t.Errorf("%d µs in bucket %d = [%d, %d)", us, i, low, high)
		}
	}
}

func TestHistogramConcurrentRecord(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.record(time.Duration(w*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if h.count() != 8000 || h.max() != 7999*time.Microsecond {
		t.Fatalf("count %d max %v", h.count(), h.max())
	}
	if h.quantile(0) != 0 {
		t.Errorf("q0 = %v", h.quantile(0))
	}
	var empty histogram
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Error("empty histogram should answer zero")
	}
}
