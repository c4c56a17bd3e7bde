/* payout--1.1--1.2.sql: update payout from version 1.1 to 1.2 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION payout UPDATE TO '1.2'" to load this file. \quit

------------------------------------------------------------------------------
-- Attaching, checking, claiming, and the queues of moderators and operators.
------------------------------------------------------------------------------

-- The event trigger takes foreign tables too: made again at the end, with
-- CREATE FOREIGN TABLE and ALTER FOREIGN TABLE among its tags.
DROP EVENT TRIGGER payout_check_ddl;

-- Functions whose result or body changes.
DROP FUNCTION payout.attach(regclass, name, name, boolean, boolean, boolean, name, boolean);
DROP FUNCTION payout.check(regclass);
DROP FUNCTION payout.index_plan(regclass);
DROP FUNCTION payout.claim_query(regclass, boolean, name, text);
DROP FUNCTION payout.claim(regclass, integer, boolean);

-- Whether payout.history_key() prints values of type typ in a canonical
-- text, decided from the catalogs as src/key.c decides it
-- (PayoutKeyKindOf): the type, seen through any number of domains, is one
-- of the base types listed there or an enum.  attach() and the update
-- scripts ask this rather than call payout.history_key() with a NULL of
-- the type, which would run a domain's CHECK constraints, its owner's
-- code, with the caller's rights.
CREATE FUNCTION payout.key_type_supported(typ regtype)
RETURNS boolean
LANGUAGE sql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE t(oid, typtype, basetype) AS (
		SELECT ty.oid, ty.typtype, ty.typbasetype
		FROM pg_type ty WHERE ty.oid OPERATOR(pg_catalog.=) $1
		UNION ALL
		SELECT ty.oid, ty.typtype, ty.typbasetype
		FROM t JOIN pg_type ty ON ty.oid OPERATOR(pg_catalog.=) t.basetype
		WHERE t.typtype OPERATOR(pg_catalog.=) 'd'
	)
	SELECT coalesce(bool_or(t.typtype OPERATOR(pg_catalog.=) 'e'
						   OR t.oid OPERATOR(pg_catalog.=) ANY (
							'{pg_catalog.int2,pg_catalog.int4,pg_catalog.int8,pg_catalog.oid,'
							'pg_catalog.text,pg_catalog.varchar,pg_catalog.bpchar,pg_catalog.name,'
							'pg_catalog.uuid,pg_catalog.bool,pg_catalog.numeric,pg_catalog.date,'
							'pg_catalog.timestamp,pg_catalog.timestamptz}'::pg_catalog.regtype[])),
					false)
	FROM t WHERE t.typtype OPERATOR(pg_catalog.<>) 'd'
$$;
COMMENT ON FUNCTION payout.key_type_supported(regtype) IS 'internal: whether payout.history_key() gives values of the type a canonical text, read from the catalogs';

-- The WHEN clause of the history trigger zz_payout_history_update: the
-- status or the resolution changed, or a column of the primary key did
-- (history links a payout's old key to its new one).  Each column is cast
-- to its base type, seen through domains, whose own operators may not
-- exist, and compared with pg_catalog's operator of that type; collatable
-- keys under "C", so that a key that only a nondeterministic collation
-- calls equal to the old one counts as changed.  Built from the catalogs:
-- nothing of the table's types is evaluated.
CREATE FUNCTION payout.history_when(tbl regclass, status_column name, resolution_column name)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	changed text;
	k record;
BEGIN
	changed := format('OLD.%1$I::payout.status IS DISTINCT FROM NEW.%1$I::payout.status',
					  status_column);
	IF resolution_column IS NOT NULL THEN
		changed := changed OPERATOR(pg_catalog.||)
			format(' OR OLD.%1$I::payout.resolution IS DISTINCT FROM NEW.%1$I::payout.resolution',
				   resolution_column);
	END IF;
	FOR k IN
		SELECT a.attname, b.oid AS base, b.typcollation
		FROM pg_index i
			 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS c(attnum, ord)
			 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
								AND a.attnum OPERATOR(pg_catalog.=) c.attnum
			 JOIN pg_type b ON b.oid OPERATOR(pg_catalog.=) payout.base_type(tbl, a.attname)
		WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary
		ORDER BY c.ord
	LOOP
		-- format_type() without a typmod: bpchar stays bpchar, not char(1).
		changed := changed OPERATOR(pg_catalog.||)
			format(' OR OLD.%1$I::%2$s%3$s IS DISTINCT FROM NEW.%1$I::%2$s%3$s',
				   k.attname, format_type(k.base, NULL),
				   CASE WHEN k.typcollation OPERATOR(pg_catalog.<>) 0
						THEN ' COLLATE pg_catalog."C"' ELSE '' END);
	END LOOP;
	RETURN changed;
END
$$;
COMMENT ON FUNCTION payout.history_when(regclass, name, name) IS 'internal: the WHEN clause of zz_payout_history_update: the status, the resolution or a primary key column changed';

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
		-- have none are refused, as payout.history_key() refuses them.
		-- Asked of the catalogs: a NULL cast to the key's type would run a
		-- domain's CHECK, its owner's code, with the caller's rights.
		SELECT a.atttypid::regtype INTO coltype
		FROM pg_index i
			 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
			 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
								AND a.attnum OPERATOR(pg_catalog.=) k.attnum
		WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary
		  AND NOT payout.key_type_supported(a.atttypid)
		ORDER BY k.ord
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
		changed := payout.history_when(tbl, status_column, resolution_column);
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

-- The partial indexes that payout.claim(), payout.expire(), the moderation
-- queue and the operators' queue need to cost in proportion to what they
-- return rather than to the table, as attach(..., indexes => true) makes
-- them.  Each is (name, columns, predicate, what it serves), with the
-- columns as names (keys) and the predicate as PostgreSQL prints it back
-- from pg_index, in the form payout.predicate_shape() reduces it to
-- (shape), for payout.check() to recognise it.  Operators are qualified:
-- payout.check() gives these as statements to run.  An index the table
-- cannot have (no created_at, no resolution or autoprocess column) is
-- left out.
CREATE FUNCTION payout.index_plan(tbl regclass,
								  OUT name name, OUT columns text,
								  OUT predicate text, OUT serves text,
								  OUT keys name[], OUT shape text)
RETURNS SETOF record
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	att record := payout.attachment(tbl);
	base text := left(payout.relname(tbl), 40);
	pk text;
	pk_keys name[];
	since boolean := payout.base_type(tbl, 'created_at') IN
		('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype);
	s text := quote_ident(att.status_column);
BEGIN
	IF EXISTS (SELECT FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary) THEN
		pk := (payout.primary_key(tbl, NULL)).columns;
		pk_keys := ARRAY(
			SELECT a.attname
			FROM pg_index i
				 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
				 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
									AND a.attnum OPERATOR(pg_catalog.=) k.attnum
			WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary
			ORDER BY k.ord);
		RETURN QUERY SELECT (base || '_payout_ready')::name, pk,
			format('%I::payout.status OPERATOR(pg_catalog.=) ''READY''', att.status_column),
			'payout.claim()'::text, pk_keys,
			format('(%s = ''READY'')', s);
	END IF;
	IF since THEN
		RETURN QUERY SELECT (base || '_payout_expiring')::name, 'created_at'::text,
			format('%I::payout.status OPERATOR(pg_catalog.=) ANY (ARRAY[''CREATED'', ''READY'', ''PENDING'']::payout.status[])',
				   att.status_column),
			'payout.expire()'::text, ARRAY['created_at']::name[],
			format('(%s = ANY (ARRAY[''CREATED'', ''READY'', ''PENDING'']))', s);
	END IF;
	IF att.resolution_column IS NOT NULL THEN
		RETURN QUERY SELECT (base || '_payout_held')::name,
			format('%I', att.resolution_column) || CASE WHEN since THEN ', created_at' ELSE '' END,
			format('payout.requires_moderation(%I, %I)', att.status_column, att.resolution_column),
			'the moderation queue'::text,
			ARRAY[att.resolution_column] || CASE WHEN since THEN ARRAY['created_at']::name[] ELSE '{}' END,
			format('payout.requires_moderation(%s, %s)', s, quote_ident(att.resolution_column));
	END IF;
	IF att.autoprocess_column IS NOT NULL THEN
		RETURN QUERY SELECT (base || '_payout_manual')::name,
			CASE WHEN since THEN 'created_at' ELSE pk END,
			format('%I::payout.status OPERATOR(pg_catalog.=) ''READY'' AND %I IS NOT TRUE',
				   att.status_column, att.autoprocess_column),
			'the operators'' queue and payout.claim(..., manual => true)'::text,
			CASE WHEN since THEN ARRAY['created_at']::name[] ELSE pk_keys END,
			format('((%s = ''READY'') AND (%s IS NOT TRUE))', s, quote_ident(att.autoprocess_column));
	END IF;
END
$$;
COMMENT ON FUNCTION payout.index_plan(regclass) IS 'internal: the partial indexes attach(..., indexes => true) makes for the table, and the shape payout.check() recognises each by';

-- An index predicate as pg_get_expr() prints it, with the casts that a
-- domain over payout.status or payout.resolution adds taken out, so that
-- the predicates attach() makes compare equal on any table.
CREATE FUNCTION payout.predicate_shape(predicate text)
RETURNS text
LANGUAGE sql
IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT regexp_replace(regexp_replace($1,
		'\(("(?:[^"]|"")+"|[[:alpha:]_][[:alnum:]_$]*)\)::payout\.(?:status|resolution)', '\1', 'g'),
		'(''(?:[^'']|'''')*'')::payout\.(?:status|resolution)', '\1', 'g')
$$;
COMMENT ON FUNCTION payout.predicate_shape(text) IS 'internal: an index predicate as pg_get_expr() prints it, without the casts of domain columns';

-- The name of a valid partial index of rel whose predicate has this shape
-- and whose columns begin with keys; NULL if there is none.  From the
-- catalogs: the index's expressions are printed, not evaluated.
CREATE FUNCTION payout.serving_index(rel regclass, keys name[], shape text)
RETURNS name
LANGUAGE sql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT c.relname
	FROM pg_index i JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
	WHERE i.indrelid OPERATOR(pg_catalog.=) $1
	  AND i.indisvalid AND i.indisready AND i.indpred IS NOT NULL
	  AND i.indnkeyatts OPERATOR(pg_catalog.>=) pg_catalog.cardinality($2)
	  AND (SELECT bool_and(a.attnum OPERATOR(pg_catalog.=) i.indkey[k.n OPERATOR(pg_catalog.-) 1])
		   FROM unnest($2) WITH ORDINALITY AS k(col, n)
				LEFT JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) $1
										AND a.attname OPERATOR(pg_catalog.=) k.col
										AND NOT a.attisdropped) IS TRUE
	  AND payout.predicate_shape(pg_get_expr(i.indpred, i.indrelid)) OPERATOR(pg_catalog.=) $3
	ORDER BY c.relname
	LIMIT 1
$$;
COMMENT ON FUNCTION payout.serving_index(regclass, name[], text) IS 'internal: a valid partial index of the table with this predicate shape and these leading columns';

-- What an attached table lacks: its primary key, and for each queue the
-- partial index of payout.index_plan(), on the table, or on each of its
-- partitions that holds rows.  Read from the catalogs alone: neither the
-- table nor its indexes are planned, which would evaluate its owner's
-- functions in index expressions, predicates and constraints with the
-- caller's rights.  An index is recognised by its leading columns and its
-- predicate as PostgreSQL prints them: an index attach() made or one made
-- by the statement given here, not an equivalent written otherwise.
CREATE FUNCTION payout.check(tbl regclass,
							 OUT item text, OUT ok boolean, OUT detail text,
							 OUT statement text)
RETURNS SETOF record
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ix record;
	partitioned boolean;
	leaves regclass[];
	parent_index name;
	served name[];
	lacking regclass[];
BEGIN
	PERFORM payout.attachment(tbl);
	partitioned := EXISTS (SELECT FROM pg_class c
						   WHERE c.oid OPERATOR(pg_catalog.=) tbl
							 AND c.relkind OPERATOR(pg_catalog.=) 'p');
	IF partitioned THEN
		leaves := ARRAY(SELECT p.relid FROM pg_partition_tree(tbl) p
						JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid
						WHERE c.relkind OPERATOR(pg_catalog.=) 'r'
						ORDER BY p.level, c.relname);
	ELSE
		leaves := ARRAY[tbl];
	END IF;

	item := 'primary key';
	ok := EXISTS (SELECT FROM pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary);
	detail := CASE WHEN ok THEN 'payouts are named by their key in claims, errors and history'
				   ELSE 'claim() and history need one: ALTER TABLE ... ADD PRIMARY KEY' END;
	statement := NULL;
	RETURN NEXT;

	FOR ix IN SELECT * FROM payout.index_plan(tbl) LOOP
		item := ix.serves;
		statement := NULL;
		-- A valid partitioned index stands for one on every partition.
		parent_index := CASE WHEN partitioned THEN payout.serving_index(tbl, ix.keys, ix.shape) END;
		SELECT array_agg(m.name ORDER BY m.ord) FILTER (WHERE m.name IS NOT NULL),
			   array_agg(m.rel ORDER BY m.ord) FILTER (WHERE m.name IS NULL)
		INTO served, lacking
		FROM (SELECT l.rel, l.ord, payout.serving_index(l.rel, ix.keys, ix.shape) AS name
			  FROM unnest(leaves) WITH ORDINALITY AS l(rel, ord)) AS m;
		ok := parent_index IS NOT NULL OR lacking IS NULL;
		IF parent_index IS NOT NULL THEN
			detail := format('served by index %I', parent_index);
		ELSIF ok AND served IS NULL THEN
			detail := 'the table has no partition yet';
		ELSIF ok THEN
			detail := 'served by index ' OPERATOR(pg_catalog.||)
				array_to_string(ARRAY(SELECT quote_ident(n) FROM unnest(served) AS n), ', ');
		ELSIF NOT partitioned THEN
			detail := 'no partial index serves it, so it reads the whole table';
			statement := format('CREATE INDEX CONCURRENTLY %I ON %s (%s) WHERE %s',
								ix.name, tbl, ix.columns, ix.predicate);
		ELSE
			-- CREATE INDEX on a partitioned table cannot run CONCURRENTLY,
			-- and takes over the matching indexes its partitions have.
			detail := format('no partial index serves it on %s, which it reads whole;'
							 ' to build without blocking writes, first make each partition''s'
							 ' index with CREATE INDEX CONCURRENTLY and the same definition',
							 array_to_string(lacking, ', '));
			statement := format('CREATE INDEX %I ON %s (%s) WHERE %s',
								ix.name, tbl, ix.columns, ix.predicate);
		END IF;
		RETURN NEXT;
	END LOOP;
END
$$;
COMMENT ON FUNCTION payout.check(regclass) IS 'reports, from the catalogs, what an attached table lacks: its primary key, and a partial index for each of claim(), expire(), the moderation queue and the operators'' queue, with the statement that makes it';

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
	dist text := '';
	dists text := '''{}''::text[]';
BEGIN
	-- only_column = ANY (only_keys): the payouts of one Citus shard; their
	-- values of it come back too, for payout.claim_rows().
	IF only_column IS NOT NULL THEN
		in_shard := format(' AND %I OPERATOR(pg_catalog.=) ANY (%s)', only_column, only_keys);
		tonly := format(' AND t.%I OPERATOR(pg_catalog.=) ANY (%s)', only_column, only_keys);
		dist := format(', t.%I::text AS dist', only_column);
		dists := 'coalesce(array_agg(dist), ''{}'')';
	END IF;
	RETURN format(
		'WITH claimed AS ('
		'UPDATE %1$s t SET %2$I = ''INVOKING'''
		' FROM (SELECT %3$s FROM %1$s'
		'%4$s%8$s'
		' ORDER BY %3$s LIMIT $1 FOR UPDATE SKIP LOCKED) c'
		' WHERE (%5$s) = (%6$s)%9$s'
		' RETURNING %7$s AS key%10$s)'
		' SELECT coalesce(array_agg(key), ''{}''), %11$s FROM claimed',
		tbl, att.status_column, pk.columns, payout.claim_filter(tbl, manual),
		tpk.columns, cpk.columns, tpk.key_text, in_shard, tonly, dist, dists);
END
$$;
COMMENT ON FUNCTION payout.claim_query(regclass, boolean, name, text) IS 'internal: the statement payout.claim() runs for one batch of $1 payouts, giving their keys (with only_column, of those whose only_column is in the array only_keys, and their values of it)';

-- Claims, queues and decisions run statements on the table with the
-- caller's rights, and with them whatever its owner attached to it:
-- triggers, rules, defaults, policies, the functions of its indexes.  An
-- operator who claims from a table the application owns would run the
-- application's code as an operator, and could be made to act on payouts
-- the application may not touch.  So they act only on tables whose owner
-- the caller trusts with its rights: the caller itself, a superuser, or a
-- role a superuser approved as an owner of payout tables by granting it
-- EXECUTE on payout.record_history().  Every table of a partitioned
-- table's tree counts, since a partition may have an owner of its own.
CREATE FUNCTION payout.check_owner(tbl regclass)
RETURNS void
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
BEGIN
	SELECT c.relname, c.relowner::regrole AS owner INTO r
	FROM (SELECT tbl AS relid UNION SELECT p.relid FROM pg_partition_tree(tbl) p) AS t
		 JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
		 JOIN pg_roles o ON o.oid OPERATOR(pg_catalog.=) c.relowner
	WHERE o.rolname OPERATOR(pg_catalog.<>) current_user
	  AND NOT o.rolsuper
	  AND NOT has_function_privilege(o.oid, 'payout.record_history()', 'EXECUTE')
	ORDER BY c.oid OPERATOR(pg_catalog.<>) tbl, c.relname
	LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'payout will not act on table "%" for role "%": its owner "%" is not trusted',
			r.relname, current_user, pg_get_userbyid(r.owner)
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Claiming from the table, listing it or changing its payouts runs what its owner attached to it (triggers, rules, defaults, policies) with the rights of role "%s".', current_user),
				  HINT = 'Act only on the tables you were configured with. A superuser trusts a role as the owner of payout tables by granting it EXECUTE on payout.record_history().',
				  SCHEMA = payout.schema_name(tbl), TABLE = r.relname;
	END IF;
END
$$;
COMMENT ON FUNCTION payout.check_owner(regclass) IS 'internal: refuses a table whose owner the caller does not trust with its rights (not the caller, not a superuser, not approved with EXECUTE on payout.record_history())';

-- The table whose row type typ is, for the functions that take a table as
-- NULL::<table> and return its rows.
CREATE FUNCTION payout.row_table(typ regtype)
RETURNS regclass
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass;
BEGIN
	SELECT c.oid INTO rel
	FROM pg_type t JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) t.typrelid
	WHERE t.oid OPERATOR(pg_catalog.=) typ AND c.relkind IN ('r', 'p');
	IF rel IS NULL THEN
		RAISE EXCEPTION 'type % is not the row type of a table', coalesce(typ::text, 'NULL')
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Name the table by its row type, schema-qualified: NULL::public.payouts.';
	END IF;
	RETURN rel;
END
$$;
COMMENT ON FUNCTION payout.row_table(regtype) IS 'internal: the table whose row type the type is';

-- The values of a payout's key columns in the key's canonical text
-- (payout.history_key(), what claim() returns): a one-column key is its
-- value, a composite key a row literal whose fields are quoted as
-- record_out quotes them.
CREATE FUNCTION payout.key_fields(tbl regclass, key text)
RETURNS text[]
LANGUAGE plpgsql
STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
	fields text[] := '{}';
	field text := '';
	quoted boolean := false;
	c text;
	i integer := 2;
	len integer := length(key);
BEGIN
	SELECT i.indnkeyatts INTO n FROM pg_index i
	WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary;
	IF n IS NULL THEN
		PERFORM payout.primary_key(tbl, NULL);		-- says there is none
	END IF;
	IF n OPERATOR(pg_catalog.=) 1 THEN
		RETURN ARRAY[key];
	END IF;
	IF left(key, 1) OPERATOR(pg_catalog.<>) '(' OR right(key, 1) OPERATOR(pg_catalog.<>) ')' THEN
		i := len;					-- not a row literal
	END IF;
	WHILE i OPERATOR(pg_catalog.<) len LOOP
		c := substr(key, i, 1);
		IF quoted AND c IN ('"', '\') AND substr(key, i OPERATOR(pg_catalog.+) 1, 1) OPERATOR(pg_catalog.=) c THEN
			field := field OPERATOR(pg_catalog.||) c;		-- a doubled quote or backslash
			i := i OPERATOR(pg_catalog.+) 1;
		ELSIF c OPERATOR(pg_catalog.=) '"' THEN
			quoted := NOT quoted;
		ELSIF c OPERATOR(pg_catalog.=) ',' AND NOT quoted THEN
			fields := fields OPERATOR(pg_catalog.||) field;
			field := '';
		ELSE
			field := field OPERATOR(pg_catalog.||) c;
		END IF;
		i := i OPERATOR(pg_catalog.+) 1;
	END LOOP;
	fields := fields OPERATOR(pg_catalog.||) field;
	IF i OPERATOR(pg_catalog.<>) len OR quoted OR cardinality(fields) OPERATOR(pg_catalog.<>) n THEN
		RAISE EXCEPTION 'malformed payout key "%" of table "%"', key, payout.relname(tbl)
			USING ERRCODE = 'invalid_text_representation',
				  DETAIL = format('Its primary key has %s columns, so its key is a row literal of %s fields.', n, n),
				  HINT = 'Build the key with payout.history_key(), or take it from payout.claim().';
	END IF;
	RETURN fields;
END
$$;
COMMENT ON FUNCTION payout.key_fields(regclass, text) IS 'internal: the values of the key columns in a payout''s key text';

-- The condition that picks the payout whose key text is key_expr, with
-- fields_expr its fields (payout.key_fields()), from table tbl as t: each
-- key column equal to its field read as the column's base type, under the
-- column's collation, so that the primary key serves it; then the key
-- text itself, which tells apart keys that a collation calls equal.  The
-- fields are read with the core input functions of the base types; a
-- timestamptz is read in UTC, as the key prints it.
CREATE FUNCTION payout.key_condition(tbl regclass, key_expr text, fields_expr text)
RETURNS text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k record;
	cond text := '';
	value text;
BEGIN
	FOR k IN
		SELECT a.attname, c.ord, b.oid AS base, coll.collname, cn.nspname AS collschema
		FROM pg_index i
			 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS c(attnum, ord)
			 JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
								AND a.attnum OPERATOR(pg_catalog.=) c.attnum
			 JOIN pg_type b ON b.oid OPERATOR(pg_catalog.=) payout.base_type(tbl, a.attname)
			 LEFT JOIN pg_collation coll ON coll.oid OPERATOR(pg_catalog.=) a.attcollation
			 LEFT JOIN pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) coll.collnamespace
		WHERE i.indrelid OPERATOR(pg_catalog.=) tbl AND i.indisprimary
		ORDER BY c.ord
	LOOP
		value := format('(%s)[%s]', fields_expr, k.ord);
		IF k.base OPERATOR(pg_catalog.=) 'pg_catalog.timestamptz'::regtype THEN
			value := format('pg_catalog.timezone(''UTC'', %s::pg_catalog.timestamp)', value);
		ELSE
			value := format('%s::%s', value, format_type(k.base, NULL));
		END IF;
		IF k.collname IS NOT NULL THEN
			value := format('(%s COLLATE %I.%I)', value, k.collschema, k.collname);
		END IF;
		cond := cond OPERATOR(pg_catalog.||)
			format('t.%I::%s OPERATOR(pg_catalog.=) %s AND ', k.attname, format_type(k.base, NULL), value);
	END LOOP;
	RETURN cond OPERATOR(pg_catalog.||) (payout.primary_key(tbl, 't')).key_text
		OPERATOR(pg_catalog.||) ' OPERATOR(pg_catalog.=) ' OPERATOR(pg_catalog.||) key_expr;
END
$$;
COMMENT ON FUNCTION payout.key_condition(regclass, text, text) IS 'internal: the condition that picks one payout of the table, aliased t, by its key text';

-- One claim: the keys of the payouts claim() took, and on a Citus
-- distributed table their values of the distribution column.
CREATE FUNCTION payout.claim_batch(tbl regclass, batch integer, manual boolean,
								   OUT keys text[], OUT dists text[])
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
	att record;
	operators text := coalesce(current_setting('payout.operator_role', true), '');
	query text;
	dist name;
	shard record;
	got text[];
	got_dists text[];
	tried text[] := '{}';
	n integer;
	size integer;
	failures integer := 0;
BEGIN
	keys := '{}';
	dists := '{}';
	IF tbl IS NULL OR manual IS NULL THEN
		RAISE EXCEPTION 'table and manual must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF batch IS NULL OR batch OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'batch must be a positive number of payouts, not %', coalesce(batch::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	att := payout.attachment(tbl);
	PERFORM payout.check_owner(tbl);

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
		LOOP
			n := 0;
			FOR shard IN SELECT * FROM payout.shard_batches(tbl, format(
					'SELECT %I::text AS candidate FROM %s%s AND NOT (%I::text OPERATOR(pg_catalog.=) ANY ($2)) ORDER BY %s LIMIT $1',
					dist, tbl, payout.claim_filter(tbl, manual), dist, (payout.primary_key(tbl, NULL)).columns),
				batch OPERATOR(pg_catalog.-) pg_catalog.cardinality(keys), tried)
			LOOP
				n := n OPERATOR(pg_catalog.+) 1;
				EXECUTE payout.claim_query(tbl, manual, shard.only_column, shard.only_keys)
					INTO got, got_dists USING batch OPERATOR(pg_catalog.-) pg_catalog.cardinality(keys);
				keys := keys OPERATOR(pg_catalog.||) got;
				dists := dists OPERATOR(pg_catalog.||) got_dists;
				tried := tried OPERATOR(pg_catalog.||) shard.keys;
				EXIT WHEN pg_catalog.cardinality(keys) OPERATOR(pg_catalog.>=) batch;
			END LOOP;
			EXIT WHEN n OPERATOR(pg_catalog.=) 0 OR pg_catalog.cardinality(keys) OPERATOR(pg_catalog.>=) batch;
		END LOOP;
		RETURN;
	END IF;

	-- SKIP LOCKED: concurrent claims each take other rows, never the same.
	-- A row that changed after the subquery saw it is checked again
	-- against the subquery's conditions when it is locked.  A row that
	-- another transaction moved to another partition after this
	-- statement's snapshot cannot be locked at all (40001, "tuple to be
	-- locked was already moved to another partition"): under READ
	-- COMMITTED a new snapshot no longer sees it, so the claim runs again,
	-- as expire() does, with half as many rows (a table whose payouts keep
	-- moving still hands out work), giving up after ten failures in a
	-- row.  The keys are returned only once the claim has succeeded.
	query := payout.claim_query(tbl, manual);
	size := batch;
	LOOP
		BEGIN
			EXECUTE query INTO keys, dists USING size;
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
END
$$;
COMMENT ON FUNCTION payout.claim_batch(regclass, integer, boolean) IS 'internal: one claim of payout.claim() and payout.claim_rows(): the keys it took, and on Citus their distribution column values';

CREATE FUNCTION payout.claim(tbl regclass, batch integer,
							 manual boolean DEFAULT false)
RETURNS SETOF text
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT k FROM payout.claim_batch($1, $2, $3) AS b, unnest(b.keys) AS k
$$;
COMMENT ON FUNCTION payout.claim(regclass, integer, boolean) IS 'moves up to batch READY payouts that are not held to INVOKING and returns their keys: automatic ones, or with manual, manual ones for an operator; concurrent callers never get the same payout';

-- claim() for a program that wants the payouts, not only their keys:
-- called as SELECT * FROM payout.claim_rows(NULL::payouts, 10).  The rows
-- are read back by their keys after the claim, through the primary key.
CREATE FUNCTION payout.claim_rows(tbl anyelement, batch integer,
								  manual boolean DEFAULT false)
RETURNS SETOF anyelement
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
	rel regclass := payout.row_table(pg_typeof(tbl));
	claimed record;
	dist name;
BEGIN
	SELECT * INTO claimed FROM payout.claim_batch(rel, batch, manual);
	IF pg_catalog.cardinality(claimed.keys) OPERATOR(pg_catalog.=) 0 THEN
		RETURN;
	END IF;
	dist := payout.distribution_column(rel);
	IF dist IS NOT NULL THEN
		-- One query per shard, each given the keys of its own payouts.
		RETURN QUERY EXECUTE format(
			'SELECT t.* FROM %1$s t'
			' WHERE t.%2$I OPERATOR(pg_catalog.=) ANY (%3$L::%4$s[])'
			' AND %5$s OPERATOR(pg_catalog.=) ANY ($1)'
			' ORDER BY %6$s',
			rel, dist, claimed.dists, format_type(payout.base_type(rel, dist), NULL),
			(payout.primary_key(rel, 't')).key_text, (payout.primary_key(rel, 't')).columns)
			USING claimed.keys;
		RETURN;
	END IF;
	RETURN QUERY EXECUTE format(
		'SELECT t.* FROM unnest($1) WITH ORDINALITY AS k(key, ord),'
		' LATERAL (SELECT payout.key_fields($2, k.key) AS fields) AS f, %1$s t'
		' WHERE %2$s ORDER BY k.ord',
		rel, payout.key_condition(rel, 'k.key', 'f.fields'))
		USING claimed.keys, rel;
END
$$;
COMMENT ON FUNCTION payout.claim_rows(anyelement, integer, boolean) IS 'payout.claim() returning the claimed rows as they are after the claim; the table is given as NULL::<table>';

CREATE FUNCTION payout.moderation_queue(tbl anyelement, max_rows integer DEFAULT 100,
										held_with payout.resolution[] DEFAULT NULL)
RETURNS SETOF anyelement
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass := payout.row_table(pg_typeof(tbl));
	att record := payout.attachment(rel);
	since boolean := payout.base_type(rel, 'created_at') IN
		('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype);
BEGIN
	IF max_rows IS NULL OR max_rows OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_rows must be a positive number of payouts, not %', coalesce(max_rows::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM payout.check_owner(rel);
	IF att.resolution_column IS NULL THEN
		RETURN;					-- no resolution, no holds
	END IF;
	RETURN QUERY EXECUTE format(
		'SELECT t.* FROM %1$s t'
		' WHERE payout.requires_moderation(t.%2$I, t.%3$I)%4$s'
		' ORDER BY t.%3$I%5$s, %6$s'
		' LIMIT $1',
		rel, att.status_column, att.resolution_column,
		CASE WHEN held_with IS NOT NULL
			 THEN format(' AND t.%I::payout.resolution OPERATOR(pg_catalog.=) ANY ($2)', att.resolution_column)
			 ELSE '' END,
		CASE WHEN since THEN ', t.created_at' ELSE '' END,
		(payout.primary_key(rel, 't')).columns)
		USING max_rows, held_with;
END
$$;
COMMENT ON FUNCTION payout.moderation_queue(anyelement, integer, payout.resolution[]) IS 'the payouts held for moderation, by resolution and age, at most max_rows; held_with: only those with one of these resolutions';

CREATE FUNCTION payout.manual_queue(tbl anyelement, max_rows integer DEFAULT 100)
RETURNS SETOF anyelement
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass := payout.row_table(pg_typeof(tbl));
	att record := payout.attachment(rel);
	since boolean := payout.base_type(rel, 'created_at') IN
		('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype);
BEGIN
	IF max_rows IS NULL OR max_rows OPERATOR(pg_catalog.<) 1 THEN
		RAISE EXCEPTION 'max_rows must be a positive number of payouts, not %', coalesce(max_rows::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM payout.check_owner(rel);
	IF att.autoprocess_column IS NULL THEN
		RETURN;					-- every payout is automatic
	END IF;
	RETURN QUERY EXECUTE format(
		'SELECT t.* FROM %1$s t'
		' WHERE t.%2$I::payout.status OPERATOR(pg_catalog.=) ''READY'' AND t.%3$I IS NOT TRUE%4$s'
		' ORDER BY %5$s%6$s'
		' LIMIT $1',
		rel, att.status_column, att.autoprocess_column,
		CASE WHEN att.resolution_column IS NOT NULL
			 THEN format(' AND NOT payout.requires_moderation(t.%I, t.%I)',
						 att.status_column, att.resolution_column)
			 ELSE '' END,
		CASE WHEN since THEN 't.created_at, ' ELSE '' END,
		(payout.primary_key(rel, 't')).columns)
		USING max_rows;
END
$$;
COMMENT ON FUNCTION payout.manual_queue(anyelement, integer) IS 'the manual payouts waiting in READY for an operator, not held, oldest first, at most max_rows';

CREATE FUNCTION payout.release(tbl anyelement, key text)
RETURNS SETOF anyelement
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass := payout.row_table(pg_typeof(tbl));
	att record := payout.attachment(rel);
BEGIN
	IF key IS NULL THEN
		RAISE EXCEPTION 'key must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM payout.check_owner(rel);
	IF att.resolution_column IS NULL THEN
		RETURN;
	END IF;
	RETURN QUERY EXECUTE format(
		'UPDATE %1$s t SET %2$I = ''OK'''
		' WHERE %3$s AND payout.requires_moderation(t.%4$I, t.%2$I)'
		' RETURNING t.*',
		rel, att.resolution_column, payout.key_condition(rel, '$1', '$2'), att.status_column)
		USING key, payout.key_fields(rel, key);
END
$$;
COMMENT ON FUNCTION payout.release(anyelement, text) IS 'a moderator''s release of a held payout: its resolution becomes OK; returns the payout, or nothing if it is not held';

CREATE FUNCTION payout.end_held(tbl anyelement, key text,
								resolution payout.resolution DEFAULT 'GENERAL_FATAL_ERROR')
RETURNS SETOF anyelement
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass := payout.row_table(pg_typeof(tbl));
	att record := payout.attachment(rel);
BEGIN
	IF key IS NULL OR resolution IS NULL THEN
		RAISE EXCEPTION 'key and resolution must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NOT payout.is_final(resolution) THEN
		RAISE EXCEPTION 'resolution "%" does not end a payout', resolution
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('It is in the %s group.', payout.resolution_group(resolution)),
				  HINT = 'End a held payout with a resolution of the FATAL_ERROR group, or release it with payout.release().';
	END IF;
	PERFORM payout.check_owner(rel);
	IF att.resolution_column IS NULL THEN
		RETURN;
	END IF;
	RETURN QUERY EXECUTE format(
		'UPDATE %1$s t SET %2$I = $3, %4$I = payout.failure_status(t.%4$I::payout.status)'
		' WHERE %3$s AND payout.requires_moderation(t.%4$I, t.%2$I)'
		' RETURNING t.*',
		rel, att.resolution_column, payout.key_condition(rel, '$1', '$2'), att.status_column)
		USING key, payout.key_fields(rel, key), resolution;
END
$$;
COMMENT ON FUNCTION payout.end_held(anyelement, text, payout.resolution) IS 'a moderator''s end of a held payout: a FATAL_ERROR resolution and the failure status of its stage; returns the payout, or nothing if it is not held';

CREATE FUNCTION payout.advance(tbl anyelement, key text,
							   from_status payout.status, to_status payout.status,
							   resolution payout.resolution DEFAULT NULL)
RETURNS SETOF anyelement
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rel regclass := payout.row_table(pg_typeof(tbl));
	att record := payout.attachment(rel);
BEGIN
	IF key IS NULL OR from_status IS NULL OR to_status IS NULL THEN
		RAISE EXCEPTION 'key, from_status and to_status must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF resolution IS NOT NULL AND att.resolution_column IS NULL THEN
		RAISE EXCEPTION 'table "%" has no resolution column', payout.relname(rel)
			USING ERRCODE = 'undefined_column',
				  SCHEMA = payout.schema_name(rel), TABLE = payout.relname(rel);
	END IF;
	PERFORM payout.check_owner(rel);
	RETURN QUERY EXECUTE format(
		'UPDATE %1$s t SET %2$I = $3%4$s'
		' WHERE %3$s AND t.%2$I::payout.status OPERATOR(pg_catalog.=) $4'
		' RETURNING t.*',
		rel, att.status_column, payout.key_condition(rel, '$1', '$2'),
		CASE WHEN resolution IS NOT NULL THEN format(', %I = $5', att.resolution_column) ELSE '' END)
		USING key, payout.key_fields(rel, key), to_status, from_status, resolution;
END
$$;
COMMENT ON FUNCTION payout.advance(anyelement, text, payout.status, payout.status, payout.resolution) IS 'moves one payout from from_status to to_status (and, given one, to resolution), through the trigger; returns the payout, or nothing if it is not in from_status';

-- zz_payout_history_update fires also when a primary key column changes,
-- so that the history links a payout's old key to its new one.  It is made
-- again on every table attached with history, with its arguments, and
-- disabled or enabled on the table and each partition as it was; from the
-- catalogs alone: nothing of the tables' types, domains or operators is
-- evaluated.  A table whose key has a type without a canonical text
-- (attached by 1.0 and kept with its 1.0 triggers by the update to 1.1)
-- keeps its trigger, with a warning.
DO $$
DECLARE
	trg record;
	args text[];
	raw bytea;
	pos integer;
	rels regclass[];
	states "char"[];
	unsafe_triggers text;
BEGIN
	FOR trg IN
		SELECT t.tgrelid::regclass AS tbl, t.tgnargs, t.tgargs
		FROM pg_trigger t
		WHERE t.tgname OPERATOR(pg_catalog.=) 'zz_payout_history_update'
		  AND t.tgparentid OPERATOR(pg_catalog.=) 0
		ORDER BY t.tgrelid
	LOOP
		IF EXISTS (SELECT FROM pg_index i
						CROSS JOIN LATERAL unnest(i.indkey) AS k(attnum)
						JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid
										   AND a.attnum OPERATOR(pg_catalog.=) k.attnum
				   WHERE i.indrelid OPERATOR(pg_catalog.=) trg.tbl AND i.indisprimary
					 AND NOT payout.key_type_supported(a.atttypid)) THEN
			RAISE WARNING 'table % keeps its history trigger zz_payout_history_update', trg.tbl
				USING DETAIL = 'Its primary key has a type without a canonical text, so its key changes cannot be recorded.';
			CONTINUE;
		END IF;
		-- tgargs holds the arguments, each ended by a zero byte.
		args := '{}';
		raw := trg.tgargs;
		FOR i IN 1 .. trg.tgnargs LOOP
			pos := position('\x00'::bytea IN raw);
			args := args OPERATOR(pg_catalog.||)
				convert_from(substring(raw FROM 1 FOR pos OPERATOR(pg_catalog.-) 1),
							 current_setting('server_encoding'));
			raw := substring(raw FROM pos OPERATOR(pg_catalog.+) 1);
		END LOOP;
		SELECT array_agg(t.tgrelid::regclass ORDER BY t.tgrelid), array_agg(t.tgenabled ORDER BY t.tgrelid)
		INTO rels, states
		FROM pg_trigger t
		WHERE t.tgname OPERATOR(pg_catalog.=) 'zz_payout_history_update'
		  AND t.tgrelid IN (SELECT trg.tbl UNION SELECT p.relid FROM pg_partition_tree(trg.tbl) p);
		unsafe_triggers := NULL;
		IF payout.distribution_column(trg.tbl) IS NOT NULL THEN
			unsafe_triggers := current_setting('citus.enable_unsafe_triggers');
			PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
		END IF;
		EXECUTE format('DROP TRIGGER zz_payout_history_update ON %s', trg.tbl);
		EXECUTE format('CREATE TRIGGER zz_payout_history_update'
					   ' AFTER UPDATE ON %s'
					   ' FOR EACH ROW WHEN (%s)'
					   ' EXECUTE FUNCTION payout.record_history(%s)',
					   trg.tbl,
					   payout.history_when(trg.tbl, coalesce(args[1], 'status'), nullif(args[2], '')),
					   array_to_string(ARRAY(SELECT quote_literal(a) FROM unnest(args) AS a), ', '));
		FOR i IN 1 .. coalesce(cardinality(rels), 0) LOOP
			CONTINUE WHEN states[i] OPERATOR(pg_catalog.=) 'O';
			EXECUTE format('ALTER TABLE ONLY %s %s TRIGGER zz_payout_history_update', rels[i],
						   CASE states[i] WHEN 'D' THEN 'DISABLE' WHEN 'A' THEN 'ENABLE ALWAYS'
										  ELSE 'ENABLE REPLICA' END);
		END LOOP;
		IF unsafe_triggers IS NOT NULL THEN
			PERFORM set_config('citus.enable_unsafe_triggers', unsafe_triggers, true);
		END IF;
	END LOOP;
END
$$;

CREATE EVENT TRIGGER payout_check_ddl ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
				 'CREATE TRIGGER', 'ALTER TRIGGER')
	EXECUTE FUNCTION payout.check_ddl();

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
	-- a table whose owner the caller does not trust is refused (42501)
	PERFORM payout.check_owner(tbl);
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
-- The ledger: payout.history sealed in a chain of SHA-256 blocks, so that a
-- change to sealed history shows, whoever made it.  See doc/ledger.md.
------------------------------------------------------------------------------

-- One row per block, written by payout.seal() alone; its hash covers every
-- other column.  Dumped whole, so that a restored database verifies against
-- the digests taken before the dump.  No OIDs: a table is named by the
-- number payout.ledger_tables gives it, and by its name when sealed.
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
	table_numbers integer[] NOT NULL,
	table_schemas text[] NOT NULL,
	table_names text[] NOT NULL,
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
COMMENT ON COLUMN payout.ledger.sealed_at IS 'when the block was sealed, by the sealing server''s clock; never earlier than the block before';
COMMENT ON COLUMN payout.ledger.table_numbers IS 'the tables the block''s rows name, by the numbers payout.ledger_tables gives them, with table_schemas and table_names: their names when sealed (NULL: dropped before)';
COMMENT ON COLUMN payout.ledger.rows_hash IS 'SHA-256 over the ids and leaves (SHA-256 of the canonical bytes of every other column) of the rows, in id order';
COMMENT ON COLUMN payout.ledger.row_marks IS '18 bytes a row: table index, CRC-32C of the key, clock_time in seconds after min_clock_time, first 8 bytes of the leaf';
COMMENT ON COLUMN payout.ledger.hash IS 'SHA-256 of the block: what payout.digest() returns and digests keep';
SELECT pg_catalog.pg_extension_config_dump('payout.ledger', '');

-- The number the ledger gave each table whose rows it sealed.  tbl is a
-- regclass, as payout.history.tbl is, and a dump converts both alike (a
-- table by its name, a dropped one by its old OID as a number), so that a
-- history row finds its table's number in every copy of the database.
-- Dumped with the ledger.
CREATE TABLE payout.ledger_tables (
	number integer PRIMARY KEY,
	tbl regclass NOT NULL,
	schema_name text,
	table_name text
);
COMMENT ON TABLE payout.ledger_tables IS 'the number payout.seal() gave each table that history rows name, which blocks and leaves hold instead of its OID; with its name when last sealed';
SELECT pg_catalog.pg_extension_config_dump('payout.ledger_tables', '');

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

-- Everything there is to seal, one block per transaction by default, so
-- that sealing holds its locks on history's partitions no longer than one
-- batch takes: a DETACH or DROP of a partition waits that long at most,
-- and the writers queued behind it too.  A procedure (CALL it outside a
-- transaction block, as pg_cron does), and so without a SET clause: its
-- body names everything with its schema.
CREATE PROCEDURE payout.seal_backlog(batch_size bigint DEFAULT 65536)
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
		SELECT s.sealed_rows INTO n FROM payout.seal(batch_size) AS s;
		COMMIT;
		EXIT WHEN n OPERATOR(pg_catalog.<) batch_size;
	END LOOP;
END
$$;
COMMENT ON PROCEDURE payout.seal_backlog(bigint) IS 'seals everything payout.seal() can, batch_size rows per transaction';
REVOKE ALL ON PROCEDURE payout.seal_backlog(bigint) FROM PUBLIC;

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
							  key text DEFAULT NULL,
							  retention interval DEFAULT NULL)
RETURNS TABLE (block bigint, id bigint, finding text, detail text)
AS 'MODULE_PATHNAME', 'payout_verify'
LANGUAGE C STABLE;
COMMENT ON FUNCTION payout.verify(jsonb, regclass, text, interval) IS 'checks the sealed history (all of it, one table''s or one payout''s rows) against the ledger and the digests given (a JSON array of payout.digest() rows): one line per difference, located by block and id, then the verdict, intact or tampered; sealed rows recorded longer than retention before the newest digest may be gone';
