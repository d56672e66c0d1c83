package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { Main(m) }

// TestTracer: a statement is one round trip, a batch of two is two
// statements in one; recorded statements are taken once.
func TestTracer(t *testing.T) {
	db := New(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	tracer := &Tracer{Record: true}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "SELECT $1::int", 1); err != nil {
		t.Fatal(err)
	}
	var batch pgx.Batch
	batch.Queue("SELECT 2")
	batch.Queue("SELECT 3")
	if err := pool.SendBatch(ctx, &batch).Close(); err != nil {
		t.Fatal(err)
	}
	if s, r := tracer.Statements(), tracer.RoundTrips(); s != 3 || r != 2 {
		t.Fatalf("%d statements in %d round trips, want 3 in 2", s, r)
	}
	got := tracer.Take()
	if len(got) != 3 || got[0].SQL != "SELECT $1::int" || len(got[0].Args) != 1 || got[2].SQL != "SELECT 3" {
		t.Fatalf("recorded %+v", got)
	}
	if again := tracer.Take(); len(again) != 0 {
		t.Fatalf("taken twice: %+v", again)
	}
}
