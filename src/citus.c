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
 * A shard is proved one from Citus's metadata, never from the shape of its
 * name: pg_dist_shard lists it, Citus's own pg_catalog.shard_name() gives
 * its name, pg_dist_placement places it on this node (pg_dist_local_group),
 * and it has its table's owner.  Otherwise a role that may keep history
 * could create "<table>_<shardid>" beside another role's distributed table
 * and have its changes recorded and announced under that table.
 *
 * Citus's catalogs are read by name and shard_name() is called by OID:
 * payout does not link with Citus, and without Citus both answers are "not
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
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "parser/parse_relation.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "citus.h"
#include "payout.h"

static Oid	ShardOnThisNode(Oid logical, int64 shardid, char **name);
static char *CitusShardName(Oid logical, int64 shardid);
static bool PlacedOnThisNode(int64 shardid);
static Oid	RelationOwner(Oid relid);

/*
 * CitusShardName
 *		The name Citus gives shard shardid of table logical, as its own
 *		pg_catalog.shard_name() computes it (Citus shortens long names with
 *		a hash, which only Citus knows how to make), schema-qualified and
 *		quoted.  The function is found by its signature in pg_catalog and
 *		called by OID: Citus 11 and later take a third argument, which asks
 *		for the schema even when it is public.
 */
static char *
CitusShardName(Oid logical, int64 shardid)
{
	List	   *fname = list_make2(makeString("pg_catalog"), makeString("shard_name"));
	Oid			argtypes[3] = {REGCLASSOID, INT8OID, BOOLOID};
	Oid			fn;
	Datum		name;

	fn = LookupFuncName(fname, 3, argtypes, true);
	if (OidIsValid(fn))
		name = OidFunctionCall3(fn, ObjectIdGetDatum(logical),
								Int64GetDatum(shardid), BoolGetDatum(false));
	else
	{
		fn = LookupFuncName(fname, 2, argtypes, true);
		if (!OidIsValid(fn))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("function pg_catalog.shard_name(regclass, bigint) does not exist"),
					 errdetail("This version of Citus is not one payout knows.")));
		name = OidFunctionCall2(fn, ObjectIdGetDatum(logical),
								Int64GetDatum(shardid));
	}
	list_free_deep(fname);
	return TextDatumGetCString(name);
}

/*
 * PlacedOnThisNode
 *		Whether pg_dist_placement places shard shardid in this node's group
 *		(pg_dist_local_group).
 */
static bool
PlacedOnThisNode(int64 shardid)
{
	Oid			catalog;
	Oid			index;
	Relation	rel;
	AttrNumber	att_shardid;
	AttrNumber	att_groupid;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		isnull;
	int32		group = -1;
	bool		found = false;

	catalog = get_relname_relid("pg_dist_local_group", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog))
		return false;
	rel = table_open(catalog, AccessShareLock);
	att_groupid = attnameAttNum(rel, "groupid", false);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	if (att_groupid != InvalidAttrNumber &&
		HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		value = heap_getattr(tuple, att_groupid,
										 RelationGetDescr(rel), &isnull);

		if (!isnull)
			group = DatumGetInt32(value);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (group < 0)
		return false;

	catalog = get_relname_relid("pg_dist_placement", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog))
		return false;
	rel = table_open(catalog, AccessShareLock);
	att_shardid = attnameAttNum(rel, "shardid", false);
	att_groupid = attnameAttNum(rel, "groupid", false);
	if (att_shardid == InvalidAttrNumber || att_groupid == InvalidAttrNumber)
	{
		table_close(rel, AccessShareLock);
		return false;
	}
	index = get_relname_relid("pg_dist_placement_shardid_index", PG_CATALOG_NAMESPACE);
	ScanKeyInit(&key, att_shardid,
				BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(shardid));
	scan = systable_beginscan(rel, index, OidIsValid(index), NULL, 1, &key);
	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		value = heap_getattr(tuple, att_groupid,
										 RelationGetDescr(rel), &isnull);

		found = !isnull && DatumGetInt32(value) == group;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * RelationOwner
 *		The owner of relation relid, InvalidOid if there is none.
 */
static Oid
RelationOwner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/*
 * ShardOnThisNode
 *		The relation that is this node's placement of shard shardid of
 *		table logical, or InvalidOid, proved from Citus's metadata and never
 *		from the shape of a name: the relation has the name Citus gives the
 *		shard (CitusShardName()) in the logical table's schema,
 *		pg_dist_placement places the shard on this node, and the relation
 *		has the logical table's owner, as every shard has.  *name is set to
 *		the shard's qualified name, for messages.
 */
static Oid
ShardOnThisNode(Oid logical, int64 shardid, char **name)
{
	Oid			nspid = get_rel_namespace(logical);
	char	   *nspname = get_namespace_name(nspid);
	List	   *names;
	char	   *relname;
	Oid			shard;

	*name = CitusShardName(logical, shardid);
	if (nspname == NULL || !SplitIdentifierString(pstrdup(*name), '.', &names))
		return InvalidOid;
	if (list_length(names) == 2 &&
		strcmp((char *) linitial(names), nspname) == 0)
		relname = (char *) lsecond(names);
	else if (list_length(names) == 1 && strcmp(nspname, "public") == 0)
		relname = (char *) linitial(names);
	else
		return InvalidOid;

	shard = get_relname_relid(relname, nspid);
	if (!OidIsValid(shard) ||
		RelationOwner(shard) != RelationOwner(logical) ||
		!PlacedOnThisNode(shardid))
		return InvalidOid;
	return shard;
}

/*
 * PayoutCitusPlacement
 *		The OID of this node's placement of relid if Citus made relid a
 *		reference table, InvalidOid if Citus does not distribute it.
 *
 * pg_dist_shard lists a table's shards by logicalrelid; a reference table
 * has one, placed on every node in the table's schema, under the name
 * Citus gives it.  A table split into several shards cannot be read here,
 * and a node without the placement (a coordinator Citus does not know as
 * a node, a worker reference tables were not copied to yet) has no rows
 * to read: both are errors rather than an empty graph, which would reject
 * every change.
 */
Oid
PayoutCitusPlacement(Oid relid)
{
	const char *relname = get_rel_name(relid);
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

	placement = ShardOnThisNode(relid, shardid, &name);
	if (!OidIsValid(placement))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Citus reference table \"%s.%s\" has no placement on this node",
						PAYOUT_SCHEMA, relname),
				 errdetail("Its rows are in %s on the nodes that hold it.", name),
				 errhint("Copy reference tables to every node with SELECT replicate_reference_tables(); on a coordinator, add it as a node first with citus_set_coordinator_host().")));
	pfree(name);
	return placement;
}

/*
 * PayoutCitusLogicalTable
 *		The distributed table relid is a shard of, or relid itself.
 *
 * A shard is proved one from Citus's metadata, not guessed from its name.
 * The name only suggests which shard to ask about: it must end in
 * "_<shardid>", and pg_dist_shard must list that shard id; then relid must
 * be this node's placement of that shard (ShardOnThisNode(): the name
 * Citus gives it, in its table's schema, placed here, with its table's
 * owner).  A table that merely looks like a shard, created beside a
 * distributed table by a role that may keep history, is a table of its
 * own.  Looked up through pg_dist_shard's index on shardid, once per
 * statement.
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
	Oid			logical = InvalidOid;
	char	   *name;

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

		if (!isnull)
			logical = DatumGetObjectId(value);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(logical) || logical == relid ||
		get_rel_name(logical) == NULL ||
		ShardOnThisNode(logical, shardid, &name) != relid)
		return relid;
	return logical;
}
