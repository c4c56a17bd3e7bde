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
 * the owner of payout.history, the way foreign-key triggers run their
 * queries as the owner of the referenced table; current_user is taken
 * here, when the change is made, so the row names whoever made it.
 *
 * A DELETE is recorded with a NULL new_status.  The INSERT half of an
 * UPDATE that moves a row to another partition is recorded as the UPDATE
 * it is, once move.c has proved it one; the DELETE half, which PostgreSQL
 * marks as moved, is not recorded.
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
#include "payout.h"
#include "rules.h"
#include "status.h"
#include "table_state.h"

/*
 * Role names as text, looked up once per role rather than for every row,
 * until pg_authid changes: two entries, for the current and the session
 * user.
 */
typedef struct RoleName
{
	Oid			role;
	text	   *name;
} RoleName;

static RoleName role_names[2];
static int	role_names_next = 0;
static bool role_names_watched = false;

static void
ForgetRoleNames(Datum arg, int cacheid, uint32 hashvalue)
{
	int			i;

	for (i = 0; i < lengthof(role_names); i++)
	{
		if (role_names[i].name != NULL)
			pfree(role_names[i].name);
		role_names[i].role = InvalidOid;
		role_names[i].name = NULL;
	}
}

static Datum
RoleNameText(Oid role)
{
	RoleName   *entry;
	char	   *name;
	MemoryContext oldcontext;
	int			i;

	if (!role_names_watched)
	{
		CacheRegisterSyscacheCallback(AUTHOID, ForgetRoleNames, (Datum) 0);
		role_names_watched = true;
	}
	for (i = 0; i < lengthof(role_names); i++)
		if (role_names[i].name != NULL && role_names[i].role == role)
			return PointerGetDatum(role_names[i].name);

	name = GetUserNameFromId(role, false);
	entry = &role_names[role_names_next];
	role_names_next = (role_names_next + 1) % lengthof(role_names);
	if (entry->name != NULL)
		pfree(entry->name);
	entry->name = NULL;			/* until the copy is made */
	oldcontext = MemoryContextSwitchTo(CacheMemoryContext);
	entry->name = cstring_to_text(name);
	MemoryContextSwitchTo(oldcontext);
	entry->role = role;
	return PointerGetDatum(entry->name);
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
	TupleDesc	tupdesc;
	HeapTuple	oldtuple = NULL;
	HeapTuple	newtuple = NULL;
	HeapTuple	keytuple;
	Datum		values[HISTORY_NCOLUMNS];
	char		nulls[HISTORY_NCOLUMNS];
	bool		isnull;
	const char *appname;
	bool		isnulls[HISTORY_NCOLUMNS];
	int			from;
	int			i;
	int			oldres;

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
	tupdesc = RelationGetDescr(rel);

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtuple = trigdata->tg_trigtuple;
		newtuple = trigdata->tg_newtuple;
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		oldtuple = trigdata->tg_trigtuple;
		/* the DELETE half of a move: its INSERT half records the move */
		if (HeapTupleHeaderIndicatesMovedPartitions(oldtuple->t_data))
			return PointerGetDatum(NULL);
	}
	else
		newtuple = trigdata->tg_trigtuple;

	memset(nulls, ' ', sizeof(nulls));
	nulls[2] = nulls[3] = nulls[4] = nulls[5] = 'n';
	/* actor and old_key: not recorded yet */
	nulls[12] = nulls[13] = 'n';

	if (oldtuple != NULL)
	{
		values[2] = heap_getattr(oldtuple, state->status_attnum, tupdesc, &isnull);
		nulls[2] = isnull ? 'n' : ' ';
		if (state->resolution_attnum != InvalidAttrNumber)
		{
			values[4] = heap_getattr(oldtuple, state->resolution_attnum, tupdesc, &isnull);
			nulls[4] = isnull ? 'n' : ' ';
		}
	}
	if (newtuple != NULL)
	{
		values[3] = heap_getattr(newtuple, state->status_attnum, tupdesc, &isnull);
		nulls[3] = isnull ? 'n' : ' ';
		if (state->resolution_attnum != InvalidAttrNumber)
		{
			values[5] = heap_getattr(newtuple, state->resolution_attnum, tupdesc, &isnull);
			nulls[5] = isnull ? 'n' : ' ';
		}
	}

	/* The INSERT half of a move that move.c proved records the UPDATE. */
	if (oldtuple == NULL && rel->rd_rel->relispartition &&
		PayoutTakeMovedRow(state, rel, newtuple, &from, &oldres))
	{
		if (from != PAYOUT_INITIAL)
		{
			values[2] = ObjectIdGetDatum(PayoutEnumOid(PAYOUT_ENUM_STATUS, from));
			nulls[2] = ' ';
		}
		if (oldres != PAYOUT_NO_RESOLUTION)
		{
			values[4] = ObjectIdGetDatum(PayoutEnumOid(PAYOUT_ENUM_RESOLUTION, oldres));
			nulls[4] = ' ';
		}
		oldtuple = newtuple;	/* recorded as an UPDATE */
	}

	/*
	 * Skip updates that keep both status and resolution: a move within the
	 * same status, or an update when attached by hand without WHEN.
	 */
	if (oldtuple != NULL && newtuple != NULL &&
		nulls[2] == nulls[3] && nulls[4] == nulls[5] &&
		(nulls[2] == 'n' || DatumGetObjectId(values[2]) == DatumGetObjectId(values[3])) &&
		(nulls[4] == 'n' || DatumGetObjectId(values[4]) == DatumGetObjectId(values[5])))
		return PointerGetDatum(NULL);

	keytuple = newtuple ? newtuple : oldtuple;
	appname = application_name;

	values[0] = ObjectIdGetDatum(state->root);
	values[1] = PointerGetDatum(PayoutRowKeyText(state, rel, keytuple));
	values[6] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[7] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[8] = RoleNameText(GetUserId());
	values[9] = RoleNameText(GetSessionUserId());
	values[10] = appname ? CStringGetTextDatum(appname) : (Datum) 0;
	if (appname == NULL)
		nulls[10] = 'n';
	values[11] = FullTransactionIdGetDatum(GetTopFullTransactionId());

	for (i = 0; i < HISTORY_NCOLUMNS; i++)
		isnulls[i] = (nulls[i] == 'n');
	PayoutHistoryAppend(values, isnulls);

	return PointerGetDatum(NULL);
}
