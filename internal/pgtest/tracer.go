package pgtest

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// Tracer is a pgx tracer (set it as a pool's ConnConfig.Tracer) counting the
// statements the pool sends, batched or not, and its round trips (a batch
// is one); with Record set it also keeps each statement and its arguments.
type Tracer struct {
	Record bool

	statements, roundTrips atomic.Int64
	mu                     sync.Mutex
	recorded               []Statement
}

// Statement is one statement sent, as Tracer recorded it.
type Statement struct {
	SQL  string
	Args []any
}

var (
	_ pgx.QueryTracer = (*Tracer)(nil)
	_ pgx.BatchTracer = (*Tracer)(nil)
)

// Statements is how many statements were sent so far.
func (t *Tracer) Statements() int64 { return t.statements.Load() }

// RoundTrips is how many round trips they took so far.
func (t *Tracer) RoundTrips() int64 { return t.roundTrips.Load() }

// Take returns the statements recorded since the last Take and forgets them.
func (t *Tracer) Take() []Statement {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.recorded
	t.recorded = nil
	return out
}

func (t *Tracer) add(sql string, args []any) {
	t.statements.Add(1)
	if t.Record {
		t.mu.Lock()
		t.recorded = append(t.recorded, Statement{SQL: sql, Args: args})
		t.mu.Unlock()
	}
}

func (t *Tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.roundTrips.Add(1)
	t.add(d.SQL, d.Args)
	return ctx
}

func (*Tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (t *Tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	t.roundTrips.Add(1)
	return ctx
}

func (t *Tracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	t.add(d.SQL, d.Args)
}

func (*Tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
