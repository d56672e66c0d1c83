package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/numverify/numverify/internal/pg"
)

// ApplyAccounting applies events as if in order, in one transaction, and
// returns what each did once it is committed. An error means nothing was
// applied. An Open that a concurrent writer outside the feed (the admin API)
// kept from its address is retried on its own; if it still cannot be stored
// its result is an error wrapping ErrAddressInUse in errs (nil otherwise).
//
// The batch costs a handful of statements, whatever its size: Opens whose
// session is open already are answered from one read (no lock, no
// transaction); the others are split into rounds, in order, such that no
// two events of a round touch the same session, address or NAS (an event
// that does goes to a round after the earlier one's); each round is one
// statement for its Stops, then two for its Opens (state and cut, then
// insert), or one for an Accounting-On/Off. Within a round, Stops are
// applied before Opens: the events of a batch were all in flight together,
// so any order of those that touch different sessions and addresses is one
// the gateways could have seen.
func (s *Store) ApplyAccounting(ctx context.Context, events []AccountingEvent, remember time.Duration) ([]AccountingResult, []error, error) {
	if len(events) > MaxAccountingBatch {
		return nil, nil, fmt.Errorf("%w: %d accounting events: at most %d at once", ErrInvalid, len(events), MaxAccountingBatch)
	}
	for i, e := range events {
		if err := e.validate(); err != nil {
			return nil, nil, fmt.Errorf("accounting event %d: %w", i, err)
		}
	}
	results := make([]AccountingResult, len(events))
	confirmed, err := s.openAlready(ctx, events)
	if err != nil {
		return nil, nil, err
	}
	pending := make([]int, 0, len(events))
	for i := range events {
		if confirmed[i] {
			results[i].Outcome = OutcomeConfirmed
		} else {
			pending = append(pending, i)
		}
	}
	errs := make([]error, len(events))
	if len(pending) == 0 {
		return results, errs, nil
	}
	conflicts, err := s.applyAccounting(ctx, events, pending, remember, results, false)
	if errors.Is(err, errAddressTaken) {
		// A writer outside the feed holds an address an Open wanted: the
		// transaction was rolled back; again, leaving such Opens out.
		for _, i := range pending {
			results[i] = AccountingResult{}
		}
		conflicts, err = s.applyAccounting(ctx, events, pending, remember, results, true)
	}
	if err != nil {
		return nil, nil, err
	}
	for _, i := range conflicts {
		alone := make([]AccountingResult, len(events))
		again, err := s.applyAccounting(ctx, events, []int{i}, remember, alone, true)
		switch {
		case err != nil:
			errs[i] = err
		case len(again) > 0:
			errs[i] = fmt.Errorf("accounting start: %w", ErrAddressInUse)
		default:
			results[i] = alone[i]
		}
	}
	return results, errs, nil
}

// openAlready reports the Opens whose session is open now (one read, no
// transaction): they change nothing, whatever the rest of the batch or a
// concurrent one does (closing the session first would leave it closed
// too), so they are confirmed as if applied first.
func (s *Store) openAlready(ctx context.Context, events []AccountingEvent) ([]bool, error) {
	confirmed := make([]bool, len(events))
	var nas, sid []string
	var ips []netip.Prefix
	var index []int
	for i, e := range events {
		if e.Kind == AccountingOpen {
			nas, sid, ips, index = append(nas, e.NAS), append(sid, e.SessionID), append(ips, e.IP), append(index, i)
		}
	}
	if len(index) == 0 {
		return confirmed, nil
	}
	// One round trip: a read-only transaction only to plan the read by its
	// keys (planSettingsSQL).
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN READ ONLY`)
	batch.Queue(planSettingsSQL)
	batch.Queue(fastOpenSQL, nas, sid, ips).Query(func(rows pgx.Rows) error {
		ords, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		for _, o := range ords {
			confirmed[index[o-1]] = true
		}
		return err
	})
	batch.Queue(`COMMIT`)
	// An aborted transaction's connection is not idle: the pool closes it.
	if err := s.db.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("accounting: %w", pg.MapError(err))
	}
	return confirmed, nil
}

// planSettingsSQL is run first in each transaction of the feed. Generic
// plans: the statements take arrays and are driven by per-element index
// probes whatever their length, so planning them again for every batch
// (1.5-3 ms each for the CTEs) bought nothing but CPU (the 20,000/s bench
// answered about 13,000/s with custom plans, 18,500/s without). No
// sequential scan: the plans are made from the statistics of the moment,
// and a table vacuumed while empty (or nearly) has statistics that make a
// sequential scan look cheapest, a plan then cached while the table grows
// (a preload of 80,000 Starts after the table was vacuumed empty answered
// 7,000 of 8,000 requests a second, each batch taking seconds). Every
// statement here has an index for each of its probes.
const planSettingsSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true)`

// accountingRound is events of a batch that touch disjoint sessions,
// addresses and NASes (indexes into the batch).
type accountingRound struct {
	closes, opens []int
	closeNAS      int // an Accounting-On/Off, alone in its round; -1 if none
}

// roundKey names what an event touches.
type roundKey struct {
	kind     byte // 'a' address (Opens), 'o' a session's address (Opens), 's' session (Stops), 'p' session (Opens)
	nas, sid string
	ip       netip.Prefix
}

// accountingRounds splits the pending events (in order) into rounds: each
// event goes to the first round after every earlier event it shares a
// session or an address with; an Accounting-On/Off has a round to itself,
// after everything before it and before everything after it.
func accountingRounds(events []AccountingEvent, pending []int) []accountingRound {
	var rounds []accountingRound
	last := map[roundKey]int{}
	after := func(r int, k roundKey) int {
		if prev, ok := last[k]; ok && prev >= r {
			return prev + 1
		}
		return r
	}
	floor := 0
	for _, i := range pending {
		e := events[i]
		r := floor
		switch e.Kind {
		case AccountingCloseNAS:
			r = len(rounds)
		case AccountingOpen:
			keys := []roundKey{{kind: 'a', ip: e.IP}, {kind: 'o', nas: e.NAS, sid: e.SessionID, ip: e.IP}, {kind: 's', nas: e.NAS, sid: e.SessionID}}
			for _, k := range keys {
				r = after(r, k)
			}
			last[keys[0]], last[keys[1]] = r, r
			p := roundKey{kind: 'p', nas: e.NAS, sid: e.SessionID}
			if prev, ok := last[p]; !ok || prev < r {
				last[p] = r
			}
		case AccountingClose:
			r = after(after(r, roundKey{kind: 's', nas: e.NAS, sid: e.SessionID}), roundKey{kind: 'p', nas: e.NAS, sid: e.SessionID})
			last[roundKey{kind: 's', nas: e.NAS, sid: e.SessionID}] = r
		}
		for len(rounds) <= r {
			rounds = append(rounds, accountingRound{closeNAS: -1})
		}
		switch e.Kind {
		case AccountingCloseNAS:
			rounds[r].closeNAS = i
			floor = r + 1
		case AccountingOpen:
			rounds[r].opens = append(rounds[r].opens, i)
		case AccountingClose:
			rounds[r].closes = append(rounds[r].closes, i)
		}
	}
	return rounds
}

// applyAccounting runs the pending events in one transaction, sent as one
// pipeline (BEGIN to COMMIT in one round trip), writing their results;
// conflicts are the indexes of Opens that found the address taken by a
// writer that holds none of our locks. Unless tolerant, such an Open fails
// the whole transaction instead (errAddressTaken; nothing is written): the
// cheaper statement for the case that almost never happens.
func (s *Store) applyAccounting(ctx context.Context, events []AccountingEvent, pending []int, remember time.Duration,
	results []AccountingResult, tolerant bool) (conflicts []int, err error) {
	window := pgtype.Interval{Microseconds: remember.Microseconds(), Valid: true}
	batch := &pgx.Batch{}
	batch.Queue(`BEGIN`)
	// Durable whatever the session's default: the gateway is answered
	// after this commit, and will not send the request again.
	batch.Queue(`SELECT set_config('synchronous_commit', 'on', true)`)
	batch.Queue(planSettingsSQL)
	keys, exclusive := accountingLocks(events, pending)
	batch.Queue(lockSQL, keys, exclusive)
	for _, round := range accountingRounds(events, pending) {
		if round.closeNAS >= 0 {
			i := round.closeNAS
			batch.Queue(closeNASSQL, events[i].NAS, events[i].At).Exec(func(tag pgconn.CommandTag) error {
				results[i].Outcome, results[i].Closed = OutcomeClosed, int(tag.RowsAffected())
				return nil
			})
		}
		if len(round.closes) > 0 {
			queueCloses(batch, events, round.closes, window, results)
		}
		if len(round.opens) > 0 {
			queueOpens(batch, events, round.opens, window, results, &conflicts, tolerant)
		}
	}
	batch.Queue(`COMMIT`)
	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounting: %w", pg.MapError(err))
	}
	defer conn.Release()
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		// The transaction is aborted (or the connection broken): end it
		// before the connection goes back to the pool.
		if _, rollbackErr := conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`); rollbackErr != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		var pgErr *pgconn.PgError
		if !tolerant && errors.As(err, &pgErr) && pgErr.Code == "23P01" && pgErr.TableName == "network_sessions" {
			return nil, errAddressTaken
		}
		return nil, fmt.Errorf("accounting: %w", pg.MapError(err))
	}
	for _, i := range pending {
		if results[i].Outcome == "" && !slices.Contains(conflicts, i) {
			return nil, errNoResult
		}
	}
	return conflicts, nil
}

// lockSQL takes the batch's advisory locks in key order: exclusive on
// sessions, addresses and the NASes of CloseNAS, shared on the NASes of the
// other events.
const lockSQL = `SELECT count(CASE WHEN x THEN pg_advisory_xact_lock(k) ELSE pg_advisory_xact_lock_shared(k) END)
FROM (SELECT k, x FROM unnest($1::int8[], $2::bool[]) AS u(k, x) ORDER BY k) AS ordered`

func queueCloses(batch *pgx.Batch, events []AccountingEvent, round []int, window pgtype.Interval, results []AccountingResult) {
	nas, sid, at := make([]string, len(round)), make([]string, len(round)), make([]time.Time, len(round))
	for j, i := range round {
		nas[j], sid[j], at[j] = events[i].NAS, events[i].SessionID, events[i].At
	}
	batch.Queue(closeSQL, nas, sid, at, window).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ord int64
			var closed int
			if err := rows.Scan(&ord, &closed); err != nil {
				return err
			}
			r := &results[round[ord-1]]
			r.Closed, r.Outcome = closed, OutcomeClosed
			if closed == 0 {
				r.Outcome = OutcomeNoSession
			}
		}
		return rows.Err()
	})
}

func queueOpens(batch *pgx.Batch, events []AccountingEvent, round []int, window pgtype.Interval, results []AccountingResult, conflicts *[]int, tolerant bool) {
	n := len(round)
	nas, sid, ips, at := make([]string, n), make([]string, n), make([]netip.Prefix, n), make([]time.Time, n)
	msisdn, apn, rat, imsi := make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	for j, i := range round {
		e := events[i]
		nas[j], sid[j], ips[j], at[j] = e.NAS, e.SessionID, e.IP, e.At
		msisdn[j], apn[j], rat[j], imsi[j] = e.MSISDN, e.APN, e.RAT, nullable(e.IMSI)
	}
	states := make([]string, n)
	batch.Queue(openStateSQL, nas, sid, ips, at, window).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var ord int64
			var state string
			var cut int
			if err := rows.Scan(&ord, &state, &cut); err != nil {
				return err
			}
			states[ord-1] = state
			r := &results[round[ord-1]]
			r.Superseded = cut
			switch state {
			case "open":
				r.Outcome = OutcomeConfirmed
			case "closed":
				r.Outcome = OutcomeKnown
			case "stopped":
				r.Outcome = OutcomeStopped
			}
		}
		return rows.Err()
	})
	insert := openInsertSQL
	if tolerant {
		insert = openInsertTolerantSQL
	}
	batch.Queue(insert, nas, sid, ips, at, window, msisdn, apn, rat, imsi).Query(func(rows pgx.Rows) error {
		decided := make([]bool, n)
		for rows.Next() {
			var ord int64
			var inserted, open, newer bool
			if err := rows.Scan(&ord, &inserted, &open, &newer); err != nil {
				return err
			}
			decided[ord-1] = true
			r := &results[round[ord-1]]
			switch {
			case inserted && open:
				r.Outcome = OutcomeOpened
			case inserted || newer:
				r.Outcome = OutcomeLate
			default:
				*conflicts = append(*conflicts, round[ord-1])
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for j, state := range states {
			if state == "new" && !decided[j] {
				*conflicts = append(*conflicts, round[j])
			}
		}
		return nil
	})
}

// errAddressTaken: an Open of a batch run without tolerance met an
// address held by a writer outside the feed; the batch was rolled back.
var errAddressTaken = errors.New("accounting: an address is held outside the feed")

// errNoResult guards against a statement that answered for fewer events
// than it was given (committed, but unknown: the gateway retransmits).
var errNoResult = errors.New("accounting: an event without a result")
