--
-- graph: editing the transition graph in payout.transition, the
-- bookkeeping of removed default edges, and who may edit the graph.
--

CREATE EXTENSION payout;

CREATE TABLE graph_payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('graph_payouts');

-- try_sql runs a statement in a subtransaction that is always rolled back,
-- and tells whether it succeeded or which SQLSTATE it failed with.
CREATE FUNCTION try_sql(cmd text)
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
	EXECUTE cmd;
	RAISE SQLSTATE 'ZZ001';
EXCEPTION
	WHEN SQLSTATE 'ZZ001' THEN
		RETURN 'ok';
	WHEN OTHERS THEN
		RETURN SQLSTATE;
END
$$;

-- The graph as shipped; nothing recorded as removed.
SELECT count(*) AS edges,
       count(*) FILTER (WHERE from_status IS NULL) AS initial
FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;

INSERT INTO graph_payouts (id, amount) VALUES (1, 10), (2, 20), (3, 30);
UPDATE graph_payouts SET status = 'READY' WHERE id IN (1, 2, 3);

------------------------------------------------------------------------------
-- Adding and removing edges takes effect on the next statement.
------------------------------------------------------------------------------

-- READY -> CANCELLING is not in the shipped graph.
UPDATE graph_payouts SET status = 'CANCELLING' WHERE id = 1;
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
UPDATE graph_payouts SET status = 'CANCELLING' WHERE id = 1 RETURNING id, status;
SELECT payout.can_transition('READY', 'CANCELLING') AS ready_cancelling,
       payout.next_statuses('READY') AS next;
-- The detail lists the new edge too.
UPDATE graph_payouts SET status = 'PROCESSED' WHERE id = 2;
-- An added edge is not a removed default.
SELECT count(*) AS removed FROM payout.transition_removed;

-- Removing an edge, likewise.
DELETE FROM payout.transition
WHERE from_status = 'CANCELLING' AND to_status = 'CANCELLED';
UPDATE graph_payouts SET status = 'CANCELLED' WHERE id = 1;
SELECT id, status FROM graph_payouts WHERE id = 1;
DELETE FROM payout.transition
WHERE from_status = 'READY' AND to_status = 'CANCELLING';
SELECT payout.can_transition('READY', 'CANCELLING') AS ready_cancelling,
       payout.next_statuses('READY') AS next_ready,
       payout.next_statuses('CANCELLING') AS next_cancelling;
UPDATE graph_payouts SET status = 'CANCELLING' WHERE id = 2;

-- Only the default edge is recorded as removed, not the added one.
SELECT from_status, to_status FROM payout.transition_removed ORDER BY 1, 2;

-- Putting the default edge back forgets its removal.
INSERT INTO payout.transition (from_status, to_status) VALUES ('CANCELLING', 'CANCELLED');
SELECT count(*) AS removed FROM payout.transition_removed;
UPDATE graph_payouts SET status = 'CANCELLED' WHERE id = 1 RETURNING id, status;

-- Initial edges are edited the same way.
INSERT INTO graph_payouts (id, amount, status) VALUES (4, 40, 'READY');
INSERT INTO payout.transition (from_status, to_status) VALUES (NULL, 'READY');
INSERT INTO graph_payouts (id, amount, status) VALUES (4, 40, 'READY') RETURNING id, status;
SELECT payout.next_statuses(NULL) AS initial;
DELETE FROM payout.transition WHERE from_status IS NULL AND to_status = 'READY';
INSERT INTO graph_payouts (id, amount, status) VALUES (5, 50, 'READY');
SELECT payout.next_statuses(NULL) AS initial;

-- Changing an edge with UPDATE removes the old default edge and adds the
-- new one.
UPDATE payout.transition SET to_status = 'CANCELLING'
WHERE from_status = 'CREATED' AND to_status = 'EXPIRED';
SELECT payout.next_statuses('CREATED') AS next;
SELECT from_status, to_status FROM payout.transition_removed ORDER BY 1, 2;
UPDATE payout.transition SET to_status = 'EXPIRED'
WHERE from_status = 'CREATED' AND to_status = 'CANCELLING';
SELECT payout.next_statuses('CREATED') AS next;
SELECT count(*) AS removed FROM payout.transition_removed;

-- An UPDATE that leaves edges as they are changes nothing: every edge
-- stays in the graph and none is recorded as removed.
UPDATE payout.transition SET to_status = to_status
WHERE from_status = 'PENDING' AND to_status = 'EXPIRED';
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;
SELECT payout.can_transition('PENDING', 'EXPIRED') AS pending_expired;
UPDATE payout.transition SET from_status = from_status, to_status = to_status;
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;
SELECT payout.next_statuses(NULL) AS initial,
       payout.next_statuses('PENDING') AS next_pending;
-- A no-op when the above holds; otherwise it puts the defaults back, so
-- that what follows starts from the shipped graph.
INSERT INTO payout.transition SELECT * FROM payout.default_transition ON CONFLICT DO NOTHING;

------------------------------------------------------------------------------
-- Edges the table does not accept.
------------------------------------------------------------------------------

INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'READY');
INSERT INTO payout.transition (from_status, to_status) VALUES ('REVOKED', 'REVOKING');
INSERT INTO payout.transition (from_status, to_status) VALUES ('CREATE_FAILED', 'CREATED');
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', NULL);
INSERT INTO payout.transition (from_status, to_status) VALUES (NULL, NULL);
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'INVOKING');
INSERT INTO payout.transition (from_status, to_status) VALUES (NULL, 'CREATED');
UPDATE payout.transition SET from_status = 'EXPIRED'
WHERE from_status = 'PENDING' AND to_status = 'PROCESSED';
-- Nothing changed.
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;

------------------------------------------------------------------------------
-- TRUNCATE, restoring the defaults, and the restore path through
-- payout.transition_removed.
------------------------------------------------------------------------------

INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
TRUNCATE payout.transition;
-- Every default is recorded as removed; the graph is empty.
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;
(SELECT from_status, to_status FROM payout.transition_removed
 EXCEPT
 SELECT from_status, to_status FROM payout.default_transition)
UNION ALL
(SELECT from_status, to_status FROM payout.default_transition
 EXCEPT
 SELECT from_status, to_status FROM payout.transition_removed);
SELECT payout.next_statuses(NULL) AS initial,
       payout.next_statuses('READY') AS next_ready;
SELECT count(*) FILTER (WHERE payout.can_transition(f, t)) AS allowed
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t;
-- With no edges, the details say so.
INSERT INTO graph_payouts (id, amount) VALUES (6, 60);
UPDATE graph_payouts SET status = 'INVOKING' WHERE id = 2;
UPDATE graph_payouts SET status = 'REVOKED' WHERE id = 1;

-- Restore: delete the extra edges, then put the defaults back.
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
DELETE FROM payout.transition t
WHERE NOT EXISTS (SELECT FROM payout.default_transition d
                  WHERE d.from_status IS NOT DISTINCT FROM t.from_status
                    AND d.to_status = t.to_status);
INSERT INTO payout.transition SELECT * FROM payout.default_transition ON CONFLICT DO NOTHING;
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;
INSERT INTO graph_payouts (id, amount) VALUES (6, 60) RETURNING id, status;

-- Recording a default edge as removed deletes it from the graph: this is
-- how a dump of a customized graph is restored.
INSERT INTO payout.transition_removed (from_status, to_status) VALUES ('PENDING', 'EXPIRED');
SELECT count(*) AS edges,
       count(*) FILTER (WHERE from_status = 'PENDING' AND to_status = 'EXPIRED') AS pending_expired
FROM payout.transition;
SELECT payout.can_transition('PENDING', 'EXPIRED') AS pending_expired;
INSERT INTO payout.transition (from_status, to_status) VALUES ('PENDING', 'EXPIRED');
SELECT count(*) AS removed FROM payout.transition_removed;
SELECT payout.can_transition('PENDING', 'EXPIRED') AS pending_expired;

------------------------------------------------------------------------------
-- Transactions.
------------------------------------------------------------------------------

-- Edits are visible inside their transaction, to the query functions and
-- to the trigger, and a rollback undoes them.
BEGIN;
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'INVOKING';
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
SELECT payout.can_transition('READY', 'INVOKING') AS ready_invoking,
       payout.can_transition('READY', 'CANCELLING') AS ready_cancelling,
       payout.next_statuses('READY') AS next;
UPDATE graph_payouts SET status = 'CANCELLING' WHERE id = 2 RETURNING id, status;
SAVEPOINT s;
UPDATE graph_payouts SET status = 'INVOKING' WHERE id = 3;
ROLLBACK TO SAVEPOINT s;
SELECT from_status, to_status FROM payout.transition_removed ORDER BY 1, 2;
ROLLBACK;
UPDATE graph_payouts SET status = 'CANCELLING' WHERE id = 2;
SELECT payout.can_transition('READY', 'INVOKING') AS ready_invoking,
       payout.can_transition('READY', 'CANCELLING') AS ready_cancelling,
       payout.next_statuses('READY') AS next;
SELECT count(*) AS removed FROM payout.transition_removed;
SELECT id, status FROM graph_payouts WHERE id = 2;

-- A rolled-back TRUNCATE.
BEGIN;
TRUNCATE payout.transition;
SELECT payout.next_statuses('PROCESSING') AS next;
ROLLBACK;
SELECT payout.next_statuses('PROCESSING') AS next;
SELECT count(*) AS edges FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;

-- A savepoint rolled back.
BEGIN;
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
SAVEPOINT s;
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'TERMINATED';
SELECT payout.next_statuses('READY') AS next;
ROLLBACK TO SAVEPOINT s;
SELECT payout.next_statuses('READY') AS next;
UPDATE graph_payouts SET status = 'TERMINATED' WHERE id = 3 RETURNING id, status;
ROLLBACK;
SELECT payout.next_statuses('READY') AS next;

-- REPEATABLE READ: the transaction sees its own edits too.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT payout.next_statuses('READY') AS next;
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
SELECT payout.next_statuses('READY') AS next;
UPDATE graph_payouts SET status = 'CANCELLING' WHERE id = 3 RETURNING id, status;
ROLLBACK;
SELECT payout.next_statuses('READY') AS next;
SELECT id, status FROM graph_payouts ORDER BY id;

------------------------------------------------------------------------------
-- Privileges: everybody may read the graph, only its owner may edit it.
------------------------------------------------------------------------------

CREATE ROLE regress_payout_graph_reader;
SET ROLE regress_payout_graph_reader;
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'INVOKING';
UPDATE payout.transition SET to_status = 'CANCELLING'
WHERE from_status = 'READY' AND to_status = 'INVOKING';
TRUNCATE payout.transition;
SELECT t AS "table",
       try_sql(format('INSERT INTO %s (from_status, to_status) VALUES (''READY'', ''CANCELLING'')', t)) AS "insert",
       try_sql(format('DELETE FROM %s', t)) AS "delete",
       try_sql(format('UPDATE %s SET to_status = to_status', t)) AS "update",
       try_sql(format('TRUNCATE %s', t)) AS "truncate",
       try_sql(format('SELECT FROM %s', t)) AS "select"
FROM unnest(ARRAY['payout.transition', 'payout.transition_removed',
                  'payout.default_transition']) AS t
ORDER BY t;
SELECT count(*) AS edges FROM payout.transition;
SELECT payout.can_transition('READY', 'INVOKING') AS ready_invoking,
       payout.can_transition(NULL, 'CREATED') AS initial_created,
       payout.next_statuses('PENDING') AS next;
RESET ROLE;
DROP ROLE regress_payout_graph_reader;

------------------------------------------------------------------------------
-- The graph is the default again.
------------------------------------------------------------------------------

SELECT from_status, to_status FROM payout.transition
EXCEPT
SELECT from_status, to_status FROM payout.default_transition;
SELECT from_status, to_status FROM payout.default_transition
EXCEPT
SELECT from_status, to_status FROM payout.transition;
SELECT count(*) AS removed FROM payout.transition_removed;
SELECT count(*) FILTER (WHERE payout.can_transition(f, t)) AS allowed
FROM unnest(enum_range(NULL::payout.status)) AS f,
     unnest(enum_range(NULL::payout.status)) AS t;

DROP TABLE graph_payouts;
DROP FUNCTION try_sql(text);
DROP EXTENSION payout;
