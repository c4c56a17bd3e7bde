--
-- identity: who a payout is (its key) and who changes it (the role the
-- rules judge, the person the application names).  Each rule is tried by
-- the role that wants to break it, with the grants doc/security.md
-- recommends.
--
CREATE EXTENSION payout;
SET timezone = 'UTC';
\set SHOW_CONTEXT never

CREATE ROLE regress_ident_app;
CREATE ROLE regress_ident_processor;
CREATE ROLE regress_ident_moderators;
CREATE ROLE regress_ident_moderator IN ROLE regress_ident_moderators;
CREATE ROLE regress_ident_operators;
CREATE ROLE regress_ident_operator IN ROLE regress_ident_operators;
SET payout.moderator_role = 'regress_ident_moderators';
SET payout.operator_role = 'regress_ident_operators';
CREATE SCHEMA shop;
GRANT USAGE ON SCHEMA shop TO PUBLIC;

------------------------------------------------------------------------------
-- 1. Keys are identity: a change of a payout's key is judged like any
-- update and always recorded, with the key before it, so that the old key
-- and the new one stay linked and the old key is never free for a new
-- payout without a record.
------------------------------------------------------------------------------

CREATE TABLE shop.payouts (
	id bigint PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution
);
SELECT payout.attach('shop.payouts');
GRANT SELECT, INSERT, UPDATE ON shop.payouts TO regress_ident_app;
GRANT SELECT, UPDATE ON shop.payouts TO regress_ident_moderators, regress_ident_processor;

-- The application takes a held payout away from its key, and makes a new
-- payout under the old key, which it processes to the end.
SET ROLE regress_ident_app;
INSERT INTO shop.payouts (id) VALUES (2);
UPDATE shop.payouts SET status = 'READY' WHERE id = 2;
SET ROLE regress_ident_processor;
UPDATE shop.payouts SET status = 'INVOKING' WHERE id = 2;
UPDATE shop.payouts SET resolution = 'GENERAL_ERROR' WHERE id = 2;
SET ROLE regress_ident_app;
-- the hold covers status and resolution: the key alone may change...
UPDATE shop.payouts SET id = 90002 WHERE id = 2;
-- ... and the payout stays held under its new key
\set VERBOSITY sqlstate
UPDATE shop.payouts SET status = 'PROCESSING' WHERE id = 90002;
\set VERBOSITY default
INSERT INTO shop.payouts (id) VALUES (2);
UPDATE shop.payouts SET status = 'READY' WHERE id = 2;
UPDATE shop.payouts SET status = 'INVOKING' WHERE id = 2;
UPDATE shop.payouts SET status = 'PROCESSING' WHERE id = 2;
UPDATE shop.payouts SET status = 'PROCESSED', resolution = 'OK' WHERE id = 2;
RESET ROLE;
-- History links the keys: payout 2's timeline shows the held payout taken
-- to key 90002 and the new payout 2, each for what it is.
SELECT key, old_key, old_status, new_status, old_resolution, new_resolution, user_name
FROM payout.timeline('shop.payouts', '2');
SELECT key, old_key, old_status, new_status
FROM payout.timeline('shop.payouts', '90002');
SELECT * FROM shop.payouts ORDER BY id;

-- A key change together with a status change is one change, recorded once.
SET ROLE regress_ident_app;
INSERT INTO shop.payouts (id) VALUES (3);
UPDATE shop.payouts SET id = 30, status = 'READY' WHERE id = 3;
-- and still judged: an illegal status change is refused with its key change
UPDATE shop.payouts SET id = 300, status = 'PROCESSED' WHERE id = 30;
RESET ROLE;
SELECT key, old_key, old_status, new_status FROM payout.timeline('shop.payouts', '30');

-- Composite keys, and a key changed by ON UPDATE CASCADE from a referenced
-- table: a customer renumbered renames its payouts, each change recorded
-- and linked.
CREATE TABLE shop.customers (id int PRIMARY KEY);
CREATE TABLE shop.orders (
	customer int REFERENCES shop.customers ON UPDATE CASCADE,
	n int,
	status payout.status NOT NULL DEFAULT 'CREATED',
	PRIMARY KEY (customer, n)
);
SELECT payout.attach('shop.orders');
GRANT SELECT, INSERT, UPDATE ON shop.customers, shop.orders TO regress_ident_app;
SET ROLE regress_ident_app;
INSERT INTO shop.customers VALUES (7);
INSERT INTO shop.orders (customer, n) VALUES (7, 1), (7, 2);
UPDATE shop.orders SET status = 'READY' WHERE n = 1;
UPDATE shop.customers SET id = 70 WHERE id = 7;
RESET ROLE;
SELECT key, old_key, old_status, new_status, user_name
FROM payout.history WHERE tbl = 'shop.orders'::regclass ORDER BY id;
SELECT key, old_key, old_status, new_status FROM payout.timeline('shop.orders', '(7,1)');
-- A cascade that a SECURITY DEFINER function causes is judged as the
-- session's role, and recorded under that role too: not under the
-- function's owner, nor (on PostgreSQL 18, which fires the cascade's AFTER
-- triggers as the role that queued them) under the table's owner.
CREATE FUNCTION shop.renumber(o int, n int) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS 'UPDATE shop.customers SET id = n WHERE id = o';
GRANT EXECUTE ON FUNCTION shop.renumber(int, int) TO regress_ident_app;
SET ROLE regress_ident_app;
SELECT shop.renumber(70, 71);
RESET ROLE;
SELECT key, old_key, user_name FROM payout.history
WHERE tbl = 'shop.orders'::regclass AND key LIKE '(71,%' ORDER BY id;
-- A cascade that fails after the trigger judged its rows (here a DBA's
-- AFTER trigger that fires before history's), rolled back to a savepoint,
-- leaves nothing behind: the next change of those rows, by an operator's
-- SECURITY DEFINER function, is recorded under the operator.
CREATE FUNCTION shop.refuse_72() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.customer = 72 THEN
		RAISE EXCEPTION 'customer 72 is closed';
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER a_refuse_72 AFTER UPDATE ON shop.orders
	FOR EACH ROW EXECUTE FUNCTION shop.refuse_72();
CREATE FUNCTION shop.advance_orders(c int) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
AS 'UPDATE shop.orders SET status = CASE status WHEN ''CREATED''
	THEN ''READY''::payout.status ELSE ''INVOKING'' END WHERE customer = c';
ALTER FUNCTION shop.advance_orders(int) OWNER TO regress_ident_operator;
GRANT USAGE ON SCHEMA shop TO regress_ident_operator;
GRANT SELECT, UPDATE ON shop.orders TO regress_ident_operator;
GRANT EXECUTE ON FUNCTION shop.advance_orders(int) TO regress_ident_app;
SET ROLE regress_ident_app;
BEGIN;
SAVEPOINT before_renumber;
\set VERBOSITY terse
UPDATE shop.customers SET id = 72 WHERE id = 71;
\set VERBOSITY default
ROLLBACK TO SAVEPOINT before_renumber;
SELECT shop.advance_orders(71);
COMMIT;
RESET ROLE;
SELECT key, old_status, new_status, user_name FROM payout.history
WHERE tbl = 'shop.orders'::regclass AND key LIKE '(71,%' AND old_key IS NULL
ORDER BY key;

-- A key that changes only in form (numeric 1.0 to 1.00) is the same key.
CREATE TABLE shop.numbered (n numeric PRIMARY KEY, status payout.status NOT NULL);
SELECT payout.attach('shop.numbered');
INSERT INTO shop.numbered VALUES (1.0, 'CREATED');
UPDATE shop.numbered SET n = 1.00;
SELECT count(*) AS changes FROM payout.history WHERE tbl = 'shop.numbered'::regclass;
DROP TABLE shop.numbered;

------------------------------------------------------------------------------
-- 2. Foreign-key actions are judged as the session's role, which caused
-- them, not as the referencing table's owner, which PostgreSQL runs them
-- as; history names that role.  The owner is a superuser, a moderator or
-- an operator: none of their rights reach the application.
------------------------------------------------------------------------------

-- The referenced tables are the application's to change.
CREATE TABLE shop.clients (id int PRIMARY KEY);
CREATE TABLE shop.lookup (code payout.resolution PRIMARY KEY);
CREATE TABLE shop.flags (f boolean PRIMARY KEY);
GRANT SELECT, UPDATE, DELETE ON shop.clients, shop.lookup, shop.flags TO PUBLIC;
GRANT EXECUTE ON FUNCTION payout.record_history() TO regress_ident_moderator,
	regress_ident_operator;
-- A payout table owned by owner, whose rows follow the referenced tables:
-- ON DELETE CASCADE (client), ON UPDATE CASCADE and ON DELETE SET NULL
-- (resolution), ON DELETE SET DEFAULT (autoprocess).  Payout 1 is held;
-- 2 is manual, in PROCESSING; 3 is manual, waiting in READY.
CREATE FUNCTION pg_temp.cascading(owner name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	SET LOCAL client_min_messages = warning;
	DROP TABLE IF EXISTS shop.linked;
	DELETE FROM shop.clients;
	INSERT INTO shop.clients VALUES (1), (2), (3);
	DELETE FROM shop.lookup;
	INSERT INTO shop.lookup SELECT r FROM unnest(enum_range(NULL::payout.resolution)) r
	WHERE r <> 'OK';
	DELETE FROM shop.flags;
	INSERT INTO shop.flags VALUES (true), (false);
	CREATE TABLE shop.linked (
		id int PRIMARY KEY,
		client int REFERENCES shop.clients ON DELETE CASCADE,
		status payout.status NOT NULL DEFAULT 'CREATED',
		resolution payout.resolution
			REFERENCES shop.lookup ON UPDATE CASCADE ON DELETE SET NULL,
		autoprocess boolean NOT NULL DEFAULT true
			REFERENCES shop.flags ON DELETE SET DEFAULT
	);
	INSERT INTO shop.linked (id, client, autoprocess) VALUES (1, 1, true), (2, 2, false), (3, 3, false);
	UPDATE shop.linked SET status = 'READY';
	UPDATE shop.linked SET status = 'INVOKING' WHERE id IN (1, 2);
	UPDATE shop.linked SET status = 'PROCESSING' WHERE id = 2;
	UPDATE shop.linked SET resolution = 'GENERAL_ERROR' WHERE id = 1;
	EXECUTE format('ALTER TABLE shop.linked OWNER TO %I', owner);
	EXECUTE format('SET LOCAL ROLE %I', owner);
	PERFORM payout.attach('shop.linked', delete_unfinished => true, indexes => false);
	GRANT SELECT, INSERT, UPDATE, DELETE ON shop.linked TO regress_ident_app,
		regress_ident_moderators, regress_ident_operators;
	RESET ROLE;
END
$$;
-- The application, against each owner: every action is judged as the
-- application, and refused.
\set VERBOSITY sqlstate
SELECT pg_temp.cascading(current_user);
SET ROLE regress_ident_app;
DELETE FROM shop.clients WHERE id = 1;  -- deletes the held payout
UPDATE shop.lookup SET code = 'OK' WHERE code = 'GENERAL_ERROR';  -- releases it
DELETE FROM shop.lookup WHERE code = 'GENERAL_ERROR';  -- releases it
DELETE FROM shop.clients WHERE id = 2;  -- deletes the manual payout in processing
DELETE FROM shop.flags WHERE NOT f;  -- makes the manual payouts automatic
RESET ROLE;
SELECT pg_temp.cascading('regress_ident_moderator');
SET ROLE regress_ident_app;
DELETE FROM shop.clients WHERE id = 1;
UPDATE shop.lookup SET code = 'OK' WHERE code = 'GENERAL_ERROR';
DELETE FROM shop.lookup WHERE code = 'GENERAL_ERROR';
RESET ROLE;
SELECT pg_temp.cascading('regress_ident_operator');
SET ROLE regress_ident_app;
DELETE FROM shop.clients WHERE id = 2;
DELETE FROM shop.flags WHERE NOT f;
RESET ROLE;
\set VERBOSITY default
SELECT id, client, status, resolution, autoprocess FROM shop.linked ORDER BY id;
-- The roles that may: a moderator's cascade deletes the held payout, an
-- operator's the manual one and turns the other automatic; history names
-- each, not the owner.
SET ROLE regress_ident_moderator;
DELETE FROM shop.clients WHERE id = 1;
SET ROLE regress_ident_operator;
DELETE FROM shop.clients WHERE id = 2;
DELETE FROM shop.flags WHERE NOT f;
RESET ROLE;
SELECT id, client, status, resolution, autoprocess FROM shop.linked ORDER BY id;
SELECT key, old_status, new_status, user_name FROM payout.history
WHERE tbl = 'shop.linked'::regclass AND (new_status IS NULL OR user_name <> current_user)
ORDER BY id;

------------------------------------------------------------------------------
-- 3. Manual payouts are an operator's from the moment they leave READY
-- until they are final: nobody else moves them on, processes them, or
-- deletes them while they are not final (which would let a new automatic
-- payout take the key).
------------------------------------------------------------------------------

CREATE TABLE shop.manual (
	id int PRIMARY KEY,
	status payout.status NOT NULL DEFAULT 'CREATED',
	resolution payout.resolution,
	autoprocess boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now()
);
SELECT payout.attach('shop.manual', delete_unfinished => true);
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.manual TO regress_ident_app;
GRANT SELECT, UPDATE ON shop.manual TO regress_ident_processor,
	regress_ident_moderators;
GRANT SELECT, UPDATE, DELETE ON shop.manual TO regress_ident_operators;
SET ROLE regress_ident_app;
INSERT INTO shop.manual (id) SELECT g FROM generate_series(1, 6) g;
UPDATE shop.manual SET status = 'READY';
-- while it waits, the application may still end a manual payout
UPDATE shop.manual SET status = 'TERMINATED' WHERE id = 6;
SET ROLE regress_ident_operator;
SELECT * FROM payout.claim('shop.manual', 4, manual => true) ORDER BY 1;
\set VERBOSITY sqlstate
-- past READY: the application, the processor and a moderator are refused
SET ROLE regress_ident_app;
UPDATE shop.manual SET status = 'PROCESSING' WHERE id = 1;
UPDATE shop.manual SET status = 'INVOKE_FAILED' WHERE id = 1;
UPDATE shop.manual SET resolution = 'GENERAL_ERROR' WHERE id = 1;
SET ROLE regress_ident_processor;
UPDATE shop.manual SET status = 'PROCESSING' WHERE id = 1;
SET ROLE regress_ident_moderator;
UPDATE shop.manual SET status = 'PROCESSING' WHERE id = 1;
\set VERBOSITY default
SET ROLE regress_ident_app;
UPDATE shop.manual SET status = 'PENDING' WHERE id = 2;
\set VERBOSITY sqlstate
-- the operator processes them
SET ROLE regress_ident_operator;
UPDATE shop.manual SET status = 'PROCESSING' WHERE id IN (1, 2, 3);
UPDATE shop.manual SET status = 'PROCESSED', resolution = 'OK' WHERE id = 1;
UPDATE shop.manual SET resolution = 'GENERAL_ERROR' WHERE id = 2;
UPDATE shop.manual SET status = 'PENDING' WHERE id = 3;
-- a held manual payout is a moderator's decision; after the release it is
-- the operator's again
SET ROLE regress_ident_moderator;
UPDATE shop.manual SET resolution = 'OK' WHERE id = 2;
UPDATE shop.manual SET status = 'PROCESSED' WHERE id = 2;
SET ROLE regress_ident_app;
UPDATE shop.manual SET status = 'PROCESSED' WHERE id = 2;
-- expire() as the application leaves manual payouts past READY alone...
SELECT payout.expire('shop.manual', '0 seconds') AS expired_by_app;
-- ... and a delete of an unfinished manual payout, which would free its
-- key for an automatic payout, is an operator's too
DELETE FROM shop.manual WHERE id = 4;
INSERT INTO shop.manual (id, autoprocess) VALUES (4, true);
SET ROLE regress_ident_operator;
SELECT payout.expire('shop.manual', '0 seconds') AS expired_by_operator;
DELETE FROM shop.manual WHERE id = 4;
-- a held manual payout is deleted only by a role that is both: the
-- moderator is refused as no operator, the operator as no moderator
UPDATE shop.manual SET resolution = 'GENERAL_ERROR' WHERE id = 2;
RESET ROLE;
\set VERBOSITY default
GRANT DELETE ON shop.manual TO regress_ident_moderators;
CREATE ROLE regress_ident_both IN ROLE regress_ident_moderators, regress_ident_operators;
SET ROLE regress_ident_moderator;
DELETE FROM shop.manual WHERE id = 2;
SET ROLE regress_ident_operator;
DELETE FROM shop.manual WHERE id = 2;
SELECT count(*) AS still_there FROM shop.manual WHERE id = 2;
SET ROLE regress_ident_both;
DELETE FROM shop.manual WHERE id = 2;
RESET ROLE;
\set VERBOSITY default
SELECT id, status, resolution, autoprocess FROM shop.manual ORDER BY id;
SELECT key, old_status, new_status, old_resolution, new_resolution, user_name
FROM payout.history WHERE tbl = 'shop.manual'::regclass AND old_status IS DISTINCT FROM 'CREATED'
ORDER BY id;

------------------------------------------------------------------------------
-- 4. The person behind a shared role: payout.actor, which the application
-- sets per transaction, recorded beside the role the database vouches for.
------------------------------------------------------------------------------

SET ROLE regress_ident_app;
INSERT INTO shop.payouts (id) VALUES (40);
BEGIN;
SET LOCAL payout.actor = 'alice@backoffice';
UPDATE shop.payouts SET status = 'READY' WHERE id = 40;
COMMIT;
BEGIN;
SELECT set_config('payout.actor', 'bob@backoffice', true);
UPDATE shop.payouts SET status = 'INVOKING' WHERE id = 40;
COMMIT;
-- gone with its transaction
SHOW payout.actor;
UPDATE shop.payouts SET status = 'PROCESSING' WHERE id = 40;
RESET ROLE;
SELECT old_status, new_status, user_name, actor
FROM payout.timeline('shop.payouts', '40');

DROP SCHEMA shop CASCADE;
REVOKE EXECUTE ON FUNCTION payout.record_history() FROM regress_ident_moderator,
	regress_ident_operator;
DROP ROLE regress_ident_app, regress_ident_processor, regress_ident_moderator,
	regress_ident_moderators, regress_ident_operator, regress_ident_operators,
	regress_ident_both;
DROP EXTENSION payout;
