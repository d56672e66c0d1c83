-- Operator tokens (issue 12): short-lived, single-use tokens an entitlement
-- server (GSMA TS.43, after EAP-AKA) mints for a subscriber and the one
-- client that may redeem them, through the JWT-bearer grant or CIBA. Only
-- the SHA-256 of the token is kept; redemption is one UPDATE, so of
-- concurrent redemptions exactly one wins.
CREATE TABLE operator_tokens (
    token_hash  bytea       PRIMARY KEY,
    msisdn      text        NOT NULL,
    client_id   text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    redeemed_at timestamptz
);
CREATE INDEX operator_tokens_expires_at ON operator_tokens (expires_at);

-- CIBA authentication requests (poll mode), keyed by the SHA-256 of the
-- auth_req_id. The subscriber is already known (the operator token proved
-- it); approval is ready at ready_at, or denied.
CREATE TABLE ciba_requests (
    auth_req_id_hash bytea       PRIMARY KEY,
    client_id        text        NOT NULL,
    msisdn           text        NOT NULL,
    subject          text        NOT NULL,
    scopes           text[]      NOT NULL,
    amr              text        NOT NULL,
    denied           boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL,
    ready_at         timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    poll_interval    integer     NOT NULL,
    last_polled_at   timestamptz,
    issued_at        timestamptz
);
CREATE INDEX ciba_requests_expires_at ON ciba_requests (expires_at);
