--
-- autoprocess: automatic and manual processing.  A payout whose
-- autoprocess column is false or NULL is manual: payout.claim() never hands
-- it to a processor, and only an operator moves it on from READY toward
-- processing or turns its autoprocess on.  Tried as each role, with only
-- the grants doc/security.md recommends:
--   regress_ap_owner      owns the table, may keep history
--   regress_ap_app        the application: SELECT, INSERT, UPDATE, DELETE
--   regress_ap_processor  claims: SELECT, UPDATE
--   regress_ap_operator   a member of the operator role (SELECT, UPDATE)
--   regress_ap_moderator  a member of the moderator role (SELECT, UPDATE)
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_ap_owner;
CREATE ROLE regress_ap_app;
CREATE ROLE regress_ap_processor;
CREATE ROLE regress_ap_operators NOLOGIN;
CREATE ROLE regress_ap_operator;
CREATE ROLE regress_ap_moderators NOLOGIN;
CREATE ROLE regress_ap_moderator;
GRANT regress_ap_operators TO regress_ap_operator;
GRANT regress_ap_moderators TO regress_ap_moderator;
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_ap_owner;
SET payout.operator_role = 'regress_ap_operators';
SET payout.moderator_role = 'regress_ap_moderators';
CREATE SCHEMA ap AUTHORIZATION regress_ap_owner;
GRANT USAGE ON SCHEMA ap TO regress_ap_app, regress_ap_processor,
	regress_ap_operators, regress_ap_moderators;

--
-- Attaching: a column named autoprocess is taken by default; another name
-- is given; a wrong type or a missing named column is refused.
--
SET ROLE regress_ap_owner;
CREATE TABLE ap.payouts (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean,
	created_at timestamptz NOT NULL DEFAULT '2026-01-01'
);
SELECT payout.attach('ap.payouts');
SELECT * FROM payout.attachment('ap.payouts');
GRANT SELECT, INSERT, UPDATE, DELETE ON ap.payouts TO regress_ap_app;
GRANT SELECT, UPDATE ON ap.payouts TO regress_ap_processor,
	regress_ap_operators, regress_ap_moderators;
CREATE TABLE ap.other (id int PRIMARY KEY, status payout.status NOT NULL,
					   auto text, by_hand boolean GENERATED ALWAYS AS (auto = 'n') STORED);
SELECT payout.attach('ap.other', autoprocess_column => 'auto');
SELECT payout.attach('ap.other', autoprocess_column => 'missing');
SELECT payout.attach('ap.other', autoprocess_column => 'by_hand');
-- Without such a column every payout is automatic.
SELECT payout.attach('ap.other');
SELECT autoprocess_column IS NULL AS all_automatic FROM payout.attachment('ap.other');
SELECT payout.detach('ap.other');
ALTER TABLE ap.other DROP COLUMN by_hand;
ALTER TABLE ap.other RENAME COLUMN auto TO automatic;
ALTER TABLE ap.other ALTER COLUMN automatic TYPE boolean USING automatic = 'y';
SELECT payout.attach('ap.other', autoprocess_column => 'automatic');
SELECT autoprocess_column FROM payout.attachment('ap.other');
-- A column renamed after attach: attachment() says so.
ALTER TABLE ap.other RENAME COLUMN automatic TO auto2;
SELECT * FROM payout.attachment('ap.other');
RESET ROLE;

--
-- The application creates automatic (1, 2) and manual (3 false, 4 NULL,
-- 5 false) payouts and readies them all: creating and readying is free.
--
SET ROLE regress_ap_app;
INSERT INTO ap.payouts (id, autoprocess) VALUES
	(1, true), (2, true), (3, false), (4, NULL), (5, false), (6, false);
UPDATE ap.payouts SET status = 'READY';
-- It may not move a manual payout toward processing, nor turn it automatic,
-- in any way.
UPDATE ap.payouts SET status = 'INVOKING' WHERE id = 3;
UPDATE ap.payouts SET status = 'INVOKING' WHERE id = 4;
UPDATE ap.payouts SET autoprocess = true WHERE id = 3;
UPDATE ap.payouts SET autoprocess = true, status = 'INVOKING' WHERE id = 4;
INSERT INTO ap.payouts (id) VALUES (3)
ON CONFLICT (id) DO UPDATE SET status = 'INVOKING';
-- It may end it along the graph, and turn autoprocess off.
UPDATE ap.payouts SET status = 'TERMINATED' WHERE id = 6;
UPDATE ap.payouts SET autoprocess = false WHERE id = 2;
UPDATE ap.payouts SET autoprocess = true WHERE id = 2;
RESET ROLE;
SELECT id, status, autoprocess FROM ap.payouts ORDER BY id;

--
-- Processors get automatic payouts only; manual claims are the operators'.
--
SET ROLE regress_ap_processor;
SELECT * FROM payout.claim('ap.payouts', 10) AS key ORDER BY key;
SELECT * FROM payout.claim('ap.payouts', 10) AS key;
SELECT * FROM payout.claim('ap.payouts', 10, manual => true) AS key;
UPDATE ap.payouts SET status = 'INVOKING' WHERE id = 3;
SET ROLE regress_ap_moderator;
UPDATE ap.payouts SET status = 'INVOKING' WHERE id = 3;
-- The table's owner is no operator either: only DISABLE TRIGGER would get
-- it around the rule.
SET ROLE regress_ap_owner;
UPDATE ap.payouts SET status = 'INVOKING' WHERE id = 3;
SELECT * FROM payout.claim('ap.payouts', 1, manual => true) AS key;
SET ROLE regress_ap_operator;
SELECT * FROM payout.claim('ap.payouts', 1, manual => true) AS key;
SELECT * FROM payout.claim('ap.payouts', 10, manual => true) AS key ORDER BY key;
SELECT * FROM payout.claim('ap.payouts', 10, manual => true) AS key;
RESET ROLE;
SELECT id, status, autoprocess FROM ap.payouts ORDER BY id;

--
-- A held manual payout: the moderator releases it, the operator processes
-- it; an operator may turn autoprocess on, and processors then take it.
--
SET ROLE regress_ap_app;
INSERT INTO ap.payouts (id, autoprocess) VALUES (7, false), (8, NULL);
UPDATE ap.payouts SET status = 'READY' WHERE id IN (7, 8);
UPDATE ap.payouts SET resolution = 'CONNECTION_ERROR' WHERE id = 7;
SET ROLE regress_ap_operator;
UPDATE ap.payouts SET status = 'INVOKING' WHERE id = 7;
SET ROLE regress_ap_moderator;
UPDATE ap.payouts SET resolution = 'OK' WHERE id = 7;
SET ROLE regress_ap_operator;
UPDATE ap.payouts SET status = 'INVOKING' WHERE id = 7;
UPDATE ap.payouts SET autoprocess = true WHERE id = 8;
SET ROLE regress_ap_processor;
SELECT * FROM payout.claim('ap.payouts', 10) AS key;
RESET ROLE;
-- The history says who processed each manual payout.
SELECT key, old_status, new_status, user_name FROM payout.history
WHERE tbl = 'ap.payouts'::regclass AND new_status = 'INVOKING'
ORDER BY key::int;
-- Expiry is the application's, manual payouts included.
SET ROLE regress_ap_app;
INSERT INTO ap.payouts (id, autoprocess) VALUES (9, false);
UPDATE ap.payouts SET status = 'READY' WHERE id = 9;
SELECT payout.expire('ap.payouts', '1 day');
RESET ROLE;
SELECT id, status FROM ap.payouts WHERE id = 9;

--
-- Manual payouts waiting, oldest first, as doc/workflow.md gives the query,
-- through the index attach() made (the page gives its definition).
--
SELECT pg_get_indexdef('ap.payouts_payout_manual'::regclass);
SET ROLE regress_ap_app;
INSERT INTO ap.payouts (id, autoprocess, created_at)
SELECT g, g % 3 = 0, '2026-01-01'::timestamptz + g * interval '1 hour'
FROM generate_series(100, 130) AS g;
UPDATE ap.payouts SET status = 'READY' WHERE id >= 100;
RESET ROLE;
ANALYZE ap.payouts;
SET enable_seqscan = off;
SET ROLE regress_ap_operator;
EXPLAIN (COSTS OFF)
SELECT id, created_at FROM ap.payouts
WHERE status = 'READY' AND autoprocess IS NOT TRUE
  AND NOT payout.requires_moderation(status, resolution)
ORDER BY created_at
LIMIT 5;
SELECT id, created_at FROM ap.payouts
WHERE status = 'READY' AND autoprocess IS NOT TRUE
  AND NOT payout.requires_moderation(status, resolution)
ORDER BY created_at
LIMIT 5;
RESET ROLE;
RESET enable_seqscan;

--
-- Partitions: a move that turns autoprocess on is refused like any other
-- change; a move of a manual payout that keeps it is not.
--
SET ROLE regress_ap_owner;
CREATE TABLE ap.parts (
	id int, region text, status payout.status NOT NULL DEFAULT 'CREATED',
	autoprocess boolean NOT NULL DEFAULT true, PRIMARY KEY (id, region)
) PARTITION BY LIST (region);
CREATE TABLE ap.parts_a PARTITION OF ap.parts FOR VALUES IN ('a');
CREATE TABLE ap.parts_b PARTITION OF ap.parts FOR VALUES IN ('b');
SELECT payout.attach('ap.parts');
GRANT SELECT, INSERT, UPDATE ON ap.parts TO regress_ap_app;
SET ROLE regress_ap_app;
INSERT INTO ap.parts (id, region, autoprocess) VALUES (1, 'a', false);
UPDATE ap.parts SET status = 'READY';
UPDATE ap.parts SET region = 'b', autoprocess = true;
UPDATE ap.parts SET region = 'b';
UPDATE ap.parts SET status = 'INVOKING';
RESET ROLE;
SELECT tableoid::regclass, * FROM ap.parts;

--
-- The setting is a superuser's.
--
SET ROLE regress_ap_operator;
SET payout.operator_role = 'regress_ap_operator';
RESET ROLE;
RESET payout.operator_role;
SHOW payout.operator_role;
SET ROLE regress_ap_operator;
SELECT * FROM payout.claim('ap.payouts', 1, manual => true);
RESET ROLE;
SELECT payout.claim('ap.payouts', 1, NULL);

DROP SCHEMA ap CASCADE;
DROP EXTENSION payout;
DROP ROLE regress_ap_owner, regress_ap_app, regress_ap_processor,
	regress_ap_operators, regress_ap_operator, regress_ap_moderators,
	regress_ap_moderator;
