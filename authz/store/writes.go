package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Short-lived login records are committed with synchronous_commit off (a crash
// may lose the last milliseconds of them, which costs a user one retry);
// revocations and everything else durably. The setting is local to the
// transaction, sent in the same batch as the writes, and decided at commit:
// once a transaction has recorded a revocation (txState.durable) it stays on.
const sqlSetSynchronousCommit = `SELECT set_config('synchronous_commit', $1, true)`

// writeOp is what a buffered write does to oauth2_requests.
type writeOp uint8

const (
	writeInsert writeOp = iota
	writeDelete
	writeRedeem // turn an active code inactive
)

// write is one buffered change of a short-lived record.
type write struct {
	op              writeOp
	kind            kind
	signature       []byte // hashed
	row             *requestRow
	accessSignature []byte
}

type rowKey struct {
	kind      kind
	signature string // hashed, as a string
}

func (w write) key() rowKey { return rowKey{w.kind, string(w.signature)} }

// write records w: inside a transaction it is buffered (sent with the next
// statement or the commit); outside, it is sent now, with asynchronous
// commit, as one implicit transaction.
func (s *Store) write(ctx context.Context, w write) error {
	if h, ok := txFrom(ctx); ok {
		if h.st.closed {
			return pgx.ErrTxClosed
		}
		h.st.pending = append(h.st.pending, w)
		h.st.noteLocked(w)
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(sqlSetSynchronousCommit, "off")
	queueMerged(b, []write{w})
	return sendAll(ctx, s.pool, b)
}

// noteLocked keeps the rows LoadCodeExchange read in step with a buffered
// write.
func (st *txState) noteLocked(w write) {
	if st.locked == nil {
		return
	}
	switch w.op {
	case writeDelete:
		st.locked[w.key()] = nil
	case writeRedeem:
		if row := st.locked[w.key()]; row != nil {
			row.active = false
		}
	case writeInsert:
		delete(st.locked, w.key()) // read it back from Postgres
	}
}

// execShortLived runs one write statement now (not buffered: its result is
// needed) with asynchronous commit, in one round trip.
func (s *Store) execShortLived(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if h, ok := txFrom(ctx); ok {
		return h.st.exec(ctx, true, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sqlSetSynchronousCommit, "off")
	b.Queue(sql, args...)
	br := s.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	return tag, err
}

// queueMerged queues ws in as few statements as possible: when they touch
// distinct rows their order does not matter, so the deletes go first, then
// the redemptions, then every insert in one multi-row INSERT; otherwise
// each is queued in order.
func queueMerged(b *pgx.Batch, ws []write) {
	if len(ws) == 0 {
		return
	}
	seen := make(map[rowKey]bool, len(ws))
	for _, w := range ws {
		if seen[w.key()] {
			for _, w := range ws {
				queueWrites(b, w.op, []write{w})
			}
			return
		}
		seen[w.key()] = true
	}
	for _, op := range []writeOp{writeDelete, writeRedeem, writeInsert} {
		var same []write
		for _, w := range ws {
			if w.op == op {
				same = append(same, w)
			}
		}
		if len(same) > 0 {
			queueWrites(b, op, same)
		}
	}
}

// queueWrites queues the statements doing op to every record of ws: one
// multi-row INSERT, or one DELETE or UPDATE per record. Every statement that
// finds rows names one whole primary key with plain equalities (no = ANY, no
// OR): that is the only shape whose cached generic plan is an index lookup
// whatever the planner's statistics say (see plans_test.go); a generic plan
// for `signature = ANY($1)` assumes ten elements and, cached while the table
// was small, scanned every code by kind alone.
func queueWrites(b *pgx.Batch, op writeOp, ws []write) {
	switch op {
	case writeDelete:
		for _, w := range ws {
			b.Queue(sqlDeleteRequest, string(w.kind), w.signature)
		}
	case writeRedeem:
		for _, w := range ws {
			b.Queue(sqlRedeemCode, w.signature)
		}
	case writeInsert:
		args := make([]any, 0, len(ws)*insertColumns)
		for _, w := range ws {
			r := w.row
			args = append(args, string(w.kind), w.signature, r.requestID, r.requestedAt, r.clientID,
				r.subject, r.scopes, r.grantedScopes, r.audiences, r.grantedAudiences, string(r.form),
				string(r.session), r.expiresAt, r.jti, w.accessSignature)
		}
		b.Queue(insertSQL(len(ws)), args...)
	}
}

const (
	sqlDeleteRequest = `DELETE FROM oauth2_requests WHERE kind = $1 AND signature = $2`
	// sqlRedeemCode turns an active code inactive: it affects one row only
	// for the first of concurrent redemptions.
	sqlRedeemCode = `UPDATE oauth2_requests SET active = false WHERE kind = 'code' AND signature = $1 AND active`
)

const insertColumns = 15

// insertSQLs are the INSERT statements of 1 to 4 rows, made once (pgx
// prepares each once per connection).
var insertSQLs = func() []string {
	out := make([]string, 5)
	for n := 1; n < len(out); n++ {
		out[n] = buildInsertSQL(n)
	}
	return out
}()

func insertSQL(rows int) string {
	if rows < len(insertSQLs) {
		return insertSQLs[rows]
	}
	return buildInsertSQL(rows)
}

func buildInsertSQL(rows int) string {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO oauth2_requests (kind, signature, request_id, requested_at, client_id, subject,
		scopes, granted_scopes, audiences, granted_audiences, form, session, expires_at, jti,
		access_signature) VALUES `)
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for c := range insertColumns {
			if c > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "$%d", r*insertColumns+c+1)
		}
		sb.WriteString(")")
	}
	return sb.String()
}
