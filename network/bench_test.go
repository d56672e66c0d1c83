package network

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkResolve resolves addresses in a table of 100,000 active and
// 1,000,000 closed sessions (bulk-loaded; about a minute). Run with
//
//	go test -run '^$' -bench BenchmarkResolve -benchtime 20000x ./network/
func BenchmarkResolve(b *testing.B) {
	if testing.Short() {
		b.Skip("loads 1.1 million sessions")
	}
	const active, closed = 100_000, 1_000_000
	store, _ := newTestStore(b, testPools)
	loadStart := time.Now()
	loadSessions(b, store, active, closed)
	b.Logf("loaded %d active and %d closed sessions in %s", active, closed, time.Since(loadStart).Round(time.Second))
	now := time.Now()
	cases := []struct {
		name string
		at   time.Time
		base uint32 // first address probed
		want error
	}{
		{"active now", now, 0x0a000000, nil},
		{"closed, five hours ago", now.Add(-5*time.Hour - 30*time.Minute), 0x0a000000, nil},
		{"nobody", now, 0xc0000200, ErrNotFound}, // 192.0.2.0
	}
	ctx := context.Background()
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			addrs := make([]netip.Addr, 4096)
			for i := range addrs {
				var a [4]byte
				binary.BigEndian.PutUint32(a[:], c.base+uint32(rand.IntN(active)))
				addrs[i] = netip.AddrFrom4(a)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, err := store.Resolve(ctx, addrs[i%len(addrs)], 40001, c.at)
				if !errors.Is(err, c.want) {
					b.Fatalf("Resolve(%s): %v; want %v", addrs[i%len(addrs)], err, c.want)
				}
				i++
			}
		})
	}
}
