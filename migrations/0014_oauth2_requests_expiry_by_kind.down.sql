DROP INDEX oauth2_requests_code_expiry, oauth2_requests_pkce_expiry, oauth2_requests_oidc_expiry,
    oauth2_requests_access_expiry, oauth2_requests_refresh_expiry;
CREATE INDEX oauth2_requests_expires_at ON oauth2_requests (expires_at);
