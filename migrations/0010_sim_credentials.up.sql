-- SIM credentials of the simulated home network (issue 12): what the
-- entitlement server (GSMA TS.43, EAP-AKA) needs to challenge a device on
-- Wi-Fi. K and OPc are the subscriber's MILENAGE key and operator variant
-- (3GPP TS 35.206); sqn is SQN_HE, the highest sequence number the home
-- network has put in a challenge (48 bits, TS 33.102 Annex C), advanced by
-- one UPDATE per challenge and set back to SQN_MS by a resynchronisation.
-- A simulator's table: a real HSS keeps K in an HSM, never in a database.
CREATE TABLE sim_credentials (
    imsi       text        PRIMARY KEY CONSTRAINT sim_credentials_imsi CHECK (imsi ~ '^[0-9]{6,15}$'),
    msisdn     text        NOT NULL,
    k          bytea       NOT NULL CONSTRAINT sim_credentials_k CHECK (length(k) = 16),
    opc        bytea       NOT NULL CONSTRAINT sim_credentials_opc CHECK (length(opc) = 16),
    sqn        bigint      NOT NULL DEFAULT 0 CONSTRAINT sim_credentials_sqn CHECK (sqn >= 0 AND sqn < 281474976710656),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sim_credentials_msisdn ON sim_credentials (msisdn);
