--
-- ledger: payout.history sealed in a chain of SHA-256 blocks by
-- payout.seal(), its digest, and payout.verify(), which finds every kind of
-- tampering a superuser can do with the history's triggers out of the way
-- (it has none): a changed column, a deleted row, a whole payout's rows
-- deleted, a forged row, a truncated or dropped partition, reordered ids,
-- an altered block, a removed block, a chain whose times go back; and
-- which takes rows that the auditor's retention allows to be gone for
-- retained, not missing.  Tables are named by the numbers the ledger gave
-- them, never by OID; hashes do not depend on any session setting.
--
-- Hashes and times change from run to run: the findings are printed with
-- them masked.  Each tampering is made in a transaction that verifies and
-- rolls back, so that the next one starts from the untouched history.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_ledger_sealer;
CREATE ROLE regress_ledger_auditor;
CREATE ROLE regress_ledger_app;
GRANT EXECUTE ON FUNCTION payout.seal(bigint) TO regress_ledger_sealer;
GRANT SELECT ON payout.history, payout.ledger, payout.ledger_tables TO regress_ledger_auditor;

-- The findings of a verification, hashes, times and OIDs masked.
CREATE FUNCTION pg_temp.v(digests jsonb DEFAULT NULL, tbl regclass DEFAULT NULL,
						  key text DEFAULT NULL, retention interval DEFAULT NULL)
RETURNS TABLE (block bigint, id bigint, finding text, detail text)
LANGUAGE sql AS $$
	SELECT v.block, v.id, v.finding,
		   regexp_replace(regexp_replace(regexp_replace(v.detail, '[0-9a-f]{16,64}', '<hash>', 'g'),
										 '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+\+00', '<time>', 'g'),
						  'OID [0-9]+', 'OID <oid>', 'g')
	FROM payout.verify(digests, tbl, key, retention) AS v
$$;

-- A block's hash, computed in SQL from its columns by the canonical form
-- of doc/ledger.md: what a rewriter of the ledger computes.
CREATE FUNCTION pg_temp.usecs(t timestamptz) RETURNS bigint
LANGUAGE sql AS $$ SELECT (extract(epoch FROM t) * 1000000)::bigint - 946684800000000 $$;
CREATE FUNCTION pg_temp.opt_time(t timestamptz) RETURNS bytea
LANGUAGE sql AS $$
	SELECT CASE WHEN t IS NULL THEN '\x00'::bytea
		   ELSE '\x01'::bytea || int8send(pg_temp.usecs(t)) END
$$;
CREATE FUNCTION pg_temp.opt_text(s text) RETURNS bytea
LANGUAGE sql AS $$
	SELECT CASE WHEN s IS NULL THEN '\x00'::bytea
		   ELSE '\x01'::bytea || int4send(length(convert_to(s, 'UTF8'))) || convert_to(s, 'UTF8') END
$$;
CREATE FUNCTION pg_temp.block_hash(l payout.ledger) RETURNS bytea
LANGUAGE sql AS $$
	SELECT sha256('\x02'::bytea || int2send(l.format) || int8send(l.block) || l.prev_hash
				  || int8send(l.first_id) || int8send(l.last_id) || int8send(l.row_count)
				  || pg_temp.opt_time(l.min_clock_time) || pg_temp.opt_time(l.max_clock_time)
				  || int8send(pg_temp.usecs(l.sealed_at))
				  || int4send(cardinality(l.table_numbers))
				  || coalesce((SELECT string_agg(int4send(t.n) || pg_temp.opt_text(t.s)
												 || pg_temp.opt_text(t.nm), '' ORDER BY t.o)
							   FROM unnest(l.table_numbers, l.table_schemas, l.table_names)
									WITH ORDINALITY AS t(n, s, nm, o)), '')
				  || l.rows_hash
				  || sha256('\x04'::bytea || int4send(length(l.row_ids)) || l.row_ids
							|| int4send(length(l.row_marks)) || l.row_marks))
$$;

CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('payouts');
GRANT SELECT, INSERT, UPDATE ON payouts TO regress_ledger_app;
CREATE TABLE refunds (
	id text PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED'
);
SELECT payout.attach('refunds', resolution_column => NULL);

SET ROLE regress_ledger_app;
INSERT INTO payouts (id, amount) SELECT g, g FROM generate_series(1, 20) AS g;
UPDATE payouts SET status = 'READY' WHERE id <= 10;
UPDATE payouts SET status = 'INVOKING' WHERE id <= 5;
RESET ROLE;
INSERT INTO refunds (id) VALUES ('r1'), ('r2');
UPDATE refunds SET status = 'READY';
-- A transaction that rolls back leaves a hole in the ids: id 40.
BEGIN;
INSERT INTO payouts (id, amount) VALUES (99, 1);
ROLLBACK;
INSERT INTO payouts (id, amount) VALUES (21, 21);
SELECT id, tbl, key, new_status FROM payout.history WHERE id >= 38 ORDER BY id;

------------------------------------------------------------------------------
-- Sealing, the digest, a clean verification.
------------------------------------------------------------------------------

-- Who may seal: those a superuser lets; whoever reads history may verify.
SET ROLE regress_ledger_app;
\set VERBOSITY sqlstate
SELECT * FROM payout.seal();
SELECT * FROM payout.verify();
SELECT * FROM payout.digest();
\set VERBOSITY default
SET ROLE regress_ledger_sealer;
-- Nothing is written: every row written so far is sealed, in one block
-- that covers ids 1 to 41, the hole included.
SELECT * FROM payout.seal();
SELECT * FROM payout.seal();
RESET ROLE;
SELECT block, format, first_id, last_id, row_count, length(prev_hash) AS prev_len,
	   prev_hash = '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea AS first_in_chain,
	   table_numbers, table_schemas, table_names, length(row_marks) AS marks_bytes,
	   length(hash) AS hash_bytes, hash = pg_temp.block_hash(l) AS canonical
FROM payout.ledger l ORDER BY block;
-- The tables by number; no OID is stored.
SELECT number, tbl, schema_name, table_name FROM payout.ledger_tables ORDER BY number;
SELECT count(*) AS oid_columns
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'payout'::regnamespace AND c.relname LIKE 'ledger%'
  AND a.atttypid IN ('oid'::regtype, 'oid[]'::regtype) AND a.attnum > 0;
SELECT block, length(hash) AS hex_digits, sealed_at = (SELECT l.sealed_at FROM payout.ledger l WHERE l.block = d.block) AS sealed_at_of_block
FROM payout.digest() AS d;
SELECT row_to_json(d) AS digest1 FROM payout.digest() AS d \gset

SET ROLE regress_ledger_auditor;
SELECT * FROM pg_temp.v();
SELECT * FROM pg_temp.v(:'digest1');
SELECT * FROM pg_temp.v(tbl => 'payouts');
SELECT * FROM pg_temp.v(tbl => 'payouts', key => '3');
SELECT * FROM pg_temp.v(tbl => 'refunds', key => 'r2');
-- A payout's rows read as before.
SELECT old_status, new_status FROM payout.timeline('payouts', '3');
RESET ROLE;

-- More changes, sealed in batches: max_rows caps a call.
UPDATE payouts SET status = 'READY' WHERE id BETWEEN 11 AND 20;
SELECT * FROM payout.seal(max_rows => 4);
SELECT * FROM payout.seal();
SELECT block, first_id, last_id, row_count FROM payout.ledger ORDER BY block;
SELECT row_to_json(d) AS digest3 FROM payout.digest() AS d \gset
SELECT * FROM pg_temp.v(jsonb_build_array(:'digest1'::jsonb, :'digest3'::jsonb));

------------------------------------------------------------------------------
-- No setting changes a hash: blocks sealed under the settings above verify
-- under others, and a block sealed under those verifies under these.
------------------------------------------------------------------------------
SET timezone = 'Pacific/Chatham';
SET datestyle = 'SQL, DMY';
SET intervalstyle = 'sql_standard';
SET extra_float_digits = -3;
SET bytea_output = 'escape';
SELECT * FROM pg_temp.v(jsonb_build_array(:'digest1'::jsonb, :'digest3'::jsonb));
UPDATE payouts SET status = 'INVOKING' WHERE id = 20;
SELECT blocks, sealed_rows FROM payout.seal();
SELECT row_to_json(d) AS digest_odd FROM payout.digest() AS d \gset
RESET timezone;
RESET datestyle;
RESET intervalstyle;
RESET extra_float_digits;
RESET bytea_output;
SET timezone = 'UTC';
SELECT * FROM pg_temp.v(jsonb_build_array(:'digest1'::jsonb, :'digest3'::jsonb, :'digest_odd'::jsonb));
SELECT bool_and(hash = pg_temp.block_hash(l)) AS canonical FROM payout.ledger l;

------------------------------------------------------------------------------
-- Tampering, as a superuser: each is found and located.
------------------------------------------------------------------------------

-- Each column of one row changed in turn (id 7: payout 7 created).
CREATE TEMP TABLE changes (col text, expr text);
INSERT INTO changes VALUES
	('id', '1000'), ('tbl', '''refunds''::regclass'), ('key', '''70'''),
	('old_status', '''CREATED'''), ('new_status', '''READY'''),
	('old_resolution', '''OK'''), ('new_resolution', '''OK'''),
	('xact_time', 'xact_time + interval ''1 microsecond'''),
	('clock_time', 'clock_time - interval ''1 second'''),
	('user_name', '''mallory'''), ('session_user_name', '''mallory'''),
	('application_name', '''psql'''),
	('xid', '(xid::text::bigint + 1)::text::xid8'),
	('actor', '''mallory'''), ('old_key', '''6''');
-- The change is made and verified in a subtransaction that is rolled back.
CREATE FUNCTION pg_temp.tampered(col text, expr text)
RETURNS TABLE (block bigint, id bigint, finding text)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	BEGIN
		EXECUTE format('UPDATE payout.history SET %I = %s WHERE id = 7', col, expr);
		FOR r IN SELECT v.block, v.id, v.finding FROM payout.verify() AS v LOOP
			block := r.block; id := r.id; finding := r.finding;
			RETURN NEXT;
		END LOOP;
		RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
	EXCEPTION WHEN SQLSTATE 'P0001' THEN
		NULL;
	END;
END
$$;
SELECT c.col, t.block, t.id, t.finding
FROM changes c, LATERAL pg_temp.tampered(c.col, c.expr) AS t
ORDER BY c.col, t.finding <> 'tampered', t.block, t.id;
-- Untouched again.
SELECT finding FROM payout.verify();

-- One row deleted.
BEGIN;
DELETE FROM payout.history WHERE id = 12;
SELECT * FROM pg_temp.v();
ROLLBACK;

-- A whole payout's rows deleted: found by the whole verification and by
-- the payout's own, which knows which sealed rows were its.
BEGIN;
SELECT count(*) AS rows_of_payout_4 FROM payout.history WHERE tbl = 'payouts'::regclass AND key = '4';
DELETE FROM payout.history WHERE tbl = 'payouts'::regclass AND key = '4';
SELECT block, id, finding FROM payout.verify() ORDER BY block, id;
SELECT block, id, finding FROM payout.verify(tbl => 'payouts', key => '4') ORDER BY block, id;
SELECT block, id, finding FROM payout.verify(tbl => 'payouts', key => '5') ORDER BY block, id;
ROLLBACK;

-- A forged row in the hole the rollback left, and one with a new id.
BEGIN;
INSERT INTO payout.history (id, tbl, key, old_status, new_status, xact_time, clock_time,
							user_name, session_user_name, xid)
VALUES (40, 'payouts', '99', NULL, 'CREATED', now(), now(), 'app', 'app', '777');
SELECT * FROM pg_temp.v();
-- A row with an id after the sealed ones is not sealed yet: doc/ledger.md
-- says what a forged row inserted before sealing proves.
INSERT INTO payout.history (tbl, key, old_status, new_status, xact_time, clock_time,
							user_name, session_user_name, xid)
VALUES ('payouts', '98', NULL, 'CREATED', now(), now(), 'app', 'app', '778');
SELECT * FROM pg_temp.v();
ROLLBACK;

-- Reordered ids: two rows swap their ids.
BEGIN;
UPDATE payout.history SET id = -1 WHERE id = 21;
UPDATE payout.history SET id = 21 WHERE id = 22;
UPDATE payout.history SET id = 22 WHERE id = -1;
SELECT * FROM pg_temp.v();
ROLLBACK;

-- The default partition truncated.
BEGIN;
TRUNCATE payout.history_catchall;
SELECT * FROM pg_temp.v();
SELECT * FROM pg_temp.v(tbl => 'refunds');
ROLLBACK;

-- The ledger itself: a block changed (a table's name as sealed), a link
-- changed, the newest blocks removed.  From the rows alone, removed newest
-- blocks only leave their rows unsealed; the digest taken before shows it.
BEGIN;
UPDATE payout.ledger SET table_names[2] = 'payments' WHERE block = 1;
SELECT * FROM pg_temp.v();
ROLLBACK;
BEGIN;
UPDATE payout.ledger SET prev_hash = set_byte(prev_hash, 0, get_byte(prev_hash, 0) # 1) WHERE block = 3;
SELECT * FROM pg_temp.v();
ROLLBACK;
BEGIN;
DELETE FROM payout.ledger WHERE block >= 3;
SELECT * FROM pg_temp.v();
SELECT * FROM pg_temp.v(:'digest3');
ROLLBACK;
-- A block's first id step made 2^63, under a hash recomputed to match: no
-- sealer writes such ids, and the block's rows cannot be checked.
BEGIN;
UPDATE payout.ledger SET row_ids = '\x80808080808080808001'::bytea || substring(row_ids from 2)
WHERE block = 1;
UPDATE payout.ledger l SET hash = pg_temp.block_hash(l) WHERE block = 1;
SELECT * FROM pg_temp.v();
ROLLBACK;
-- A chain rewritten from block 2 on, as it was but for a changed row,
-- verifies from the rows alone (its hashes are consistent); a digest taken
-- before shows it.
BEGIN;
UPDATE payout.history SET user_name = 'mallory' WHERE id = 45;
DELETE FROM payout.ledger WHERE block >= 2;
SELECT blocks, sealed_rows FROM payout.seal(max_rows => 4);
SELECT blocks, sealed_rows FROM payout.seal();
SELECT finding FROM payout.verify();
SELECT * FROM pg_temp.v(:'digest3');
ROLLBACK;


------------------------------------------------------------------------------
-- Renamed and dropped tables.  Rows are sealed under the table's number;
-- a block keeps the name each of its tables had when sealed.
------------------------------------------------------------------------------

ALTER TABLE refunds RENAME TO refunds_2026;
-- Not a difference, but shown: the name its rows were sealed under is not
-- the table's name now.
SELECT * FROM pg_temp.v();
UPDATE refunds_2026 SET status = 'INVOKING' WHERE id = 'r1';
SELECT blocks, sealed_rows FROM payout.seal();
SELECT block, table_numbers, table_names
FROM payout.ledger WHERE block IN (1, (SELECT max(block) FROM payout.ledger)) ORDER BY block;
SELECT number, tbl, schema_name, table_name FROM payout.ledger_tables ORDER BY number;
SELECT finding FROM payout.verify();
SELECT * FROM pg_temp.v(tbl => 'refunds_2026', key => 'r1');
-- Someone who moves a table's rows to another table, in payout.history and
-- in payout.ledger_tables alike (which no hash covers), keeps the rows
-- intact, but not the names they were sealed under.
BEGIN;
UPDATE payout.history
SET tbl = CASE tbl WHEN 'payouts'::regclass THEN 'refunds_2026'::regclass ELSE 'payouts' END;
UPDATE payout.ledger_tables
SET tbl = CASE tbl WHEN 'payouts'::regclass THEN 'refunds_2026'::regclass ELSE 'payouts' END;
SELECT * FROM pg_temp.v();
ROLLBACK;
-- ... and someone who does it in payout.history alone changes the rows.
BEGIN;
UPDATE payout.history SET tbl = 'payouts' WHERE tbl = 'refunds_2026'::regclass;
SELECT block, id, finding FROM payout.verify();
ROLLBACK;
-- Two tables' rows merged into one, in both alike: each number is listed,
-- the one whose name is unchanged because another number shares it.
BEGIN;
UPDATE payout.history SET tbl = 'payouts' WHERE tbl = 'refunds_2026'::regclass;
UPDATE payout.ledger_tables SET tbl = 'payouts' WHERE tbl = 'refunds_2026'::regclass;
SELECT * FROM pg_temp.v();
SELECT * FROM pg_temp.v(tbl => 'payouts');
ROLLBACK;
-- A table's rows moved under an OID that names no relation, in both alike:
-- they verify, but the table is listed as dropped, with the name they were
-- sealed under, by the whole verification and by the table's own.
BEGIN;
UPDATE payout.history SET tbl = '1234567' WHERE tbl = 'payouts'::regclass;
UPDATE payout.ledger_tables SET tbl = '1234567' WHERE tbl = 'payouts'::regclass;
SELECT * FROM pg_temp.v();
SELECT * FROM pg_temp.v(tbl => 'payouts');
ROLLBACK;
-- A table's number taken out of payout.ledger_tables: its rows no longer
-- verify, and blocks name a table number the map lacks.
BEGIN;
DELETE FROM payout.ledger_tables WHERE tbl = 'refunds_2026'::regclass;
SELECT * FROM pg_temp.v();
ROLLBACK;
-- A table's rows deleted together with its number: the table's own
-- verification still finds its rows by the name they were sealed under.
BEGIN;
DELETE FROM payout.history WHERE tbl = 'refunds_2026'::regclass;
DELETE FROM payout.ledger_tables WHERE tbl = 'refunds_2026'::regclass;
SELECT * FROM pg_temp.v(tbl => 'refunds_2026');
SELECT * FROM pg_temp.v(tbl => 'refunds_2026', key => 'r1');
ROLLBACK;
-- Dropped: its history stays, with its old OID, and verifies under its
-- number; no block records anything for the drop, and verify() lists it.
SELECT payout.detach('refunds_2026');
DROP TABLE refunds_2026;
INSERT INTO payouts (id, amount) VALUES (22, 22);
SELECT blocks, sealed_rows FROM payout.seal();
SELECT table_numbers, table_names FROM payout.ledger WHERE block = (SELECT max(block) FROM payout.ledger);
SELECT * FROM pg_temp.v();
-- A table dropped before its rows are sealed has no name in the block.
CREATE TABLE fleeting (id int PRIMARY KEY, status payout.status NOT NULL DEFAULT 'CREATED');
SELECT payout.attach('fleeting', resolution_column => NULL);
INSERT INTO fleeting (id) VALUES (1);
SELECT payout.detach('fleeting');
DROP TABLE fleeting;
SELECT blocks, sealed_rows FROM payout.seal();
SELECT table_numbers, table_schemas, table_names FROM payout.ledger WHERE block = (SELECT max(block) FROM payout.ledger);
SELECT number, schema_name, table_name FROM payout.ledger_tables WHERE number = 3;
SELECT * FROM pg_temp.v();

------------------------------------------------------------------------------
-- Time.  The times of a chain only go forward; a digest says when its
-- block was sealed, and may say when it was taken.
------------------------------------------------------------------------------

-- A rewriter who recomputes the newest block with an earlier time.
BEGIN;
UPDATE payout.ledger SET sealed_at = sealed_at - interval '1 day'
WHERE block = (SELECT max(block) FROM payout.ledger);
UPDATE payout.ledger l SET hash = pg_temp.block_hash(l)
WHERE block = (SELECT max(block) FROM payout.ledger);
SELECT * FROM pg_temp.v();
ROLLBACK;
-- A digest whose time is not its block's, or that was taken before its
-- block was sealed (the block's time was set ahead).
SELECT row_to_json(d) AS digest_now FROM payout.digest() AS d \gset
SELECT * FROM pg_temp.v(jsonb_set(:'digest_now', '{sealed_at}', '"2020-01-01T00:00:00+00:00"'));
SELECT * FROM pg_temp.v(:'digest_now'::jsonb || '{"taken_at": "2020-01-01T00:00:00Z"}');
SELECT finding FROM payout.verify(:'digest_now'::jsonb || jsonb_build_object('taken_at', now() + interval '1 minute'));

------------------------------------------------------------------------------
-- Retention is the auditor's: verify() takes sealed rows recorded longer
-- than the retention it is given before the newest digest (or before its
-- own clock, if earlier) for removed by that policy.  Partitions dropped
-- are tampering; dropped by the policy, they are not.
------------------------------------------------------------------------------

CREATE TABLE payout.history_2020 (LIKE payout.history_catchall INCLUDING ALL);
ALTER TABLE payout.history ATTACH PARTITION payout.history_2020
	FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
-- Rows of 2020, loaded from an archive before they were sealed.
INSERT INTO payout.history (tbl, key, old_status, new_status, xact_time, clock_time,
							user_name, session_user_name, xid)
SELECT 'payouts', g::text, NULL, 'CREATED', '2020-06-01', '2020-06-01 12:00', 'app', 'app', pg_current_xact_id()
FROM generate_series(1001, 1003) AS g;
SELECT blocks, sealed_rows FROM payout.seal();
SELECT row_to_json(d) AS digest_before FROM payout.digest() AS d \gset
-- Without a retention, every sealed row that is gone is missing.
BEGIN;
DROP TABLE payout.history_2020;
SELECT * FROM pg_temp.v();
SELECT * FROM pg_temp.v(:'digest_before', retention => '1 year');
ROLLBACK;
-- Nothing the sealer sets excuses a row: there is no such setting.
\set VERBOSITY sqlstate
SET payout.ledger_retention = '1 microsecond';
\set VERBOSITY default
UPDATE payouts SET status = 'INVOKING' WHERE id = 11;
SELECT blocks, sealed_rows FROM payout.seal();
SELECT row_to_json(d) AS digest_after FROM payout.digest() AS d \gset
DROP TABLE payout.history_2020;
SELECT * FROM pg_temp.v(jsonb_build_array(:'digest_before'::jsonb, :'digest_after'::jsonb));
SELECT * FROM pg_temp.v(jsonb_build_array(:'digest_before'::jsonb, :'digest_after'::jsonb),
						retention => '1 year');
-- Retention allows old rows to be gone, not young ones.
BEGIN;
DELETE FROM payout.history WHERE id <= 10;
SELECT block, id, finding FROM payout.verify(:'digest_after', retention => '1 year');
ROLLBACK;
-- A newest block whose time a rewriter set years ahead gains nothing: the
-- cutoff is counted back from this server's clock if that is earlier, and
-- row 45, of this year, is missing.
BEGIN;
UPDATE payout.ledger SET sealed_at = now() + interval '10 years'
WHERE block = (SELECT max(block) FROM payout.ledger);
UPDATE payout.ledger l SET hash = pg_temp.block_hash(l)
WHERE block = (SELECT max(block) FROM payout.ledger);
DELETE FROM payout.history WHERE id = 45;
SELECT block, id, finding FROM payout.verify(retention => '1 year');
-- and seal() will not seal after it while its clock is behind
\set VERBOSITY sqlstate
INSERT INTO payouts (id, amount) VALUES (23, 23);
SELECT * FROM payout.seal();
\set VERBOSITY default
ROLLBACK;

------------------------------------------------------------------------------
-- The backlog, one batch per transaction.
------------------------------------------------------------------------------

GRANT EXECUTE ON PROCEDURE payout.seal_backlog(bigint) TO regress_ledger_sealer;
UPDATE payouts SET status = 'INVOKING' WHERE id BETWEEN 12 AND 20;
SELECT max(block) AS before FROM payout.ledger \gset
SET ROLE regress_ledger_sealer;
CALL payout.seal_backlog(4);
RESET ROLE;
SELECT block - :before AS new_block, row_count FROM payout.ledger WHERE block > :before ORDER BY block;
SELECT finding FROM payout.verify(retention => '1 year') WHERE finding <> 'rows retained';

------------------------------------------------------------------------------
-- Misuse.
------------------------------------------------------------------------------

\set VERBOSITY sqlstate
SELECT * FROM payout.verify(key => '3');
SELECT * FROM payout.verify(retention => '0');
SELECT * FROM payout.verify(retention => '-1 year');
SELECT * FROM payout.verify('"abc"');
SELECT * FROM payout.verify('[{"block": 1}]');
SELECT * FROM payout.verify('{"block": 1, "hash": "abcd"}');
SELECT * FROM payout.seal(max_rows => 0);
CALL payout.seal_backlog(NULL);
ALTER SEQUENCE payout.history_id_seq CACHE 10;
SELECT * FROM payout.seal();
ALTER SEQUENCE payout.history_id_seq CACHE 1;
-- The sequence is the one history's ids come from, whatever its name.
ALTER SEQUENCE payout.history_id_seq RENAME TO history_ids;
CREATE SEQUENCE payout.history_id_seq;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
SELECT blocks, sealed_rows FROM payout.seal();
DROP SEQUENCE payout.history_id_seq;
ALTER SEQUENCE payout.history_ids RENAME TO history_id_seq;
-- History whose ids come from no sequence is not sealed.
ALTER TABLE payout.history ALTER COLUMN id SET DEFAULT 0;
SELECT * FROM payout.seal();
ALTER TABLE payout.history ALTER COLUMN id SET DEFAULT pg_catalog.nextval('payout.history_id_seq');
\set VERBOSITY default
SELECT * FROM payout.verify(key => '3');
SELECT * FROM payout.verify(retention => '0');
SELECT * FROM payout.verify('"abc"');
SELECT * FROM payout.verify(jsonb_build_array(jsonb_build_object('block', 1, 'hash', repeat('0', 64)), 5));
SELECT * FROM payout.verify('{"block": "1", "hash": "abcd"}');
SELECT * FROM payout.verify('{"block": 1, "hash": "abcd"}');
SELECT * FROM payout.verify(jsonb_build_object('block', 1, 'hash', repeat('0', 64), 'sealed_at', 'soon'));
-- A time must say its time zone, one that exists: without it, it would be
-- read in the session's.
SELECT * FROM payout.verify(jsonb_build_object('block', 1, 'hash', repeat('0', 64), 'sealed_at', '2026-12-06 10:00'));
SELECT * FROM payout.verify(jsonb_build_object('block', 1, 'hash', repeat('0', 64), 'sealed_at', '2026-12-06 10:00 Mars/Olympus'));
SELECT * FROM payout.verify(jsonb_build_object('block', 1, 'hash', repeat('0', 64), 'taken_at', '2026-12-06T10:00:00'));
SELECT * FROM payout.verify(jsonb_build_object('block', 1, 'hash', repeat('0', 64)), retention => '1 year');
ALTER SEQUENCE payout.history_id_seq CACHE 10;
SELECT * FROM payout.seal();
ALTER SEQUENCE payout.history_id_seq CACHE 1;
ALTER TABLE payout.history ALTER COLUMN id SET DEFAULT 0;
SELECT * FROM payout.seal();
ALTER TABLE payout.history ALTER COLUMN id SET DEFAULT pg_catalog.nextval('payout.history_id_seq');
SELECT finding FROM payout.verify(retention => '1 year') WHERE finding <> 'rows retained';

-- seal() builds on no newest block whose content does not match its hash.
BEGIN;
UPDATE payout.ledger SET row_count = row_count + 1
WHERE block = (SELECT max(block) FROM payout.ledger);
\set VERBOSITY terse
SELECT * FROM payout.seal();
\set VERBOSITY default
ROLLBACK;

-- A row planted with an ancient time, or an infinite one, in a block: the
-- other rows of the block keep their own times, and their removal is no
-- retention.  (Last, as the ids it takes are not given back.)
SELECT max(id) AS before_planted FROM payout.history \gset
BEGIN;
INSERT INTO payout.history (tbl, key, old_status, new_status, xact_time, clock_time,
							user_name, session_user_name, xid)
VALUES ('payouts', 'planted', NULL, 'CREATED', '1800-01-01', '1800-01-01', 'app', 'app', '777');
INSERT INTO payouts (id, amount) VALUES (30, 30), (31, 31), (32, 32);
SELECT blocks, sealed_rows FROM payout.seal();
SELECT row_count, min_clock_time < '1900-01-01' AS planted_earliest
FROM payout.ledger WHERE block = (SELECT max(block) FROM payout.ledger);
SELECT row_to_json(d) AS digest_planted FROM payout.digest() AS d \gset
DELETE FROM payout.history WHERE id > :before_planted AND key <> 'planted';
SELECT block, id - :before_planted AS id_after, finding
FROM payout.verify(:'digest_planted', retention => '1 year') WHERE finding <> 'rows retained';
ROLLBACK;
SELECT max(id) AS before_planted FROM payout.history \gset
BEGIN;
INSERT INTO payout.history (tbl, key, old_status, new_status, xact_time, clock_time,
							user_name, session_user_name, xid)
VALUES ('payouts', 'planted', NULL, 'CREATED', '-infinity', '-infinity', 'app', 'app', '777');
INSERT INTO payouts (id, amount) VALUES (30, 30), (31, 31), (32, 32);
SELECT blocks, sealed_rows FROM payout.seal();
SELECT row_count, min_clock_time > '-infinity' AS earliest_finite
FROM payout.ledger WHERE block = (SELECT max(block) FROM payout.ledger);
SELECT row_to_json(d) AS digest_planted FROM payout.digest() AS d \gset
DELETE FROM payout.history WHERE id > :before_planted AND key <> 'planted';
SELECT block, id - :before_planted AS id_after, finding
FROM payout.verify(:'digest_planted', retention => '1 year') WHERE finding <> 'rows retained';
ROLLBACK;

DROP TABLE payouts;
DROP FUNCTION pg_temp.block_hash(payout.ledger);
DROP EXTENSION payout;
DROP ROLE regress_ledger_sealer, regress_ledger_auditor, regress_ledger_app;
