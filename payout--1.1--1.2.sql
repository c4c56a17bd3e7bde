/* payout--1.1--1.2.sql: update payout from version 1.1 to 1.2 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION payout UPDATE TO '1.2'" to load this file. \quit

------------------------------------------------------------------------------
-- Audit history: who made a change behind a shared role, and the key a
-- change of primary key left behind.
------------------------------------------------------------------------------

ALTER TABLE payout.history
	ADD COLUMN actor text,
	ADD COLUMN old_key text COLLATE "C";
COMMENT ON COLUMN payout.history.actor IS 'the setting payout.actor when the change was made: who, behind a shared database role, made it, as the application says; NULL when it was empty';
COMMENT ON COLUMN payout.history.old_key IS 'NULL unless the change changed the payout''s primary key: then the key before it (key is the key after)';
