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
DROP ROLE regress_payout_app, regress_payout_mod, regress_payout_moderator;
