-- The feed's address probes (issue 11). A feed session holds an IPv4 /32 or
-- an IPv6 /64 and every port; the admin API's hold a /32, a /64 or a /128,
-- possibly a port block. Two sessions can overlap only if they share
-- network_address_key (the /32, or the /64 the /64 or /128 lies in).
--
-- The exclusion constraint (one holder per address, port and instant: the
-- guarantee) gets that key as its first column, compared with = (which
-- overlap implies, so the constraint forbids exactly what it forbade): its
-- GiST tree is then organised by address, and its check at each insert (a
-- Start, and the new version of every session a Stop or a cut closes) reads
-- a few pages rather than a few dozen at 100,000 sessions. The btree beside
-- it answers the feed's probes (the cut of a newer Start, the bounds of a
-- late one, "is this session known") with one equality, a few rows deep;
-- && stays in those queries as the exact recheck.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE FUNCTION network_address_key(ip inet) RETURNS cidr
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT network(set_masklen(ip, CASE WHEN family(ip) = 4 THEN 32 ELSE 64 END)) $$;

ALTER TABLE network_sessions DROP CONSTRAINT network_sessions_no_overlap;
ALTER TABLE network_sessions ADD CONSTRAINT network_sessions_no_overlap EXCLUDE USING gist (
    network_address_key(ip) WITH =,
    ip inet_ops WITH &&,
    ports WITH &&,
    period WITH &&
);

-- CREATE INDEX network_sessions_address ON network_sessions (network_address_key(ip), lower(period));
