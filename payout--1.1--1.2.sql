/* payout--1.1--1.2.sql: update payout from version 1.1 to 1.2 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION payout UPDATE TO '1.2'" to load this file. \quit

------------------------------------------------------------------------------
-- History: who behind a shared role made a change, and key changes linked.
------------------------------------------------------------------------------

ALTER TABLE payout.history ADD COLUMN actor text, ADD COLUMN old_key text COLLATE "C";
COMMENT ON COLUMN payout.history.actor IS 'who made the change as the application says (setting payout.actor); not authenticated by the database';
COMMENT ON COLUMN payout.history.old_key IS 'the key before the change, when the change changed the payout''s key; NULL otherwise';
CREATE INDEX history_catchall_tbl_old_key_idx ON payout.history_catchall (tbl, old_key)
	WHERE old_key IS NOT NULL;

DROP FUNCTION payout.timeline(regclass, text);
-- A payout's whole life, under every key it had: from a change that gave
-- the payout its key back to the rows of the key it had before, up to that
-- change, and forward to the rows of the key a later change gave it, from
-- that change on.  So a payout renamed away and the new payout that later
-- took its key both show under that key, each for what it is, with the
-- change that links them; under the new key, only the renamed payout's
-- own rows.  On a distributed table, one query per node, whose rows are
-- ordered by clock_time: ids come from each node's own sequence.
CREATE FUNCTION payout.timeline(tbl regclass, key text)
RETURNS SETOF payout.history
LANGUAGE plpgsql
STABLE STRICT PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	-- the key's segments: (key, first id, last id) of the payout's rows
	rows_of_keys constant text :=
		'WITH RECURSIVE seg(k, lo, hi) AS ('
		' SELECT $2::text COLLATE "C", 0::bigint, 9223372036854775807::bigint'
		' UNION'
		' SELECT CASE WHEN h.key OPERATOR(pg_catalog.=) seg.k THEN h.old_key ELSE h.key END,'
		'  CASE WHEN h.key OPERATOR(pg_catalog.=) seg.k THEN 0::bigint ELSE h.id END,'
		'  CASE WHEN h.key OPERATOR(pg_catalog.=) seg.k THEN h.id ELSE 9223372036854775807::bigint END'
		' FROM seg JOIN payout.history h'
		' ON h.tbl OPERATOR(pg_catalog.=) $1 AND h.old_key IS NOT NULL'
		' AND (h.key OPERATOR(pg_catalog.=) seg.k OR h.old_key OPERATOR(pg_catalog.=) seg.k)'
		' AND h.id OPERATOR(pg_catalog.>=) seg.lo AND h.id OPERATOR(pg_catalog.<=) seg.hi)'
		' SELECT h.* FROM payout.history h'
		' WHERE h.tbl OPERATOR(pg_catalog.=) $1 AND h.key IN (SELECT seg.k FROM seg)'
		' AND EXISTS (SELECT FROM seg WHERE seg.k OPERATOR(pg_catalog.=) h.key'
		'  AND h.id OPERATOR(pg_catalog.>=) seg.lo AND h.id OPERATOR(pg_catalog.<=) seg.hi)';
BEGIN
	IF payout.distribution_column(tbl) IS NOT NULL THEN
		RETURN QUERY
		SELECT h.*
		FROM payout.on_all_nodes(format(
				-- tbl travels as this node's qualified name: the caller's
				-- search_path may not find the name a node prints.
				'SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_set(pg_catalog.to_jsonb(h),'
				' ''{tbl}'', pg_catalog.to_jsonb(%1$L::text))), ''[]'')::pg_catalog.json'
				' FROM (%3$s) h',
				tbl, key,
				replace(replace(rows_of_keys, '$1', format('%L::pg_catalog.regclass', tbl)),
						'$2', quote_literal(key)))) AS n(rows),
			 json_populate_recordset(NULL::payout.history, n.rows) AS h
		ORDER BY h.clock_time, h.id;
		RETURN;
	END IF;
	RETURN QUERY EXECUTE rows_of_keys || ' ORDER BY h.id' USING tbl, key;
END
$$;
COMMENT ON FUNCTION payout.timeline(regclass, text) IS 'one payout''s recorded changes, oldest first, under this key and the keys changes linked it to (on a Citus distributed table, from every node)';

------------------------------------------------------------------------------
-- Who may do what, as the trigger asks it.
------------------------------------------------------------------------------

-- Who may do what, as the trigger asks it.
CREATE FUNCTION payout.is_moderator()
RETURNS boolean
AS 'MODULE_PATHNAME', 'payout_is_moderator'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION payout.is_moderator() IS 'true if the current user may release or end payouts held for moderation: a superuser, or a role with the privileges of payout.moderator_role';

CREATE FUNCTION payout.is_operator()
RETURNS boolean
AS 'MODULE_PATHNAME', 'payout_is_operator'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION payout.is_operator() IS 'true if the current user may process manual payouts and turn autoprocess on: a superuser, or a role with the privileges of payout.operator_role';

------------------------------------------------------------------------------
-- expire(): manual payouts past READY are left to operators, and batches
-- that meet rows moved to another partition run again, smaller.
------------------------------------------------------------------------------

DROP FUNCTION payout.expire_query(regclass, name, name, text);
DROP FUNCTION payout.expire(regclass, interval, name, integer);

-- A manual payout past READY is an operator's: expire() leaves those in
-- PENDING to operators, rather than fail on them.
CREATE FUNCTION payout.expire_manual_filter(tbl regclass)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att record := payout.attachment(tbl);
BEGIN
	IF att.autoprocess_column IS NULL OR payout.is_operator() THEN
		RETURN '';
	END IF;
	RETURN format(' AND (%I IS TRUE OR %I::payout.status OPERATOR(pg_catalog.<>) ''PENDING'')',
				  att.autoprocess_column, att.status_column);
END
$$;
COMMENT ON FUNCTION payout.expire_manual_filter(regclass) IS 'internal: the condition that keeps expire() off manual payouts past READY unless its caller is an operator';

CREATE FUNCTION payout.expire_query(tbl regclass, since_column name DEFAULT 'created_at',
									only_column name DEFAULT NULL,
									only_keys text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att record := payout.attachment(tbl);
	pk record := payout.primary_key(tbl, NULL);
	tpk record := payout.primary_key(tbl, 't');
	cpk record := payout.primary_key(tbl, 'c');
	filter text := '';
	tonly text := '';
BEGIN
	IF att.resolution_column IS NOT NULL THEN
		filter := format(' AND NOT payout.requires_moderation(%I, %I)',
						 att.status_column, att.resolution_column);
	END IF;
	filter := filter || payout.expire_manual_filter(tbl);
	-- only_column = ANY (only_keys): the payouts of one Citus shard.
	IF only_column IS NOT NULL THEN
		filter := filter || format(' AND %I OPERATOR(pg_catalog.=) ANY (%s)', only_column, only_keys);
		tonly := format(' AND t.%I OPERATOR(pg_catalog.=) ANY (%s)', only_column, only_keys);
	END IF;
	RETURN format(
		'WITH expired AS ('
		'UPDATE %1$s t SET %2$I = ''EXPIRED'''
		' FROM (SELECT %3$s FROM %1$s'
		' WHERE %2$I::payout.status IN (''CREATED'', ''READY'', ''PENDING'')%4$s'
		' AND payout.can_transition(%2$I, ''EXPIRED'')'
		' AND %5$I < now() - $1'
		' ORDER BY %5$I LIMIT $2 FOR UPDATE SKIP LOCKED) c'
		' WHERE (%6$s) = (%7$s)%8$s'
		' RETURNING 1)'
		' SELECT count(*) FROM expired',
		tbl, att.status_column, pk.columns, filter, since_column,
		tpk.columns, cpk.columns, tonly);
END
$$;
COMMENT ON FUNCTION payout.expire_query(regclass, name, name, text) IS 'internal: the statement payout.expire() runs for one batch of at most $2 payouts older than $1 (with only_column, of those whose only_column is in the array only_keys)';

CREATE FUNCTION payout.expire(tbl regclass, older_than interval,
							  since_column name DEFAULT 'created_at',
							  batch_size integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
	att record;
	coltype regtype;
	query text;
	batch integer := coalesce(batch_size, 1000);
	size integer;
	failures integer;
	n bigint;
	total bigint := 0;
	dist name;
	shard record;
	tried text[] := '{}';
	found_any boolean;
BEGIN
	IF tbl IS NULL OR since_column IS NULL THEN
		RAISE EXCEPTION 'table and since column must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF older_than IS NULL OR older_than OPERATOR(pg_catalog.<) '0'::interval THEN
		RAISE EXCEPTION 'older_than must be a non-negative interval, not %', coalesce(older_than::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF batch OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'batch_size must be a positive number of payouts, not %', batch
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	att := payout.attachment(tbl);
	SELECT a.atttypid INTO coltype FROM pg_attribute a
	WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
	  AND a.attname OPERATOR(pg_catalog.=) since_column
	  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of relation "%" does not exist', since_column, payout.relname(tbl)
			USING ERRCODE = 'undefined_column',
				  SCHEMA = payout.schema_name(tbl), TABLE = payout.relname(tbl);
	END IF;
	IF coltype NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
		RAISE EXCEPTION 'column "%" of relation "%" must be a timestamp or a date', since_column, payout.relname(tbl)
			USING ERRCODE = 'datatype_mismatch',
				  DETAIL = format('It is of type %s.', coltype),
				  SCHEMA = payout.schema_name(tbl), TABLE = payout.relname(tbl), COLUMN = since_column;
	END IF;
	dist := payout.distribution_column(tbl);
	IF dist IS NOT NULL THEN
		LOOP
			found_any := false;
			FOR shard IN SELECT * FROM payout.shard_batches(tbl, format(
					'SELECT %I::text AS candidate FROM %s WHERE %I::payout.status IN (''CREATED'', ''READY'', ''PENDING'')'
					' AND payout.can_transition(%I, ''EXPIRED'')%s'
					' AND %I < now() - %L::interval'
					' AND NOT (%I::text OPERATOR(pg_catalog.=) ANY ($2)) ORDER BY %I LIMIT $1',
					dist, tbl, att.status_column, att.status_column,
					CASE WHEN att.resolution_column IS NULL THEN ''
						 ELSE format(' AND NOT payout.requires_moderation(%I, %I)',
									 att.status_column, att.resolution_column) END
					|| payout.expire_manual_filter(tbl),
					since_column, older_than, dist, since_column),
				batch, tried)
			LOOP
				found_any := true;
				EXECUTE payout.expire_query(tbl, since_column, shard.only_column, shard.only_keys)
					INTO n USING older_than, batch;
				total := total OPERATOR(pg_catalog.+) n;
				tried := tried OPERATOR(pg_catalog.||) shard.keys;
			END LOOP;
			EXIT WHEN batch_size IS NOT NULL OR NOT found_any;
		END LOOP;
		RETURN total;
	END IF;

	-- One batch: the oldest expirable payouts that nobody holds a lock on
	-- (SKIP LOCKED: a processor's payout is never waited for), locked and
	-- expired in one statement, so that no payout is locked that is not
	-- expired.  A row that changed after the snapshot is checked again
	-- when it is locked; a status the graph does not let expire is left
	-- alone.  Through the trigger like any other change.
	query := payout.expire_query(tbl, since_column);

	-- Batches until one comes back short; with batch_size, one batch.  A
	-- batch that meets a row moved to another partition after its
	-- snapshot (40001: "tuple to be locked was already moved to another
	-- partition") runs again under READ COMMITTED, with a new snapshot and
	-- half as many rows, so that a table whose payouts keep moving between
	-- partitions (partitioned by created_at, say) still expires; it gives
	-- up after ten failures in a row.
	LOOP
		size := batch;
		failures := 0;
		LOOP
			BEGIN
				EXECUTE query INTO n USING older_than, size;
				EXIT;
			EXCEPTION WHEN serialization_failure THEN
				failures := failures OPERATOR(pg_catalog.+) 1;
				IF failures OPERATOR(pg_catalog.>=) 10
				   OR current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
					RAISE;
				END IF;
				size := greatest(size OPERATOR(pg_catalog./) 2, 1);
			END;
		END LOOP;
		total := total OPERATOR(pg_catalog.+) n;
		EXIT WHEN batch_size IS NOT NULL OR n OPERATOR(pg_catalog.<) size;
	END LOOP;
	RETURN total;
END
$$;
COMMENT ON FUNCTION payout.expire(regclass, interval, name, integer) IS 'moves CREATED, READY and PENDING payouts older than older_than (by since_column) that are not held and not locked to EXPIRED, oldest first, in batches (batch_size: one batch of at most that many), leaving manual payouts in PENDING to operators; returns how many';

------------------------------------------------------------------------------
-- Keys are identity: history records a change of a payout's primary key,
-- so zz_payout_history_update fires for one.  Made again on every table
-- attached with history, from the catalogs alone, keeping its arguments
-- and how it is enabled (ALWAYS on a subscriber, say).
------------------------------------------------------------------------------

-- When zz_payout_history_update fires: the status, the resolution or the
-- primary key changed.  Compared as their base types (a domain's own
-- operators may not exist), collatable ones under "C": a key that changes
-- only under the column's collation (case, say) changes its text in
-- history.  Built from the catalogs alone; the operators are pg_catalog's,
-- fixed when the trigger is created.
CREATE FUNCTION payout.history_changed(tbl regclass, status_column name,
									   resolution_column name)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed text;
	keys text;
BEGIN
	changed := format('OLD.%1$I::payout.status IS DISTINCT FROM NEW.%1$I::payout.status',
					  status_column);
	IF resolution_column IS NOT NULL THEN
		changed := changed || format(' OR OLD.%1$I::payout.resolution IS DISTINCT FROM NEW.%1$I::payout.resolution',
									 resolution_column);
	END IF;
	SELECT string_agg(format(' OR OLD.%1$I::%2$s%3$s IS DISTINCT FROM NEW.%1$I::%2$s%3$s',
							 a.attname, b.typ,
							 CASE WHEN ty.typcollation OPERATOR(pg_catalog.<>) 0
								  THEN ' COLLATE "C"' ELSE '' END),
					  '' ORDER BY k.ord)
	INTO keys
	FROM pg_index i
		 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
							AND a.attnum OPERATOR(pg_catalog.=) k.attnum
		 CROSS JOIN LATERAL (SELECT payout.base_type(tbl, a.attname) AS typ) b
		 JOIN pg_type ty ON ty.oid OPERATOR(pg_catalog.=) b.typ
	WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary;
	RETURN changed || coalesce(keys, '');
END
$$;
COMMENT ON FUNCTION payout.history_changed(regclass, name, name) IS 'internal: the WHEN condition of zz_payout_history_update: status, resolution or primary key changed';

DO $$
DECLARE
	t record;
	args text[];
BEGIN
	FOR t IN
		SELECT tr.tgrelid::pg_catalog.regclass AS tbl, tr.tgargs, tr.tgenabled
		FROM pg_catalog.pg_trigger tr
		WHERE tr.tgname OPERATOR(pg_catalog.=) 'zz_payout_history_update'
		  AND tr.tgparentid OPERATOR(pg_catalog.=) 0
		  AND tr.tgfoid OPERATOR(pg_catalog.=) 'payout.record_history()'::pg_catalog.regprocedure
		ORDER BY tr.tgrelid
	LOOP
		args := pg_catalog.string_to_array(pg_catalog.encode(t.tgargs, 'escape'), '\000');
		IF payout.distribution_column(t.tbl) IS NOT NULL THEN
			PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
		END IF;
		EXECUTE pg_catalog.format('DROP TRIGGER zz_payout_history_update ON %s', t.tbl);
		EXECUTE pg_catalog.format('CREATE TRIGGER zz_payout_history_update'
								  ' AFTER UPDATE ON %s'
								  ' FOR EACH ROW WHEN (%s)'
								  ' EXECUTE FUNCTION payout.record_history(%L, %L)',
								  t.tbl,
								  payout.history_changed(t.tbl, args[1], NULLIF(args[2], '')),
								  args[1], args[2]);
		IF t.tgenabled OPERATOR(pg_catalog.<>) 'O' THEN
			EXECUTE pg_catalog.format('ALTER TABLE %s %s TRIGGER zz_payout_history_update', t.tbl,
									  CASE t.tgenabled WHEN 'A' THEN 'ENABLE ALWAYS'
													   WHEN 'R' THEN 'ENABLE REPLICA'
													   ELSE 'DISABLE' END);
		END IF;
	END LOOP;
END
$$;

DROP FUNCTION payout.attach(regclass, name, name, boolean, boolean, boolean, name, boolean);
-- attach, detach, attachment, claim and expire run with the caller's
-- rights: CREATE TRIGGER, DROP TRIGGER and UPDATE check that the caller may
-- change the table, so they stay executable by PUBLIC (a table owner
-- attaches to their own table only; a processor claims from the tables it
-- may update).  History needs more: the owner of the table must hold
-- EXECUTE on payout.record_history().
CREATE FUNCTION payout.attach(tbl regclass,
							  status_column name DEFAULT 'status',
							  resolution_column name DEFAULT 'resolution',
							  notify boolean DEFAULT false,
							  history boolean DEFAULT true,
							  delete_unfinished boolean DEFAULT false,
							  autoprocess_column name DEFAULT 'autoprocess',
							  indexes boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	relkind "char";
	relname name;
	persistence "char";
	owner regrole;
	coltype regtype;
	wanted regtype;
	args text;
	changed text;
	parent_trigger oid;
	col name;
	key_types text;
	unsafe_triggers text;
BEGIN
	IF tbl IS NULL OR status_column IS NULL OR notify IS NULL OR history IS NULL
	   OR delete_unfinished IS NULL OR indexes IS NULL THEN
		RAISE EXCEPTION 'table, status column, notify, history, delete_unfinished and indexes must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;

	SELECT c.relkind, c.relname, c.relpersistence, c.relowner::regrole
	INTO relkind, relname, persistence, owner
	FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl;
	IF relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '"%" is not a table', relname
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = 'The payout trigger can only be attached to tables and partitioned tables.';
	END IF;

	-- The triggers of a Citus distributed table fire on its shards, on
	-- every worker: each must read the same graph, which Citus keeps on
	-- every node only as reference tables.
	IF payout.distribution_column(tbl) IS NOT NULL THEN
		EXECUTE 'SELECT pg_catalog.string_agg(c.t, '' and '' ORDER BY c.t)
			FROM (VALUES (''payout.transition''), (''payout.provider_code'')) AS c(t)
			WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
				WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.t::pg_catalog.regclass
				  AND p.partmethod OPERATOR(pg_catalog.=) ''n''
				  AND p.repmodel OPERATOR(pg_catalog.=) ''t'')'
			INTO col;
		IF col IS NOT NULL THEN
			RAISE EXCEPTION 'table "%" is distributed by Citus, but % is not a reference table', relname, col
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'Its triggers run on the workers, and each worker must read the graph and the provider codes the coordinator has.',
					  HINT = 'As a superuser, with SET citus.enable_unsafe_triggers = on: SELECT create_reference_table(''payout.transition''); SELECT create_reference_table(''payout.provider_code'');';
		END IF;
		-- Citus refuses triggers on distributed tables unless told that they
		-- are safe on a shard: payout's read nothing but the row and this
		-- node's own tables.  On for this call only.
		unsafe_triggers := current_setting('citus.enable_unsafe_triggers');
		PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
	END IF;

	SELECT t.tgparentid INTO parent_trigger FROM pg_trigger t
	WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
	  AND t.tgname OPERATOR(pg_catalog.=) 'zz_payout_enforce';
	IF FOUND THEN
		RAISE EXCEPTION 'table "%" already has the payout trigger', relname
			USING ERRCODE = 'duplicate_object',
				  HINT = CASE WHEN parent_trigger OPERATOR(pg_catalog.=) 0
							  THEN 'Call payout.detach() first to change its columns.'
							  ELSE 'It is inherited from the partitioned table the partition belongs to.' END;
	END IF;

	-- The same checks the trigger makes at its first row, made now so that
	-- a mistake shows at attach time.
	FOR col, wanted IN
		SELECT * FROM (VALUES (status_column, 'payout.status'::regtype),
							  (resolution_column, 'payout.resolution'::regtype),
							  (autoprocess_column, 'pg_catalog.bool'::regtype)) AS v
	LOOP
		CONTINUE WHEN col IS NULL;
		coltype := payout.base_type(tbl, col);
		IF coltype IS NULL THEN
			-- The default resolution and autoprocess names are optional:
			-- such a table has no resolution, or only automatic payouts.
			IF wanted OPERATOR(pg_catalog.=) 'payout.resolution'::regtype
			   AND col OPERATOR(pg_catalog.=) 'resolution' THEN
				resolution_column := NULL;
				CONTINUE;
			END IF;
			IF wanted OPERATOR(pg_catalog.=) 'pg_catalog.bool'::regtype
			   AND col OPERATOR(pg_catalog.=) 'autoprocess' THEN
				autoprocess_column := NULL;
				CONTINUE;
			END IF;
			RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, relname
				USING ERRCODE = 'undefined_column',
					  SCHEMA = payout.schema_name(tbl), TABLE = relname;
		END IF;
		IF coltype OPERATOR(pg_catalog.<>) wanted THEN
			RAISE EXCEPTION 'column "%" of relation "%" must be of type %', col, relname, wanted
				USING ERRCODE = 'datatype_mismatch',
					  DETAIL = format('It is of type %s.', coltype),
					  SCHEMA = payout.schema_name(tbl), TABLE = relname, COLUMN = col;
		END IF;
		-- A generated column is computed after BEFORE triggers: the trigger
		-- would judge a value that is not the one stored.
		IF EXISTS (SELECT FROM pg_attribute a
				   WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
					 AND a.attname OPERATOR(pg_catalog.=) col
					 AND a.attgenerated OPERATOR(pg_catalog.<>) '') THEN
			RAISE EXCEPTION 'column "%" of relation "%" is a generated column', col, relname
				USING ERRCODE = 'wrong_object_type',
					  DETAIL = 'PostgreSQL computes generated columns after BEFORE triggers, so the payout trigger cannot judge them.',
					  SCHEMA = payout.schema_name(tbl), TABLE = relname, COLUMN = col;
		END IF;
	END LOOP;

	IF history THEN
		IF persistence OPERATOR(pg_catalog.=) 't' THEN
			RAISE EXCEPTION 'payout history cannot be recorded for temporary table "%"', relname
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'History rows name their table for good; a temporary table does not last.',
					  HINT = 'Attach temporary tables with history => false.';
		END IF;
		IF NOT has_function_privilege(owner, 'payout.record_history()', 'EXECUTE') THEN
			RAISE EXCEPTION 'payout history is not allowed for table "%"', relname
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = format('Its owner "%s" may not execute function payout.record_history().', pg_get_userbyid(owner)),
					  HINT = 'A superuser grants EXECUTE on payout.record_history() to the roles whose tables keep history, or attach with history => false.';
		END IF;
		IF NOT EXISTS (SELECT FROM pg_index i
					   WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary) THEN
			RAISE EXCEPTION 'table "%" has no primary key', relname
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'History records each payout by its primary key.',
					  HINT = 'Add a primary key, or attach with history => false.';
		END IF;
		-- A deferrable key does not identify a row until commit.
		IF NOT EXISTS (SELECT FROM pg_index i
					   WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary
						 AND i.indimmediate) THEN
			RAISE EXCEPTION 'primary key of table "%" is deferrable', relname
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  DETAIL = 'History records each payout by its primary key, which must be checked at once.',
					  HINT = 'Make the primary key NOT DEFERRABLE, or attach with history => false.';
		END IF;
		-- History keys are a text no setting changes: payout.history_key()
		-- refuses the key types that have none, even given NULLs.
		SELECT string_agg(format('NULL::%s', a.atttypid::regtype), ', ' ORDER BY k.ord)
		INTO key_types
		FROM pg_index i
			 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
			 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
								AND a.attnum OPERATOR(pg_catalog.=) k.attnum
		WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary;
		EXECUTE format('SELECT payout.history_key(%s)', key_types);
	END IF;

	PERFORM payout.check_guard(tbl);

	args := format('%L, %L', status_column, coalesce(resolution_column, ''));
	IF notify THEN
		args := args || ', ''notify''';
	END IF;
	IF delete_unfinished THEN
		args := args || ', ''delete_unfinished''';
	END IF;
	IF autoprocess_column IS NOT NULL THEN
		args := args || format(', %L', 'autoprocess=' OPERATOR(pg_catalog.||) autoprocess_column);
	END IF;

	-- The name sorts after most trigger names, so that the trigger fires
	-- after the table's other BEFORE triggers and checks the row that will
	-- really be stored; a BEFORE ROW trigger sorting after it is refused.
	EXECUTE format('CREATE TRIGGER zz_payout_enforce'
				   ' BEFORE INSERT OR UPDATE OR DELETE ON %s'
				   ' FOR EACH ROW EXECUTE FUNCTION payout.enforce_transition(%s)',
				   tbl, args);

	IF history THEN
		args := format('%L, %L', status_column, coalesce(resolution_column, ''));
		changed := payout.history_changed(tbl, status_column, resolution_column);
		-- AFTER triggers, so that only rows really stored are recorded; the
		-- WHEN clause keeps updates of other columns from queuing events.
		EXECUTE format('CREATE TRIGGER zz_payout_history'
					   ' AFTER INSERT ON %s'
					   ' FOR EACH ROW EXECUTE FUNCTION payout.record_history(%s)',
					   tbl, args);
		EXECUTE format('CREATE TRIGGER zz_payout_history_update'
					   ' AFTER UPDATE ON %s'
					   ' FOR EACH ROW WHEN (%s)'
					   ' EXECUTE FUNCTION payout.record_history(%s)',
					   tbl, changed, args);
		EXECUTE format('CREATE TRIGGER zz_payout_history_delete'
					   ' AFTER DELETE ON %s'
					   ' FOR EACH ROW EXECUTE FUNCTION payout.record_history(%s)',
					   tbl, args);
	END IF;
	IF indexes THEN
		PERFORM payout.create_indexes(tbl);
	END IF;
	IF unsafe_triggers IS NOT NULL THEN
		PERFORM set_config('citus.enable_unsafe_triggers', unsafe_triggers, true);
	END IF;
END
$$;
COMMENT ON FUNCTION payout.attach(regclass, name, name, boolean, boolean, boolean, name, boolean) IS 'creates trigger zz_payout_enforce on the table (and, with history, zz_payout_history, zz_payout_history_update and zz_payout_history_delete); notify: NOTIFY payout_ready when an automatic payout becomes READY or is released, payout_manual when a manual one starts waiting; delete_unfinished: let payouts that are not final be deleted; autoprocess_column: the boolean column that marks automatic payouts; indexes: make the partial indexes of payout.index_plan()';
