/*-------------------------------------------------------------------------
 *
 * move.h
 *	  Recognizing the rows an UPDATE moves from one partition to another.
 *
 * src/move.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_MOVE_H
#define PAYOUT_MOVE_H

#include "access/htup.h"
#include "utils/relcache.h"

extern void PayoutRememberUpdate(Relation rel, HeapTuple newtuple,
								 Oid oldstatus, Oid oldresolution,
								 Oid newstatus, Oid newresolution);
extern bool PayoutIsMovedRow(Relation rel, HeapTuple tuple, Oid status,
							 Oid resolution);
extern bool PayoutTakeMove(Relation rel, const char *key,
						   Oid *oldstatus, Oid *oldresolution);

#endif							/* PAYOUT_MOVE_H */
