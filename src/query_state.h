/*-------------------------------------------------------------------------
 *
 * query_state.h
 *	  What the payout triggers remember for the length of one query.
 *
 * src/query_state.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_QUERY_STATE_H
#define PAYOUT_QUERY_STATE_H

#include "status.h"

struct PayoutMoveState;

/*
 * One query's state, found by the memory context its triggers' FmgrInfos
 * live in, and gone with that context.
 */
typedef struct PayoutQueryState
{
	MemoryContext cxt;			/* the query's context; the state lives in it */
	uint64		serial;			/* which query: never reused in a backend */
	MemoryContextCallback callback;
	struct PayoutQueryState *next;

	/* The graph the query judges by: next statuses of each status. */
	bool		graph_pinned;
	uint32		graph[PAYOUT_NUM_STATUSES + 1];

	/* Moves between partitions (move.c), made on first use. */
	struct PayoutMoveState *moves;
} PayoutQueryState;

extern void PayoutRegisterQueryStateCallbacks(void);
extern PayoutQueryState *PayoutGetQueryState(MemoryContext cxt);

#endif							/* PAYOUT_QUERY_STATE_H */
