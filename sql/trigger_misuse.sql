--
-- trigger_misuse: every wrong way of using payout.enforce_transition() and
-- payout.attach()/payout.detach() fails at first use with a clear error and
-- a fitting SQLSTATE, and leaves the data untouched.
--
CREATE EXTENSION payout;

-- Errors raised inside payout.attach() would otherwise print a CONTEXT line
-- with a line number of its PL/pgSQL body, which moves whenever the body
-- changes.  SQLSTATEs are pinned with :SQLSTATE, error fields with
-- show_error().
\set SHOW_CONTEXT never

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

--
-- Wrong timing, level or event.
--
CREATE TABLE misuse (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
INSERT INTO misuse (id, status) VALUES (1, 'CREATED');

-- Not called as a trigger at all.
SELECT payout.enforce_transition();
\echo :SQLSTATE

-- AFTER ROW: the row would already be stored.
CREATE TRIGGER misfire
	AFTER INSERT OR UPDATE ON misuse
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition();
INSERT INTO misuse (id, status) VALUES (2, 'CREATED');
\echo :SQLSTATE
UPDATE misuse SET status = 'READY';
\echo :SQLSTATE
SELECT * FROM misuse ORDER BY id;
DROP TRIGGER misfire ON misuse;

-- BEFORE STATEMENT: there is no row to check.
CREATE TRIGGER misfire
	BEFORE INSERT OR UPDATE ON misuse
	FOR EACH STATEMENT EXECUTE FUNCTION payout.enforce_transition();
INSERT INTO misuse (id, status) VALUES (2, 'CREATED');
\echo :SQLSTATE
UPDATE misuse SET status = 'READY';
\echo :SQLSTATE
SELECT * FROM misuse ORDER BY id;
DROP TRIGGER misfire ON misuse;

-- BEFORE DELETE ROW is a use since 1.1: the delete rules apply, and a
-- payout that is not final stays.
CREATE TRIGGER misfire
	BEFORE DELETE ON misuse
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition();
DELETE FROM misuse;
\echo :SQLSTATE
SELECT * FROM misuse ORDER BY id;
DROP TRIGGER misfire ON misuse;

-- BEFORE TRUNCATE (statement level only).
CREATE TRIGGER misfire
	BEFORE TRUNCATE ON misuse
	FOR EACH STATEMENT EXECUTE FUNCTION payout.enforce_transition();
TRUNCATE misuse;
\echo :SQLSTATE
SELECT * FROM misuse ORDER BY id;
DROP TRIGGER misfire ON misuse;

-- INSTEAD OF ROW on a view.
CREATE VIEW misuse_view AS SELECT * FROM misuse;
CREATE TRIGGER misfire
	INSTEAD OF INSERT ON misuse_view
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition();
INSERT INTO misuse_view (id, status) VALUES (2, 'CREATED');
\echo :SQLSTATE
SELECT * FROM misuse ORDER BY id;
DROP VIEW misuse_view;

--
-- Trigger arguments, checked at the first row.
--
CREATE TABLE no_status (
	id bigint PRIMARY KEY,
	state payout.status,
	resolution payout.resolution
);
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON no_status
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition();
INSERT INTO no_status VALUES (1, 'CREATED');
\echo :SQLSTATE
SELECT * FROM no_status ORDER BY id;
DROP TABLE no_status;

CREATE TABLE text_status (
	id bigint PRIMARY KEY,
	status text,
	resolution payout.resolution
);
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON text_status
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition();
INSERT INTO text_status VALUES (1, 'CREATED');
SELECT show_error($$INSERT INTO text_status VALUES (1, 'CREATED')$$);
SELECT * FROM text_status ORDER BY id;
DROP TABLE text_status;

-- A resolution column is not a status column, although both are enums.
CREATE TABLE args (
	id bigint PRIMARY KEY,
	status payout.status,
	resolution payout.resolution,
	outcome text
);
INSERT INTO args VALUES (1, 'CREATED');
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON args
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('resolution');
INSERT INTO args VALUES (2, 'CREATED');
\echo :SQLSTATE
UPDATE args SET status = 'READY';
\echo :SQLSTATE
SELECT * FROM args ORDER BY id;
DROP TRIGGER zz_payout_enforce ON args;

-- A resolution column named explicitly must exist ...
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON args
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('status', 'result');
INSERT INTO args VALUES (2, 'CREATED');
\echo :SQLSTATE
SELECT * FROM args ORDER BY id;
DROP TRIGGER zz_payout_enforce ON args;

-- ... and be of type payout.resolution.
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON args
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('status', 'outcome');
INSERT INTO args VALUES (2, 'CREATED');
\echo :SQLSTATE
SELECT * FROM args ORDER BY id;
DROP TRIGGER zz_payout_enforce ON args;

-- Three arguments.
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON args
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('status', 'resolution', 'outcome');
INSERT INTO args VALUES (2, 'CREATED');
\echo :SQLSTATE
SELECT * FROM args ORDER BY id;
DROP TRIGGER zz_payout_enforce ON args;

-- System columns are not columns the trigger can use.
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON args
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('ctid');
INSERT INTO args VALUES (2, 'CREATED');
\echo :SQLSTATE
SELECT * FROM args ORDER BY id;
DROP TRIGGER zz_payout_enforce ON args;
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON args
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('status', 'tableoid');
INSERT INTO args VALUES (2, 'CREATED');
\echo :SQLSTATE
SELECT * FROM args ORDER BY id;
DROP TRIGGER zz_payout_enforce ON args;
DROP TABLE args;

-- No column named "resolution": the status argument alone is enough.
CREATE TABLE no_resolution (
	id bigint PRIMARY KEY,
	state payout.status NOT NULL
);
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON no_resolution
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('state');
INSERT INTO no_resolution VALUES (1, 'CREATED');
INSERT INTO no_resolution VALUES (2, 'READY');
\echo :SQLSTATE
UPDATE no_resolution SET state = 'READY';
UPDATE no_resolution SET state = 'PROCESSED';
\echo :SQLSTATE
SELECT * FROM no_resolution ORDER BY id;
DROP TABLE no_resolution;

-- A column that happens to be called "resolution" must be of the right type
-- even when it is not named in the arguments.
CREATE TABLE text_resolution (
	id bigint PRIMARY KEY,
	state payout.status NOT NULL,
	resolution text
);
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON text_resolution
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('state');
INSERT INTO text_resolution VALUES (1, 'CREATED');
SELECT show_error($$INSERT INTO text_resolution VALUES (1, 'CREATED')$$);
SELECT * FROM text_resolution ORDER BY id;
DROP TABLE text_resolution;

-- A domain over payout.status is a payout.status.
CREATE DOMAIN status_domain AS payout.status;
CREATE TABLE domain_status (
	id bigint PRIMARY KEY,
	status status_domain NOT NULL
);
CREATE TRIGGER zz_payout_enforce
	BEFORE INSERT OR UPDATE ON domain_status
	FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition('status');
INSERT INTO domain_status VALUES (1, 'CREATED');
INSERT INTO domain_status VALUES (2, 'READY');
\echo :SQLSTATE
UPDATE domain_status SET status = 'READY';
UPDATE domain_status SET status = 'PROCESSED';
\echo :SQLSTATE
SELECT * FROM domain_status ORDER BY id;
DROP TABLE domain_status;

--
-- payout.attach() and payout.detach().
--
CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
INSERT INTO payouts VALUES (1, 'CREATED');

CREATE VIEW payouts_view AS SELECT * FROM payouts;
SELECT payout.attach('payouts_view');
\echo :SQLSTATE
DROP VIEW payouts_view;

SELECT payout.attach('no_such_table');
\echo :SQLSTATE
SELECT payout.attach(NULL);
\echo :SQLSTATE
SELECT payout.attach('payouts', NULL);
\echo :SQLSTATE
SELECT payout.detach(NULL);
\echo :SQLSTATE
SELECT payout.attach('payouts', 'state');
\echo :SQLSTATE
SELECT payout.attach('payouts', 'id');
\echo :SQLSTATE
SELECT payout.attach('payouts', 'resolution');
\echo :SQLSTATE
SELECT payout.attach('payouts', 'status', 'outcome');
\echo :SQLSTATE
SELECT payout.attach('payouts', 'status', 'id');
\echo :SQLSTATE
SELECT payout.attach('payouts', 'ctid');
\echo :SQLSTATE
-- The error fields name the table, and the column where it exists.
SELECT show_error($$SELECT payout.attach('payouts', 'state')$$);
SELECT show_error($$SELECT payout.attach('payouts', 'id')$$);
SELECT show_error($$SELECT payout.attach('payouts', 'status', 'outcome')$$);
SELECT show_error($$SELECT payout.attach('payouts', 'status', 'id')$$);
SELECT payout.detach('payouts');
\echo :SQLSTATE
-- None of this created a trigger.
SELECT tgname FROM pg_trigger WHERE tgrelid = 'payouts'::regclass ORDER BY tgname;

SELECT payout.attach('payouts');
SELECT tgname, tgenabled, tgparentid = 0 AS own, pg_get_triggerdef(oid)
FROM pg_trigger WHERE tgrelid = 'payouts'::regclass ORDER BY tgname;
INSERT INTO payouts VALUES (2, 'READY');
\echo :SQLSTATE
UPDATE payouts SET status = 'PROCESSED';
\echo :SQLSTATE
UPDATE payouts SET status = 'READY';
SELECT * FROM payouts ORDER BY id;

-- Attaching twice.
SELECT payout.attach('payouts');
\echo :SQLSTATE
SELECT payout.attach('payouts', 'status', NULL);
\echo :SQLSTATE
SELECT count(*) FROM pg_trigger WHERE tgrelid = 'payouts'::regclass;

-- After detach, anything goes again.
SELECT payout.detach('payouts');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'payouts'::regclass ORDER BY tgname;
INSERT INTO payouts VALUES (2, 'PROCESSED');
UPDATE payouts SET status = 'CREATED' WHERE id = 1;
SELECT * FROM payouts ORDER BY id;
SELECT payout.detach('payouts');
\echo :SQLSTATE
DROP TABLE payouts;

-- Default resolution column absent: the trigger gets the status column only.
CREATE TABLE bare (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL
);
SELECT payout.attach('bare');
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'bare'::regclass ORDER BY tgname;
INSERT INTO bare VALUES (1, 'CREATED');
INSERT INTO bare VALUES (2, 'PROCESSED');
\echo :SQLSTATE
SELECT * FROM bare ORDER BY id;
DROP TABLE bare;

-- Default resolution column present but of the wrong type.
CREATE TABLE bad_resolution (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL,
	resolution text
);
SELECT payout.attach('bad_resolution');
\echo :SQLSTATE
-- Passing NULL for the resolution column attaches without one: the trigger
-- is told so (an empty argument) and ignores the column called
-- "resolution", whatever its type.
SELECT payout.attach('bad_resolution', 'status', NULL);
\echo :SQLSTATE
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'bad_resolution'::regclass ORDER BY tgname;
INSERT INTO bad_resolution VALUES (1, 'CREATED');
SELECT * FROM bad_resolution ORDER BY id;
DROP TABLE bad_resolution;

-- Custom column names, end to end.
CREATE TABLE custom (
	id bigint PRIMARY KEY,
	state payout.status NOT NULL,
	outcome payout.resolution,
	resolution payout.resolution
);
SELECT payout.attach('custom', 'state', 'outcome');
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'custom'::regclass ORDER BY tgname;
INSERT INTO custom VALUES (1, 'CREATED');
INSERT INTO custom VALUES (2, 'INVOKING');
\echo :SQLSTATE
UPDATE custom SET state = 'READY', outcome = 'OK';
UPDATE custom SET state = 'PROCESSED';
SELECT show_error($$UPDATE custom SET state = 'PROCESSED'$$);
SELECT * FROM custom ORDER BY id;
SELECT payout.detach('custom');
DROP TABLE custom;

-- Status column of a domain over a domain over payout.status: attach
-- accepts what the trigger accepts.
CREATE DOMAIN status_domain2 AS status_domain;
CREATE TABLE domain2_status (
	id bigint PRIMARY KEY,
	status status_domain2 NOT NULL
);
SELECT payout.attach('domain2_status');
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'domain2_status'::regclass ORDER BY tgname;
INSERT INTO domain2_status VALUES (1, 'CREATED');
INSERT INTO domain2_status VALUES (2, 'READY');
\echo :SQLSTATE
SELECT * FROM domain2_status ORDER BY id;
DROP TABLE domain2_status;
DROP DOMAIN status_domain2;
DROP DOMAIN status_domain;

-- Names that need quoting everywhere.
CREATE SCHEMA "My Schema";
CREATE TABLE "My Schema"."Pay Outs" (
	"Id" bigint PRIMARY KEY,
	"St atus" payout.status NOT NULL,
	"Out'come" payout.resolution
);
SELECT payout.attach('"My Schema"."Pay Outs"', 'St atus', 'Out''come');
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = '"My Schema"."Pay Outs"'::regclass;
INSERT INTO "My Schema"."Pay Outs" VALUES (1, 'CREATED');
INSERT INTO "My Schema"."Pay Outs" VALUES (2, 'READY');
UPDATE "My Schema"."Pay Outs" SET "St atus" = 'READY', "Out'come" = 'OK';
UPDATE "My Schema"."Pay Outs" SET "St atus" = 'REVOKED';
SELECT show_error($$UPDATE "My Schema"."Pay Outs" SET "St atus" = 'REVOKED'$$);
SELECT * FROM "My Schema"."Pay Outs" ORDER BY "Id";
SELECT payout.detach('"My Schema"."Pay Outs"');
SELECT count(*) FROM pg_trigger WHERE tgrelid = '"My Schema"."Pay Outs"'::regclass;
DROP SCHEMA "My Schema" CASCADE;

--
-- Privileges.
--
CREATE ROLE regress_payout_stranger;
CREATE ROLE regress_payout_owner;
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_payout_owner;
CREATE SCHEMA payout_owned;
GRANT USAGE, CREATE ON SCHEMA payout_owned TO regress_payout_owner;

CREATE TABLE guarded (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL,
	resolution payout.resolution
);
INSERT INTO guarded VALUES (1, 'CREATED'), (2, 'CREATED');

-- Someone else's table: neither attach nor detach.
SET ROLE regress_payout_stranger;
SELECT payout.attach('guarded');
\echo :SQLSTATE
RESET ROLE;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'guarded'::regclass ORDER BY tgname;
SELECT payout.attach('guarded');
SET ROLE regress_payout_stranger;
SELECT payout.detach('guarded');
\echo :SQLSTATE
RESET ROLE;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'guarded'::regclass ORDER BY tgname;

-- A role that may only UPDATE the table.  Enforcement does not need the
-- writer to read payout.transition.
GRANT UPDATE ON guarded TO regress_payout_stranger;
REVOKE SELECT ON payout.transition FROM PUBLIC;
SET ROLE regress_payout_stranger;
SELECT count(*) FROM payout.transition;
\echo :SQLSTATE
-- Without SELECT on the key, the detail does not show it.
UPDATE guarded SET status = 'PROCESSED';
\echo :SQLSTATE
UPDATE guarded SET status = 'READY';
RESET ROLE;
SELECT * FROM guarded ORDER BY id;
-- With SELECT on the status column only, the key is still not shown.
GRANT SELECT (status) ON guarded TO regress_payout_stranger;
SET ROLE regress_payout_stranger;
UPDATE guarded SET status = 'PROCESSED' WHERE status = 'READY';
\echo :SQLSTATE
RESET ROLE;
-- With SELECT on the key, it is.
GRANT SELECT (id) ON guarded TO regress_payout_stranger;
SET ROLE regress_payout_stranger;
UPDATE guarded SET status = 'PROCESSED' WHERE id = 2;
\echo :SQLSTATE
UPDATE guarded SET status = 'INVOKING' WHERE id = 2;
RESET ROLE;
SELECT * FROM guarded ORDER BY id;
GRANT SELECT ON payout.transition TO PUBLIC;
REVOKE ALL ON guarded FROM regress_payout_stranger;
DROP TABLE guarded;

-- A table owner that is not a superuser attaches and detaches on its own.
SET ROLE regress_payout_owner;
CREATE TABLE payout_owned.mine (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL
);
SELECT payout.attach('payout_owned.mine');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'payout_owned.mine'::regclass ORDER BY tgname;
INSERT INTO payout_owned.mine VALUES (1, 'READY');
\echo :SQLSTATE
INSERT INTO payout_owned.mine VALUES (1, 'CREATED');
SELECT payout.detach('payout_owned.mine');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'payout_owned.mine'::regclass ORDER BY tgname;
INSERT INTO payout_owned.mine VALUES (2, 'READY');
SELECT * FROM payout_owned.mine ORDER BY id;
DROP TABLE payout_owned.mine;
RESET ROLE;
DROP SCHEMA payout_owned;
DROP ROLE regress_payout_stranger;
REVOKE EXECUTE ON FUNCTION payout.record_history() FROM regress_payout_owner;
DROP ROLE regress_payout_owner;

--
-- ALTER TABLE after attach.
--
CREATE TABLE altered (
	id bigint PRIMARY KEY,
	note text,
	status payout.status NOT NULL,
	resolution payout.resolution
);
-- With history, the WHEN clause of the history trigger depends on the
-- payout columns, so PostgreSQL itself refuses to drop them or change their
-- type.
SELECT payout.attach('altered', 'status');
ALTER TABLE altered DROP COLUMN status;
ALTER TABLE altered ALTER COLUMN status TYPE text;
SELECT payout.detach('altered');
-- Without history nothing holds the columns: the trigger must cope.
SELECT payout.attach('altered', 'status', history => false);
INSERT INTO altered VALUES (1, 'a', 'CREATED'), (2, 'b', 'CREATED');
UPDATE altered SET status = 'READY' WHERE id = 1;
SELECT attname, attnum FROM pg_attribute
WHERE attrelid = 'altered'::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum;

-- Give the status and resolution columns new attribute numbers: the
-- trigger finds its columns by name again at the next statement.
ALTER TABLE altered DROP COLUMN note;
ALTER TABLE altered ADD COLUMN status_new payout.status;
UPDATE altered SET status_new = status;
ALTER TABLE altered DROP COLUMN status;
ALTER TABLE altered RENAME COLUMN status_new TO status;
ALTER TABLE altered ALTER COLUMN status SET NOT NULL;
ALTER TABLE altered DROP COLUMN resolution;
ALTER TABLE altered ADD COLUMN resolution payout.resolution;
SELECT attname, attnum FROM pg_attribute
WHERE attrelid = 'altered'::regclass AND attnum > 0 AND NOT attisdropped
ORDER BY attnum;
UPDATE altered SET status = 'INVOKING' WHERE id = 1;
UPDATE altered SET status = 'PROCESSED' WHERE id = 2;
SELECT show_error($$UPDATE altered SET status = 'PROCESSED' WHERE id = 2$$);
INSERT INTO altered VALUES (3, 'READY');
\echo :SQLSTATE
INSERT INTO altered VALUES (3, 'CREATED');
SELECT * FROM altered ORDER BY id;

-- Renaming the status column breaks the trigger at its next use, clearly.
ALTER TABLE altered RENAME COLUMN status TO state;
INSERT INTO altered VALUES (4, 'CREATED');
\echo :SQLSTATE
UPDATE altered SET state = 'PROCESSED' WHERE id = 1;
\echo :SQLSTATE
SELECT * FROM altered ORDER BY id;
ALTER TABLE altered RENAME COLUMN state TO status;
UPDATE altered SET status = 'PROCESSING' WHERE id = 1;
UPDATE altered SET status = 'REVOKED' WHERE id = 1;
\echo :SQLSTATE
SELECT * FROM altered ORDER BY id;

-- A status column that changes type.
ALTER TABLE altered ALTER COLUMN status TYPE text;
INSERT INTO altered VALUES (4, 'CREATED');
\echo :SQLSTATE
ALTER TABLE altered ALTER COLUMN status TYPE payout.status USING status::payout.status;

-- A dropped status column.
ALTER TABLE altered DROP COLUMN status;
INSERT INTO altered VALUES (4);
\echo :SQLSTATE
SELECT * FROM altered ORDER BY id;
DROP TABLE altered;

DROP TABLE misuse;
DROP FUNCTION show_error(text);
DROP EXTENSION payout;
