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
SELECT payout.expire('stale', '-1 hour');
SELECT payout.expire('stale', NULL);
SELECT payout.expire('stale', '1 hour', 'no_such_column');
SELECT payout.expire('stale', '1 hour', 'resolution');
SELECT payout.expire('unattached', '1 hour');
SELECT payout.expire(NULL, '1 hour');

-- Privileges: a role that may not update the table can neither claim nor
-- expire.
CREATE ROLE regress_payout_reader;
GRANT SELECT ON payouts TO regress_payout_reader;
SET ROLE regress_payout_reader;
SELECT payout.claim('payouts', 1);
SELECT payout.expire('payouts', '1 hour');
RESET ROLE;

DROP TABLE payouts, unattached, nokey, multi, stale;
DROP ROLE regress_payout_reader;
DROP EXTENSION payout;
