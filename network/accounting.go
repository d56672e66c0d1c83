package network

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/numverify/numverify/internal/pg"
	"github.com/numverify/numverify/internal/phone"
)

// The session table as a packet gateway's RADIUS accounting feed drives it
// (RFC 2866, 3GPP TS 29.061). What gateways rely on:
//
//   - Open (Start, Interim-Update) opens the session unless it is already
//     recorded: an open one is confirmed, a closed one stays closed, and one
//     whose Stop came first is never opened. Stops get lost, so the newest
//     Start for an address wins: every other session holding the address at
//     or after the new instant is cut there, and a Start older than the
//     address's current holder is kept as history only. Never two holders
//     at one instant (the exclusion constraint), never a refused Start.
//   - Close (Stop) closes the sessions with that Acct-Session-Id from that
//     NAS only; with nothing to close it is remembered, so the Start
//     delivered after it does not open the session.
//   - CloseNAS (Accounting-On/Off) closes every open session the NAS began
//     at or before its instant.
//
// Every operation is idempotent: a retransmission changes nothing. A batch
// is one transaction; its sessions, addresses and NASes are locked first (in
// one order, so concurrent batches never deadlock), so a Stop and its Start
// committed concurrently by two transactions are applied one after the
// other, never interleaved.

// AccountingKind is what an accounting event does to the session table.
type AccountingKind uint8

// The accounting operations.
const (
	AccountingOpen     AccountingKind = iota + 1 // Start, Interim-Update
	AccountingClose                              // Stop
	AccountingCloseNAS                           // Accounting-On, Accounting-Off
)

// AccountingEvent is one accounting request, decided.
type AccountingEvent struct {
	Kind      AccountingKind
	NAS       string    // the reporting gateway (NAS-IP-Address, NAS-Identifier, …)
	SessionID string    // Acct-Session-Id; not for CloseNAS
	At        time.Time // when it happened (Event-Timestamp, else receipt)
	// Open only:
	MSISDN string       // E.164
	IP     netip.Prefix // an IPv4 /32 or an IPv6 /64
	APN    string
	RAT    string
	IMSI   string // optional
}

// AccountingOutcome is what an event did.
type AccountingOutcome string

// The outcomes.
const (
	OutcomeOpened    AccountingOutcome = "opened"     // Open: a new open session
	OutcomeConfirmed AccountingOutcome = "confirmed"  // Open: already open (Interim-Update, retransmission)
	OutcomeKnown     AccountingOutcome = "known"      // Open: already recorded and closed; stays closed
	OutcomeStopped   AccountingOutcome = "stopped"    // Open: its Stop came first; not opened
	OutcomeLate      AccountingOutcome = "late"       // Open: a newer session holds the address; kept as history
	OutcomeClosed    AccountingOutcome = "closed"     // Close, CloseNAS: closed Closed sessions (Close: its own only)
	OutcomeNoSession AccountingOutcome = "no_session" // Close: nothing open to close (remembered)
)

// AccountingResult is what one event did.
type AccountingResult struct {
	Outcome    AccountingOutcome
	Superseded int // Open: sessions of other subscribers cut at this instant
	Closed     int // Close, CloseNAS
}

// DefaultRememberStops is how long a Stop without a session (and a closed
// session) keeps a late Start or Interim-Update of it from opening it.
const DefaultRememberStops = 24 * time.Hour

// MaxAccountingBatch is the most events ApplyAccounting takes at once (each
// holds up to three advisory locks until the batch commits).
const MaxAccountingBatch = 512

// accountingSQL are the batch's statements; each is safe to run whatever the
// earlier ones did, so a whole batch is sent in one round trip.
const (
	// lockSQL takes the batch's advisory locks in key order: exclusive on
	// sessions, addresses and the NASes of CloseNAS, shared on the NASes of
	// the other events.
	lockSQL = `SELECT count(CASE WHEN x THEN pg_advisory_xact_lock(k) ELSE pg_advisory_xact_lock_shared(k) END)
FROM (SELECT k, x FROM unnest($1::int8[], $2::bool[]) AS u(k, x) ORDER BY k) AS ordered`

	// openStateSQL: $1 nas, $2 session id, $3 ip, $4 instant, $5 remember.
	// It says whether the session is known, and when it is new cuts every
	// session holding the address at or after $4 that began at or before $4.
	// The last column is the start of the next newer session on the address.
	openStateSQL = `WITH state AS (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM network_sessions WHERE nas = $1 AND acct_session_id = $2 AND ip = $3 AND upper_inf(period)) THEN 'open'
        WHEN EXISTS (SELECT 1 FROM network_sessions WHERE nas = $1 AND acct_session_id = $2 AND ip = $3 AND upper(period) > $4::timestamptz - $5::interval) THEN 'closed'
        WHEN EXISTS (SELECT 1 FROM network_accounting_stops WHERE nas = $1 AND acct_session_id = $2 AND stopped_at > $4::timestamptz - $5::interval) THEN 'stopped'
        ELSE 'new' END AS s
), cut AS (
    UPDATE network_sessions
    SET period = tstzrange(lower(period), greatest($4::timestamptz, lower(period) + interval '1 microsecond'), '[)')
    WHERE (SELECT s FROM state) = 'new' AND ip && $3 AND period && tstzrange($4::timestamptz, NULL, '[)') AND lower(period) <= $4::timestamptz
    RETURNING 1
)
SELECT (SELECT s FROM state), (SELECT count(*) FROM cut),
    (SELECT min(lower(period)) FROM network_sessions WHERE ip && $3 AND period && tstzrange($4::timestamptz, NULL, '()') AND lower(period) > $4::timestamptz)`

	// openInsertSQL: $1-$5 as above, $6 msisdn, $7 apn, $8 rat, $9 imsi.
	// It inserts the new session from $4 (or just after a session that
	// began at that very instant) until the next newer one, if any.
	openInsertSQL = `INSERT INTO network_sessions (msisdn, ip, period, apn, rat, imsi, nas, acct_session_id)
SELECT $6, $3, tstzrange(b.s, b.e, '[)'), $7, $8, $9, $1, $2
FROM (SELECT greatest($4::timestamptz, (SELECT max(upper(period)) FROM network_sessions
            WHERE ip && $3 AND period && tstzrange($4::timestamptz, NULL, '[)') AND lower(period) <= $4::timestamptz)) AS s,
        (SELECT min(lower(period)) FROM network_sessions
            WHERE ip && $3 AND period && tstzrange($4::timestamptz, NULL, '()') AND lower(period) > $4::timestamptz) AS e) AS b
WHERE (b.e IS NULL OR b.e > b.s)
    AND NOT EXISTS (SELECT 1 FROM network_sessions WHERE nas = $1 AND acct_session_id = $2 AND ip = $3
        AND (upper_inf(period) OR upper(period) > $4::timestamptz - $5::interval))
    AND NOT EXISTS (SELECT 1 FROM network_accounting_stops WHERE nas = $1 AND acct_session_id = $2 AND stopped_at > $4::timestamptz - $5::interval)
ON CONFLICT DO NOTHING
RETURNING upper_inf(period)`

	// closeSQL: $1 nas, $2 session id, $3 instant, $4 remember. It closes the
	// session's open rows and remembers a Stop that found no row at all.
	closeSQL = `WITH closed AS (
    UPDATE network_sessions
    SET period = tstzrange(lower(period), greatest($3::timestamptz, lower(period) + interval '1 microsecond'), '[)')
    WHERE nas = $1 AND acct_session_id = $2 AND upper_inf(period)
    RETURNING 1
), remembered AS (
    INSERT INTO network_accounting_stops (nas, acct_session_id, stopped_at)
    SELECT $1, $2, $3::timestamptz
    WHERE NOT EXISTS (SELECT 1 FROM network_sessions WHERE nas = $1 AND acct_session_id = $2
        AND (upper_inf(period) OR upper(period) > $3::timestamptz - $4::interval))
    ON CONFLICT (nas, acct_session_id) DO UPDATE SET stopped_at = greatest(network_accounting_stops.stopped_at, excluded.stopped_at)
    RETURNING 1
)
SELECT (SELECT count(*) FROM closed), (SELECT count(*) FROM remembered)`

	// closeNASSQL: $1 nas, $2 instant.
	closeNASSQL = `UPDATE network_sessions
SET period = tstzrange(lower(period), greatest($2::timestamptz, lower(period) + interval '1 microsecond'), '[)')
WHERE nas = $1 AND upper_inf(period) AND lower(period) <= $2::timestamptz`
)

// ApplyAccounting applies events in order in one transaction and returns
// what each did once it is committed. An error means nothing was applied.
// An Open that a concurrent writer outside the feed (the admin API) kept
// from its address is retried on its own; if it still cannot be stored its
// result is an error wrapping ErrAddressInUse in errs (nil otherwise).
func (s *Store) ApplyAccounting(ctx context.Context, events []AccountingEvent, remember time.Duration) ([]AccountingResult, []error, error) {
	if len(events) > MaxAccountingBatch {
		return nil, nil, fmt.Errorf("%w: %d accounting events: at most %d at once", ErrInvalid, len(events), MaxAccountingBatch)
	}
	for i, e := range events {
		if err := e.validate(); err != nil {
			return nil, nil, fmt.Errorf("accounting event %d: %w", i, err)
		}
	}
	results, conflicts, err := s.applyAccounting(ctx, events, remember)
	if err != nil {
		return nil, nil, err
	}
	errs := make([]error, len(events))
	for _, i := range conflicts {
		retried, again, err := s.applyAccounting(ctx, events[i:i+1], remember)
		switch {
		case err != nil:
			errs[i] = err
		case len(again) > 0:
			errs[i] = fmt.Errorf("accounting start: %w", ErrAddressInUse)
		default:
			results[i] = retried[0]
		}
	}
	return results, errs, nil
}

// applyAccounting runs one transaction; conflicts are the indexes of Opens
// that found the address taken by a writer that holds none of our locks.
func (s *Store) applyAccounting(ctx context.Context, events []AccountingEvent, remember time.Duration) (results []AccountingResult, conflicts []int, err error) {
	results = make([]AccountingResult, len(events))
	window := pgtype.Interval{Microseconds: remember.Microseconds(), Valid: true}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		conflicts = conflicts[:0]
		batch := &pgx.Batch{}
		// Durable whatever the session's default: the gateway is answered
		// after this commit, and will not send the request again.
		batch.Queue(`SELECT set_config('synchronous_commit', 'on', true)`)
		// Plan each statement once per connection: these plans do not depend
		// on the values, and planning costs more than running them.
		batch.Queue(`SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`)
		keys, exclusive := accountingLocks(events)
		batch.Queue(lockSQL, keys, exclusive)
		for i, e := range events {
			r := &results[i]
			switch e.Kind {
			case AccountingOpen:
				var state string
				var newer *time.Time
				batch.Queue(openStateSQL, e.NAS, e.SessionID, e.IP, e.At, window).QueryRow(func(row pgx.Row) error {
					return row.Scan(&state, &r.Superseded, &newer)
				})
				batch.Queue(openInsertSQL, e.NAS, e.SessionID, e.IP, e.At, window, e.MSISDN, e.APN, e.RAT, nullable(e.IMSI)).Query(
					func(rows pgx.Rows) error {
						inserted, open := false, false
						for rows.Next() {
							inserted = true
							if err := rows.Scan(&open); err != nil {
								return err
							}
						}
						if err := rows.Err(); err != nil {
							return err
						}
						switch {
						case state == "open":
							r.Outcome = OutcomeConfirmed
						case state == "closed":
							r.Outcome = OutcomeKnown
						case state == "stopped":
							r.Outcome = OutcomeStopped
						case inserted && open:
							r.Outcome = OutcomeOpened
						case inserted || newer != nil:
							r.Outcome = OutcomeLate
						default:
							conflicts = append(conflicts, i)
						}
						return nil
					})
			case AccountingClose:
				batch.Queue(closeSQL, e.NAS, e.SessionID, e.At, window).QueryRow(func(row pgx.Row) error {
					var remembered int
					if err := row.Scan(&r.Closed, &remembered); err != nil {
						return err
					}
					r.Outcome = OutcomeClosed
					if r.Closed == 0 {
						r.Outcome = OutcomeNoSession
					}
					return nil
				})
			case AccountingCloseNAS:
				batch.Queue(closeNASSQL, e.NAS, e.At).Exec(func(tag pgconn.CommandTag) error {
					r.Outcome, r.Closed = OutcomeClosed, int(tag.RowsAffected())
					return nil
				})
			}
		}
		return tx.SendBatch(ctx, batch).Close()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("accounting: %w", pg.MapError(err))
	}
	return results, conflicts, nil
}

// accountingLocks are the advisory lock keys of a batch, each once, with
// whether it is taken exclusively.
func accountingLocks(events []AccountingEvent) (keys []int64, exclusive []bool) {
	locks := map[int64]bool{}
	take := func(x bool, parts ...string) {
		k := lockKey(parts...)
		locks[k] = locks[k] || x
	}
	for _, e := range events {
		switch e.Kind {
		case AccountingOpen:
			take(true, "session", e.NAS, e.SessionID)
			take(true, "address", e.IP.Masked().String())
			take(false, "nas", e.NAS)
		case AccountingClose:
			take(true, "session", e.NAS, e.SessionID)
			take(false, "nas", e.NAS)
		case AccountingCloseNAS:
			take(true, "nas", e.NAS)
		}
	}
	keys = make([]int64, 0, len(locks))
	for k := range locks {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	exclusive = make([]bool, len(keys))
	for i, k := range keys {
		exclusive[i] = locks[k]
	}
	return keys, exclusive
}

// lockKey hashes a lock's name into the advisory lock space.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MaxSessionIDLength bounds Acct-Session-Id and the NAS name (a RADIUS
// attribute holds at most 253 bytes).
const MaxSessionIDLength = 253

// validate refuses an event the feed's decoder should never produce.
func (e AccountingEvent) validate() error {
	switch {
	case e.NAS == "" || len(e.NAS) > MaxSessionIDLength:
		return fmt.Errorf("%w: nas: 1 to %d bytes", ErrInvalid, MaxSessionIDLength)
	case e.At.IsZero():
		return fmt.Errorf("%w: instant missing", ErrInvalid)
	case e.Kind == AccountingCloseNAS:
		return nil
	case e.Kind != AccountingOpen && e.Kind != AccountingClose:
		return fmt.Errorf("%w: unknown accounting kind %d", ErrInvalid, e.Kind)
	case e.SessionID == "" || len(e.SessionID) > MaxSessionIDLength:
		return fmt.Errorf("%w: acct-session-id: 1 to %d bytes", ErrInvalid, MaxSessionIDLength)
	case e.Kind == AccountingClose:
		return nil
	case !phone.MatchesPattern(e.MSISDN):
		return fmt.Errorf("%w: msisdn: not E.164", ErrInvalid)
	case !(e.IP.Addr().Is4() && e.IP.Bits() == 32) && !(e.IP.Addr().Is6() && e.IP.Bits() == 64 && e.IP == e.IP.Masked()):
		return fmt.Errorf("%w: address: an IPv4 /32 or an IPv6 /64", ErrInvalid)
	case e.APN == "" || e.RAT == "":
		return fmt.Errorf("%w: apn and rat required", ErrInvalid)
	}
	return checkUnicast(e.IP)
}

// PurgeAccountingStops forgets the Stops without a session remembered
// before before; it returns how many.
func (s *Store) PurgeAccountingStops(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.db.Exec(ctx, `DELETE FROM network_accounting_stops WHERE stopped_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("purge accounting stops: %w", pg.MapError(err))
	}
	return tag.RowsAffected(), nil
}

// CountOpenSessions is how many sessions are open now (the gauge of the
// accounting feed).
func (s *Store) CountOpenSessions(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM network_sessions WHERE upper_inf(period)`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count open sessions: %w", pg.MapError(err))
	}
	return n, nil
}

// OpenSessionsOfNAS returns the sessions a NAS reported open and did not
// close (for the load generator's check against its model).
func (s *Store) OpenSessionsOfNAS(ctx context.Context, nas string) ([]Session, error) {
	rows, err := s.db.Query(ctx, `SELECT `+sessionColumns+` FROM network_sessions WHERE nas = $1 AND upper_inf(period)`, nas)
	if err != nil {
		return nil, fmt.Errorf("open sessions of a NAS: %w", pg.MapError(err))
	}
	sessions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Session, error) { return scanSession(row) })
	if err != nil {
		return nil, fmt.Errorf("open sessions of a NAS: %w", pg.MapError(err))
	}
	return sessions, nil
}
