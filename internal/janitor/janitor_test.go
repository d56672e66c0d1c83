package janitor

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/numverify/numverify/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRunDeletesOnlyExpiredInBatches(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	db.Exec(t, `INSERT INTO revoked_tokens (jti, expires_at)
		SELECT 'old-' || g, now() - interval '1 hour' FROM generate_series(1, 250) g`)
	db.Exec(t, `INSERT INTO revoked_tokens (jti, expires_at)
		SELECT 'live-' || g, now() + interval '1 hour' FROM generate_series(1, 10) g`)
	db.Exec(t, `INSERT INTO network_sessions (msisdn, ip, period) VALUES
		('+33612345678', '127.10.0.1', tstzrange(now() - interval '40 days', now() - interval '31 days')),
		('+33612345679', '127.10.0.2', tstzrange(now() - interval '2 days', now() - interval '1 day')),
		('+33612345670', '127.10.0.3', tstzrange(now() - interval '40 days', NULL))`)

	tasks := []Task{
		{Table: "revoked_tokens", Where: "expires_at < $1"},
		{Table: "network_sessions", Where: "upper(period) < $1", Retention: 30 * 24 * time.Hour},
	}
	results, err := Run(ctx, db.Pool, tasks, 100, time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Deleted != 250 || results[0].Batches != 3 {
		t.Errorf("revoked_tokens: %+v, want 250 rows in 3 batches", results[0])
	}
	if results[1].Deleted != 1 {
		t.Errorf("network_sessions: %+v, want 1 (closed 31 days ago; recent and open ones kept)", results[1])
	}
	var left int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM revoked_tokens`).Scan(&left)
	if left != 10 {
		t.Errorf("%d revoked tokens left, want the 10 live ones", left)
	}
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM network_sessions`).Scan(&left)
	if left != 2 {
		t.Errorf("%d sessions left, want 2", left)
	}
}
