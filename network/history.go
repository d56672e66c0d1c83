package network

import (
	"context"
	"fmt"
	"time"

	"github.com/numverify/numverify/internal/pg"
)

// Sessions at operator scale. The hot table (network_sessions) holds the
// sessions open now and those closed within HotRetention; MaintainHistory
// moves older closed sessions to network_session_history, partitioned by
// the day (UTC) their period ended, makes the partitions of the coming days
// ahead of time, and drops a whole day's partition once past retention. The
// resolver reads the hot table for any instant within HotRetention/2 (its
// "now"), and history only for older instants, reading only the partitions
// of the days that ended after that instant.

// HotRetention is how long a closed session stays in the hot table before
// it may move to history.
const HotRetention = time.Minute

// DefaultHistoryRetention is how long closed sessions are kept.
const DefaultHistoryRetention = 7 * 24 * time.Hour

// historyDaysAhead is how many days of partitions exist ahead of today.
const historyDaysAhead = 2

// moveBatch is the most sessions one statement moves, and moveRest how
// long the move rests after a full batch: the feed shares the cores with
// it, and what hurts the feed is the move's bursts, not its total. At
// 20,000 accounting requests a second about 90,000 sessions close in 30 s.
// Moved in one go (5,000 a statement, back to back) they took 6 to 8 s of
// a core, and the feed's p99 rose from tens of milliseconds to 1 to 3 s.
// In batches of 1,000 resting as long as each took (half of one backend),
// the move took 6 to 12 s of every 30. In batches of 250 (about 12 ms
// each) resting three times as long (a quarter of one backend), the same
// move is spread over 12 to 21 s: in five 3-minute runs at 20,000/s no
// 5 s of the feed had a p99 over 48 ms, against 42 to 124 ms for the
// worst 5 s of five runs of the old pacing. Each statement costs more as
// the day's history partition grows: in a 10-minute run the rounds' moves
// took 25 to 29 s from minute 4, back to back but keeping up (README,
// ninth machine).
const moveBatch = 250

// moveRest is how long the move rests after a full batch (which took
// took), when it has been moving for elapsed: three times as long (a
// quarter of one backend) for the first moveGentle, then as long (half of
// one backend). So a backlog larger than a quarter of a backend can move
// (sessions closing faster than about 4,800 a second on the README's ninth
// machine) is still cleared as fast as before.
func moveRest(took, elapsed time.Duration) time.Duration {
	if elapsed < moveGentle {
		return 3 * took
	}
	return took
}

// moveGentle is how long the move runs at a quarter of one backend before
// it runs at half: two thirds of the 30 s between rounds.
const moveGentle = 20 * time.Second

// historyLock is the advisory lock held while maintaining history, so that
// of the replicas sharing a database one does it at a time.
const historyLock int64 = 0x6e76_6869_7374_6f72 // "nvhistor"

// HistoryReport is what one MaintainHistory did.
type HistoryReport struct {
	Created int   // partitions made
	Moved   int64 // sessions moved from the hot table
	Dropped int   // partitions dropped
	Skipped bool  // another replica was doing it
	// How long the move and the vacuums took.
	MoveTook, VacuumTook time.Duration
}

// MaintainHistory makes the partitions from yesterday through
// historyDaysAhead days ahead, moves the sessions closed more than
// HotRetention before now to history, drops the partitions (and deletes
// the rows of the default partition) ended more than retention before now,
// and vacuums the hot table (unless empty) and the history (if sessions
// moved).
func (s *Store) MaintainHistory(ctx context.Context, now time.Time, retention time.Duration) (HistoryReport, error) {
	var report HistoryReport
	if retention < 24*time.Hour {
		return report, fmt.Errorf("%w: history retention %s: at least a day", ErrInvalid, retention)
	}
	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return report, fmt.Errorf("history: %w", pg.MapError(err))
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, historyLock).Scan(&locked); err != nil {
		return report, fmt.Errorf("history: %w", pg.MapError(err))
	}
	if !locked {
		report.Skipped = true
		return report, nil
	}
	// On every path, before the connection goes back to the pool: the lock
	// timeout set below back to none, and the lock released (or, failing
	// that, the connection closed, which does both).
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT set_config('lock_timeout', '0', false), set_config('vacuum_cost_delay', '0', false), pg_advisory_unlock($1)`, historyLock); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	// Partitions are made and dropped under a short lock timeout: a long
	// query on the history must not queue every writer behind the DDL.
	// The VACUUMs below are paced (vacuumCostDelay), set here for the session.
	if err := conn.QueryRow(ctx, `SELECT set_config('lock_timeout', '5s', false), set_config('vacuum_cost_delay', $3, false),
        network_history_prepare($1::timestamptz - interval '1 day', $1::timestamptz + make_interval(days => $2))`,
		now, historyDaysAhead, vacuumCostDelay).Scan(new(string), new(string), &report.Created); err != nil {
		return report, fmt.Errorf("history: prepare partitions: %w", pg.MapError(err))
	}
	began := time.Now()
	for {
		batchBegan := time.Now()
		tag, err := conn.Exec(ctx, `WITH moved AS (
    DELETE FROM network_sessions WHERE id = ANY(ARRAY(
        SELECT id FROM network_sessions WHERE NOT upper_inf(period) AND upper(period) < $1 LIMIT $2))
    RETURNING `+historyColumns+`
)
INSERT INTO network_session_history (`+historyColumns+`) SELECT `+historyColumns+` FROM moved`, now.Add(-HotRetention), moveBatch)
		if err != nil {
			return report, fmt.Errorf("history: move closed sessions: %w", pg.MapError(err))
		}
		report.Moved += tag.RowsAffected()
		if tag.RowsAffected() < moveBatch {
			break
		}
		select {
		case <-ctx.Done():
			return report, fmt.Errorf("history: move closed sessions: %w", ctx.Err())
		case <-time.After(moveRest(time.Since(batchBegan), time.Since(began))):
		}
	}
	report.MoveTook = time.Since(began)
	if err := conn.QueryRow(ctx, `SELECT network_history_drop($1)`, now.Add(-retention)).Scan(&report.Dropped); err != nil {
		return report, fmt.Errorf("history: drop partitions: %w", pg.MapError(err))
	}
	// numverify must stay fast where autovacuum is off or lags (as on this
	// project's machines). Every Stop leaves a dead version of its session
	// in the hot table and every move a deleted row: at 8,000 accounting
	// requests a second the hot table held 484,058 dead rows beside 168,631
	// live ones after four minutes (155 MB), each probe of the feed and the
	// resolver wading through them, and more each minute. Plain VACUUM takes
	// no lock that blocks reads or writes. The history only receives rows:
	// vacuuming it (without index cleanup, which would scan each GiST index
	// whole) marks the new pages all-visible, so the resolver's index-only
	// scans of the past need not read the heap; pages already all-visible
	// are skipped, so old partitions cost nothing.
	//
	// Never while the hot table is empty: its statistics would then say "no
	// rows", and a statement planned while it still is (the resolver's
	// generic plan on a fresh start, with the feed about to fill the table)
	// would keep a sequential scan until the next vacuum. Vacuumed with a
	// row in it, the statistics give a density, which the planner scales by
	// the table's size at each planning. What an empty table holds dead is
	// vacuumed at the first round that finds a row.
	began = time.Now()
	var occupied bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM network_sessions)`).Scan(&occupied); err != nil {
		return report, fmt.Errorf("history: %w", pg.MapError(err))
	}
	if occupied {
		if _, err := conn.Exec(ctx, `VACUUM network_sessions`); err != nil {
			return report, fmt.Errorf("history: vacuum the hot table: %w", pg.MapError(err))
		}
	}
	if report.Moved > 0 {
		if _, err := conn.Exec(ctx, `VACUUM (INDEX_CLEANUP OFF) network_session_history`); err != nil {
			return report, fmt.Errorf("history: vacuum the history: %w", pg.MapError(err))
		}
	}
	report.VacuumTook = time.Since(began)
	return report, nil
}

// vacuumCostDelay paces this server's VACUUMs (Postgres's cost-based delay,
// which a manual VACUUM otherwise runs without): they sleep this long each
// time they have done vacuum_cost_limit's worth of page work, so that they
// do not take a core and the disk from the feed in one burst.
const vacuumCostDelay = "2ms"

// historyColumns are the columns a session keeps when it moves to history.
const historyColumns = `id, msisdn, ip, ports, period, apn, rat, imsi, nas, acct_session_id`
