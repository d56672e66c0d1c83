DROP TABLE IF EXISTS ciba_requests;
DROP TABLE IF EXISTS operator_tokens;
