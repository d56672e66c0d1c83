package network

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/internal/phone"
)

// Store keeps network sessions in Postgres. The exclusion constraint of
// network_sessions arbitrates every race: two attaches of one address (or
// overlapping port blocks) can never both commit.
type Store struct {
	db     *pgxpool.Pool
	pools  Pools
	tokens operatorTokenSettings // operatortoken.go
}

var _ Resolver = (*Store)(nil)

// NewStore returns a store allocating from pools (validated here).
func NewStore(db *pgxpool.Pool, pools Pools) (*Store, error) {
	if err := pools.Validate(); err != nil {
		return nil, fmt.Errorf("network pools: %w", err)
	}
	return &Store{db: db, pools: pools}, nil
}

// sessionColumns are read by scanSession, in this order.
const sessionColumns = `id, msisdn, ip, lower(ports), upper(ports) - 1, lower(period), upper(period), apn, rat, imsi`

func scanSession(row pgx.Row) (Session, error) {
	var s Session
	var low, high int32
	var imsi *string
	if err := row.Scan(&s.ID, &s.MSISDN, &s.IP, &low, &high, &s.Start, &s.End, &s.APN, &s.RAT, &imsi); err != nil {
		return Session{}, err
	}
	s.Ports = PortRange{Low: uint16(low), High: uint16(high)}
	if imsi != nil {
		s.IMSI = *imsi
	}
	return s, nil
}

// insertSQL takes the address only if nobody holds it now: an overlapping
// session makes ON CONFLICT DO NOTHING return no row (after waiting for a
// concurrent attach of the same address to commit or roll back).
const insertSQL = `
INSERT INTO network_sessions (msisdn, ip, ports, period, apn, rat, imsi)
VALUES ($1, $2, int4range($3, $4, '[]'), tstzrange(clock_timestamp(), NULL, '[)'), $5, $6, $7)
ON CONFLICT DO NOTHING
RETURNING ` + sessionColumns

// Attach starts a session: at the requested address, or at one allocated
// from the requested pool. It returns ErrInvalid (nothing stored),
// ErrAddressInUse, ErrPoolExhausted or ErrPoolNotConfigured.
func (s *Store) Attach(ctx context.Context, req AttachRequest) (Session, error) {
	spec, err := req.validate()
	if err != nil {
		return Session{}, err
	}
	if spec.fixed != nil {
		session, err := s.insert(ctx, spec, *spec.fixed)
		if errors.Is(err, pgx.ErrNoRows) {
			return Session{}, ErrAddressInUse
		}
		return session, err
	}
	return s.allocate(ctx, spec)
}

func (s *Store) insert(ctx context.Context, spec attachSpec, c candidate) (Session, error) {
	row := s.db.QueryRow(ctx, insertSQL, spec.msisdn, c.ip, int32(c.ports.Low), int32(c.ports.High), spec.apn, spec.rat, spec.imsi)
	session, err := scanSession(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, err
	}
	if err != nil {
		return Session{}, fmt.Errorf("attach: %w", pg.MapError(err))
	}
	return session, nil
}

// Detach closes the session's period now; the row stays as history (in the
// hot table for HotRetention, then in network_session_history).
func (s *Store) Detach(ctx context.Context, id int64) (Session, error) {
	row := s.db.QueryRow(ctx, `
UPDATE network_sessions
SET period = tstzrange(lower(period), greatest(clock_timestamp(), lower(period) + interval '1 microsecond'), '[)')
WHERE id = $1 AND upper_inf(period)
RETURNING `+sessionColumns, id)
	session, err := scanSession(row)
	if err == nil {
		return session, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Session{}, fmt.Errorf("detach: %w", pg.MapError(err))
	}
	var exists bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM network_sessions WHERE id = $1)
    OR EXISTS (SELECT 1 FROM network_session_history WHERE id = $1)`, id).Scan(&exists); err != nil {
		return Session{}, fmt.Errorf("detach: %w", pg.MapError(err))
	}
	if exists {
		return Session{}, ErrAlreadyDetached
	}
	return Session{}, ErrSessionNotFound
}

// ListFilter selects sessions for List.
type ListFilter struct {
	MSISDN string // optional; normalised to E.164
	All    bool   // include detached sessions (history)
	Limit  int    // 0: DefaultListLimit; at most MaxListLimit
}

// List limits.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)

// List returns sessions, most recently started first.
func (s *Store) List(ctx context.Context, f ListFilter) ([]Session, error) {
	limit := f.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || limit > MaxListLimit {
		return nil, fmt.Errorf("%w: limit: between 1 and %d", ErrInvalid, MaxListLimit)
	}
	var msisdn *string
	if f.MSISDN != "" {
		normalized, err := phone.Normalize(f.MSISDN)
		if err != nil {
			return nil, fmt.Errorf("%w: msisdn: not a valid international (E.164) phone number", ErrInvalid)
		}
		msisdn = &normalized
	}
	// History (closed sessions) only when asked for.
	return s.querySessions(ctx, "list sessions", `
SELECT `+sessionColumns+` FROM (
    SELECT * FROM (SELECT `+historyColumns+` FROM network_sessions
        WHERE ($1::text IS NULL OR msisdn = $1) AND ($2 OR upper_inf(period))
        ORDER BY lower(period) DESC, id DESC LIMIT $3) AS hot
    UNION ALL
    SELECT * FROM (SELECT `+historyColumns+` FROM network_session_history
        WHERE $2 AND ($1::text IS NULL OR msisdn = $1)
        ORDER BY lower(period) DESC, id DESC LIMIT $3) AS history
) AS sessions
ORDER BY lower(period) DESC, id DESC
LIMIT $3`, msisdn, f.All, limit)
}

// querySessions runs sql, a query of sessionColumns, and scans its rows;
// errors say what failed.
func (s *Store) querySessions(ctx context.Context, what, sql string, args ...any) ([]Session, error) {
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, pg.MapError(err))
	}
	sessions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Session, error) { return scanSession(row) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, pg.MapError(err))
	}
	return sessions, nil
}

// allocationWindow is how many candidates one query checks.
const allocationWindow = 128

// allocate takes the first free candidate of the pool, scanning windows of
// candidates from a random start (so concurrent attaches spread out instead
// of all racing for the lowest address). A candidate that a concurrent attach
// took between the check and the insert is refused by the exclusion
// constraint, and the next one is tried.
func (s *Store) allocate(ctx context.Context, spec attachSpec) (Session, error) {
	p, err := s.pools.pool(spec.pool)
	if err != nil {
		return Session{}, err
	}
	start := rand.Uint64N(p.size)
	for scanned := uint64(0); scanned < p.size; scanned += allocationWindow {
		window := make([]candidate, 0, min(allocationWindow, p.size-scanned))
		for i := scanned; i < p.size && i < scanned+allocationWindow; i++ {
			window = append(window, p.at((start+i)%p.size))
		}
		free, err := s.freeAmong(ctx, window)
		if err != nil {
			return Session{}, err
		}
		for _, c := range free {
			session, err := s.insert(ctx, spec, c)
			if !errors.Is(err, pgx.ErrNoRows) {
				return session, err
			}
		}
	}
	return Session{}, fmt.Errorf("%w: %s", ErrPoolExhausted, spec.pool)
}

// freeAmong returns the candidates nobody holds now, in order.
func (s *Store) freeAmong(ctx context.Context, window []candidate) ([]candidate, error) {
	ips := make([]netip.Prefix, len(window))
	lows := make([]int32, len(window))
	highs := make([]int32, len(window))
	for i, c := range window {
		ips[i], lows[i], highs[i] = c.ip, int32(c.ports.Low), int32(c.ports.High)
	}
	rows, err := s.db.Query(ctx, `
SELECT u.ord - 1 FROM unnest($1::inet[], $2::int4[], $3::int4[]) WITH ORDINALITY AS u(ip, lo, hi, ord)
WHERE NOT EXISTS (
    SELECT 1 FROM network_sessions s
    WHERE network_address_key(s.ip) = network_address_key(u.ip) AND s.ip && u.ip AND s.ports && int4range(u.lo, u.hi, '[]') AND s.period && tstzrange(clock_timestamp(), NULL))
ORDER BY u.ord`, ips, lows, highs)
	if err != nil {
		return nil, fmt.Errorf("allocate: %w", pg.MapError(err))
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("allocate: %w", pg.MapError(err))
	}
	free := make([]candidate, len(indexes))
	for i, index := range indexes {
		free[i] = window[index]
	}
	return free, nil
}
