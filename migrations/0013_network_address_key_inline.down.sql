CREATE OR REPLACE FUNCTION network_address_key(ip inet) RETURNS cidr
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT network(set_masklen(ip, CASE WHEN family(ip) = 4 THEN 32 ELSE 64 END)) $$;
