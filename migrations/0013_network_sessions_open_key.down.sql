DROP INDEX network_sessions_active;
CREATE INDEX network_sessions_active ON network_sessions (ip) WHERE upper_inf(period);
