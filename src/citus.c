/*-------------------------------------------------------------------------
 *
 * citus.c
 *	  What payout needs to know of Citus, read from Citus's own catalog.
 *
 * On a Citus cluster a distributed table's rows live in shards, tables
 * named "<table>_<shardid>" on the workers, and the triggers payout.attach()
 * made fire there.  Two things differ from one server:
 *
 * - the configuration tables (payout.transition, payout.provider_code) are
 *   best made reference tables: one placement of them on every node, kept
 *   equal by Citus, with the table under its own name an empty shell.  A
 *   node reads its own placement;
 * - a trigger that fires on a shard names, in history and notifications,
 *   the distributed table, which has the same name on every node and keeps
 *   it when a shard moves, rather than the shard.
 *
 * Citus's catalog (pg_catalog.pg_dist_shard) is read by name: payout does
 * not link with Citus, and without Citus both answers are "not
 * distributed" at the cost of one failed name lookup.
 *
 * src/citus.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_namespace.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "citus.h"
#include "payout.h"

/*
 * PayoutCitusPlacement
 *		The OID of this node's placement of relid if Citus made relid a
 *		reference table, InvalidOid if Citus does not distribute it.
 *
 * pg_dist_shard lists a table's shards by logicalrelid; a reference table
 * has one, placed on every node as "<table>_<shardid>" in the table's
 * schema.  A table split into several shards cannot be read here, and a
 * node without the placement (a coordinator Citus does not know as a
 * node, a worker reference tables were not copied to yet) has no rows to
 * read: both are errors rather than an empty graph, which would reject
 * every change.
 */
Oid
PayoutCitusPlacement(Oid relid)
{
	const char *relname = get_rel_name(relid);
	Oid			nspid = get_rel_namespace(relid);
	Oid			catalog;
	Relation	rel;
	TupleDesc	tupdesc;
	AttrNumber	att_relid;
	AttrNumber	att_shardid;
	SysScanDesc scan;
	HeapTuple	tuple;
	int64		shardid = 0;
	int			nshards = 0;
	char	   *name;
	Oid			placement;

	catalog = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog) || relname == NULL)
		return InvalidOid;		/* no Citus in this database */

	rel = table_open(catalog, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	att_relid = attnameAttNum(rel, "logicalrelid", false);
	att_shardid = attnameAttNum(rel, "shardid", false);
	if (att_relid == InvalidAttrNumber || att_shardid == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pg_catalog.pg_dist_shard has no columns logicalrelid and shardid"),
				 errdetail("This version of Citus is not one payout knows.")));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, att_relid, tupdesc, &isnull);

		if (isnull || DatumGetObjectId(value) != relid)
			continue;
		value = heap_getattr(tuple, att_shardid, tupdesc, &isnull);
		if (!isnull)
			shardid = DatumGetInt64(value);
		nshards++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (nshards == 0)
		return InvalidOid;
	if (nshards > 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s.%s\" is split into %d Citus shards",
						PAYOUT_SCHEMA, relname, nshards),
				 errdetail("Every node must read the whole table."),
				 errhint("Make it a reference table: SELECT undistribute_table('%s.%s'); SELECT create_reference_table('%s.%s');",
						 PAYOUT_SCHEMA, relname, PAYOUT_SCHEMA, relname)));

	name = psprintf("%s_" INT64_FORMAT, relname, shardid);
	placement = get_relname_relid(name, nspid);
	if (!OidIsValid(placement))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Citus reference table \"%s.%s\" has no placement on this node",
						PAYOUT_SCHEMA, relname),
				 errdetail("Its rows are in \"%s.%s\" on the nodes that hold it.",
						   PAYOUT_SCHEMA, name),
				 errhint("Copy reference tables to every node with SELECT replicate_reference_tables(); on a coordinator, add it as a node first with citus_set_coordinator_host().")));
	pfree(name);
	return placement;
}

/*
 * PayoutCitusLogicalTable
 *		The distributed table relid is a shard of, or relid itself.
 *
 * A shard is proved one, not guessed from its name: its name must end in
 * "_<shardid>", pg_dist_shard must list that shard id for a table in the
 * same schema, and the shard's name must be that table's name with the
 * suffix (Citus shortens names that would be too long, and those are then
 * taken on the suffix and the schema alone).  Looked up through
 * pg_dist_shard's index on shardid, once per statement.
 */
Oid
PayoutCitusLogicalTable(Oid relid)
{
	Oid			catalog;
	Oid			index;
	char	   *relname;
	char	   *suffix;
	char	   *end;
	int64		shardid;
	Relation	rel;
	AttrNumber	att_relid;
	AttrNumber	att_shardid;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			result = relid;

	catalog = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog))
		return relid;			/* no Citus in this database */

	relname = get_rel_name(relid);
	if (relname == NULL)
		return relid;
	suffix = strrchr(relname, '_');
	if (suffix == NULL || suffix[1] < '0' || suffix[1] > '9')
		return relid;
	errno = 0;
	shardid = strtoi64(suffix + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return relid;

	rel = table_open(catalog, AccessShareLock);
	att_relid = attnameAttNum(rel, "logicalrelid", false);
	att_shardid = attnameAttNum(rel, "shardid", false);
	if (att_relid == InvalidAttrNumber || att_shardid == InvalidAttrNumber)
	{
		table_close(rel, AccessShareLock);
		return relid;
	}
	index = get_relname_relid("pg_dist_shard_shardid_index", PG_CATALOG_NAMESPACE);
	ScanKeyInit(&key, att_shardid,
				BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(shardid));
	scan = systable_beginscan(rel, index, OidIsValid(index), NULL, 1, &key);
	if (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, att_relid,
										 RelationGetDescr(rel), &isnull);
		Oid			logical = isnull ? InvalidOid : DatumGetObjectId(value);
		char	   *name = OidIsValid(logical) ? get_rel_name(logical) : NULL;

		if (name != NULL &&
			get_rel_namespace(logical) == get_rel_namespace(relid))
		{
			size_t		len = strlen(name);

			if (len + strlen(suffix) >= NAMEDATALEN - 1 ||
				(strncmp(relname, name, len) == 0 && relname + len == suffix))
				result = logical;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}
