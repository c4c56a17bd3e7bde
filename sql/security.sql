--
-- security: the extension must not be hijacked through search_path, and an
-- unprivileged role must not be able to change or switch off enforcement.
--
-- An unprivileged role plants, in a schema of its own and in public,
-- operators and functions that shadow the pg_catalog ones the extension
-- uses.  A superuser then puts both schemas ahead of pg_catalog on
-- search_path and installs, uses, drops and reinstalls the extension.  The
-- hostile objects raise a NOTICE with SQLSTATE HOSTL (the only part of a
-- NOTICE that VERBOSITY sqlstate prints), so any call shows up as a diff;
-- their "=" and "<>" also answer true, which would change behaviour.
--
\set VERBOSITY sqlstate

CREATE ROLE regress_payout_evil;
SELECT current_database() AS datname \gset
GRANT CREATE ON DATABASE :"datname" TO regress_payout_evil;
GRANT CREATE ON SCHEMA public TO regress_payout_evil;

--
-- A schema named payout made before the extension is not adopted:
-- CREATE EXTENSION fails (42P06) instead of installing into it.
--
SET ROLE regress_payout_evil;
CREATE SCHEMA payout;
CREATE FUNCTION payout.attach(regclass) RETURNS void
LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'hostile payout.attach' USING ERRCODE = 'HOSTL'; END$$;
RESET ROLE;
CREATE EXTENSION payout;
SELECT count(*) AS payout_extensions FROM pg_catalog.pg_extension WHERE extname = 'payout';
SET ROLE regress_payout_evil;
DROP FUNCTION payout.attach(regclass);
DROP SCHEMA payout;

--
-- Plant the hostile objects, in regress_payout_evil_schema and in public.
--
CREATE SCHEMA regress_payout_evil_schema;
SET search_path = pg_catalog;
DO $do$
DECLARE
	s text;
	t text[];
BEGIN
	FOREACH s IN ARRAY ARRAY['regress_payout_evil_schema', 'public']
	LOOP
		-- "=" and "<>" that say true to everything.  anyenum has the same
		-- signature as pg_catalog's, so it shadows the operators of
		-- payout.status before that type even exists.
		FOREACH t SLICE 1 IN ARRAY ARRAY[
			['name', 'name'], ['oid', 'oid'], ['"char"', '"char"'],
			['text', 'text'], ['anyenum', 'anyenum'],
			['oid', 'regclass'], ['oid', 'regtype']]
		LOOP
			EXECUTE format(
				'CREATE FUNCTION %1$I.hostile_eq(%2$s, %3$s) RETURNS boolean'
				' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE %4$L USING ERRCODE = ''HOSTL''; RETURN true; END$f$',
				s, t[1], t[2], format('hostile %s.=(%s, %s)', s, t[1], t[2]));
			EXECUTE format(
				'CREATE OPERATOR %1$I.= (LEFTARG = %2$s, RIGHTARG = %3$s, FUNCTION = %1$I.hostile_eq)',
				s, t[1], t[2]);
			EXECUTE format(
				'CREATE FUNCTION %1$I.hostile_ne(%2$s, %3$s) RETURNS boolean'
				' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE %4$L USING ERRCODE = ''HOSTL''; RETURN true; END$f$',
				s, t[1], t[2], format('hostile %s.<>(%s, %s)', s, t[1], t[2]));
			EXECUTE format(
				'CREATE OPERATOR %1$I.<> (LEFTARG = %2$s, RIGHTARG = %3$s, FUNCTION = %1$I.hostile_ne)',
				s, t[1], t[2]);
		END LOOP;

		EXECUTE format(
			'CREATE FUNCTION %1$I.hostile_cat(text, text) RETURNS text'
			' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE %2$L USING ERRCODE = ''HOSTL''; RETURN $1; END$f$',
			s, format('hostile %s.||(text, text)', s));
		EXECUTE format(
			'CREATE OPERATOR %1$I.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = %1$I.hostile_cat)',
			s);

		-- Functions named like those the install script and the plpgsql
		-- functions call, with the argument types of those calls, so that
		-- they would be preferred to pg_catalog's if they were visible.
		FOREACH t SLICE 1 IN ARRAY ARRAY[
			['format(text, name)', 'text'],
			['format(text, regclass)', 'text'],
			['format(text, regclass, text)', 'text'],
			['format(text, regtype)', 'text'],
			['nextval(regclass)', 'bigint'],
			['now()', 'timestamptz'],
			['pg_extension_config_dump(regclass, text)', 'void'],
			['set_config(text, text, boolean)', 'text']]
		LOOP
			EXECUTE format(
				'CREATE FUNCTION %1$I.%2$s RETURNS %3$s'
				' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE %4$L USING ERRCODE = ''HOSTL''; RETURN %5$s; END$f$',
				s, t[1], t[2], format('hostile %s.%s', s, t[1]),
				CASE t[2] WHEN 'void' THEN '' ELSE 'NULL' END);
		END LOOP;

		-- Catalogs the plpgsql functions read, shadowed by views.
		EXECUTE format(
			'CREATE FUNCTION %1$I.hostile_read(text) RETURNS boolean'
			' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE ''hostile %%'', $1 USING ERRCODE = ''HOSTL''; RETURN true; END$f$',
			s);
		FOREACH t SLICE 1 IN ARRAY ARRAY[
			['pg_attribute', 'attrelid, attname, atttypid, attnum, attisdropped'],
			['pg_class', 'oid, relname, relnamespace, relkind'],
			['pg_namespace', 'oid, nspname'],
			['pg_trigger', 'oid, tgrelid, tgname, tgparentid'],
			['pg_type', 'oid, typname, typbasetype']]
		LOOP
			EXECUTE format(
				'CREATE VIEW %1$I.%2$I AS SELECT %3$s FROM pg_catalog.%2$I WHERE %1$I.hostile_read(%4$L)',
				s, t[1], t[2], format('%s.%s', s, t[1]));
		END LOOP;
	END LOOP;
END
$do$;

-- The plants, per schema: 15 operators, 24 functions and 5 views.
SELECT n.nspname, o.oprname, count(*)
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
WHERE pg_catalog.pg_get_userbyid(o.oprowner) = 'regress_payout_evil'
GROUP BY 1, 2
ORDER BY n.nspname COLLATE "C", o.oprname COLLATE "C";
SELECT n.nspname, count(*)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE pg_catalog.pg_get_userbyid(p.proowner) = 'regress_payout_evil'
GROUP BY 1
ORDER BY n.nspname COLLATE "C";
SELECT n.nspname, count(*)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE pg_catalog.pg_get_userbyid(c.relowner) = 'regress_payout_evil'
  AND c.relkind = 'v'
GROUP BY 1
ORDER BY n.nspname COLLATE "C";
RESET ROLE;

--
-- As superuser, with the hostile schemas ahead of pg_catalog.  The queries
-- of this test itself avoid the shadowed names (OPERATOR(pg_catalog.=) for
-- statuses), so that any NOTICE comes from the extension.
--
SET search_path = regress_payout_evil_schema, public, pg_catalog;
-- Control: unqualified SQL does reach the plants (one NOTICE each).
SELECT 'a'::name = 'b'::name AS shadowed_eq;
SELECT format('%s', 'pg_class'::regclass) AS shadowed_format;
SELECT count(*) AS shadowed_catalog FROM (SELECT FROM pg_class LIMIT 1) c;
CREATE EXTENSION payout;

-- Once the type exists, exact-match operators on it can be planted too.
SET ROLE regress_payout_evil;
CREATE FUNCTION regress_payout_evil_schema.hostile_eq(payout.status, payout.status)
RETURNS boolean LANGUAGE plpgsql
AS $$BEGIN RAISE NOTICE 'hostile =(payout.status, payout.status)' USING ERRCODE = 'HOSTL'; RETURN true; END$$;
CREATE OPERATOR regress_payout_evil_schema.= (LEFTARG = payout.status, RIGHTARG = payout.status,
	FUNCTION = regress_payout_evil_schema.hostile_eq);
CREATE FUNCTION regress_payout_evil_schema.hostile_ne(payout.status, payout.status)
RETURNS boolean LANGUAGE plpgsql
AS $$BEGIN RAISE NOTICE 'hostile <>(payout.status, payout.status)' USING ERRCODE = 'HOSTL'; RETURN true; END$$;
CREATE OPERATOR regress_payout_evil_schema.<> (LEFTARG = payout.status, RIGHTARG = payout.status,
	FUNCTION = regress_payout_evil_schema.hostile_ne);
RESET ROLE;
-- Control: the exact match is preferred to pg_catalog's anyenum "=".
SELECT 'CREATED'::payout.status = 'READY'::payout.status AS shadowed_status_eq;

SHOW search_path;

CREATE SCHEMA regress_payout_sec;
CREATE TABLE regress_payout_sec.payouts (
	id integer PRIMARY KEY,
	status payout.status,
	resolution payout.resolution
);

-- attach compares names, OIDs and relkinds: each of its checks must give
-- the right answer, which the hostile operators (always true) would not.
-- Missing columns (42703), wrong type (42804), not a table (42809).
SELECT payout.attach('regress_payout_sec.payouts', 'no_such_column');
SELECT payout.attach('regress_payout_sec.payouts', 'status', 'no_such_column');
SELECT payout.attach('regress_payout_sec.payouts', 'id');
SELECT payout.attach('regress_payout_sec.payouts_pkey');
-- No trigger yet, so it is created; then it is there (42710).
SELECT payout.attach('regress_payout_sec.payouts');
SELECT tgname, pg_catalog.pg_get_triggerdef(oid)
FROM pg_catalog.pg_trigger
WHERE tgrelid OPERATOR(pg_catalog.=) 'regress_payout_sec.payouts'::pg_catalog.regclass;
SELECT payout.attach('regress_payout_sec.payouts');

-- The trigger: legal changes pass, illegal ones are rejected (23514).
INSERT INTO regress_payout_sec.payouts (id, status) VALUES
	(1, 'CREATED'), (2, 'CREATED'), (3, 'CREATED');
INSERT INTO regress_payout_sec.payouts (id, status) VALUES (4, 'READY');
UPDATE regress_payout_sec.payouts SET status = 'READY' WHERE id = 1;
UPDATE regress_payout_sec.payouts SET status = 'PROCESSED' WHERE id = 2;
UPDATE regress_payout_sec.payouts SET status = 'CANCELLING' WHERE id = 1;
SELECT payout.can_transition('READY', 'CANCELLING'),
	   payout.can_transition('CREATED', 'READY'),
	   payout.can_transition(NULL, 'CREATED'),
	   payout.next_statuses('READY');

-- Graph edits fire the plpgsql bookkeeping triggers.
-- Add an edge: it is used at once.
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
UPDATE regress_payout_sec.payouts SET status = 'CANCELLING' WHERE id = 1;
-- Delete a default edge: recorded in transition_removed, and enforced.
DELETE FROM payout.transition
WHERE from_status OPERATOR(pg_catalog.=) 'CREATED'
  AND to_status OPERATOR(pg_catalog.=) 'READY';
UPDATE regress_payout_sec.payouts SET status = 'READY' WHERE id = 2;
-- Move a default edge: the old one is recorded as removed.
UPDATE payout.transition SET from_status = 'INVOKING'
WHERE from_status OPERATOR(pg_catalog.=) 'PENDING'
  AND to_status OPERATOR(pg_catalog.=) 'EXPIRED';
SELECT from_status, to_status FROM payout.transition_removed
ORDER BY from_status NULLS FIRST, to_status;
SELECT from_status, to_status FROM payout.transition
EXCEPT
SELECT from_status, to_status FROM payout.default_transition
ORDER BY from_status NULLS FIRST, to_status;
SELECT payout.can_transition('READY', 'CANCELLING'),
	   payout.can_transition('CREATED', 'READY'),
	   payout.can_transition('PENDING', 'EXPIRED'),
	   payout.can_transition('INVOKING', 'EXPIRED');
-- Put a removed default back: it is no longer recorded as removed.
INSERT INTO payout.transition (from_status, to_status) VALUES ('CREATED', 'READY');
UPDATE regress_payout_sec.payouts SET status = 'READY' WHERE id = 2;
SELECT from_status, to_status FROM payout.transition_removed
ORDER BY from_status NULLS FIRST, to_status;
-- TRUNCATE records every default as removed and leaves no edge at all.
TRUNCATE payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;
UPDATE regress_payout_sec.payouts SET status = 'TERMINATED' WHERE id = 3;
SELECT payout.next_statuses(NULL);
-- Back to the defaults.
INSERT INTO payout.transition SELECT * FROM payout.default_transition;
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;
UPDATE regress_payout_sec.payouts SET status = 'TERMINATED' WHERE id = 3;
SELECT id, status FROM regress_payout_sec.payouts ORDER BY id;

-- detach, then attach again with both columns named.
SELECT payout.detach('regress_payout_sec.payouts');
SELECT payout.detach('regress_payout_sec.payouts');
UPDATE regress_payout_sec.payouts SET status = 'CREATED' WHERE id = 3;
SELECT payout.attach('regress_payout_sec.payouts', 'status', 'resolution');
SELECT tgname, pg_catalog.pg_get_triggerdef(oid)
FROM pg_catalog.pg_trigger
WHERE tgrelid OPERATOR(pg_catalog.=) 'regress_payout_sec.payouts'::pg_catalog.regclass;
UPDATE regress_payout_sec.payouts SET status = 'EXPIRED' WHERE id = 1;
UPDATE regress_payout_sec.payouts SET status = 'CANCELLED' WHERE id = 1;

--
-- DROP EXTENSION and CREATE EXTENSION again, still on the hostile path.
-- The operators on payout.status depend on the type: take them out first.
--
SET ROLE regress_payout_evil;
DROP OPERATOR regress_payout_evil_schema.= (payout.status, payout.status);
DROP OPERATOR regress_payout_evil_schema.<> (payout.status, payout.status);
DROP FUNCTION regress_payout_evil_schema.hostile_eq(payout.status, payout.status);
DROP FUNCTION regress_payout_evil_schema.hostile_ne(payout.status, payout.status);
RESET ROLE;
DROP TABLE regress_payout_sec.payouts;
DROP EXTENSION payout;
SELECT count(*) AS payout_schemas FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'payout';
CREATE EXTENSION payout;
-- The graph is the default one, with nothing recorded as removed.
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS not_default FROM (
	(SELECT * FROM payout.transition EXCEPT SELECT * FROM payout.default_transition)
	UNION ALL
	(SELECT * FROM payout.default_transition EXCEPT SELECT * FROM payout.transition)) d;
SELECT count(*) AS removed FROM payout.transition_removed;
-- The new table and enum OIDs are picked up by this backend.
CREATE TABLE regress_payout_sec.payouts (
	id integer PRIMARY KEY,
	status payout.status,
	resolution payout.resolution
);
SELECT payout.attach('regress_payout_sec.payouts');
INSERT INTO regress_payout_sec.payouts (id, status) VALUES (1, 'CREATED'), (2, 'CREATED');
INSERT INTO regress_payout_sec.payouts (id, status) VALUES (3, 'READY');
UPDATE regress_payout_sec.payouts SET status = 'READY' WHERE id = 1;
UPDATE regress_payout_sec.payouts SET status = 'PROCESSED' WHERE id = 2;
DELETE FROM payout.transition
WHERE from_status OPERATOR(pg_catalog.=) 'CREATED'
  AND to_status OPERATOR(pg_catalog.=) 'EXPIRED';
UPDATE regress_payout_sec.payouts SET status = 'EXPIRED' WHERE id = 2;
SELECT from_status, to_status FROM payout.transition_removed
ORDER BY from_status NULLS FIRST, to_status;
INSERT INTO payout.transition (from_status, to_status) VALUES ('CREATED', 'EXPIRED');
UPDATE regress_payout_sec.payouts SET status = 'EXPIRED' WHERE id = 2;
SELECT count(*) AS removed FROM payout.transition_removed;
SELECT id, status FROM regress_payout_sec.payouts ORDER BY id;

-- From here on, pg_catalog alone: the planted "=" (oid, regclass) in public
-- is an exact match for the queries below, and would beat pg_catalog's
-- "=" (oid, oid) even with the default search_path.
SET search_path = pg_catalog;

--
-- SECURITY DEFINER functions pin their search_path.
--
-- Every function in schema payout, with its SECURITY DEFINER flag and
-- whether the extension owns it: a new SECURITY DEFINER function, or a
-- function left outside the extension, shows up here as a diff.
SELECT p.oid::pg_catalog.regprocedure AS function,
	   p.prosecdef AS security_definer,
	   EXISTS (SELECT FROM pg_catalog.pg_depend d
			   JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
			   WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
				 AND d.objid = p.oid
				 AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
				 AND d.deptype = 'e'
				 AND e.extname = 'payout') AS member
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'payout'::pg_catalog.regnamespace
ORDER BY p.oid::pg_catalog.regprocedure::text COLLATE "C";
-- Functions the extension owns outside schema payout: none.
SELECT d.objid::pg_catalog.regprocedure AS function
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
JOIN pg_catalog.pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
  AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
  AND d.deptype = 'e'
  AND e.extname = 'payout'
  AND p.pronamespace <> 'payout'::pg_catalog.regnamespace;
-- The SECURITY DEFINER ones and their settings.
SELECT p.oid::pg_catalog.regprocedure AS function, p.proconfig
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'payout'::pg_catalog.regnamespace
  AND p.prosecdef
ORDER BY p.oid::pg_catalog.regprocedure::text COLLATE "C";
-- SECURITY DEFINER functions without search_path: none.
SELECT count(*) AS secdef_without_search_path
FROM pg_catalog.pg_proc p
WHERE p.pronamespace = 'payout'::pg_catalog.regnamespace
  AND p.prosecdef
  AND NOT EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c
				  WHERE c LIKE 'search\_path=%');

--
-- An unprivileged role may use a table's trigger, but not change the graph
-- nor switch the trigger off.  It is given every right on the table except
-- ownership.
--
GRANT USAGE ON SCHEMA regress_payout_sec TO regress_payout_evil;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES
	ON regress_payout_sec.payouts TO regress_payout_evil;
CREATE TEMP TABLE graph_before AS SELECT * FROM payout.transition;
SET ROLE regress_payout_evil;
SET search_path = pg_catalog;
-- The graph may be read.
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS default_edges FROM payout.default_transition;
SELECT count(*) AS removed FROM payout.transition_removed;
-- The graph may not be changed (42501).
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
UPDATE payout.transition SET to_status = 'CANCELLING' WHERE to_status = 'EXPIRED';
DELETE FROM payout.transition;
TRUNCATE payout.transition;
INSERT INTO payout.transition_removed (from_status, to_status) VALUES ('CREATED', 'READY');
UPDATE payout.transition_removed SET to_status = 'READY';
DELETE FROM payout.transition_removed;
TRUNCATE payout.transition_removed;
INSERT INTO payout.default_transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
UPDATE payout.default_transition SET to_status = 'CANCELLING' WHERE to_status = 'EXPIRED';
DELETE FROM payout.default_transition;
TRUNCATE payout.default_transition;
ALTER TABLE payout.transition DISABLE TRIGGER transition_changed;
ALTER TABLE payout.transition DISABLE TRIGGER ALL;
-- The trigger may not be switched off (42501).
ALTER TABLE regress_payout_sec.payouts DISABLE TRIGGER zz_payout_enforce;
ALTER TABLE regress_payout_sec.payouts DISABLE TRIGGER ALL;
DROP TRIGGER zz_payout_enforce ON regress_payout_sec.payouts;
SELECT payout.detach('regress_payout_sec.payouts');
SET session_replication_role = replica;
SHOW session_replication_role;
-- It is enforced: a legal change passes, an illegal one fails (23514).
UPDATE regress_payout_sec.payouts SET status = 'INVOKING' WHERE id = 1;
UPDATE regress_payout_sec.payouts SET status = 'CREATED' WHERE id = 1;
INSERT INTO regress_payout_sec.payouts (id, status) VALUES (3, 'PROCESSED');
SELECT id, status FROM regress_payout_sec.payouts ORDER BY id;
-- The SECURITY DEFINER bookkeeping functions run as the extension's owner
-- and write payout.transition_removed and payout.transition: they must not
-- be attachable to a table of the caller's own, which any role can make
-- (a temporary table needs no grant).  CREATE TRIGGER must fail (42501).
CREATE TEMP TABLE edges (from_status payout.status, to_status payout.status);
CREATE TRIGGER steal_removed AFTER INSERT OR UPDATE OR DELETE ON edges
	FOR EACH ROW EXECUTE FUNCTION payout.track_removed_defaults();
CREATE TRIGGER steal_removed_truncate AFTER TRUNCATE ON edges
	FOR EACH STATEMENT EXECUTE FUNCTION payout.track_removed_defaults();
CREATE TRIGGER steal_apply AFTER INSERT ON edges
	FOR EACH ROW EXECUTE FUNCTION payout.apply_removed_default();
INSERT INTO edges (from_status, to_status) VALUES ('CREATED', 'READY');
DELETE FROM edges;
INSERT INTO edges (from_status, to_status) VALUES ('READY', 'EXPIRED');
TRUNCATE edges;
DROP TABLE edges;
RESET ROLE;
-- The graph is unchanged.
SELECT count(*) AS changed FROM (
	(SELECT * FROM payout.transition EXCEPT SELECT * FROM graph_before)
	UNION ALL
	(SELECT * FROM graph_before EXCEPT SELECT * FROM payout.transition)) d;
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS default_edges FROM payout.default_transition;
SELECT count(*) AS removed FROM payout.transition_removed;
SELECT tgname, tgenabled
FROM pg_catalog.pg_trigger
WHERE tgrelid = 'regress_payout_sec.payouts'::pg_catalog.regclass
ORDER BY tgname;

--
-- Clean up.
--
DROP TABLE graph_before;
DROP TABLE regress_payout_sec.payouts;
DROP SCHEMA regress_payout_sec;
DROP EXTENSION payout;
SET client_min_messages = warning;
DROP OWNED BY regress_payout_evil;
RESET client_min_messages;
DROP ROLE regress_payout_evil;
RESET search_path;
SELECT count(*) AS left_over_hostile_functions
FROM pg_catalog.pg_proc
WHERE proname IN ('hostile_eq', 'hostile_ne', 'hostile_cat', 'hostile_read')
   OR (proname IN ('format', 'nextval', 'now', 'pg_extension_config_dump', 'set_config')
	   AND pronamespace <> 'pg_catalog'::pg_catalog.regnamespace);
