-- See bench/idempotency.py: the database side of the idempotency layer (pgbench -M prepared).
\set k random(1, 1000000000000)
\set u random(1, 100000)
BEGIN;
SELECT * FROM idempotency_claim('user:' || :u, :k::text, :k);
INSERT INTO bench_effects (owner, amount) VALUES ('bench', 1000);
INSERT INTO idempotency_keys (scope, key, fingerprint, status_code, body, created_at) VALUES ('user:' || :u, :k::text, sha256(:k::text::bytea), 201, decode('7b226f6b223a747275652c22616d6f756e74223a313030307d', 'hex'), now());
END;
