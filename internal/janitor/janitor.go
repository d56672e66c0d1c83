// Package janitor deletes expired rows (codes, tokens, used jtis, revocations,
// retired keys, operator tokens, CIBA requests) in bounded batches,
// each its own short statement, so it never holds long locks or bloats one
// transaction. Tasks (tasks.go) is the one place where each table's expiry
// is known; the servers run a Purger on a timer (`numverify serve`), and
// `numverify janitor` runs the same one by hand.
package janitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Task deletes the rows of Table whose Expiry (a column or expression of the
// row) is before the cutoff, now minus Retention, and that match Where
// (optional, an SQL condition on the row).
type Task struct {
	Name      string // what expires, for logs: "authorization codes"
	Table     string
	Expiry    string
	Where     string
	Retention time.Duration
}

// Result counts what one task deleted.
type Result struct {
	Name    string
	Table   string
	Deleted int64
	Batches int
}

// lockKey is the advisory lock a Purger holds while it runs, so that of the
// servers (and janitor commands) sharing a database one purges at a time.
const lockKey int64 = 0x6e76_7075_7267_6531 // "nvpurge1"

// Purger runs Tasks.
type Purger struct {
	pool      *pgxpool.Pool
	tasks     []Task
	batchSize int
	pause     time.Duration
	now       func() time.Time
	logger    *slog.Logger
	// vacuumAfter: VACUUM (ANALYZE) each table a round deleted rows from.
	vacuumAfter bool
}

// Option changes how a Purger works.
type Option func(*Purger)

// WithBatches sets the rows deleted per statement and the pause between two
// statements (room for the real traffic). The defaults are 1000 and 10 ms.
func WithBatches(size int, pause time.Duration) Option {
	return func(p *Purger) { p.batchSize, p.pause = size, pause }
}

// WithClock sets what "now" is (tests move it instead of waiting).
func WithClock(now func() time.Time) Option {
	return func(p *Purger) { p.now = now }
}

// withoutVacuum leaves the tables to autovacuum (by default a round that
// deleted rows from a table vacuums and analyzes it).
func withoutVacuum() Option {
	return func(p *Purger) { p.vacuumAfter = false }
}

// WithLogger sets where a Purger reports what it deleted and its failures.
func WithLogger(logger *slog.Logger) Option {
	return func(p *Purger) { p.logger = logger }
}

// NewPurger returns a Purger of tasks over pool.
func NewPurger(pool *pgxpool.Pool, tasks []Task, opts ...Option) *Purger {
	p := &Purger{pool: pool, tasks: tasks, batchSize: 1000, pause: 10 * time.Millisecond,
		now: time.Now, logger: slog.New(slog.DiscardHandler), vacuumAfter: true}
	for _, o := range opts {
		o(p)
	}
	p.batchSize = max(p.batchSize, 1)
	return p
}

// ErrBusy is returned by Once when another Purger on the same database is
// running.
var ErrBusy = errors.New("another purger is running on this database")

// Once runs every task until nothing expired is left, unless another Purger
// holds the lock (ErrBusy). It stops at the first failure, with what was
// deleted so far.
func (p *Purger) Once(ctx context.Context) ([]Result, error) {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	// A session lock, held across the batches (each its own transaction) on
	// this connection; it goes with the session if the process dies.
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		conn.Release()
		return nil, fmt.Errorf("purge: lock: %w", err)
	}
	if !locked {
		conn.Release()
		return nil, ErrBusy
	}
	defer func() {
		_, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockKey)
		if err != nil { // never return a connection that may still hold the lock
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}()
	now := p.now()
	var results []Result
	var purged []string // tables with deleted rows, each once, in task order
	for _, task := range p.tasks {
		res, err := p.runTask(ctx, conn.Conn(), task, now.Add(-task.Retention))
		results = append(results, res)
		if err != nil {
			return results, fmt.Errorf("purge %s: %w", task.Name, err)
		}
		if res.Deleted > 0 {
			p.logger.Info("purged expired rows", "what", task.Name, "table", task.Table, "rows", res.Deleted, "batches", res.Batches)
			if !slices.Contains(purged, task.Table) {
				purged = append(purged, task.Table)
			}
		}
	}
	return results, p.vacuum(ctx, conn.Conn(), purged)
}

// vacuum makes the space of the deleted rows reusable and refreshes the
// planner's statistics of each table it purged. numverify must stay fast
// where autovacuum is off or lags (as on this project's machines): without
// it, deleted rows stay in the heap and its indexes for ever, and plans
// made while a table was nearly empty are kept. Plain VACUUM takes no lock
// that blocks reads or writes; ANALYZE invalidates cached plans of the
// table, so every connection plans its statements again on fresh figures.
func (p *Purger) vacuum(ctx context.Context, conn *pgx.Conn, tables []string) error {
	if !p.vacuumAfter {
		return nil
	}
	for _, table := range tables {
		if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{table}.Sanitize()); err != nil {
			return fmt.Errorf("vacuum %s: %w", table, err)
		}
	}
	return nil
}

// Run calls Once every interval until ctx ends, logging failures; a round
// another replica is running is skipped.
func (p *Purger) Run(ctx context.Context, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if _, err := p.Once(ctx); err != nil && !errors.Is(err, ErrBusy) && ctx.Err() == nil {
			p.logger.Warn("purge failed", "err", err)
		}
	}
}

func (p *Purger) runTask(ctx context.Context, conn *pgx.Conn, task Task, cutoff time.Time) (Result, error) {
	res := Result{Name: task.Name, Table: task.Table}
	query := deleteStatement(task, p.batchSize)
	for {
		// Planned for this cutoff every time (no generic plan cached while
		// the table was small): it runs a few times a minute.
		tag, err := conn.Exec(ctx, query, pgx.QueryExecModeExec, cutoff)
		if err != nil {
			return res, err
		}
		res.Batches++
		res.Deleted += tag.RowsAffected()
		if tag.RowsAffected() < int64(p.batchSize) {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(p.pause):
		}
	}
}

// deleteStatement is one batch of a task: $1 the cutoff. ctid batches: a
// bounded DELETE without needing a primary key, each batch its own statement
// (and implicit transaction). Ordered by expiry, so an index of the expiry
// under the task's own condition (oauth2_requests: one partial index per
// kind, migration 0014) gives the batch its rows and no other.
func deleteStatement(task Task, batch int) string {
	table := pgx.Identifier{task.Table}.Sanitize()
	where := task.Expiry + " < $1"
	if task.Where != "" {
		where += " AND (" + task.Where + ")"
	}
	return fmt.Sprintf(`DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %s ORDER BY %s LIMIT %d))`,
		table, table, where, task.Expiry, batch)
}
