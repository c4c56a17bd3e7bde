--
-- dml: the transition trigger is enforced through every write path: COPY,
-- INSERT ... ON CONFLICT, UPDATE ... FROM, MERGE, partitioned tables,
-- writable CTEs, PL/pgSQL, and other BEFORE triggers that change the row.
--
CREATE EXTENSION payout;

-- Runs a statement that must fail and prints the error's SQLSTATE and the
-- fields that errtablecol() and friends fill in.
CREATE FUNCTION show_error(stmt text)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
	e_state text;
	e_schema text;
	e_table text;
	e_column text;
	e_constraint text;
BEGIN
	EXECUTE stmt;
	RAISE NOTICE 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS
		e_state = RETURNED_SQLSTATE,
		e_schema = SCHEMA_NAME,
		e_table = TABLE_NAME,
		e_column = COLUMN_NAME,
		e_constraint = CONSTRAINT_NAME;
	RAISE NOTICE 'sqlstate % schema "%" table "%" column "%" constraint "%"',
		e_state, e_schema, e_table, e_column, e_constraint;
END
$$;

CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
-- delete_unfinished: the write paths below delete payouts that are not
-- final (sql/hostile.sql tests the default, which refuses that).
SELECT payout.attach('payouts', delete_unfinished => true);

--
-- COPY
--
COPY payouts (id, amount, status) FROM STDIN;
1	10.00	CREATED
2	20.00	CREATED
3	30.00	CREATE_FAILED
4	40.00	CREATED
\.
SELECT * FROM payouts ORDER BY id;

-- One illegal initial status: the whole COPY fails and loads nothing.
COPY payouts (id, amount, status) FROM STDIN;
5	50.00	CREATED
6	60.00	READY
7	70.00	CREATED
\.
SELECT * FROM payouts ORDER BY id;

-- An explicit null status is refused by the trigger too.
COPY payouts (id, amount, status) FROM STDIN;
5	50.00	\N
\.
SELECT * FROM payouts ORDER BY id;
-- psql does not set :SQLSTATE after COPY FROM STDIN; the SQLSTATEs of the
-- same errors, raised by INSERT.
SELECT show_error($$INSERT INTO payouts (id, amount, status) VALUES (6, 60.00, 'READY')$$);
SELECT show_error($$INSERT INTO payouts (id, amount, status) VALUES (5, 50.00, NULL)$$);

--
-- INSERT ... ON CONFLICT
--
-- Each section starts from rows of its own, so that its outcome does not
-- depend on the sections before it.
TRUNCATE payouts;
INSERT INTO payouts (id, amount) VALUES (1, 10.00), (2, 20.00), (3, 30.00), (4, 40.00);
UPDATE payouts SET status = 'READY' WHERE id = 3;

-- DO UPDATE judges the update of the existing row: CREATED -> READY is
-- legal, although READY is no status a new payout may start in.
INSERT INTO payouts (id, amount, status) VALUES (1, 10.00, 'READY')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
SELECT * FROM payouts WHERE id = 1;

-- CREATED -> PROCESSED is not.
INSERT INTO payouts (id, amount, status) VALUES (2, 20.00, 'PROCESSED')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
\echo :SQLSTATE
SELECT * FROM payouts WHERE id = 2;

-- READY -> CREATED is not either, although CREATED is a legal initial
-- status.
INSERT INTO payouts (id, amount, status) VALUES (3, 30.00, 'CREATED')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
\echo :SQLSTATE
SELECT show_error($$INSERT INTO payouts (id, amount, status) VALUES (3, 30.00, 'CREATED')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status$$);
SELECT * FROM payouts WHERE id = 3;

-- A status set in the DO UPDATE clause itself.
INSERT INTO payouts (id, amount) VALUES (4, 40.00)
ON CONFLICT (id) DO UPDATE SET status = 'EXPIRED';
INSERT INTO payouts (id, amount) VALUES (2, 20.00)
ON CONFLICT (id) DO UPDATE SET status = 'REVOKED';
\echo :SQLSTATE

-- No conflict: a new row, judged as such.
INSERT INTO payouts (id, amount, status) VALUES (5, 50.00, 'CREATED')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
INSERT INTO payouts (id, amount, status) VALUES (6, 60.00, 'PENDING')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
\echo :SQLSTATE
SELECT * FROM payouts ORDER BY id;

-- DO NOTHING: a row that conflicts is not stored, so its status never
-- becomes the status of any payout and there is nothing to reject; a row
-- that does not conflict is stored and is judged as a new payout.
INSERT INTO payouts (id, amount, status) VALUES (1, 10.00, 'PROCESSED')
ON CONFLICT (id) DO NOTHING;
\echo :SQLSTATE
INSERT INTO payouts (id, amount, status) VALUES (6, 60.00, 'PROCESSED')
ON CONFLICT (id) DO NOTHING;
\echo :SQLSTATE
INSERT INTO payouts (id, amount, status) VALUES (6, 60.00, 'CREATED')
ON CONFLICT (id) DO NOTHING;
SELECT * FROM payouts ORDER BY id;

-- A DELETE in a WITH clause frees the key before the INSERT checks it:
-- the proposed row is a new payout then, and PROCESSED is no status a new
-- payout starts in.  Nothing is deleted.
WITH gone AS (DELETE FROM payouts WHERE id = 1 RETURNING id)
INSERT INTO payouts (id, amount, status) SELECT id, 10.00, 'PROCESSED' FROM gone;
\echo :SQLSTATE
WITH gone AS (DELETE FROM payouts WHERE id = 1 RETURNING id)
INSERT INTO payouts (id, amount, status) SELECT id, 10.00, 'PROCESSED' FROM gone
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
\echo :SQLSTATE
SELECT * FROM payouts WHERE id = 1;

--
-- UPDATE ... FROM
--
TRUNCATE payouts;
INSERT INTO payouts (id, amount) VALUES (1, 10.00), (2, 20.00), (3, 30.00);
UPDATE payouts SET status = 'READY' WHERE id = 1;

-- One of three moves is illegal: the statement changes nothing.
UPDATE payouts p SET status = v.status
FROM (VALUES (1, 'INVOKING'::payout.status),
			 (2, 'READY'),
			 (3, 'INVOKING')) AS v (id, status)
WHERE p.id = v.id;
\echo :SQLSTATE
SELECT * FROM payouts ORDER BY id;

-- All legal: all change.
UPDATE payouts p SET status = v.status
FROM (VALUES (1, 'INVOKING'::payout.status),
			 (2, 'READY'),
			 (3, 'TERMINATED')) AS v (id, status)
WHERE p.id = v.id;
SELECT * FROM payouts ORDER BY id;

--
-- MERGE
--
TRUNCATE payouts;
INSERT INTO payouts (id, amount) VALUES (1, 10.00), (2, 20.00), (3, 30.00);
UPDATE payouts SET status = 'READY' WHERE id = 1;
UPDATE payouts SET status = 'INVOKING' WHERE id = 1;
UPDATE payouts SET status = 'TERMINATED' WHERE id = 3;

-- Legal both ways: INVOKING -> PROCESSING and a new payout in CREATED.
MERGE INTO payouts p
USING (VALUES (1, 10.00, 'PROCESSING'::payout.status),
			  (7, 70.00, 'CREATED')) AS v (id, amount, status)
ON p.id = v.id
WHEN MATCHED THEN UPDATE SET status = v.status
WHEN NOT MATCHED THEN INSERT (id, amount, status) VALUES (v.id, v.amount, v.status);
SELECT * FROM payouts ORDER BY id;

-- An illegal update next to a legal insert: nothing happens.
MERGE INTO payouts p
USING (VALUES (2, 20.00, 'PROCESSED'::payout.status),
			  (8, 80.00, 'CREATED')) AS v (id, amount, status)
ON p.id = v.id
WHEN MATCHED THEN UPDATE SET status = v.status
WHEN NOT MATCHED THEN INSERT (id, amount, status) VALUES (v.id, v.amount, v.status);
\echo :SQLSTATE

-- An illegal insert next to a legal update: nothing happens.
MERGE INTO payouts p
USING (VALUES (2, 20.00, 'READY'::payout.status),
			  (8, 80.00, 'READY')) AS v (id, amount, status)
ON p.id = v.id
WHEN MATCHED THEN UPDATE SET status = v.status
WHEN NOT MATCHED THEN INSERT (id, amount, status) VALUES (v.id, v.amount, v.status);
\echo :SQLSTATE

-- A final status does not change, even through MERGE.
MERGE INTO payouts p
USING (VALUES (3, 'CREATED'::payout.status)) AS v (id, status)
ON p.id = v.id
WHEN MATCHED THEN UPDATE SET status = v.status;
\echo :SQLSTATE
SELECT * FROM payouts ORDER BY id;

--
-- Writable CTE
--
TRUNCATE payouts;
INSERT INTO payouts (id, amount) VALUES (1, 10.00), (2, 20.00);

WITH u AS (
	UPDATE payouts SET status = 'READY' WHERE id = 1
	RETURNING id, status
)
SELECT * FROM u;

WITH u AS (
	UPDATE payouts SET status = 'PROCESSED' WHERE id = 1
	RETURNING id, status
)
SELECT * FROM u;
\echo :SQLSTATE

WITH i AS (
	INSERT INTO payouts (id, amount, status) VALUES (3, 30.00, 'PENDING')
	RETURNING id, status
)
SELECT * FROM i;
\echo :SQLSTATE

-- Only the CTE writes; the outer statement reads.
WITH u AS (
	UPDATE payouts SET status = 'REVOKING' WHERE id = 2
	RETURNING id
)
SELECT count(*) FROM u;
\echo :SQLSTATE
SELECT * FROM payouts ORDER BY id;

--
-- PL/pgSQL
--
TRUNCATE payouts;
INSERT INTO payouts (id, amount) VALUES (1, 10.00), (2, 20.00);
UPDATE payouts SET status = 'READY' WHERE id = 1;

CREATE FUNCTION set_status(p_id bigint, p_status payout.status)
RETURNS payout.status
LANGUAGE plpgsql
AS $$
DECLARE
	result payout.status;
BEGIN
	UPDATE payouts SET status = p_status WHERE id = p_id
	RETURNING status INTO result;
	RETURN result;
END
$$;
-- The same cached plan, first for legal changes, then for illegal ones.
SELECT set_status(1, 'INVOKING');
SELECT set_status(1, 'PENDING');
SELECT set_status(1, 'CREATED');
\echo :SQLSTATE
SELECT set_status(2, 'PROCESSED');
\echo :SQLSTATE
SELECT * FROM payouts ORDER BY id;
DROP FUNCTION set_status(bigint, payout.status);

--
-- Another BEFORE trigger that changes the row fires first: zz_payout_enforce
-- judges the row that would be stored.
--
TRUNCATE payouts;
INSERT INTO payouts (id, amount) VALUES (1, 10.00);

CREATE FUNCTION bump_status()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.status := 'REVOKED';
	RETURN NEW;
END
$$;
CREATE TRIGGER aa_bump
	BEFORE INSERT OR UPDATE ON payouts
	FOR EACH ROW EXECUTE FUNCTION bump_status();
SELECT tgname FROM pg_trigger WHERE tgrelid = 'payouts'::regclass ORDER BY tgname;
-- The caller asks for a legal change, the other trigger makes it illegal.
UPDATE payouts SET status = 'READY' WHERE id = 1;
\echo :SQLSTATE
UPDATE payouts SET amount = 11.00 WHERE id = 1;
\echo :SQLSTATE
INSERT INTO payouts (id, amount) VALUES (2, 20.00);
\echo :SQLSTATE
SELECT * FROM payouts ORDER BY id;

-- The same trigger turned into one that makes a legal change.
CREATE OR REPLACE FUNCTION bump_status()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.status = 'CREATED' THEN
		NEW.status := 'EXPIRED';
	END IF;
	RETURN NEW;
END
$$;
UPDATE payouts SET amount = 11.00 WHERE id = 1;
SELECT * FROM payouts ORDER BY id;
DROP TRIGGER aa_bump ON payouts;
DROP FUNCTION bump_status();

SELECT payout.detach('payouts');
DROP TABLE payouts;

--
-- Partitioned table
--
CREATE TABLE payouts_by_day (
	id bigint NOT NULL,
	created_at date NOT NULL,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
-- Before attach.
CREATE TABLE payouts_2023 PARTITION OF payouts_by_day
	FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
SELECT payout.attach('payouts_by_day');
-- After attach.
CREATE TABLE payouts_2024 PARTITION OF payouts_by_day
	FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
-- Another physical layout, attached afterwards.
CREATE TABLE payouts_2025 (
	junk text,
	resolution payout.resolution,
	status payout.status NOT NULL DEFAULT 'CREATED',
	amount numeric NOT NULL,
	created_at date NOT NULL,
	id bigint NOT NULL
);
ALTER TABLE payouts_2025 DROP COLUMN junk;
ALTER TABLE payouts_by_day ATTACH PARTITION payouts_2025
	FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');

SELECT c.relname, a.attnum AS status_attnum
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'status'
WHERE c.relname LIKE 'payouts\_%'
ORDER BY c.relname;
SELECT tgrelid::regclass AS rel, tgname, tgparentid <> 0 AS inherited,
	   pg_get_triggerdef(oid)
FROM pg_trigger
WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relname LIKE 'payouts\_%')
ORDER BY tgrelid::regclass::text, tgname;

INSERT INTO payouts_by_day (id, created_at, amount) VALUES
	(1, '2023-06-01', 10.00),
	(2, '2024-06-01', 20.00),
	(3, '2025-06-01', 30.00);
INSERT INTO payouts_by_day (id, created_at, amount, status) VALUES
	(4, '2025-07-01', 40.00, 'READY');
\echo :SQLSTATE
-- Straight into a partition.
INSERT INTO payouts_2025 (id, created_at, amount, status) VALUES
	(4, '2025-07-01', 40.00, 'READY');
\echo :SQLSTATE
UPDATE payouts_by_day SET status = 'READY';
SELECT tableoid::regclass AS part, * FROM payouts_by_day ORDER BY id;

-- Illegal changes, one partition at a time.
UPDATE payouts_by_day SET status = 'PROCESSED' WHERE id = 1;
\echo :SQLSTATE
UPDATE payouts_by_day SET status = 'PROCESSED' WHERE id = 2;
\echo :SQLSTATE
UPDATE payouts_by_day SET status = 'PROCESSED' WHERE id = 3;
\echo :SQLSTATE
SELECT show_error($$UPDATE payouts_by_day SET status = 'PROCESSED' WHERE id = 3$$);
UPDATE payouts_2025 SET status = 'PROCESSED';
\echo :SQLSTATE
SELECT tableoid::regclass AS part, * FROM payouts_by_day ORDER BY id;

-- Moving a row to another partition is an update, not a new payout: a legal
-- status change moves, so does an unchanged status, an illegal change does
-- not.
UPDATE payouts_by_day SET created_at = '2025-06-02', status = 'INVOKING'
WHERE id = 1;
\echo :SQLSTATE
UPDATE payouts_by_day SET created_at = '2023-06-02' WHERE id = 2;
\echo :SQLSTATE
UPDATE payouts_by_day SET created_at = '2024-06-02', status = 'PROCESSED'
WHERE id = 3;
\echo :SQLSTATE
SELECT tableoid::regclass AS part, * FROM payouts_by_day ORDER BY id;

-- A partition has the parent's trigger: it can be neither attached again
-- nor detached on its own.  (No CONTEXT: it would pin line numbers of
-- payout.attach and payout.detach.)
\set SHOW_CONTEXT never
SELECT payout.attach('payouts_2024');
\echo :SQLSTATE
SELECT payout.detach('payouts_2024');
\echo :SQLSTATE
\set SHOW_CONTEXT errors

-- detach on the parent takes the trigger off every partition.
SELECT payout.detach('payouts_by_day');
SELECT tgrelid::regclass AS rel, tgname
FROM pg_trigger
WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relname LIKE 'payouts\_%')
ORDER BY tgrelid::regclass::text, tgname;
UPDATE payouts_by_day SET status = 'CREATED';
SELECT tableoid::regclass AS part, * FROM payouts_by_day ORDER BY id;
DROP TABLE payouts_by_day;

-- Without a primary key (and so without history), a row that moves to
-- another partition is recognized by all its columns; a stored generated
-- column, computed again for the new partition, does not get in the way.
CREATE TABLE payouts_by_region (
	id bigint NOT NULL,
	region text NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	region_length int GENERATED ALWAYS AS (length(region)) STORED
) PARTITION BY LIST (region);
CREATE TABLE payouts_eu PARTITION OF payouts_by_region FOR VALUES IN ('eu');
CREATE TABLE payouts_usa PARTITION OF payouts_by_region FOR VALUES IN ('usa');
SELECT payout.attach('payouts_by_region', history => false);
INSERT INTO payouts_by_region (id, region) VALUES (1, 'eu'), (2, 'eu'), (3, 'eu');
UPDATE payouts_by_region SET status = 'READY' WHERE id IN (1, 3);
-- A legal change, no change, and (in one statement) two rows.
UPDATE payouts_by_region SET region = 'usa', status = 'INVOKING' WHERE id = 1;
UPDATE payouts_by_region SET region = 'usa' WHERE id = 2;
SELECT tableoid::regclass AS part, * FROM payouts_by_region ORDER BY id;
UPDATE payouts_by_region SET region = 'eu' WHERE id IN (1, 2);
-- An illegal change does not move.
UPDATE payouts_by_region SET region = 'usa', status = 'PROCESSED' WHERE id = 3;
\echo :SQLSTATE
SELECT tableoid::regclass AS part, * FROM payouts_by_region ORDER BY id;
DROP TABLE payouts_by_region;

-- A large batch: one illegal row among 100000 fails the whole statement,
-- and neither the table nor the history keeps any of its changes.
CREATE TABLE big (id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution);
SELECT payout.attach('big');
INSERT INTO big (id) SELECT g FROM generate_series(1, 100000) AS g;
UPDATE big SET status = 'TERMINATED' WHERE id = 50000;
SELECT count(*) AS history_rows FROM payout.history WHERE tbl = 'big'::regclass;
UPDATE big SET status = 'READY';
SELECT status, count(*) FROM big GROUP BY status ORDER BY status;
SELECT count(*) AS history_rows FROM payout.history WHERE tbl = 'big'::regclass;
DROP TABLE big;

DROP FUNCTION show_error(text);
DROP EXTENSION payout;
