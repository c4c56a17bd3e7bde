/*-------------------------------------------------------------------------
 *
 * move.h
 *	  Recognising the two halves of a payout that moves to another
 *	  partition.
 *
 * src/move.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_MOVE_H
#define PAYOUT_MOVE_H

#include "access/htup.h"
#include "utils/relcache.h"

#include "query_state.h"
#include "rules.h"
#include "table_state.h"

/* What history keeps of the deleted half of a move. */
typedef struct PayoutMovedRow
{
	Oid			root;			/* the attached table */
	Datum		old_status;
	bool		old_status_null;
	Datum		old_resolution;
	bool		old_resolution_null;
	text	   *key;			/* the old version's key text */
	Oid			user_id;		/* who deleted it */
} PayoutMovedRow;

extern void PayoutRegisterMoveCallbacks(void);

/* The enforcement trigger's side. */
extern void PayoutRememberUpdate(PayoutTableState *state, Relation rel,
								 HeapTuple oldtuple, HeapTuple newtuple,
								 int from, int oldres);
extern bool PayoutIsMoveDelete(PayoutTableState *state, Relation rel,
							   HeapTuple oldtuple);
extern bool PayoutTakeMove(PayoutTableState *state, Relation rel,
						   HeapTuple newtuple, int *from, int *oldres);
extern bool PayoutRememberApplyDelete(PayoutTableState *state, Relation rel,
									  HeapTuple oldtuple,
									  PayoutChange *change, PayoutRule rule);
extern bool PayoutTakeApplyDelete(PayoutTableState *state, Relation rel,
								  HeapTuple newtuple, int *from, int *oldres,
								  bool *automatic, bool *certain);
extern void PayoutConfirmApplyMove(void);
extern void PayoutRejectApplyMove(void);
extern void PayoutSettleApplyDelete(PayoutTableState *state, bool inserting);

/* The history trigger's side. */
extern bool PayoutStashMovedRow(PayoutQueryState *query, Relation rel,
								HeapTuple oldtuple, const PayoutMovedRow *row);
extern bool PayoutTakeMovedRow(PayoutQueryState *query, HeapTuple newtuple,
							   Oid root, PayoutMovedRow *row, bool *matched);
extern bool PayoutTakeApplyStash(PayoutMovedRow *row);

#endif							/* PAYOUT_MOVE_H */
