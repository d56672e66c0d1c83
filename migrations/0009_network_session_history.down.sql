INSERT INTO network_sessions (id, msisdn, ip, ports, period, apn, rat, imsi, nas, acct_session_id)
OVERRIDING SYSTEM VALUE
SELECT id, msisdn, ip, ports, period, apn, rat, imsi, nas, acct_session_id FROM network_session_history
ON CONFLICT DO NOTHING;
DROP FUNCTION IF EXISTS network_history_drop(timestamptz);
DROP FUNCTION IF EXISTS network_history_prepare(timestamptz, timestamptz);
DROP TABLE IF EXISTS network_session_history;
