--
-- hostile: every way around the rules and the history that a review found
-- on 1.0, tried as the role that wants to break them, with only the grants
-- doc/security.md recommends:
--   regress_hostile_owner   owns the payout tables, may keep history
--   regress_hostile_app     SELECT, INSERT, UPDATE, DELETE on them, TEMP
--   regress_hostile_mod     a member of the moderator role
--   regress_hostile_auditor SELECT on payout.history
-- Each attempt must fail with its SQLSTATE and change nothing, and
-- payout.history must hold exactly what happened.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
SET datestyle = 'ISO, MDY';
\set SHOW_CONTEXT never

CREATE ROLE regress_hostile_owner;
CREATE ROLE regress_hostile_app;
CREATE ROLE regress_hostile_mod;
CREATE ROLE regress_hostile_moderators NOLOGIN;
CREATE ROLE regress_hostile_auditor;
GRANT regress_hostile_moderators TO regress_hostile_mod;
SET payout.moderator_role = 'regress_hostile_moderators';
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_hostile_owner;
GRANT SELECT ON payout.history TO regress_hostile_auditor;
CREATE SCHEMA shop AUTHORIZATION regress_hostile_owner;
GRANT CREATE ON SCHEMA public TO regress_hostile_app;

SET ROLE regress_hostile_owner;
CREATE TABLE shop.pby (
	id int NOT NULL,
	region text NOT NULL,
	amount int NOT NULL DEFAULT 1,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	PRIMARY KEY (id, region)
) PARTITION BY LIST (region);
CREATE TABLE shop.pby_eu PARTITION OF shop.pby FOR VALUES IN ('eu');
CREATE TABLE shop.pby_us PARTITION OF shop.pby FOR VALUES IN ('us');
-- Only the 'us' partition refuses big amounts: a move there can fail late.
ALTER TABLE shop.pby_us ADD CONSTRAINT small CHECK (amount < 1000);
SELECT payout.attach('shop.pby');
-- A second attached partitioned table of the same shape.
CREATE TABLE shop.other (LIKE shop.pby INCLUDING ALL) PARTITION BY LIST (region);
CREATE TABLE shop.other_eu PARTITION OF shop.other FOR VALUES IN ('eu');
CREATE TABLE shop.other_us PARTITION OF shop.other FOR VALUES IN ('us');
SELECT payout.attach('shop.other');
GRANT USAGE ON SCHEMA shop TO regress_hostile_app, regress_hostile_mod,
	regress_hostile_auditor;
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.pby, shop.other
	TO regress_hostile_app, regress_hostile_mod;
RESET ROLE;

-- What the history holds, oldest first, without times.
CREATE FUNCTION pg_temp.history()
RETURNS TABLE (tbl regclass, key text, old_status payout.status,
			   new_status payout.status, old_resolution payout.resolution,
			   new_resolution payout.resolution, user_name text)
LANGUAGE sql AS $$
	SELECT tbl, key, old_status, new_status, old_resolution, new_resolution,
		   user_name
	FROM payout.history ORDER BY id
$$;

SET ROLE regress_hostile_app;
INSERT INTO shop.pby (id, region) VALUES (1, 'eu'), (2, 'eu'), (3, 'eu');
UPDATE shop.pby SET status = 'READY' WHERE id IN (1, 2, 3);
INSERT INTO shop.other (id, region) VALUES (1, 'eu');
UPDATE shop.other SET status = 'READY';
UPDATE shop.other SET status = 'INVOKING';
UPDATE shop.other SET status = 'PROCESSING';
UPDATE shop.other SET status = 'PROCESSED', resolution = 'OK';
RESET ROLE;

--
-- 1. A new payout passed off as the INSERT half of a move.
--
SET ROLE regress_hostile_app;
-- a. Through the role's own temporary partitioned table, with the payout
--    trigger attached by the role itself.
CREATE TEMP TABLE evil (LIKE shop.pby INCLUDING DEFAULTS) PARTITION BY LIST (region);
CREATE TEMP TABLE evil_eu PARTITION OF evil FOR VALUES IN ('eu');
CREATE TEMP TABLE evil_us PARTITION OF evil FOR VALUES IN ('us');
SELECT payout.attach('evil', history => false);
INSERT INTO evil (id, region, status) VALUES (200, 'eu', 'CREATED');
WITH u AS (UPDATE evil SET region = 'us' WHERE id = 200 RETURNING *)
INSERT INTO shop.pby (id, region, status, resolution)
SELECT 200, 'us', 'PROCESSING', 'INVALID_AMOUNT' FROM u;
WITH u AS (UPDATE evil SET region = 'us' WHERE id = 200 RETURNING *)
INSERT INTO shop.pby (id, region, status) SELECT 200, 'us', 'PROCESSED' FROM u;
-- b. Through a second attached table of the DBA's, with a legal move
--    there.
WITH u AS (UPDATE shop.other SET region = 'us' WHERE id = 1 RETURNING *)
INSERT INTO shop.pby (id, region, status, resolution)
SELECT id, region, status, resolution FROM u;
-- c. One MERGE that moves a payout and inserts another whose key prints
--    alike: under these settings two timestamps print the same.
RESET ROLE;
CREATE TABLE shop.stamped (
	at timestamptz NOT NULL,
	region text NOT NULL,
	status payout.status NOT NULL,
	PRIMARY KEY (at, region)
) PARTITION BY LIST (region);
CREATE TABLE shop.stamped_eu PARTITION OF shop.stamped FOR VALUES IN ('eu');
CREATE TABLE shop.stamped_us PARTITION OF shop.stamped FOR VALUES IN ('us');
ALTER TABLE shop.stamped OWNER TO regress_hostile_owner;
ALTER TABLE shop.stamped_eu OWNER TO regress_hostile_owner;
ALTER TABLE shop.stamped_us OWNER TO regress_hostile_owner;
SET ROLE regress_hostile_owner;
SELECT payout.attach('shop.stamped');
GRANT SELECT, INSERT, UPDATE ON shop.stamped TO regress_hostile_app;
SET ROLE regress_hostile_app;
SET timezone = 'Europe/Moscow';
SET datestyle = 'SQL, DMY';
-- 01:30 MSK happened twice on 2014-10-26, at +04 and at +03.
SELECT '2014-10-25 21:30:00+00'::timestamptz::text AS first,
	   '2014-10-25 22:30:00+00'::timestamptz::text AS second;
INSERT INTO shop.stamped VALUES ('2014-10-25 21:30:00+00', 'eu', 'CREATED');
MERGE INTO shop.stamped s
USING (VALUES ('2014-10-25 21:30:00+00'::timestamptz),
			  ('2014-10-25 22:30:00+00'::timestamptz)) AS v(at)
ON s.at = v.at
WHEN MATCHED THEN UPDATE SET region = 'us'
WHEN NOT MATCHED THEN INSERT VALUES (v.at, 'us', 'PROCESSED');
-- The history keys are the same under any settings: ISO, in UTC; an
-- auditor finds the payout with payout.history_key() under any settings.
SET ROLE regress_hostile_auditor;
SELECT key, old_status, new_status FROM payout.history
WHERE tbl = 'shop.stamped'::regclass ORDER BY id;
SELECT key, new_status
FROM payout.timeline('shop.stamped',
					 payout.history_key('2014-10-25 21:30:00+00'::timestamptz, 'eu'::text));
RESET timezone;
RESET datestyle;
SET timezone = 'UTC';
SET ROLE regress_hostile_app;
-- d. A legal move is one change, recorded once, under the attached table;
-- a move that changes only the key (region is part of it) is recorded as
-- that key change, linked to the key before it.
UPDATE shop.pby SET region = 'us', status = 'INVOKING' WHERE id = 3;
UPDATE shop.pby SET region = 'eu' WHERE id = 3;
RESET ROLE;
SELECT * FROM pg_temp.history() WHERE tbl = 'shop.pby'::regclass AND key LIKE '(3,%';
SELECT key, old_key, old_status, new_status FROM payout.history
WHERE tbl = 'shop.pby'::regclass AND old_key IS NOT NULL ORDER BY id;
SELECT tableoid::regclass, * FROM shop.pby ORDER BY id, region;

--
-- 2. A move rolled back to a savepoint, or caught by an exception block,
--    leaves nothing for the next INSERT.
--
SET ROLE regress_hostile_app;
UPDATE shop.pby SET amount = 5000 WHERE id = 2;
BEGIN;
SAVEPOINT s;
UPDATE shop.pby SET region = 'us', status = 'INVOKING' WHERE id = 2;
ROLLBACK TO s;
INSERT INTO shop.pby (id, region) VALUES (2, 'us');
COMMIT;
DO $$
BEGIN
	BEGIN
		UPDATE shop.pby SET region = 'us' WHERE id = 1 AND region = 'eu';
		UPDATE shop.pby SET region = 'us', status = 'INVOKING', amount = 5000
		WHERE id = 1;
	EXCEPTION WHEN check_violation THEN
		RAISE NOTICE 'caught %', SQLERRM;
	END;
	INSERT INTO shop.pby (id, region) VALUES (4, 'us');
END
$$;
RESET ROLE;
SELECT * FROM pg_temp.history()
WHERE tbl = 'shop.pby'::regclass AND key IN ('(2,us)', '(4,us)', '(1,us)');
SELECT * FROM payout.transition_counts('shop.pby');

--
-- 3. History keys do not depend on the writer's settings.
--
SET ROLE regress_hostile_owner;
CREATE TABLE shop.keyed (
	at timestamptz,
	day date,
	n numeric,
	status payout.status NOT NULL,
	PRIMARY KEY (at, day, n)
);
SELECT payout.attach('shop.keyed');
GRANT SELECT, INSERT, UPDATE ON shop.keyed TO regress_hostile_app;
SET ROLE regress_hostile_app;
SET timezone = 'America/New_York';
SET datestyle = 'Postgres, DMY';
INSERT INTO shop.keyed VALUES ('2026-03-01 12:00:00.5+00', '2026-03-01', 1.50, 'CREATED');
SET timezone = 'Asia/Tokyo';
SET datestyle = 'German';
UPDATE shop.keyed SET status = 'READY', n = 1.5000;
RESET timezone;
RESET datestyle;
SET timezone = 'UTC';
RESET ROLE;
SELECT key, old_status, new_status FROM payout.history
WHERE tbl = 'shop.keyed'::regclass ORDER BY id;
SELECT payout.history_key('2026-03-01 12:00:00.5+00'::timestamptz,
						  '2026-03-01'::date, 1.5::numeric) AS key;
SELECT payout.history_key('infinity'::timestamptz), payout.history_key('-infinity'::date),
	   payout.history_key(true), payout.history_key('a b'::text, 'x'::varchar),
	   payout.history_key(NULL::int);
-- Key types without a canonical text are refused for history.
SELECT payout.history_key(1.5::float8);
SET ROLE regress_hostile_owner;
CREATE TABLE shop.floaty (id float8 PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('shop.floaty');
SELECT payout.attach('shop.floaty', history => false);
RESET ROLE;

--
-- 4. Only tables a DBA approved write payout.history.
--
SET ROLE regress_hostile_app;
INSERT INTO payout.history (tbl, key, new_status, xact_time, clock_time,
							user_name, session_user_name, xid)
VALUES ('shop.pby', '(1,eu)', 'CREATED', now(), now(), 'x', 'x', '1');
UPDATE payout.history SET user_name = 'someone else';
DELETE FROM payout.history;
CREATE TEMP TABLE mine (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('mine');
CREATE TABLE public.mine (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('public.mine');
CREATE TRIGGER forged AFTER INSERT ON public.mine
	FOR EACH ROW EXECUTE FUNCTION payout.record_history();
SELECT payout.attach('public.mine', history => false);
INSERT INTO public.mine VALUES (1, 'CREATED');
DROP TABLE public.mine;
RESET ROLE;
-- A trigger a superuser put on a table whose owner has no grant writes
-- nothing either: the grant is checked at every statement.
SET ROLE regress_hostile_app;
CREATE TABLE public.mine (id int PRIMARY KEY, status payout.status NOT NULL);
RESET ROLE;
CREATE TRIGGER forged AFTER INSERT ON public.mine
	FOR EACH ROW EXECUTE FUNCTION payout.record_history();
SET ROLE regress_hostile_app;
INSERT INTO public.mine VALUES (1, 'CREATED');
DROP TABLE public.mine;
RESET ROLE;
-- Revoking the grant stops the history of the owner's tables at once.
REVOKE EXECUTE ON FUNCTION payout.record_history() FROM regress_hostile_owner;
SET ROLE regress_hostile_app;
UPDATE shop.pby SET status = 'INVOKING' WHERE id = 1 AND region = 'eu';
RESET ROLE;
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_hostile_owner;
SELECT count(*) AS forged FROM payout.history
WHERE tbl::text NOT LIKE 'shop.%' OR user_name = 'x';

--
-- 5. Deletes are judged and recorded.
--
SET ROLE regress_hostile_app;
UPDATE shop.pby SET resolution = 'CONNECTION_ERROR' WHERE id = 4;
DELETE FROM shop.pby WHERE id = 4;
DELETE FROM shop.pby WHERE id = 1 AND region = 'eu';
UPDATE shop.pby SET status = 'TERMINATED' WHERE id = 1 AND region = 'eu';
DELETE FROM shop.pby WHERE id = 1 AND region = 'eu';
INSERT INTO shop.pby (id, region) VALUES (1, 'eu');
INSERT INTO shop.pby (id, region, status) VALUES (1, 'us', 'READY');
SET ROLE regress_hostile_mod;
DELETE FROM shop.pby WHERE id = 4;
RESET ROLE;
SELECT * FROM pg_temp.history()
WHERE tbl = 'shop.pby'::regclass AND key IN ('(1,eu)', '(4,us)');
-- With delete_unfinished, a moderator may delete a held payout, and an
-- application still may not.
SET ROLE regress_hostile_owner;
SELECT payout.detach('shop.other');
SELECT payout.attach('shop.other', delete_unfinished => true);
SELECT delete_unfinished FROM payout.attachment('shop.other');
SET ROLE regress_hostile_app;
INSERT INTO shop.other (id, region, resolution) VALUES (7, 'eu', 'UNKNOWN');
DELETE FROM shop.other WHERE id = 7;
SET ROLE regress_hostile_mod;
DELETE FROM shop.other WHERE id = 7;
RESET ROLE;
SELECT key, old_status, new_status, old_resolution, user_name
FROM payout.history WHERE tbl = 'shop.other'::regclass AND key = '(7,eu)' ORDER BY id;

--
-- 6. Inheritance children are refused, before and after attach.
--
SET ROLE regress_hostile_owner;
CREATE TABLE shop.parent (id int PRIMARY KEY, status payout.status NOT NULL);
CREATE TABLE shop.child () INHERITS (shop.parent);
SELECT payout.attach('shop.parent');
DROP TABLE shop.child;
SELECT payout.attach('shop.parent');
CREATE TABLE shop.child () INHERITS (shop.parent);
CREATE TABLE shop.child (id int NOT NULL, status payout.status NOT NULL);
ALTER TABLE shop.child INHERIT shop.parent;
INSERT INTO shop.child VALUES (1, 'PROCESSED');
RESET ROLE;
SELECT count(*) AS children FROM pg_inherits WHERE inhparent = 'shop.parent'::regclass;

--
-- 7. Graph edits are seen and tracked whatever session_replication_role
--    is (a superuser's setting; an apply worker runs with replica).
--
SET ROLE regress_hostile_app;
INSERT INTO shop.pby (id, region) VALUES (10, 'eu'), (11, 'eu');
RESET ROLE;
SET session_replication_role = replica;
DELETE FROM payout.transition WHERE from_status = 'CREATED' AND to_status = 'READY';
RESET session_replication_role;
SELECT * FROM payout.transition_removed;
SET ROLE regress_hostile_app;
UPDATE shop.pby SET status = 'READY' WHERE id = 10;
RESET ROLE;
SET session_replication_role = replica;
INSERT INTO payout.transition VALUES ('CREATED', 'READY');
RESET session_replication_role;
SELECT count(*) AS removed FROM payout.transition_removed;
SET ROLE regress_hostile_app;
UPDATE shop.pby SET status = 'READY' WHERE id = 10;
RESET ROLE;

--
-- 8. Nothing changes the row after the check.
--
SET ROLE regress_hostile_owner;
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.status := 'PROCESSED';
	RETURN NEW;
END
$$;
CREATE TRIGGER zzz_touch BEFORE UPDATE ON shop.pby
	FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE TRIGGER zzz_touch BEFORE INSERT ON shop.pby_eu
	FOR EACH ROW EXECUTE FUNCTION shop.touch();
CREATE TRIGGER aaa_touch BEFORE UPDATE ON shop.pby_eu
	FOR EACH ROW EXECUTE FUNCTION shop.touch();
ALTER TRIGGER aaa_touch ON shop.pby_eu RENAME TO zzz_touch;
CREATE TABLE shop.plain (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('shop.plain');
CREATE TRIGGER zzz_touch BEFORE UPDATE ON shop.plain
	FOR EACH ROW EXECUTE FUNCTION shop.touch();
-- A trigger made while the event trigger was off is caught at the first row.
RESET ROLE;
ALTER EVENT TRIGGER payout_check_ddl DISABLE;
ALTER TRIGGER aaa_touch ON shop.pby_eu RENAME TO zzz_touch;
ALTER EVENT TRIGGER payout_check_ddl ENABLE;
SET ROLE regress_hostile_app;
UPDATE shop.pby SET status = 'INVOKING' WHERE id = 10;
RESET ROLE;
ALTER TABLE shop.pby_eu DISABLE TRIGGER zzz_touch;
SET ROLE regress_hostile_app;
UPDATE shop.pby SET status = 'INVOKING' WHERE id = 10;
RESET ROLE;
-- Enabling it again is refused; a trigger that sorts before the check is
-- fine: the check judges what it did.
ALTER TABLE shop.pby_eu ENABLE TRIGGER zzz_touch;
ALTER TRIGGER zzz_touch ON shop.pby_eu RENAME TO aaa_touch;
ALTER TABLE shop.pby_eu ENABLE TRIGGER aaa_touch;
SET ROLE regress_hostile_app;
UPDATE shop.pby SET status = 'PROCESSING' WHERE id = 10;
RESET ROLE;
DROP TRIGGER aaa_touch ON shop.pby_eu;
-- Generated status columns are refused: they are computed after BEFORE
-- triggers.
SET ROLE regress_hostile_owner;
CREATE TABLE shop.generated (
	id int PRIMARY KEY,
	s payout.status GENERATED ALWAYS AS ('CREATED'::payout.status) STORED
);
SELECT payout.attach('shop.generated', 's');
RESET ROLE;

--
-- 9. Other write paths, as the application: each fails and changes nothing.
--
SET ROLE regress_hostile_app;
COPY shop.pby (id, region, status) FROM STDIN;
20	eu	PROCESSED
\.
INSERT INTO shop.pby (id, region) VALUES (11, 'eu')
ON CONFLICT (id, region) DO UPDATE SET status = 'PROCESSED';
MERGE INTO shop.pby p USING (VALUES (11)) AS v(id) ON p.id = v.id
WHEN MATCHED THEN UPDATE SET status = 'PROCESSED';
CREATE VIEW public.pby_view AS SELECT * FROM shop.pby;
UPDATE public.pby_view SET status = 'PROCESSED' WHERE id = 11;
CREATE RULE sneaky AS ON UPDATE TO shop.pby DO INSTEAD NOTHING;
DROP VIEW public.pby_view;
ALTER TABLE shop.pby DISABLE TRIGGER zz_payout_enforce;
RESET ROLE;

-- What happened, all of it.
SELECT tableoid::regclass, id, region, amount, status, resolution
FROM shop.pby ORDER BY id, region;
SELECT * FROM pg_temp.history() WHERE tbl = 'shop.pby'::regclass;
SELECT * FROM payout.transition_counts('shop.pby');

--
-- Smaller: provider codes know their labels, and the moderator role names
-- no role by default.
--
ALTER TYPE payout.resolution ADD VALUE 'REGRESS_NEW';
INSERT INTO payout.provider_code VALUES ('acme', 'x', 'REGRESS_NEW');
-- A code stored anyway (past the constraint) fails every load, and each
-- failed load leaves no memory behind.
ALTER TABLE payout.provider_code DROP CONSTRAINT provider_code_known_resolution;
INSERT INTO payout.provider_code VALUES ('acme', 'x', 'REGRESS_NEW');
SELECT payout.classify('acme', 'x');
SELECT payout.classify('acme', 'x');
SELECT count(*) AS contexts FROM pg_backend_memory_contexts
WHERE name = 'payout provider codes';
DELETE FROM payout.provider_code;
SELECT payout.classify('acme', 'x');
SELECT count(*) AS contexts FROM pg_backend_memory_contexts
WHERE name = 'payout provider codes';
RESET payout.moderator_role;
SHOW payout.moderator_role;

SET client_min_messages = warning;
DROP TABLE evil, mine;
DROP EXTENSION payout CASCADE;
DROP SCHEMA shop CASCADE;
REVOKE CREATE ON SCHEMA public FROM regress_hostile_app;
DROP ROLE regress_hostile_owner, regress_hostile_app, regress_hostile_mod,
	regress_hostile_moderators, regress_hostile_auditor;
