-- Sessions at operator scale (issue 11). network_sessions is the hot table:
-- the sessions open now and those closed within the last minute or so
-- (network.HotRetention). Older closed sessions are moved by the network
-- server's maintenance (network/history.go) to network_session_history,
-- partitioned by day (UTC) of the period's upper bound, so a day of history
-- is dropped as one partition once past retention, and the resolver's "now"
-- reads the hot table alone.
--
-- The exclusion constraint stays on the hot table; the history has none
-- across partitions (Postgres 15 cannot): its rows were valid when they left
-- the hot table, and the feed edits history only under its per-address lock,
-- against both tables (network/accounting_sql.go).
CREATE TABLE network_session_history (
    id              bigint    NOT NULL DEFAULT nextval('network_sessions_id_seq'::regclass),
    msisdn          text      NOT NULL,
    ip              inet      NOT NULL,
    ports           int4range NOT NULL,
    period          tstzrange NOT NULL CONSTRAINT network_session_history_closed CHECK (NOT isempty(period) AND lower(period) IS NOT NULL AND NOT upper_inf(period)),
    apn             text      NOT NULL,
    rat             text      NOT NULL,
    imsi            text,
    nas             text,
    acct_session_id text
) PARTITION BY RANGE ((upper(period)));

-- Each partition gets these: "who held this address then" (lookup --at), the
-- feed's "is this session known" by (NAS, Acct-Session-Id), a subscriber's
-- sessions (list), and a detach of an already closed id.
CREATE INDEX network_session_history_ip ON network_session_history USING gist (ip inet_ops, ports, period);
CREATE INDEX network_session_history_accounting ON network_session_history (nas, acct_session_id) WHERE nas IS NOT NULL;
CREATE INDEX network_session_history_msisdn ON network_session_history (msisdn, lower(period) DESC);
CREATE INDEX network_session_history_id ON network_session_history (id);

-- Rows of a day without its partition (older than the oldest, or a partition
-- not yet made); network_history_prepare moves them into the day's partition
-- when it makes it, network_history_drop deletes them past retention.
CREATE TABLE network_session_history_default PARTITION OF network_session_history DEFAULT;

-- network_history_prepare makes the daily partitions from since through
-- through (UTC days) that do not exist yet, and returns how many it made.
CREATE FUNCTION network_history_prepare(since timestamptz, through timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day  date := (since AT TIME ZONE 'UTC')::date;
    last date := (through AT TIME ZONE 'UTC')::date;
    name text;
    lo   timestamptz;
    hi   timestamptz;
    made integer := 0;
BEGIN
    WHILE day <= last LOOP
        name := 'network_session_history_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            lo := day::timestamp AT TIME ZONE 'UTC';
            hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
            CREATE TEMP TABLE IF NOT EXISTS network_history_staging (LIKE network_session_history) ON COMMIT DROP;
            TRUNCATE network_history_staging;
            WITH moved AS (
                DELETE FROM network_session_history_default WHERE upper(period) >= lo AND upper(period) < hi RETURNING *
            )
            INSERT INTO network_history_staging SELECT * FROM moved;
            EXECUTE format('CREATE TABLE %I PARTITION OF network_session_history FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
            INSERT INTO network_session_history SELECT * FROM network_history_staging;
            made := made + 1;
        END IF;
        day := day + 1;
    END LOOP;
    RETURN made;
END $$;

-- network_history_drop drops the daily partitions whose whole day is before
-- before, deletes the default partition's rows ended before it, and returns
-- how many partitions it dropped.
CREATE FUNCTION network_history_drop(before timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part    text;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'network_session_history'::regclass
          AND c.relname ~ '^network_session_history_[0-9]{8}$'
          AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= before
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM network_session_history_default WHERE upper(period) < before;
    RETURN dropped;
END $$;

SELECT network_history_prepare(now() - interval '1 day', now() + interval '2 days');
