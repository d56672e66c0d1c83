-- RADIUS accounting from the packet gateway (issue 11). A session the feed
-- opened carries the NAS that reported it and the gateway's Acct-Session-Id:
-- a Stop closes the session with that id from that NAS only, and
-- Accounting-On/Off close every open session of that NAS. Sessions from the
-- simulator's admin API have neither.
ALTER TABLE network_sessions
    ADD COLUMN nas             text,
    ADD COLUMN acct_session_id text,
    ADD CONSTRAINT network_sessions_accounting_pair CHECK ((nas IS NULL) = (acct_session_id IS NULL));

-- Stop, and the duplicate check of Start and Interim-Update.
CREATE INDEX network_sessions_accounting ON network_sessions (nas, acct_session_id) WHERE nas IS NOT NULL;
-- Accounting-On/Off: the open sessions of one NAS.
CREATE INDEX network_sessions_nas_open ON network_sessions (nas) WHERE nas IS NOT NULL AND upper_inf(period);

-- Stops that found no session to close: delivered before their own Start (or
-- the Start was lost). A Start or Interim-Update of that session arriving
-- later must not open it. Remembered for a while, then purged by stopped_at.
CREATE TABLE network_accounting_stops (
    nas             text        NOT NULL,
    acct_session_id text        NOT NULL,
    stopped_at      timestamptz NOT NULL,
    PRIMARY KEY (nas, acct_session_id)
);
CREATE INDEX network_accounting_stops_stopped_at ON network_accounting_stops (stopped_at);
