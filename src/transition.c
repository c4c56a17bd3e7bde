/*-------------------------------------------------------------------------
 *
 * transition.c
 *	  The trigger that rejects illegal payout status changes.
 *
 * payout.enforce_transition() is attached BEFORE INSERT OR UPDATE FOR EACH
 * ROW to a table with a payout.status column.  A new row must start in a
 * status the graph allows for new rows; an UPDATE that changes the status
 * must follow an edge of the graph.  An UPDATE that leaves the status (and
 * the resolution) alone returns at once, after reading those columns from
 * each version of the row.
 *
 * When the table has a resolution column, the resolution workflow applies
 * as well, each rule reported under its own constraint name:
 *	- a final payout changes neither status nor resolution;
 *	- a payout whose resolution is in the ERROR group and whose status is
 *	  not final is held for moderation: only a moderator may change it (the
 *	  change that sets the ERROR resolution is free; the hold starts after);
 *	- a FATAL_ERROR resolution is final, so the row must be in a final
 *	  status with it;
 *	- PROCESSED and PARTIALLY_PROCESSED need an OK resolution, or none.
 *
 * Trigger arguments, all optional: the status column (default "status"),
 * the resolution column (default "resolution"; an empty string for none),
 * then options: "notify" sends a notification on channel payout_ready when
 * a payout becomes READY or is released from moderation; it names the table
 * the trigger was attached to (the partitioned table, for a partition).  A table without a
 * column named "resolution" simply has no resolution; a resolution column
 * named explicitly must exist.
 *
 * A BEFORE INSERT trigger fires before PostgreSQL knows whether the row
 * will really be inserted, and two kinds of INSERT are not new payouts:
 *	- INSERT ... ON CONFLICT DO UPDATE of an existing payout, which becomes
 *	  an UPDATE that the trigger judges as such.  A proposed row that would
 *	  be illegal as a new payout is let through when a row with its primary
 *	  key already exists; that row is locked (FOR KEY SHARE) so that it
 *	  cannot vanish before the conflict is found.  A plain INSERT of such a
 *	  row then fails on the primary key instead.
 *	- the INSERT half of an UPDATE that moves a row to another partition,
 *	  which comes right after the BEFORE UPDATE trigger on the old partition
 *	  judged the change.  The trigger remembers the last row it let through
 *	  on a partition and lets that same row (same key, same status and
 *	  resolution, same command) into the new partition.
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

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/async.h"
#include "catalog/partition.h"
#include "catalog/pg_am.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "port/pg_bitutils.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/elog.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "payout.h"
#include "status.h"
#include "move.h"
#include "table_cache.h"
#include "transition.h"
#include "transition_cache.h"

#define DEFAULT_STATUS_COLUMN		"status"
#define DEFAULT_RESOLUTION_COLUMN	"resolution"

/* Constraint names reported with each kind of violation. */
#define CONSTRAINT_INITIAL			"payout_initial_status"
#define CONSTRAINT_TRANSITION		"payout_status_transition"
#define CONSTRAINT_NOT_NULL			"payout_status_not_null"
#define CONSTRAINT_FINAL			"payout_final_resolution"
#define CONSTRAINT_HOLD				"payout_moderation_hold"
#define CONSTRAINT_FATAL			"payout_fatal_resolution"
#define CONSTRAINT_PROCESSED		"payout_processed_resolution"

#define NOTIFY_CHANNEL				"payout_ready"

/* No resolution, in a resolution index. */
#define NO_RESOLUTION				(-1)

/* What the trigger knows about its table for the current statement. */
typedef struct EnforceState
{
	Oid			relid;
	AttrNumber	status_attnum;
	AttrNumber	resolution_attnum;	/* InvalidAttrNumber: no resolution */
	bool		notify;			/* option "notify" */
	Oid			table;			/* the table the trigger was attached to */
} EnforceState;

static void CheckTriggerEvent(FunctionCallInfo fcinfo);
static AttrNumber FindEnumColumn(Relation rel, const char *colname,
								 PayoutEnumKind kind, bool missing_ok);
static EnforceState *GetEnforceState(FunctionCallInfo fcinfo);
static char *DescribeRow(Relation rel, HeapTuple tuple);
static char *DescribeStatuses(uint32 statuses);
static void ReportIllegalTransition(Relation rel, HeapTuple tuple,
									AttrNumber attnum, int from, int to);
static void ReportNullStatus(Relation rel, HeapTuple tuple, AttrNumber attnum);
static int	GetResolution(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum);
static bool IsModerator(void);
static void ReportHold(Relation rel, EnforceState *state, HeapTuple tuple,
					   int status, int resolution);
static void CheckResolutionRules(Relation rel, EnforceState *state,
								 HeapTuple tuple, int from, int oldres,
								 int to, int newres);
static void AppendRecordValue(StringInfo buf, const char *value);
static bool LockExistingRow(Relation rel, HeapTuple tuple);
static Oid	GetResolutionOid(HeapTuple tuple, TupleDesc tupdesc,
							 AttrNumber attnum);
static bool InsertIsLegal(EnforceState *state, int to, int newres);
static void NotifyReady(Relation rel, Oid table, HeapTuple tuple, int status);

/* Whether a payout with this status and resolution is held. */
#define IsHeld(status, resolution) \
	((resolution) != NO_RESOLUTION && \
	 PayoutResolutionGroupOf(resolution) == PAYOUT_GROUP_ERROR && \
	 ((status) == PAYOUT_INITIAL || !PayoutStatusIsFinal(status)))

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
				 errhint("Name the payout columns in the trigger arguments; for a table attached with payout.attach(), detach it and attach it again."),
				 errtable(rel)));

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
 * PayoutTriggerColumns
 *		The payout columns a trigger's first two arguments name: the status
 *		column (default "status") and the resolution column (default
 *		"resolution", optional unless named; an empty name for none).
 *		Shared by the enforcement and the history trigger.
 */
void
PayoutTriggerColumns(Relation rel, Trigger *trigger,
					 AttrNumber *status_attnum, AttrNumber *resolution_attnum)
{
	*status_attnum =
		FindEnumColumn(rel,
					   trigger->tgnargs >= 1 ? trigger->tgargs[0] : DEFAULT_STATUS_COLUMN,
					   PAYOUT_ENUM_STATUS, false);
	if (trigger->tgnargs >= 2 && trigger->tgargs[1][0] == '\0')
		*resolution_attnum = InvalidAttrNumber;
	else
		*resolution_attnum =
			FindEnumColumn(rel,
						   trigger->tgnargs >= 2 ? trigger->tgargs[1] : DEFAULT_RESOLUTION_COLUMN,
						   PAYOUT_ENUM_RESOLUTION, trigger->tgnargs < 2);
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
	int			i;

	if (state != NULL && state->relid == RelationGetRelid(rel))
		return state;

	if (state == NULL)
		state = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(EnforceState));

	PayoutTriggerColumns(rel, trigger, &state->status_attnum,
						 &state->resolution_attnum);

	state->notify = false;
	for (i = 2; i < trigger->tgnargs; i++)
	{
		if (strcmp(trigger->tgargs[i], "notify") == 0)
			state->notify = true;
		else
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("trigger \"%s\" on table \"%s\" has an unknown option \"%s\"",
							trigger->tgname, RelationGetRelationName(rel),
							trigger->tgargs[i]),
					 errhint("The arguments are the status column, the resolution column, then options: \"notify\".")));
	}
	state->table = state->notify ? PayoutAttachedTable(rel, trigger) : InvalidOid;
	state->relid = RelationGetRelid(rel);
	fcinfo->flinfo->fn_extra = state;

	PayoutAcceptChanges(NULL);

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
 * GetResolution
 *		The resolution index of a row, or NO_RESOLUTION.
 */
static int
GetResolution(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum)
{
	Datum		value;
	bool		isnull;

	if (attnum == InvalidAttrNumber)
		return NO_RESOLUTION;
	value = heap_getattr(tuple, attnum, tupdesc, &isnull);
	if (isnull)
		return NO_RESOLUTION;
	return PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION, DatumGetObjectId(value));
}

/*
 * IsModerator
 *		Whether the current user may change a payout held for moderation:
 *		a superuser, or a member of the role named by payout.moderator_role
 *		(with its privileges, so a NOINHERIT member must SET ROLE first).
 */
static bool
IsModerator(void)
{
	Oid			roleid;

	if (superuser())
		return true;
	if (payout_moderator_role == NULL || payout_moderator_role[0] == '\0')
		return false;
	roleid = get_role_oid(payout_moderator_role, true);
	return OidIsValid(roleid) && has_privs_of_role(GetUserId(), roleid);
}

/*
 * ReportHold
 *		Raise the error for a change of a held payout by a non-moderator.
 */
static void
ReportHold(Relation rel, EnforceState *state, HeapTuple tuple,
		   int status, int resolution)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("payout is held for moderation"),
			 errdetail("%s has resolution \"%s\" in status \"%s\"; only a moderator may change it.",
					   DescribeRow(rel, tuple), PayoutResolutionLabel(resolution),
					   status == PAYOUT_INITIAL ? "NULL" : PayoutStatusLabel(status)),
			 (payout_moderator_role && payout_moderator_role[0] != '\0') ?
			 errhint("Moderators are the members of role \"%s\" (setting payout.moderator_role). They release a payout with an OK resolution, or end it with a FATAL_ERROR resolution and a final status.",
					 payout_moderator_role) :
			 errhint("Only superusers moderate while payout.moderator_role is empty. They release a payout with an OK resolution, or end it with a FATAL_ERROR resolution and a final status."),
			 errtablecol(rel, state->resolution_attnum),
			 err_generic_string(PG_DIAG_CONSTRAINT_NAME, CONSTRAINT_HOLD)));
}

/*
 * CheckResolutionRules
 *		The rules about the resolution, for a row going from (from, oldres)
 *		to (to, newres) whose status change, if any, the graph allows.
 *		tuple names the row in messages.
 */
static void
CheckResolutionRules(Relation rel, EnforceState *state, HeapTuple tuple,
					 int from, int oldres, int to, int newres)
{
	/* A final payout: the graph stops status changes, this the rest. */
	if (from != PAYOUT_INITIAL && PayoutStatusIsFinal(from) && oldres != newres)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("resolution of a payout in final status \"%s\" cannot change",
						PayoutStatusLabel(from)),
				 errdetail("%s has resolution %s.", DescribeRow(rel, tuple),
						   oldres == NO_RESOLUTION ? "NULL" :
						   psprintf("\"%s\"", PayoutResolutionLabel(oldres))),
				 errtablecol(rel, state->resolution_attnum),
				 err_generic_string(PG_DIAG_CONSTRAINT_NAME, CONSTRAINT_FINAL)));

	if (newres != NO_RESOLUTION &&
		PayoutResolutionGroupOf(newres) == PAYOUT_GROUP_FATAL_ERROR &&
		!PayoutStatusIsFinal(to))
	{
		int			failure = PayoutFailureStatus(from);

		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("fatal resolution \"%s\" requires a final status",
						PayoutResolutionLabel(newres)),
				 errdetail("%s would be in status \"%s\", which is not final.",
						   DescribeRow(rel, tuple), PayoutStatusLabel(to)),
				 failure != PAYOUT_NO_STATUS ?
				 errhint("Set the status to \"%s\" in the same statement.",
						 PayoutStatusLabel(failure)) :
				 errhint("A payout in status \"%s\" cannot fail; see payout.failure_status().",
						 PayoutStatusLabel(from)),
				 errtablecol(rel, state->resolution_attnum),
				 err_generic_string(PG_DIAG_CONSTRAINT_NAME, CONSTRAINT_FATAL)));
	}

	/*
	 * Checked on every change, not only on the way in, so that a processed
	 * payout cannot be put on hold afterwards either.
	 */
	if (newres != NO_RESOLUTION && newres != PAYOUT_RESOLUTION_OK &&
		(to == PAYOUT_STATUS_PROCESSED || to == PAYOUT_STATUS_PARTIALLY_PROCESSED))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("payout status \"%s\" requires resolution \"OK\"",
						PayoutStatusLabel(to)),
				 errdetail("%s would have resolution \"%s\".",
						   DescribeRow(rel, tuple), PayoutResolutionLabel(newres)),
				 from != to ?
				 errhint("Set the resolution to OK, or to NULL, in the same statement.") :
				 errhint("A processed payout keeps an OK resolution, or none."),
				 errtablecol(rel, state->resolution_attnum),
				 err_generic_string(PG_DIAG_CONSTRAINT_NAME, CONSTRAINT_PROCESSED)));
}

/*
 * AppendRecordValue
 *		Append one field the way record_out does: quoted when it is empty or
 *		holds a quote, a backslash, a parenthesis, a comma or white space.
 */
static void
AppendRecordValue(StringInfo buf, const char *value)
{
	const char *p;
	bool		quote = (value[0] == '\0');

	for (p = value; *p && !quote; p++)
		quote = (*p == '"' || *p == '\\' || *p == '(' || *p == ')' ||
				 *p == ',' || isspace((unsigned char) *p));
	if (!quote)
	{
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (p = value; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			appendStringInfoChar(buf, *p);
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '"');
}

/*
 * PayoutRowKey
 *		The row's primary key as text, or NULL for a table without one.
 *
 * A one-column key is its value's text; a composite key is a row literal,
 * as ROW(a, b)::text writes it.  payout.claim() returns keys the same way,
 * so a key from either can be looked up in payout.history.
 */
char *
PayoutRowKey(Relation rel, HeapTuple tuple)
{
	Oid			indexoid = RelationGetPrimaryKeyIndex(rel);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	StringInfoData buf;
	Relation	index;
	int			nkeys;
	int			i;

	if (!OidIsValid(indexoid))
		return NULL;

	initStringInfo(&buf);
	index = index_open(indexoid, AccessShareLock);
	nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	for (i = 0; i < nkeys; i++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[i];
		bool		isnull;
		Datum		value = heap_getattr(tuple, attnum, tupdesc, &isnull);
		Oid			typoutput;
		bool		typisvarlena;
		char	   *text;

		if (isnull)
			continue;			/* a primary key has none; keep it safe */
		getTypeOutputInfo(TupleDescAttr(tupdesc, attnum - 1)->atttypid,
						  &typoutput, &typisvarlena);
		text = OidOutputFunctionCall(typoutput, value);
		if (nkeys == 1)
			appendStringInfoString(&buf, text);
		else
		{
			appendStringInfoChar(&buf, i == 0 ? '(' : ',');
			AppendRecordValue(&buf, text);
		}
	}
	if (nkeys > 1)
		appendStringInfoChar(&buf, ')');
	index_close(index, AccessShareLock);

	return buf.data;
}

/*
 * PayoutAttachedTable
 *		The table the trigger was attached to: the relation itself, or, for
 *		a trigger a partition inherited, the partitioned table whose own
 *		trigger of that name it was cloned from.  History and notifications
 *		name that table, the one a DBA or a processor works with.
 */
Oid
PayoutAttachedTable(Relation rel, Trigger *trigger)
{
	List	   *ancestors;
	ListCell   *lc;
	Oid			result = RelationGetRelid(rel);

	if (!rel->rd_rel->relispartition || !trigger->tgisclone)
		return result;

	ancestors = get_partition_ancestors(RelationGetRelid(rel));
	foreach(lc, ancestors)
	{
		Relation	ancestor = table_open(lfirst_oid(lc), AccessShareLock);
		TriggerDesc *trigdesc = ancestor->trigdesc;
		bool		own = false;
		int			i;

		for (i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
		{
			if (strcmp(trigdesc->triggers[i].tgname, trigger->tgname) == 0)
			{
				result = RelationGetRelid(ancestor);
				own = !trigdesc->triggers[i].tgisclone;
				break;
			}
		}
		table_close(ancestor, AccessShareLock);
		if (own)
			break;
	}
	list_free(ancestors);
	return result;
}

/*
 * NotifyReady
 *		Tell listening processors that a payout has work for them.  NOTIFY
 *		is transactional: it is delivered at commit, and dropped if the
 *		statement or the transaction fails.
 */
static void
NotifyReady(Relation rel, Oid table, HeapTuple tuple, int status)
{
	StringInfoData payload;
	char	   *key;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"table\": ");
	escape_json(&payload,
				quote_qualified_identifier(get_namespace_name(get_rel_namespace(table)),
										   get_rel_name(table)));
	appendStringInfoString(&payload, ", \"key\": ");
	key = PayoutRowKey(rel, tuple);
	if (key)
		escape_json(&payload, key);
	else
		appendStringInfoString(&payload, "null");
	appendStringInfoString(&payload, ", \"status\": ");
	escape_json(&payload, PayoutStatusLabel(status));
	appendStringInfoChar(&payload, '}');

	Async_Notify(NOTIFY_CHANNEL, payload.data);
}

/*
 * InsertIsLegal
 *		Whether a new payout in this status and resolution breaks no rule;
 *		the same rules as the checks that raise the errors, without them.
 */
static bool
InsertIsLegal(EnforceState *state, int to, int newres)
{
	if (!PayoutCanTransition(PAYOUT_INITIAL, to))
		return false;
	if (state->resolution_attnum == InvalidAttrNumber || newres == NO_RESOLUTION)
		return true;
	if (PayoutResolutionGroupOf(newres) == PAYOUT_GROUP_FATAL_ERROR &&
		!PayoutStatusIsFinal(to))
		return false;
	if (newres != PAYOUT_RESOLUTION_OK &&
		(to == PAYOUT_STATUS_PROCESSED || to == PAYOUT_STATUS_PARTIALLY_PROCESSED))
		return false;
	return true;
}

/*
 * GetResolutionOid
 *		The resolution of a row as an enum OID, InvalidOid for none.
 */
static Oid
GetResolutionOid(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum)
{
	Datum		value;
	bool		isnull;

	if (attnum == InvalidAttrNumber)
		return InvalidOid;
	value = heap_getattr(tuple, attnum, tupdesc, &isnull);
	return isnull ? InvalidOid : DatumGetObjectId(value);
}

/*
 * LockExistingRow
 *		Whether a row with the primary key of the proposed row exists; if
 *		so, lock it FOR KEY SHARE, so that it is still there when the INSERT
 *		checks for conflicts.
 *
 * The lookup uses a fresh snapshot.  A row that a concurrent transaction
 * deletes or updates before we lock it counts as missing: the proposed row
 * is then judged as a new payout, which is the safe side.  So does a row
 * that this same command has updated or deleted (a DELETE in a WITH clause
 * of the INSERT): its key is free again by the time the INSERT checks it.
 * A deferrable primary key checks nothing until commit and cannot be the
 * arbiter of an upsert: RelationGetPrimaryKeyIndex() leaves it out, so such
 * a table is treated as one without a primary key.
 */
static bool
LockExistingRow(Relation rel, HeapTuple tuple)
{
	Oid			indexoid = RelationGetPrimaryKeyIndex(rel);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	ScanKeyData skey[INDEX_MAX_KEYS];
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	bool		found = false;
	int			nkeys;
	int			i;

	if (!OidIsValid(indexoid))
		return false;

	index = index_open(indexoid, AccessShareLock);
	nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	if (index->rd_rel->relam != BTREE_AM_OID)
	{
		index_close(index, AccessShareLock);
		return false;
	}
	for (i = 0; i < nkeys; i++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[i];
		bool		isnull;
		Datum		value = heap_getattr(tuple, attnum, tupdesc, &isnull);
		Oid			opcintype = index->rd_opcintype[i];
		Oid			eqop;

		eqop = get_opfamily_member(index->rd_opfamily[i], opcintype, opcintype,
								   BTEqualStrategyNumber);
		if (isnull || !OidIsValid(eqop))
		{
			index_close(index, AccessShareLock);
			return false;
		}
		ScanKeyEntryInitialize(&skey[i], 0, i + 1, BTEqualStrategyNumber,
							   opcintype, index->rd_indcollation[i],
							   get_opcode(eqop), value);
	}

	snapshot = RegisterSnapshot(GetLatestSnapshot());
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, index, snapshot, nkeys, 0);
	index_rescan(scan, skey, nkeys, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TM_FailureData tmfd;
		TM_Result	result;

		result = table_tuple_lock(rel, &slot->tts_tid, snapshot, slot,
								  GetCurrentCommandId(false), LockTupleKeyShare,
								  LockWaitBlock, 0, &tmfd);
		found = (result == TM_Ok);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);

	return found;
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
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	oldtuple = NULL;
	HeapTuple	newtuple;
	Datum		newvalue;
	bool		newnull;
	int			from;
	int			to;
	int			oldres = NO_RESOLUTION;
	int			newres;

	CheckTriggerEvent(fcinfo);
	trigdata = (TriggerData *) fcinfo->context;
	state = GetEnforceState(fcinfo);
	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtuple = trigdata->tg_trigtuple;
		from = PAYOUT_INITIAL;
		newvalue = heap_getattr(newtuple, state->status_attnum, tupdesc, &newnull);

		/* the INSERT half of a cross-partition UPDATE: judged already */
		if (!newnull && rel->rd_rel->relispartition &&
			PayoutIsMovedRow(rel, newtuple, DatumGetObjectId(newvalue),
							 GetResolutionOid(newtuple, tupdesc, state->resolution_attnum)))
			return PointerGetDatum(newtuple);
	}
	else
	{
		Datum		oldvalue;
		bool		oldnull;

		oldtuple = trigdata->tg_trigtuple;
		newtuple = trigdata->tg_newtuple;
		oldvalue = heap_getattr(oldtuple, state->status_attnum, tupdesc, &oldnull);
		newvalue = heap_getattr(newtuple, state->status_attnum, tupdesc, &newnull);

		/*
		 * The common case: the status is left alone (or set to itself), and
		 * so is the resolution.
		 */
		if (!oldnull && !newnull &&
			DatumGetObjectId(oldvalue) == DatumGetObjectId(newvalue))
		{
			Datum		oldres_value;
			Datum		newres_value;
			bool		oldres_null;
			bool		newres_null;

			if (state->resolution_attnum == InvalidAttrNumber)
			{
				if (rel->rd_rel->relispartition)
					PayoutRememberUpdate(rel, newtuple,
										 DatumGetObjectId(newvalue), InvalidOid,
										 DatumGetObjectId(newvalue), InvalidOid);
				return PointerGetDatum(newtuple);
			}
			oldres_value = heap_getattr(oldtuple, state->resolution_attnum, tupdesc, &oldres_null);
			newres_value = heap_getattr(newtuple, state->resolution_attnum, tupdesc, &newres_null);
			if (oldres_null ? newres_null :
				(!newres_null &&
				 DatumGetObjectId(oldres_value) == DatumGetObjectId(newres_value)))
			{
				if (rel->rd_rel->relispartition)
				{
					Oid			res = newres_null ? InvalidOid :
						DatumGetObjectId(newres_value);

					PayoutRememberUpdate(rel, newtuple,
										 DatumGetObjectId(newvalue), res,
										 DatumGetObjectId(newvalue), res);
				}
				return PointerGetDatum(newtuple);
			}
		}

		/*
		 * A row stored before the trigger was attached may have no status;
		 * giving it one is judged like a new row.
		 */
		from = oldnull ? PAYOUT_INITIAL :
			PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(oldvalue));
		oldres = GetResolution(oldtuple, tupdesc, state->resolution_attnum);
	}

	if (newnull)
		ReportNullStatus(rel, newtuple, state->status_attnum);
	to = PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(newvalue));
	newres = GetResolution(newtuple, tupdesc, state->resolution_attnum);

	/*
	 * A proposed row that would be illegal as a new payout, but whose key
	 * exists: an upsert that will become an UPDATE (judged then), or a
	 * duplicate that the primary key will reject.
	 */
	if (oldtuple == NULL && !InsertIsLegal(state, to, newres) &&
		LockExistingRow(rel, newtuple))
		return PointerGetDatum(newtuple);

	/* A held payout is not even judged, unless a moderator changes it. */
	if (oldtuple != NULL && IsHeld(from, oldres) && !IsModerator())
		ReportHold(rel, state, oldtuple, from, oldres);

	if (from != to && !PayoutCanTransition(from, to))
		ReportIllegalTransition(rel, oldtuple ? oldtuple : newtuple,
								state->status_attnum, from, to);

	if (state->resolution_attnum != InvalidAttrNumber)
		CheckResolutionRules(rel, state, oldtuple ? oldtuple : newtuple,
							 from, oldres, to, newres);

	if (oldtuple != NULL && rel->rd_rel->relispartition)
		PayoutRememberUpdate(rel, newtuple,
							 from == PAYOUT_INITIAL ? InvalidOid :
							 PayoutEnumOid(PAYOUT_ENUM_STATUS, from),
							 GetResolutionOid(oldtuple, tupdesc, state->resolution_attnum),
							 DatumGetObjectId(newvalue),
							 GetResolutionOid(newtuple, tupdesc, state->resolution_attnum));

	/* Work for a processor: a payout that became READY or was released. */
	if (state->notify && !PayoutStatusIsFinal(to) && !IsHeld(to, newres) &&
		((to == PAYOUT_STATUS_READY && from != to) ||
		 (oldtuple != NULL && IsHeld(from, oldres))))
		NotifyReady(rel, state->table, newtuple, to);

	return PointerGetDatum(newtuple);
}
