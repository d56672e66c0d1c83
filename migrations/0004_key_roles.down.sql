-- Before roles, every private key was sealed with the secrets key: keys sealed
-- for the resource server cannot be read back that way. Drop them; the
-- authorization server makes new ones at its next start (tokens sealed to the
-- dropped ones are refused).
DELETE FROM keys WHERE sealed_for = 'resource';
ALTER TABLE keys DROP CONSTRAINT keys_signing_sealed_for_authz;
ALTER TABLE keys DROP COLUMN sealed_for;
