--
-- conditions: the machinery around the rules, under what production
-- databases have: roles switched within a session, a loader whose first
-- statement is a COPY, history partitions with deferrable keys, deferred
-- and ordinary triggers and their own defaults, roles that may insert and
-- nothing else, table owners who would like their code run as a
-- superuser.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_cond_owner;
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_cond_owner;
CREATE SCHEMA cond AUTHORIZATION regress_cond_owner;
SET ROLE regress_cond_owner;
CREATE TABLE cond.payouts (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('cond.payouts', indexes => false);
GRANT USAGE ON SCHEMA cond TO PUBLIC;
GRANT SELECT, INSERT, UPDATE ON cond.payouts TO PUBLIC;
RESET ROLE;

------------------------------------------------------------------------------
-- Role names.  The user and the session user of a change are looked up
-- for each row; nothing a later lookup frees is read.  A session whose
-- roles change (SET SESSION AUTHORIZATION, SET ROLE) in this order made
-- 1.1 record the third change under the session user's name.
------------------------------------------------------------------------------

CREATE ROLE regress_ra;
CREATE ROLE regress_rb;
CREATE ROLE regress_rc;
GRANT regress_rb TO regress_ra;
GRANT regress_ra TO regress_rc;
INSERT INTO cond.payouts (id) VALUES (1), (2), (3);
SET SESSION AUTHORIZATION regress_ra;
UPDATE cond.payouts SET status = 'READY' WHERE id = 1;
SET ROLE regress_rb;
UPDATE cond.payouts SET status = 'READY' WHERE id = 2;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION regress_rc;
SET ROLE regress_ra;
UPDATE cond.payouts SET status = 'READY' WHERE id = 3;
RESET SESSION AUTHORIZATION;
SELECT key, user_name, session_user_name FROM payout.history
WHERE tbl = 'cond.payouts'::regclass AND old_status IS NOT NULL ORDER BY id;
-- In a SECURITY DEFINER function, the definer is the user.
CREATE FUNCTION cond.expire_as_definer(k bigint) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ UPDATE cond.payouts SET status = 'EXPIRED' WHERE id = k $$;
ALTER FUNCTION cond.expire_as_definer(bigint) OWNER TO regress_rb;
GRANT UPDATE ON cond.payouts TO regress_rb;
SET ROLE regress_rc;
SELECT cond.expire_as_definer(3);
RESET ROLE;
SELECT key, user_name, session_user_name = session_user AS session_ok FROM payout.history
WHERE tbl = 'cond.payouts'::regclass AND key = '3' ORDER BY id DESC LIMIT 1;
DROP FUNCTION cond.expire_as_definer(bigint);

------------------------------------------------------------------------------
-- A loader's first statement is a COPY, in a connection that has not
-- loaded payout yet: its rows are written when it ends, and the next
-- statement of the transaction sees them.
------------------------------------------------------------------------------

\c
SET timezone = 'UTC';
BEGIN;
COPY cond.payouts (id) FROM STDIN;
10
11
12
\.
SELECT count(*) AS copied_rows_in_history FROM payout.history
WHERE tbl = 'cond.payouts'::regclass AND key IN ('10', '11', '12');
COMMIT;

------------------------------------------------------------------------------
-- Partitions of payout.history with what a DBA gives tables: each row
-- takes one id, from the id column's default; triggers and constraints of
-- the partition work as for COPY, in the statement whose change recorded
-- the rows, never at commit.
------------------------------------------------------------------------------

CREATE TABLE payout.history_dba (LIKE payout.history_catchall INCLUDING DEFAULTS,
	CONSTRAINT history_dba_pkey PRIMARY KEY (id));
CREATE FUNCTION public.history_dba_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	-- qualified: the trigger runs with search_path pg_catalog, pg_temp
	NEW.application_name := pg_catalog.btrim(NEW.application_name);
	RETURN NEW;
END $$;
CREATE TRIGGER noted BEFORE INSERT ON payout.history_dba
	FOR EACH ROW EXECUTE FUNCTION public.history_dba_note();
SELECT clock_timestamp() AS boundary \gset
ALTER TABLE payout.history ATTACH PARTITION payout.history_dba
	FOR VALUES FROM (:'boundary') TO (MAXVALUE);
-- Ids: one draw of the default per row, from the sequence the default
-- names, which a DBA may change.
CREATE SEQUENCE public.history_ids START 1000000;
ALTER TABLE payout.history ALTER COLUMN id SET DEFAULT nextval('public.history_ids');
SET application_name = '  padded  ';
INSERT INTO cond.payouts (id) SELECT g FROM generate_series(20, 29) g;
RESET application_name;
SELECT count(*) AS rows, min(id) AS first_id, max(id) AS last_id,
	   bool_and(application_name = 'padded') AS trimmed_by_the_trigger
FROM payout.history_dba;
ALTER TABLE payout.history ALTER COLUMN id
	SET DEFAULT pg_catalog.nextval('payout.history_id_seq'::pg_catalog.regclass);
DROP SEQUENCE public.history_ids;

-- A deferrable key, checked at once: a duplicate id is refused in the
-- statement, and the change with it.
ALTER TABLE payout.history_dba DROP CONSTRAINT history_dba_pkey;
ALTER TABLE payout.history_dba ADD CONSTRAINT history_dba_pkey PRIMARY KEY (id)
	DEFERRABLE INITIALLY IMMEDIATE;
SELECT setval('payout.history_id_seq', (SELECT max(id) FROM payout.history_dba) - 1);
\set VERBOSITY terse
UPDATE cond.payouts SET status = 'READY' WHERE id IN (20, 21, 22);
\set VERBOSITY default
SELECT setval('payout.history_id_seq', (SELECT max(id) FROM payout.history), true);
SELECT count(*) FILTER (WHERE status = 'READY') AS readied FROM cond.payouts WHERE id IN (20, 21, 22);
-- Deferred to commit, a check would run where PostgreSQL runs no user code
-- any more, and what it finds would be lost; a security-restricted
-- operation may not defer one, so the change fails at once instead: a
-- deferred key that meets a duplicate, and a deferred constraint trigger.
ALTER TABLE payout.history_dba DROP CONSTRAINT history_dba_pkey;
ALTER TABLE payout.history_dba ADD CONSTRAINT history_dba_pkey PRIMARY KEY (id)
	DEFERRABLE INITIALLY DEFERRED;
SELECT setval('payout.history_id_seq', (SELECT max(id) FROM payout.history_dba) - 1);
\set VERBOSITY terse
BEGIN;
UPDATE cond.payouts SET status = 'READY' WHERE id = 23;
COMMIT;
\set VERBOSITY default
SELECT setval('payout.history_id_seq', (SELECT max(id) FROM payout.history), true);
ALTER TABLE payout.history_dba DROP CONSTRAINT history_dba_pkey;
CREATE TABLE public.checks_seen (n int);
CREATE FUNCTION public.count_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.checks_seen VALUES (1); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER counted AFTER INSERT ON payout.history_dba
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.count_check();
\set VERBOSITY terse
BEGIN;
UPDATE cond.payouts SET status = 'READY' WHERE id = 24;
COMMIT;
\set VERBOSITY default
SELECT id, status FROM cond.payouts WHERE id IN (23, 24) ORDER BY id;
SELECT count(*) AS history_of_23_and_24 FROM payout.history
WHERE tbl = 'cond.payouts'::regclass AND key IN ('23', '24') AND old_status IS NOT NULL;
DROP TRIGGER counted ON payout.history_dba;
-- Checked at once, the same trigger fires in the statement.
CREATE CONSTRAINT TRIGGER counted AFTER INSERT ON payout.history_dba
	DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW EXECUTE FUNCTION public.count_check();
UPDATE cond.payouts SET status = 'READY' WHERE id IN (24, 25);
SELECT count(*) AS checks_run FROM public.checks_seen;
DROP TRIGGER counted ON payout.history_dba;

-- A table owner who may keep history, and would have the DBA's trigger
-- call its own btrim(): the trigger runs as the history's owner, but in a
-- security-restricted operation with search_path pg_catalog, pg_temp, so
-- the owner's function is never called, whatever the writer's search_path.
CREATE OR REPLACE FUNCTION public.history_dba_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.application_name := btrim(NEW.application_name);
	RETURN NEW;
END $$;
SET ROLE regress_cond_owner;
CREATE FUNCTION cond.btrim(text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE 'ALTER ROLE regress_cond_owner SUPERUSER';
	RETURN $1;
END $$;
SET search_path = cond, pg_catalog;
SET application_name = '  mine  ';
INSERT INTO cond.payouts (id) VALUES (30);
RESET application_name;
RESET search_path;
RESET ROLE;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'regress_cond_owner';
SELECT application_name FROM payout.history_dba
WHERE tbl = 'cond.payouts'::regclass AND key = '30';

-- Whatever of the DBA's runs code is restricted the same way: a CHECK
-- constraint that calls a function of the DBA's.
DROP TRIGGER noted ON payout.history_dba;
CREATE FUNCTION public.probe(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'checked under search_path %', current_setting('search_path');
	RETURN true;
END $$;
ALTER TABLE payout.history_dba ADD CONSTRAINT probed CHECK (public.probe(key)) NOT VALID;
SET search_path = cond, public;
INSERT INTO cond.payouts (id) VALUES (31);
RESET search_path;
ALTER TABLE payout.history_dba DROP CONSTRAINT probed;
DROP FUNCTION public.probe(text);

ALTER TABLE payout.history DETACH PARTITION payout.history_dba;
DROP TABLE payout.history_dba, public.checks_seen;
DROP FUNCTION public.history_dba_note(), public.count_check();

------------------------------------------------------------------------------
-- Upserts.  A proposed row that would be illegal as a new payout steps
-- aside for an existing key, which is locked until the conflict is found;
-- only a role that could lock the row itself may do that.  A role with
-- INSERT alone cannot hold payouts away from claim() and expire() that way:
-- its row is judged as the new payout it proposes.
------------------------------------------------------------------------------

CREATE ROLE regress_cond_inserter;
GRANT INSERT ON cond.payouts TO regress_cond_inserter;
REVOKE SELECT, UPDATE ON cond.payouts FROM PUBLIC;
SET ROLE regress_cond_inserter;
\set VERBOSITY terse
INSERT INTO cond.payouts (id, status) VALUES (1, 'PROCESSED') ON CONFLICT DO NOTHING;
INSERT INTO cond.payouts (id) VALUES (1) ON CONFLICT DO NOTHING;
\set VERBOSITY default
RESET ROLE;
GRANT SELECT, UPDATE ON cond.payouts TO regress_cond_inserter;
SET ROLE regress_cond_inserter;
INSERT INTO cond.payouts (id, status) VALUES (1, 'PROCESSED') ON CONFLICT DO NOTHING;
INSERT INTO cond.payouts (id, status) VALUES (1, 'INVOKING')
	ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status;
RESET ROLE;
SELECT id, status FROM cond.payouts WHERE id = 1;

DROP SCHEMA cond CASCADE;
REVOKE EXECUTE ON FUNCTION payout.record_history() FROM regress_cond_owner;
DROP ROLE regress_cond_owner, regress_cond_inserter, regress_ra, regress_rb, regress_rc;
DROP EXTENSION payout;
