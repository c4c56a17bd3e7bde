-- test/demo/demo.sql: a guided tour of the payout extension.
-- Run it with test/demo/run, which makes a throwaway cluster for it.
-- Errors are part of the tour: psql goes on after each one.
\set ECHO queries
SET timezone = 'UTC';

\echo
\echo '== 1. Install the extension'
CREATE EXTENSION payout;

\echo
\echo '== 2. A payouts table, guarded by the payout triggers'
CREATE TABLE payouts (
    id bigint PRIMARY KEY,
    amount numeric NOT NULL,
    status payout.status NOT NULL DEFAULT 'CREATED',
    resolution payout.resolution,
    autoprocess boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT payout.attach('payouts', notify => true);
\echo 'zz_payout_enforce checks each row; the zz_payout_history triggers record it:'
SELECT * FROM payout.attachment('payouts');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'payouts'::regclass ORDER BY tgname;

\echo
\echo '== 3. Statuses are final or not; resolutions fall into groups'
SELECT s AS status, payout.is_final(s), payout.failure_status(s)
FROM unnest('{CREATED,PROCESSING,PROCESSED,CANCELLED}'::payout.status[]) AS s;
SELECT r AS resolution, payout.resolution_group(r), payout.requires_moderation(r)
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
SELECT id, status, resolution FROM payouts ORDER BY id;

\echo
\echo '== 5. Illegal changes are rejected'
\echo 'A hand-written UPDATE tries to send a PROCESSED payout back to PROCESSING,'
\echo 'which would pay it twice. Verbose, to show what a client driver receives:'
\set VERBOSITY verbose
UPDATE payouts SET status = 'PROCESSING' WHERE id = 1;
\set VERBOSITY default
\echo 'Nothing leaves a final status (CANCELLED is final):'
UPDATE payouts SET status = 'PROCESSING' WHERE id = 2;
\echo 'A new payout cannot start half-way:'
INSERT INTO payouts (id, amount, status) VALUES (9, 10.00, 'PROCESSED');

\echo
\echo '== 6. The transition graph is data'
SELECT payout.next_statuses('READY') AS after_ready;
\echo 'A DBA lets READY payouts be cancelled, and the next statement follows:'
INSERT INTO payout.transition (from_status, to_status) VALUES ('READY', 'CANCELLING');
SELECT payout.next_statuses('READY') AS after_ready;
DELETE FROM payout.transition WHERE from_status = 'READY' AND to_status = 'CANCELLING';
\echo 'The graph refuses edges out of a final status:'
INSERT INTO payout.transition (from_status, to_status) VALUES ('CANCELLED', 'CREATED');

\echo
\echo '== 7. A provider answer is classified into a resolution'
INSERT INTO payout.provider_code (provider, code, resolution) VALUES
    ('acme', '0', 'OK'),
    ('acme', 'E_FUNDS', 'INSUFFICIENT_FUNDS'),
    ('acme', 'E_BUSY', 'GENERAL_ERROR');
SELECT payout.classify('acme', 'E_FUNDS') AS mapped_code,
       payout.classify('acme', NULL, timed_out => true) AS timed_out,
       payout.classify('acme', 'E_NEW', 502) AS bad_gateway,
       payout.classify('acme', 'E_NEW', 200) AS unmapped;

\echo
\echo '== 8. An application role and a moderator'
CREATE ROLE demo_app;
GRANT SELECT, INSERT, UPDATE ON payouts TO demo_app;
\echo 'Nobody but superusers moderates until a superuser names the moderator role:'
SHOW payout.moderator_role;
CREATE ROLE payout_moderator NOLOGIN;
CREATE ROLE demo_alice;
GRANT payout_moderator TO demo_alice;
GRANT SELECT, UPDATE ON payouts TO payout_moderator;
SET payout.moderator_role = 'payout_moderator';

\echo
\echo '== 9. Held for moderation'
SET ROLE demo_app;
INSERT INTO payouts (id, amount) VALUES (4, 40.00), (5, 50.00), (6, 60.00), (7, 70.00);
\echo 'The provider times out on payout 3; the same statement records it and moves on:'
UPDATE payouts SET status = 'PENDING', resolution = payout.classify('acme', NULL, timed_out => true)
WHERE id = 3;
\echo 'From now on payout 3 is held: the application cannot process it ...'
UPDATE payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 3;
\echo '... nor clear the error itself:'
UPDATE payouts SET resolution = 'OK' WHERE id = 3;
\echo 'Other columns may still change:'
UPDATE payouts SET amount = 76.00 WHERE id = 3;
RESET ROLE;
\echo 'The moderation queue:'
SELECT id, status, resolution FROM payouts
WHERE payout.requires_moderation(status, resolution) ORDER BY id;

\echo
\echo '== 10. A moderator releases it, and the application goes on'
SET ROLE demo_alice;
UPDATE payouts SET resolution = 'OK' WHERE id = 3;
RESET ROLE;
SET ROLE demo_app;
UPDATE payouts SET status = 'PROCESSED' WHERE id = 3;

\echo
\echo '== 11. A fatal ending needs a final status in the same statement'
UPDATE payouts SET status = 'READY' WHERE id IN (4, 5, 6, 7);
UPDATE payouts SET status = 'INVOKING' WHERE id = 4;
\echo 'The provider says E_FUNDS for payout 4; the hint names the way out:'
UPDATE payouts SET resolution = payout.classify('acme', 'E_FUNDS') WHERE id = 4;
UPDATE payouts SET resolution = payout.classify('acme', 'E_FUNDS'),
                   status = payout.failure_status(status)
WHERE id = 4;
\echo 'A final payout is frozen, resolution included:'
UPDATE payouts SET resolution = 'OK' WHERE id = 4;
RESET ROLE;

\echo
\echo '== 12. A processor claims a batch'
\echo 'Payout 6 gets an unmapped answer, which holds it:'
SET ROLE demo_app;
UPDATE payouts SET resolution = payout.classify('acme', 'E_NEW') WHERE id = 6;
RESET ROLE;
\echo 'Claims take READY payouts that are not held, with SKIP LOCKED:'
SELECT key FROM payout.claim('payouts', 10) AS key;
\echo 'Listening processors are told when a payout becomes READY or is released:'
LISTEN payout_ready;
SET ROLE demo_alice;
UPDATE payouts SET resolution = 'OK' WHERE id = 6;
RESET ROLE;
SELECT key FROM payout.claim('payouts', 10) AS key;
UNLISTEN payout_ready;

\echo
\echo '== 13. Manual payouts wait for an operator'
CREATE ROLE demo_processor;
CREATE ROLE payout_operator NOLOGIN;
CREATE ROLE demo_bob;
GRANT payout_operator TO demo_bob;
GRANT SELECT, UPDATE ON payouts TO demo_processor, payout_operator;
SET payout.operator_role = 'payout_operator';
\echo 'The merchant marks payout 9 for manual processing (a large amount):'
SET ROLE demo_app;
INSERT INTO payouts (id, amount, autoprocess) VALUES (9, 90000.00, false);
UPDATE payouts SET status = 'READY' WHERE id = 9;
RESET ROLE;
\echo 'A processor gets nothing, and cannot take it by hand either:'
SET ROLE demo_processor;
SELECT key FROM payout.claim('payouts', 10) AS key;
UPDATE payouts SET status = 'INVOKING' WHERE id = 9;
SELECT key FROM payout.claim('payouts', 10, manual => true) AS key;
RESET ROLE;
\echo 'An operator takes it; the history says who:'
SET ROLE demo_bob;
SELECT key FROM payout.claim('payouts', 10, manual => true) AS key;
RESET ROLE;
SELECT old_status, new_status, user_name FROM payout.timeline('payouts', '9');

\echo
\echo '== 14. Stale payouts expire (a pg_cron job would call this)'
INSERT INTO payouts (id, amount, created_at) VALUES (8, 80.00, now() - interval '3 days');
SELECT payout.expire('payouts', '1 day') AS expired;

\echo
\echo '== 15. The history of payout 3, from payout.history'
SELECT old_status, new_status, old_resolution, new_resolution, user_name
FROM payout.timeline('payouts', '3');
\echo 'How many payouts took each edge:'
SELECT * FROM payout.transition_counts('payouts');
\echo 'The application can neither read nor rewrite the history:'
SET ROLE demo_app;
DELETE FROM payout.history;
RESET ROLE;

\echo
\echo '== 16. Nothing illegal got in'
SELECT id, amount, status, resolution, payout.is_final(status) AS final
FROM payouts
ORDER BY id;
