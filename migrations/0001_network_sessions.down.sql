DROP TABLE IF EXISTS network_sessions;
