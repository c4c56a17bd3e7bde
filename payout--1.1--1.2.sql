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

------------------------------------------------------------------------------
-- The ledger: payout.history sealed in a chain of SHA-256 blocks, so that a
-- change to sealed history shows, whoever made it.  See doc/ledger.md.
------------------------------------------------------------------------------

-- One row per block, written by payout.seal() alone; its hash covers every
-- other column.  Dumped whole, so that a restored database verifies against
-- the digests taken before the dump.
CREATE TABLE payout.ledger (
	block bigint PRIMARY KEY,
	format smallint NOT NULL,
	prev_hash bytea NOT NULL,
	first_id bigint NOT NULL,
	last_id bigint NOT NULL,
	row_count bigint NOT NULL,
	min_clock_time timestamptz,
	max_clock_time timestamptz,
	sealed_at timestamptz NOT NULL,
	retention interval,
	system_identifier bigint NOT NULL,
	database_oid oid NOT NULL,
	extension_oid oid NOT NULL,
	table_oids oid[] NOT NULL,
	table_schemas text[] NOT NULL,
	table_names text[] NOT NULL,
	renamed_oids oid[] NOT NULL,
	renamed_from_schemas text[] NOT NULL,
	renamed_from_names text[] NOT NULL,
	renamed_to_schemas text[] NOT NULL,
	renamed_to_names text[] NOT NULL,
	rows_hash bytea NOT NULL,
	row_ids bytea NOT NULL,
	row_marks bytea NOT NULL,
	hash bytea NOT NULL
);
-- Eight of a mark's eighteen bytes are SHA-256 output, which compresses
-- badly: store the marks as they are.
ALTER TABLE payout.ledger ALTER COLUMN row_marks SET STORAGE EXTERNAL;
COMMENT ON TABLE payout.ledger IS 'the blocks that seal payout.history: each covers the history rows with ids first_id to last_id and the hash of the block before it; written by payout.seal()';
COMMENT ON COLUMN payout.ledger.prev_hash IS 'hash of the previous block (32 zero bytes for block 1)';
COMMENT ON COLUMN payout.ledger.retention IS 'payout.ledger_retention when the block was sealed: sealed rows older than this, counted back from a verified block, may be gone';
COMMENT ON COLUMN payout.ledger.table_oids IS 'the tables the block''s rows name, with table_schemas and table_names: their names when sealed (a NULL schema: a dropped table, named by its OID)';
COMMENT ON COLUMN payout.ledger.renamed_oids IS 'tables renamed or dropped since the previous block, with their names before and after';
COMMENT ON COLUMN payout.ledger.rows_hash IS 'SHA-256 over the ids and leaves (SHA-256 of the canonical bytes of every other column) of the rows, in id order';
COMMENT ON COLUMN payout.ledger.row_marks IS '18 bytes a row: table index, CRC-32C of the key, clock_time in seconds after min_clock_time, first 8 bytes of the leaf';
COMMENT ON COLUMN payout.ledger.hash IS 'SHA-256 of the block: what payout.digest() returns and digests keep';
SELECT pg_catalog.pg_extension_config_dump('payout.ledger', '');

-- The names of the tables the sealer has seen, so that it records a rename
-- in the next block.  Dumped: a restored database finds each table again by
-- a history row sealed under it (row_id), whose tbl names it by its new OID.
CREATE TABLE payout.ledger_names (
	relation oid PRIMARY KEY,
	schema_name text,
	table_name text NOT NULL,
	row_id bigint
);
COMMENT ON TABLE payout.ledger_names IS 'internal: the name payout.seal() last recorded for each table that history rows name, and a row sealed under it';
SELECT pg_catalog.pg_extension_config_dump('payout.ledger_names', '');

-- Horizons seal() saw: the last history id given out, and the transactions
-- that were writing history then.  Unlogged and not dumped: after a crash
-- or a restore, seal() starts again from what it sees.
CREATE UNLOGGED TABLE payout.ledger_pending (
	horizon bigint PRIMARY KEY,
	recorded_at timestamptz NOT NULL,
	postmaster_start timestamptz NOT NULL,
	waits_for bigint[] NOT NULL
);
COMMENT ON TABLE payout.ledger_pending IS 'internal: history ids payout.seal() may seal once the transactions in waits_for have ended';

-- Sealing writes the ledger as its owner: not for everyone; a superuser
-- grants EXECUTE to the role that runs it (a pg_cron job's).
CREATE FUNCTION payout.seal(max_rows bigint DEFAULT NULL,
							OUT blocks integer, OUT sealed_rows bigint,
							OUT through_id bigint, OUT waiting integer)
RETURNS record
AS 'MODULE_PATHNAME', 'payout_seal'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION payout.seal(bigint) IS 'seals, in blocks of payout.ledger, the history rows no transaction can add to any more (at most max_rows); never waits for a writer; returns the blocks and rows sealed, the last id sealed, and how many transactions were writing history';
REVOKE ALL ON FUNCTION payout.seal(bigint) FROM PUBLIC;

CREATE FUNCTION payout.digest()
RETURNS TABLE (block bigint, hash text, sealed_at timestamptz)
LANGUAGE sql
STABLE
AS $$
	SELECT l.block, pg_catalog.encode(l.hash, 'hex'), l.sealed_at
	FROM payout.ledger l
	ORDER BY l.block DESC
	LIMIT 1
$$;
COMMENT ON FUNCTION payout.digest() IS 'the newest block''s number, hash (hex) and time: keep it outside the database, and give it to payout.verify()';

CREATE FUNCTION payout.verify(digests jsonb DEFAULT NULL,
							  tbl regclass DEFAULT NULL,
							  key text DEFAULT NULL)
RETURNS TABLE (block bigint, id bigint, finding text, detail text)
AS 'MODULE_PATHNAME', 'payout_verify'
LANGUAGE C STABLE;
COMMENT ON FUNCTION payout.verify(jsonb, regclass, text) IS 'checks the sealed history (all of it, one table''s or one payout''s rows) against the ledger and the digests given (a JSON array of payout.digest() rows): one line per difference, located by block and id, then the verdict, intact or tampered';
