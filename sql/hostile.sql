--
-- hostile: every way around the rules and the history that the reviews
-- found on 1.0 and 1.1, tried as the role that wants to break them, with
-- only the grants doc/security.md recommends:
--   regress_hostile_owner   owns the payout tables, may keep history
--   regress_hostile_app     SELECT, INSERT, UPDATE, DELETE on them, TEMP,
--                           CREATE on public
--   regress_hostile_mod     a member of the moderator role
--   regress_hostile_op      a member of the operator role (from section 11)
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
-- 10. Inheritance of any kind is refused on attached tables, foreign tables
--     included: the rows of a child, reached through the attached table,
--     would change unchecked and unrecorded.  Tried by the owner, with a
--     foreign server it may use.
--
CREATE FOREIGN DATA WRAPPER regress_hostile_fdw;
CREATE SERVER regress_hostile_server FOREIGN DATA WRAPPER regress_hostile_fdw;
GRANT USAGE ON FOREIGN SERVER regress_hostile_server TO regress_hostile_owner;
SET ROLE regress_hostile_owner;
CREATE FOREIGN TABLE shop.remote () INHERITS (shop.parent)
	SERVER regress_hostile_server;
CREATE FOREIGN TABLE shop.remote (id int NOT NULL, status payout.status NOT NULL)
	SERVER regress_hostile_server;
ALTER FOREIGN TABLE shop.remote INHERIT shop.parent;
ALTER TABLE shop.remote INHERIT shop.parent;
-- attach() refuses a table with a foreign child.
CREATE TABLE shop.parent2 (id int PRIMARY KEY, status payout.status NOT NULL);
CREATE FOREIGN TABLE shop.remote2 () INHERITS (shop.parent2)
	SERVER regress_hostile_server;
SELECT payout.attach('shop.parent2');
RESET ROLE;
SELECT count(*) AS children FROM pg_inherits WHERE inhparent = 'shop.parent'::regclass;
SELECT count(*) AS attached FROM pg_trigger WHERE tgrelid = 'shop.parent2'::regclass;

--
-- 11. Notifications are hints, not commands: anyone may send one, naming
--     any table.  An operator's tool claims from the table it was
--     configured with; and payout acts only on tables whose owner the
--     caller trusts, so not on a table the application owns and attached
--     for itself, whose triggers would run with the operator's rights.
--
CREATE ROLE regress_hostile_operators NOLOGIN;
CREATE ROLE regress_hostile_op IN ROLE regress_hostile_operators;
SET payout.operator_role = 'regress_hostile_operators';
SET payout.moderator_role = 'regress_hostile_moderators';
SET ROLE regress_hostile_owner;
CREATE TABLE shop.manual (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean NOT NULL DEFAULT false,
	created_at date NOT NULL
);
SELECT payout.attach('shop.manual', notify => true);
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.manual
	TO regress_hostile_app, regress_hostile_mod;
GRANT SELECT, UPDATE ON shop.manual TO regress_hostile_operators;
GRANT USAGE ON SCHEMA shop TO regress_hostile_operators;
SET ROLE regress_hostile_app;
INSERT INTO shop.manual (id, created_at)
SELECT g, date '2026-01-01' + g FROM generate_series(1, 4) g;
UPDATE shop.manual SET status = 'READY';
-- The application's own table, attached by itself without history, and a
-- trigger on it that turns payout 2 automatic for whoever may.
CREATE TABLE public.lure (id int PRIMARY KEY, status payout.status NOT NULL,
						  autoprocess boolean NOT NULL DEFAULT false);
SELECT payout.attach('public.lure', history => false);
CREATE FUNCTION public.lure() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	BEGIN
		UPDATE shop.manual SET autoprocess = true WHERE id = 2;
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	RETURN NEW;
END
$$;
CREATE TRIGGER aaa_lure BEFORE UPDATE ON public.lure
	FOR EACH ROW EXECUTE FUNCTION public.lure();
GRANT SELECT, UPDATE ON public.lure TO regress_hostile_operators;
INSERT INTO public.lure VALUES (1, 'CREATED');
UPDATE public.lure SET status = 'READY';
-- The notification, forged: the same payload the trigger would send.
SELECT pg_notify('payout_manual', '{"table": "public.lure", "key": "1", "status": "READY"}');
-- The operator's tool: the payload's table is not its own, so it claims
-- from its own table.  Passing the payload's table on, as 1.1's guide
-- said, is refused: the table's owner is not trusted.
SET ROLE regress_hostile_op;
SELECT key FROM payout.claim('shop.manual', 1, manual => true) AS key;
SELECT payout.claim('public.lure', 1, manual => true);
SELECT * FROM payout.claim_rows(NULL::public.lure, 1, manual => true);
SELECT * FROM payout.manual_queue(NULL::public.lure);
SELECT * FROM payout.advance(NULL::public.lure, '1', 'READY', 'INVOKING');
-- The application claims from its own table: it trusts itself.
SET ROLE regress_hostile_app;
SELECT count(*) AS own FROM payout.claim_rows(NULL::public.lure, 1);
RESET ROLE;
SELECT id, status, autoprocess FROM shop.manual ORDER BY id;
SELECT id, status FROM public.lure;
-- A partition with an owner of its own is a table of its own.
SET ROLE regress_hostile_owner;
CREATE TABLE shop.split (id int PRIMARY KEY, status payout.status NOT NULL)
	PARTITION BY LIST (id);
CREATE TABLE shop.split_a PARTITION OF shop.split FOR VALUES IN (1);
CREATE TABLE shop.split_b PARTITION OF shop.split FOR VALUES IN (2);
SELECT payout.attach('shop.split', history => false);
GRANT SELECT, UPDATE ON shop.split TO regress_hostile_op;
RESET ROLE;
ALTER TABLE shop.split_b OWNER TO regress_hostile_app;
SET ROLE regress_hostile_op;
SELECT payout.claim('shop.split', 1);
RESET ROLE;

--
-- 12. The queues and decisions of moderators and operators cannot be
--     hijacked.  The application puts "=" operators of payout.status and
--     payout.resolution into public, on their search_path: a query written
--     by hand uses them, runs the application's code with their rights and
--     picks other payouts.  payout's functions qualify every operator.
--
SET ROLE regress_hostile_app;
CREATE FUNCTION public.status_eq(payout.status, payout.status) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'hijacked by %', current_user;
	BEGIN
		UPDATE shop.manual SET autoprocess = true WHERE id = 3;
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	RETURN true;
END
$$;
CREATE OPERATOR public.= (FUNCTION = public.status_eq,
						  LEFTARG = payout.status, RIGHTARG = payout.status);
CREATE FUNCTION public.resolution_eq(payout.resolution, payout.resolution)
RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR public.= (FUNCTION = public.resolution_eq,
						  LEFTARG = payout.resolution, RIGHTARG = payout.resolution);
-- Payouts 5 to 8 held for moderation, with two resolutions.
INSERT INTO shop.manual (id, created_at)
SELECT g, date '2026-01-01' + g FROM generate_series(5, 8) g;
UPDATE shop.manual SET status = 'READY' WHERE id > 4;
UPDATE shop.manual SET resolution = 'CONNECTION_ERROR' WHERE id IN (5, 6);
UPDATE shop.manual SET resolution = 'PROVIDER_INTERNAL_ERROR' WHERE id IN (7, 8);
-- The operator's queue as 1.1's guide wrote it, tried and rolled back:
-- every row is "READY", and payout 3 turned automatic by the operator.
SET ROLE regress_hostile_op;
SHOW search_path;
BEGIN;
SELECT id FROM shop.manual
WHERE status = 'READY' AND autoprocess IS NOT TRUE
ORDER BY created_at;
SELECT id, autoprocess FROM shop.manual WHERE id = 3;
ROLLBACK;
-- The same with payout's functions: nothing of the application's runs.
SELECT id, status, resolution FROM payout.manual_queue(NULL::shop.manual);
SELECT id, status FROM payout.claim_rows(NULL::shop.manual, 1, manual => true);
SELECT id, status, resolution
FROM payout.advance(NULL::shop.manual, '2', 'INVOKING', 'PROCESSING', 'OK');
SELECT id, status, resolution
FROM payout.advance(NULL::shop.manual, '2', 'PROCESSING', 'PROCESSED');
SELECT id, status, resolution
FROM payout.advance(NULL::shop.manual, '2', 'PROCESSING', 'PROCESSED');
-- A moderator's bulk release as 1.1's guide wrote it releases every held
-- payout, not only those it chose (rolled back):
SET ROLE regress_hostile_mod;
BEGIN;
UPDATE shop.manual SET resolution = 'OK'
WHERE payout.requires_moderation(status, resolution)
  AND resolution IN ('CONNECTION_ERROR')
RETURNING id;
ROLLBACK;
-- and with payout's functions, only those.
SELECT id, resolution
FROM payout.moderation_queue(NULL::shop.manual, 10, '{CONNECTION_ERROR}');
SELECT r.id, r.status, r.resolution
FROM payout.moderation_queue(NULL::shop.manual, 10, '{CONNECTION_ERROR}') AS q,
	 LATERAL payout.release(NULL::shop.manual, payout.history_key(q.id)) AS r;
SELECT id, status, resolution FROM payout.end_held(NULL::shop.manual, '7');
SELECT id, status, resolution FROM payout.end_held(NULL::shop.manual, '7');
SELECT id, status, resolution FROM payout.release(NULL::shop.manual, '7');
SELECT * FROM payout.end_held(NULL::shop.manual, '8', 'CONNECTION_ERROR');
-- The functions decide nothing the trigger would not let the caller do.
SET ROLE regress_hostile_app;
SELECT * FROM payout.release(NULL::shop.manual, '8');
SELECT * FROM payout.advance(NULL::shop.manual, '4', 'READY', 'INVOKING');
DROP OPERATOR public.= (payout.status, payout.status);
DROP OPERATOR public.= (payout.resolution, payout.resolution);
RESET ROLE;
SELECT id, status, resolution, autoprocess FROM shop.manual ORDER BY id;
SELECT key, old_status, new_status, old_resolution, new_resolution, user_name
FROM payout.history WHERE tbl = 'shop.manual'::regclass AND old_status IS NOT NULL
ORDER BY id;

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

--
-- 13. Nothing of a role's code runs with the rights of the superuser who
--     attaches, checks or detaches its table: no domain CHECK (a NULL cast
--     to a domain runs it), no function that planning would fold.  The
--     owner's trap makes it a superuser if it runs as one.
--
DROP TABLE evil, mine;
CREATE SCHEMA trap AUTHORIZATION regress_hostile_owner;
SET ROLE regress_hostile_owner;
CREATE FUNCTION trap.promote(anyelement) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'trap evaluated as %', current_user;
	BEGIN
		ALTER ROLE regress_hostile_owner SUPERUSER;
	EXCEPTION WHEN insufficient_privilege THEN
		NULL;
	END;
	RETURN true;
END
$$;
CREATE FUNCTION trap.folded() RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN trap.promote(0);
END
$$;
CREATE DOMAIN trap.key AS int CHECK (trap.promote(VALUE));
CREATE DOMAIN trap.code AS text CHECK (trap.promote(VALUE));
CREATE DOMAIN trap.real AS float8 CHECK (trap.promote(VALUE));
CREATE TABLE trap.payouts (
	id trap.key,
	code trap.code,
	status payout.status NOT NULL,
	resolution payout.resolution,
	created_at timestamptz,
	PRIMARY KEY (id, code)
);
-- Building the index folds the predicate, as the owner.
CREATE INDEX payouts_folded ON trap.payouts (created_at) WHERE trap.folded();
CREATE TABLE trap.floaty (id trap.real PRIMARY KEY, status payout.status NOT NULL);
RESET ROLE;
-- A session of the superuser's own, which has not read the index yet.
\c
SET timezone = 'UTC';
SET datestyle = 'ISO, MDY';
SELECT payout.attach('trap.payouts');
SELECT * FROM payout.check('trap.payouts');
SELECT pg_get_triggerdef(oid) FROM pg_trigger
WHERE tgrelid = 'trap.payouts'::regclass AND tgname = 'zz_payout_history_update';
SELECT payout.detach('trap.payouts');
SELECT payout.attach('trap.floaty');
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_hostile_owner';

SET client_min_messages = warning;
DROP EXTENSION payout CASCADE;
RESET client_min_messages;

--
-- 14. Nor does an update of the extension, run by a superuser: a table a
--     role attached on 1.0 (which let any role keep history) and one it
--     attached on 1.1, each with a key of its own domain, are attached
--     again, and their history trigger made again, from the catalogs.
--
CREATE EXTENSION payout VERSION '1.0';
SET ROLE regress_hostile_owner;
CREATE TABLE trap.on10 (id trap.key PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('trap.on10');
RESET ROLE;
ALTER EXTENSION payout UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'payout';
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_hostile_owner';
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
WHERE tgrelid = 'trap.on10'::regclass ORDER BY tgname;
DROP EXTENSION payout CASCADE;
CREATE EXTENSION payout VERSION '1.1';
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_hostile_owner;
SET ROLE regress_hostile_owner;
CREATE TABLE trap.on11 (id trap.key PRIMARY KEY, status payout.status NOT NULL);
-- 1.1's own attach() runs the CHECK, as the owner, who is no superuser.
SELECT payout.attach('trap.on11');
RESET ROLE;
ALTER TABLE trap.on11 ENABLE ALWAYS TRIGGER zz_payout_history_update;
ALTER EXTENSION payout UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'payout';
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_hostile_owner';
SELECT tgname, tgenabled, pg_get_triggerdef(oid) FROM pg_trigger
WHERE tgrelid = 'trap.on11'::regclass AND tgname = 'zz_payout_history_update';

SET client_min_messages = warning;
DROP EXTENSION payout CASCADE;
DROP SCHEMA shop, trap CASCADE;
DROP TABLE public.lure;
DROP FUNCTION public.lure();
DROP SERVER regress_hostile_server;
DROP FOREIGN DATA WRAPPER regress_hostile_fdw;
REVOKE CREATE ON SCHEMA public FROM regress_hostile_app;
DROP ROLE regress_hostile_owner, regress_hostile_app, regress_hostile_mod,
	regress_hostile_moderators, regress_hostile_auditor, regress_hostile_op,
	regress_hostile_operators;
