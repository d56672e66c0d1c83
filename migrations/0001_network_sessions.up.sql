-- The simulated mobile core: which subscriber holds which address (and port
-- block, behind CGNAT) during which period. Detach closes the period; rows are
-- never rewritten otherwise, so "who held 10.1.2.3:40001 at 14:02" has one answer.
CREATE TABLE network_sessions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msisdn      text      NOT NULL CHECK (msisdn ~ '^\+[1-9][0-9]{4,14}$'),
    ip          inet      NOT NULL,
    ports       int4range NOT NULL DEFAULT int4range(0, 65535, '[]'),
    period      tstzrange NOT NULL DEFAULT tstzrange(now(), NULL, '[)'),
    apn         text      NOT NULL DEFAULT 'internet',
    rat         text      NOT NULL DEFAULT 'NR',
    imsi        text,
    CONSTRAINT network_sessions_ip_shape CHECK (
        (family(ip) = 4 AND masklen(ip) = 32) OR (family(ip) = 6 AND masklen(ip) IN (64, 128))
    ),
    CONSTRAINT network_sessions_ports_bounds CHECK (
        NOT isempty(ports) AND lower(ports) >= 0 AND upper(ports) <= 65536
    ),
    CONSTRAINT network_sessions_period_valid CHECK (NOT isempty(period) AND lower(period) IS NOT NULL),
    -- Two subscribers can never hold the same address and port at the same instant.
    CONSTRAINT network_sessions_no_overlap EXCLUDE USING gist (
        ip inet_ops WITH &&,
        ports WITH &&,
        period WITH &&
    )
);

-- The exclusion constraint's GiST index serves the resolver's lookups
-- (ip >>= $addr AND ports @> $port AND period @> $at).
CREATE INDEX network_sessions_msisdn ON network_sessions (msisdn, lower(period) DESC);
-- Active sessions (open period) for listing and pool allocation.
CREATE INDEX network_sessions_active ON network_sessions (ip) WHERE upper_inf(period);
