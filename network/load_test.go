package network

import (
	"context"
	"testing"
)

// loadSessions bulk-loads, in one INSERT … SELECT each and in the order a
// real network writes them (oldest first), closed sessions cycling over the
// addresses 10.0.0.0 + i (i < active), one past hour per round — the most
// recent round ended an hour ago — then one active session per address;
// then it ANALYZEs the table.
func loadSessions(tb testing.TB, store *Store, active, closed int) {
	tb.Helper()
	ctx := context.Background()
	statements := []string{
		`INSERT INTO network_sessions (msisdn, ip, period)
		 SELECT '+337' || lpad(g::text, 8, '0'), '10.0.0.0'::inet + (g % $1),
		        tstzrange(now() - make_interval(hours => ($2 - 1) / $1 + 2 - g / $1),
		                  now() - make_interval(hours => ($2 - 1) / $1 + 1 - g / $1), '[)')
		 FROM generate_series(0, $2 - 1) AS g`,
		`INSERT INTO network_sessions (msisdn, ip, period)
		 SELECT '+336' || lpad(g::text, 8, '0'), '10.0.0.0'::inet + g, tstzrange(now() - interval '1 minute', NULL, '[)')
		 FROM generate_series(0, $1 - 1) AS g`,
		`ANALYZE network_sessions`,
	}
	args := [][]any{{active, closed}, {active}, nil}
	for i, sql := range statements {
		if _, err := store.db.Exec(ctx, sql, args[i]...); err != nil {
			tb.Fatalf("load sessions: %v", err)
		}
	}
}
