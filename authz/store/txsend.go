package store

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Sending a transaction's statements (see tx.go): each goes in one batch
// with what must precede it (BEGIN, the buffered writes, savepoints).

// batcher is what sends a batch: the pool, a connection.
type batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// sendAll runs a batch whose results are not needed.
func sendAll(ctx context.Context, db batcher, b *pgx.Batch) error {
	return db.SendBatch(ctx, b).Close()
}

// acquire returns the transaction's connection.
func (st *txState) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if st.closed {
		return nil, pgx.ErrTxClosed
	}
	if st.conn == nil {
		conn, err := st.pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		st.conn = conn
	}
	return st.conn, nil
}

// send sends b on the transaction's connection, prefixed with what must go
// first, and returns the results positioned after the prefix.
func (st *txState) send(ctx context.Context, b *pgx.Batch, writes bool) (pgx.BatchResults, error) {
	conn, err := st.acquire(ctx)
	if err != nil {
		return nil, err
	}
	full := &pgx.Batch{}
	n := st.queuePrefix(full, writes)
	full.QueuedQueries = append(full.QueuedQueries, b.QueuedQueries...)
	br := conn.SendBatch(ctx, full)
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	return br, nil
}

// txQuerier runs statements inside a transaction.
type txQuerier struct{ st *txState }

func (q txQuerier) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return q.st.exec(ctx, false, sql, args...)
}

func (q txQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br, err := q.st.send(ctx, b, false)
	if err != nil {
		return errRow{err}
	}
	return batchRow{br}
}

func (q txQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if _, err := q.st.acquire(ctx); err != nil {
		return nil, err
	}
	if b := (&pgx.Batch{}); q.st.queuePrefix(b, false) > 0 {
		if err := sendAll(ctx, q.st.conn, b); err != nil {
			return nil, err
		}
	}
	return q.st.conn.Query(ctx, sql, args...)
}

// exec runs one statement; write says it writes a short-lived record, so
// synchronous_commit is set with it.
func (st *txState) exec(ctx context.Context, write bool, sql string, args ...any) (pgconn.CommandTag, error) {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br, err := st.send(ctx, b, write)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	return tag, err
}

// batchRow is the one row of the last statement of a batch.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if closeErr := r.br.Close(); err == nil {
		err = closeErr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
