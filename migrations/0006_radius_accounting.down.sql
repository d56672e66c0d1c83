DROP TABLE IF EXISTS network_accounting_stops;
DROP INDEX IF EXISTS network_sessions_nas_open;
DROP INDEX IF EXISTS network_sessions_accounting;
ALTER TABLE network_sessions
    DROP CONSTRAINT IF EXISTS network_sessions_accounting_pair,
    DROP COLUMN IF EXISTS acct_session_id,
    DROP COLUMN IF EXISTS nas;
