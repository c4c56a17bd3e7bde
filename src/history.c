/*-------------------------------------------------------------------------
 *
 * history.c
 *	  payout.record_history(): the audit trail of every status change.
 *
 * An AFTER ROW trigger, so that only rows that were really stored are
 * recorded, and in the same transaction, so that a rollback leaves no
 * trace.  Each change becomes one row of payout.history, inserted through a
 * plan prepared once per backend: no parse or plan per row.
 *
 * Writers of payout tables get no privilege on payout.history, which is
 * append-only for everyone but its owner.  The insert therefore runs as
 * the table's owner, the way foreign-key triggers run their queries as the
 * owner of the referenced table; current_user is taken before the switch,
 * so the row names whoever made the change.
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
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "move.h"
#include "payout.h"
#include "rules.h"
#include "status.h"
#include "table_state.h"

#define HISTORY_NARGS 12

static const char *const history_insert =
"INSERT INTO payout.history"
" (tbl, key, old_status, new_status, old_resolution, new_resolution,"
"  xact_time, clock_time, user_name, session_user_name, application_name, xid)"
" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

/* The prepared INSERT, and the enum types it was prepared for. */
static SPIPlanPtr history_plan = NULL;
static Oid	plan_status_type = InvalidOid;
static Oid	plan_resolution_type = InvalidOid;

static SPIPlanPtr GetHistoryPlan(void);

/*
 * GetHistoryPlan
 *		The prepared INSERT, prepared again if the enum types were dropped
 *		and created again (DROP and CREATE EXTENSION).  Call inside SPI.
 */
static SPIPlanPtr
GetHistoryPlan(void)
{
	Oid			status_type = PayoutEnumTypeOid(PAYOUT_ENUM_STATUS);
	Oid			resolution_type = PayoutEnumTypeOid(PAYOUT_ENUM_RESOLUTION);
	Oid			argtypes[HISTORY_NARGS];
	SPIPlanPtr	plan;

	if (history_plan != NULL &&
		plan_status_type == status_type &&
		plan_resolution_type == resolution_type)
		return history_plan;

	argtypes[0] = REGCLASSOID;
	argtypes[1] = TEXTOID;
	argtypes[2] = status_type;
	argtypes[3] = status_type;
	argtypes[4] = resolution_type;
	argtypes[5] = resolution_type;
	argtypes[6] = TIMESTAMPTZOID;
	argtypes[7] = TIMESTAMPTZOID;
	argtypes[8] = TEXTOID;
	argtypes[9] = TEXTOID;
	argtypes[10] = TEXTOID;
	argtypes[11] = XID8OID;

	plan = SPI_prepare(history_insert, HISTORY_NARGS, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for payout history: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for payout history");

	if (history_plan != NULL)
		SPI_freeplan(history_plan);
	history_plan = plan;
	plan_status_type = status_type;
	plan_resolution_type = resolution_type;
	return plan;
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
	Datum		values[HISTORY_NARGS];
	char		nulls[HISTORY_NARGS];
	bool		isnull;
	const char *appname;
	Oid			save_userid;
	int			save_sec_context;
	int			ret;
	int			from;
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
	appname = GetConfigOption("application_name", true, false);

	values[0] = ObjectIdGetDatum(state->root);
	values[1] = CStringGetTextDatum(PayoutRowKey(state, rel, keytuple));
	values[6] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	values[7] = TimestampTzGetDatum(GetCurrentTimestamp());
	values[8] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	values[9] = CStringGetTextDatum(GetUserNameFromId(GetSessionUserId(), false));
	values[10] = appname ? CStringGetTextDatum(appname) : (Datum) 0;
	if (appname == NULL)
		nulls[10] = 'n';
	values[11] = FullTransactionIdGetDatum(GetTopFullTransactionId());

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(state->history_owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_plan(GetHistoryPlan(), values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record payout history: %s",
			 SPI_result_code_string(ret));
	SPI_finish();

	SetUserIdAndSecContext(save_userid, save_sec_context);

	return PointerGetDatum(NULL);
}
