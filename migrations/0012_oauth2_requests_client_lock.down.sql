DELETE FROM oauth2_requests r WHERE NOT EXISTS (SELECT 1 FROM oauth2_clients c WHERE c.id = r.client_id);
ALTER TABLE oauth2_requests ADD CONSTRAINT oauth2_requests_client_id_fkey
    FOREIGN KEY (client_id) REFERENCES oauth2_clients (id) ON DELETE CASCADE;
