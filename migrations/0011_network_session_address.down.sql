DROP INDEX IF EXISTS network_sessions_address;
ALTER TABLE network_sessions DROP CONSTRAINT network_sessions_no_overlap;
ALTER TABLE network_sessions ADD CONSTRAINT network_sessions_no_overlap EXCLUDE USING gist (
    ip inet_ops WITH &&,
    ports WITH &&,
    period WITH &&
);
DROP FUNCTION network_address_key(inet);
