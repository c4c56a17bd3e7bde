--
-- upgrade: a database on 1.0, with attached tables, an edited graph,
-- provider codes and history, updated in place to 1.1 and then to 1.2, and
-- a database made on 1.1 and updated to 1.2, each have the objects,
-- privileges and behaviour of a fresh 1.2 install; their triggers keep
-- working across each update and take the new rules after it.
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

-- On to 1.2, again in a transaction that writes on both sides of it.
BEGIN;
UPDATE payouts SET status = 'PENDING' WHERE id = 1;
ALTER EXTENSION payout UPDATE TO '1.2';
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
COMMIT;
SELECT extversion FROM pg_extension WHERE extname = 'payout';
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

-- A database that was made on 1.1, lived in, and is updated to 1.2.
CREATE DATABASE regress_payout_from11;
\c regress_payout_from11
SET timezone = 'UTC';
\set SHOW_CONTEXT never
CREATE EXTENSION payout VERSION '1.1';
CREATE TABLE payouts (id bigint PRIMARY KEY, status payout.status NOT NULL,
					  resolution payout.resolution,
					  autoprocess boolean NOT NULL DEFAULT true);
SELECT payout.attach('payouts', notify => true);
CREATE TABLE ranged (id bigint, created_at date, status payout.status NOT NULL,
					 PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
CREATE TABLE ranged_2026 PARTITION OF ranged
	FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE ranged_2027 PARTITION OF ranged
	FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
SELECT payout.attach('ranged', history => false);
INSERT INTO payout.transition VALUES ('CREATED', 'INVOKING');
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'EXPIRED';
INSERT INTO payouts (id, status, autoprocess) VALUES (1, 'CREATED', true), (2, 'CREATED', false);
UPDATE payouts SET status = 'READY';
INSERT INTO ranged VALUES (1, '2026-12-31', 'CREATED');
BEGIN;
UPDATE payouts SET status = 'INVOKING' WHERE id = 1;
ALTER EXTENSION payout UPDATE TO '1.2';
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
UPDATE ranged SET created_at = '2027-01-01';
COMMIT;
SELECT extversion FROM pg_extension WHERE extname = 'payout';
SELECT payout.can_transition('CREATED', 'INVOKING') AS added,
	   payout.can_transition('READY', 'EXPIRED') AS removed;
SELECT * FROM payout.attachment('payouts');
SELECT * FROM payout.attachment('ranged');
SELECT tbl, key, old_status, new_status FROM payout.history ORDER BY id;
\i test/upgrade_members.sql
\copy (SELECT * FROM pg_temp.members()) TO 'results/upgrade_members_from11.txt'

CREATE DATABASE regress_payout_fresh;
\c regress_payout_fresh
SET timezone = 'UTC';
CREATE EXTENSION payout;
SELECT extversion FROM pg_extension WHERE extname = 'payout';
\i test/upgrade_members.sql
-- Both ways, for each updated database: nothing only in the updated
-- database, nothing only in the fresh one.
CREATE TEMP TABLE updated (path text, line text);
CREATE TEMP TABLE lines (line text);
\copy lines FROM 'results/upgrade_members.txt'
INSERT INTO updated SELECT '1.0 -> 1.1 -> 1.2', line FROM lines;
TRUNCATE lines;
\copy lines FROM 'results/upgrade_members_from11.txt'
INSERT INTO updated SELECT '1.1 -> 1.2', line FROM lines;
SELECT p.path, 'only updated' AS side, u.line
FROM (VALUES ('1.0 -> 1.1 -> 1.2'), ('1.1 -> 1.2')) AS p(path),
	 LATERAL (SELECT line FROM updated WHERE path = p.path
			  EXCEPT ALL SELECT * FROM pg_temp.members()) AS u
UNION ALL
SELECT p.path, 'only fresh', f.line
FROM (VALUES ('1.0 -> 1.1 -> 1.2'), ('1.1 -> 1.2')) AS p(path),
	 LATERAL (SELECT m AS line FROM pg_temp.members() AS m
			  EXCEPT ALL SELECT line FROM updated WHERE path = p.path) AS f
ORDER BY 1, 2, 3;
-- The comparison is not vacuous: each covered at least the 135 lines that
-- PostgreSQL 15's catalogs give (later majors list more, e.g. 150 on 17).
SELECT path, count(*) >= 135 AS compared_enough FROM updated GROUP BY path ORDER BY path;
\c :regress_db
DROP DATABASE regress_payout_fresh;
DROP DATABASE regress_payout_from11;
DROP SCHEMA owned CASCADE;
DROP TABLE payouts;
DROP EXTENSION payout;
DROP ROLE regress_upgrade_owner, regress_upgrade_app;
