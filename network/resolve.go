package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/numverify/numverify/internal/pg"
)

// resolveSQL asks first for an open session, which holds the address at
// nearly every login: the partial B-tree network_sessions_active
// (network_address_key(ip) WHERE upper_inf(period), migration 0013) leads to
// it in a few pages. Its key is compared with = ANY of a one-element array, a
// condition a B-tree takes and the GiST index does not, so that tree is the
// only way in whatever the statistics say. An open session whose period
// began at or before the instant contains it, and the exclusion constraint
// lets no other session contain it too: when the first branch answers, that
// is the answer, and the Append never starts the second. Only when no open
// session holds the address (off the mobile network, or a session closed
// just after the instant) does the second branch ask the general question of
// the GiST index of the exclusion constraint network_sessions_no_overlap
// (network_address_key(ip), ip inet_ops, ports, period): the key (the /32,
// or the /64 of an IPv6 address) leads to the address's few sessions, >>=
// finds the /32, /128 or /64 holding the address.
const resolveSQL = `(SELECT ` + sessionColumns + ` FROM network_sessions
WHERE network_address_key(ip) = ANY(ARRAY[network_address_key($1::inet)]) AND upper_inf(period)
    AND ip >>= $1::inet AND ports @> $2::int4 AND lower(period) <= $3::timestamptz
LIMIT 1)
UNION ALL
` + resolveHotSQL + `
LIMIT 1`

// resolveWhere is the general question ($1 address, $2 port, $3 instant),
// in the terms of the GiST indexes of the hot table (its exclusion
// constraint) and of the history, both led by the address key.
const resolveWhere = `network_address_key(ip) = network_address_key($1::inet) AND ip >>= $1::inet AND ports @> $2::int4 AND period @> $3::timestamptz`

// resolveHotSQL is the general question of the hot table: the second branch
// of resolveSQL and the first of resolveHistorySQL.
const resolveHotSQL = `(SELECT ` + sessionColumns + ` FROM network_sessions
WHERE ` + resolveWhere + `
LIMIT 1)`

// resolveHistorySQL is the same question of both tables at once, for an
// instant in the past (one round trip): the hot table first, then only the
// history partitions of the days that ended after it (each through its GiST
// index, led by the address key as well). The Append stops at the first row.
const resolveHistorySQL = resolveHotSQL + `
UNION ALL
(SELECT ` + sessionColumns + ` FROM network_session_history
WHERE ` + resolveWhere + ` AND upper(period) > $3::timestamptz
LIMIT 1)
LIMIT 1`

// lookupSQL and lookupHistorySQL answer an address without a port: at most
// two sessions (two mean it was shared behind CGNAT then).
const (
	lookupSQL = `SELECT ` + sessionColumns + ` FROM network_sessions
WHERE network_address_key(ip) = network_address_key($1::inet) AND ip >>= $1::inet AND period @> $2::timestamptz
LIMIT 2`
	lookupHistorySQL = `(SELECT ` + sessionColumns + ` FROM network_sessions
WHERE network_address_key(ip) = network_address_key($1::inet) AND ip >>= $1::inet AND period @> $2::timestamptz
LIMIT 2)
UNION ALL
(SELECT ` + sessionColumns + ` FROM network_session_history
WHERE network_address_key(ip) = network_address_key($1::inet) AND ip >>= $1::inet AND period @> $2::timestamptz AND upper(period) > $2::timestamptz
LIMIT 2)
LIMIT 2`
)

// past says whether at is old enough for its holder to have left the hot
// table: a session ended at least HotRetention ago before it moves to
// history, so any instant since half of that (a margin for the clocks) is
// answered by the hot table alone — the authorization server's "now"
// never reads history, whatever its size.
func past(at time.Time) bool { return at.Before(time.Now().Add(-HotRetention / 2)) }

// Resolve returns the session that held addr and port at instant at, or
// ErrNotFound. Any other error means the answer is unknown.
func (s *Store) Resolve(ctx context.Context, addr netip.Addr, port uint16, at time.Time) (Session, error) {
	if !addr.IsValid() {
		return Session{}, ErrNotFound
	}
	addr = addr.Unmap().WithZone("")
	sql := resolveSQL
	if past(at) {
		sql = resolveHistorySQL
	}
	session, err := scanSession(s.db.QueryRow(ctx, sql, addr, int32(port), at))
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("resolve: %w", pg.MapError(err))
	}
	return session, nil
}

// LookupAddress answers for an address without a port: the one session that
// held addr at instant at, ErrNotFound, or ErrPortRequired when the address
// was shared behind CGNAT by several subscribers then.
func (s *Store) LookupAddress(ctx context.Context, addr netip.Addr, at time.Time) (Session, error) {
	if !addr.IsValid() {
		return Session{}, ErrNotFound
	}
	addr = addr.Unmap().WithZone("")
	sql := lookupSQL
	if past(at) {
		sql = lookupHistorySQL
	}
	sessions, err := s.querySessions(ctx, "lookup", sql, addr, at)
	if err != nil {
		return Session{}, err
	}
	switch {
	case len(sessions) == 0:
		return Session{}, ErrNotFound
	case len(sessions) > 1 || sessions[0].Ports != AllPorts:
		return Session{}, ErrPortRequired
	}
	return sessions[0], nil
}
