-- test/demo/demo.sql: a guided tour of the payout extension.
-- Run it with test/demo/run, which makes a throwaway cluster for it.
-- Errors are part of the tour: psql goes on after each one.
\set ECHO queries

\echo
\echo '== 1. Install the extension'
CREATE EXTENSION payout;

\echo
\echo '== 2. A payouts table, guarded by the payout trigger'
CREATE TABLE payouts (
    id bigint PRIMARY KEY,
    amount numeric NOT NULL,
    status payout.status NOT NULL DEFAULT 'CREATED',
    resolution payout.resolution
);
SELECT payout.attach('payouts');
\echo 'The table now has the trigger zz_payout_enforce:'
\d payouts

\echo
\echo '== 3. Statuses are final or not; resolutions fall into groups'
SELECT s AS status, payout.is_final(s), payout.description(s)
FROM unnest('{CREATED,PROCESSED,CANCELLED}'::payout.status[]) AS s;
SELECT r AS resolution, payout.resolution_group(r),
       payout.requires_moderation(r), payout.is_final(r)
FROM unnest('{OK,CONNECTION_TIMEOUT_ERROR,INSUFFICIENT_FUNDS}'::payout.resolution[]) AS r;

\echo
\echo '== 4. Legal paths: every payout starts in CREATED (the column default)'
INSERT INTO payouts (id, amount) VALUES (1, 100.00), (2, 250.00), (3, 75.50);
UPDATE payouts SET status = 'READY';
UPDATE payouts SET status = 'INVOKING';
UPDATE payouts SET status = 'PROCESSING';
\echo 'Payout 1 succeeds:'
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;
\echo 'Payout 2 is cancelled:'
UPDATE payouts SET status = 'CANCELLING' WHERE id = 2;
UPDATE payouts SET status = 'CANCELLED' WHERE id = 2;
\echo 'Payout 3 is processed, then revoked:'
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 3;
UPDATE payouts SET status = 'REVOKING' WHERE id = 3;
UPDATE payouts SET status = 'REVOKED' WHERE id = 3;
SELECT * FROM payouts ORDER BY id;

\echo
\echo '== 5. Illegal changes are rejected'
\echo 'A hand-written UPDATE tries to send a PROCESSED payout back to PROCESSING,'
\echo 'which would pay it twice. Verbose, to show what a client driver receives:'
\set VERBOSITY verbose
UPDATE payouts SET status = 'PROCESSING' WHERE status = 'PROCESSED';
\set VERBOSITY default
\echo 'Nothing leaves a final status (CANCELLED is final):'
UPDATE payouts SET status = 'PROCESSING' WHERE id = 2;
\echo 'A new payout cannot start half-way:'
INSERT INTO payouts (id, amount, status) VALUES (4, 10.00, 'PROCESSED');
\echo 'A payout always has a status:'
UPDATE payouts SET status = NULL WHERE id = 1;
\echo 'Changing other columns is not a status change, so it is allowed:'
UPDATE payouts SET amount = 110.00 WHERE id = 1;

\echo
\echo '== 6. The transition graph is data'
\echo 'The edges out of PENDING:'
SELECT from_status, to_status
FROM payout.transition
WHERE from_status = 'PENDING'
ORDER BY to_status;
\echo 'Where a new payout may start, and where PROCESSING may go:'
SELECT payout.next_statuses(NULL) AS initial,
       payout.next_statuses('PROCESSING') AS after_processing;
SELECT payout.can_transition('PROCESSED', 'REVOKING') AS processed_to_revoking,
       payout.can_transition('PROCESSED', 'PROCESSING') AS processed_to_processing;

\echo
\echo '== 7. A DBA changes the graph'
INSERT INTO payouts (id, amount) VALUES (5, 20.00), (6, 30.00);
UPDATE payouts SET status = 'READY' WHERE id IN (5, 6);
\echo 'READY cannot be cancelled by default:'
UPDATE payouts SET status = 'CANCELLING' WHERE id = 5;
\echo 'Add the edge READY -> CANCELLING; the next statement follows it:'
INSERT INTO payout.transition (from_status, to_status)
VALUES ('READY', 'CANCELLING');
UPDATE payouts SET status = 'CANCELLING' WHERE id = 5;
\echo 'Remove the edge again; the old rule is back:'
DELETE FROM payout.transition
WHERE from_status = 'READY' AND to_status = 'CANCELLING';
UPDATE payouts SET status = 'CANCELLING' WHERE id = 6;
\echo 'The graph itself refuses edges out of a final status:'
INSERT INTO payout.transition (from_status, to_status)
VALUES ('CANCELLED', 'CREATED');

\echo
\echo '== 8. Nothing illegal got in'
SELECT id, amount, status, resolution, payout.is_final(status) AS final
FROM payouts
ORDER BY id;
