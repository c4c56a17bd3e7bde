/*-------------------------------------------------------------------------
 *
 * transition.c
 *	  The trigger that rejects illegal payout status changes.
 *
 * payout.enforce_transition() is attached BEFORE INSERT OR UPDATE FOR EACH
 * ROW to a table with a payout.status column.  A new row must start in a
 * status the graph allows for new rows; an UPDATE that changes the status
 * must follow an edge of the graph.  An UPDATE that leaves the status alone
 * returns at once, after reading one column from each version of the row.
 *
 * Trigger arguments: the status column (default "status") and the
 * resolution column (default "resolution").  A table without a column
 * named "resolution" simply has no resolution; a resolution column named
 * explicitly must exist.
 *
 * Everything that depends only on the table (column numbers and types) is
 * worked out at the first row of each statement and kept in fn_extra,
 * which lives as long as the statement: the executor gives each trigger of
 * each table (each partition, too) its own FmgrInfo.  The per-row path does
 * not allocate.
 *
 * src/transition.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "status.h"
#include "transition_cache.h"

#define DEFAULT_STATUS_COLUMN		"status"
#define DEFAULT_RESOLUTION_COLUMN	"resolution"

/* Constraint names reported with each kind of violation. */
#define CONSTRAINT_INITIAL			"payout_initial_status"
#define CONSTRAINT_TRANSITION		"payout_status_transition"
#define CONSTRAINT_NOT_NULL			"payout_status_not_null"

/* What the trigger knows about its table for the current statement. */
typedef struct EnforceState
{
	Oid			relid;
	AttrNumber	status_attnum;
	AttrNumber	resolution_attnum;	/* InvalidAttrNumber: no resolution */
} EnforceState;

static void CheckTriggerEvent(FunctionCallInfo fcinfo);
static EnforceState *GetEnforceState(FunctionCallInfo fcinfo);
static AttrNumber FindEnumColumn(Relation rel, const char *colname,
								 PayoutEnumKind kind, bool missing_ok);
static char *DescribeRow(Relation rel, HeapTuple tuple);
static char *DescribeStatuses(uint32 statuses);
static void ReportIllegalTransition(Relation rel, HeapTuple tuple,
									AttrNumber attnum, int from, int to);
static void ReportNullStatus(Relation rel, HeapTuple tuple, AttrNumber attnum);

/*
 * CheckTriggerEvent
 *		Reject every way of firing the function other than BEFORE INSERT OR
 *		UPDATE FOR EACH ROW, before touching the trigger data.
 */
static void
CheckTriggerEvent(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *problem = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"payout.enforce_transition\" was not called by the trigger manager"),
				 errhint("Attach it to a table with payout.attach().")));

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		problem = "It was fired AFTER or INSTEAD OF the event.";
	else if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		problem = "It was fired FOR EACH STATEMENT.";
	else if (!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
			 !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		problem = "It was fired by DELETE.";

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must be fired BEFORE INSERT OR UPDATE FOR EACH ROW",
						trigdata->tg_trigger->tgname,
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail_internal("%s", problem),
				 errhint("Attach the trigger with payout.attach().")));
}

/*
 * FindEnumColumn
 *		Attribute number of a column that must be of one of our enum types
 *		(or a domain over it).
 */
static AttrNumber
FindEnumColumn(Relation rel, const char *colname, PayoutEnumKind kind,
			   bool missing_ok)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			attnum = SPI_fnumber(tupdesc, colname);
	Oid			typid = PayoutEnumTypeOid(kind);
	Oid			coltype;

	if (attnum == SPI_ERROR_NOATTRIBUTE && missing_ok)
		return InvalidAttrNumber;
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						colname, RelationGetRelationName(rel)),
				 errhint("Name the payout columns in the trigger arguments, or with payout.attach().")));

	coltype = getBaseType(TupleDescAttr(tupdesc, attnum - 1)->atttypid);
	if (coltype != typid)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of relation \"%s\" must be of type %s",
						colname, RelationGetRelationName(rel),
						format_type_be_qualified(typid)),
				 errdetail("It is of type %s.",
						   format_type_be(TupleDescAttr(tupdesc, attnum - 1)->atttypid)),
				 errtablecol(rel, attnum)));

	return (AttrNumber) attnum;
}

/*
 * GetEnforceState
 *		The trigger's view of its table, worked out at the first row of each
 *		statement.
 *
 * That first row is also where the statement picks up graph edits that
 * other sessions committed since this transaction last looked.
 */
static EnforceState *
GetEnforceState(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger = trigdata->tg_trigger;
	Relation	rel = trigdata->tg_relation;
	EnforceState *state = (EnforceState *) fcinfo->flinfo->fn_extra;

	if (state != NULL && state->relid == RelationGetRelid(rel))
		return state;

	if (trigger->tgnargs > 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" has %d arguments, but payout.enforce_transition takes at most 2",
						trigger->tgname, RelationGetRelationName(rel),
						trigger->tgnargs),
				 errhint("The arguments are the status column and the resolution column.")));

	if (state == NULL)
		state = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(EnforceState));

	state->status_attnum =
		FindEnumColumn(rel,
					   trigger->tgnargs >= 1 ? trigger->tgargs[0] : DEFAULT_STATUS_COLUMN,
					   PAYOUT_ENUM_STATUS, false);
	state->resolution_attnum =
		FindEnumColumn(rel,
					   trigger->tgnargs >= 2 ? trigger->tgargs[1] : DEFAULT_RESOLUTION_COLUMN,
					   PAYOUT_ENUM_RESOLUTION, trigger->tgnargs < 2);
	state->relid = RelationGetRelid(rel);
	fcinfo->flinfo->fn_extra = state;

	PayoutAcceptGraphChanges();

	return state;
}

/*
 * DescribeRow
 *		Name the row for an error detail: its primary key, as unique
 *		violations do, when the table has one and the user may see it.
 */
static char *
DescribeRow(Relation rel, HeapTuple tuple)
{
	Oid			indexoid = RelationGetPrimaryKeyIndex(rel);
	char	   *desc = NULL;

	if (OidIsValid(indexoid))
	{
		Relation	index = index_open(indexoid, AccessShareLock);
		int			nkeys = IndexRelationGetNumberOfKeyAttributes(index);
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];
		int			i;

		for (i = 0; i < nkeys; i++)
			values[i] = heap_getattr(tuple, index->rd_index->indkey.values[i],
									 RelationGetDescr(rel), &isnull[i]);
		desc = BuildIndexValueDescription(index, values, isnull);
		index_close(index, AccessShareLock);
	}

	return desc ? psprintf("Key %s", desc) : pstrdup("The row");
}

/*
 * DescribeStatuses
 *		"A", "A or B", "A, B or C" for a bitmask of statuses.
 */
static char *
DescribeStatuses(uint32 statuses)
{
	StringInfoData buf;
	int			remaining = pg_popcount32(statuses);
	int			status;

	initStringInfo(&buf);
	for (status = 0; status < PAYOUT_NUM_STATUSES; status++)
	{
		if (!(statuses & ((uint32) 1 << status)))
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, remaining == 1 ? " or " : ", ");
		appendStringInfo(&buf, "\"%s\"", PayoutStatusLabel(status));
		remaining--;
	}
	return buf.data;
}

/*
 * ReportIllegalTransition
 *		Raise the check_violation for a status change the graph does not
 *		allow (from is PAYOUT_INITIAL for a new row).
 */
static void
ReportIllegalTransition(Relation rel, HeapTuple tuple, AttrNumber attnum,
						int from, int to)
{
	char	   *row = DescribeRow(rel, tuple);
	uint32		allowed = PayoutNextStatuses(from);

	if (from == PAYOUT_INITIAL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("illegal initial payout status \"%s\"",
						PayoutStatusLabel(to)),
				 allowed ?
				 errdetail("%s: a new payout may only start in %s.",
						   row, DescribeStatuses(allowed)) :
				 errdetail("%s: the transition graph lets no new payout start.", row),
				 errhint("Allowed transitions are the rows of table payout.transition."),
				 errtablecol(rel, attnum),
				 err_generic_string(PG_DIAG_CONSTRAINT_NAME, CONSTRAINT_INITIAL)));

	ereport(ERROR,
			(errcode(ERRCODE_CHECK_VIOLATION),
			 errmsg("illegal payout status transition from \"%s\" to \"%s\"",
					PayoutStatusLabel(from), PayoutStatusLabel(to)),
			 PayoutStatusIsFinal(from) ?
			 errdetail("%s is in status \"%s\", which is final.",
					   row, PayoutStatusLabel(from)) :
			 allowed ?
			 errdetail("%s is in status \"%s\", which may only change to %s.",
					   row, PayoutStatusLabel(from), DescribeStatuses(allowed)) :
			 errdetail("%s is in status \"%s\", which the transition graph lets change to nothing.",
					   row, PayoutStatusLabel(from)),
			 errhint("Allowed transitions are the rows of table payout.transition."),
			 errtablecol(rel, attnum),
			 err_generic_string(PG_DIAG_CONSTRAINT_NAME, CONSTRAINT_TRANSITION)));
}

/*
 * ReportNullStatus
 *		A payout always has a status, whatever the column's NOT NULL says.
 */
static void
ReportNullStatus(Relation rel, HeapTuple tuple, AttrNumber attnum)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("payout status in column \"%s\" of relation \"%s\" must not be null",
					NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname),
					RelationGetRelationName(rel)),
			 errdetail("%s has a null status.", DescribeRow(rel, tuple)),
			 errtablecol(rel, attnum),
			 err_generic_string(PG_DIAG_CONSTRAINT_NAME, CONSTRAINT_NOT_NULL)));
}

/*
 * payout.enforce_transition(): BEFORE INSERT OR UPDATE FOR EACH ROW trigger.
 */
PG_FUNCTION_INFO_V1(payout_enforce_transition);
Datum
payout_enforce_transition(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	EnforceState *state;
	TupleDesc	tupdesc;
	HeapTuple	newtuple;
	Datum		newvalue;
	bool		newnull;
	int			from;
	int			to;

	CheckTriggerEvent(fcinfo);
	trigdata = (TriggerData *) fcinfo->context;
	state = GetEnforceState(fcinfo);
	tupdesc = RelationGetDescr(trigdata->tg_relation);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtuple = trigdata->tg_trigtuple;
		from = PAYOUT_INITIAL;
	}
	else
	{
		HeapTuple	oldtuple = trigdata->tg_trigtuple;
		Datum		oldvalue;
		bool		oldnull;

		newtuple = trigdata->tg_newtuple;
		oldvalue = heap_getattr(oldtuple, state->status_attnum, tupdesc, &oldnull);
		newvalue = heap_getattr(newtuple, state->status_attnum, tupdesc, &newnull);

		/* The common case: the status is left alone (or set to itself). */
		if (!oldnull && !newnull &&
			DatumGetObjectId(oldvalue) == DatumGetObjectId(newvalue))
			return PointerGetDatum(newtuple);

		/*
		 * A row stored before the trigger was attached may have no status;
		 * giving it one is judged like a new row.
		 */
		from = oldnull ? PAYOUT_INITIAL :
			PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(oldvalue));
	}

	newvalue = heap_getattr(newtuple, state->status_attnum, tupdesc, &newnull);
	if (newnull)
		ReportNullStatus(trigdata->tg_relation, newtuple, state->status_attnum);
	to = PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(newvalue));

	if (!PayoutCanTransition(from, to))
		ReportIllegalTransition(trigdata->tg_relation,
								TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ?
								newtuple : trigdata->tg_trigtuple,
								state->status_attnum, from, to);

	return PointerGetDatum(newtuple);
}
