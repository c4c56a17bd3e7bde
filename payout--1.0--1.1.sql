/* payout--1.0--1.1.sql: update payout from version 1.0 to 1.1 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION payout UPDATE TO '1.1'" to load this file. \quit

------------------------------------------------------------------------------
-- Graph edits are always seen: invalidation as a row trigger (an apply
-- worker fires no statement triggers but TRUNCATE's), and the graph's
-- bookkeeping and invalidation firing whatever session_replication_role is.
------------------------------------------------------------------------------

DROP TRIGGER invalidate_cache ON payout.transition;
DROP TRIGGER invalidate_cache ON payout.provider_code;
COMMENT ON FUNCTION payout.invalidate_cache() IS 'trigger: invalidates every backend''s cached copy of the table it is attached to';

CREATE TRIGGER invalidate_cache
	AFTER INSERT OR UPDATE OR DELETE ON payout.transition
	FOR EACH ROW EXECUTE FUNCTION payout.invalidate_cache();
CREATE TRIGGER invalidate_cache_truncate
	AFTER TRUNCATE ON payout.transition
	FOR EACH STATEMENT EXECUTE FUNCTION payout.invalidate_cache();
ALTER TABLE payout.transition ENABLE ALWAYS TRIGGER invalidate_cache;
ALTER TABLE payout.transition ENABLE ALWAYS TRIGGER invalidate_cache_truncate;
ALTER TABLE payout.transition ENABLE ALWAYS TRIGGER track_removed_defaults;
ALTER TABLE payout.transition ENABLE ALWAYS TRIGGER track_removed_defaults_truncate;
-- An insert that payout.track_removed_defaults() makes no longer deletes
-- from payout.transition (on Citus, a distributed query from a placement).
DROP TRIGGER apply_removed_default ON payout.transition_removed;
DROP FUNCTION payout.apply_removed_default();
CREATE FUNCTION payout.apply_removed_default()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (
		SELECT FROM payout.default_transition d
		WHERE d.from_status IS NOT DISTINCT FROM NEW.from_status
		  AND d.to_status OPERATOR(pg_catalog.=) NEW.to_status)
	THEN
		RAISE EXCEPTION 'only default edges can be recorded as removed'
			USING ERRCODE = 'check_violation',
				  DETAIL = format('(%s, %s) is not in payout.default_transition.',
								  coalesce(NEW.from_status::text, 'NULL'), NEW.to_status),
				  HINT = 'To remove an edge, delete it from payout.transition.';
	END IF;
	-- A row payout.track_removed_defaults() inserts records a removal that
	-- already happened.  Leaving payout.transition alone then also keeps a
	-- Citus placement's trigger from querying the distributed table.
	IF pg_catalog.pg_trigger_depth() > 1 THEN
		RETURN NULL;
	END IF;
	DELETE FROM payout.transition t
	WHERE t.from_status IS NOT DISTINCT FROM NEW.from_status
	  AND t.to_status OPERATOR(pg_catalog.=) NEW.to_status;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION payout.apply_removed_default() IS 'trigger: deletes from payout.transition an edge recorded as removed (used when a dump is restored)';

REVOKE ALL ON FUNCTION payout.apply_removed_default() FROM PUBLIC;

CREATE TRIGGER apply_removed_default
	AFTER INSERT ON payout.transition_removed
	FOR EACH ROW EXECUTE FUNCTION payout.apply_removed_default();
ALTER TABLE payout.transition_removed ENABLE ALWAYS TRIGGER apply_removed_default;
-- The key allows a NULL from_status, so it cannot identify rows to a
-- subscriber: the whole row does, for a graph that is published.
ALTER TABLE payout.transition REPLICA IDENTITY FULL;

CREATE TRIGGER invalidate_cache
	AFTER INSERT OR UPDATE OR DELETE ON payout.provider_code
	FOR EACH ROW EXECUTE FUNCTION payout.invalidate_cache();
CREATE TRIGGER invalidate_cache_truncate
	AFTER TRUNCATE ON payout.provider_code
	FOR EACH STATEMENT EXECUTE FUNCTION payout.invalidate_cache();
ALTER TABLE payout.provider_code ENABLE ALWAYS TRIGGER invalidate_cache;
ALTER TABLE payout.provider_code ENABLE ALWAYS TRIGGER invalidate_cache_truncate;

-- is_final() rejects labels the extension does not know (added with
-- ALTER TYPE ... ADD VALUE), which payout.classify() could not return.
ALTER TABLE payout.provider_code ADD CONSTRAINT provider_code_known_resolution
	CHECK (payout.is_final(resolution) IS NOT NULL);

------------------------------------------------------------------------------
-- Unambiguous names for the classifiers that an application calls with a
-- driver's parameter.  A parameter the driver sends untyped ($1 of type
-- unknown, or a quoted literal that the driver wrote into the statement)
-- fits both payout.is_final(payout.status) and
-- payout.is_final(payout.resolution), and PostgreSQL refuses to choose
-- (42725); a quoted literal given to payout.resolution_group() is read as a
-- cast to the type of that name.  Each name below has one candidate, so the
-- parameter takes its type.  SQL wrappers without a SET clause, so that they
-- are inlined; IMMUTABLE for the reason the classifiers are.
------------------------------------------------------------------------------

CREATE FUNCTION payout.status_is_final(status payout.status)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN payout.is_final(status);
COMMENT ON FUNCTION payout.status_is_final(payout.status) IS 'payout.is_final(payout.status) under a name of its own, for untyped driver parameters';

CREATE FUNCTION payout.resolution_is_final(resolution payout.resolution)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN payout.is_final(resolution);
COMMENT ON FUNCTION payout.resolution_is_final(payout.resolution) IS 'payout.is_final(payout.resolution) under a name of its own, for untyped driver parameters';

CREATE FUNCTION payout.status_description(status payout.status)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN payout.description(status);
COMMENT ON FUNCTION payout.status_description(payout.status) IS 'payout.description(payout.status) under a name of its own, for untyped driver parameters';

CREATE FUNCTION payout.resolution_description(resolution payout.resolution)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN payout.description(resolution);
COMMENT ON FUNCTION payout.resolution_description(payout.resolution) IS 'payout.description(payout.resolution) under a name of its own, for untyped driver parameters';

CREATE FUNCTION payout.resolution_group_of(resolution payout.resolution)
RETURNS payout.resolution_group
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN payout.resolution_group(resolution);
COMMENT ON FUNCTION payout.resolution_group_of(payout.resolution) IS 'payout.resolution_group(payout.resolution) under a name that is not also a type''s, for driver parameters';

------------------------------------------------------------------------------
-- Canonical history keys, deletes, and history only where a DBA allows it.
------------------------------------------------------------------------------

COMMENT ON FUNCTION payout.enforce_transition() IS 'BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW trigger: rejects changes the payout rules do not allow; arguments: status column, resolution column, options notify and delete_unfinished';
COMMENT ON FUNCTION payout.record_history() IS 'AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW trigger: appends status and resolution changes to payout.history; arguments: status column, resolution column';

-- The canonical text of a payout key, as payout.history records it.
CREATE FUNCTION payout.history_key(VARIADIC "any")
RETURNS text
AS 'MODULE_PATHNAME', 'payout_history_key'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION payout.history_key(VARIADIC "any") IS 'the key text payout.history records for a payout whose primary key columns hold these values, whatever the session''s settings';

-- The trigger writes payout.history with its owner's rights, so it is not
-- for anyone to attach: a superuser grants EXECUTE to the roles whose
-- tables keep history, and the trigger checks at every statement that the
-- table's owner still holds it.  Owners of tables that keep history today
-- keep it.
REVOKE ALL ON FUNCTION payout.record_history() FROM PUBLIC;
DO $$
DECLARE
	owner regrole;
	shipped aclitem[];
BEGIN
	-- An extension script's grants land in pg_init_privs, as if the
	-- extension shipped them; pg_dump would then leave these out.  Keep the
	-- shipped privileges there, and the grants to this database's roles
	-- out, as after a fresh install and a GRANT.
	SELECT ip.initprivs INTO shipped FROM pg_init_privs ip
	WHERE ip.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
	  AND ip.objoid OPERATOR(pg_catalog.=) 'payout.record_history()'::regprocedure;
	FOR owner IN
		SELECT DISTINCT c.relowner::regrole
		FROM pg_trigger t JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
			 JOIN pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner
		WHERE t.tgname OPERATOR(pg_catalog.=) 'zz_payout_history'
		  AND t.tgparentid OPERATOR(pg_catalog.=) 0 AND NOT r.rolsuper
		ORDER BY 1
	LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION payout.record_history() TO %s', owner);
		RAISE NOTICE 'granted EXECUTE on payout.record_history() to %, whose tables keep history', owner;
	END LOOP;
	UPDATE pg_catalog.pg_init_privs ip SET initprivs = shipped
	WHERE ip.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
	  AND ip.objoid OPERATOR(pg_catalog.=) 'payout.record_history()'::regprocedure;
END
$$;

-- History keys compare byte by byte: cheaper than the database's collation,
-- and the same for equality.  This rebuilds the key indexes of every
-- partition of payout.history, those a DBA added too.
ALTER TABLE payout.history ALTER COLUMN key SET DATA TYPE text COLLATE "C";
COMMENT ON COLUMN payout.history.key IS 'the row''s primary key in its canonical text (payout.history_key()), or a row literal for a composite key';

-- 16 pages a range: a query of the last minutes reads about a thousand
-- history rows, not ten thousand, for a summary of a few hundred bytes per
-- million rows.
DROP INDEX payout.history_catchall_clock_time_idx;
CREATE INDEX history_catchall_clock_time_idx ON payout.history_catchall
	USING brin (clock_time) WITH (pages_per_range = 16);

DROP FUNCTION payout.timeline(regclass, text);
DROP FUNCTION payout.transition_counts(regclass, timestamptz, timestamptz);
-- On a Citus cluster, a distributed table's history is kept on the nodes
-- that hold its shards, naming the distributed table; these two helpers
-- let the readers below gather it.
CREATE FUNCTION payout.distribution_column(tbl regclass)
RETURNS name
LANGUAGE plpgsql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result name;
BEGIN
	IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
		RETURN NULL;
	END IF;
	EXECUTE 'SELECT pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)
		FROM pg_catalog.pg_dist_partition p
		WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1
		  AND p.partmethod OPERATOR(pg_catalog.<>) ''n'''
		INTO result USING tbl;
	RETURN result;
END
$$;
COMMENT ON FUNCTION payout.distribution_column(regclass) IS 'internal: the column Citus distributes the table by, NULL when Citus does not distribute it';

CREATE FUNCTION payout.on_all_nodes(query text)
RETURNS SETOF json
LANGUAGE plpgsql
VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	answer record;
BEGIN
	-- Each node answers in a connection of its own, as the caller, and
	-- sees what is committed there; one node that fails fails the call.
	IF NOT pg_catalog.has_table_privilege('payout.history', 'SELECT') THEN
		RAISE EXCEPTION 'permission denied for table history'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	FOR answer IN EXECUTE 'SELECT nodeid, success, result FROM pg_catalog.run_command_on_all_nodes($1)'
		USING query
	LOOP
		IF NOT answer.success THEN
			RAISE EXCEPTION 'could not read payout.history on Citus node %', answer.nodeid
				USING ERRCODE = 'external_routine_exception', DETAIL = answer.result,
					  HINT = 'Citus does not pass on grants on the extension''s tables: grant SELECT on payout.history on every node, with run_command_on_all_nodes().';
		END IF;
		RETURN NEXT answer.result::json;
	END LOOP;
END
$$;
COMMENT ON FUNCTION payout.on_all_nodes(text) IS 'internal: runs a query of payout.history returning one json value on every Citus node, as the caller';

-- On a distributed table, one query per node, whose rows are ordered by
-- clock_time: ids come from each node's own sequence.
CREATE FUNCTION payout.timeline(tbl regclass, key text)
RETURNS SETOF payout.history
LANGUAGE plpgsql
STABLE STRICT PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF payout.distribution_column(tbl) IS NOT NULL THEN
		RETURN QUERY
		SELECT h.*
		FROM payout.on_all_nodes(format(
				-- tbl travels as this node's qualified name: the caller's
				-- search_path may not find the name a node prints.
				'SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_set(pg_catalog.to_jsonb(h),'
				' ''{tbl}'', pg_catalog.to_jsonb(%1$L::text))), ''[]'')::pg_catalog.json'
				' FROM payout.history h'
				' WHERE h.tbl OPERATOR(pg_catalog.=) %1$L::pg_catalog.regclass'
				' AND h.key OPERATOR(pg_catalog.=) %2$L',
				tbl, key)) AS n(rows),
			 json_populate_recordset(NULL::payout.history, n.rows) AS h
		ORDER BY h.clock_time, h.id;
		RETURN;
	END IF;
	RETURN QUERY
	SELECT h.* FROM payout.history h
	WHERE h.tbl OPERATOR(pg_catalog.=) timeline.tbl
	  AND h.key OPERATOR(pg_catalog.=) timeline.key
	ORDER BY h.id;
END
$$;
COMMENT ON FUNCTION payout.timeline(regclass, text) IS 'one payout''s recorded changes, oldest first (on a Citus distributed table, from every node)';

-- In PL/pgSQL, with EXECUTE: each call is planned for its own range, so a
-- narrow one reads the BRIN index on clock_time and not the whole history
-- (a SQL function's generic plan cannot tell a minute from ten years).
CREATE FUNCTION payout.transition_counts(tbl regclass,
										 since timestamptz DEFAULT '-infinity',
										 until timestamptz DEFAULT 'infinity')
RETURNS TABLE (from_status payout.status, to_status payout.status,
			   payouts bigint, changes bigint)
LANGUAGE plpgsql
STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF payout.distribution_column(tbl) IS NOT NULL THEN
		-- A payout's changes can be on two nodes after its shard moved: the
		-- nodes count by payout, and the payouts are counted here.
		RETURN QUERY
		SELECT c.old_status, c.new_status, count(DISTINCT c.key), sum(c.n)::bigint
		FROM payout.on_all_nodes(format(
				'SELECT coalesce(pg_catalog.json_agg(c), ''[]''::pg_catalog.json) FROM ('
				'SELECT h.old_status, h.new_status, h.key, pg_catalog.count(*) AS n'
				' FROM payout.history h'
				' WHERE h.tbl OPERATOR(pg_catalog.=) %L::pg_catalog.regclass'
				' AND h.clock_time OPERATOR(pg_catalog.>=) %L::pg_catalog.timestamptz'
				' AND h.clock_time OPERATOR(pg_catalog.<) %L::pg_catalog.timestamptz'
				' AND h.old_status IS DISTINCT FROM h.new_status'
				' GROUP BY h.old_status, h.new_status, h.key) c',
				tbl, since, until)) AS n(rows),
			 json_to_recordset(n.rows) AS c(old_status payout.status, new_status payout.status,
											key text, n bigint)
		GROUP BY c.old_status, c.new_status
		ORDER BY c.old_status NULLS FIRST, c.new_status;
		RETURN;
	END IF;
	RETURN QUERY EXECUTE
		'SELECT h.old_status, h.new_status, count(DISTINCT h.key), count(*)
		 FROM payout.history h
		 WHERE h.tbl OPERATOR(pg_catalog.=) $1
		   AND h.clock_time OPERATOR(pg_catalog.>=) $2
		   AND h.clock_time OPERATOR(pg_catalog.<) $3
		   AND h.old_status IS DISTINCT FROM h.new_status
		 GROUP BY h.old_status, h.new_status
		 ORDER BY h.old_status NULLS FIRST, h.new_status'
		USING tbl, since, until;
END
$$;
COMMENT ON FUNCTION payout.transition_counts(regclass, timestamptz, timestamptz) IS 'how many payouts took each edge (from NULL: created) in [since, until), from payout.history (on a Citus distributed table, from every node)';

------------------------------------------------------------------------------
-- attach() and its helpers.
------------------------------------------------------------------------------

DROP FUNCTION payout.attach(regclass, name, name, boolean, boolean);
DROP FUNCTION payout.attachment(regclass);
DROP FUNCTION payout.primary_key(regclass, text);
DROP FUNCTION payout.detach(regclass);
DROP FUNCTION payout.claim(regclass, integer);
DROP FUNCTION payout.expire(regclass, interval, name);

-- Checks that the payout trigger of an attached table (and of each of its
-- partitions) can guard it: no inheritance children, which the trigger of
-- a plain table does not cover, and no BEFORE ROW trigger that fires after
-- it and could change the status it judged.  Called by attach() and by
-- the event trigger payout.check_ddl().
CREATE FUNCTION payout.check_guard(tbl regclass)
RETURNS void
LANGUAGE plpgsql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	SELECT c.relname AS parent, i.inhrelid::regclass AS child INTO r
	FROM pg_inherits i JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhparent
	WHERE i.inhparent OPERATOR(pg_catalog.=) tbl AND c.relkind OPERATOR(pg_catalog.=) 'r'
	LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'table "%" has inheritance children', r.parent
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = format('The payout trigger does not guard the rows of %s, which statements on "%s" reach.', r.child, r.parent),
				  HINT = 'Partition the table instead, or attach each table of the hierarchy without inheritance.',
				  SCHEMA = payout.schema_name(tbl), TABLE = r.parent;
	END IF;

	SELECT c.relname, t.tgname, e.tgname AS ours INTO r
	FROM (SELECT tbl AS relid, 0 AS level	-- a plain table is no partition tree
		  UNION SELECT t.relid, t.level FROM pg_partition_tree(tbl) t) p
		 JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid
		 JOIN pg_trigger e ON e.tgrelid OPERATOR(pg_catalog.=) p.relid
		 JOIN pg_trigger t ON t.tgrelid OPERATOR(pg_catalog.=) p.relid
	WHERE e.tgname OPERATOR(pg_catalog.=) 'zz_payout_enforce'
	  AND t.tgname OPERATOR(pg_catalog.>) e.tgname
	  AND t.tgenabled OPERATOR(pg_catalog.<>) 'D'
	  -- ROW (1) and BEFORE (2), for INSERT (4) or UPDATE (16)
	  AND (t.tgtype::integer OPERATOR(pg_catalog.&) 3) OPERATOR(pg_catalog.=) 3
	  AND (t.tgtype::integer OPERATOR(pg_catalog.&) 20) OPERATOR(pg_catalog.<>) 0
	ORDER BY p.level, c.relname, t.tgname
	LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'trigger "%" on table "%" fires after the payout trigger "%"', r.tgname, r.relname, r.ours
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'A BEFORE ROW trigger that fires after the payout check could change the status it judged.',
				  HINT = format('Rename the trigger so that its name sorts before "%s", or disable it.', r.ours),
				  TABLE = r.relname;
	END IF;
END
$$;
COMMENT ON FUNCTION payout.check_guard(regclass) IS 'internal: checks that the payout trigger of the table can guard every row of it';

-- The same checks, made at every DDL command that could break them on an
-- attached table: a trigger created, renamed or enabled, a table created
-- with INHERITS, changed by ALTER TABLE ... INHERIT, or attached as a
-- partition.  The trigger itself checks the order once per statement too.
CREATE FUNCTION payout.check_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tbl regclass;
BEGIN
	FOR tbl IN
		WITH touched AS (
			SELECT CASE WHEN c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::regclass
						THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid OPERATOR(pg_catalog.=) c.objid)
						ELSE c.objid END AS relid
			FROM pg_event_trigger_ddl_commands() c
			WHERE c.classid IN ('pg_catalog.pg_class'::regclass, 'pg_catalog.pg_trigger'::regclass)
		), near AS (
			SELECT t.relid FROM touched t
			UNION SELECT i.inhparent FROM touched t JOIN pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) t.relid
			UNION SELECT i.inhrelid FROM touched t JOIN pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) t.relid
		)
		SELECT DISTINCT n.relid::regclass FROM near n
		WHERE EXISTS (SELECT FROM pg_trigger e
					  WHERE e.tgrelid OPERATOR(pg_catalog.=) n.relid
						AND e.tgname OPERATOR(pg_catalog.=) 'zz_payout_enforce')
	LOOP
		PERFORM payout.check_guard(tbl);
	END LOOP;
END
$$;
COMMENT ON FUNCTION payout.check_ddl() IS 'event trigger: refuses DDL that would let rows of an attached table escape the payout trigger';

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
		-- History keys are a text no setting changes: the key types that
		-- have none are refused, as payout.history_key() refuses them
		-- (src/key.c: the type, seen through domains, is one of these base
		-- types or an enum).  Asked of the catalogs: a NULL cast to the key's
		-- type would run a domain's CHECK, its owner's code, with the rights
		-- of whoever attaches, the superuser who runs this update included.
		WITH RECURSIVE t(attnum, ord, oid, typtype, basetype) AS (
			SELECT a.attnum, k.ord, ty.oid, ty.typtype, ty.typbasetype
			FROM pg_index i
				 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
				 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
									AND a.attnum OPERATOR(pg_catalog.=) k.attnum
				 JOIN pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid
			WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary
			UNION ALL
			SELECT t.attnum, t.ord, ty.oid, ty.typtype, ty.typbasetype
			FROM t JOIN pg_type ty ON ty.oid OPERATOR(pg_catalog.=) t.basetype
			WHERE t.typtype OPERATOR(pg_catalog.=) 'd'
		)
		SELECT a.atttypid::regtype INTO coltype
		FROM t JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) tbl
								  AND a.attnum OPERATOR(pg_catalog.=) t.attnum
		WHERE t.typtype OPERATOR(pg_catalog.<>) 'd'
		  AND t.typtype OPERATOR(pg_catalog.<>) 'e'
		  AND NOT t.oid OPERATOR(pg_catalog.=) ANY (
			'{pg_catalog.int2,pg_catalog.int4,pg_catalog.int8,pg_catalog.oid,'
			'pg_catalog.text,pg_catalog.varchar,pg_catalog.bpchar,pg_catalog.name,'
			'pg_catalog.uuid,pg_catalog.bool,pg_catalog.numeric,pg_catalog.date,'
			'pg_catalog.timestamp,pg_catalog.timestamptz}'::pg_catalog.regtype[])
		ORDER BY t.ord
		LIMIT 1;
		IF FOUND THEN
			RAISE EXCEPTION 'type % cannot be part of a payout key in history', coltype
				USING ERRCODE = 'datatype_mismatch',
					  DETAIL = 'Its text depends on the session''s settings.',
					  HINT = 'Use a key of an integer, numeric, text, uuid, date or timestamp type, or attach with history => false.';
		END IF;
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
		-- The casts see through domains, whose own operators may not exist.
		changed := format('OLD.%1$I::payout.status IS DISTINCT FROM NEW.%1$I::payout.status',
						  status_column);
		IF resolution_column IS NOT NULL THEN
			changed := changed || format(' OR OLD.%1$I::payout.resolution IS DISTINCT FROM NEW.%1$I::payout.resolution',
										 resolution_column);
		END IF;
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

CREATE FUNCTION payout.detach(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	trigger_name name;
	parent_trigger oid;
	unsafe_triggers text;
BEGIN
	IF tbl IS NULL THEN
		RAISE EXCEPTION 'table must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT t.tgparentid INTO parent_trigger FROM pg_trigger t
	WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
	  AND t.tgname OPERATOR(pg_catalog.=) 'zz_payout_enforce';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table "%" has no payout trigger', payout.relname(tbl)
			USING ERRCODE = 'undefined_object';
	END IF;
	IF parent_trigger OPERATOR(pg_catalog.<>) 0 THEN
		RAISE EXCEPTION 'the payout trigger of partition "%" is inherited', payout.relname(tbl)
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Detach it from the partitioned table.';
	END IF;
	-- As in attach(): Citus lets triggers of distributed tables be
	-- dropped only when told they are safe.
	IF payout.distribution_column(tbl) IS NOT NULL THEN
		unsafe_triggers := current_setting('citus.enable_unsafe_triggers');
		PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
	END IF;
	EXECUTE format('DROP TRIGGER zz_payout_enforce ON %s', tbl);
	FOR trigger_name IN
		SELECT t.tgname FROM pg_trigger t
		WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
		  AND t.tgname IN ('zz_payout_history', 'zz_payout_history_update',
						   'zz_payout_history_delete')
		  AND t.tgparentid OPERATOR(pg_catalog.=) 0
	LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, tbl);
	END LOOP;
	IF unsafe_triggers IS NOT NULL THEN
		PERFORM set_config('citus.enable_unsafe_triggers', unsafe_triggers, true);
	END IF;
END
$$;
COMMENT ON FUNCTION payout.detach(regclass) IS 'drops the triggers that payout.attach created; the table''s history stays';

CREATE FUNCTION payout.attachment(tbl regclass,
								  OUT status_column name,
								  OUT resolution_column name,
								  OUT notify boolean,
								  OUT history boolean,
								  OUT delete_unfinished boolean,
								  OUT autoprocess_column name)
RETURNS record
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	nargs integer;
	raw bytea;
	args text[] := '{}';
	pos integer;
BEGIN
	SELECT t.tgnargs, t.tgargs INTO nargs, raw FROM pg_trigger t
	WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
	  AND t.tgname OPERATOR(pg_catalog.=) 'zz_payout_enforce';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'table "%" has no payout trigger', payout.relname(tbl)
			USING ERRCODE = 'undefined_object',
				  HINT = 'Attach it with payout.attach().';
	END IF;

	-- tgargs holds the arguments, each ended by a zero byte.
	FOR i IN 1 .. nargs LOOP
		pos := position('\x00'::bytea IN raw);
		args := args || convert_from(substring(raw FROM 1 FOR pos OPERATOR(pg_catalog.-) 1),
									 current_setting('server_encoding'));
		raw := substring(raw FROM pos OPERATOR(pg_catalog.+) 1);
	END LOOP;

	status_column := coalesce(args[1], 'status');
	IF nargs OPERATOR(pg_catalog.>=) 2 THEN
		resolution_column := nullif(args[2], '');
	ELSIF EXISTS (SELECT FROM pg_attribute a
				  WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
					AND a.attname OPERATOR(pg_catalog.=) 'resolution'
					AND NOT a.attisdropped) THEN
		resolution_column := 'resolution';
	END IF;
	notify := coalesce('notify' OPERATOR(pg_catalog.=) ANY (args[3:]), false);
	delete_unfinished := coalesce('delete_unfinished' OPERATOR(pg_catalog.=) ANY (args[3:]), false);
	SELECT substring(a FROM 13) INTO autoprocess_column
	FROM unnest(args[3:]) AS a WHERE a LIKE 'autoprocess=%';
	history := EXISTS (SELECT FROM pg_trigger t
					   WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl
						 AND t.tgname OPERATOR(pg_catalog.=) 'zz_payout_history');

	-- A column renamed, dropped or retyped since attach: say so here, for
	-- claim() and expire() too, rather than fail in their queries.
	PERFORM payout.check_column(tbl, status_column, 'payout.status'::regtype, 'status');
	IF resolution_column IS NOT NULL THEN
		PERFORM payout.check_column(tbl, resolution_column, 'payout.resolution'::regtype, 'resolution');
	END IF;
	IF autoprocess_column IS NOT NULL THEN
		PERFORM payout.check_column(tbl, autoprocess_column, 'pg_catalog.bool'::regtype, 'autoprocess');
	END IF;
END
$$;
COMMENT ON FUNCTION payout.attachment(regclass) IS 'how the payout trigger is attached to the table: its status, resolution and autoprocess columns and options';

-- The primary key of table tbl as a column list, each column qualified by
-- alias when one is given, and the expression of its key text, the
-- canonical text payout.history records.
CREATE FUNCTION payout.primary_key(tbl regclass, alias text,
								   OUT columns text, OUT key_text text)
RETURNS record
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
BEGIN
	SELECT string_agg(CASE WHEN alias IS NULL THEN ''
						   ELSE quote_ident(alias) OPERATOR(pg_catalog.||) '.' END
					  OPERATOR(pg_catalog.||) quote_ident(a.attname),
					  ', ' ORDER BY k.ord),
		   count(*)
	INTO columns, n
	FROM pg_index i
		 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
							AND a.attnum OPERATOR(pg_catalog.=) k.attnum
	WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary;

	IF n OPERATOR(pg_catalog.=) 0 THEN
		RAISE EXCEPTION 'table "%" has no primary key', payout.relname(tbl)
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Payouts are identified by their primary key.';
	END IF;
	key_text := 'payout.history_key(' OPERATOR(pg_catalog.||) columns OPERATOR(pg_catalog.||) ')';
END
$$;
COMMENT ON FUNCTION payout.primary_key(regclass, text) IS 'the table''s primary key columns (qualified by alias) and the expression of its key text, as payout.history records it';

-- The statements payout.claim() and payout.expire() run, built in one
-- place, so that payout.check() asks the planner about the very queries
-- the functions run.  claim_query returns the keys of at most $1 payouts
-- as a text array; expire_query the number of payouts older than $1 it
-- expired, at most $2.
CREATE FUNCTION payout.claim_filter(tbl regclass, manual boolean)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att record := payout.attachment(tbl);
	filter text := '';
BEGIN
	IF att.resolution_column IS NOT NULL THEN
		filter := format(' AND NOT payout.requires_moderation(%I, %I)',
						 att.status_column, att.resolution_column);
	END IF;
	-- Processors take automatic payouts; operators, manual ones (autoprocess
	-- false or NULL), which the trigger lets only them move on.
	IF att.autoprocess_column IS NOT NULL THEN
		filter := filter || format(CASE WHEN manual THEN ' AND %I IS NOT TRUE'
										ELSE ' AND %I IS TRUE' END,
								   att.autoprocess_column);
	ELSIF manual THEN
		filter := filter || ' AND false';
	END IF;
	RETURN format(' WHERE %I::payout.status = ''READY''', att.status_column) || filter;
END
$$;
COMMENT ON FUNCTION payout.claim_filter(regclass, boolean) IS 'internal: the WHERE clause of the payouts payout.claim() may take';

CREATE FUNCTION payout.claim_query(tbl regclass, manual boolean DEFAULT false,
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
	in_shard text := '';
	tonly text := '';
BEGIN
	-- only_column = ANY (only_keys): the payouts of one Citus shard.
	IF only_column IS NOT NULL THEN
		in_shard := format(' AND %I OPERATOR(pg_catalog.=) ANY (%s)', only_column, only_keys);
		tonly := format(' AND t.%I OPERATOR(pg_catalog.=) ANY (%s)', only_column, only_keys);
	END IF;
	RETURN format(
		'WITH claimed AS ('
		'UPDATE %1$s t SET %2$I = ''INVOKING'''
		' FROM (SELECT %3$s FROM %1$s'
		'%4$s%8$s'
		' ORDER BY %3$s LIMIT $1 FOR UPDATE SKIP LOCKED) c'
		' WHERE (%5$s) = (%6$s)%9$s'
		' RETURNING %7$s AS key)'
		' SELECT coalesce(array_agg(key), ''{}'') FROM claimed',
		tbl, att.status_column, pk.columns, payout.claim_filter(tbl, manual),
		tpk.columns, cpk.columns, tpk.key_text, in_shard, tonly);
END
$$;
COMMENT ON FUNCTION payout.claim_query(regclass, boolean, name, text) IS 'internal: the statement payout.claim() runs for one batch of $1 payouts (with only_column, of those whose only_column is in the array only_keys)';

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

-- The partial indexes that payout.claim(), payout.expire(), the moderation
-- queue and the operators' queue need to cost in proportion to what they
-- return rather than to the table, as attach(..., indexes => true) makes
-- them.  Each is (name, columns, predicate, what it serves); an index the
-- table cannot have (no created_at, no resolution or autoprocess column)
-- is left out.
CREATE FUNCTION payout.index_plan(tbl regclass,
								  OUT name name, OUT columns text,
								  OUT predicate text, OUT serves text)
RETURNS SETOF record
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att record := payout.attachment(tbl);
	base text := left(payout.relname(tbl), 40);
	pk text;
	since boolean := payout.base_type(tbl, 'created_at') IN
		('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype);
BEGIN
	IF EXISTS (SELECT FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary) THEN
		pk := (payout.primary_key(tbl, NULL)).columns;
		RETURN QUERY SELECT (base || '_payout_ready')::name, pk,
			format('%I::payout.status = ''READY''', att.status_column),
			'payout.claim()'::text;
	END IF;
	IF since THEN
		RETURN QUERY SELECT (base || '_payout_expiring')::name, 'created_at'::text,
			format('%I::payout.status IN (''CREATED'', ''READY'', ''PENDING'')', att.status_column),
			'payout.expire()'::text;
	END IF;
	IF att.resolution_column IS NOT NULL THEN
		RETURN QUERY SELECT (base || '_payout_held')::name,
			format('%I', att.resolution_column) || CASE WHEN since THEN ', created_at' ELSE '' END,
			format('payout.requires_moderation(%I, %I)', att.status_column, att.resolution_column),
			'the moderation queue'::text;
	END IF;
	IF att.autoprocess_column IS NOT NULL THEN
		RETURN QUERY SELECT (base || '_payout_manual')::name,
			CASE WHEN since THEN 'created_at' ELSE pk END,
			format('%I::payout.status = ''READY'' AND %I IS NOT TRUE', att.status_column, att.autoprocess_column),
			'the operators'' queue and payout.claim(..., manual => true)'::text;
	END IF;
END
$$;
COMMENT ON FUNCTION payout.index_plan(regclass) IS 'internal: the partial indexes attach(..., indexes => true) makes for the table';

CREATE FUNCTION payout.create_indexes(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ix record;
	nspname name := payout.schema_name(tbl);
BEGIN
	-- An index is made in its table's schema, which takes CREATE there.
	IF NOT has_schema_privilege(nspname, 'CREATE') THEN
		RAISE WARNING 'payout.attach() made no index on table "%"', payout.relname(tbl)
			USING DETAIL = format('Making an index needs the CREATE privilege on schema %s.', quote_ident(nspname)),
				  HINT = 'SELECT * FROM payout.check(...) lists the indexes the table lacks, and how to make them.';
		RETURN;
	END IF;
	FOR ix IN SELECT * FROM payout.index_plan(tbl) LOOP
		CONTINUE WHEN EXISTS (
			SELECT FROM pg_index i JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
			WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND c.relname OPERATOR(pg_catalog.=) ix.name);
		EXECUTE format('CREATE INDEX %I ON %s (%s) WHERE %s', ix.name, tbl, ix.columns, ix.predicate);
	END LOOP;
END
$$;
COMMENT ON FUNCTION payout.create_indexes(regclass) IS 'internal: makes the partial indexes of payout.index_plan() that the table lacks';

-- What an attached table lacks.  Each queue is asked of the planner, with
-- the join settings claim() and expire() run with, and sequential scans
-- off: served means it reads a partial index of the table (or of each
-- partition), not the whole table or its primary key.
CREATE FUNCTION payout.check(tbl regclass,
							 OUT item text, OUT ok boolean, OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
	att record := payout.attachment(tbl);
	ix record;
	plan text;
	used text[];
	partial boolean;
	rels oid[];
BEGIN
	rels := ARRAY[tbl::oid] || ARRAY(SELECT p.relid::oid FROM pg_partition_tree(tbl) p);

	item := 'primary key';
	ok := EXISTS (SELECT FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary);
	detail := CASE WHEN ok THEN 'payouts are named by their key in claims, errors and history'
				   ELSE 'claim() and history need one: ALTER TABLE ... ADD PRIMARY KEY' END;
	RETURN NEXT;

	FOR ix IN SELECT * FROM payout.index_plan(tbl) LOOP
		item := ix.serves;
		BEGIN
			IF ix.name LIKE '%\_payout\_ready' THEN
				EXECUTE 'EXPLAIN (FORMAT JSON) ' || payout.claim_query(tbl, false) INTO plan USING 100;
			ELSIF ix.name LIKE '%\_payout\_expiring' THEN
				EXECUTE 'EXPLAIN (FORMAT JSON) ' || payout.expire_query(tbl, 'created_at') INTO plan
					USING '1 day'::interval, 100;
			ELSE
				EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM %s WHERE %s ORDER BY %s LIMIT 20',
							   tbl, ix.predicate, ix.columns) INTO plan;
			END IF;
		END;
		SELECT array_agg(DISTINCT n) INTO used
		FROM jsonb_path_query(plan::jsonb, 'strict $.**."Index Name"') AS j(v),
			 LATERAL (SELECT j.v #>> '{}' AS n) AS x;
		SELECT coalesce(bool_and(i.indpred IS NOT NULL), false) INTO partial
		FROM pg_class c JOIN pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) c.oid
		WHERE c.relname OPERATOR(pg_catalog.=) ANY (used)
		  AND i.indrelid OPERATOR(pg_catalog.=) ANY (rels)
		  AND NOT i.indisprimary;
		ok := partial AND NOT plan LIKE '%"Seq Scan"%';
		detail := CASE WHEN ok THEN 'served by index ' || array_to_string(used, ', ')
					   ELSE format('no partial index serves it, so it reads the whole table: CREATE INDEX CONCURRENTLY %I ON %s (%s) WHERE %s',
								   ix.name, tbl, ix.columns, ix.predicate) END;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION payout.check(regclass) IS 'reports what an attached table lacks: its primary key, and a partial index for each of claim(), expire(), the moderation queue and the operators'' queue';

-- The statement joins at most batch payouts back to the table by their
-- key: a nested loop over the primary key, whatever the table's size, so
-- the planner is not offered a hash or merge join that would read the whole
-- table.
-- On a Citus distributed table, PostgreSQL's row locks are taken only by
-- a statement routed to one shard.  claim() and expire() then read the
-- candidates first, without locks, in their order, and run their own
-- statement once per shard, restricted to that shard's candidates: the
-- statement locks, checks again and changes rows as on one server, in the
-- caller's (distributed) transaction.
CREATE FUNCTION payout.shard_batches(tbl regclass, candidates text, n integer,
									 tried text[])
RETURNS TABLE (only_column name, only_keys text, keys text[])
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	coltype text;
BEGIN
	only_column := payout.distribution_column(tbl);
	SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO coltype
	FROM pg_attribute a
	WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) only_column;
	-- candidates: a query of the distribution column's values, as text,
	-- in the order the payouts are taken, at most $1 of them, none in $2.
	FOR keys IN EXECUTE format(
		'SELECT pg_catalog.array_agg(c.v ORDER BY c.o)'
		' FROM (SELECT v, pg_catalog.row_number() OVER () AS o FROM (%s) AS q(v)) AS c'
		' GROUP BY pg_catalog.get_shard_id_for_distribution_column(%L, c.v::%s)'
		' ORDER BY pg_catalog.min(c.o)',
		candidates, tbl, coltype)
		USING n, tried
	LOOP
		only_keys := format('%L::%s[]', keys, coltype);
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION payout.shard_batches(regclass, text, integer, text[]) IS 'internal: the candidates of a query on a Citus distributed table, one row per shard';

CREATE FUNCTION payout.claim(tbl regclass, batch integer,
							 manual boolean DEFAULT false)
RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
	att record;
	operators text := coalesce(current_setting('payout.operator_role', true), '');
	query text;
	keys text[];
	dist name;
	shard record;
	got text[];
	tried text[] := '{}';
	n integer;
BEGIN
	IF tbl IS NULL OR manual IS NULL THEN
		RAISE EXCEPTION 'table and manual must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF batch IS NULL OR batch OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'batch must be a positive number of payouts, not %', coalesce(batch::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	att := payout.attachment(tbl);

	-- Manual payouts are the operators'.
	IF manual THEN
		IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user)
		   AND NOT (operators OPERATOR(pg_catalog.<>) ''
					AND EXISTS (SELECT FROM pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) operators)
					AND pg_has_role(current_user, operators, 'USAGE')) THEN
			RAISE EXCEPTION 'only operators claim manual payouts'
				USING ERRCODE = 'insufficient_privilege',
					  HINT = CASE WHEN operators OPERATOR(pg_catalog.=) ''
								  THEN 'Only superusers process manual payouts while payout.operator_role is empty.'
								  ELSE format('Operators are the members of role "%s" (setting payout.operator_role).', operators) END;
		END IF;
		IF att.autoprocess_column IS NULL THEN
			RETURN;				-- every payout of the table is automatic
		END IF;
	END IF;

	dist := payout.distribution_column(tbl);
	IF dist IS NOT NULL THEN
		keys := '{}';
		LOOP
			n := 0;
			FOR shard IN SELECT * FROM payout.shard_batches(tbl, format(
					'SELECT %I::text AS candidate FROM %s%s AND NOT (%I::text OPERATOR(pg_catalog.=) ANY ($2)) ORDER BY %s LIMIT $1',
					dist, tbl, payout.claim_filter(tbl, manual), dist, (payout.primary_key(tbl, NULL)).columns),
				batch OPERATOR(pg_catalog.-) pg_catalog.cardinality(keys), tried)
			LOOP
				n := n OPERATOR(pg_catalog.+) 1;
				EXECUTE payout.claim_query(tbl, manual, shard.only_column, shard.only_keys)
					INTO got USING batch OPERATOR(pg_catalog.-) pg_catalog.cardinality(keys);
				keys := keys OPERATOR(pg_catalog.||) got;
				tried := tried OPERATOR(pg_catalog.||) shard.keys;
				EXIT WHEN pg_catalog.cardinality(keys) OPERATOR(pg_catalog.>=) batch;
			END LOOP;
			EXIT WHEN n OPERATOR(pg_catalog.=) 0 OR pg_catalog.cardinality(keys) OPERATOR(pg_catalog.>=) batch;
		END LOOP;
		RETURN QUERY SELECT unnest(keys);
		RETURN;
	END IF;

	-- SKIP LOCKED: concurrent claims each take other rows, never the same.
	-- A row that changed after the subquery saw it is checked again
	-- against the subquery's conditions when it is locked.  A row that
	-- another transaction moved to another partition after this
	-- statement's snapshot cannot be locked at all (40001, "tuple to be
	-- locked was already moved to another partition"): under READ
	-- COMMITTED a new snapshot no longer sees it, so the claim runs again,
	-- a few times at most.  The keys are returned only once the claim has
	-- succeeded.
	query := payout.claim_query(tbl, manual);
	FOR attempt IN 1 .. 3 LOOP
		BEGIN
			EXECUTE query INTO keys USING batch;
			EXIT;
		EXCEPTION WHEN serialization_failure THEN
			IF attempt OPERATOR(pg_catalog.=) 3
			   OR current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
				RAISE;
			END IF;
		END;
	END LOOP;
	RETURN QUERY SELECT unnest(keys);
END
$$;
COMMENT ON FUNCTION payout.claim(regclass, integer, boolean) IS 'moves up to batch READY payouts that are not held to INVOKING and returns their keys: automatic ones, or with manual, manual ones for an operator; concurrent callers never get the same payout';

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
									 att.status_column, att.resolution_column) END,
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
	-- snapshot (40001) runs again under READ COMMITTED, a few times at most.
	LOOP
		FOR attempt IN 1 .. 3 LOOP
			BEGIN
				EXECUTE query INTO n USING older_than, batch;
				EXIT;
			EXCEPTION WHEN serialization_failure THEN
				IF attempt OPERATOR(pg_catalog.=) 3
				   OR current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
					RAISE;
				END IF;
			END;
		END LOOP;
		total := total OPERATOR(pg_catalog.+) n;
		EXIT WHEN batch_size IS NOT NULL OR n OPERATOR(pg_catalog.<) batch;
	END LOOP;
	RETURN total;
END
$$;
COMMENT ON FUNCTION payout.expire(regclass, interval, name, integer) IS 'moves CREATED, READY and PENDING payouts older than older_than (by since_column) that are not held and not locked to EXPIRED, oldest first, in batches (batch_size: one batch of at most that many); returns how many';

-- The backlog in batches, each in a transaction of its own, so that no
-- payout stays locked longer than one batch takes.  A procedure (CALL it
-- outside a transaction block, as pg_cron does), and so without a SET
-- clause: its body names everything with its schema.
CREATE PROCEDURE payout.expire_backlog(tbl regclass, older_than interval,
									   since_column name DEFAULT 'created_at',
									   batch_size integer DEFAULT 500)
LANGUAGE plpgsql
AS $$
DECLARE
	n bigint;
BEGIN
	IF batch_size IS NULL THEN
		RAISE EXCEPTION 'batch_size must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	LOOP
		n := payout.expire(tbl, older_than, since_column, batch_size);
		COMMIT;
		EXIT WHEN n OPERATOR(pg_catalog.<) batch_size;
	END LOOP;
END
$$;
COMMENT ON PROCEDURE payout.expire_backlog(regclass, interval, name, integer) IS 'expires the whole backlog with payout.expire(), one batch per transaction';

-- Attach every attached table again, so that its triggers take deletes
-- and record them.  A table the 1.1 rules refuse (inheritance children, a
-- BEFORE trigger that fires after the check, a key without a canonical
-- text) keeps its 1.0 triggers, with a warning.
DO $$
DECLARE
	tbl regclass;
	att record;
BEGIN
	FOR tbl IN
		SELECT t.tgrelid::regclass FROM pg_trigger t
		WHERE t.tgname OPERATOR(pg_catalog.=) 'zz_payout_enforce'
		  AND t.tgparentid OPERATOR(pg_catalog.=) 0
		ORDER BY t.tgrelid
	LOOP
		BEGIN
			att := payout.attachment(tbl);
			PERFORM payout.detach(tbl);
			-- No index builds here: the update stays quick and takes no
			-- long lock; payout.check() reports what a table lacks.
			PERFORM payout.attach(tbl, att.status_column, att.resolution_column,
								  att.notify, att.history, indexes => false);
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'table % keeps the payout triggers of version 1.0: %', tbl, SQLERRM;
		END;
	END LOOP;
END
$$;

CREATE EVENT TRIGGER payout_check_ddl ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER')
	EXECUTE FUNCTION payout.check_ddl();

