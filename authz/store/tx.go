package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/pg"
)

// Transactions are written for round trips, not for pgx.Tx's one statement
// at a time (a login used to cost about 20 round trips; now it costs 4):
//
//   - BEGIN is not sent at BeginTX but pipelined with the transaction's first
//     statement; a transaction that only writes never sends it: its writes go
//     at Commit as one batch, which Postgres runs as one implicit transaction.
//   - Writes of short-lived records (inserts, deletes, a code redemption whose
//     row this transaction has locked) are buffered and sent together with
//     the next statement or with COMMIT; inserts of distinct rows merged into
//     one multi-row INSERT, each delete or redemption one statement by key.
//   - synchronous_commit is set once per flush, in the same batch.
//   - A nested BeginTX (fosite's own, inside WithTokenTx) costs nothing: its
//     rollback discards the writes it buffered; a SAVEPOINT is sent only when
//     something inside it has to reach the server before it ends.
//
// A statement run through db(ctx) inside a transaction sends the buffered
// writes first, so a transaction always reads its own writes.

// txState is one transaction; it is used by one goroutine (one request).
type txState struct {
	pool    *pgxpool.Pool
	conn    *pgxpool.Conn // acquired with the first statement sent
	begun   bool          // BEGIN sent
	closed  bool
	durable bool   // a durable record was written: commit synchronously
	mode    string // synchronous_commit last set in this transaction
	pending []write
	levels  []*txLevel // open nested transactions, innermost last
	nextSP  int
	locked  map[rowKey]*storedRequest // rows read FOR UPDATE by LoadCodeExchange; nil: absent
}

// txLevel is a nested transaction: the writes buffered since mark are its
// own until a flush sends them after its savepoint.
type txLevel struct {
	mark      int
	savepoint string // set once the SAVEPOINT is sent
}

// txHandle is what the context carries: the transaction, and the nested
// level this context began (nil for the outermost).
type txHandle struct {
	st    *txState
	level *txLevel
}

type txKey struct{}

func txFrom(ctx context.Context) (*txHandle, bool) {
	h, ok := ctx.Value(txKey{}).(*txHandle)
	return h, ok && h != nil
}

// db is the transaction in ctx, or the pool.
func (s *Store) db(ctx context.Context) querier {
	if h, ok := txFrom(ctx); ok {
		return txQuerier{h.st}
	}
	return s.pool
}

// BeginTX starts a transaction and returns a context carrying it; every store
// method called with that context runs inside it. Called with a context that
// already carries one, it starts a nested transaction, so fosite's own BeginTX
// inside a caller's transaction commits or rolls back only its part. Nothing
// is sent to Postgres yet.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if h, ok := txFrom(ctx); ok {
		if h.st.closed {
			return ctx, fmt.Errorf("begin transaction: %w", pgx.ErrTxClosed)
		}
		level := &txLevel{mark: len(h.st.pending)}
		h.st.levels = append(h.st.levels, level)
		return context.WithValue(ctx, txKey{}, &txHandle{st: h.st, level: level}), nil
	}
	st := &txState{pool: s.pool}
	return context.WithValue(ctx, txKey{}, &txHandle{st: st}), nil
}

// ErrNoTransaction is returned by Commit and Rollback when the context
// carries no transaction.
var ErrNoTransaction = errors.New("no transaction in context")

// Commit commits the transaction carried in ctx; for a nested one, it keeps
// its work in the enclosing transaction.
func (s *Store) Commit(ctx context.Context) error {
	h, ok := txFrom(ctx)
	if !ok {
		return ErrNoTransaction
	}
	if h.st.closed {
		return fmt.Errorf("commit: %w", pgx.ErrTxClosed)
	}
	if h.level != nil {
		h.st.closeLevel(h.level)
		return nil
	}
	if err := h.st.commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", pg.MapError(err))
	}
	return nil
}

// Rollback rolls back the transaction carried in ctx (a nested one: only its
// part). Rolling back a finished transaction is not an error.
func (s *Store) Rollback(ctx context.Context) error {
	h, ok := txFrom(ctx)
	if !ok {
		return ErrNoTransaction
	}
	if h.st.closed {
		return nil
	}
	if h.level != nil {
		return h.st.rollbackLevel(ctx, h.level)
	}
	h.st.pending = nil
	h.st.release(ctx)
	return nil
}

func (st *txState) closeLevel(level *txLevel) {
	for i, l := range st.levels {
		if l == level {
			st.levels = st.levels[:i]
			return
		}
	}
}

func (st *txState) rollbackLevel(ctx context.Context, level *txLevel) error {
	if !containsLevel(st.levels, level) {
		return nil // already ended
	}
	st.closeLevel(level)
	st.pending = st.pending[:min(level.mark, len(st.pending))]
	st.locked = nil // may describe rolled-back writes; later reads go to Postgres
	if level.savepoint == "" {
		return nil
	}
	if _, err := st.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT "+level.savepoint); err != nil {
		return fmt.Errorf("rollback: %w", pg.MapError(err))
	}
	return nil
}

func containsLevel(levels []*txLevel, level *txLevel) bool {
	for _, l := range levels {
		if l == level {
			return true
		}
	}
	return false
}

// commit sends the buffered writes and COMMIT in one round trip, or, when
// nothing was sent before, the writes alone as one implicit transaction.
func (st *txState) commit(ctx context.Context) error {
	defer st.release(ctx)
	st.levels = nil // the outermost commit ends any nested transaction left open
	if !st.begun {
		if len(st.pending) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		st.queueWrites(b, false)
		return sendAll(ctx, st.pool, b)
	}
	b := &pgx.Batch{}
	st.queueWrites(b, false)
	b.Queue("COMMIT")
	return sendAll(ctx, st.conn, b)
}

// release ends the transaction: a transaction still open on the server (an
// error before or during COMMIT) is rolled back, and the connection returned.
func (st *txState) release(ctx context.Context) {
	st.closed = true
	if st.conn == nil {
		return
	}
	if status := st.conn.Conn().PgConn().TxStatus(); status == 'T' || status == 'E' {
		_, _ = st.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
	st.conn.Release()
	st.conn = nil
}

// queuePrefix queues what must reach the server before a statement of this
// transaction: BEGIN, then the buffered writes (after the savepoints of the
// nested transactions they belong to). It returns how many it queued.
func (st *txState) queuePrefix(b *pgx.Batch, writes bool) int {
	n := b.Len()
	if !st.begun {
		b.Queue("BEGIN")
		st.begun = true
	}
	st.queueWrites(b, writes)
	for _, l := range st.levels { // savepoints of levels opened after the writes
		if l.savepoint == "" {
			st.queueSavepoint(b, l)
		}
	}
	return b.Len() - n
}

// queueWrites queues the synchronous_commit setting (when something is
// written: write says the statement about to follow writes) and the buffered
// writes, with the savepoints of the nested transactions they fall in.
func (st *txState) queueWrites(b *pgx.Batch, write bool) {
	mode := "off"
	if st.durable {
		mode = "on"
	}
	if (write || len(st.pending) > 0 || st.durable) && mode != st.mode {
		b.Queue(sqlSetSynchronousCommit, mode)
		st.mode = mode
	}
	start := 0
	for _, l := range st.levels {
		if l.savepoint != "" {
			continue
		}
		queueMerged(b, st.pending[start:min(l.mark, len(st.pending))])
		start = min(l.mark, len(st.pending))
		st.queueSavepoint(b, l)
	}
	queueMerged(b, st.pending[start:])
	st.pending = nil
	for _, l := range st.levels {
		l.mark = 0
	}
}

func (st *txState) queueSavepoint(b *pgx.Batch, l *txLevel) {
	st.nextSP++
	l.savepoint = fmt.Sprintf("nv_sp_%d", st.nextSP)
	b.Queue("SAVEPOINT " + l.savepoint)
}

// WithTokenTx runs one token-endpoint exchange (fosite's NewAccessRequest
// followed by NewAccessResponse) in a single transaction, and the provider
// should call it for every token request:
//
//	err := store.WithTokenTx(ctx, func(ctx context.Context) error {
//		_ = store.LoadCodeExchange(ctx, codeSignature, code) // optional: one read
//		ar, err := provider.NewAccessRequest(ctx, r, session)
//		if err != nil { return err }
//		resp, err = provider.NewAccessResponse(ctx, ar)
//		return err
//	})
//
// Inside it the first read of an authorization code locks the code's row
// (SELECT … FOR UPDATE) until the exchange commits, so of concurrent
// redemptions of one code exactly one issues tokens and every other one finds
// the code already used: fosite answers those invalid_grant and revokes what
// the code issued (RFC 6749 §4.1.2). Without it a loser would still get no
// token (the redemption itself is one atomic UPDATE) but fosite would report
// server_error.
//
// The transaction is committed even when fn returns an error: a replayed
// code's revocations must persist, and fosite rolls back its own part (a
// nested transaction) when issuing fails. fn's error is returned unless the
// commit fails, in which case the commit error is.
func (s *Store) WithTokenTx(ctx context.Context, fn func(ctx context.Context) error) error {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	fnErr := fn(txCtx)
	if err := s.Commit(txCtx); err != nil {
		_ = s.Rollback(txCtx)
		if fnErr != nil {
			return errors.Join(fmt.Errorf("token exchange: %w", err), fnErr)
		}
		return fmt.Errorf("token exchange: %w", err)
	}
	return fnErr
}

// inDurableTx runs fn in a transaction (nested in the one in ctx, if any)
// whose commit is synchronous even if short-lived records share it.
func (s *Store) inDurableTx(ctx context.Context, fn func(ctx context.Context, db querier) error) error {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	h, _ := txFrom(txCtx)
	h.st.durable = true
	if err := fn(txCtx, s.db(txCtx)); err != nil {
		_ = s.Rollback(txCtx)
		return err
	}
	return s.Commit(txCtx)
}
