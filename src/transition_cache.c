/*-------------------------------------------------------------------------
 *
 * transition_cache.c
 *	  Per-backend cache of the transition graph, and its invalidation.
 *
 * The graph lives in table payout.transition, one row per edge; a row whose
 * from_status is NULL lets a new row start in to_status.  Reading that table
 * for every row the trigger checks would cost a scan per row, so each
 * backend keeps the graph as one bitmask of next statuses per status, in
 * static memory: checking an edge is a bit test, with no allocation.
 *
 * Plain DML on a user table sends no invalidation, so payout.transition
 * carries a statement trigger, payout.invalidate_cache(), that sends a
 * relcache invalidation for the table.  Our own backend sees it at the next
 * command boundary, other backends after commit, and nobody on rollback.
 * A relcache callback then marks the graph stale.  This is the scheme
 * pg_cron uses for its job cache.
 *
 * Other backends process invalidations when a transaction starts or when
 * they take a new lock; a backend that is inside a transaction and already
 * holds its locks would not look.  PayoutAcceptChanges makes the callers
 * look once per statement, so a committed edit applies to every session
 * from its next statement.
 *
 * The graph is read with a fresh catalog snapshot, not the transaction's:
 * enforcement follows the latest committed graph even in a REPEATABLE READ
 * transaction that started before the edit.
 *
 * src/transition_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "catalog/pg_type.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "storage/lockdefs.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "payout.h"
#include "status.h"
#include "transition_cache.h"

/* Columns of payout.transition, as created by the install script. */
#define Anum_transition_from_status	1
#define Anum_transition_to_status	2

/* next_statuses[from]: bit "to" is set when from -> to is an edge. */
static uint32 next_statuses[PAYOUT_NUM_STATUSES + 1];
static bool graph_valid = false;
static Oid	transition_relid = InvalidOid;

/* Bumped by every invalidation that concerns the graph; see LoadGraph. */
static uint64 graph_invalidations = 0;

static void GraphInvalidationCallback(Datum arg, Oid relid);
static void LoadGraph(void);

/*
 * GraphInvalidationCallback
 *		Mark the graph stale when payout.transition may have changed.
 *
 * relid is InvalidOid after the invalidation queue overflowed, which means
 * "everything".  While we do not know the table's OID (before the first
 * load, or after it was forgotten) any invalidation may be the one that
 * matters.  Only flags are set: this can run inside any catalog access.
 * The OID is forgotten too, so that DROP and CREATE EXTENSION, which give
 * the table a new OID, are picked up.
 */
static void
GraphInvalidationCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || !OidIsValid(transition_relid) ||
		relid == transition_relid)
	{
		graph_valid = false;
		transition_relid = InvalidOid;
		graph_invalidations++;
	}
}

/*
 * PayoutRegisterGraphCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterGraphCallbacks(void)
{
	CacheRegisterRelcacheCallback(GraphInvalidationCallback, (Datum) 0);
}

/*
 * LoadGraph
 *		Read payout.transition into next_statuses.
 *
 * The table is scanned directly, without SPI and without permission checks:
 * enforcement must see the graph whatever the current user may read.  The
 * lock is held only for the scan.  If an invalidation arrives while we read
 * (the scan itself may process some), graph_invalidations moves and the
 * graph we store is marked stale at once, so it is read again next time.
 */
static void
LoadGraph(void)
{
	uint64		generation = graph_invalidations;
	uint32		next[PAYOUT_NUM_STATUSES + 1] = {0};
	Oid			nspid;
	Oid			relid;
	Relation	rel;
	TupleDesc	tupdesc;
	SysScanDesc scan;
	HeapTuple	tuple;

	nspid = get_namespace_oid(PAYOUT_SCHEMA, false);
	relid = get_relname_relid("transition", nspid);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.transition\" does not exist",
						PAYOUT_SCHEMA),
				 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));

	rel = table_open(relid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		value;
		bool		isnull;
		int			from;
		int			to;

		value = heap_getattr(tuple, Anum_transition_to_status, tupdesc, &isnull);
		if (isnull)
			continue;			/* excluded by NOT NULL */
		to = PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(value));

		value = heap_getattr(tuple, Anum_transition_from_status, tupdesc, &isnull);
		from = isnull ? PAYOUT_INITIAL :
			PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(value));

		next[from] |= (uint32) 1 << to;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	memcpy(next_statuses, next, sizeof(next_statuses));
	transition_relid = relid;
	graph_valid = (generation == graph_invalidations);
}

/*
 * PayoutNextStatuses
 *		Bitmask of the statuses reachable in one step from "from"
 *		(PAYOUT_INITIAL for a new row).
 */
uint32
PayoutNextStatuses(int from)
{
	Assert(from >= 0 && from <= PAYOUT_INITIAL);
	if (!graph_valid)
		LoadGraph();
	return next_statuses[from];
}

/*
 * payout.invalidate_cache(): statement trigger on payout.transition and
 * payout.provider_code that tells every backend to drop its copy of the
 * table.  Plain DML sends no invalidation of its own.
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

/*
 * payout.can_transition(from payout.status, to payout.status)
 *
 * Not strict: a NULL from asks whether a new row may start in "to".  A
 * NULL "to" has no answer.
 */
PG_FUNCTION_INFO_V1(payout_can_transition);
Datum
payout_can_transition(PG_FUNCTION_ARGS)
{
	int			from;
	int			to;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();

	from = PG_ARGISNULL(0) ? PAYOUT_INITIAL :
		PayoutEnumIndex(PAYOUT_ENUM_STATUS, PG_GETARG_OID(0));
	to = PayoutEnumIndex(PAYOUT_ENUM_STATUS, PG_GETARG_OID(1));

	PayoutAcceptChanges(fcinfo->flinfo);
	PG_RETURN_BOOL(PayoutCanTransition(from, to));
}

/*
 * payout.next_statuses(payout.status) returns payout.status[]
 *
 * The statuses reachable in one step, in enum order; for NULL, the statuses
 * a new row may start in.
 */
PG_FUNCTION_INFO_V1(payout_next_statuses);
Datum
payout_next_statuses(PG_FUNCTION_ARGS)
{
	Datum		elems[PAYOUT_NUM_STATUSES];
	int			nelems = 0;
	int			from;
	uint32		next;
	int			to;

	from = PG_ARGISNULL(0) ? PAYOUT_INITIAL :
		PayoutEnumIndex(PAYOUT_ENUM_STATUS, PG_GETARG_OID(0));

	PayoutAcceptChanges(fcinfo->flinfo);
	next = PayoutNextStatuses(from);
	for (to = 0; to < PAYOUT_NUM_STATUSES; to++)
	{
		if (next & ((uint32) 1 << to))
			elems[nelems++] = ObjectIdGetDatum(PayoutEnumOid(PAYOUT_ENUM_STATUS, to));
	}

	PG_RETURN_ARRAYTYPE_P(construct_array(elems, nelems,
										  PayoutEnumTypeOid(PAYOUT_ENUM_STATUS),
										  sizeof(Oid), true, TYPALIGN_INT));
}
