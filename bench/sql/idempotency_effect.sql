-- See bench/idempotency.py: the database side of the idempotency layer (pgbench -M prepared).
\set k random(1, 1000000000000)
BEGIN;
INSERT INTO bench_effects (owner, amount) VALUES ('bench', 1000);
END;
