-- The feed's address probes (issue 11). A feed session holds an IPv4 /32 or
-- an IPv6 /64 and every port; the admin API's hold a /32, a /64 or a /128,
-- possibly a port block. Two sessions can overlap only if they share
-- network_address_key (the /32, or the /64 the /64 or /128 lies in).
--
-- The exclusion constraint (one holder per address, port and instant: the
-- guarantee) gets that key as its first column, compared with = (which
-- overlap implies, so the constraint forbids exactly what it forbade). Its
-- GiST tree is then organised by address: its check at every write (a
-- Start, and the new version of each session a Stop or a cut closes) and
-- every probe of the feed and of the resolver that gives the key read a
-- few pages, not the few dozen of an inet_ops tree at 100,000 sessions
-- (about 45 µs each). Every query on network_sessions by address states
-- network_address_key(ip) = network_address_key($address) beside its
-- exact && or >>=.
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

-- The history's address index (each partition's) is led by the key too.
DROP INDEX network_session_history_ip;
CREATE INDEX network_session_history_ip ON network_session_history USING gist (network_address_key(ip), ip inet_ops, ports, period);
