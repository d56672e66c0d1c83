-- network_address_key (migration 0011) said its mask length with a CASE.
-- Postgres inlines a STRICT SQL function into the statement that calls it
-- only when its body is strict too, and a CASE is not: so every call went
-- through the SQL-function executor (fmgr_sql: a query set up and run per
-- call). It is in every probe of the feed and of the resolver, and in the
-- expression of the exclusion constraint's index and of the history's, so
-- each insert into them evaluated it that way too: about 10 % of Postgres's
-- time under the RADIUS feed (perf), and 1.7 µs a call against 0.25 µs
-- inlined (count over 260,000 sessions: 443–620 ms against 64–88 ms).
--
-- The same function, with the mask length as arithmetic on family() (4 or 6):
-- 16 * 4 - 32 = 32, 16 * 6 - 32 = 64. Every value it returns is the one it
-- returned, so the indexes built on it stay valid. A backend that cached an
-- index's expression before this migration keeps the old form until that
-- cache entry is rebuilt (the next VACUUM or ANALYZE of the table, or a new
-- connection); meanwhile its probes use the index's other columns, as
-- before migration 0011.
CREATE OR REPLACE FUNCTION network_address_key(ip inet) RETURNS cidr
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT network(set_masklen(ip, 16 * family(ip) - 32)) $$;
