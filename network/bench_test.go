package network

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
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
	cases := []resolveCase{
		{"active now", now, 0x0a000000, nil},
		{"closed, five hours ago", now.Add(-5*time.Hour - 30*time.Minute), 0x0a000000, nil},
		{"nobody", now, 0xc0000200, ErrNotFound}, // 192.0.2.0
	}
	benchResolveCases(b, store, active, cases)
}

// resolveCase is one sub-benchmark of Resolve: addresses from base, at at.
type resolveCase struct {
	name string
	at   time.Time
	base uint32 // first address probed
	want error
}

// benchResolveCases runs each case over span addresses from its base.
func benchResolveCases(b *testing.B, store *Store, span int, cases []resolveCase) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchResolve(b, store, c.at, c.base, span, c.want) })
	}
}

// benchResolve resolves, at at, random addresses among the span addresses
// from base, each expected to give want.
func benchResolve(b *testing.B, store *Store, at time.Time, base uint32, span int, want error) {
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+uint32(rand.IntN(span)))
		addrs[i] = netip.AddrFrom4(a)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, err := store.Resolve(ctx, addrs[i%len(addrs)], 40001, at)
		if !errors.Is(err, want) {
			b.Fatalf("Resolve(%s at %s): %v; want %v", addrs[i%len(addrs)], at, err, want)
		}
		i++
	}
}

// BenchmarkResolveAtScale is the figure: the resolver with 1,000,000
// sessions open and 10,000,000 closed ones in history (ten per address over
// the last week, loaded with generate_series straight into the daily
// partitions; several minutes). Opt-in:
//
//	NUMVERIFY_BENCH_10M=1 go test -run '^$' -bench ResolveAtScale -benchtime 20000x -timeout 60m ./network/
//
// NUMVERIFY_BENCH_10M=small loads a tenth of it.
func BenchmarkResolveAtScale(b *testing.B) {
	open, closed := 1_000_000, 10_000_000
	switch os.Getenv("NUMVERIFY_BENCH_10M") {
	case "":
		b.Skip("set NUMVERIFY_BENCH_10M=1 to load 11 million sessions")
	case "small":
		open, closed = 100_000, 1_000_000
	}
	store, _ := newTestStore(b, testPools)
	loadStart := time.Now()
	loadAtScale(b, store, open, closed)
	b.Logf("loaded %d open and %d closed sessions (history) in %s", open, closed, time.Since(loadStart).Round(time.Second))
	now := time.Now()
	cases := []resolveCase{
		{"now", now, 0x0a000000, nil},
		{"10 s ago, within the hot window", now.Add(-10 * time.Second), 0x0a000000, nil},
		{"70 h ago, in history", now.Add(-70 * time.Hour), 0x0a000000, nil},
		{"nobody now", now, 0xc0000200, ErrNotFound},
	}
	benchResolveCases(b, store, open, cases)
}

// loadAtScale loads closed sessions into the history — address 10.0.0.0 +
// g % open, round g / open of 16 hours each (15 h held) from a week ago —
// with the history's indexes dropped during the load and made again after
// (as migrations 0009 and 0011 define them), then one open session per
// address in the hot table since an hour ago; then ANALYZE.
func loadAtScale(tb testing.TB, store *Store, open, closed int) {
	tb.Helper()
	ctx := context.Background()
	conn, err := store.db.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	steps := []struct {
		sql  string
		args []any
	}{
		{`SET maintenance_work_mem = '256MB'`, nil},
		{`SELECT network_history_prepare(now() - interval '8 days', now() + interval '2 days')`, nil},
		{`DROP INDEX network_session_history_ip, network_session_history_accounting, network_session_history_msisdn, network_session_history_id`, nil},
		{`INSERT INTO network_session_history (msisdn, ip, ports, period, apn, rat, nas, acct_session_id)
		  SELECT '+336' || lpad((g % $1)::text, 8, '0'), '10.0.0.0'::inet + (g % $1), int4range(0, 65535, '[]'),
		         tstzrange(now() - interval '168 hours' + make_interval(hours => 16 * (g / $1)),
		                   now() - interval '153 hours' + make_interval(hours => 16 * (g / $1)), '[)'),
		         'internet', 'LTE', 'pgw1', 'h-' || g
		  FROM generate_series(0, $2 - 1) AS g`, []any{open, closed}},
		{`CREATE INDEX network_session_history_ip ON network_session_history USING gist (network_address_key(ip), ip inet_ops, ports, period)`, nil},
		{`CREATE INDEX network_session_history_accounting ON network_session_history (nas, acct_session_id) WHERE nas IS NOT NULL`, nil},
		{`CREATE INDEX network_session_history_msisdn ON network_session_history (msisdn, lower(period) DESC)`, nil},
		{`CREATE INDEX network_session_history_id ON network_session_history (id)`, nil},
		{`INSERT INTO network_sessions (msisdn, ip, period, apn, rat, nas, acct_session_id)
		  SELECT '+336' || lpad(g::text, 8, '0'), '10.0.0.0'::inet + g, tstzrange(now() - interval '1 hour', NULL, '[)'),
		         'internet', 'LTE', 'pgw1', 'o-' || g
		  FROM generate_series(0, $1 - 1) AS g`, []any{open}},
		{`ANALYZE network_sessions`, nil},
		{`ANALYZE network_session_history`, nil},
	}
	for _, st := range steps {
		start := time.Now()
		if _, err := conn.Exec(ctx, st.sql, st.args...); err != nil {
			tb.Fatalf("load: %s: %v", st.sql, err)
		}
		what := strings.Join(strings.Fields(st.sql), " ")
		tb.Logf("%.60s… %s", what, time.Since(start).Round(time.Second))
	}
}
