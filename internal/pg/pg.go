// Package pg opens numverify's Postgres pool and maps Postgres errors to the
// sentinel errors the rest of the code tests for, in one place.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the database numverify uses when DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/numverify?sslmode=disable"

var (
	// ErrNotFound: no row matched.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a unique constraint refused the row.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: an exclusion constraint refused the row (overlapping ranges).
	ErrConflict = errors.New("conflicts with an existing row")
	// ErrUnavailable: Postgres could not be reached or refused the connection.
	ErrUnavailable = errors.New("database unavailable")
)

// Options tune the pool; the zero value is sensible.
type Options struct {
	MaxConns        int32
	MinConns        int32
	ConnectTimeout  time.Duration
	ApplicationName string
}

// Open connects a pool to databaseURL and checks that the server answers.
func Open(ctx context.Context, databaseURL string, opts Options) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if opts.ConnectTimeout > 0 {
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	} else if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 3 * time.Second
	}
	if opts.ApplicationName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = opts.ApplicationName
	}
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnConfig.ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", Redact(databaseURL), err)
	}
	return pool, nil
}

// Redact removes the password from a database URL so it can be logged. A
// multi-host URL keeps every host, in order (the ones after the first are
// pgx's fallbacks, tried when the first refuses or, with
// target_session_attrs=read-write, is a standby).
func Redact(databaseURL string) string {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return "(unparseable database URL)"
	}
	hosts := []string{net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))}
	for _, fb := range cfg.Fallbacks {
		if hp := net.JoinHostPort(fb.Host, strconv.Itoa(int(fb.Port))); hp != hosts[len(hosts)-1] {
			hosts = append(hosts, hp) // one per host, not per TLS attempt
		}
	}
	return fmt.Sprintf("postgres://%s@%s/%s", cfg.User, strings.Join(hosts, ","), cfg.Database)
}

// MapError turns pgx and Postgres errors into the package's sentinels (wrapped,
// so the original stays inspectable); other errors pass through unchanged.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", ErrAlreadyExists, err)
		case "23P01": // exclusion_violation
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case "57P01", "57P02", "57P03", "53300": // admin/crash shutdown, cannot connect now, too many connections
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	if IsConnectionError(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// IsConnectionError reports whether err means Postgres could not be reached
// (as opposed to a query that Postgres refused). Only errors of the
// connection count: a Postgres connection-class or shutdown code, pgconn's
// connect and broken-connection errors, a socket error (*net.OpError,
// *net.DNSError), a closed pool, a deadline. Not any net.Error: a *url.Error
// is one, and url.Parse returns it for whatever a client sent (audience=%00
// was a 503). The server closing a connection mid-query comes back from pgx
// as a bare io.EOF or io.ErrUnexpectedEOF, so those count too: callers test
// the errors of their store and resolver here, not a client's body.
func IsConnectionError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	// First: whatever Postgres answered while connecting means "cannot
	// connect now" (a database closed with ALLOW_CONNECTIONS false answers
	// 55000, which at query time would be a mistake of ours).
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006", "08001", "08004",
			"25006": // read_only_sql_transaction: a connection to a primary that became a standby
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	// Broken connection mid-query (server killed, network gone).
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) || hasLeaf(err, errClosedPool) ||
		errors.Is(err, context.DeadlineExceeded)
}

// errClosedPool is the text of puddle.ErrClosedPool, which pgxpool returns
// once the pool is closed (puddle is not imported for one sentinel).
const errClosedPool = "closed pool"

// hasLeaf reports whether an error in err's chain that wraps nothing has
// exactly the text msg: a sentinel of a package not imported, matched
// without matching a message that merely quotes it.
func hasLeaf(err error, msg string) bool {
	if err == nil {
		return false
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return hasLeaf(e.Unwrap(), msg)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if hasLeaf(inner, msg) {
				return true
			}
		}
		return false
	}
	return err.Error() == msg
}

// Tx runs fn in a transaction, committing when it returns nil.
func Tx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}
