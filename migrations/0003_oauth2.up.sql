-- OAuth2 clients (service providers). Secrets are server-made 256-bit values;
-- only their HMAC-SHA-256 under a key derived from NUMVERIFY_SECRETS_KEY is
-- stored (NULL for private_key_jwt clients).
CREATE TABLE oauth2_clients (
    id                          text PRIMARY KEY,
    name                        text        NOT NULL,
    secret_hash                 bytea,
    redirect_uris               text[]      NOT NULL DEFAULT '{}',
    scopes                      text[]      NOT NULL DEFAULT '{}',
    audiences                   text[]      NOT NULL DEFAULT '{}',
    grant_types                 text[]      NOT NULL DEFAULT '{authorization_code}',
    response_types              text[]      NOT NULL DEFAULT '{code}',
    token_endpoint_auth_method  text        NOT NULL
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt')),
    jwks                        jsonb,
    sector_identifier           text        NOT NULL DEFAULT '',
    allow_missing_redirect_uri  boolean     NOT NULL DEFAULT false,
    can_read_phone_number       boolean     NOT NULL DEFAULT false,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (token_endpoint_auth_method = 'private_key_jwt' OR secret_hash IS NOT NULL),
    CHECK (token_endpoint_auth_method <> 'private_key_jwt' OR jwks IS NOT NULL)
);

-- fosite request records, one row shape for every kind (Hydra-style):
-- authorization codes, PKCE and OpenID Connect sessions (keyed by the code's
-- signature), access and refresh tokens (keyed by the token's signature).
-- signature holds SHA-256 of the fosite signature, never the signature.
-- An invalidated code or revoked token is marked inactive, not deleted.
CREATE TABLE oauth2_requests (
    kind               text        NOT NULL CHECK (kind IN ('code', 'pkce', 'oidc', 'access', 'refresh')),
    signature          bytea       NOT NULL,
    request_id         text        NOT NULL,
    requested_at       timestamptz NOT NULL,
    client_id          text        NOT NULL REFERENCES oauth2_clients (id) ON DELETE CASCADE,
    subject            text        NOT NULL DEFAULT '',
    scopes             text[]      NOT NULL DEFAULT '{}',
    granted_scopes     text[]      NOT NULL DEFAULT '{}',
    audiences          text[]      NOT NULL DEFAULT '{}',
    granted_audiences  text[]      NOT NULL DEFAULT '{}',
    form               jsonb       NOT NULL DEFAULT '{}',
    session            jsonb       NOT NULL,
    active             boolean     NOT NULL DEFAULT true,
    expires_at         timestamptz,
    jti                text,
    access_signature   bytea,
    PRIMARY KEY (kind, signature)
);
CREATE INDEX oauth2_requests_request_id ON oauth2_requests (request_id, kind);
CREATE INDEX oauth2_requests_expires_at ON oauth2_requests (expires_at);
CREATE INDEX oauth2_requests_client_id ON oauth2_requests (client_id);

-- jti values of private_key_jwt client assertions already used, kept until
-- the assertion expires (replay protection, RFC 7523 §3).
CREATE TABLE oauth2_client_assertion_jtis (
    jti         text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX oauth2_client_assertion_jtis_expires_at ON oauth2_client_assertion_jtis (expires_at);
