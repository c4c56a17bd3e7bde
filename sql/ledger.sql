--
-- ledger: payout.history sealed in a chain of SHA-256 blocks by
-- payout.seal(), its digest, and payout.verify(), which finds every kind of
-- tampering a superuser can do with the history's triggers out of the way
-- (it has none): a changed column, a deleted row, a whole payout's rows
-- deleted, a forged row, a truncated or dropped partition, reordered ids,
-- an altered block, a removed block; and which takes rows that the
-- recorded retention allows to be gone for retained, not missing.
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
GRANT SELECT ON payout.history, payout.ledger TO regress_ledger_auditor;

-- The findings of a verification, hashes and times masked.
CREATE FUNCTION pg_temp.v(digests jsonb DEFAULT NULL, tbl regclass DEFAULT NULL,
						  key text DEFAULT NULL)
RETURNS TABLE (block bigint, id bigint, finding text, detail text)
LANGUAGE sql AS $$
	SELECT v.block, v.id, v.finding,
		   regexp_replace(regexp_replace(v.detail, '[0-9a-f]{16,64}', '<hash>', 'g'),
						  '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+\+00', '<time>', 'g')
	FROM payout.verify(digests, tbl, key) AS v
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
	   table_names, renamed_oids, retention, length(row_marks) AS marks_bytes,
	   length(hash) AS hash_bytes
FROM payout.ledger ORDER BY block;
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

-- The ledger itself: a block changed, a link changed, the newest block
-- removed.  From the rows alone, a removed newest block only leaves its
-- rows unsealed; the digest taken before shows it.
BEGIN;
UPDATE payout.ledger SET retention = '1 day' WHERE block = 1;
SELECT * FROM pg_temp.v();
ROLLBACK;
BEGIN;
UPDATE payout.ledger SET prev_hash = set_byte(prev_hash, 0, get_byte(prev_hash, 0) # 1) WHERE block = 3;
SELECT * FROM pg_temp.v();
ROLLBACK;
BEGIN;
DELETE FROM payout.ledger WHERE block = 3;
SELECT * FROM pg_temp.v();
SELECT * FROM pg_temp.v(:'digest3');
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
-- Renamed and dropped tables.
------------------------------------------------------------------------------

ALTER TABLE refunds RENAME TO refunds_2026;
SELECT finding FROM payout.verify();
UPDATE refunds_2026 SET status = 'INVOKING' WHERE id = 'r1';
SELECT blocks, sealed_rows FROM payout.seal();
SELECT block, table_names, renamed_from_names, renamed_to_names
FROM payout.ledger WHERE block = (SELECT max(block) FROM payout.ledger);
SELECT finding FROM payout.verify();
SELECT * FROM pg_temp.v(tbl => 'refunds_2026', key => 'r1');
-- Dropped: its history stays, and verifies under the table's old OID.
SELECT payout.detach('refunds_2026');
DROP TABLE refunds_2026;
INSERT INTO payouts (id, amount) VALUES (22, 22);
SELECT blocks, sealed_rows FROM payout.seal();
SELECT renamed_from_names, renamed_to_schemas[1] IS NULL AS dropped,
	   renamed_to_names[1] = renamed_oids[1]::text AS named_by_its_oid
FROM payout.ledger WHERE block = (SELECT max(block) FROM payout.ledger);
SELECT finding FROM payout.verify();

------------------------------------------------------------------------------
-- Partitions: dropped is tampering; dropped by a recorded retention is not.
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
BEGIN;
DROP TABLE payout.history_2020;
SELECT * FROM pg_temp.v();
ROLLBACK;
-- History is kept a year: a block sealed under that policy records it,
-- and rows older than a year before the newest block may be gone.
\set VERBOSITY sqlstate
SET payout.ledger_retention = 'soon';
SELECT blocks FROM payout.seal();
SET payout.ledger_retention = '-1 year';
SELECT blocks FROM payout.seal();
\set VERBOSITY default
SET payout.ledger_retention = '1 year';
UPDATE payouts SET status = 'INVOKING' WHERE id = 11;
SELECT blocks, sealed_rows FROM payout.seal();
SELECT block, retention FROM payout.ledger WHERE block = (SELECT max(block) FROM payout.ledger);
RESET payout.ledger_retention;
DROP TABLE payout.history_2020;
SELECT * FROM pg_temp.v();
-- Against the digest taken before the policy was sealed, the same rows are
-- missing: that digest's block kept history for ever.
SELECT block, id, finding FROM payout.verify(:'digest_before');
-- Retention allows old rows to be gone, not young ones.
BEGIN;
DELETE FROM payout.history WHERE id = 45;
SELECT block, id, finding FROM payout.verify();
ROLLBACK;

------------------------------------------------------------------------------
-- Misuse.
------------------------------------------------------------------------------

\set VERBOSITY sqlstate
SELECT * FROM payout.verify(key => '3');
SELECT * FROM payout.verify('[{"block": 1}]');
SELECT * FROM payout.verify('{"block": 1, "hash": "abcd"}');
SELECT * FROM payout.seal(max_rows => 0);
ALTER SEQUENCE payout.history_id_seq CACHE 10;
SELECT * FROM payout.seal();
ALTER SEQUENCE payout.history_id_seq CACHE 1;
\set VERBOSITY default
SELECT * FROM payout.verify('{"block": 1, "hash": "abcd"}');

DROP TABLE payouts;
DROP EXTENSION payout;
DROP ROLE regress_ledger_sealer, regress_ledger_auditor, regress_ledger_app;
