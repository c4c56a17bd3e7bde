/*-------------------------------------------------------------------------
 *
 * transition_cache.c
 *	  Per-backend copy of the transition graph, and the graph queries.
 *
 * The graph lives in table payout.transition, one row per edge; a row whose
 * from_status is NULL lets a new row start in to_status.  Reading that table
 * for every row the trigger checks would cost a scan per row, so each
 * backend keeps the graph as one bitmask of next statuses per status, in
 * static memory: checking an edge is a bit test, with no allocation.
 *
 * The copy is kept up to date through table_cache.c.  Edits apply to every
 * session from its next statement: the trigger pins the graph for the
 * length of a query at its first judgement (PayoutPinGraph), and the SQL
 * functions pick up invalidations once per statement (PayoutAcceptChanges).
 *
 * src/transition_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/rel.h"

#include "payout.h"
#include "query_state.h"
#include "status.h"
#include "table_cache.h"
#include "transition_cache.h"

/* Columns of payout.transition, as created by the install script. */
#define Anum_transition_from_status	1
#define Anum_transition_to_status	2

/* next_statuses[from]: bit "to" is set when from -> to is an edge. */
static uint32 next_statuses[PAYOUT_NUM_STATUSES + 1];
static PayoutTableCache graph_cache = {"transition"};

static void LoadGraph(void);

/*
 * PayoutRegisterGraphCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterGraphCallbacks(void)
{
	PayoutRegisterTableCache(&graph_cache);
}

/*
 * LoadGraph
 *		Read payout.transition into next_statuses.
 */
static void
LoadGraph(void)
{
	uint32		next[PAYOUT_NUM_STATUSES + 1] = {0};
	uint64		generation;
	Relation	rel;
	TupleDesc	tupdesc;
	SysScanDesc scan;
	HeapTuple	tuple;

	rel = PayoutTableCacheOpen(&graph_cache, &generation);
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

	memcpy(next_statuses, next, sizeof(next_statuses));
	PayoutTableCacheClose(&graph_cache, rel, generation);
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
	if (!graph_cache.valid)
		LoadGraph();
	return next_statuses[from];
}

/*
 * PayoutPinGraph
 *		Give a query the graph it judges by, from its first judgement to its
 *		end: the graph committed when it asks, whatever is committed while
 *		it runs.
 *
 * Invalidations are accepted here, once per query, so that edits other
 * sessions committed since this transaction last looked apply; those the
 * query accepts later (any new lock does) mark the cache stale for the
 * next query, not for this one.
 */
void
PayoutPinGraph(PayoutQueryState *query)
{
	if (query->graph_pinned)
		return;
	AcceptInvalidationMessages();
	if (!graph_cache.valid)
		LoadGraph();
	StaticAssertStmt(sizeof(query->graph) == sizeof(next_statuses),
					 "a pinned graph is a copy of the cached one");
	memcpy(query->graph, next_statuses, sizeof(next_statuses));
	query->graph_pinned = true;
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
