--
-- scale: claim(), expire(), the moderation queue and the operators' queue
-- cost in proportion to what they return, not to the table: attach()
-- makes a partial index for each, and the planner uses it for the very
-- statements the functions run (payout.claim_query(), payout.expire_query()),
-- on a plain and on a partitioned table of 20,000 payouts nearly all final.
-- payout.check() says what a table lacks.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT '2026-01-01'
);
CREATE TABLE parts (LIKE payouts INCLUDING DEFAULTS, region text NOT NULL,
					PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parts_a PARTITION OF parts FOR VALUES IN ('a');
CREATE TABLE parts_b PARTITION OF parts FOR VALUES IN ('b');
-- Loaded before attach, as a table that existed before would be.
INSERT INTO payouts (id, status, resolution, autoprocess, created_at)
SELECT g, CASE WHEN g > 19900 THEN 'READY' WHEN g > 19800 THEN 'CREATED'
			   ELSE 'PROCESSED' END::payout.status,
	   CASE WHEN g % 50 = 0 AND g > 19800 THEN 'UNKNOWN' END::payout.resolution,
	   g % 7 <> 0, '2026-01-01'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 20000) AS g;
INSERT INTO parts SELECT *, CASE WHEN id % 2 = 0 THEN 'a' ELSE 'b' END FROM payouts;

SELECT payout.attach('payouts');
SELECT payout.attach('parts');
SELECT indexrelid::regclass AS index, pg_get_expr(indpred, indrelid) AS predicate
FROM pg_index WHERE indrelid IN ('payouts'::regclass, 'parts'::regclass) AND NOT indisprimary
ORDER BY 1;
ANALYZE payouts, parts;

-- The statements, as the planner runs them: with the settings claim() and
-- expire() carry (no hash or merge join, which would read the whole table
-- to join a batch back).
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT payout.claim_query('payouts') AS claim_payouts \gset
SELECT payout.claim_query('payouts', manual => true) AS claim_manual \gset
SELECT payout.expire_query('payouts') AS expire_payouts \gset
SELECT payout.claim_query('parts') AS claim_parts \gset
SELECT payout.expire_query('parts') AS expire_parts \gset
PREPARE claim_payouts(int) AS :claim_payouts;
PREPARE claim_manual(int) AS :claim_manual;
PREPARE expire_payouts(interval, int) AS :expire_payouts;
PREPARE claim_parts(int) AS :claim_parts;
PREPARE expire_parts(interval, int) AS :expire_parts;
EXPLAIN (COSTS OFF) EXECUTE claim_payouts(100);
EXPLAIN (COSTS OFF) EXECUTE claim_manual(100);
EXPLAIN (COSTS OFF) EXECUTE expire_payouts('1 day', 1000);
EXPLAIN (COSTS OFF) EXECUTE claim_parts(100);
EXPLAIN (COSTS OFF) EXECUTE expire_parts('1 day', 1000);
-- The queues of doc/workflow.md.
EXPLAIN (COSTS OFF)
SELECT id, status, resolution, created_at FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, created_at;
EXPLAIN (COSTS OFF)
SELECT id, created_at FROM parts
WHERE status = 'READY' AND autoprocess IS NOT TRUE
  AND NOT payout.requires_moderation(status, resolution)
ORDER BY created_at
LIMIT 20;

-- And they do what they say.
SELECT count(*) AS claimed FROM payout.claim('payouts', 50);
SELECT count(*) AS claimed_manual FROM payout.claim('payouts', 50, manual => true);
SELECT payout.expire('payouts', '1 day') AS expired;
SELECT status, count(*) FROM payouts WHERE id > 19800 GROUP BY status ORDER BY status;

-- payout.check(): everything is there; then, without the indexes, what is
-- missing and the statement that makes it.
SELECT * FROM payout.check('payouts');
SELECT * FROM payout.check('parts');
RESET enable_hashjoin;
RESET enable_mergejoin;
CREATE TABLE bare (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT '2026-01-01'
);
SELECT payout.attach('bare', indexes => false);
SELECT * FROM payout.check('bare');
-- Attaching again with indexes makes only the missing ones.
SELECT payout.detach('bare');
CREATE INDEX bare_payout_ready ON bare (id) WHERE status = 'READY';
SELECT payout.attach('bare');
SELECT indexrelid::regclass AS index FROM pg_index
WHERE indrelid = 'bare'::regclass AND NOT indisprimary ORDER BY 1;
SELECT payout.attach('bare', indexes => NULL);

DROP TABLE payouts, parts, bare;
DROP EXTENSION payout;
