--
-- applications: what an application sees through a driver.  Drivers send
-- parameters untyped (a $1 of type unknown, as PREPARE without types
-- makes it) or write them into the statement as quoted literals; they read
-- results by type and errors by their fields.  Shows the names 1.1 adds for
-- overloaded functions, enum arrays read as text[], and the SQLSTATE and
-- constraint name of every error an application can get from the rules,
-- as a driver reads them (doc/applications.md).  Roles as the README's
-- Security model recommends:
--   regress_apps_app         the application: SELECT, INSERT, UPDATE, DELETE
--   regress_apps_processor   claims and processes: SELECT, UPDATE
--   regress_apps_moderator   a member of the moderator role, with the app's grants
--   regress_apps_operator    a member of the operator role: SELECT, UPDATE
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

--
-- Overloaded functions and untyped parameters.  payout.is_final() has two
-- candidates for an unknown $1, so the driver's statement fails to parse,
-- whatever value is bound later; so does a quoted literal.
--
PREPARE old_is_final AS SELECT payout.is_final($1);
SELECT payout.is_final('PROCESSED');
PREPARE old_description AS SELECT payout.description($1);
-- A quoted literal given to payout.resolution_group() is a cast to the
-- type of that name: one label passes as itself, others fail.
SELECT payout.resolution_group('OK');
SELECT payout.resolution_group('CONNECTION_ERROR');
-- Each 1.1 name has one candidate: the parameter takes its type.
PREPARE status_is_final AS SELECT payout.status_is_final($1);
PREPARE resolution_is_final AS SELECT payout.resolution_is_final($1);
PREPARE status_description AS SELECT payout.status_description($1);
PREPARE resolution_description AS SELECT payout.resolution_description($1);
PREPARE resolution_group_of AS SELECT payout.resolution_group_of($1);
SELECT name, parameter_types FROM pg_prepared_statements
WHERE name NOT LIKE 'old%' ORDER BY name;
EXECUTE status_is_final('PROCESSED');
EXECUTE status_is_final('REVOKED');
EXECUTE resolution_is_final('INSUFFICIENT_FUNDS');
EXECUTE resolution_is_final('CONNECTION_TIMEOUT_ERROR');
EXECUTE status_description('PENDING');
EXECUTE resolution_description('FORBIDDEN_IP');
EXECUTE resolution_group_of('CONNECTION_ERROR');
EXECUTE status_is_final(NULL);
-- A label that is not one fails as any enum input does, when bound.
EXECUTE status_is_final('processed');
-- The same with quoted literals.
SELECT payout.status_is_final('PROCESSED'), payout.resolution_is_final('DECLINED_ERROR'),
	   payout.resolution_group_of('CONNECTION_ERROR');
-- Functions without overloads take an untyped parameter as they are.
PREPARE requires_moderation AS SELECT payout.requires_moderation($1, $2);
PREPARE failure_status AS SELECT payout.failure_status($1);
PREPARE can_transition AS SELECT payout.can_transition($1, $2);
PREPARE resolution_group AS SELECT payout.resolution_group($1);
EXECUTE requires_moderation('PROCESSING', 'UNKNOWN');
EXECUTE failure_status('PENDING');
EXECUTE can_transition('PROCESSED', 'REVOKING');
EXECUTE resolution_group('CONNECTION_ERROR');
DEALLOCATE ALL;

-- The new names answer as the old ones for every label.
SELECT count(*) AS statuses,
	   count(*) FILTER (WHERE payout.status_is_final(s) IS DISTINCT FROM payout.is_final(s)
						   OR payout.status_description(s) IS DISTINCT FROM payout.description(s)) AS differ
FROM unnest(enum_range(NULL::payout.status)) AS s;
SELECT count(*) AS resolutions,
	   count(*) FILTER (WHERE payout.resolution_is_final(r) IS DISTINCT FROM payout.is_final(r)
						   OR payout.resolution_description(r) IS DISTINCT FROM payout.description(r)
						   OR payout.resolution_group_of(r) IS DISTINCT FROM payout.resolution_group(r)) AS differ
FROM unnest(enum_range(NULL::payout.resolution)) AS r;

-- They are inlined: the plan calls the C function, and an index predicate
-- may use them (they are IMMUTABLE).
CREATE TABLE inlined (id int PRIMARY KEY, status payout.status NOT NULL);
EXPLAIN (VERBOSE, COSTS OFF) SELECT payout.status_is_final(status) FROM inlined;
CREATE INDEX inlined_open ON inlined (id) WHERE NOT payout.status_is_final(status);
DROP TABLE inlined;

--
-- Enum arrays.  A driver that does not know the type payout.status[]
-- hands the array over as its text; cast it to text[], which every driver
-- reads as an array of strings.
--
PREPARE next_statuses AS SELECT payout.next_statuses($1)::text[] AS next;
EXECUTE next_statuses('PROCESSING');
EXECUTE next_statuses(NULL);
EXECUTE next_statuses('CANCELLED');
DEALLOCATE next_statuses;
SELECT pg_typeof(payout.next_statuses('CREATED')) AS without_cast,
	   pg_typeof(payout.next_statuses('CREATED')::text[]) AS with_cast;

--
-- Errors as a driver reads them: SQLSTATE and constraint name.
--
CREATE ROLE regress_apps_app;
CREATE ROLE regress_apps_processor;
CREATE ROLE regress_apps_moderators NOLOGIN;
CREATE ROLE regress_apps_moderator;
CREATE ROLE regress_apps_operators NOLOGIN;
CREATE ROLE regress_apps_operator;
GRANT regress_apps_moderators TO regress_apps_moderator;
GRANT regress_apps_operators TO regress_apps_operator;
SET payout.moderator_role = 'regress_apps_moderators';
SET payout.operator_role = 'regress_apps_operators';
CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean NOT NULL DEFAULT true,
	note text,
	created_at timestamptz NOT NULL DEFAULT '2026-01-01'
);
SELECT payout.attach('payouts', notify => true);
GRANT SELECT, INSERT, UPDATE, DELETE ON payouts TO regress_apps_app, regress_apps_moderators;
GRANT SELECT, UPDATE ON payouts TO regress_apps_processor, regress_apps_operators;

-- The fields a driver gives: psycopg2's e.pgcode and
-- e.diag.constraint_name, node-postgres's err.code and err.constraint.
CREATE FUNCTION pg_temp.error_fields(statement text,
	OUT code text, OUT constraint_name text, OUT message text)
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE statement;
	code := '00000';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE,
		constraint_name = CONSTRAINT_NAME, message = MESSAGE_TEXT;
END
$$;

SET ROLE regress_apps_app;
INSERT INTO payouts (id, amount) VALUES (1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 60);
INSERT INTO payouts (id, amount, autoprocess) VALUES (7, 70, false);
UPDATE payouts SET status = 'READY';
SELECT s.code, s.constraint_name, s.message
FROM (VALUES
	(1, $$INSERT INTO payouts (id, amount, status) VALUES (10, 1, 'PROCESSED')$$),
	(2, $$UPDATE payouts SET status = 'PROCESSED' WHERE id = 1$$),
	(3, $$UPDATE payouts SET status = NULL WHERE id = 1$$),
	(4, $$UPDATE payouts SET resolution = 'INSUFFICIENT_FUNDS' WHERE id = 1$$),
	(5, $$UPDATE payouts SET status = 'INVOKING' WHERE id = 7$$),
	(6, $$UPDATE payouts SET autoprocess = true WHERE id = 7$$),
	(7, $$DELETE FROM payouts WHERE id = 1$$),
	(8, $$INSERT INTO payouts (id, amount) VALUES (1, 10)$$)
) AS t(n, statement), pg_temp.error_fields(t.statement) AS s
ORDER BY t.n;
-- A retried insert that may have committed already: the key decides.
INSERT INTO payouts (id, amount) VALUES (1, 10) ON CONFLICT (id) DO NOTHING RETURNING id;
RESET ROLE;

SET ROLE regress_apps_processor;
SELECT key FROM payout.claim('payouts', 3) AS key;
UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = 1;
UPDATE payouts SET resolution = 'CONNECTION_TIMEOUT_ERROR' WHERE id = 2;
UPDATE payouts SET status = 'INVOKE_FAILED', resolution = 'INSUFFICIENT_FUNDS' WHERE id = 3;
SELECT s.code, s.constraint_name, s.message
FROM (VALUES
	(1, $$UPDATE payouts SET status = 'PROCESSED', resolution = 'UNKNOWN' WHERE id = 1$$),
	(2, $$UPDATE payouts SET status = 'PROCESSING', resolution = 'OK' WHERE id = 2$$),
	(3, $$UPDATE payouts SET resolution = 'OK' WHERE id = 3$$),
	(4, $$SELECT payout.claim('payouts', 1, manual => true)$$),
	(5, $$SELECT payout.claim('payouts', 0)$$),
	(6, $$SELECT count(*) FROM payout.history$$)
) AS t(n, statement), pg_temp.error_fields(t.statement) AS s
ORDER BY t.n;
-- Other columns of a held payout can still be written: a processor leaves
-- a note for the moderator.
UPDATE payouts SET note = 'the provider answered OK after the timeout' WHERE id = 2
RETURNING id, status, resolution, note;
-- A write guarded by the status it expects finds no row when it ran
-- already, so a processor that lost its connection at COMMIT may repeat it;
-- unguarded, a write that changes nothing is allowed and records nothing.
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1 AND status = 'PROCESSING'
RETURNING id, status;
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1 AND status = 'PROCESSING'
RETURNING id, status;
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1
RETURNING id, status;
RESET ROLE;

-- The moderator releases the held payout; then the processor may go on.
SET ROLE regress_apps_moderator;
SELECT id, status, resolution, note FROM payouts
WHERE payout.requires_moderation(status, resolution) ORDER BY id;
UPDATE payouts SET resolution = 'OK', note = NULL
WHERE id = 2 AND payout.requires_moderation(status, resolution)
RETURNING id, status, resolution;
-- A second moderator's release of the same payout finds nothing to do.
UPDATE payouts SET resolution = 'OK', note = NULL
WHERE id = 2 AND payout.requires_moderation(status, resolution)
RETURNING id, status, resolution;
RESET ROLE;
SET ROLE regress_apps_processor;
-- Released and left in INVOKING: not READY, so not claimed; a processor
-- that looks for such payouts locks them and skips those being worked on.
SELECT id, status, resolution FROM payouts
WHERE status IN ('INVOKING', 'PROCESSING', 'PENDING')
  AND NOT payout.requires_moderation(status, resolution)
ORDER BY id
FOR UPDATE SKIP LOCKED;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 2;
UPDATE payouts SET status = 'PROCESSED' WHERE id = 2;
RESET ROLE;

-- The operator takes the manual payout.
SET ROLE regress_apps_operator;
SELECT key FROM payout.claim('payouts', 10, manual => true) AS key;
RESET ROLE;

SELECT key, old_status, new_status, old_resolution, new_resolution, user_name
FROM payout.history WHERE tbl = 'payouts'::regclass AND old_status IS NOT NULL
ORDER BY id;

-- Errors of the queue and of classify.
CREATE TABLE plain (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT s.code, s.constraint_name, s.message
FROM (VALUES
	(1, $$SELECT payout.claim('plain', 1)$$),
	(2, $$SELECT payout.claim('payouts', 1, manual => NULL)$$),
	(3, $$SELECT payout.expire('payouts', '-1 day')$$),
	(4, $$SELECT payout.classify('nobody', 'E1')$$),
	(5, $$SELECT payout.classify('nobody', NULL)$$),
	(6, $$SELECT payout.classify('nobody', NULL, 1000)$$)
) AS t(n, statement), pg_temp.error_fields(t.statement) AS s
ORDER BY t.n;

-- A notification's payload names the table schema-qualified and quoted
-- where needed ({"table": "public.\"Mixed Case\"", ...}); a claim reads
-- that name back as it is.
CREATE TABLE "Mixed Case" (id int PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('"Mixed Case"', notify => true);
INSERT INTO "Mixed Case" VALUES (1, 'CREATED');
UPDATE "Mixed Case" SET status = 'READY';
PREPARE claim_from AS SELECT key FROM payout.claim($1, 10) AS key;
EXECUTE claim_from('public."Mixed Case"');
DEALLOCATE claim_from;

DROP TABLE payouts, "Mixed Case", plain;
DROP EXTENSION payout;
DROP ROLE regress_apps_app, regress_apps_processor, regress_apps_moderator,
	regress_apps_moderators, regress_apps_operator, regress_apps_operators;
