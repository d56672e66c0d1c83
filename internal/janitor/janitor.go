// Package janitor deletes expired rows (codes, tokens, used jtis, closed
// network sessions past retention) in bounded batches, each its own short
// transaction, so it never holds long locks or bloats one transaction.
package janitor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Task deletes the rows of Table matching Where, an SQL condition that may
// use $1, the cutoff instant (now minus the task's retention).
type Task struct {
	Table     string
	Where     string
	Retention time.Duration
}

// Result counts what one task deleted.
type Result struct {
	Table   string
	Deleted int64
	Batches int
}

// Run executes every task until nothing is left to delete, batchSize rows per
// statement, pausing between batches to leave room for the real traffic.
func Run(ctx context.Context, pool *pgxpool.Pool, tasks []Task, batchSize int, pause time.Duration, logger *slog.Logger) ([]Result, error) {
	var results []Result
	for _, task := range tasks {
		res, err := runTask(ctx, pool, task, batchSize, pause)
		results = append(results, res)
		if err != nil {
			return results, fmt.Errorf("janitor %s: %w", task.Table, err)
		}
		if res.Deleted > 0 {
			logger.Info("janitor deleted expired rows", "table", task.Table, "rows", res.Deleted, "batches", res.Batches)
		}
	}
	return results, nil
}

func runTask(ctx context.Context, pool *pgxpool.Pool, task Task, batchSize int, pause time.Duration) (Result, error) {
	res := Result{Table: task.Table}
	table := pgx.Identifier{task.Table}.Sanitize()
	// ctid batches: a bounded DELETE without needing a primary key, each
	// batch its own statement (and implicit transaction).
	query := fmt.Sprintf(`DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %s LIMIT %d))`,
		table, table, task.Where, batchSize)
	cutoff := time.Now().Add(-task.Retention)
	for {
		tag, err := pool.Exec(ctx, query, cutoff)
		if err != nil {
			return res, err
		}
		res.Batches++
		res.Deleted += tag.RowsAffected()
		if tag.RowsAffected() < int64(batchSize) {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(pause):
		}
	}
}
