-- Key material shared by the authorization server and the resource server.
-- Private parts are encrypted (AES-256-GCM) with NUMVERIFY_SECRETS_KEY.
CREATE TABLE keys (
    kid          text PRIMARY KEY,
    use          text        NOT NULL CHECK (use IN ('sig', 'enc', 'secret')),
    alg          text        NOT NULL,
    private_jwk  bytea       NOT NULL,
    public_jwk   jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    not_before   timestamptz NOT NULL DEFAULT now(),
    retire_at    timestamptz
);
CREATE INDEX keys_use_not_before ON keys (use, not_before DESC);

-- Tokens revoked before their expiry (RFC 7009, or everything a replayed code
-- issued). Kept until they would have expired; announced on channel
-- numverify_revocations with the jti as payload.
CREATE TABLE revoked_tokens (
    jti         text PRIMARY KEY,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- Access tokens already used once, for resource servers run with single-use tokens.
CREATE TABLE used_access_tokens (
    jti         text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX used_access_tokens_expires_at ON used_access_tokens (expires_at);
