/*-------------------------------------------------------------------------
 *
 * history.c
 *	  payout.record_history(): the audit trail of every status change.
 *
 * An AFTER ROW trigger, so that only rows that were really stored are
 * recorded, and in the same transaction, so that a rollback leaves no
 * trace.  Each change becomes one row of payout.history, which the trigger
 * hands to history_buffer.c: the rows of a statement are written together
 * at its end, with one INSERT.
 *
 * Writers of payout tables get no privilege on payout.history, which is
 * append-only for everyone but its owner.  The insert therefore runs as
 * the owner of payout.history (history_buffer.c); the acting user is taken
 * here, when the change is made, so the row names whoever made it (for a
 * foreign key's cascade, the role whose statement caused it: rules.c), and
 * the setting payout.actor, which an application that shares one database
 * role among many people sets to say who, among them, made the change.
 *
 * A DELETE is recorded with a NULL new_status.  An UPDATE that moves a row
 * to another partition is recorded once, as the UPDATE it is: move.c pairs
 * its DELETE half, which PostgreSQL marks as moved, with its INSERT half.
 *
 * A payout's primary key is its identity in history.  An UPDATE that
 * changes it (a DBA's renumbering, a cascade, a move in a table whose key
 * includes the partition key) is always recorded, also when the status and
 * the resolution stay, with the key before it in old_key: the old key and
 * the new one stay linked, and a new payout that later takes the old key
 * is recorded as the new payout it is.
 *
 * History is written only for permanent tables whose owner may execute
 * payout.record_history(), which PUBLIC may not (table_state.c).  The key
 * is the canonical text of key.c, the same under any session settings.
 *
 * Trigger arguments: the status column and the resolution column (an empty
 * string for none), as for payout.enforce_transition().
 *
 * Rows name the table the trigger was attached to: for a partitioned
 * table, the partitioned table, not the partition that holds the row, so
 * that payout.timeline() finds a payout wherever it lives.
 *
 * src/history.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "history_buffer.h"
#include "move.h"
#include "query_state.h"
#include "payout.h"
#include "rules.h"
#include "status.h"
#include "table_state.h"

/*
 * ReadStatusColumns
 *		The status and resolution of a row version into one side of a
 *		history row.
 */
static void
ReadStatusColumns(PayoutTableState *state, Relation rel, HeapTuple tuple,
				  Datum *status, bool *status_null,
				  Datum *resolution, bool *resolution_null)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);

	*status = heap_getattr(tuple, state->status_attnum, tupdesc, status_null);
	*resolution = (Datum) 0;
	*resolution_null = true;
	if (state->resolution_attnum != InvalidAttrNumber)
		*resolution = heap_getattr(tuple, state->resolution_attnum, tupdesc,
								   resolution_null);
}

/*
 * KeyChanged
 *		Whether an UPDATE changed the row's primary key: its datums first,
 *		then, where they differ, the canonical text, which is what history
 *		records (numeric 1.0 and 1.00 are one key).  Returns the old key's
 *		text when it changed.
 */
static text *
KeyChanged(PayoutTableState *state, Relation rel, HeapTuple oldtuple,
		   HeapTuple newtuple, text *newkey)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	text	   *oldkey;
	int			i;

	for (i = 0; i < state->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, state->keyattnums[i] - 1);
		bool		oldnull;
		bool		newnull;
		Datum		oldvalue = heap_getattr(oldtuple, state->keyattnums[i],
											tupdesc, &oldnull);
		Datum		newvalue = heap_getattr(newtuple, state->keyattnums[i],
											tupdesc, &newnull);

		if (oldnull != newnull ||
			(!oldnull && !datumIsEqual(oldvalue, newvalue, att->attbyval,
									   att->attlen)))
			break;
	}
	if (i == state->nkeys)
		return NULL;
	oldkey = PayoutRowKeyText(state, rel, oldtuple);
	if (oldkey != NULL && newkey != NULL &&
		VARSIZE_ANY(oldkey) == VARSIZE_ANY(newkey) &&
		memcmp(oldkey, newkey, VARSIZE_ANY(oldkey)) == 0)
		return NULL;
	return oldkey;
}

/*
 * AppendMovedDelete
 *		Record the deleted half of a move whose inserted half history never
 *		saw, as the delete it then looks like.
 */
static void
AppendMovedDelete(const PayoutMovedRow *moved)
{
	PayoutHistoryRow row;

	memset(&row, 0, sizeof(row));
	row.tbl = moved->root;
	row.key = moved->key;
	row.old_status = moved->old_status;
	row.old_status_null = moved->old_status_null;
	row.old_resolution = moved->old_resolution;
	row.old_resolution_null = moved->old_resolution_null;
	row.new_status_null = true;
	row.new_resolution_null = true;
	row.user_id = moved->user_id;
	PayoutHistoryAppend(&row);
}

/*
 * PayoutHistoryRecordLastDelete
 *		Before commit: an apply worker's last change was a delete that history
 *		kept in case an INSERT made it half a move; none did, so it is
 *		recorded as the delete it was.  This is the one write history makes
 *		that late, and only in an apply worker.
 */
void
PayoutHistoryRecordLastDelete(void)
{
	PayoutMovedRow moved;

	if (PayoutTakeApplyStash(&moved))
		AppendMovedDelete(&moved);
}

/*
 * payout.record_history(): AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW
 * trigger.
 */
PG_FUNCTION_INFO_V1(payout_record_history);
Datum
payout_record_history(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	PayoutTableState *state;
	Relation	rel;
	HeapTuple	oldtuple = NULL;
	HeapTuple	newtuple = NULL;
	PayoutHistoryRow row;
	PayoutMovedRow moved;
	bool		matched;
	bool		was_moved = false;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"payout.record_history\" was not called by the trigger manager"),
				 errhint("Attach it to a table with payout.attach().")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must be fired AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW",
						trigdata->tg_trigger->tgname,
						RelationGetRelationName(trigdata->tg_relation)),
				 errhint("Attach the trigger with payout.attach().")));

	state = PayoutGetTableState(fcinfo, PAYOUT_TRIGGER_HISTORY);
	rel = trigdata->tg_relation;

	memset(&row, 0, sizeof(row));
	row.tbl = state->root;
	row.old_status_null = row.new_status_null = true;
	row.old_resolution_null = row.new_resolution_null = true;

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtuple = trigdata->tg_trigtuple;
		newtuple = trigdata->tg_newtuple;
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		oldtuple = trigdata->tg_trigtuple;
	else
		newtuple = trigdata->tg_trigtuple;

	row.user_id = PayoutChangeUser(rel, oldtuple);

	/*
	 * The deleted half of a move waits for the very next row history sees
	 * in this query: the inserted half, recorded below as the UPDATE it is.
	 */
	if (PayoutTakeMovedRow(state->query, oldtuple == NULL ? newtuple : NULL,
						   state->root, &moved, &matched))
	{
		if (matched)
			was_moved = true;
		else
			AppendMovedDelete(&moved);
	}

	if (oldtuple != NULL)
		ReadStatusColumns(state, rel, oldtuple,
						  &row.old_status, &row.old_status_null,
						  &row.old_resolution, &row.old_resolution_null);
	if (newtuple != NULL)
		ReadStatusColumns(state, rel, newtuple,
						  &row.new_status, &row.new_status_null,
						  &row.new_resolution, &row.new_resolution_null);

	row.key = PayoutRowKeyText(state, rel, newtuple ? newtuple : oldtuple);

	/* The deleted half of a move: its inserted half records the move. */
	if (newtuple == NULL)
	{
		PayoutMovedRow half;

		half.root = state->root;
		half.old_status = row.old_status;
		half.old_status_null = row.old_status_null;
		half.old_resolution = row.old_resolution;
		half.old_resolution_null = row.old_resolution_null;
		half.key = row.key;
		half.user_id = row.user_id;
		if (PayoutStashMovedRow(state->query, rel, oldtuple, &half))
			return PointerGetDatum(NULL);
	}

	if (was_moved)
	{
		row.old_status = moved.old_status;
		row.old_status_null = moved.old_status_null;
		row.old_resolution = moved.old_resolution;
		row.old_resolution_null = moved.old_resolution_null;
		if (moved.key != NULL && row.key != NULL &&
			(VARSIZE_ANY(moved.key) != VARSIZE_ANY(row.key) ||
			 memcmp(moved.key, row.key, VARSIZE_ANY(row.key)) != 0))
			row.old_key = moved.key;
	}
	else if (oldtuple != NULL && newtuple != NULL)
		row.old_key = KeyChanged(state, rel, oldtuple, newtuple, row.key);

	/*
	 * Skip updates that keep status, resolution and key: a move within the
	 * same status, or an update when attached by hand without WHEN.
	 */
	if ((was_moved || (oldtuple != NULL && newtuple != NULL)) &&
		row.old_key == NULL &&
		row.old_status_null == row.new_status_null &&
		row.old_resolution_null == row.new_resolution_null &&
		(row.old_status_null ||
		 DatumGetObjectId(row.old_status) == DatumGetObjectId(row.new_status)) &&
		(row.old_resolution_null ||
		 DatumGetObjectId(row.old_resolution) == DatumGetObjectId(row.new_resolution)))
		return PointerGetDatum(NULL);

	PayoutHistoryAppend(&row);
	return PointerGetDatum(NULL);
}
