-- The open sessions by address key. The resolver asks of nearly every login
-- "who holds this address now", and the answer is nearly always an open
-- session: this partial B-tree finds it in a few pages, where the exclusion
-- constraint's GiST tree (four columns, lossy keys) read 5 to 28 pages for
-- an address that has a session (about 100 µs more than a miss at 1,000,000
-- open sessions). It replaces network_sessions_active (ip), which no query
-- reads by address any more (every one states the key, migration 0011), so
-- a Start still updates one partial index of open sessions and a Stop none.
DROP INDEX network_sessions_active;
CREATE INDEX network_sessions_active ON network_sessions (network_address_key(ip)) WHERE upper_inf(period);
