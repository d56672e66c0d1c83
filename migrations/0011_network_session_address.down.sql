ALTER TABLE network_sessions DROP CONSTRAINT network_sessions_no_overlap;
ALTER TABLE network_sessions ADD CONSTRAINT network_sessions_no_overlap EXCLUDE USING gist (
    ip inet_ops WITH &&,
    ports WITH &&,
    period WITH &&
);
DROP INDEX network_session_history_ip;
CREATE INDEX network_session_history_ip ON network_session_history USING gist (ip inet_ops, ports, period);
DROP FUNCTION network_address_key(inet);
