/* payout--1.1--1.2.sql: update payout from version 1.1 to 1.2 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION payout UPDATE TO '1.2'" to load this file. \quit

------------------------------------------------------------------------------
-- History: who behind a shared role made a change, and key changes linked.
------------------------------------------------------------------------------

ALTER TABLE payout.history ADD COLUMN actor text, ADD COLUMN old_key text COLLATE "C";
COMMENT ON COLUMN payout.history.actor IS 'who made the change as the application says (setting payout.actor); not authenticated by the database';
COMMENT ON COLUMN payout.history.old_key IS 'the key before the change, when the change changed the payout''s key; NULL otherwise';
