package resource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/numverify/numverify/internal/pg"
)

// Single-use access tokens (CAMARA Number Verification 2.1.1: "the access
// token MUST be restricted to a single API call"). The first use of a jti is
// recorded in used_access_tokens, durably, before the call is answered; a
// later use finds the row and is refused. The row carries the token's exp,
// and the purge inside serve (internal/janitor) deletes it once the token
// could no longer be accepted anyway (exp plus the clock skew).
//
// One durable commit per call would cap the calls at the fsyncs the disk
// allows (about 1,300/s here). The recorder commits concurrent uses together
// (group commit): callers queue their jti and wait; one collector takes
// everything queued (up to maxUseBatch), writes it with one INSERT … SELECT
// FROM unnest(…) ON CONFLICT DO NOTHING RETURNING jti in one transaction,
// and answers each caller once that transaction has committed: the jtis the
// INSERT returned are first uses, the others reuses. While one batch
// commits the next one queues, so the batch grows with the load and the
// commits per second stay what the disk allows.
//
// Durability: the transaction sets synchronous_commit on for itself, whatever
// the connection's or database's default, so a crash cannot forget a use
// that a caller was answered for. A use that could not be recorded (Postgres
// unreachable, the queue full past the caller's deadline) is never accepted:
// the caller answers 503. Two uses of one jti get exactly one first use, in
// one batch (de-duplicated here) or in two (the unique key, across replicas
// too); each batch inserts in jti order, so concurrent batches take their
// row locks in one order and cannot deadlock.

const (
	// maxUseBatch bounds the jtis of one commit.
	maxUseBatch = 1024
	// useQueueLength bounds the uses waiting for a commit; a caller that
	// finds it full waits for room until its deadline.
	useQueueLength = 8192
	// useRecordTimeout bounds a caller's wait and a batch's statement.
	useRecordTimeout = 2 * time.Second
	// maxJTIBytes bounds a jti recorded (fosite's are UUIDs).
	maxJTIBytes = 512
)

// sqlRecordUses inserts a batch of uses; it returns the jtis inserted, that
// is, used for the first time.
const sqlRecordUses = `INSERT INTO used_access_tokens (jti, expires_at)
SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (jti) DO NOTHING
RETURNING jti`

// sqlDurableCommit makes this transaction's commit wait for its WAL flush.
const sqlDurableCommit = `SELECT set_config('synchronous_commit', 'on', true)`

// errRecorderStopped: the server is closing.
var errRecorderStopped = errors.New("single-use recorder stopped")

// useRecorder records first uses of access tokens, concurrent ones in one
// commit.
type useRecorder struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	queue   chan *pendingUse
	stopped chan struct{}
	timeout time.Duration // of a batch's statements: useRecordTimeout

	batchSize prometheus.Histogram
	reuses    prometheus.Counter
}

// pendingUse is one caller's use, waiting for its batch's commit.
type pendingUse struct {
	jti       string
	expiresAt time.Time
	done      chan useOutcome // buffered: the collector never blocks on it
}

type useOutcome struct {
	first bool
	err   error
}

func newUseRecorder(pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer) *useRecorder {
	r := &useRecorder{pool: pool, log: log, timeout: useRecordTimeout,
		queue:   make(chan *pendingUse, useQueueLength),
		stopped: make(chan struct{}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "numverify_resource_token_use_batch_size",
			Help:    "Single-use token uses recorded per commit (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024
		}),
		reuses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "numverify_resource_token_reuse_total",
			Help: "Calls refused because their single-use access token had already answered a call.",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.batchSize, r.reuses)
	}
	return r
}

// recordable reports whether a jti and expiry can be recorded at all: a jti
// Postgres's text takes (UTF-8, no NUL) of a sane length, an expiry inside
// timestamptz's range. Tokens are signed by the authorization server, so this
// never refuses one of its tokens; it keeps a batch from failing for one bad
// value.
func recordable(jti string, expiresAt time.Time) bool {
	return jti != "" && len(jti) <= maxJTIBytes && utf8.ValidString(jti) && !strings.ContainsRune(jti, 0) &&
		!expiresAt.IsZero() && expiresAt.Year() < 10000
}

// record records a use of jti and reports whether it was the first. An
// error means the use could not be recorded; the call must not be answered.
func (r *useRecorder) record(ctx context.Context, jti string, expiresAt time.Time) (bool, error) {
	u := &pendingUse{jti: jti, expiresAt: expiresAt, done: make(chan useOutcome, 1)}
	select {
	case r.queue <- u:
	case <-ctx.Done():
		return false, fmt.Errorf("queue a token use: %w", ctx.Err())
	case <-r.stopped:
		return false, errRecorderStopped
	}
	select {
	case o := <-u.done:
		return o.first, o.err
	case <-ctx.Done():
		return false, fmt.Errorf("wait for a token use's commit: %w", ctx.Err())
	case <-r.stopped:
		select {
		case o := <-u.done:
			return o.first, o.err
		default:
			return false, errRecorderStopped
		}
	}
}

// run is the collector: one batch at a time until ctx ends.
func (r *useRecorder) run(ctx context.Context) {
	defer close(r.stopped)
	batch := make([]*pendingUse, 0, maxUseBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-r.queue:
			batch = append(batch[:0], u)
		}
	take:
		for len(batch) < maxUseBatch {
			select {
			case u := <-r.queue:
				batch = append(batch, u)
			default:
				break take
			}
		}
		r.commit(ctx, batch)
		clear(batch) // let the answered uses go
	}
}

// commit records one batch and answers its callers.
func (r *useRecorder) commit(ctx context.Context, batch []*pendingUse) {
	slices.SortFunc(batch, func(a, b *pendingUse) int { return strings.Compare(a.jti, b.jti) })
	jtis := make([]string, 0, len(batch))
	expiries := make([]time.Time, 0, len(batch))
	for i, u := range batch {
		if i > 0 && u.jti == batch[i-1].jti {
			continue // the same token twice in one batch: one row, one first use
		}
		jtis = append(jtis, u.jti)
		expiries = append(expiries, u.expiresAt)
	}
	r.batchSize.Observe(float64(len(batch)))
	inserted, err := r.insert(ctx, jtis, expiries)
	for i, u := range batch {
		o := useOutcome{err: err}
		if err == nil {
			_, fresh := inserted[u.jti]
			o.first = fresh && (i == 0 || batch[i-1].jti != u.jti)
			if !o.first {
				r.reuses.Inc()
			}
		}
		u.done <- o
	}
}

// insert runs the batch's transaction: durable commit on, the INSERT, the
// commit (pgx sends a batch as one pipeline ending in one Sync: one
// implicit transaction, one round trip). It returns the jtis inserted once
// the commit is done.
func (r *useRecorder) insert(ctx context.Context, jtis []string, expiries []time.Time) (map[string]struct{}, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	results := r.pool.SendBatch(ctx, useBatch(jtis, expiries))
	inserted := make(map[string]struct{}, len(jtis))
	if _, err := results.Exec(); err != nil {
		results.Close()
		return nil, fmt.Errorf("record token uses: %w", err)
	}
	rows, err := results.Query()
	if err == nil {
		var jti string
		_, err = pgx.ForEachRow(rows, []any{&jti}, func() error {
			inserted[jti] = struct{}{}
			return nil
		})
	}
	// Close reads up to the Sync's answer: the commit, flushed.
	if closeErr := results.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("record token uses: %w", err)
	}
	return inserted, nil
}

// useBatch is the batch's statements: durable commit, then the INSERT.
func useBatch(jtis []string, expiries []time.Time) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(sqlDurableCommit)
	b.Queue(sqlRecordUses, jtis, expiries)
	return b
}

// useUnavailable tells whether a failed record is Postgres being out of reach
// or busy (503) rather than a bug of ours (500): anything but an error
// Postgres answered for the statement itself.
func useUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pg.IsConnectionError(err) {
		return true
	}
	if len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "40", "53", "55", "57", "58": // rollback (deadlock), resources, lock, shutdown or cancel, system
		return true
	}
	return false
}
