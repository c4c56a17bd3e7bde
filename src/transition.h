/*-------------------------------------------------------------------------
 *
 * transition.h
 *	  Helpers of the transition trigger that the history trigger shares.
 *
 * src/transition.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_TRANSITION_H
#define PAYOUT_TRANSITION_H

#include "access/htup.h"
#include "commands/trigger.h"
#include "utils/relcache.h"


extern void PayoutTriggerColumns(Relation rel, Trigger *trigger,
								 AttrNumber *status_attnum,
								 AttrNumber *resolution_attnum);
extern char *PayoutRowKey(Relation rel, HeapTuple tuple);
extern Oid	PayoutAttachedTable(Relation rel, Trigger *trigger);

#endif							/* PAYOUT_TRANSITION_H */
