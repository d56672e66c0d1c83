DROP TABLE revoked_clients;
