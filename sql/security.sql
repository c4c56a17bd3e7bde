--
-- security: the extension must not be hijacked through search_path, and an
-- unprivileged role must not be able to change or switch off enforcement.
--
-- An unprivileged role plants, in a schema of its own and in public,
-- operators and functions that shadow the pg_catalog ones the extension
-- uses.  A superuser then puts both schemas ahead of pg_catalog on
-- search_path and installs, uses, drops and reinstalls the extension, and
-- a second unprivileged role uses it with its own plants, in a schema first
-- on its own search_path.  The hostile objects raise a NOTICE with SQLSTATE
-- HOSTL (the only part of a NOTICE that VERBOSITY sqlstate prints), so any
-- call shows up as a diff; their "=" and "<>" also answer true, which would
-- change behaviour.
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

--
-- The rest of the API on the same path: a work queue with history, claimed
-- and expired, its history read back, provider answers classified, and the
-- status helpers.  First more plants, for the names those functions use.
-- plant(s) makes, in schema s and owned by its caller, each plant that s
-- does not have yet.  coalesce and nullif are syntax, not functions, and
-- cannot be shadowed; the "=" that nullif calls is planted.
--
CREATE FUNCTION regress_payout_sec.plant(s name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $plant$
DECLARE
	t text[];
	body text := ' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE %L USING ERRCODE = ''HOSTL''; RETURN %s; END$f$';
BEGIN
	-- Operators: name, function, left and right types, result type and
	-- value.  Comparisons answer true, arithmetic a wrong number or NULL.
	FOREACH t SLICE 1 IN ARRAY ARRAY[
		['=', 'hostile_eq', 'name', 'name', 'boolean', 'true'],
		['=', 'hostile_eq', 'oid', 'oid', 'boolean', 'true'],
		['=', 'hostile_eq', 'oid', 'regclass', 'boolean', 'true'],
		['=', 'hostile_eq', 'text', 'text', 'boolean', 'true'],
		['=', 'hostile_eq', 'smallint', 'smallint', 'boolean', 'true'],
		['=', 'hostile_eq', 'integer', 'integer', 'boolean', 'true'],
		['=', 'hostile_eq', 'regclass', 'regclass', 'boolean', 'true'],
		['=', 'hostile_eq', 'regtype', 'regtype', 'boolean', 'true'],
		['=', 'hostile_eq', 'payout.status', 'payout.status', 'boolean', 'true'],
		['=', 'hostile_eq', 'payout.resolution', 'payout.resolution', 'boolean', 'true'],
		['<>', 'hostile_ne', '"char"', '"char"', 'boolean', 'true'],
		['<>', 'hostile_ne', 'name', 'name', 'boolean', 'true'],
		['<>', 'hostile_ne', 'oid', 'oid', 'boolean', 'true'],
		['<>', 'hostile_ne', 'regtype', 'regtype', 'boolean', 'true'],
		['<>', 'hostile_ne', 'payout.status', 'payout.status', 'boolean', 'true'],
		['<', 'hostile_lt', 'integer', 'integer', 'boolean', 'true'],
		['<', 'hostile_lt', 'interval', 'interval', 'boolean', 'true'],
		['<', 'hostile_lt', 'timestamptz', 'timestamptz', 'boolean', 'true'],
		['<', 'hostile_lt', 'date', 'timestamptz', 'boolean', 'true'],
		['>=', 'hostile_ge', 'integer', 'integer', 'boolean', 'true'],
		['>=', 'hostile_ge', 'timestamptz', 'timestamptz', 'boolean', 'true'],
		['+', 'hostile_add', 'integer', 'integer', 'integer', '0'],
		['-', 'hostile_sub', 'integer', 'integer', 'integer', '0'],
		['-', 'hostile_sub', 'timestamptz', 'interval', 'timestamptz', 'NULL'],
		['||', 'hostile_cat', 'text', 'text', 'text', 'NULL'],
		['||', 'hostile_cat', 'text[]', 'text', 'text[]', 'NULL'],
		['=', 'hostile_eq', 'bigint', 'bigint', 'boolean', 'true'],
		['<', 'hostile_lt', 'bigint', 'bigint', 'boolean', 'true'],
		['<=', 'hostile_le', 'bigint', 'bigint', 'boolean', 'true'],
		['>', 'hostile_gt', 'bigint', 'bigint', 'boolean', 'true'],
		['->', 'hostile_get', 'jsonb', 'text', 'jsonb', 'NULL'],
		['->>', 'hostile_get_text', 'jsonb', 'text', 'text', 'NULL']]
	LOOP
		CONTINUE WHEN to_regoperator(format('%I.%s(%s,%s)', s, t[1], t[3], t[4])) IS NOT NULL;
		EXECUTE format('CREATE FUNCTION %I.%I(%s, %s) RETURNS %s' || body,
					   s, t[2], t[3], t[4], t[5],
					   format('hostile %s.%s(%s, %s)', s, t[1], t[3], t[4]), t[6]);
		EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.%I)',
					   s, t[1], t[3], t[4], s, t[2]);
	END LOOP;

	-- Functions, with the argument types of the calls that claim, expire,
	-- attachment and the history trigger make.
	FOREACH t SLICE 1 IN ARRAY ARRAY[
		['now()', 'timestamptz', 'NULL'],
		['nextval(regclass)', 'bigint', 'NULL'],
		['format(text, name)', 'text', 'NULL'],
		['format(text, name, name)', 'text', 'NULL'],
		['format(text, regclass, text)', 'text', 'NULL'],
		['format(text, regclass, text, text)', 'text', 'NULL'],
		['format(text, regclass, name, text, name)', 'text', 'NULL'],
		['format(text, regclass, name, text, text, text, text)', 'text', 'NULL'],
		['format(text, regtype)', 'text', 'NULL'],
		['quote_ident(text)', 'text', 'NULL'],
		['current_setting(text)', 'text', 'NULL'],
		['convert_from(bytea, text)', 'text', 'NULL'],
		['lower(text)', 'text', 'NULL'],
		['jsonb_typeof(jsonb)', 'text', 'NULL'],
		['jsonb_build_array(jsonb)', 'jsonb', 'NULL'],
		['pg_sequence_last_value(regclass)', 'bigint', 'NULL'],
		['encode(bytea, text)', 'text', 'NULL'],
		['hostile_count(bigint)', 'bigint', '$1'],
		['hostile_count(bigint, text)', 'bigint', '$1'],
		['hostile_agg(text, text, text)', 'text', 'NULL']]
	LOOP
		CONTINUE WHEN to_regprocedure(format('%I.%s', s, t[1])) IS NOT NULL;
		EXECUTE format('CREATE FUNCTION %I.%s RETURNS %s' || body,
					   s, t[1], t[2], format('hostile %s.%s', s, t[1]), t[3]);
	END LOOP;
	IF to_regprocedure(format('%I.jsonb_array_elements(jsonb)', s)) IS NULL THEN
		EXECUTE format('CREATE FUNCTION %I.jsonb_array_elements(jsonb) RETURNS SETOF jsonb'
					   ' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE %L USING ERRCODE = ''HOSTL''; END$f$',
					   s, format('hostile %s.jsonb_array_elements(jsonb)', s));
	END IF;
	IF to_regprocedure(format('%I.unnest(anyarray)', s)) IS NULL THEN
		EXECUTE format('CREATE FUNCTION %I.unnest(anyarray) RETURNS SETOF anyelement'
					   ' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE %L USING ERRCODE = ''HOSTL''; END$f$',
					   s, format('hostile %s.unnest(anyarray)', s));
	END IF;

	-- Aggregates: count(*) and count(text) answer -1, string_agg NULL.
	IF to_regprocedure(format('%I.count()', s)) IS NULL THEN
		EXECUTE format('CREATE AGGREGATE %1$I.count(*) (SFUNC = %1$I.hostile_count, STYPE = bigint, INITCOND = ''-1'')', s);
	END IF;
	IF to_regprocedure(format('%I.count(text)', s)) IS NULL THEN
		EXECUTE format('CREATE AGGREGATE %1$I.count(text) (SFUNC = %1$I.hostile_count, STYPE = bigint, INITCOND = ''-1'')', s);
	END IF;
	IF to_regprocedure(format('%I.string_agg(text, text)', s)) IS NULL THEN
		EXECUTE format('CREATE AGGREGATE %1$I.string_agg(text, text) (SFUNC = %1$I.hostile_agg, STYPE = text)', s);
	END IF;

	-- Catalogs, shadowed by views.
	IF to_regprocedure(format('%I.hostile_read(text)', s)) IS NULL THEN
		EXECUTE format('CREATE FUNCTION %I.hostile_read(text) RETURNS boolean'
					   ' LANGUAGE plpgsql AS $f$BEGIN RAISE NOTICE ''hostile %%'', $1 USING ERRCODE = ''HOSTL''; RETURN true; END$f$',
					   s);
	END IF;
	FOREACH t SLICE 1 IN ARRAY ARRAY[
		['pg_attribute', 'attrelid, attname, atttypid, attnum, attisdropped'],
		['pg_class', 'oid, relname, relnamespace, relkind'],
		['pg_index', 'indrelid, indkey, indisprimary'],
		['pg_namespace', 'oid, nspname'],
		['pg_trigger', 'oid, tgrelid, tgname, tgparentid, tgnargs, tgargs'],
		['pg_type', 'oid, typname, typbasetype']]
	LOOP
		CONTINUE WHEN to_regclass(format('%I.%I', s, t[1])) IS NOT NULL;
		EXECUTE format('CREATE VIEW %1$I.%2$I AS SELECT %3$s FROM pg_catalog.%2$I WHERE %1$I.hostile_read(%4$L)',
					   s, t[1], t[2], format('%s.%s', s, t[1]));
	END LOOP;
END
$plant$;
GRANT USAGE ON SCHEMA regress_payout_sec TO regress_payout_evil;
SET ROLE regress_payout_evil;
SELECT regress_payout_sec.plant('regress_payout_evil_schema');
RESET ROLE;
REVOKE USAGE ON SCHEMA regress_payout_sec FROM regress_payout_evil;
-- Control: each new plant is reached from unqualified SQL on this path, as
-- its NOTICE, printed in full here, says.
\set VERBOSITY terse
SELECT 1 = 2 AS eq, 1::smallint = 2::smallint AS eq_int2, 2 < 1 AS lt,
	   1 >= 2 AS ge, 1 + 1 AS add, 2 - 1 AS sub;
SELECT 'pg_class'::regclass = 'pg_type'::regclass AS eq_regclass,
	   'int4'::regtype = 'text'::regtype AS eq_regtype,
	   'int4'::regtype <> 'int4'::regtype AS ne_regtype;
SELECT 'CREATED'::payout.status = 'READY'::payout.status AS eq_status,
	   'CREATED'::payout.status <> 'CREATED'::payout.status AS ne_status,
	   'OK'::payout.resolution = 'UNKNOWN'::payout.resolution AS eq_resolution;
SELECT '1 day'::interval < '0'::interval AS lt_interval,
	   'infinity'::timestamptz < '-infinity'::timestamptz AS lt_timestamptz,
	   'infinity'::date < '-infinity'::timestamptz AS lt_date,
	   '-infinity'::timestamptz >= 'infinity'::timestamptz AS ge_timestamptz,
	   'epoch'::timestamptz - '1 day'::interval AS sub_interval;
SELECT ARRAY['a'] || 'b'::text AS cat_array;
SELECT format('%s', 'n'::name, 'n'::name) AS format_2,
	   format('%s', 'pg_class'::regclass, 't'::text, 't'::text) AS format_3,
	   format('%s', 'pg_class'::regclass, 'n'::name, 't'::text, 'n'::name) AS format_4,
	   format('%s', 'pg_class'::regclass, 'n'::name, 't'::text, 't'::text,
			  't'::text, 't'::text) AS format_6;
SELECT quote_ident('a b') AS quote_ident,
	   current_setting('server_encoding'::text) AS current_setting,
	   convert_from('\x61'::bytea, 'UTF8'::text) AS convert_from,
	   lower('A'::text) AS lower;
SELECT count(*) AS count_star FROM (VALUES (1)) v;
SELECT count(x) AS count_text FROM (VALUES ('a'::text)) v(x);
SELECT string_agg(x, ',') AS string_agg FROM (VALUES ('a'::text)) v(x);
SELECT * FROM unnest(ARRAY[1]) AS u;
SELECT EXISTS (SELECT FROM pg_index) AS shadowed_index;
SELECT 1::bigint = 2::bigint AS eq_int8, 2::bigint < 1::bigint AS lt_int8,
	   2::bigint <= 1::bigint AS le_int8, 1::bigint > 2::bigint AS gt_int8;
SELECT '{"a": 1}'::jsonb -> 'a' AS get, '{"a": 1}'::jsonb ->> 'a' AS get_text,
	   jsonb_typeof('1'::jsonb) AS jsonb_typeof,
	   jsonb_build_array('1'::jsonb) AS jsonb_build_array,
	   pg_sequence_last_value('payout.history_id_seq'::regclass) AS last_value,
	   encode('\x61'::bytea, 'hex'::text) AS encode;
SELECT * FROM jsonb_array_elements('[1]'::jsonb) AS e;
\set VERBOSITY sqlstate

-- The queue: 1 to 5 are created, 1 to 4 made READY, 2 held (an error
-- resolution), 4 and 5 recent.  The test's own statements qualify every
-- operator.
CREATE TABLE regress_payout_sec.queue (
	id integer PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT '2000-01-01 00:00:00+00'
);
SELECT payout.attach('regress_payout_sec.queue');
SELECT * FROM payout.attachment('regress_payout_sec.queue');
SELECT * FROM payout.attachment('regress_payout_sec.payouts');
INSERT INTO regress_payout_sec.queue (id) VALUES (1), (2), (3), (4), (5);
UPDATE regress_payout_sec.queue SET status = 'READY' WHERE id OPERATOR(pg_catalog.<=) 4;
UPDATE regress_payout_sec.queue SET resolution = 'CONNECTION_ERROR' WHERE id OPERATOR(pg_catalog.=) 2;
UPDATE regress_payout_sec.queue SET created_at = CURRENT_TIMESTAMP WHERE id OPERATOR(pg_catalog.>=) 4;
-- Bad input is refused (22023), good input is not.
SELECT payout.claim('regress_payout_sec.queue', 0);
SELECT payout.expire('regress_payout_sec.queue', '-1 day');
-- A claim takes the first READY payout that is not held: 1.
SELECT * FROM payout.claim('regress_payout_sec.queue', 1) AS key;
-- Expiry takes the old ones that are CREATED, READY or PENDING and not
-- held: 3 only.
SELECT payout.expire('regress_payout_sec.queue', '1 day') AS expired;
-- The rest that is claimable: 4.
SELECT * FROM payout.claim('regress_payout_sec.queue', 10) AS key ORDER BY key;
SELECT * FROM payout.claim('regress_payout_sec.queue', 10) AS key ORDER BY key;
SELECT id, status, resolution FROM regress_payout_sec.queue ORDER BY id;
-- The history of this table alone, and of the payout asked for.
SELECT tbl, key, old_status, new_status, old_resolution, new_resolution
FROM payout.timeline('regress_payout_sec.queue', '1');
SELECT tbl, key, old_status, new_status, old_resolution, new_resolution
FROM payout.timeline('regress_payout_sec.queue', '2');
SELECT pg_catalog.count(*) AS no_such_payout
FROM payout.timeline('regress_payout_sec.queue', '6');
SELECT * FROM payout.transition_counts('regress_payout_sec.queue');
SELECT pg_catalog.count(*) AS none_since_infinity
FROM payout.transition_counts('regress_payout_sec.queue', 'infinity');
SELECT pg_catalog.count(*) AS none_until_minus_infinity
FROM payout.transition_counts('regress_payout_sec.queue', until => '-infinity');

-- Classification: a mapped code, a timeout, an HTTP 500, a 404, and an
-- unmapped code.
INSERT INTO payout.provider_code (provider, code, resolution)
VALUES ('acme', 'E_FUNDS', 'INSUFFICIENT_FUNDS');
SELECT payout.classify('acme', 'E_FUNDS') AS mapped,
	   payout.classify('acme', 'E_NEW', NULL, true) AS timed_out,
	   payout.classify('acme', 'E_NEW', 500) AS http_500,
	   payout.classify('acme', 'E_NEW', 404) AS http_404,
	   payout.classify('acme', 'E_NEW') AS unmapped;
SELECT payout.failure_status(NULL) AS new_payout,
	   payout.failure_status('INVOKING') AS invoking,
	   payout.failure_status('PROCESSED') AS processed;
SELECT payout.description('READY'::payout.status) AS ready,
	   payout.description('INSUFFICIENT_FUNDS'::payout.resolution) AS insufficient_funds;
SELECT payout.next_statuses(NULL) AS new_payout,
	   payout.next_statuses('READY') AS ready,
	   payout.next_statuses('PROCESSED') AS processed,
	   payout.next_statuses('CANCELLED') AS cancelled;
-- The ledger: the history sealed, in one call and as a backlog, its digest
-- taken, and verified, whole and one table's, against it.
SELECT s.blocks, s.sealed_rows OPERATOR(pg_catalog.>) 0 AS sealed FROM payout.seal() AS s;
INSERT INTO regress_payout_sec.queue (id) VALUES (6);
CALL payout.seal_backlog();
SELECT pg_catalog.row_to_json(d) AS digest FROM payout.digest() AS d \gset
SELECT v.finding FROM payout.verify(:'digest') AS v;
SELECT v.finding FROM payout.verify(:'digest', 'regress_payout_sec.queue', '1', '1 year') AS v;

--
-- The same as an unprivileged role whose own schema comes first on its
-- search_path, full of its own plants, with public's after them.  It owns
-- its queue, and is granted SELECT on payout.history to read it back.
--
CREATE ROLE regress_payout_clerk;
CREATE SCHEMA regress_payout_clerk AUTHORIZATION regress_payout_clerk;
GRANT USAGE ON SCHEMA regress_payout_sec TO regress_payout_clerk;
GRANT SELECT ON payout.history TO regress_payout_clerk;
-- A superuser lets its tables keep history, as doc/security.md says, and
-- lets it seal and verify, as doc/ledger.md does.
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_payout_clerk;
GRANT EXECUTE ON FUNCTION payout.seal(bigint) TO regress_payout_clerk;
GRANT EXECUTE ON PROCEDURE payout.seal_backlog(bigint) TO regress_payout_clerk;
GRANT SELECT ON payout.ledger, payout.ledger_tables TO regress_payout_clerk;
SET ROLE regress_payout_clerk;
SET search_path = "$user", public, pg_catalog;
SELECT pg_catalog.current_schemas(false);
SELECT regress_payout_sec.plant('regress_payout_clerk');
SELECT pg_catalog.count(*) AS plants
FROM (SELECT FROM pg_catalog.pg_proc p
	  WHERE p.pronamespace OPERATOR(pg_catalog.=) 'regress_payout_clerk'::pg_catalog.regnamespace
	  UNION ALL
	  SELECT FROM pg_catalog.pg_operator o
	  WHERE o.oprnamespace OPERATOR(pg_catalog.=) 'regress_payout_clerk'::pg_catalog.regnamespace
	  UNION ALL
	  SELECT FROM pg_catalog.pg_class c
	  WHERE c.relnamespace OPERATOR(pg_catalog.=) 'regress_payout_clerk'::pg_catalog.regnamespace) p;
-- Control: its own plants come first.
\set VERBOSITY terse
SELECT 1 = 2 AS eq, 'a'::text = 'b'::text AS eq_text, now() AS now,
	   lower('A'::text) AS lower;
SELECT count(*) AS count_star FROM (VALUES (1)) v;
SELECT EXISTS (SELECT FROM pg_trigger) AS shadowed_trigger;
\set VERBOSITY sqlstate
-- A composite key, other column names, notify, and a date to expire by:
-- ("eu",2) is held, ("us west",2) recent.
CREATE TABLE queue (
	region text,
	seq integer,
	state payout.status NOT NULL DEFAULT 'CREATED',
	outcome payout.resolution,
	since date NOT NULL DEFAULT '2000-01-01',
	PRIMARY KEY (region, seq)
);
SELECT payout.attach('queue', 'state', 'outcome', notify => true);
SELECT * FROM payout.attachment('queue');
INSERT INTO queue (region, seq) VALUES ('eu', 1), ('eu', 2), ('us west', 1), ('us west', 2);
UPDATE queue SET state = 'READY';
UPDATE queue SET outcome = 'GENERAL_ERROR'
WHERE region OPERATOR(pg_catalog.=) 'eu' AND seq OPERATOR(pg_catalog.=) 2;
UPDATE queue SET since = CURRENT_DATE
WHERE region OPERATOR(pg_catalog.=) 'us west' AND seq OPERATOR(pg_catalog.=) 2;
SELECT * FROM payout.claim('queue', 1) AS key;
SELECT payout.expire('queue', '1 day', 'since') AS expired;
SELECT * FROM payout.claim('queue', 10) AS key ORDER BY key;
SELECT region, seq, state, outcome FROM queue ORDER BY region, seq;
SELECT tbl, key, old_status, new_status, old_resolution, new_resolution, user_name
FROM payout.timeline('queue', '(eu,1)');
SELECT tbl, key, old_status, new_status, old_resolution, new_resolution, user_name
FROM payout.timeline('queue', '(eu,2)');
SELECT * FROM payout.transition_counts('queue');
SELECT pg_catalog.count(*) AS none_since_infinity
FROM payout.transition_counts('queue', 'infinity');
SELECT payout.classify('acme', 'E_FUNDS') AS mapped,
	   payout.classify('acme', 'E_NEW', NULL, true) AS timed_out,
	   payout.classify('acme', 'E_NEW', 500) AS http_500,
	   payout.classify('acme', 'E_NEW', 404) AS http_404,
	   payout.classify('acme', 'E_NEW') AS unmapped;
SELECT payout.failure_status(NULL) AS new_payout,
	   payout.failure_status('INVOKING') AS invoking,
	   payout.failure_status('PROCESSED') AS processed;
SELECT payout.description('READY'::payout.status) AS ready,
	   payout.description('INSUFFICIENT_FUNDS'::payout.resolution) AS insufficient_funds;
SELECT payout.next_statuses(NULL) AS new_payout,
	   payout.next_statuses('READY') AS ready,
	   payout.next_statuses('PROCESSED') AS processed,
	   payout.next_statuses('CANCELLED') AS cancelled;
SELECT s.blocks, s.sealed_rows OPERATOR(pg_catalog.>) 0 AS sealed FROM payout.seal() AS s;
INSERT INTO queue (region, seq) VALUES ('eu', 3);
CALL payout.seal_backlog();
SELECT pg_catalog.row_to_json(d) AS digest FROM payout.digest() AS d \gset
SELECT v.finding FROM payout.verify(:'digest') AS v;
SELECT v.finding FROM payout.verify(:'digest', 'queue', '(eu,1)', '1 year') AS v;
RESET ROLE;
DROP OWNED BY regress_payout_clerk;
REVOKE EXECUTE ON FUNCTION payout.record_history() FROM regress_payout_clerk;
REVOKE EXECUTE ON FUNCTION payout.seal(bigint) FROM regress_payout_clerk;
REVOKE EXECUTE ON PROCEDURE payout.seal_backlog(bigint) FROM regress_payout_clerk;
REVOKE SELECT ON payout.ledger, payout.ledger_tables FROM regress_payout_clerk;
DROP ROLE regress_payout_clerk;
DROP FUNCTION regress_payout_sec.plant(name);

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
DROP TABLE regress_payout_sec.queue;
DROP SCHEMA regress_payout_sec;
-- The plants on payout's types depend on the extension: they go first.
SET client_min_messages = warning;
DROP OWNED BY regress_payout_evil;
RESET client_min_messages;
DROP EXTENSION payout;
DROP ROLE regress_payout_evil;
RESET search_path;
SELECT count(*) AS left_over_hostile_functions
FROM pg_catalog.pg_proc
WHERE proname IN ('hostile_eq', 'hostile_ne', 'hostile_lt', 'hostile_ge',
				  'hostile_add', 'hostile_sub', 'hostile_cat', 'hostile_count',
				  'hostile_agg', 'hostile_read')
   OR (proname IN ('format', 'nextval', 'now', 'pg_extension_config_dump', 'set_config',
				   'quote_ident', 'current_setting', 'convert_from', 'lower',
				   'unnest', 'count', 'string_agg')
	   AND pronamespace <> 'pg_catalog'::pg_catalog.regnamespace);
