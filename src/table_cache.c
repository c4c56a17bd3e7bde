/*-------------------------------------------------------------------------
 *
 * table_cache.c
 *	  Per-backend copies of the extension's configuration tables, and
 *	  their invalidation.
 *
 * The trigger and the classifier answer from copies of payout.transition
 * and payout.provider_code that each backend keeps, so that no row costs a
 * query.  Plain DML on a table sends no invalidation of its own, so each
 * of these tables carries a statement trigger, payout.invalidate_cache(),
 * that sends a relcache invalidation for it: our own backend sees it at the
 * next command boundary, other backends after commit, and nobody on
 * rollback.  One relcache callback then marks the copy stale.  This is the
 * scheme pg_cron uses for its job cache.
 *
 * The copies are read with a fresh catalog snapshot, not the transaction's,
 * so they follow the latest committed state even inside a REPEATABLE READ
 * transaction that started before an edit.
 *
 * On a Citus cluster the tables may be reference tables: their rows then
 * live in a placement on every node (payout.transition_102008), the table
 * under its own name is an empty shell, and Citus keeps the placements
 * equal, edits committed on all nodes or none.  A copy is then read from
 * this node's placement (src/citus.c), whose own trigger invalidates it.
 *
 * src/table_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "storage/lockdefs.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "citus.h"
#include "payout.h"
#include "table_cache.h"

#define MAX_TABLE_CACHES 4

static PayoutTableCache *caches[MAX_TABLE_CACHES];
static int	ncaches = 0;

static void TableCacheCallback(Datum arg, Oid relid);

/*
 * TableCacheCallback
 *		Mark a copy stale when its table may have changed.
 *
 * relid is InvalidOid after the invalidation queue overflowed, which means
 * "everything".  While we do not know a table's OID (before the first load,
 * or after it was forgotten) any invalidation may be the one that matters.
 * This can run inside any catalog access, even while a copy is being
 * built, so it only sets flags: no catalog access, no allocation, no error.
 * The OID is forgotten too, so that DROP and CREATE EXTENSION, which give
 * the table a new OID, are picked up.
 */
static void
TableCacheCallback(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < ncaches; i++)
	{
		PayoutTableCache *cache = caches[i];

		if (!OidIsValid(relid) || !OidIsValid(cache->relid) ||
			relid == cache->relid || relid == cache->placement)
		{
			cache->valid = false;
			cache->relid = InvalidOid;
			cache->placement = InvalidOid;
			cache->invalidations++;
		}
	}
}

/*
 * PayoutRegisterTableCache
 *		Called once per backend and table, from _PG_init.  All tables share
 *		one relcache callback: there are only a few callback slots, and no
 *		way to give one back.
 */
void
PayoutRegisterTableCache(PayoutTableCache *cache)
{
	if (ncaches >= MAX_TABLE_CACHES)
		elog(ERROR, "too many payout table caches");
	if (ncaches == 0)
		CacheRegisterRelcacheCallback(TableCacheCallback, (Datum) 0);
	caches[ncaches++] = cache;
}

/*
 * PayoutTableCacheOpen
 *		Open a cached table to rebuild its copy; *generation records the
 *		invalidations seen so far.
 *
 * The table is opened directly, without permission checks: enforcement
 * must see the configuration whatever the current user may read.  Scan it
 * with systable_beginscan(..., NULL snapshot), which takes a fresh catalog
 * snapshot.  What is opened is the table itself, or this node's placement
 * of it when Citus made it a reference table.
 */
Relation
PayoutTableCacheOpen(PayoutTableCache *cache, uint64 *generation)
{
	Oid			nspid;
	Oid			relid;
	Oid			placement;

	*generation = cache->invalidations;
	nspid = get_namespace_oid(PAYOUT_SCHEMA, false);
	relid = get_relname_relid(cache->relname, nspid);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist",
						PAYOUT_SCHEMA, cache->relname),
				 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));
	placement = PayoutCitusPlacement(relid);
	cache->relid = relid;
	cache->placement = placement;
	return table_open(OidIsValid(placement) ? placement : relid,
					  AccessShareLock);
}

/*
 * PayoutTableCacheClose
 *		Close the table once the new copy is in place, and mark the copy
 *		valid, unless an invalidation arrived meanwhile (the scan itself may
 *		process some): then it is marked stale at once, and read again next
 *		time.  The lock is held only for the scan.
 */
void
PayoutTableCacheClose(PayoutTableCache *cache, Relation rel,
					  uint64 generation)
{
	table_close(rel, AccessShareLock);
	cache->valid = (generation == cache->invalidations);
}

/*
 * PayoutAcceptChanges
 *		Process pending invalidations, so that edits other sessions have
 *		committed are seen.
 *
 * Other backends process invalidations when a transaction starts or when
 * they take a new lock, but a statement inside a transaction that already
 * holds its locks would not look.  Callers come here once per statement:
 * with an FmgrInfo, at the first call of the query at that call site
 * (fn_extra records it, so the function must not use fn_extra otherwise);
 * with NULL, unconditionally.  It is cheap when nothing is pending.
 */
void
PayoutAcceptChanges(FmgrInfo *flinfo)
{
	if (flinfo != NULL && flinfo->fn_extra != NULL)
		return;

	AcceptInvalidationMessages();

	if (flinfo != NULL)
		flinfo->fn_extra = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(bool));
}

/*
 * payout.invalidate_cache(): statement trigger on the cached tables that
 * tells every backend to drop its copy.
 */
PG_FUNCTION_INFO_V1(payout_invalidate_cache);
Datum
payout_invalidate_cache(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"payout.invalidate_cache\" was not called by the trigger manager")));

	CacheInvalidateRelcache(trigdata->tg_relation);

	return PointerGetDatum(NULL);
}
