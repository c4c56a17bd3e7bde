--
-- upgrade: a database on 1.0, with attached tables, an edited graph,
-- provider codes and history, updated in place to 1.1, has the objects,
-- privileges and behaviour of a fresh 1.1 install; its triggers keep
-- working across the update and take the 1.1 rules after it.
--
SET timezone = 'UTC';
\set SHOW_CONTEXT never
SELECT current_database() AS regress_db \gset
CREATE ROLE regress_upgrade_owner;
CREATE ROLE regress_upgrade_app;
CREATE EXTENSION payout VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'payout';

-- Life on 1.0: a table of a superuser's and one of an ordinary owner,
-- both keeping history; an edge added and a default removed; a code.
CREATE TABLE payouts (id bigint PRIMARY KEY, status payout.status NOT NULL,
					  resolution payout.resolution);
SELECT payout.attach('payouts', notify => true);
CREATE SCHEMA owned AUTHORIZATION regress_upgrade_owner;
SET ROLE regress_upgrade_owner;
-- A column autoprocess that 1.0 knew nothing of: after the update the
-- table is attached with it, and manual payouts wait for an operator.
CREATE TABLE owned.payouts (id int PRIMARY KEY, status payout.status NOT NULL,
							autoprocess boolean NOT NULL DEFAULT true);
SELECT payout.attach('owned.payouts');
GRANT USAGE ON SCHEMA owned TO regress_upgrade_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON owned.payouts TO regress_upgrade_app;
RESET ROLE;
INSERT INTO payout.transition VALUES ('CREATED', 'INVOKING');
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'EXPIRED';
INSERT INTO payout.provider_code VALUES ('acme', 'E1', 'INVALID_AMOUNT');
INSERT INTO payouts VALUES (1, 'CREATED'), (2, 'CREATED');
UPDATE payouts SET status = 'READY' WHERE id = 1;
SET ROLE regress_upgrade_app;
INSERT INTO owned.payouts VALUES (1, 'CREATED');
RESET ROLE;

-- The update, in a transaction that also writes: the old triggers work up
-- to it and the new ones after it.
BEGIN;
UPDATE payouts SET status = 'INVOKING' WHERE id = 1;
ALTER EXTENSION payout UPDATE TO '1.1';
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
COMMIT;
SELECT extversion FROM pg_extension WHERE extname = 'payout';

-- Behaviour after it: the graph, codes and history are there; the
-- attached tables have the 1.1 triggers, with their options kept.
SELECT * FROM payout.transition_removed;
SELECT payout.can_transition('CREATED', 'INVOKING') AS added,
	   payout.can_transition('READY', 'EXPIRED') AS removed;
SELECT payout.classify('acme', 'E1');
SELECT tgrelid::regclass, tgname, tgenabled FROM pg_trigger
WHERE tgrelid IN ('payouts'::regclass, 'owned.payouts'::regclass)
ORDER BY 1, 2;
SELECT * FROM payout.attachment('payouts');
SELECT * FROM payout.attachment('owned.payouts');
-- The ordinary owner keeps history: the update granted it.
SELECT has_function_privilege('regress_upgrade_owner', 'payout.record_history()',
							  'EXECUTE') AS owner_keeps_history,
	   has_function_privilege('regress_upgrade_app', 'payout.record_history()',
							  'EXECUTE') AS app_may_not;
SET ROLE regress_upgrade_app;
INSERT INTO owned.payouts VALUES (3, 'CREATED', false);
UPDATE owned.payouts SET status = 'READY' WHERE id = 3;
UPDATE owned.payouts SET status = 'INVOKING' WHERE id = 3;
UPDATE owned.payouts SET status = 'TERMINATED';
DELETE FROM owned.payouts;
INSERT INTO owned.payouts VALUES (2, 'CREATED');
DELETE FROM owned.payouts;
RESET ROLE;
-- The rules bind superusers too; only the owner's DISABLE TRIGGER does not.
DELETE FROM payouts WHERE id = 2;
SELECT tbl, key, old_status, new_status FROM payout.history ORDER BY id;

-- Objects and privileges, listed by test/upgrade_members.sql.
\i test/upgrade_members.sql
-- The grant the update made to a 1.0 owner is a grant of this database,
-- not one the extension ships: pg_init_privs leaves it out, so pg_dump
-- keeps it.  A fresh install cannot have it; take it back to compare.
SELECT ip.initprivs FROM pg_init_privs ip
WHERE ip.objoid = 'payout.record_history()'::regprocedure;
REVOKE EXECUTE ON FUNCTION payout.record_history() FROM regress_upgrade_owner;
SELECT count(*) > 60 AS enough FROM pg_temp.members();
\copy (SELECT * FROM pg_temp.members()) TO 'results/upgrade_members.txt'

CREATE DATABASE regress_payout_fresh;
\c regress_payout_fresh
SET timezone = 'UTC';
CREATE EXTENSION payout;
CREATE TEMP TABLE updated (line text);
\copy updated FROM 'results/upgrade_members.txt'
\i test/upgrade_members.sql
-- Both ways: nothing only in the updated database, nothing only in the
-- fresh one.
SELECT 'only updated' AS side, line FROM
	(SELECT line FROM updated EXCEPT ALL SELECT * FROM pg_temp.members()) AS u
UNION ALL
SELECT 'only fresh', f.line FROM
	(SELECT m AS line FROM pg_temp.members() AS m EXCEPT ALL SELECT line FROM updated) AS f
ORDER BY 1, 2;
-- The comparison is not vacuous: it covered at least the 135 lines that
-- PostgreSQL 15's catalogs give (later majors list more, e.g. 150 on 17).
SELECT count(*) >= 135 AS compared_enough FROM updated;
\c :regress_db
DROP DATABASE regress_payout_fresh;
DROP SCHEMA owned CASCADE;
DROP TABLE payouts;
DROP EXTENSION payout;
DROP ROLE regress_upgrade_owner, regress_upgrade_app;
