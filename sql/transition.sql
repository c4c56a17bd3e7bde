--
-- transition: the default transition graph, as can_transition and
-- next_statuses report it and as the trigger enforces it.
--

CREATE EXTENSION payout;

------------------------------------------------------------------------------
-- The graph as the query functions see it.
------------------------------------------------------------------------------

-- The whole 18x18 can_transition matrix: one row per from-status, one
-- character per to-status in enum order ('x' allowed, '.' not), and the
-- allowed to-statuses by name.
SELECT f AS "from",
       string_agg(CASE WHEN payout.can_transition(f, t) THEN 'x' ELSE '.' END,
                  '' ORDER BY t) AS matrix,
       coalesce(string_agg(t::text, ' ' ORDER BY t)
                FILTER (WHERE payout.can_transition(f, t)), '') AS "to"
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t
GROUP BY f
ORDER BY f;

-- 324 cells, none NULL, 26 true (the non-initial edges).
SELECT count(*) AS cells,
       count(*) FILTER (WHERE payout.can_transition(f, t)) AS allowed,
       count(*) FILTER (WHERE payout.can_transition(f, t) IS NULL) AS unknown
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t;

-- The matrix is exactly the shipped graph (non-initial edges).
SELECT f, t
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t
WHERE payout.can_transition(f, t)
EXCEPT
SELECT from_status, to_status FROM payout.default_transition
ORDER BY 1, 2;
SELECT from_status, to_status FROM payout.default_transition
WHERE from_status IS NOT NULL
EXCEPT
SELECT f, t
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t
WHERE payout.can_transition(f, t)
ORDER BY 1, 2;

-- No edge leaves a final status, and no status is its own successor.
SELECT count(*) AS edges_from_final
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t
WHERE payout.is_final(f) AND payout.can_transition(f, t);
SELECT count(*) AS self_edges
FROM unnest(enum_range(NULL::payout.status)) AS s
WHERE payout.can_transition(s, s);

-- "from" NULL asks where a new payout may start: CREATED and CREATE_FAILED.
SELECT s AS "to", payout.can_transition(NULL, s) AS initial
FROM unnest(enum_range(NULL::payout.status)) AS s
ORDER BY s;

-- "to" NULL has no answer.
SELECT s AS "from", payout.can_transition(s, NULL) AS "to NULL"
FROM unnest(enum_range(NULL::payout.status)) AS s
ORDER BY s;
SELECT payout.can_transition(NULL, NULL) IS NULL AS both_null;

-- next_statuses: the same graph, in enum order; NULL gives the initial
-- statuses.
SELECT s AS "from", payout.next_statuses(s)
FROM unnest(enum_range(NULL::payout.status)) AS s
ORDER BY s;
SELECT payout.next_statuses(NULL) AS initial;
SELECT pg_typeof(payout.next_statuses(NULL)) AS type;

-- next_statuses and can_transition agree everywhere.
SELECT count(*) AS disagreements
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t
WHERE payout.can_transition(f, t) <> (t = ANY (payout.next_statuses(f)));
SELECT count(*) AS disagreements_initial
FROM unnest(enum_range(NULL::payout.status)) AS t
WHERE payout.can_transition(NULL, t) <> (t = ANY (payout.next_statuses(NULL)));

------------------------------------------------------------------------------
-- The trigger.
------------------------------------------------------------------------------

CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('payouts');

-- try_sql runs a statement in a subtransaction that is always rolled back,
-- and tells whether it succeeded or which SQLSTATE it failed with.
CREATE FUNCTION try_sql(cmd text)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	n bigint;
BEGIN
	EXECUTE cmd;
	GET DIAGNOSTICS n = ROW_COUNT;
	RAISE SQLSTATE 'ZZ001' USING MESSAGE = n::text;
EXCEPTION
	WHEN SQLSTATE 'ZZ001' THEN
		RETURN CASE WHEN SQLERRM = '1' THEN 'ok' ELSE SQLERRM || ' rows' END;
	WHEN OTHERS THEN
		RETURN SQLSTATE;
END
$$;

-- error_fields runs a statement that must fail and shows the fields of
-- the error.
CREATE FUNCTION error_fields(cmd text)
RETURNS TABLE (field text, value text)
LANGUAGE plpgsql
AS $$
DECLARE
	v_sqlstate text;
	v_schema text;
	v_table text;
	v_column text;
	v_constraint text;
	v_datatype text;
	v_message text;
	v_detail text;
	v_hint text;
BEGIN
	BEGIN
		EXECUTE cmd;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS
			v_sqlstate = RETURNED_SQLSTATE,
			v_schema = SCHEMA_NAME,
			v_table = TABLE_NAME,
			v_column = COLUMN_NAME,
			v_constraint = CONSTRAINT_NAME,
			v_datatype = PG_DATATYPE_NAME,
			v_message = MESSAGE_TEXT,
			v_detail = PG_EXCEPTION_DETAIL,
			v_hint = PG_EXCEPTION_HINT;
		RETURN QUERY VALUES
			('RETURNED_SQLSTATE', v_sqlstate),
			('SCHEMA_NAME', v_schema),
			('TABLE_NAME', v_table),
			('COLUMN_NAME', v_column),
			('CONSTRAINT_NAME', v_constraint),
			('PG_DATATYPE_NAME', v_datatype),
			('MESSAGE_TEXT', v_message),
			('PG_EXCEPTION_DETAIL', v_detail),
			('PG_EXCEPTION_HINT', v_hint);
		RETURN;
	END;
	RAISE EXCEPTION 'statement did not fail: %', cmd;
END
$$;

-- A new payout may start only in CREATED or CREATE_FAILED.
SELECT s AS status,
       try_sql(format('INSERT INTO payouts (id, amount, status) VALUES (%s, 10, %L)',
                      100 + o, s)) AS result
FROM unnest(enum_range(NULL::payout.status)) WITH ORDINALITY AS u(s, o)
ORDER BY s;
SELECT result, count(*), string_agg(s::text, ' ' ORDER BY s) AS statuses
FROM (SELECT s,
             try_sql(format('INSERT INTO payouts (id, amount, status) VALUES (%s, 10, %L)',
                            100 + o, s)) AS result
      FROM unnest(enum_range(NULL::payout.status)) WITH ORDINALITY AS u(s, o)) AS r
GROUP BY result
ORDER BY result;

-- The errors, for a few of them.
INSERT INTO payouts (id, amount, status) VALUES (100, 10, 'READY');
INSERT INTO payouts (id, amount, status) VALUES (100, 10, 'PROCESSED');
INSERT INTO payouts (id, amount, status) VALUES (100, 10, 'REVOKED');
-- The rejected rows were not stored.
SELECT count(*) AS stored FROM payouts;

-- The two legal starts, explicit and by default.
INSERT INTO payouts (id, amount, status) VALUES (2, 20, 'CREATE_FAILED');
INSERT INTO payouts (id, amount) VALUES (1, 10) RETURNING id, status;

-- A full legal path.
UPDATE payouts SET status = 'READY' WHERE id = 1 RETURNING id, status;
UPDATE payouts SET status = 'INVOKING' WHERE id = 1 RETURNING id, status;
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1 RETURNING id, status;
UPDATE payouts SET status = 'PENDING' WHERE id = 1 RETURNING id, status;
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1
RETURNING id, status, resolution;
-- Processed payouts do not go back to processing.
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
SELECT id, amount, status, resolution FROM payouts WHERE id = 1;
UPDATE payouts SET status = 'REVOKING' WHERE id = 1 RETURNING id, status;
UPDATE payouts SET status = 'REVOKED' WHERE id = 1 RETURNING id, status;

-- REVOKED is final: no change of status is allowed any more ...
UPDATE payouts SET status = 'REVOKING' WHERE id = 1;
UPDATE payouts SET status = 'CREATED' WHERE id = 1;
-- ... but setting the status to itself, or changing another column, is.
UPDATE payouts SET status = status WHERE id = 1 RETURNING id, status;
UPDATE payouts SET status = 'REVOKED' WHERE id = 1 RETURNING id, status;
UPDATE payouts SET amount = 11 WHERE id = 1
RETURNING id, amount, status, resolution;
UPDATE payouts SET amount = 21 WHERE id = 2 RETURNING id, amount, status;
SELECT id, amount, status, resolution FROM payouts ORDER BY id;

-- Every illegal update from a given status is rejected with 23514 and
-- leaves the row alone; the legal ones pass (here rolled back again).
INSERT INTO payouts (id, amount) VALUES (3, 30);
UPDATE payouts SET status = 'READY' WHERE id = 3;
UPDATE payouts SET status = 'INVOKING' WHERE id = 3;
UPDATE payouts SET status = 'PENDING' WHERE id = 3;
SELECT s AS "to", payout.can_transition('PENDING', s) AS allowed,
       try_sql(format('UPDATE payouts SET status = %L WHERE id = 3', s)) AS result
FROM unnest(enum_range(NULL::payout.status)) AS s
ORDER BY s;
SELECT id, amount, status, resolution FROM payouts WHERE id = 3;

-- The same for every pair of statuses: rows in all 18 statuses, stored
-- before the trigger was attached, then every status change tried on
-- each.  The trigger agrees with can_transition everywhere except on the
-- diagonal, where the status does not change and the update passes.
CREATE TABLE sweep (
	id int PRIMARY KEY,
	status payout.status NOT NULL
);
INSERT INTO sweep (id, status)
SELECT o, s FROM unnest(enum_range(NULL::payout.status)) WITH ORDINALITY AS u(s, o);
SELECT payout.attach('sweep');
CREATE TABLE sweep_result AS
SELECT f, t, payout.can_transition(f, t) AS allowed,
       try_sql(format('UPDATE sweep SET status = %L WHERE id = %s', t, w.id)) AS result
FROM sweep AS w(id, f),
     unnest(enum_range(NULL::payout.status)) AS t;
SELECT f = t AS same, allowed, result, count(*)
FROM sweep_result
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;
-- Every row is still in its own status.
SELECT count(*) AS moved
FROM sweep
WHERE status <> (enum_range(NULL::payout.status))[id];
DROP TABLE sweep_result;
DROP TABLE sweep;

-- A multi-row UPDATE with one illegal row is rejected as a whole.
INSERT INTO payouts (id, amount) VALUES (10, 100), (11, 110);
INSERT INTO payouts (id, amount, status) VALUES (12, 120, 'CREATE_FAILED');
INSERT INTO payouts (id, amount) VALUES (13, 130);
UPDATE payouts SET status = 'READY' WHERE id BETWEEN 10 AND 13;
SELECT id, status FROM payouts WHERE id BETWEEN 10 AND 13 ORDER BY id;
UPDATE payouts SET status = 'READY' WHERE id BETWEEN 10 AND 13 AND id <> 12
RETURNING id, status;

-- A payout always has a status: NULL is rejected with 23502, on INSERT
-- and on UPDATE, before the column's own NOT NULL is checked.
INSERT INTO payouts (id, amount, status) VALUES (20, 200, NULL);
UPDATE payouts SET status = NULL WHERE id = 10;
SELECT id, status FROM payouts WHERE id = 10;

-- The same on a table whose status column is nullable.  Rows stored
-- without a status before the trigger was attached may be given an
-- initial status, and nothing else.
CREATE TABLE loose_payouts (
	id bigint PRIMARY KEY,
	amount numeric,
	status payout.status
);
INSERT INTO loose_payouts (id, amount, status) VALUES
	(1, 10, NULL), (2, 20, NULL), (3, 30, NULL), (4, 40, 'READY');
SELECT payout.attach('loose_payouts');
INSERT INTO loose_payouts (id, amount) VALUES (5, 50);
INSERT INTO loose_payouts (id, amount, status) VALUES (5, 50, NULL);
UPDATE loose_payouts SET status = NULL WHERE id = 4;
UPDATE loose_payouts SET status = 'READY' WHERE id = 1;
UPDATE loose_payouts SET status = 'PROCESSED' WHERE id = 1;
UPDATE loose_payouts SET status = 'CREATED' WHERE id = 1 RETURNING id, status;
UPDATE loose_payouts SET status = 'CREATE_FAILED' WHERE id = 2 RETURNING id, status;
-- A row without a status must be given one before anything else changes.
UPDATE loose_payouts SET amount = 31 WHERE id = 3;
SELECT id, amount, status FROM loose_payouts ORDER BY id;

-- The error fields of the three kinds of violation.
SELECT * FROM error_fields('UPDATE payouts SET status = ''PROCESSED'' WHERE id = 10');
SELECT * FROM error_fields('INSERT INTO payouts (id, amount, status) VALUES (21, 210, ''PENDING'')');
SELECT * FROM error_fields('INSERT INTO payouts (id, amount, status) VALUES (22, 220, NULL)');
SELECT * FROM error_fields('UPDATE loose_payouts SET status = ''READY'' WHERE id = 3');
SELECT * FROM error_fields('UPDATE loose_payouts SET status = NULL WHERE id = 4');

-- A user who may not read the key is not shown it: the detail says "The
-- row", as for unique violations.
CREATE ROLE regress_payout_clerk;
GRANT SELECT (status), UPDATE (status), INSERT (id, amount, status)
	ON payouts TO regress_payout_clerk;
SET ROLE regress_payout_clerk;
UPDATE payouts SET status = 'REVOKING' WHERE status = 'PENDING';
UPDATE payouts SET status = NULL WHERE status = 'PENDING';
INSERT INTO payouts (id, amount, status) VALUES (30, 300, 'READY');
UPDATE payouts SET status = 'PROCESSED' WHERE status = 'PENDING';
RESET ROLE;
SELECT id, status FROM payouts WHERE id = 3;
REVOKE ALL ON payouts FROM regress_payout_clerk;
DROP ROLE regress_payout_clerk;

-- Without a primary key the detail cannot name the row by its key.
CREATE TABLE anonymous_payouts (
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED'
);
-- History needs a primary key; enforcement does not.
\set SHOW_CONTEXT never
SELECT payout.attach('anonymous_payouts');
\set SHOW_CONTEXT errors
SELECT payout.attach('anonymous_payouts', history => false);
INSERT INTO anonymous_payouts (amount) VALUES (10);
INSERT INTO anonymous_payouts (amount, status) VALUES (20, 'PENDING');
UPDATE anonymous_payouts SET status = 'PROCESSED';
UPDATE anonymous_payouts SET status = NULL;
UPDATE anonymous_payouts SET status = 'TERMINATED' RETURNING amount, status;
UPDATE anonymous_payouts SET status = 'CREATED';
SELECT amount, status FROM anonymous_payouts ORDER BY amount;

DROP TABLE anonymous_payouts;
DROP TABLE loose_payouts;
DROP TABLE payouts;
DROP FUNCTION error_fields(text);
DROP FUNCTION try_sql(text);

-- This session has the enum labels and the graph cached; a reinstall gives
-- the types, labels and table new OIDs, and the caches follow.
SELECT payout.is_final('REVOKED'::payout.status) AS revoked,
       payout.next_statuses('PENDING') AS next;
DROP EXTENSION payout;
CREATE EXTENSION payout;
SELECT payout.is_final('REVOKED'::payout.status) AS revoked,
       payout.next_statuses('PENDING') AS next;
SELECT count(*) FILTER (WHERE payout.can_transition(f, t)) AS allowed
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t;
CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED'
);
SELECT payout.attach('payouts');
INSERT INTO payouts (id) VALUES (1) RETURNING id, status;
UPDATE payouts SET status = 'PENDING' WHERE id = 1;
UPDATE payouts SET status = 'READY' WHERE id = 1 RETURNING id, status;
DROP TABLE payouts;

DROP EXTENSION payout;
