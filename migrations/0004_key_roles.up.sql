-- Keys by role: each private key is sealed (AES-256-GCM) for the one role that
-- needs it. Signing keys for the authorization server (a key derived from
-- NUMVERIFY_SECRETS_KEY); the resource server's encryption key and the direct
-- key for the resource server (a key derived from
-- NUMVERIFY_RESOURCE_SECRETS_KEY), which reads only those rows. Rows of a
-- database made before roles were all sealed with the secrets key: they are
-- marked 'authz' here, and the authorization server reseals the resource
-- server's keys at its next start (SQL cannot: it has no key).
ALTER TABLE keys ADD COLUMN sealed_for text NOT NULL DEFAULT 'authz'
    CONSTRAINT keys_sealed_for_role CHECK (sealed_for IN ('authz', 'resource'));
ALTER TABLE keys ALTER COLUMN sealed_for DROP DEFAULT;
-- A signing private key is never readable with the resource server's key.
ALTER TABLE keys ADD CONSTRAINT keys_signing_sealed_for_authz CHECK (use <> 'sig' OR sealed_for = 'authz');
