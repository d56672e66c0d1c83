-- Each client's registration names the algorithm of its ID tokens (OpenID
-- Connect Dynamic Client Registration: id_token_signed_response_alg). A client
-- registered without one gets RS256, OpenID Connect's default, which every
-- relying party supports; `numverify client create` asks for ES256 unless
-- told otherwise. Access tokens are signed with ES256 whatever this says.
ALTER TABLE oauth2_clients ADD COLUMN id_token_signed_response_alg text NOT NULL DEFAULT 'RS256'
    CONSTRAINT oauth2_clients_id_token_alg CHECK (id_token_signed_response_alg IN ('RS256', 'ES256'));
