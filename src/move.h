/*-------------------------------------------------------------------------
 *
 * move.h
 *	  Proving that a row an UPDATE inserts into a partition is a row it
 *	  moved there.
 *
 * src/move.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_MOVE_H
#define PAYOUT_MOVE_H

#include "access/htup.h"
#include "utils/relcache.h"

#include "table_state.h"

extern void PayoutRegisterMoveCallbacks(void);
extern void PayoutRememberUpdate(PayoutTableState *state, Relation rel,
								 HeapTuple oldtuple, HeapTuple newtuple,
								 int from, int oldres);
extern bool PayoutIsMoveDelete(Relation rel, HeapTuple oldtuple);
extern bool PayoutTakeMove(PayoutTableState *state, Relation rel,
						   HeapTuple newtuple, int *from, int *oldres);
extern bool PayoutTakeMovedRow(PayoutTableState *state, Relation rel,
							   HeapTuple newtuple, int *from, int *oldres);

#endif							/* PAYOUT_MOVE_H */
