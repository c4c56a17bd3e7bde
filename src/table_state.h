/*-------------------------------------------------------------------------
 *
 * table_state.h
 *	  What the payout triggers know about the table they fire on.
 *
 * src/table_state.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_TABLE_STATE_H
#define PAYOUT_TABLE_STATE_H

#include "access/htup.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/relcache.h"

#include "key.h"
#include "query_state.h"

/* The two trigger functions that attach() creates triggers of. */
typedef enum PayoutTriggerKind
{
	PAYOUT_TRIGGER_ENFORCE,
	PAYOUT_TRIGGER_HISTORY
} PayoutTriggerKind;

/* Which changes of a relation its history triggers record, as they fire now. */
#define PAYOUT_HISTORY_INSERT	0x01
#define PAYOUT_HISTORY_UPDATE	0x02
#define PAYOUT_HISTORY_DELETE	0x04

/*
 * One relation's state for one statement, built at the statement's first
 * row by PayoutGetTableState and kept in the trigger's fn_extra.  The
 * enforcement and the history trigger build it the same way; nothing on
 * the per-row path looks anything up again.
 */
typedef struct PayoutTableState
{
	Oid			relid;			/* the relation the trigger fires on */
	Oid			root;			/* the table the trigger was attached to */
	AttrNumber	status_attnum;
	AttrNumber	resolution_attnum;	/* InvalidAttrNumber: no resolution */
	AttrNumber	autoprocess_attnum; /* InvalidAttrNumber: every payout automatic */
	bool		notify;			/* option "notify" */
	bool		delete_unfinished;	/* option "delete_unfinished" */
	uint32		history_events; /* PAYOUT_HISTORY_*: what it records */
	PayoutQueryState *query;	/* the query's, shared by its relations */

	/* the primary key; nkeys = 0 for none */
	Oid			pkindex;
	int			nkeys;
	AttrNumber	keyattnums[INDEX_MAX_KEYS];
	PayoutKeyKind keykinds[INDEX_MAX_KEYS];
	Oid			keyoutput[INDEX_MAX_KEYS];
} PayoutTableState;

extern PayoutTableState *PayoutGetTableState(FunctionCallInfo fcinfo,
											 PayoutTriggerKind kind);
extern char *PayoutRowKey(PayoutTableState *state, Relation rel,
						  HeapTuple tuple);
extern text *PayoutRowKeyText(PayoutTableState *state, Relation rel,
							  HeapTuple tuple);
extern bool PayoutIsAutomatic(PayoutTableState *state, Relation rel,
							  HeapTuple tuple);
extern char *PayoutDescribeRow(PayoutTableState *state, Relation rel,
							   HeapTuple tuple);
extern Oid	PayoutAttachedTable(Relation rel, Trigger *trigger);

#endif							/* PAYOUT_TABLE_STATE_H */
