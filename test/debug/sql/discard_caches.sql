--
-- discard_caches: the per-row paths of payout with every cache thrown away
-- at every chance (debug_discard_caches = 1), on a server built with
-- assertions, where the setting exists (test/run-debug).  Only the
-- statements under test run that way: the setting is made for this
-- session after the setup, which would otherwise take most of an hour
-- (CREATE EXTENSION, attach()).  Code that keeps a pointer into a cache
-- across a catalog access, or that takes a copy an invalidation made stale
-- for the current one, fails here at once.
--
-- The changes are made by the superuser and by an application role, so
-- that current_user and session_user differ, on a partitioned table, with
-- a move between partitions, a key change for a person the application
-- names, and the graph edited in between.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_debug_app;
CREATE TABLE payouts (
	region text NOT NULL,
	id int NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE TABLE payouts_eu PARTITION OF payouts FOR VALUES IN ('eu');
CREATE TABLE payouts_us PARTITION OF payouts FOR VALUES IN ('us');
SELECT payout.attach('payouts');
GRANT SELECT, INSERT, UPDATE ON payouts TO regress_debug_app;

SET debug_discard_caches = 1;

-- As the superuser: current_user = session_user.
INSERT INTO payouts (region, id) VALUES ('eu', 1), ('eu', 2);
UPDATE payouts SET status = 'READY' WHERE region = 'eu' AND id = 1;

-- As the application: current_user <> session_user, so two role names are
-- looked up for each row.
SET ROLE regress_debug_app;
INSERT INTO payouts (region, id) VALUES ('us', 1), ('us', 2);
UPDATE payouts SET status = 'READY' WHERE region = 'us';
-- A move to another partition, recorded as the change it is.
UPDATE payouts SET region = 'us', id = 3, status = 'INVOKING' WHERE region = 'eu' AND id = 1;
-- A rejected change.
\set VERBOSITY sqlstate
UPDATE payouts SET status = 'PROCESSED' WHERE region = 'eu' AND id = 2;
\set VERBOSITY default
-- COPY, whose rows are written at the end of the utility statement.
COPY payouts (region, id) FROM STDIN;
eu	4
us	5
\.
-- A key change, made for a person the application names: recorded with
-- the key before and the actor.
BEGIN;
SET LOCAL payout.actor = 'alice';
UPDATE payouts SET id = 6 WHERE region = 'us' AND id = 5;
COMMIT;
RESET ROLE;

-- A DELETE of a final payout.
UPDATE payouts SET status = 'TERMINATED' WHERE region = 'eu' AND id = 2;
DELETE FROM payouts WHERE region = 'eu' AND id = 2;

-- The graph edited in this session: its next statement follows it.
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'INVOKING';
\set VERBOSITY sqlstate
UPDATE payouts SET status = 'INVOKING' WHERE region = 'us' AND id = 1;
\set VERBOSITY default
INSERT INTO payout.transition VALUES ('READY', 'INVOKING');
UPDATE payouts SET status = 'INVOKING' WHERE region = 'us' AND id = 1;
SELECT payout.can_transition('READY', 'INVOKING') AS ready_invoking,
	   payout.next_statuses('CREATED') AS from_created;

RESET debug_discard_caches;

SELECT region, id, status FROM payouts ORDER BY region, id;
-- Each change once, under the names of the roles that made it.
SELECT key, old_key, old_status, new_status,
	   CASE WHEN user_name = session_user THEN 'session user' ELSE user_name END AS user_name,
	   session_user_name = session_user AS session_user_name_ok, actor
FROM payout.history
ORDER BY id;

DROP TABLE payouts;
DROP ROLE regress_debug_app;
DROP EXTENSION payout;
