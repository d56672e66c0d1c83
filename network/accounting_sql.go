package network

// The accounting statements, set-based: each takes one round of a batch
// (accounting_batch.go) as arrays, so a batch of hundreds of events costs a
// handful of statements. Within a round no two events share a session or an
// address, and an Accounting-On/Off is alone, so the rows one event touches
// are never another's.
//
// A closed session stays in the hot table (network_sessions) for
// HotRetention, then moves to history (history.go); so "is this session
// known", the cut of a newer Start and the bounds of a late one read both.
// The history's partitions whose day ended before the round's earliest
// instant (less the remembering window) are pruned when the statement
// starts: a round reads one or two days of history, whatever it holds. A
// session ended after an instant of the last 30 seconds is still in the hot
// table (it stays there HotRetention), so the cut and the bounds of an Open
// that recent do not read history at all.
//
// Every probe by address states network_address_key(ip) =
// network_address_key(address) beside its exact && (migration 0011): two
// sessions can overlap only if they share that key (the /32, or the /64 of
// an IPv6 /64 or /128), and it leads the exclusion constraint's GiST index
// (and the history's), so a probe reads the address's few entries rather
// than walking an inet_ops tree (about 45 µs each at 100,000 sessions).

const (
	// fastOpenSQL: $1 nas[], $2 session id[], $3 ip[]. The ordinals (from 1)
	// of the Opens whose session is open now: they change nothing whatever
	// else happens (an Interim-Update, a retransmitted Start), so they take
	// no lock and no transaction.
	fastOpenSQL = `SELECT u.ord FROM unnest($1::text[], $2::text[], $3::inet[]) WITH ORDINALITY AS u(nas, sid, ip, ord)
WHERE (SELECT true FROM network_sessions s
    WHERE s.nas = u.nas AND s.acct_session_id = u.sid AND s.ip = u.ip AND network_address_key(s.ip) = network_address_key(u.ip) AND upper_inf(s.period) LIMIT 1) IS NOT NULL`

	// closeSQL: $1 nas[], $2 session id[], $3 at[], $4 remember. It closes
	// each session's open rows at its instant and remembers a Stop that
	// found no row at all (open, or closed within the window). It returns
	// (ordinal, rows closed).
	closeSQL = `WITH u AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS u(nas, sid, at, ord)
), closed AS (
    UPDATE network_sessions s
    SET period = tstzrange(lower(s.period), greatest(u.at, lower(s.period) + interval '1 microsecond'), '[)')
    FROM u
    WHERE s.nas = u.nas AND s.acct_session_id = u.sid AND upper_inf(s.period)
    RETURNING u.ord
), remembered AS (
    INSERT INTO network_accounting_stops (nas, acct_session_id, stopped_at)
    SELECT u.nas, u.sid, u.at FROM u
    WHERE (SELECT true FROM network_sessions s WHERE s.nas = u.nas AND s.acct_session_id = u.sid
            AND (upper_inf(s.period) OR upper(s.period) > u.at - $4::interval) LIMIT 1) IS NULL
        AND (SELECT true FROM network_session_history h WHERE h.nas = u.nas AND h.acct_session_id = u.sid
            AND upper(h.period) > u.at - $4::interval
            AND upper(h.period) > (SELECT min(at) FROM u) - $4::interval LIMIT 1) IS NULL
    ON CONFLICT (nas, acct_session_id) DO UPDATE SET stopped_at = greatest(network_accounting_stops.stopped_at, excluded.stopped_at)
)
SELECT u.ord, coalesce(c.n, 0) FROM u LEFT JOIN (SELECT ord, count(*) AS n FROM closed GROUP BY ord) c USING (ord)`

	// closeNASSQL: $1 nas, $2 at. It closes every session the NAS began at
	// or before its instant.
	closeNASSQL = `UPDATE network_sessions
SET period = tstzrange(lower(period), greatest($2::timestamptz, lower(period) + interval '1 microsecond'), '[)')
WHERE nas = $1 AND upper_inf(period) AND lower(period) <= $2::timestamptz`

	// openStateSQL: $1 nas[], $2 session id[], $3 ip[], $4 at[], $5 remember.
	// It says of each Open whether its session is known (open; closed
	// within the window; stopped before it began) and, for each new one,
	// cuts at its instant every session holding its address at or after it
	// that began at or before it. It returns (ordinal, state, sessions cut).
	openStateSQL = `WITH u AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::inet[], $4::timestamptz[]) WITH ORDINALITY AS u(nas, sid, ip, at, ord)
), state AS (
    SELECT u.*, CASE
        WHEN (SELECT true FROM network_sessions s WHERE s.nas = u.nas AND s.acct_session_id = u.sid AND s.ip = u.ip AND network_address_key(s.ip) = network_address_key(u.ip)
            AND upper_inf(s.period) LIMIT 1) IS NOT NULL THEN 'open'
        WHEN (SELECT true FROM network_sessions s WHERE s.nas = u.nas AND s.acct_session_id = u.sid AND s.ip = u.ip AND network_address_key(s.ip) = network_address_key(u.ip)
            AND upper(s.period) > u.at - $5::interval LIMIT 1) IS NOT NULL THEN 'closed'
        WHEN (SELECT true FROM network_session_history h WHERE h.nas = u.nas AND h.acct_session_id = u.sid AND h.ip = u.ip
            AND upper(h.period) > u.at - $5::interval
            AND upper(h.period) > (SELECT min(at) FROM u) - $5::interval LIMIT 1) IS NOT NULL THEN 'closed'
        WHEN (SELECT true FROM network_accounting_stops x WHERE x.nas = u.nas AND x.acct_session_id = u.sid
            AND x.stopped_at > u.at - $5::interval LIMIT 1) IS NOT NULL THEN 'stopped'
        ELSE 'new' END AS s
    FROM u
), fresh AS (
    SELECT * FROM state WHERE s = 'new'
), cut_hot AS (
    UPDATE network_sessions h
    SET period = tstzrange(lower(h.period), greatest(f.at, lower(h.period) + interval '1 microsecond'), '[)')
    FROM fresh f
    WHERE network_address_key(h.ip) = network_address_key(f.ip) AND h.ip && f.ip AND h.period && tstzrange(f.at, NULL, '[)') AND lower(h.period) <= f.at
    RETURNING f.ord
), cut_history AS (
    UPDATE network_session_history h
    SET period = tstzrange(lower(h.period), greatest(f.at, lower(h.period) + interval '1 microsecond'), '[)')
    FROM fresh f
    WHERE network_address_key(h.ip) = network_address_key(f.ip) AND h.ip && f.ip AND h.period && tstzrange(f.at, NULL, '[)') AND lower(h.period) <= f.at
        AND upper(h.period) > (SELECT min(at) FROM u) AND f.at < now() - interval '30 seconds'
    RETURNING f.ord
)
SELECT st.ord, st.s, coalesce(a.n, 0) + coalesce(b.n, 0) FROM state st
LEFT JOIN (SELECT ord, count(*) AS n FROM cut_hot GROUP BY ord) a USING (ord)
LEFT JOIN (SELECT ord, count(*) AS n FROM cut_history GROUP BY ord) b USING (ord)`

	// openInsertSQL: $1-$5 as above, $6 msisdn[], $7 apn[], $8 rat[], $9
	// imsi[]. It records each new session (still unknown after the cut)
	// from its instant (or just after a session that began at that very
	// instant) until the next newer session on its address, if any (a late
	// Start: history only). It returns (ordinal, inserted, inserted open, a
	// newer session exists) for each new one.
	//
	// It has two forms. The plain INSERT is the one a batch runs: the
	// batch's advisory locks keep every other feed writer off its
	// addresses, so only a writer outside the feed (the admin API) can
	// hold one, and then the exclusion constraint fails the whole
	// transaction, which is run again with openInsertTolerantSQL, whose ON
	// CONFLICT DO NOTHING leaves that one Open out (retried alone, see
	// ApplyAccounting). The tolerant form is not the default because a
	// speculative insertion checks an exclusion constraint twice: 1,000
	// Starts at 100,000 sessions took 153 ms with it and 68 ms without.
	openInsertSQL         = openInsertHead + openInsertTail
	openInsertTolerantSQL = openInsertHead + `
    ON CONFLICT DO NOTHING` + openInsertTail

	openInsertHead = `WITH u AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::inet[], $4::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[])
        WITH ORDINALITY AS u(nas, sid, ip, at, msisdn, apn, rat, imsi, ord)
), fresh AS (
    SELECT u.* FROM u
    WHERE (SELECT true FROM network_sessions s WHERE s.nas = u.nas AND s.acct_session_id = u.sid AND s.ip = u.ip AND network_address_key(s.ip) = network_address_key(u.ip)
            AND (upper_inf(s.period) OR upper(s.period) > u.at - $5::interval) LIMIT 1) IS NULL
        AND (SELECT true FROM network_session_history h WHERE h.nas = u.nas AND h.acct_session_id = u.sid AND h.ip = u.ip
            AND upper(h.period) > u.at - $5::interval
            AND upper(h.period) > (SELECT min(at) FROM u) - $5::interval LIMIT 1) IS NULL
        AND (SELECT true FROM network_accounting_stops x WHERE x.nas = u.nas AND x.acct_session_id = u.sid
            AND x.stopped_at > u.at - $5::interval LIMIT 1) IS NULL
), bounds AS (
    SELECT f.*,
        greatest(f.at,
            (SELECT max(upper(s.period)) FROM network_sessions s
                WHERE network_address_key(s.ip) = network_address_key(f.ip) AND s.ip && f.ip AND s.period && tstzrange(f.at, NULL, '[)') AND lower(s.period) <= f.at),
            (SELECT max(upper(h.period)) FROM network_session_history h
                WHERE network_address_key(h.ip) = network_address_key(f.ip) AND h.ip && f.ip AND h.period && tstzrange(f.at, NULL, '[)') AND lower(h.period) <= f.at
                    AND upper(h.period) > (SELECT min(at) FROM u) AND f.at < now() - interval '30 seconds')) AS s,
        least(
            (SELECT min(lower(s.period)) FROM network_sessions s
                WHERE network_address_key(s.ip) = network_address_key(f.ip) AND s.ip && f.ip AND s.period && tstzrange(f.at, NULL, '()') AND lower(s.period) > f.at),
            (SELECT min(lower(h.period)) FROM network_session_history h
                WHERE network_address_key(h.ip) = network_address_key(f.ip) AND h.ip && f.ip AND h.period && tstzrange(f.at, NULL, '()') AND lower(h.period) > f.at
                    AND upper(h.period) > (SELECT min(at) FROM u) AND f.at < now() - interval '30 seconds')) AS e
    FROM fresh f
), inserted AS (
    INSERT INTO network_sessions (msisdn, ip, period, apn, rat, imsi, nas, acct_session_id)
    SELECT msisdn, ip, tstzrange(s, e, '[)'), apn, rat, imsi, nas, sid FROM bounds WHERE e IS NULL OR e > s`
	openInsertTail = `
    RETURNING nas, acct_session_id, ip
)
SELECT b.ord, in_table, in_table AND b.e IS NULL, b.e IS NOT NULL
FROM (SELECT b.*, (b.nas, b.sid, b.ip) IN (SELECT nas, acct_session_id, ip FROM inserted) AS in_table FROM bounds b) AS b`
)
