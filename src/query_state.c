/*-------------------------------------------------------------------------
 *
 * query_state.c
 *	  What the payout triggers remember for the length of one query.
 *
 * Some facts hold for one query and no longer: the transition graph the
 * query judges by, taken at its first judgement, so that an edit committed
 * while it runs (seen when it routes a row to a partition it had not
 * locked yet) applies from the next statement, not half-way through this
 * one; and the halves of the moves between partitions it makes (move.c).
 *
 * The triggers of one query share the memory context their FmgrInfos were
 * set up in (fn_mcxt): the executor's per-query context, the context COPY
 * runs its triggers in, or the message context of a logical replication
 * apply worker.  The state lives in that context, is found by it, and goes
 * away with it: a reset callback takes it off the list.  A statement that
 * a trigger runs is another query, with a context and a state of its own.
 *
 * Nothing here depends on hooks, so nothing depends on when the library
 * was loaded: the statement during which it is loaded has its state like
 * any other.  The list is as long as queries are nested, and its head is
 * nearly always the query asking.
 *
 * src/query_state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"

#include "query_state.h"

static PayoutQueryState *query_states = NULL;
static uint64 query_serial = 0;

static void ForgetQueryState(void *arg);
static void QueryStateXactCallback(XactEvent event, void *arg);

/*
 * PayoutRegisterQueryStateCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterQueryStateCallbacks(void)
{
	RegisterXactCallback(QueryStateXactCallback, NULL);
}

/*
 * ForgetQueryState
 *		Reset callback of a query's context: take its state off the list.
 *		It runs while memory is freed, also during error cleanup, so it
 *		only unlinks.
 */
static void
ForgetQueryState(void *arg)
{
	PayoutQueryState **link;

	for (link = &query_states; *link != NULL; link = &(*link)->next)
	{
		if (*link == (PayoutQueryState *) arg)
		{
			*link = (*link)->next;
			return;
		}
	}
}

/*
 * QueryStateXactCallback
 *		No query outlives its transaction; a context that does (none of the
 *		executor's) keeps its state, which nothing finds any more.
 */
static void
QueryStateXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			query_states = NULL;
			break;
		default:
			break;
	}
}

/*
 * PayoutGetQueryState
 *		The state of the query whose triggers' FmgrInfos live in cxt, made
 *		at its first call.
 */
PayoutQueryState *
PayoutGetQueryState(MemoryContext cxt)
{
	PayoutQueryState *state;

	for (state = query_states; state != NULL; state = state->next)
	{
		if (state->cxt == cxt)
			return state;
	}

	state = MemoryContextAllocZero(cxt, sizeof(PayoutQueryState));
	state->cxt = cxt;
	state->serial = ++query_serial;
	state->callback.func = ForgetQueryState;
	state->callback.arg = state;
	MemoryContextRegisterResetCallback(cxt, &state->callback);
	state->next = query_states;
	query_states = state;
	return state;
}
