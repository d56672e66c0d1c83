DROP TABLE IF EXISTS used_access_tokens;
DROP TABLE IF EXISTS revoked_tokens;
DROP TABLE IF EXISTS keys;
