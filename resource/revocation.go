package resource

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/contract"
)

// revocations is the in-memory set of revoked token ids, read lock-free on
// every request; each entry is kept until the token would no longer be
// accepted anyway: its expiry plus the clock skew allowed on exp.
type revocations struct {
	set     sync.Map // jti → expiry (time.Time)
	size    atomic.Int64
	clients sync.Map // client id → clientRevocation
	// skew is Config.ClockSkew: a token is accepted up to skew after its
	// exp, so its revocation must be kept that long too.
	skew time.Duration
}

// clientRevocation revokes every token of a client issued at or before
// before; kept until expires.
type clientRevocation struct{ before, expires time.Time }

func newRevocations(skew time.Duration) *revocations { return &revocations{skew: skew} }

func (r *revocations) has(jti string) bool {
	_, ok := r.set.Load(jti)
	return ok
}

func (r *revocations) add(jti string, expiresAt time.Time) {
	if _, loaded := r.set.Swap(jti, expiresAt); !loaded {
		r.size.Add(1)
	}
}

// revokeClient records a client-level revocation (the later one wins).
func (r *revocations) revokeClient(clientID string, rev clientRevocation) {
	if old, ok := r.clients.Load(clientID); ok {
		o := old.(clientRevocation)
		if o.before.After(rev.before) {
			rev.before = o.before
		}
		if o.expires.After(rev.expires) {
			rev.expires = o.expires
		}
	}
	r.clients.Store(clientID, rev)
}

// clientRevoked reports whether a token of clientID issued at issuedAt is
// revoked with its client; a token without iat is, when its client is.
// An iat has whole seconds, so a token issued in the second of the
// revocation is refused too.
func (r *revocations) clientRevoked(clientID string, issuedAt time.Time) bool {
	v, ok := r.clients.Load(clientID)
	if !ok {
		return false
	}
	return issuedAt.IsZero() || !issuedAt.After(v.(clientRevocation).before)
}

// prune forgets the revocations of tokens that are no longer accepted
// anyway (expired, and past the clock skew).
func (r *revocations) prune(now time.Time) {
	now = now.Add(-r.skew)
	r.clients.Range(func(k, v any) bool {
		if now.After(v.(clientRevocation).expires) {
			r.clients.Delete(k)
		}
		return true
	})
	r.set.Range(func(k, v any) bool {
		if exp, _ := v.(time.Time); now.After(exp) {
			if _, deleted := r.set.LoadAndDelete(k); deleted {
				r.size.Add(-1)
			}
		}
		return true
	})
}

// revocationListener follows the authorization server's revocations: on a
// connection of its own (taken out of the pool) it LISTENs on
// contract.RevocationChannel, then loads every unexpired row of
// revoked_tokens, so that nothing revoked between the two is missed; it
// does both again on every reconnect. A notification's payload is the jti;
// its expiry is read from the table.
type revocationListener struct {
	pool    *pgxpool.Pool
	set     *revocations
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	// fallbackRetention keeps a notified jti whose row cannot be read.
	fallbackRetention time.Duration
	pingEvery         time.Duration

	loadedOnce   chan struct{}
	loadOnce     sync.Once
	up           atomic.Bool
	downSinceNS  atomic.Int64 // when the feed went down (unix ns); meaningful while !up
	firstLoadErr atomic.Pointer[error]
}

func newRevocationListener(pool *pgxpool.Pool, set *revocations, log *slog.Logger, m *metrics, now func() time.Time) *revocationListener {
	l := &revocationListener{pool: pool, set: set, log: log, metrics: m, now: now,
		fallbackRetention: 24 * time.Hour, pingEvery: 5 * time.Second, loadedOnce: make(chan struct{})}
	l.downSinceNS.Store(now().UnixNano())
	return l
}

// waitLoaded returns when the first load is done, or with the error of the
// first failed attempt, or when ctx ends.
func (l *revocationListener) waitLoaded(ctx context.Context) error {
	select {
	case <-l.loadedOnce:
		if p := l.firstLoadErr.Load(); p != nil {
			return *p
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *revocationListener) connected() bool { return l.up.Load() }

// stale reports whether the feed has been down longer than maxStaleness
// (never, when maxStaleness is 0).
func (l *revocationListener) stale(maxStaleness time.Duration) bool {
	if maxStaleness <= 0 || l.up.Load() {
		return false
	}
	return l.now().UnixNano()-l.downSinceNS.Load() > int64(maxStaleness)
}

func (l *revocationListener) run(ctx context.Context) {
	// At most about 3 s between attempts (2 s ± 50%): while the feed is down
	// the server cannot know of new revocations (and /readyz fails), so it
	// comes back soon after the database does; an attempt against a database
	// that is down costs one refused connection.
	retry := retryDelays(100*time.Millisecond, 2*time.Second)
	for ctx.Err() == nil {
		err := l.session(ctx)
		if l.up.Swap(false) {
			l.downSinceNS.Store(l.now().UnixNano())
			l.metrics.revocationFeed(false)
			retry.Reset()
		}
		l.loadOnce.Do(func() { // the first attempt failed: tell New
			l.firstLoadErr.Store(&err)
			close(l.loadedOnce)
		})
		if ctx.Err() != nil {
			return
		}
		delay := retry.NextBackOff()
		l.log.LogAttrs(ctx, slog.LevelWarn, "revocation feed interrupted", errAttr(err), slog.Duration("retry_in", delay))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// session is one connection's life: LISTEN, load, then follow
// notifications until the connection fails or ctx ends.
func (l *revocationListener) session(ctx context.Context) error {
	pooled, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pooled.Hijack() // ours alone, never returned to the pool
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{contract.RevocationChannel}.Sanitize()+
		"; LISTEN "+pgx.Identifier{contract.ClientRevocationChannel}.Sanitize()); err != nil {
		return err
	}
	if err := l.loadAll(ctx, conn); err != nil {
		return err
	}
	l.up.Store(true)
	l.metrics.revocationFeed(true)
	l.loadOnce.Do(func() { close(l.loadedOnce) })
	lastPrune := l.now()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, l.pingEvery)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil && n.Channel == contract.ClientRevocationChannel:
			l.recordClient(ctx, conn, n.Payload)
		case err == nil:
			l.record(ctx, conn, n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet: make sure the connection is still there.
			pingCtx, cancel := context.WithTimeout(ctx, l.pingEvery)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
		if now := l.now(); now.Sub(lastPrune) > time.Minute {
			l.set.prune(now)
			lastPrune = now
		}
		l.metrics.revokedTokens(l.set.size.Load())
	}
}

func (l *revocationListener) loadAll(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > now() - $1::interval`, l.set.skew)
	if err != nil {
		return err
	}
	var jti string
	var exp time.Time
	_, err = pgx.ForEachRow(rows, []any{&jti, &exp}, func() error {
		l.set.add(jti, exp)
		return nil
	})
	if err == nil {
		err = l.loadClients(ctx, conn)
	}
	if err == nil {
		l.set.prune(l.now())
		l.metrics.revokedTokens(l.set.size.Load())
	}
	return err
}

// record adds a notified jti at once, then reads its expiry.
func (l *revocationListener) record(ctx context.Context, conn *pgx.Conn, jti string) {
	if jti == "" {
		return
	}
	l.set.add(jti, l.now().Add(l.fallbackRetention))
	var exp time.Time
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := conn.QueryRow(qctx, `SELECT expires_at FROM revoked_tokens WHERE jti = $1`, jti).Scan(&exp); err == nil {
		l.set.add(jti, exp)
	}
}

// loadClients loads every unexpired client-level revocation.
func (l *revocationListener) loadClients(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT client_id, revoked_before, expires_at FROM revoked_clients WHERE expires_at > now() - $1::interval`, l.set.skew)
	if err != nil {
		return err
	}
	var clientID string
	var rev clientRevocation
	_, err = pgx.ForEachRow(rows, []any{&clientID, &rev.before, &rev.expires}, func() error {
		l.set.revokeClient(clientID, rev)
		return nil
	})
	return err
}

// recordClient revokes a notified client's tokens at once (every one, until
// its row is read: failing closed), then reads the row.
func (l *revocationListener) recordClient(ctx context.Context, conn *pgx.Conn, clientID string) {
	if clientID == "" {
		return
	}
	now := l.now()
	l.set.revokeClient(clientID, clientRevocation{before: now.Add(l.fallbackRetention), expires: now.Add(l.fallbackRetention)})
	var rev clientRevocation
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := conn.QueryRow(qctx, `SELECT revoked_before, expires_at FROM revoked_clients WHERE client_id = $1`, clientID).
		Scan(&rev.before, &rev.expires)
	if err == nil {
		l.set.clients.Store(clientID, rev)
	}
}
