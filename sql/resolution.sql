-- The resolution workflow: moderation hold, release by moderators, fatal
-- endings, final payouts, and what PROCESSED requires.
CREATE EXTENSION payout;
SET timezone = 'UTC';

CREATE ROLE regress_payout_app;
CREATE ROLE regress_payout_mod;
CREATE ROLE regress_payout_moderator NOLOGIN;
GRANT regress_payout_moderator TO regress_payout_mod;
SET payout.moderator_role = 'regress_payout_moderator';
SHOW payout.moderator_role;

CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('payouts');
GRANT SELECT, INSERT, UPDATE ON payouts TO regress_payout_app, regress_payout_mod;

-- requires_moderation(status, resolution): ERROR group and not final.
SELECT s AS status,
	   payout.requires_moderation(s, 'CONNECTION_ERROR') AS error_group,
	   payout.requires_moderation(s, 'OK') AS ok,
	   payout.requires_moderation(s, 'INVALID_AMOUNT') AS fatal,
	   payout.requires_moderation(s, NULL) AS no_resolution
FROM unnest(enum_range(NULL::payout.status)) AS s
ORDER BY s;
SELECT payout.requires_moderation(NULL, 'UNKNOWN') AS null_status_error,
	   payout.requires_moderation(NULL, 'OK') AS null_status_ok,
	   payout.requires_moderation(NULL, NULL) AS both_null;

-- failure_status: every entry.
SELECT s AS status, payout.failure_status(s) AS failure_status
FROM unnest(enum_range(NULL::payout.status)) AS s
ORDER BY s;
SELECT payout.failure_status(NULL) AS new_row;
-- Each failure status is an edge of the default graph.
SELECT s, payout.failure_status(s)
FROM unnest(enum_range(NULL::payout.status)) AS s
WHERE payout.failure_status(s) IS NOT NULL
  AND NOT payout.can_transition(s, payout.failure_status(s));

SET ROLE regress_payout_app;
INSERT INTO payouts (id, amount) SELECT g, 10 * g FROM generate_series(1, 8) AS g;
UPDATE payouts SET status = 'READY';
UPDATE payouts SET status = 'INVOKING' WHERE id <= 6;

-- Rule 1: the UPDATE that sets an ERROR resolution may move the status too.
UPDATE payouts SET status = 'PROCESSING', resolution = 'CONNECTION_TIMEOUT_ERROR' WHERE id = 1;
-- From then on the payout is held: no status change ...
UPDATE payouts SET status = 'PROCESSED' WHERE id = 1;
-- ... no resolution change either, even to OK or another ERROR ...
UPDATE payouts SET resolution = 'OK' WHERE id = 1;
UPDATE payouts SET resolution = 'UNKNOWN' WHERE id = 1;
-- ... not even to a FATAL resolution with a final status.
UPDATE payouts SET resolution = 'DECLINED_ERROR', status = 'PROCESS_FAILED' WHERE id = 1;
SELECT id, status, resolution FROM payouts WHERE id = 1;
-- Other columns of a held payout may change.
UPDATE payouts SET amount = 11 WHERE id = 1;
-- The error fields: SQLSTATE 42501 and the rule's constraint name.
DO $$
DECLARE
	st text; tbl text; col text; con text;
BEGIN
	UPDATE payouts SET resolution = 'OK' WHERE id = 1;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, tbl = TABLE_NAME,
		col = COLUMN_NAME, con = CONSTRAINT_NAME;
	RAISE NOTICE 'sqlstate % table % column % constraint %', st, tbl, col, con;
END
$$;

-- UNKNOWN, an unmapped answer, is held too.
UPDATE payouts SET resolution = 'UNKNOWN' WHERE id = 2;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 2;
RESET ROLE;

-- Rule 2: a moderator releases with OK (and may move the status along the
-- graph in the same statement) ...
SET ROLE regress_payout_mod;
UPDATE payouts SET resolution = 'OK' WHERE id = 1;
SELECT id, status, resolution, payout.requires_moderation(status, resolution) AS held
FROM payouts WHERE id = 1;
-- ... or ends the payout with a FATAL resolution and a final status; the
-- graph still applies (INVOKING cannot go to PROCESS_FAILED) ...
UPDATE payouts SET resolution = 'ANTIFRAUD_ERROR', status = 'PROCESS_FAILED' WHERE id = 2;
-- ... so the status is the failure status of the stage.
UPDATE payouts SET resolution = 'ANTIFRAUD_ERROR', status = payout.failure_status(status) WHERE id = 2;
-- A moderator is still bound by the graph.
UPDATE payouts SET resolution = 'GENERAL_ERROR' WHERE id = 3;
UPDATE payouts SET resolution = 'OK', status = 'PROCESSED' WHERE id = 3;
RESET ROLE;
SELECT id, status, resolution FROM payouts WHERE id <= 3 ORDER BY id;

-- The moderator role is a setting only a superuser may change.
SET ROLE regress_payout_app;
SET payout.moderator_role = 'regress_payout_app';
RESET ROLE;
-- A moderator role that does not exist leaves releases to superusers.
SET payout.moderator_role = 'regress_payout_nobody';
SET ROLE regress_payout_mod;
UPDATE payouts SET resolution = 'OK' WHERE id = 3;
RESET ROLE;
-- An empty moderator role leaves releases to superusers too.
SET payout.moderator_role = '';
SET ROLE regress_payout_mod;
UPDATE payouts SET resolution = 'OK' WHERE id = 3;
RESET ROLE;
-- A superuser is always a moderator.
UPDATE payouts SET resolution = 'OK' WHERE id = 3;
SET payout.moderator_role = 'regress_payout_moderator';

SET ROLE regress_payout_app;
-- Rule 3: a FATAL resolution needs a final status in the same statement;
-- the HINT names the failure status of the stage.
UPDATE payouts SET resolution = 'INSUFFICIENT_FUNDS' WHERE id = 4;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 4;
UPDATE payouts SET resolution = 'INSUFFICIENT_FUNDS' WHERE id = 4;
UPDATE payouts SET resolution = 'INSUFFICIENT_FUNDS', status = 'PROCESS_FAILED' WHERE id = 4;
UPDATE payouts SET resolution = 'INVALID_DETAILS' WHERE id = 7;
UPDATE payouts SET resolution = 'INVALID_DETAILS', status = 'TERMINATED' WHERE id = 7;
INSERT INTO payouts (id, amount, resolution) VALUES (20, 1, 'INVALID_AMOUNT');
INSERT INTO payouts (id, amount, status, resolution) VALUES (20, 1, 'CREATE_FAILED', 'INVALID_AMOUNT');
-- PROCESSED cannot fail any more: the HINT says so.
UPDATE payouts SET status = 'PROCESSING' WHERE id = 5;
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 5;
UPDATE payouts SET resolution = 'DECLINED_ERROR' WHERE id = 5;

-- Rule 4: a final payout changes neither status nor resolution.
UPDATE payouts SET resolution = 'OK' WHERE id = 4;
UPDATE payouts SET resolution = NULL WHERE id = 4;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 4;
-- An ERROR resolution on a final payout holds nothing (it is final).
SELECT payout.requires_moderation('PROCESS_FAILED', 'GENERAL_ERROR');

-- Rule 5: PROCESSED and PARTIALLY_PROCESSED need OK, or no resolution.
UPDATE payouts SET status = 'PROCESSING' WHERE id = 6;
UPDATE payouts SET status = 'PROCESSED', resolution = 'UNKNOWN' WHERE id = 6;
UPDATE payouts SET status = 'PARTIALLY_PROCESSED', resolution = 'INVALID_AMOUNT' WHERE id = 6;
UPDATE payouts SET status = 'PARTIALLY_PROCESSED' WHERE id = 6;
-- ... and keep it: a processed payout cannot be held (or failed) later.
UPDATE payouts SET resolution = 'GENERAL_ERROR' WHERE id = 6;
UPDATE payouts SET resolution = 'OK' WHERE id = 6;
UPDATE payouts SET resolution = NULL WHERE id = 6;
RESET ROLE;

-- Each rule has its own constraint name.
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text; con text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, con = CONSTRAINT_NAME;
	RETURN st || ' ' || con;
END
$$;
SELECT pg_temp.try($$UPDATE payouts SET status = 'PROCESSING' WHERE id = 5$$) AS transition,
	   pg_temp.try($$INSERT INTO payouts (id, amount, status) VALUES (30, 1, 'READY')$$) AS initial,
	   pg_temp.try($$UPDATE payouts SET resolution = 'OK' WHERE id = 4$$) AS final,
	   pg_temp.try($$UPDATE payouts SET resolution = 'INVALID_AMOUNT' WHERE id = 8$$) AS fatal,
	   pg_temp.try($$UPDATE payouts SET status = 'PROCESSING', resolution = 'UNKNOWN' WHERE id = 3$$) AS setup;
SELECT pg_temp.try($$UPDATE payouts SET status = 'PROCESSED' WHERE id = 3$$) AS processed;
SET ROLE regress_payout_app;
SELECT pg_temp.try($$UPDATE payouts SET resolution = 'OK' WHERE id = 3$$) AS hold;
RESET ROLE;

SELECT id, status, resolution FROM payouts ORDER BY id;

-- Moderation queue: a partial index the planner uses.
CREATE INDEX payouts_held ON payouts (resolution, id)
	WHERE payout.requires_moderation(status, resolution);
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id, resolution FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, id;
RESET enable_seqscan;
SELECT id, status, resolution FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, id;

-- Releasing many held payouts is one statement (as a moderator) ...
SET ROLE regress_payout_app;
UPDATE payouts SET resolution = 'CONNECTION_ERROR' WHERE id = 8;
RESET ROLE;
SET ROLE regress_payout_mod;
UPDATE payouts SET resolution = 'OK'
WHERE payout.requires_moderation(status, resolution)
  AND resolution = 'UNKNOWN';
-- ... and so is failing them, each to the failure status of its stage.
UPDATE payouts
SET resolution = 'GENERAL_FATAL_ERROR', status = payout.failure_status(status)
WHERE payout.requires_moderation(status, resolution);
RESET ROLE;
SELECT id, status, resolution FROM payouts ORDER BY id;

-- The moderation queue as doc/workflow.md shows it: its index and its query, word
-- for word, on a payouts table that has created_at (in a schema of its own,
-- so that the names are the page's).  Everything runs in one transaction
-- so that now(), and with it the age column, is the same in every statement.
CREATE SCHEMA regress_queue;
-- A role without USAGE would silently skip the schema and find
-- public.payouts instead.
GRANT USAGE ON SCHEMA regress_queue TO regress_payout_app, regress_payout_moderator;
SET search_path = regress_queue, public;
CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	created_at timestamptz NOT NULL DEFAULT now()
);
SELECT payout.attach('payouts');
GRANT SELECT, INSERT, UPDATE ON payouts TO regress_payout_app;
-- As doc/workflow.md "Moderators" says: the table privileges go to the moderator
-- role, and its members use them.
GRANT SELECT, UPDATE ON payouts TO regress_payout_moderator;
-- attach() made the page's index, payouts_payout_held, before the rows
-- (an index built over HOT-updated rows in the same transaction would not
-- be usable in that transaction: indcheckxmin).
SELECT pg_get_indexdef('payouts_payout_held'::regclass);
BEGIN;
INSERT INTO payouts (id, amount, created_at)
SELECT g, 10 * g, now() - (g || ' hours')::interval
FROM generate_series(1, 10) AS g;
SET ROLE regress_payout_app;
UPDATE payouts SET status = 'READY' WHERE id BETWEEN 2 AND 10;
UPDATE payouts SET status = 'INVOKING' WHERE id BETWEEN 4 AND 10;
UPDATE payouts SET status = 'PROCESSING' WHERE id BETWEEN 6 AND 10;
UPDATE payouts SET status = 'PENDING' WHERE id = 8;
UPDATE payouts SET status = 'PROCESSED' WHERE id = 10;
-- Held: 1 (CREATED), 2 and 3 (READY), 4 and 5 (INVOKING), 6 and 7
-- (PROCESSING), 8 (PENDING); 9 and 10 are not held.
UPDATE payouts SET resolution = 'PROVIDER_INTERNAL_ERROR' WHERE id IN (2, 5, 7);
UPDATE payouts SET resolution = 'CONNECTION_TIMEOUT_ERROR' WHERE id = 8;
UPDATE payouts SET resolution = 'UNKNOWN' WHERE id IN (1, 6);
UPDATE payouts SET resolution = 'CONNECTION_ERROR' WHERE id IN (3, 4);
RESET ROLE;
-- The table is tiny, so the planner would read it whole; with sequential
-- scans off it shows that the partial index serves the query (its
-- predicate is the query's WHERE clause, so there is no Filter) ...
SET LOCAL enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id, status, resolution, now() - created_at AS age
FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, created_at;
-- ... and, with bitmap scans off too, that it also gives the query's order
-- (no Sort).
SET LOCAL enable_bitmapscan = off;
EXPLAIN (COSTS OFF)
SELECT id, status, resolution, now() - created_at AS age
FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, created_at;
SELECT id, status, resolution, now() - created_at AS age
FROM payouts
WHERE payout.requires_moderation(status, resolution)
ORDER BY resolution, created_at;
COMMIT;

-- A role that is not a moderator can run neither of doc/workflow.md's
-- statements: the first held row stops each one, and nothing changes.
SET ROLE regress_payout_app;
UPDATE payouts SET resolution = 'OK'
WHERE payout.requires_moderation(status, resolution)
  AND resolution IN ('PROVIDER_INTERNAL_ERROR', 'CONNECTION_TIMEOUT_ERROR');
\echo :SQLSTATE
UPDATE payouts
SET resolution = 'GENERAL_FATAL_ERROR', status = payout.failure_status(status)
WHERE payout.requires_moderation(status, resolution);
\echo :SQLSTATE
RESET ROLE;
SELECT id, status, resolution FROM payouts ORDER BY id;

-- A moderator releases many payouts in one statement, doc/workflow.md's own ...
SET ROLE regress_payout_mod;
UPDATE payouts SET resolution = 'OK'
WHERE payout.requires_moderation(status, resolution)
  AND resolution IN ('PROVIDER_INTERNAL_ERROR', 'CONNECTION_TIMEOUT_ERROR');
RESET ROLE;
SELECT id, status, resolution, payout.requires_moderation(status, resolution) AS held
FROM payouts ORDER BY id;
-- ... and fails the rest in another, each to the failure status of its own
-- stage.
SET ROLE regress_payout_mod;
UPDATE payouts
SET resolution = 'GENERAL_FATAL_ERROR', status = payout.failure_status(status)
WHERE payout.requires_moderation(status, resolution);
RESET ROLE;
SELECT id, status, resolution, payout.requires_moderation(status, resolution) AS held
FROM payouts ORDER BY id;
-- The queue is empty, and the second statement finds nothing more to fail.
SELECT count(*) AS queue FROM payouts
WHERE payout.requires_moderation(status, resolution);
SET ROLE regress_payout_mod;
UPDATE payouts
SET resolution = 'GENERAL_FATAL_ERROR', status = payout.failure_status(status)
WHERE payout.requires_moderation(status, resolution);
RESET ROLE;

-- A member made NOINHERIT has the moderator role's membership but not its
-- privileges, so it is no moderator (doc/workflow.md "Moderators") until it runs
-- SET ROLE.  It gets the table privileges of its own, so that only the
-- moderation check can stop it.  SET SESSION AUTHORIZATION makes it the
-- session user, so SET ROLE is checked against its own memberships.
CREATE ROLE regress_payout_noinherit NOINHERIT;
GRANT regress_payout_moderator TO regress_payout_noinherit;
GRANT USAGE ON SCHEMA regress_queue TO regress_payout_noinherit;
GRANT SELECT, UPDATE ON payouts TO regress_payout_noinherit;
SET ROLE regress_payout_app;
UPDATE payouts SET resolution = 'CONNECTION_ERROR' WHERE id = 9;
RESET ROLE;
SET SESSION AUTHORIZATION regress_payout_noinherit;
SELECT session_user, current_user;
UPDATE payouts SET resolution = 'OK' WHERE id = 9;
\echo :SQLSTATE
SELECT id, status, resolution FROM payouts WHERE id = 9;
SET ROLE regress_payout_moderator;
SELECT session_user, current_user;
UPDATE payouts SET resolution = 'OK' WHERE id = 9;
RESET ROLE;
RESET SESSION AUTHORIZATION;
SELECT id, status, resolution, payout.requires_moderation(status, resolution) AS held
FROM payouts WHERE id = 9;
DROP TABLE payouts;
DROP SCHEMA regress_queue;
RESET search_path;

-- A table without a resolution column has no resolution rules.
CREATE TABLE plain (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('plain');
SELECT * FROM payout.attachment('plain');
INSERT INTO plain VALUES (1, 'CREATED');
UPDATE plain SET status = 'READY';
-- resolution_column => NULL attaches without one even if a column exists.
CREATE TABLE noresolution (id int PRIMARY KEY, status payout.status NOT NULL,
						   resolution payout.resolution);
SELECT payout.attach('noresolution', resolution_column => NULL);
SELECT * FROM payout.attachment('noresolution');
INSERT INTO noresolution VALUES (1, 'CREATED', 'INVALID_AMOUNT');
UPDATE noresolution SET status = 'READY';

DROP TABLE payouts, plain, noresolution;
DROP EXTENSION payout;
DROP ROLE regress_payout_app, regress_payout_mod, regress_payout_moderator,
	regress_payout_noinherit;
