package janitor

import (
	"context"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
)

// Operator tokens and CIBA requests go at their expiry, redeemed or not.
func TestOperatorTokensAndCIBARequestsExpire(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	now := time.Now().Add(time.Hour).UTC()
	db.Exec(t, `INSERT INTO operator_tokens (token_hash, msisdn, client_id, created_at, expires_at, redeemed_at) VALUES
		('\x01', 'live', 'sp', $1, $2, NULL), ('\x02', 'old', 'sp', $1, $3, NULL), ('\x03', 'old-redeemed', 'sp', $1, $3, $1)`,
		now.Add(-time.Hour), now.Add(time.Second), now.Add(-time.Second))
	db.Exec(t, `INSERT INTO ciba_requests (auth_req_id_hash, client_id, msisdn, subject, scopes, amr, created_at, ready_at, expires_at, poll_interval) VALUES
		('\x01', 'sp', 'live', 's', '{}', 'sim', $1, $1, $2, 2), ('\x02', 'sp', 'old', 's', '{}', 'sim', $1, $1, $3, 2)`,
		now.Add(-time.Hour), now.Add(time.Second), now.Add(-time.Second))
	if _, err := NewPurger(db.Pool, Tasks(Lifetimes{}), WithClock(func() time.Time { return now })).Once(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"operator_tokens", "ciba_requests"} {
		var left []string
		rows, err := db.Pool.Query(ctx, `SELECT msisdn FROM `+table+` ORDER BY msisdn`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				t.Fatal(err)
			}
			left = append(left, m)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0] != "live" {
			t.Errorf("%s kept %v, want [live]", table, left)
		}
	}
}
