package network

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

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
// is one transaction; the sessions, addresses and NASes it writes are
// locked first (in one order, so concurrent batches never deadlock), so a
// Stop and its Start committed concurrently by two transactions are applied
// one after the other, never interleaved. An Open whose session is open
// already (most of them: Interim-Updates) changes nothing whatever runs
// beside it, so it is answered from one read of the hot table, without a
// lock or a transaction.
//
// A closed session stays in the hot table (network_sessions, under its
// exclusion constraint) for HotRetention, then moves to the history
// (history.go). The feed reads both wherever the past matters, and edits a
// history row (a Start older than the address's holder cuts it) only under
// the address's lock, computing the period against both tables as it does
// for the hot table: so one holder per address, port and instant holds for
// everything the resolver reads.

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
// that writes holds up to three advisory locks until the batch commits).
const MaxAccountingBatch = 1024

// accountingLocks are the advisory lock keys of a batch, each once, with
// whether it is taken exclusively.
func accountingLocks(events []AccountingEvent, pending []int) (keys []int64, exclusive []bool) {
	locks := map[int64]bool{}
	take := func(x bool, parts ...string) {
		k := lockKey(parts...)
		locks[k] = locks[k] || x
	}
	for _, i := range pending {
		e := events[i]
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
	return CheckUnicast(e.IP)
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
	return s.querySessions(ctx, "open sessions of a NAS",
		`SELECT `+sessionColumns+` FROM network_sessions WHERE nas = $1 AND upper_inf(period)`, nas)
}
