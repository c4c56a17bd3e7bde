/*-------------------------------------------------------------------------
 *
 * transition_cache.h
 *	  Per-backend cache of the transition graph in payout.transition.
 *
 * src/transition_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_TRANSITION_CACHE_H
#define PAYOUT_TRANSITION_CACHE_H

#include "fmgr.h"

#include "query_state.h"

extern void PayoutRegisterGraphCallbacks(void);
extern uint32 PayoutNextStatuses(int from);
extern void PayoutPinGraph(PayoutQueryState *query);

/*
 * PayoutCanTransition
 *		Whether the graph has an edge from -> to; from may be PAYOUT_INITIAL.
 */
static inline bool
PayoutCanTransition(int from, int to)
{
	return (PayoutNextStatuses(from) & ((uint32) 1 << to)) != 0;
}

#endif							/* PAYOUT_TRANSITION_CACHE_H */
