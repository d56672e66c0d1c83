DROP TABLE IF EXISTS oauth2_client_assertion_jtis;
DROP TABLE IF EXISTS oauth2_requests;
DROP TABLE IF EXISTS oauth2_clients;
