--
-- history: payout.history, the audit trail that the AFTER triggers created
-- by payout.attach() append to; the queries over it (payout.timeline,
-- payout.transition_counts); and who may touch it.
--
-- Timestamps, transaction ids and OIDs change from run to run: they are
-- only ever compared, never printed.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_payout_owner;
CREATE ROLE regress_payout_app;
-- Tables keep history where a superuser lets their owner, as doc/security.md says.
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_payout_owner;

-- pg_temp.news() returns the history rows recorded since its last call,
-- by table and key, oldest first for each key.
CREATE TEMP TABLE mark (last_id bigint NOT NULL);
INSERT INTO mark VALUES (0);
CREATE FUNCTION pg_temp.news()
RETURNS TABLE (tbl text, key text,
			   old_status payout.status, new_status payout.status,
			   old_resolution payout.resolution, new_resolution payout.resolution)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	since bigint := (SELECT m.last_id FROM pg_temp.mark m);
BEGIN
	RETURN QUERY
		SELECT h.tbl::text, h.key, h.old_status, h.new_status,
			   h.old_resolution, h.new_resolution
		FROM payout.history h
		WHERE h.id > since
		ORDER BY h.tbl::text COLLATE "C", h.key COLLATE "C", h.id;
	UPDATE pg_temp.mark
	SET last_id = (SELECT coalesce(max(h.id), since) FROM payout.history h);
END
$$;

-- The table belongs to an ordinary role, which attaches the trigger
-- itself; the application may only read, insert and update it.
CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
ALTER TABLE payouts OWNER TO regress_payout_owner;
SET ROLE regress_payout_owner;
SELECT payout.attach('payouts');
GRANT SELECT, INSERT, UPDATE ON payouts TO regress_payout_app;
RESET ROLE;
SELECT * FROM payout.attachment('payouts');
SELECT tgname FROM pg_trigger
WHERE tgrelid = 'payouts'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT count(*) AS history_rows FROM payout.history;

------------------------------------------------------------------------------
-- What is recorded.
------------------------------------------------------------------------------

-- An INSERT: one row each, old_status and old_resolution NULL.
INSERT INTO payouts (id, amount) VALUES (1, 10), (2, 20);
INSERT INTO payouts (id, amount, status, resolution) VALUES (3, 30, 'CREATE_FAILED', 'INVALID_AMOUNT');
SELECT * FROM pg_temp.news();

-- An UPDATE of the status only.
UPDATE payouts SET status = 'READY' WHERE id = 1;
SELECT * FROM pg_temp.news();
-- Of the resolution only (which holds payout 2 for moderation), and its
-- release by a moderator (a superuser here).
UPDATE payouts SET status = 'READY' WHERE id = 2;
UPDATE payouts SET status = 'INVOKING' WHERE id = 2;
SELECT * FROM pg_temp.news();
UPDATE payouts SET resolution = 'CONNECTION_ERROR' WHERE id = 2;
SELECT * FROM pg_temp.news();
UPDATE payouts SET resolution = 'OK' WHERE id = 2;
SELECT * FROM pg_temp.news();
-- Of both at once, once 1 is PROCESSING.
UPDATE payouts SET status = 'INVOKING' WHERE id = 1;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
SELECT * FROM pg_temp.news();
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;
SELECT * FROM pg_temp.news();

-- Nothing for an update of another column, for setting the status (and
-- the resolution) to what they are, or for an update that matches nothing.
UPDATE payouts SET amount = amount + 1 WHERE id = 1;
UPDATE payouts SET status = status;
UPDATE payouts SET status = status, resolution = resolution;
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;
UPDATE payouts SET resolution = 'OK' WHERE id = 2;
UPDATE payouts SET status = 'READY' WHERE id = 999;
SELECT * FROM pg_temp.news();

-- A DELETE is recorded with a NULL new status, and the deleted payout's
-- history stays.  Only final payouts may be deleted (the default).  A
-- TRUNCATE records nothing: it fires no row trigger.
INSERT INTO payouts (id, amount) VALUES (90, 1), (91, 1);
DELETE FROM payouts WHERE id = 90;
UPDATE payouts SET status = 'TERMINATED' WHERE id = 90;
DELETE FROM payouts WHERE id = 90;
SELECT * FROM pg_temp.news();
CREATE TABLE scratch (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('scratch');
INSERT INTO scratch VALUES (1, 'CREATED');
TRUNCATE scratch;
SELECT * FROM pg_temp.news();
SELECT key, old_status, new_status FROM payout.history
WHERE tbl = 'payouts'::regclass AND key IN ('90', '91') ORDER BY id;

-- A statement that fails records nothing, not even the rows it had
-- already stored (94 is legal, 95 may not start in PROCESSED).
INSERT INTO payouts (id, amount, status) VALUES (94, 1, 'CREATED'), (95, 1, 'PROCESSED');
SELECT * FROM pg_temp.news();

-- A row that a BEFORE trigger skips is not stored, so not recorded.
CREATE FUNCTION skip_zero() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.amount = 0 THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER aa_skip_zero BEFORE INSERT OR UPDATE ON payouts
	FOR EACH ROW EXECUTE FUNCTION skip_zero();
INSERT INTO payouts (id, amount) VALUES (92, 0), (93, 1);
UPDATE payouts SET status = 'READY', amount = 0 WHERE id = 91;
SELECT * FROM pg_temp.news();
SELECT id, status FROM payouts WHERE id BETWEEN 90 AND 93 ORDER BY id;
DROP TRIGGER aa_skip_zero ON payouts;
DROP FUNCTION skip_zero();

------------------------------------------------------------------------------
-- Transactions.
------------------------------------------------------------------------------

-- A transaction that rolls back leaves no row.
BEGIN;
INSERT INTO payouts (id, amount) VALUES (10, 1);
UPDATE payouts SET status = 'READY' WHERE id = 10;
UPDATE payouts SET status = 'TERMINATED' WHERE id = 93;
SELECT count(*) AS seen_inside FROM payout.history WHERE id > (SELECT last_id FROM mark);
ROLLBACK;
SELECT * FROM pg_temp.news();

-- Neither does a savepoint that rolls back; the rest of the transaction is
-- recorded.
BEGIN;
INSERT INTO payouts (id, amount) VALUES (11, 1);
SAVEPOINT s1;
UPDATE payouts SET status = 'READY' WHERE id = 11;
INSERT INTO payouts (id, amount) VALUES (12, 1);
ROLLBACK TO SAVEPOINT s1;
UPDATE payouts SET status = 'TERMINATED' WHERE id = 11;
SAVEPOINT s2;
INSERT INTO payouts (id, amount) VALUES (13, 1);
RELEASE SAVEPOINT s2;
COMMIT;
SELECT * FROM pg_temp.news();

-- xact_time is the start of the transaction, clock_time the moment of the
-- change, xid the top-level transaction, also from a subtransaction.
BEGIN;
SELECT pg_sleep(0.01);
INSERT INTO payouts (id, amount) VALUES (14, 1);
SAVEPOINT s1;
UPDATE payouts SET status = 'READY' WHERE id = 14;
RELEASE SAVEPOINT s1;
UPDATE payouts SET status = 'INVOKING' WHERE id = 14;
SELECT h.new_status,
	   h.xact_time = now() AS xact_time_is_now,
	   h.xact_time < h.clock_time AS clock_after_start,
	   h.clock_time <= clock_timestamp() AS clock_not_future,
	   h.clock_time >= lag(h.clock_time) OVER (ORDER BY h.id) AS clock_in_order,
	   h.xid = pg_current_xact_id() AS xid_is_current
FROM payout.history h WHERE h.id > (SELECT last_id FROM mark)
ORDER BY h.id;
COMMIT;
SELECT * FROM pg_temp.news();
-- Another transaction: another xid, a later start.
UPDATE payouts SET status = 'PROCESSING' WHERE id = 14;
SELECT count(DISTINCT xid) AS xids, count(DISTINCT xact_time) AS starts
FROM payout.history WHERE tbl = 'payouts'::regclass AND key = '14';
SELECT * FROM pg_temp.news();

------------------------------------------------------------------------------
-- Every write path.
------------------------------------------------------------------------------

-- A multi-row UPDATE: one row per payout whose status changes (21 and 22
-- are READY already: SET status = 'READY' changes nothing for them).
INSERT INTO payouts (id, amount) SELECT g, g FROM generate_series(20, 25) AS g;
SELECT * FROM pg_temp.news();
UPDATE payouts SET status = 'READY' WHERE id IN (21, 22);
SELECT * FROM pg_temp.news();
UPDATE payouts SET status = 'READY' WHERE id BETWEEN 20 AND 25;
SELECT * FROM pg_temp.news();

-- INSERT ... ON CONFLICT DO UPDATE that updates: the UPDATE is recorded,
-- old to new, and no INSERT.
INSERT INTO payouts (id, amount, status) VALUES (20, 1, 'INVOKING')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
SELECT * FROM pg_temp.news();
-- ... that inserts: the INSERT is recorded.
INSERT INTO payouts (id, amount) VALUES (26, 1)
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
SELECT * FROM pg_temp.news();
-- ... that updates another column only: nothing.
INSERT INTO payouts (id, amount) VALUES (21, 5)
ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount;
SELECT * FROM pg_temp.news();
-- ... both in one statement.
INSERT INTO payouts (id, amount, status) VALUES (21, 1, 'TERMINATED'), (27, 1, 'CREATED')
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
SELECT * FROM pg_temp.news();
-- DO NOTHING on an existing payout: nothing.
INSERT INTO payouts (id, amount, status) VALUES (22, 1, 'CREATED')
ON CONFLICT DO NOTHING;
INSERT INTO payouts (id, amount, status) VALUES (22, 1, 'CREATED')
ON CONFLICT (id) DO NOTHING;
SELECT * FROM pg_temp.news();
SELECT id, status FROM payouts WHERE id BETWEEN 20 AND 27 ORDER BY id;

-- COPY FROM STDIN: a row each.
COPY payouts (id, amount, status) FROM STDIN;
30	1	CREATED
31	2	CREATED
32	3	CREATE_FAILED
\.
SELECT * FROM pg_temp.news();

-- MERGE, both ways.
MERGE INTO payouts p
USING (VALUES (30, 'READY'::payout.status), (33, 'CREATED')) AS v(id, status)
ON p.id = v.id
WHEN MATCHED THEN UPDATE SET status = v.status
WHEN NOT MATCHED THEN INSERT (id, amount, status) VALUES (v.id, 1, v.status);
SELECT * FROM pg_temp.news();

-- An UPDATE of the key and the status is recorded under the new key; one
-- of the key alone is recorded too, as the key change it is (old_key
-- links the keys: see sql/identity.sql).
UPDATE payouts SET id = 34, status = 'READY' WHERE id = 33;
UPDATE payouts SET id = 35 WHERE id = 34;
SELECT * FROM pg_temp.news();

------------------------------------------------------------------------------
-- Who made the change.
------------------------------------------------------------------------------

-- user_name is current_user, session_user_name the session's user;
-- application_name is the session's.  The application needs no privilege
-- on payout.history.
SELECT has_table_privilege('regress_payout_app', 'payout.history', 'SELECT') AS app_select,
	   has_table_privilege('regress_payout_app', 'payout.history', 'INSERT') AS app_insert;
SET application_name = 'regress-app';
SET ROLE regress_payout_app;
INSERT INTO payouts (id, amount) VALUES (40, 1);
UPDATE payouts SET status = 'READY' WHERE id = 40;
SELECT current_user, session_user = current_user AS same;
RESET ROLE;
RESET application_name;
SELECT key, old_status, new_status, user_name,
	   session_user_name = session_user AS session_user_is_superuser,
	   application_name
FROM payout.history WHERE id > (SELECT last_id FROM mark)
ORDER BY id;
SELECT * FROM pg_temp.news();
-- Without a role change, both are the session's user.
UPDATE payouts SET status = 'INVOKING' WHERE id = 40;
SELECT user_name = session_user AS user_is_session_user,
	   session_user_name = session_user AS session_user_is_session_user
FROM payout.history WHERE id > (SELECT last_id FROM mark);
SELECT * FROM pg_temp.news();
-- Inside a SECURITY DEFINER function, current_user is its owner.
CREATE FUNCTION promote(bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER
AS $$ UPDATE payouts SET status = 'PROCESSING' WHERE id = $1 $$;
ALTER FUNCTION promote(bigint) OWNER TO regress_payout_owner;
GRANT EXECUTE ON FUNCTION promote(bigint) TO regress_payout_app;
SET ROLE regress_payout_app;
SELECT promote(40);
RESET ROLE;
SELECT user_name, session_user_name = session_user AS session_user_is_superuser
FROM payout.history WHERE id > (SELECT last_id FROM mark);
SELECT * FROM pg_temp.news();
DROP FUNCTION promote(bigint);

------------------------------------------------------------------------------
-- Keys.
------------------------------------------------------------------------------

-- A one-column key is its value's text, even when it holds quotes, commas
-- or spaces.
CREATE TABLE texts (
	code text PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED'
);
SELECT payout.attach('texts');
INSERT INTO texts (code) VALUES ('plain'), ('with space, "quote" and \ backslash'), ('');
SELECT * FROM pg_temp.news();
SELECT count(*) AS keys_equal_to_text
FROM payout.history h JOIN texts t ON h.key = t.code::text
WHERE h.tbl = 'texts'::regclass;

-- A composite key is a row literal, as ROW(...)::text writes it and as
-- payout.claim() returns it.
CREATE TABLE multi (
	region text,
	seq int,
	state payout.status NOT NULL,
	outcome payout.resolution,
	PRIMARY KEY (region, seq)
);
SELECT payout.attach('multi', 'state', 'outcome');
INSERT INTO multi VALUES
	('eu', 1, 'CREATED'), ('us west', 2, 'CREATED'),
	('say "hi"', 3, 'CREATED'), ('', 4, 'CREATED'), ('a\b', 5, 'CREATED');
UPDATE multi SET state = 'READY';
SELECT * FROM pg_temp.news();
SELECT count(*) AS keys_equal_to_row
FROM payout.history h JOIN multi m ON h.key = ROW(m.region, m.seq)::text
WHERE h.tbl = 'multi'::regclass;
-- (Claimed first: a query that calls payout.claim() does not see the
-- history rows that the call adds.)
CREATE TEMP TABLE claimed AS SELECT key FROM payout.claim('multi', 10) AS key;
SELECT c.key, count(h.id) AS recorded
FROM claimed c
LEFT JOIN payout.history h
	   ON h.tbl = 'multi'::regclass AND h.key = c.key AND h.new_status = 'INVOKING'
GROUP BY c.key ORDER BY c.key COLLATE "C";
DROP TABLE claimed;
SELECT * FROM pg_temp.news();
SELECT old_status, new_status FROM payout.timeline('multi', '("us west",2)');

------------------------------------------------------------------------------
-- payout.timeline and payout.transition_counts.
------------------------------------------------------------------------------

-- One payout's changes, oldest first.
SELECT old_status, new_status, old_resolution, new_resolution, key,
	   tbl = 'payouts'::regclass AS same_table
FROM payout.timeline('payouts', '1');
SELECT old_status, new_status, old_resolution, new_resolution
FROM payout.timeline('payouts', '2');
-- In id order, each change starting where the previous one ended.
SELECT (SELECT array_agg(id) FROM payout.timeline('payouts', '14'))
	   = (SELECT array_agg(id ORDER BY id) FROM payout.history
		  WHERE tbl = 'payouts'::regclass AND key = '14') AS in_id_order,
	   (SELECT count(*) FROM payout.timeline('payouts', '14')) AS changes;
SELECT key, count(*) AS broken_links
FROM (SELECT key, old_status, lag(new_status) OVER (PARTITION BY key ORDER BY id) AS prev
	  FROM payout.history WHERE tbl = 'payouts'::regclass) s
WHERE prev IS NOT NULL AND prev IS DISTINCT FROM old_status
GROUP BY key;
-- Another key, another table, a key that was never recorded, NULL.
SELECT count(*) FROM payout.timeline('payouts', '999');
SELECT count(*) FROM payout.timeline('texts', '1');
SELECT count(*) FROM payout.timeline('payouts', NULL);
SELECT count(*) FROM payout.timeline(NULL, '1');

-- Which edges payouts took, and how often; resolution-only changes are no
-- edge.
SELECT * FROM payout.transition_counts('payouts');
SELECT * FROM payout.transition_counts('payouts', '-infinity', 'infinity');
SELECT * FROM payout.transition_counts('multi');
-- Ranges that hold nothing: all before 2000, all after 2999, empty.
SELECT count(*) FROM payout.transition_counts('payouts', '-infinity', '2000-01-01 00:00:00+00');
SELECT count(*) FROM payout.transition_counts('payouts', '2999-01-01 00:00:00+00', 'infinity');
SELECT count(*) FROM payout.transition_counts('payouts', '2999-01-01 00:00:00+00', '2999-01-01 00:00:00+00');
SELECT count(*) FROM payout.transition_counts('payouts', 'infinity', '-infinity');
-- A range that holds everything.
SELECT sum(changes) = (SELECT count(*) FROM payout.history
					   WHERE tbl = 'payouts'::regclass AND old_status IS DISTINCT FROM new_status)
	   AS all_counted
FROM payout.transition_counts('payouts', '2000-01-01 00:00:00+00', '2999-01-01 00:00:00+00');

-- Timeline lookups use the (tbl, key, id) index, which also gives their
-- order.  (Parameters, as in payout.timeline(), keep the table's OID out
-- of the plan.)
PREPARE timeline_lookup(regclass, text) AS
	SELECT h.* FROM payout.history h
	WHERE h.tbl = $1 AND h.key = $2
	ORDER BY h.id;
SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) EXECUTE timeline_lookup('payouts', '1');
RESET enable_seqscan;
RESET plan_cache_mode;
DEALLOCATE timeline_lookup;

------------------------------------------------------------------------------
-- Attaching and detaching.
------------------------------------------------------------------------------

-- history => false: no history trigger, nothing recorded.
CREATE TABLE quiet (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('quiet', history => false);
SELECT * FROM payout.attachment('quiet');
SELECT tgname FROM pg_trigger
WHERE tgrelid = 'quiet'::regclass AND NOT tgisinternal ORDER BY tgname;
INSERT INTO quiet VALUES (1, 'CREATED');
UPDATE quiet SET status = 'READY';
SELECT * FROM pg_temp.news();

-- No primary key: attach fails, and leaves no trigger behind, unless
-- history => false.
CREATE TABLE nokey (id int, status payout.status NOT NULL);
SELECT payout.attach('nokey');
SELECT payout.attachment('nokey');
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'nokey'::regclass;
SELECT payout.attach('nokey', history => false);
SELECT * FROM payout.attachment('nokey');
INSERT INTO nokey VALUES (1, 'CREATED');
SELECT * FROM pg_temp.news();
-- A history trigger attached by hand to it fails at its first row.
CREATE TRIGGER zz_payout_history AFTER INSERT ON nokey
	FOR EACH ROW EXECUTE FUNCTION payout.record_history();
INSERT INTO nokey VALUES (2, 'CREATED');
DROP TRIGGER zz_payout_history ON nokey;

-- A deferrable primary key identifies no row until commit: attach refuses
-- it for history, and leaves no trigger behind.  Without history the table
-- is enforced like one without a key: a duplicate of an existing payout in
-- a status no payout starts in is judged as a new payout, since the
-- deferred key would let it in, and the DELETE of the original after it,
-- at commit.
CREATE TABLE deferred_key (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED,
						   status payout.status NOT NULL DEFAULT 'CREATED');
SELECT payout.attach('deferred_key');
SELECT count(*) AS triggers FROM pg_trigger
WHERE tgrelid = 'deferred_key'::regclass AND NOT tgisinternal;
SELECT payout.attach('deferred_key', history => false);
INSERT INTO deferred_key VALUES (1);
BEGIN;
INSERT INTO deferred_key VALUES (1, 'PROCESSED');
ROLLBACK;
SELECT * FROM deferred_key;
DROP TABLE deferred_key;

-- detach drops the history triggers; the history stays, and changes made
-- meanwhile are not recorded.
SELECT count(*) AS before_detach FROM payout.history WHERE tbl = 'payouts'::regclass \gset
SELECT payout.detach('payouts');
SELECT tgname FROM pg_trigger
WHERE tgrelid = 'payouts'::regclass AND NOT tgisinternal ORDER BY tgname;
SELECT count(*) = :before_detach AS history_kept
FROM payout.history WHERE tbl = 'payouts'::regclass;
UPDATE payouts SET status = 'READY' WHERE id = 13;
SELECT * FROM pg_temp.news();
-- Attached again, without history, then with.
SELECT payout.attach('payouts', history => false);
SELECT history FROM payout.attachment('payouts');
UPDATE payouts SET status = 'INVOKING' WHERE id = 13;
SELECT * FROM pg_temp.news();
SELECT payout.detach('payouts');
SELECT payout.attach('payouts');
SELECT history FROM payout.attachment('payouts');
UPDATE payouts SET status = 'PROCESSING' WHERE id = 13;
SELECT * FROM pg_temp.news();
SELECT old_status, new_status FROM payout.timeline('payouts', '13');

------------------------------------------------------------------------------
-- Nobody but its owner changes payout.history.
------------------------------------------------------------------------------

\set VERBOSITY sqlstate
-- Not even the owner of an attached table ...
SET ROLE regress_payout_owner;
SELECT count(*) FROM payout.history;
SELECT count(*) FROM payout.timeline('payouts', '1');
SELECT * FROM payout.transition_counts('payouts');
INSERT INTO payout.history (tbl, key, new_status, xact_time, clock_time, user_name, session_user_name, xid)
VALUES ('payouts', '1', 'CREATED', now(), now(), 'x', 'x', pg_current_xact_id());
UPDATE payout.history SET new_status = 'PROCESSED';
DELETE FROM payout.history;
TRUNCATE payout.history;
RESET ROLE;
-- ... nor the application.
SET ROLE regress_payout_app;
SELECT count(*) FROM payout.history;
INSERT INTO payout.history (tbl, key, new_status, xact_time, clock_time, user_name, session_user_name, xid)
VALUES ('payouts', '1', 'CREATED', now(), now(), 'x', 'x', pg_current_xact_id());
UPDATE payout.history SET new_status = 'PROCESSED';
DELETE FROM payout.history;
TRUNCATE payout.history;
RESET ROLE;

-- Granted SELECT, the owner of the table reads it, and still changes
-- nothing.
GRANT SELECT ON payout.history TO regress_payout_owner;
SET ROLE regress_payout_owner;
SELECT count(*) > 0 AS can_read FROM payout.history;
SELECT old_status, new_status FROM payout.timeline('payouts', '1');
SELECT count(*) > 0 AS can_count FROM payout.transition_counts('payouts');
INSERT INTO payout.history (tbl, key, new_status, xact_time, clock_time, user_name, session_user_name, xid)
VALUES ('payouts', '1', 'CREATED', now(), now(), 'x', 'x', pg_current_xact_id());
UPDATE payout.history SET new_status = 'PROCESSED';
DELETE FROM payout.history;
TRUNCATE payout.history;
RESET ROLE;
REVOKE SELECT ON payout.history FROM regress_payout_owner;
\set VERBOSITY default

-- Nothing was changed.
SELECT count(*) AS forged FROM payout.history WHERE user_name = 'x';
SELECT * FROM pg_temp.news();

------------------------------------------------------------------------------
-- Partitioned tables.
------------------------------------------------------------------------------

-- Attached to the partitioned table, every partition records its changes
-- under the table payout.attach() was called on: tbl is the partitioned
-- table, never the partition, so payout.timeline() and
-- payout.transition_counts() are asked about the partitioned table.
CREATE TABLE parted (
	region text,
	id int,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
SELECT payout.attach('parted');
SELECT * FROM payout.attachment('parted');
SELECT * FROM payout.attachment('parted_eu');
INSERT INTO parted (region, id) VALUES ('eu', 1), ('eu', 2), ('us', 1), ('us', 2);
UPDATE parted SET status = 'READY' WHERE id = 1;
-- Also for a change made through the partition itself.
UPDATE parted_us SET status = 'TERMINATED' WHERE id = 2;
SELECT * FROM pg_temp.news();
SELECT old_status, new_status FROM payout.timeline('parted', '(eu,1)');
SELECT count(*) FROM payout.timeline('parted_eu', '(eu,1)');
SELECT * FROM payout.transition_counts('parted');
SELECT count(*) FROM payout.transition_counts('parted_us');
-- A partition attached later records too.
CREATE TABLE parted_asia (LIKE parted INCLUDING DEFAULTS);
ALTER TABLE parted ATTACH PARTITION parted_asia FOR VALUES IN ('asia');
INSERT INTO parted (region, id) VALUES ('asia', 1);
SELECT * FROM pg_temp.news();

-- An UPDATE that moves a payout to another partition is one change of one
-- payout: it is recorded as that change (old status to new status), not as
-- a new payout.
-- The move changes the payout's key too (region is part of it): the row
-- links the new key to the old one.
UPDATE parted SET region = 'us', id = 3, status = 'INVOKING' WHERE region = 'eu' AND id = 1;
SELECT id, region, status FROM parted ORDER BY region, id;
SELECT count(*) AS changes FROM payout.history WHERE id > (SELECT last_id FROM mark);
SELECT key, old_key, old_status, new_status, old_resolution, new_resolution
FROM payout.history WHERE id > (SELECT last_id FROM mark) ORDER BY id;
UPDATE mark SET last_id = (SELECT max(id) FROM payout.history);
-- A move that keeps the status and the resolution still changes the key:
-- it is recorded as the key change it is.
UPDATE parted SET region = 'us', id = 4 WHERE region = 'eu' AND id = 2;
SELECT id, region, status FROM parted ORDER BY region, id;
SELECT key, old_key, old_status, new_status
FROM payout.history WHERE id > (SELECT last_id FROM mark) ORDER BY id;
UPDATE mark SET last_id = (SELECT max(id) FROM payout.history);
-- Several moves in one statement, some changing the status, one the
-- resolution only, one only the key: one row for each change.
UPDATE parted SET region = 'eu',
	status = CASE WHEN status IN ('CREATED', 'READY') THEN 'EXPIRED' ELSE status END,
	resolution = CASE WHEN status = 'INVOKING' THEN 'OK'::payout.resolution END
WHERE region = 'us';
SELECT id, region, status, resolution FROM parted ORDER BY region, id;
SELECT count(*) AS changes FROM payout.history WHERE id > (SELECT last_id FROM mark);
SELECT key, old_key, old_status, new_status, old_resolution, new_resolution
FROM payout.history WHERE id > (SELECT last_id FROM mark)
ORDER BY old_status, new_status, new_resolution;
UPDATE mark SET last_id = (SELECT max(id) FROM payout.history);
-- A move that the graph rejects records nothing.
UPDATE parted SET region = 'us', status = 'READY' WHERE region = 'eu' AND id = 3;
SELECT count(*) AS changes FROM payout.history WHERE id > (SELECT last_id FROM mark);

------------------------------------------------------------------------------
-- Partitions of payout.history.
------------------------------------------------------------------------------

-- payout.history is partitioned by clock_time.  Out of the box it has one
-- partition, the default one, which holds every row and the indexes: the
-- partitioned table has no index of its own.
SELECT pg_get_partkeydef('payout.history'::regclass) AS partition_key;
SELECT c.oid::regclass AS partition, pg_get_expr(c.relpartbound, c.oid) AS bound
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'payout.history'::regclass;
SELECT count(*) AS parent_indexes FROM pg_index WHERE indrelid = 'payout.history'::regclass;
SELECT indexrelid::regclass AS index, indisprimary, pg_get_indexdef(indexrelid) LIKE '%USING brin%' AS brin
FROM pg_index WHERE indrelid = 'payout.history_catchall'::regclass
ORDER BY indexrelid::regclass::text COLLATE "C";
SELECT count(*) = (SELECT count(*) FROM payout.history_catchall) AS all_in_default
FROM payout.history;

-- A DBA adds a partition for everything from now on, LIKE the default
-- partition so that it has the same indexes.  Changes made before stay in
-- the default partition, later ones go to the new partition, whoever makes
-- them, and the application still needs no privilege on either.
INSERT INTO payouts (id, amount) VALUES (50, 1);
UPDATE payouts SET status = 'READY' WHERE id = 50;
CREATE TABLE payout.history_later (LIKE payout.history_catchall INCLUDING ALL);
SELECT clock_timestamp() AS boundary \gset
ALTER TABLE payout.history ATTACH PARTITION payout.history_later
	FOR VALUES FROM (:'boundary') TO (MAXVALUE);
SELECT indexrelid::regclass AS index, indisprimary
FROM pg_index WHERE indrelid = 'payout.history_later'::regclass
ORDER BY indexrelid::regclass::text COLLATE "C";
SET ROLE regress_payout_app;
UPDATE payouts SET status = 'INVOKING' WHERE id = 50;
RESET ROLE;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 50;
SELECT has_table_privilege('regress_payout_app', 'payout.history_later', 'SELECT') AS app_select,
	   has_table_privilege('regress_payout_app', 'payout.history_later', 'INSERT') AS app_insert;
SELECT h.tableoid::regclass AS partition, h.old_status, h.new_status,
	   h.user_name = 'regress_payout_app' AS by_app
FROM payout.history h WHERE h.tbl = 'payouts'::regclass AND h.key = '50'
ORDER BY h.id;
SELECT * FROM pg_temp.news();
-- payout.timeline() reads both partitions, in id order; each partition's
-- (tbl, key, id) index gives its part in that order.
SELECT old_status, new_status FROM payout.timeline('payouts', '50');
PREPARE timeline_lookup(regclass, text) AS
	SELECT h.* FROM payout.history h
	WHERE h.tbl = $1 AND h.key = $2
	ORDER BY h.id;
SET plan_cache_mode = force_generic_plan;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) EXECUTE timeline_lookup('payouts', '50');
RESET enable_seqscan;
RESET plan_cache_mode;
DEALLOCATE timeline_lookup;
-- payout.transition_counts() from the boundary on counts the later changes
-- only.
SELECT * FROM payout.transition_counts('payouts', :'boundary');

-- Retention: the DBA detaches the partition (or drops it), and its rows
-- leave the history; the rest stays.
ALTER TABLE payout.history DETACH PARTITION payout.history_later;
SELECT old_status, new_status FROM payout.timeline('payouts', '50');
SELECT count(*) AS detached_rows FROM payout.history_later;
DROP TABLE payout.history_later;
-- With no partition but the default one, every change lands there again.
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 50;
SELECT h.tableoid::regclass AS partition, h.old_status, h.new_status
FROM payout.history h WHERE h.tbl = 'payouts'::regclass AND h.key = '50'
ORDER BY h.id;
SELECT * FROM pg_temp.news();

-- Rows go straight into the heap and indexes of a partition, as COPY
-- writes them, with what COPY does besides: here a partition whose columns
-- are in another order, with a CHECK constraint of the DBA's and a trigger
-- that counts its rows.
CREATE TABLE payout.history_other (
	old_key text COLLATE "C", actor text,
	xid xid8 NOT NULL, application_name text, session_user_name text NOT NULL,
	user_name text NOT NULL, clock_time timestamptz NOT NULL,
	xact_time timestamptz NOT NULL, new_resolution payout.resolution,
	old_resolution payout.resolution, new_status payout.status,
	old_status payout.status, key text COLLATE "C" NOT NULL,
	tbl regclass NOT NULL, id bigint NOT NULL PRIMARY KEY,
	CONSTRAINT no_forbidden_app CHECK (application_name IS DISTINCT FROM 'forbidden'));
CREATE TABLE history_other_rows (n int);
INSERT INTO history_other_rows VALUES (0);
-- The trigger runs as the owner of payout.history, in a security-restricted
-- operation with search_path pg_catalog, pg_temp: it names its table.
CREATE FUNCTION count_history_other() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN UPDATE public.history_other_rows SET n = n + 1; RETURN NULL; END$$;
CREATE TRIGGER counted AFTER INSERT ON payout.history_other
	FOR EACH ROW EXECUTE FUNCTION count_history_other();
SELECT clock_timestamp() AS boundary \gset
ALTER TABLE payout.history ATTACH PARTITION payout.history_other
	FOR VALUES FROM (:'boundary') TO (MAXVALUE);
INSERT INTO payouts (id, amount) VALUES (51, 1), (52, 1);
UPDATE payouts SET status = 'READY' WHERE id IN (51, 52);
SELECT h.tableoid::regclass AS partition, h.key, h.old_status, h.new_status,
	   h.user_name = current_user AS by_me
FROM payout.history h WHERE h.tbl = 'payouts'::regclass AND h.key IN ('51', '52')
ORDER BY h.id;
SELECT n AS rows_the_trigger_saw FROM history_other_rows;
-- The partition's CHECK constraint holds: the change fails with it, and
-- neither the change nor any history of it is stored.
SET application_name = 'forbidden';
\set VERBOSITY terse
UPDATE payouts SET status = 'INVOKING' WHERE id = 51;
\set VERBOSITY default
RESET application_name;
SELECT status FROM payouts WHERE id = 51;
SELECT count(*) AS history_of_51 FROM payout.history WHERE tbl = 'payouts'::regclass AND key = '51';
SELECT * FROM pg_temp.news();
ALTER TABLE payout.history DETACH PARTITION payout.history_other;
DROP TABLE payout.history_other, history_other_rows;
DROP FUNCTION count_history_other();

-- A trigger of the application's that runs a query in an exception block,
-- and rolls the block back, between the rows of a statement: the query's
-- end comes in a subtransaction that does not last, and the rows recorded
-- before it are written at the end of the statement, not in it.
CREATE TABLE sub_payouts (id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution);
SELECT payout.attach('sub_payouts');
CREATE FUNCTION a_sub_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		PERFORM count(*) FROM sub_payouts;
		RAISE EXCEPTION 'rolled back';
	EXCEPTION WHEN raise_exception THEN
		NULL;
	END;
	RETURN NULL;
END $$;
-- "a_sub" fires before zz_payout_history, for each row.
CREATE TRIGGER a_sub AFTER UPDATE ON sub_payouts
	FOR EACH ROW EXECUTE FUNCTION a_sub_trigger();
-- The application role, with the grants doc/security.md recommends, makes the
-- change.
GRANT SELECT, INSERT, UPDATE ON sub_payouts TO regress_payout_app;
SET ROLE regress_payout_app;
INSERT INTO sub_payouts (id) SELECT g FROM generate_series(1, 3) g;
UPDATE sub_payouts SET status = 'READY';
RESET ROLE;
SELECT key, old_status, new_status, user_name = 'regress_payout_app' AS by_app
FROM payout.history WHERE tbl = 'sub_payouts'::regclass ORDER BY id;
SELECT * FROM pg_temp.news();
DROP TABLE sub_payouts;
DROP FUNCTION a_sub_trigger();

------------------------------------------------------------------------------
-- A renamed table: the triggers hold no table name and history refers to
-- the table itself, so enforcement, history and the helpers go on under the
-- new name, and the history recorded before the rename shows it too.
------------------------------------------------------------------------------

CREATE TABLE renamed_payouts (id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution);
SELECT payout.attach('renamed_payouts');
INSERT INTO renamed_payouts (id) VALUES (1);
UPDATE renamed_payouts SET status = 'READY' WHERE id = 1;
ALTER TABLE renamed_payouts RENAME TO payouts_renamed;
UPDATE payouts_renamed SET status = 'PROCESSED' WHERE id = 1;
UPDATE payouts_renamed SET status = 'INVOKING' WHERE id = 1;
SELECT * FROM payouts_renamed;
SELECT tbl, key, old_status, new_status FROM payout.history
WHERE tbl = 'payouts_renamed'::regclass ORDER BY id;
SELECT old_status, new_status FROM payout.timeline('payouts_renamed', '1');
SELECT * FROM payout.attachment('payouts_renamed');
DROP TABLE payouts_renamed;

------------------------------------------------------------------------------
-- When rows are written: a statement's rows together, at its end.  Its own
-- AFTER triggers do not see them; the next statement does.  A statement
-- that changes more than 8,192 payouts writes them as it goes, and one
-- that fails after some were written leaves none.
------------------------------------------------------------------------------

CREATE TABLE bulk (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('bulk', indexes => false);
CREATE FUNCTION pg_temp.peek() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'the statement sees % history rows of its table',
		(SELECT count(*) FROM payout.history WHERE tbl = 'bulk'::regclass);
	RETURN NULL;
END
$$;
CREATE TRIGGER peek AFTER INSERT OR UPDATE ON bulk
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.peek();
INSERT INTO bulk SELECT g, 'CREATED' FROM generate_series(1, 20000) AS g;
SELECT count(*) AS recorded FROM payout.history WHERE tbl = 'bulk'::regclass;
-- A statement trigger that fails after the row triggers recorded (and wrote
-- 8,192 of) 10,000 changes.
CREATE FUNCTION pg_temp.fail_late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF current_setting('regress.fail_late', true) = 'on' THEN
		RAISE EXCEPTION 'failing after the row triggers';
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER zfail AFTER UPDATE ON bulk
	FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.fail_late();
SET regress.fail_late = on;
UPDATE bulk SET status = 'READY' WHERE id > 10000;
RESET regress.fail_late;
SELECT count(*) AS recorded FROM payout.history WHERE tbl = 'bulk'::regclass;
BEGIN;
UPDATE bulk SET status = 'READY' WHERE id <= 10000;
SAVEPOINT s;
UPDATE bulk SET status = 'READY' WHERE id > 10000;
ROLLBACK TO s;
COMMIT;
SELECT new_status, count(*) FROM payout.history WHERE tbl = 'bulk'::regclass
GROUP BY 1 ORDER BY 1;
-- In order, each with its own time.
SELECT bool_and(prev_id < id AND prev_time <= clock_time) AS in_order
FROM (SELECT id, clock_time, lag(id) OVER (ORDER BY id) AS prev_id,
			 lag(clock_time) OVER (ORDER BY id) AS prev_time
	  FROM payout.history WHERE tbl = 'bulk'::regclass) h
WHERE prev_id IS NOT NULL;
DROP TABLE bulk;

------------------------------------------------------------------------------
-- Clean up.  The history of dropped tables stays until the extension goes.
------------------------------------------------------------------------------

DROP TABLE payouts, scratch, texts, multi, quiet, nokey, parted;
SELECT count(*) > 0 AS history_of_dropped_tables FROM payout.history;
DROP FUNCTION pg_temp.news();
DROP TABLE mark;
DROP EXTENSION payout;
DROP ROLE regress_payout_owner, regress_payout_app;
