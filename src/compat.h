/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Shims for differences between PostgreSQL major versions.
 *
 * PostgreSQL 15 is the baseline; the test suite runs on 15, 17 and 18
 * (no Debian suite we can reach packages 16).  Each API that changed
 * after 15 is wrapped here, so that the rest of the code is written once;
 * a major with changes not listed here is refused at build time rather
 * than half supported.
 *
 * src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_COMPAT_H
#define PAYOUT_COMPAT_H

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "payout supports PostgreSQL 15 to 18"
#endif

#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/relcache.h"

/*
 * PG_MODULE_MAGIC_EXT (PostgreSQL 18) lets the server report our name and
 * version; older servers only know PG_MODULE_MAGIC.
 */
#if PG_VERSION_NUM >= 180000
#define PAYOUT_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "payout", .version = "1.2")
#else
#define PAYOUT_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/*
 * pg_attribute_noreturn(), written after a declaration, became pg_noreturn,
 * written before it, in 18.  The compilers we build with take the older
 * attribute before a declaration too.
 */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

/* pg_proc_aclcheck became object_aclcheck in 16. */
#if PG_VERSION_NUM >= 160000
#include "catalog/pg_proc.h"
#define PayoutProcAclCheck(proc, role, mode) \
	object_aclcheck(ProcedureRelationId, (proc), (role), (mode))
#else
#define PayoutProcAclCheck(proc, role, mode) \
	pg_proc_aclcheck((proc), (role), (mode))
#endif

/*
 * RelationGetPrimaryKeyIndex gained deferrable_ok in 18.  We want the key
 * that is checked at once: a deferrable one names no row until commit.
 */
#if PG_VERSION_NUM >= 180000
#define PayoutPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex((rel), false)
#else
#define PayoutPrimaryKeyIndex(rel) RelationGetPrimaryKeyIndex(rel)
#endif

/* ExecInsertIndexTuples gained onlySummarizing in 16. */
#if PG_VERSION_NUM >= 160000
#define PayoutInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define PayoutInsertIndexTuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

/* index_beginscan gained an IndexScanInstrumentation argument in 18. */
#if PG_VERSION_NUM >= 180000
#define PayoutIndexBeginScan(heap, index, snapshot, nkeys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), 0)
#else
#define PayoutIndexBeginScan(heap, index, snapshot, nkeys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), 0)
#endif

/*
 * A range table of one relation for an executor state of our own (as COPY
 * makes one), so that ExecInitResultRelation, error messages and foreign
 * partitions find the relation: permission info moved out of the range
 * table entry in 16, and 18 wants the unpruned entries too.
 */
#include "executor/executor.h"
#include "parser/parsetree.h"

static inline void
PayoutInitRangeTable(EState *estate, Relation rel)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	Bitmapset  *cols = NULL;
	int			i;

	for (i = 0; i < RelationGetDescr(rel)->natts; i++)
		cols = bms_add_member(cols, i + 1 - FirstLowInvalidHeapAttributeNumber);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
	{
		RTEPermissionInfo *perminfo = makeNode(RTEPermissionInfo);

		perminfo->relid = RelationGetRelid(rel);
		perminfo->requiredPerms = ACL_INSERT;
		perminfo->insertedCols = cols;
		rte->perminfoindex = 1;
#if PG_VERSION_NUM >= 180000
		ExecInitRangeTable(estate, list_make1(rte), list_make1(perminfo),
						   bms_make_singleton(1));
#else
		ExecInitRangeTable(estate, list_make1(rte), list_make1(perminfo));
#endif
	}
#else
	rte->requiredPerms = ACL_INSERT;
	rte->insertedCols = cols;
	ExecInitRangeTable(estate, list_make1(rte));
#endif
}

/* The map from the root's row type to a partition's: a function from 16. */
#if PG_VERSION_NUM >= 160000
#define PayoutRootToChildMap(rri, estate) ExecGetRootToChildMap((rri), (estate))
#else
#define PayoutRootToChildMap(rri, estate) ((rri)->ri_RootToPartitionMap)
#endif

/* search_path pg_catalog, pg_temp, for code run with another role's rights. */
#if PG_VERSION_NUM >= 170000
#define PayoutRestrictSearchPath() RestrictSearchPath()
#else
#define PayoutRestrictSearchPath() \
	(void) set_config_option("search_path", "pg_catalog, pg_temp", \
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, \
							 true, 0, false)
#endif

/* DecodeDateTime reports what it could not decode from 16. */
#if PG_VERSION_NUM >= 160000
#define PayoutDecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp) \
	DecodeDateTime((field), (ftype), (nf), (dtype), (tm), (fsec), (tzp), \
				   &(DateTimeErrorExtra) {0})
#else
#define PayoutDecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp) \
	DecodeDateTime((field), (ftype), (nf), (dtype), (tm), (fsec), (tzp))
#endif

/* A VirtualTransactionId names its PGPROC by procNumber from 17. */
#if PG_VERSION_NUM >= 170000
#define PayoutVxidProc(vxid) ((vxid).procNumber)
#else
#define PayoutVxidProc(vxid) ((vxid).backendId)
#endif

#endif							/* PAYOUT_COMPAT_H */
