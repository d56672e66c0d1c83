-- Clients whose every token is revoked at once (the client was deleted):
-- a resource server refuses the client's access tokens issued at or before
-- revoked_before. Kept until expires_at, when no such token can still be
-- valid; announced on channel numverify_client_revocations with the client id
-- as payload.
CREATE TABLE revoked_clients (
    client_id       text PRIMARY KEY,
    revoked_before  timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX revoked_clients_expires_at ON revoked_clients (expires_at);
