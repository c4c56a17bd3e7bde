-- payout.claim() and payout.expire(): taking work, and retiring stale work.
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
SELECT payout.attach('payouts');
INSERT INTO payouts (id, amount) SELECT g, g FROM generate_series(1, 10) AS g;
UPDATE payouts SET status = 'READY' WHERE id <= 8;
-- 3 is held; 8 is released again, so claimable.
UPDATE payouts SET resolution = 'CONNECTION_ERROR' WHERE id IN (3, 8);
UPDATE payouts SET resolution = 'OK' WHERE id = 8;

-- Claims take READY payouts that are not held, in key order, up to batch.
SELECT * FROM payout.claim('payouts', 3) AS key ORDER BY key::bigint;
SELECT * FROM payout.claim('payouts', 100) AS key ORDER BY key::bigint;
SELECT * FROM payout.claim('payouts', 100) AS key ORDER BY key::bigint;
SELECT id, status, resolution FROM payouts ORDER BY id;

-- A claim inside a transaction that rolls back claims nothing.
UPDATE payouts SET status = 'READY' WHERE id = 9;
BEGIN;
SELECT * FROM payout.claim('payouts', 5);
ROLLBACK;
SELECT id, status FROM payouts WHERE id = 9;

-- Bad input: a clear error each, nothing changes.
SELECT payout.claim('payouts', 0);
SELECT payout.claim('payouts', -5);
SELECT payout.claim('payouts', NULL);
SELECT payout.claim(NULL, 5);
SELECT payout.claim('no_such_table', 5);
CREATE TABLE unattached (id int PRIMARY KEY, status payout.status);
SELECT payout.claim('unattached', 5);
CREATE TABLE nokey (id int, status payout.status NOT NULL);
SELECT payout.attach('nokey', history => false);
SELECT payout.claim('nokey', 5);
SELECT id, status FROM payouts WHERE id = 9;

-- A composite key comes back as a row literal; custom column names work.
CREATE TABLE multi (
	region text, seq int, state payout.status NOT NULL, outcome payout.resolution,
	PRIMARY KEY (region, seq)
);
SELECT payout.attach('multi', 'state', 'outcome');
INSERT INTO multi VALUES ('eu', 1, 'CREATED'), ('us west', 2, 'CREATED'), ('eu', 3, 'CREATED');
UPDATE multi SET state = 'READY';
UPDATE multi SET outcome = 'GENERAL_ERROR' WHERE seq = 3;
SELECT * FROM payout.claim('multi', 10) AS key ORDER BY key;
SELECT region, seq, state FROM multi ORDER BY region, seq;

-- The largest batch claims every claimable payout at once: all READY ones
-- that are not held, and nothing else.
CREATE TABLE many (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('many');
INSERT INTO many (id) SELECT g FROM generate_series(1, 50) AS g;
UPDATE many SET status = 'READY' WHERE id % 10 <> 0;
UPDATE many SET resolution = 'UNKNOWN' WHERE id % 7 = 0;
SELECT status, payout.requires_moderation(status, resolution) AS held, count(*)
FROM many GROUP BY 1, 2 ORDER BY 1, 2;
CREATE TEMP TABLE claimed AS
SELECT key FROM payout.claim('many', 2147483647) AS key;
-- As many keys as there were claimable payouts, each once, and each of them
-- is now INVOKING without a resolution.
SELECT count(*) AS keys, count(DISTINCT key) AS distinct_keys,
	   min(key::int) AS first, max(key::int) AS last
FROM claimed;
SELECT m.status, m.resolution, count(*)
FROM claimed c JOIN many m ON m.id = c.key::int
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT status, payout.requires_moderation(status, resolution) AS held, count(*)
FROM many GROUP BY 1, 2 ORDER BY 1, 2;
-- Nothing claimable is left.
SELECT count(*) AS claimed_again FROM payout.claim('many', 2147483647);
DROP TABLE claimed;

-- A partitioned table: attached once, claimed from as a whole.  The claim
-- takes keys from every partition, in key order, and no held payout.
CREATE TABLE by_day (
	id int NOT NULL,
	created_at date NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE by_day_1 PARTITION OF by_day FOR VALUES FROM ('2026-01-01') TO ('2026-01-02');
CREATE TABLE by_day_2 PARTITION OF by_day FOR VALUES FROM ('2026-01-02') TO ('2026-01-03');
SELECT payout.attach('by_day');
-- A partition made after attach gets the triggers too.
CREATE TABLE by_day_3 PARTITION OF by_day FOR VALUES FROM ('2026-01-03') TO ('2026-01-04');
INSERT INTO by_day (id, created_at)
SELECT g, date '2026-01-01' + g % 3 FROM generate_series(1, 12) AS g;
UPDATE by_day SET status = 'READY' WHERE id <> 12;
-- One payout held in each partition.
UPDATE by_day SET resolution = 'CONNECTION_ERROR' WHERE id IN (1, 2, 3);
SELECT tableoid::regclass AS part, id, status, resolution FROM by_day ORDER BY id;
SELECT * FROM payout.claim('by_day', 4) AS key ORDER BY key;
SELECT * FROM payout.claim('by_day', 2147483647) AS key ORDER BY key;
-- Claimed payouts in all three partitions; the held ones and the CREATED
-- one stay as they were.
SELECT tableoid::regclass AS part, id, status, resolution FROM by_day ORDER BY id;
SELECT tableoid::regclass AS part, count(*) AS invoking
FROM by_day WHERE status = 'INVOKING' GROUP BY 1 ORDER BY 1;

-- expire(): stale CREATED, READY and PENDING payouts that are not held.
CREATE TABLE stale (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL,
	queued_on date
);
SELECT payout.attach('stale');
INSERT INTO stale (id, created_at, queued_on)
SELECT g, now() - (g || ' hours')::interval, current_date - g
FROM generate_series(1, 12) AS g;
-- 1..12 hours old: move some along.
UPDATE stale SET status = 'READY' WHERE id IN (2, 3, 4, 5, 6, 7, 8, 9, 10);
UPDATE stale SET status = 'INVOKING' WHERE id IN (4, 5, 6, 7, 8);
UPDATE stale SET status = 'PENDING' WHERE id IN (5, 6, 7, 8);
UPDATE stale SET status = 'PROCESSING' WHERE id = 8;
UPDATE stale SET resolution = 'UNKNOWN' WHERE id IN (3, 6);
SELECT id, status, resolution FROM stale ORDER BY id;
SELECT payout.expire('stale', '5.5 hours');
SELECT id, status, resolution FROM stale ORDER BY id;
-- Run again: nothing left to expire.
SELECT payout.expire('stale', '5.5 hours');
-- Another column, of type date.
SELECT payout.expire('stale', '2 days', 'queued_on');
SELECT id, status FROM stale WHERE status = 'EXPIRED' ORDER BY id;

-- Zero expires every stale payout that is not held.
SELECT payout.expire('stale', '0');
SELECT id, status FROM stale WHERE status <> 'EXPIRED' ORDER BY id;
-- Bad input.
SELECT count(*) AS stale_not_expired FROM stale WHERE status <> 'EXPIRED';
SELECT payout.expire('stale', '-1 hour');
SELECT payout.expire('stale', NULL);
SELECT payout.expire('stale', '1 hour', 'no_such_column');
SELECT payout.expire('stale', '1 hour', 'resolution');
SELECT payout.expire('unattached', '1 hour');
SELECT payout.expire(NULL, '1 hour');
SELECT count(*) AS stale_not_expired FROM stale WHERE status <> 'EXPIRED';

-- A since column of type timestamp (without time zone) works too; it is
-- compared in the session's time zone.
CREATE TABLE stale_local (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamp NOT NULL
);
SELECT payout.attach('stale_local');
INSERT INTO stale_local (id, created_at)
SELECT g, localtimestamp - (g || ' hours')::interval
FROM generate_series(1, 6) AS g;
UPDATE stale_local SET status = 'READY' WHERE id IN (2, 5);
-- 6 is old but held, so it stays.
UPDATE stale_local SET resolution = 'UNKNOWN' WHERE id = 6;
SELECT payout.expire('stale_local', '3.5 hours');
SELECT id, status, resolution FROM stale_local ORDER BY id;

-- Without since_column, expire() needs a created_at column: a table without
-- one gets a clear error and nothing changes.
CREATE TABLE undated (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('undated');
INSERT INTO undated (id) VALUES (1), (2);
SELECT payout.expire('undated', '0');
\echo :SQLSTATE
SELECT id, status FROM undated ORDER BY id;

-- Columns renamed or dropped after attach: the trigger keeps the names it
-- was attached with.  Status renamed, with history: claim, expire and plain
-- UPDATEs all fail, and nothing changes.
CREATE TABLE renamed (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
SELECT payout.attach('renamed');
INSERT INTO renamed (id) VALUES (1), (2);
UPDATE renamed SET status = 'READY' WHERE id = 1;
ALTER TABLE renamed RENAME COLUMN status TO state;
SELECT * FROM payout.attachment('renamed');
SELECT payout.claim('renamed', 10);
\echo :SQLSTATE
SELECT payout.expire('renamed', '0');
\echo :SQLSTATE
UPDATE renamed SET state = 'INVOKING' WHERE id = 1;
\echo :SQLSTATE
SELECT id, state, resolution FROM renamed ORDER BY id;
-- The history trigger's WHEN clause uses the resolution column, so it
-- cannot be dropped while history is on.
ALTER TABLE renamed DROP COLUMN resolution;
SELECT id, state, resolution FROM renamed ORDER BY id;

-- Without history, the resolution column can be dropped after attach.
CREATE TABLE dropped (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
-- (indexes => false: the indexes attach makes name the status column,
-- which then could not be retyped below.)
SELECT payout.attach('dropped', history => false, indexes => false);
INSERT INTO dropped (id) VALUES (1), (2);
UPDATE dropped SET status = 'READY' WHERE id = 1;
ALTER TABLE dropped DROP COLUMN resolution;
SELECT * FROM payout.attachment('dropped');
SELECT payout.claim('dropped', 10);
\echo :SQLSTATE
SELECT payout.expire('dropped', '0');
\echo :SQLSTATE
UPDATE dropped SET status = 'INVOKING' WHERE id = 1;
\echo :SQLSTATE
SELECT id, status FROM dropped ORDER BY id;
-- And with the status column renamed as well.
ALTER TABLE dropped RENAME COLUMN status TO state;
SELECT * FROM payout.attachment('dropped');
SELECT payout.claim('dropped', 10);
\echo :SQLSTATE
SELECT payout.expire('dropped', '0');
\echo :SQLSTATE
UPDATE dropped SET state = 'INVOKING' WHERE id = 1;
\echo :SQLSTATE
SELECT id, state FROM dropped ORDER BY id;
-- Attached again under the new name, then retyped: the type is checked
-- too.  The error fields name the table and, for the type, the column.
SELECT payout.detach('dropped');
SELECT payout.attach('dropped', 'state', history => false, indexes => false);
ALTER TABLE dropped ALTER COLUMN state TYPE text;
SELECT payout.claim('dropped', 10);
\echo :SQLSTATE
DO $$
DECLARE
	e_schema text;
	e_table text;
	e_column text;
BEGIN
	FOR stmt IN 1 .. 3 LOOP
		BEGIN
			IF stmt = 1 THEN
				PERFORM payout.claim('dropped', 10);
			ELSIF stmt = 2 THEN
				PERFORM payout.claim('renamed', 10);
			ELSE
				PERFORM payout.expire('undated', '0');
			END IF;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS e_schema = SCHEMA_NAME, e_table = TABLE_NAME,
									e_column = COLUMN_NAME;
			RAISE NOTICE 'schema "%" table "%" column "%"', e_schema, e_table, e_column;
		END;
	END LOOP;
END
$$;
SELECT id, state FROM dropped ORDER BY id;

-- Privileges: claim and expire run with the caller's rights.  A processor
-- that is not a superuser but may select and update the table claims and
-- expires.
-- 9 and 10 are claimable, 10 and 11 are stale (3 is held).
UPDATE payouts SET status = 'READY' WHERE id = 10;
INSERT INTO payouts (id, amount) VALUES (11, 11);
UPDATE payouts SET created_at = now() - interval '2 days' WHERE id IN (10, 11);
SELECT id, status, resolution FROM payouts ORDER BY id;
CREATE ROLE regress_payout_processor;
GRANT SELECT, UPDATE ON payouts TO regress_payout_processor;
SET ROLE regress_payout_processor;
SELECT rolsuper FROM pg_roles WHERE rolname = current_user;
SELECT * FROM payout.claim('payouts', 1) AS key;
SELECT payout.expire('payouts', '1 day');
RESET ROLE;
SELECT id, status, resolution FROM payouts ORDER BY id;

-- A role that may not update the table can neither claim nor expire
-- (42501), and nothing changes.
INSERT INTO payouts (id, amount, created_at) VALUES (12, 12, now() - interval '2 days');
UPDATE payouts SET status = 'READY' WHERE id = 12;
CREATE ROLE regress_payout_reader;
GRANT SELECT ON payouts TO regress_payout_reader;
SET ROLE regress_payout_reader;
SELECT payout.claim('payouts', 1);
\echo :SQLSTATE
SELECT payout.expire('payouts', '1 hour');
\echo :SQLSTATE
RESET ROLE;
SELECT id, status, resolution FROM payouts ORDER BY id;

DROP TABLE payouts, unattached, nokey, multi, many, by_day, stale,
	stale_local, undated, renamed, dropped;
DROP ROLE regress_payout_processor, regress_payout_reader;
DROP EXTENSION payout;
