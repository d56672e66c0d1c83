package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
)

// TestJanitorMaintainsHistory, through the command line: `numverify
// janitor` moves a session closed two minutes ago from the hot table to the
// history and forgets one that ended past --network-history-retention,
// keeping the open one and the one within retention.
func TestJanitorMaintainsHistory(t *testing.T) {
	db := pgtest.New(t)
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	db.Exec(t, `INSERT INTO network_sessions (msisdn, ip, period) VALUES
		('+33612340001', '127.10.9.1', tstzrange($1, NULL)),
		('+33612340002', '127.10.9.2', tstzrange($1, $2))`, at(-time.Hour), at(-2*time.Minute))
	db.Exec(t, `INSERT INTO network_session_history (msisdn, ip, ports, period, apn, rat) VALUES
		('+33612340003', '127.10.9.3', '[0,65536)', tstzrange($1, $2), 'internet', 'EUTRAN'),
		('+33612340004', '127.10.9.4', '[0,65536)', tstzrange($1, $3), 'internet', 'EUTRAN')`,
		at(-12*24*time.Hour), at(-10*24*time.Hour), at(-2*24*time.Hour))

	env := map[string]string{"DATABASE_URL": db.URL, "NUMVERIFY_LOG_LEVEL": "warn"}
	var out, errOut bytes.Buffer
	code := execute(context.Background(), commands(), []string{"janitor", "--network-history-retention", "168h"}, &out, &errOut,
		func(k string) string { return env[k] })
	if code != 0 {
		t.Fatalf("janitor: exit %d: %s%s", code, out.String(), errOut.String())
	}
	var hot, history []string
	if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(msisdn ORDER BY msisdn), '{}') FROM network_sessions`).Scan(&hot); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(msisdn ORDER BY msisdn), '{}') FROM network_session_history`).Scan(&history); err != nil {
		t.Fatal(err)
	}
	if strings.Join(hot, ",") != "+33612340001" {
		t.Errorf("hot table: %v, want only the open session", hot)
	}
	if strings.Join(history, ",") != "+33612340002,+33612340004" {
		t.Errorf("history: %v, want the session just closed and the one within retention", history)
	}

	// Less than a day of retention is refused, as serve network does.
	out.Reset()
	errOut.Reset()
	if code := execute(context.Background(), commands(), []string{"janitor", "--network-history-retention", "1h"}, &out, &errOut,
		func(k string) string { return env[k] }); code == 0 {
		t.Errorf("janitor with 1h retention: exit 0")
	}
}
