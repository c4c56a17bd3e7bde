--
-- recreated_triggers: everything the payout triggers need is in their
-- definitions.  A tool that copies a table's triggers onto another table of
-- the same shape by their definitions (pg_get_triggerdef()), as Citus does
-- for the shards of a distributed table, gets the same enforcement and the
-- same history, under the new table's name, without payout.attach() ever
-- seeing that table.
--
CREATE EXTENSION payout;

CREATE TABLE payouts (
	id bigint PRIMARY KEY,
	amount numeric NOT NULL,
	state payout.status NOT NULL DEFAULT 'CREATED',
	outcome payout.resolution
);
SELECT payout.attach('payouts', status_column => 'state',
					 resolution_column => 'outcome', notify => true);
SELECT tgname, pg_get_triggerdef(oid) AS definition
FROM pg_trigger WHERE tgrelid = 'payouts'::regclass ORDER BY tgname;

-- A table named like a shard, with the triggers copied by definition only.
CREATE TABLE payouts_102008 (LIKE payouts INCLUDING ALL);
SELECT replace(pg_get_triggerdef(oid), ' ON public.payouts ', ' ON public.payouts_102008 ')
FROM pg_trigger WHERE tgrelid = 'payouts'::regclass ORDER BY tgname \gexec

-- payout.attachment() reads the same settings back from the copies.
SELECT * FROM payout.attachment('payouts_102008');

-- Enforcement: the graph and the resolution workflow hold on the copy, for
-- an application role that is no moderator.
CREATE ROLE regress_payout_shard_app;
GRANT SELECT, INSERT, UPDATE ON payouts_102008 TO regress_payout_shard_app;
SET ROLE regress_payout_shard_app;
INSERT INTO payouts_102008 (id, amount) VALUES (1, 10), (2, 20);
INSERT INTO payouts_102008 (id, amount, state) VALUES (3, 30, 'READY');
UPDATE payouts_102008 SET state = 'READY' WHERE id IN (1, 2);
UPDATE payouts_102008 SET state = 'PROCESSED' WHERE id = 1;
UPDATE payouts_102008 SET state = 'INVOKING', outcome = 'UNKNOWN' WHERE id = 2;
UPDATE payouts_102008 SET state = 'PROCESSING' WHERE id = 2;
UPDATE payouts_102008 SET outcome = 'OK' WHERE id = 2;
RESET ROLE;
SELECT id, state, outcome, payout.requires_moderation(state, outcome) AS held
FROM payouts_102008 ORDER BY id;

-- History names the copy too, under the key of each row; nothing was
-- recorded for the rejected statements.
SELECT tbl, key, old_status, new_status, old_resolution, new_resolution
FROM payout.history ORDER BY id;
SELECT old_status, new_status FROM payout.timeline('payouts_102008', '2');
SELECT count(*) AS history_of_original FROM payout.history
WHERE tbl = 'payouts'::regclass;

DROP TABLE payouts_102008;
DROP TABLE payouts;
DROP ROLE regress_payout_shard_app;
DROP EXTENSION payout;
