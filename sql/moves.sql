--
-- moves: payouts moving between partitions, under what production tables
-- have besides payout's triggers: user triggers with exception blocks,
-- statements those triggers run on payout tables, partitions that record
-- history and partitions that do not, many moves in one statement.  As
-- the application role, with the grants doc/security.md recommends.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_moves_owner;
CREATE ROLE regress_moves_app;
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_moves_owner;
CREATE SCHEMA shop AUTHORIZATION regress_moves_owner;
GRANT USAGE ON SCHEMA shop TO regress_moves_app;

SET ROLE regress_moves_owner;
-- Partitioned by status group, as doc/operations.md shows (and advises
-- against): every finalising update moves the payout, and changes its key.
CREATE TABLE shop.by_group (
	id bigint NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	PRIMARY KEY (id, status)
) PARTITION BY LIST (status);
CREATE TABLE shop.by_group_open PARTITION OF shop.by_group
	FOR VALUES IN ('CREATED', 'READY', 'INVOKING', 'PROCESSING', 'PENDING');
CREATE TABLE shop.by_group_done PARTITION OF shop.by_group DEFAULT;
SELECT payout.attach('shop.by_group');
-- A second attached table, which the user triggers below change.
CREATE TABLE shop.other (id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED');
SELECT payout.attach('shop.other');
CREATE SEQUENCE shop.ids START 100;
-- A log of the application's, filled by triggers with exception blocks,
-- the common PL/pgSQL pattern.
CREATE TABLE shop.log (what text);
CREATE FUNCTION shop.log_with_block() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	new_id bigint;
BEGIN
	BEGIN
		INSERT INTO shop.log VALUES (TG_NAME || ' ' || TG_OP || ' on ' || TG_TABLE_NAME);
		IF TG_NAME LIKE '%fails' THEN
			RAISE EXCEPTION 'rolled back';
		END IF;
	EXCEPTION WHEN raise_exception THEN
		INSERT INTO shop.log VALUES (TG_NAME || ' caught');
	END;
	-- and statements on another attached table, in a block of their own
	BEGIN
		new_id := nextval('shop.ids');
		INSERT INTO shop.other (id) VALUES (new_id);
		UPDATE shop.other SET status = 'READY' WHERE id = new_id;
	EXCEPTION WHEN check_violation THEN
		INSERT INTO shop.log VALUES (TG_NAME || ' other refused');
	END;
	-- and, once, a move of another payout of this very table, between the
	-- two halves of the move that fired the trigger
	IF pg_trigger_depth() = 1 THEN
		new_id := nextval('shop.ids');
		INSERT INTO shop.by_group (id) VALUES (new_id);
		UPDATE shop.by_group SET status = 'EXPIRED' WHERE id = new_id;
	END IF;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
-- On the old partition, a BEFORE DELETE trigger (any name: BEFORE DELETE
-- triggers do not change the row); on the new one, a BEFORE INSERT trigger
-- that sorts before zz_payout_enforce, and one whose block rolls back.
CREATE TRIGGER a_delete BEFORE DELETE ON shop.by_group_open
	FOR EACH ROW EXECUTE FUNCTION shop.log_with_block();
CREATE TRIGGER a_insert BEFORE INSERT ON shop.by_group_done
	FOR EACH ROW EXECUTE FUNCTION shop.log_with_block();
CREATE TRIGGER b_insert_fails BEFORE INSERT ON shop.by_group_done
	FOR EACH ROW EXECUTE FUNCTION shop.log_with_block();
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.by_group, shop.other TO regress_moves_app;
GRANT INSERT ON shop.log TO regress_moves_app;
GRANT USAGE ON SEQUENCE shop.ids TO regress_moves_app;
RESET ROLE;

-- Legal finalising updates, one at a time and several in one statement:
-- each moves the payout to the done partition, past user triggers whose
-- exception blocks start and end subtransactions, and which change another
-- attached table in between.
SET ROLE regress_moves_app;
INSERT INTO shop.by_group (id) SELECT g FROM generate_series(1, 4) g;
UPDATE shop.by_group SET status = 'TERMINATED' WHERE id = 1;
UPDATE shop.by_group SET status = 'READY' WHERE id IN (2, 3, 4);
UPDATE shop.by_group SET status = 'EXPIRED' WHERE id IN (2, 3);
UPDATE shop.by_group SET status = 'INVOKING' WHERE id = 4;
UPDATE shop.by_group SET status = 'INVOKE_FAILED' WHERE id = 4;
RESET ROLE;
SELECT tableoid::regclass AS partition, * FROM shop.by_group WHERE id < 100 ORDER BY id;
SELECT what, count(*) FROM shop.log GROUP BY what ORDER BY what;
-- Each move is recorded once, as the change it is, linked to the key the
-- payout had before (the status is part of the key).
SELECT key, old_key, old_status, new_status, user_name
FROM payout.history WHERE tbl = 'shop.by_group'::regclass
  AND split_part(trim(key, '()'), ',', 1)::int < 100 ORDER BY id;
-- The triggers' own moves and changes, made between the halves of the
-- moves above, are there too, each once: every payout they made, created,
-- then expired or readied.
SELECT tbl, old_status, new_status, count(*) AS changes,
	   count(*) FILTER (WHERE old_key IS NOT NULL) AS with_old_key
FROM payout.history
WHERE tbl = 'shop.other'::regclass
   OR (tbl = 'shop.by_group'::regclass AND split_part(trim(key, '()'), ',', 1)::int >= 100)
GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS FIRST, 3;
SELECT tableoid::regclass AS partition, status, count(*) FROM shop.by_group
WHERE id >= 100 GROUP BY 1, 2;
SELECT key, old_key, old_status, new_status
FROM payout.timeline('shop.by_group', '(4,INVOKE_FAILED)');

-- An illegal finalising update is still refused, with the user triggers
-- there, and leaves nothing behind.
SET ROLE regress_moves_app;
INSERT INTO shop.by_group (id) VALUES (5);
UPDATE shop.by_group SET status = 'PROCESSED' WHERE id = 5;
RESET ROLE;
SELECT tableoid::regclass AS partition, * FROM shop.by_group WHERE id = 5;

-- A partition that records no history: a move to it, or from it, would
-- reach history as half a move, so it is refused, as the owner who turned
-- history off there is told; moves between two partitions alike pass.
SET ROLE regress_moves_owner;
ALTER TABLE shop.by_group_done DISABLE TRIGGER zz_payout_history;
SET ROLE regress_moves_app;
UPDATE shop.by_group SET status = 'TERMINATED' WHERE id = 5;
RESET ROLE;
SELECT tableoid::regclass AS partition, * FROM shop.by_group WHERE id = 5;
SET ROLE regress_moves_owner;
ALTER TABLE shop.by_group_done ENABLE TRIGGER zz_payout_history;
SET ROLE regress_moves_app;
UPDATE shop.by_group SET status = 'TERMINATED' WHERE id = 5;
RESET ROLE;
SELECT key, old_key, old_status, new_status FROM payout.history
WHERE tbl = 'shop.by_group'::regclass AND key LIKE '(5,%' ORDER BY id;

-- Many moves in one statement, in a table partitioned by created_at whose
-- key includes it: each recorded once, with its old key; the move state
-- is one record per query, whatever the number of rows.
SET ROLE regress_moves_owner;
CREATE TABLE shop.dated (
	id bigint NOT NULL,
	created_at date NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE shop.dated_2026 PARTITION OF shop.dated
	FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE shop.dated_2027 PARTITION OF shop.dated
	FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT payout.attach('shop.dated');
GRANT SELECT, INSERT, UPDATE ON shop.dated TO regress_moves_app;
SET ROLE regress_moves_app;
INSERT INTO shop.dated (id, created_at)
SELECT g, '2026-12-31' FROM generate_series(1, 1000) g;
-- every other payout moves to 2027 and is readied, the rest only moves
UPDATE shop.dated SET created_at = '2027-01-01',
	status = CASE WHEN id % 2 = 0 THEN 'READY'::payout.status ELSE status END;
RESET ROLE;
SELECT tableoid::regclass AS partition, count(*) FROM shop.dated GROUP BY 1 ORDER BY 1;
SELECT old_status, new_status, count(*) AS changes,
	   count(*) FILTER (WHERE old_key = '(' || split_part(trim(key, '()'), ',', 1) || ',2026-12-31)') AS linked
FROM payout.history WHERE tbl = 'shop.dated'::regclass AND old_status IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT key, old_key, old_status, new_status
FROM payout.timeline('shop.dated', '(2,2026-12-31)');

DROP SCHEMA shop CASCADE;
REVOKE EXECUTE ON FUNCTION payout.record_history() FROM regress_moves_owner;
DROP ROLE regress_moves_owner, regress_moves_app;
DROP EXTENSION payout;
