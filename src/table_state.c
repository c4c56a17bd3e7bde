/*-------------------------------------------------------------------------
 *
 * table_state.c
 *	  What the payout triggers know about the table they fire on.
 *
 * The enforcement and the history trigger work out the same facts about
 * their relation at the first row of each statement: the payout columns
 * their arguments name, the options, the primary key and how to print it,
 * the table they were attached to.  The executor gives each trigger of
 * each relation (each partition, too) its own FmgrInfo for the life of the
 * query, so the state lives in fn_extra, and the per-row path looks
 * nothing up.
 *
 * Building the state is also where each trigger checks that it may run as
 * it is attached:
 *	- the enforcement trigger must be the last BEFORE ROW trigger of its
 *	  relation that can change a row, so that the row it judges is the row
 *	  that is stored;
 *	- the history trigger writes payout.history with the rights of its
 *	  owner, so it runs only on a permanent table whose owner may execute
 *	  payout.record_history(): a grant the DBA makes (superusers may).
 *
 * src/table_state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "replication/logicalworker.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "citus.h"
#include "compat.h"
#include "payout.h"
#include "query_state.h"
#include "status.h"
#include "table_cache.h"
#include "table_state.h"
#include "transition_cache.h"

#define DEFAULT_STATUS_COLUMN		"status"
#define DEFAULT_RESOLUTION_COLUMN	"resolution"
#define AUTOPROCESS_OPTION			"autoprocess="

static AttrNumber FindTypedColumn(Relation rel, const char *colname,
								  Oid typid, bool missing_ok);
static void ParseOptions(Relation rel, Trigger *trigger,
						 PayoutTriggerKind kind, PayoutTableState *state);
static void CheckLastBeforeTrigger(Relation rel, Trigger *trigger);
static void CheckHistoryAllowed(Relation rel, Trigger *trigger);
static void ReadPrimaryKey(Relation rel, PayoutTriggerKind kind,
						   PayoutTableState *state);
static Oid	HistoryFunctionOid(void);
static bool TriggerFiresNow(char tgenabled);
static uint32 HistoryEvents(Relation rel);
static bool MayReadKey(PayoutTableState *state, Relation rel);

/*
 * FindTypedColumn
 *		Attribute number of a column that must be of type typid (or a domain
 *		over it): one of our enum types, or boolean for autoprocess.
 */
static AttrNumber
FindTypedColumn(Relation rel, const char *colname, Oid typid, bool missing_ok)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			attnum = SPI_fnumber(tupdesc, colname);
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
 * ParseOptions
 *		The arguments after the two columns: "notify", "delete_unfinished"
 *		and "autoprocess=<column>" for the enforcement trigger, none for
 *		history.
 */
static void
ParseOptions(Relation rel, Trigger *trigger, PayoutTriggerKind kind,
			 PayoutTableState *state)
{
	int			i;

	state->notify = false;
	state->delete_unfinished = false;
	state->autoprocess_attnum = InvalidAttrNumber;
	for (i = 2; i < trigger->tgnargs; i++)
	{
		const char *option = trigger->tgargs[i];

		if (kind == PAYOUT_TRIGGER_HISTORY)
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("trigger \"%s\" on table \"%s\" has %d arguments, but payout.record_history takes at most 2",
							trigger->tgname, RelationGetRelationName(rel),
							trigger->tgnargs),
					 errhint("Attach the trigger with payout.attach().")));
		if (strcmp(option, "notify") == 0)
			state->notify = true;
		else if (strcmp(option, "delete_unfinished") == 0)
			state->delete_unfinished = true;
		else if (strncmp(option, AUTOPROCESS_OPTION, strlen(AUTOPROCESS_OPTION)) == 0)
			state->autoprocess_attnum =
				FindTypedColumn(rel, option + strlen(AUTOPROCESS_OPTION),
								BOOLOID, false);
		else
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("trigger \"%s\" on table \"%s\" has an unknown option \"%s\"",
							trigger->tgname, RelationGetRelationName(rel),
							option),
					 errhint("The arguments are the status column, the resolution column, then options: \"notify\", \"delete_unfinished\", \"autoprocess=<column>\".")));
	}
}

/*
 * CheckLastBeforeTrigger
 *		Refuse to judge rows while a BEFORE ROW trigger fires after the
 *		enforcement trigger: it could change the status after the check.
 *
 * BEFORE ROW triggers of a relation fire in the order of their names,
 * which is the order of rel->trigdesc.  A disabled trigger does not count.
 * The event trigger payout.check_ddl() refuses to create such a trigger;
 * this catches the rest (one made before attach, or while event triggers
 * were off), once per statement.
 */
static void
CheckLastBeforeTrigger(Relation rel, Trigger *trigger)
{
	TriggerDesc *trigdesc = rel->trigdesc;
	bool		after_ours = false;
	int			i;

	for (i = 0; trigdesc != NULL && i < trigdesc->numtriggers; i++)
	{
		Trigger    *other = &trigdesc->triggers[i];

		if (other->tgoid == trigger->tgoid)
		{
			after_ours = true;
			continue;
		}
		if (!after_ours || other->tgenabled == TRIGGER_DISABLED ||
			!TRIGGER_FOR_ROW(other->tgtype) ||
			!TRIGGER_FOR_BEFORE(other->tgtype) ||
			!(TRIGGER_FOR_INSERT(other->tgtype) ||
			  TRIGGER_FOR_UPDATE(other->tgtype)))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("trigger \"%s\" on table \"%s\" fires after the payout trigger \"%s\"",
						other->tgname, RelationGetRelationName(rel),
						trigger->tgname),
				 errdetail("A BEFORE ROW trigger that fires after the payout check could change the status it judged."),
				 errhint("Rename the trigger so that its name sorts before \"%s\", or disable it.",
						 trigger->tgname),
				 errtable(rel)));
	}
}

/*
 * HistoryFunctionOid
 *		The OID of payout.record_history(), found by name in our schema.
 */
static Oid
HistoryFunctionOid(void)
{
	List	   *name = list_make2(makeString(PAYOUT_SCHEMA),
								  makeString("record_history"));

	return LookupFuncName(name, 0, NULL, true);
}

/*
 * TriggerFiresNow
 *		Whether a trigger enabled so fires under the session's
 *		session_replication_role (a logical replication apply worker runs
 *		as a replica).
 */
static bool
TriggerFiresNow(char tgenabled)
{
	if (tgenabled == TRIGGER_DISABLED)
		return false;
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return tgenabled == TRIGGER_FIRES_ON_REPLICA ||
			tgenabled == TRIGGER_FIRES_ALWAYS;
	return tgenabled == TRIGGER_FIRES_ON_ORIGIN ||
		tgenabled == TRIGGER_FIRES_ALWAYS;
}

/*
 * HistoryEvents
 *		Which changes of rel its history triggers record now: a move
 *		between partitions must reach history on both sides or on neither.
 */
static uint32
HistoryEvents(Relation rel)
{
	Oid			history_fn;
	TriggerDesc *trigdesc;
	uint32		events = 0;
	int			i;

	/*
	 * Look the function up before reading rel->trigdesc: the lookup may
	 * accept invalidation messages, and a rebuild of rel's relcache entry
	 * frees the trigdesc it had.  Nothing in the loop reads the catalogs.
	 */
	history_fn = HistoryFunctionOid();
	trigdesc = rel->trigdesc;
	if (trigdesc == NULL)
		return 0;
	for (i = 0; i < trigdesc->numtriggers; i++)
	{
		Trigger    *trigger = &trigdesc->triggers[i];

		if (trigger->tgfoid != history_fn || !TriggerFiresNow(trigger->tgenabled) ||
			!TRIGGER_FOR_ROW(trigger->tgtype) || TRIGGER_FOR_BEFORE(trigger->tgtype))
			continue;
		if (TRIGGER_FOR_INSERT(trigger->tgtype))
			events |= PAYOUT_HISTORY_INSERT;
		if (TRIGGER_FOR_UPDATE(trigger->tgtype))
			events |= PAYOUT_HISTORY_UPDATE;
		if (TRIGGER_FOR_DELETE(trigger->tgtype))
			events |= PAYOUT_HISTORY_DELETE;
	}
	return events;
}

/*
 * CheckHistoryAllowed
 *		History is written only for tables a DBA approved: permanent tables
 *		whose owner may execute payout.record_history().
 */
static void
CheckHistoryAllowed(Relation rel, Trigger *trigger)
{
	Oid			owner = rel->rd_rel->relowner;

	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payout history cannot be recorded for temporary table \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("Attach temporary tables with history => false."),
				 errtable(rel)));

	if (PayoutProcAclCheck(trigger->tgfoid, owner, ACL_EXECUTE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("payout history is not allowed for table \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("Its owner \"%s\" may not execute function payout.record_history().",
						   GetUserNameFromId(owner, false)),
				 errhint("A superuser grants EXECUTE on payout.record_history() to the roles whose tables keep history."),
				 errtable(rel)));

}

/*
 * ReadPrimaryKey
 *		The primary key's columns and how each is printed.  A deferrable
 *		key (which RelationGetPrimaryKeyIndex leaves out) counts as none.
 *		History needs a key whose text is canonical.
 */
static void
ReadPrimaryKey(Relation rel, PayoutTriggerKind kind, PayoutTableState *state)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	Relation	index;
	int			i;

	state->pkindex = PayoutPrimaryKeyIndex(rel);
	state->nkeys = 0;
	if (!OidIsValid(state->pkindex))
	{
		if (kind == PAYOUT_TRIGGER_HISTORY)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
					 errdetail("History records each payout by its primary key."),
					 errhint("Add a primary key, or attach with history => false."),
					 errtable(rel)));
		return;
	}

	index = index_open(state->pkindex, AccessShareLock);
	state->nkeys = IndexRelationGetNumberOfKeyAttributes(index);
	for (i = 0; i < state->nkeys; i++)
	{
		AttrNumber	attnum = index->rd_index->indkey.values[i];
		Oid			typid = TupleDescAttr(tupdesc, attnum - 1)->atttypid;

		state->keyattnums[i] = attnum;
		state->keykinds[i] = PayoutKeyKindOf(typid, &state->keyoutput[i]);
		if (state->keykinds[i] == PAYOUT_KEY_UNSUPPORTED &&
			kind == PAYOUT_TRIGGER_HISTORY)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("primary key column \"%s\" of relation \"%s\" cannot name a payout in history",
							NameStr(TupleDescAttr(tupdesc, attnum - 1)->attname),
							RelationGetRelationName(rel)),
					 errdetail("Its type %s prints differently under different settings.",
							   format_type_be(typid)),
					 errhint("Use a key of an integer, numeric, text, uuid, date or timestamp type, or attach with history => false."),
					 errtablecol(rel, attnum)));
	}
	index_close(index, AccessShareLock);
}

/*
 * PayoutGetTableState
 *		The trigger's view of its relation for the current statement.
 *
 * The enforcement trigger's first row in a query is also where the query
 * takes the graph it judges by (PayoutPinGraph), with the edits other
 * sessions committed since this transaction last looked.
 */
PayoutTableState *
PayoutGetTableState(FunctionCallInfo fcinfo, PayoutTriggerKind kind)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger = trigdata->tg_trigger;
	Relation	rel = trigdata->tg_relation;
	PayoutTableState *state = (PayoutTableState *) fcinfo->flinfo->fn_extra;

	if (state != NULL && state->relid == RelationGetRelid(rel))
		return state;

	if (state == NULL)
		state = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									   sizeof(PayoutTableState));
	state->relid = InvalidOid;	/* until complete */

	state->status_attnum =
		FindTypedColumn(rel,
						trigger->tgnargs >= 1 ? trigger->tgargs[0] : DEFAULT_STATUS_COLUMN,
						PayoutEnumTypeOid(PAYOUT_ENUM_STATUS), false);
	if (trigger->tgnargs >= 2 && trigger->tgargs[1][0] == '\0')
		state->resolution_attnum = InvalidAttrNumber;
	else
		state->resolution_attnum =
			FindTypedColumn(rel,
							trigger->tgnargs >= 2 ? trigger->tgargs[1] : DEFAULT_RESOLUTION_COLUMN,
							PayoutEnumTypeOid(PAYOUT_ENUM_RESOLUTION),
							trigger->tgnargs < 2);
	ParseOptions(rel, trigger, kind, state);

	if (kind == PAYOUT_TRIGGER_ENFORCE)
		CheckLastBeforeTrigger(rel, trigger);
	else
		CheckHistoryAllowed(rel, trigger);
	ReadPrimaryKey(rel, kind, state);

	/*
	 * Moves between partitions must reach history on both sides; the
	 * changes a foreign key's action makes are noted for history
	 * (PayoutNoteCascade).
	 */
	state->history_events = (kind == PAYOUT_TRIGGER_ENFORCE &&
							 (rel->rd_rel->relispartition || IsLogicalWorker() ||
							  InNoForceRLSOperation())) ?
		HistoryEvents(rel) : 0;
	state->root = PayoutAttachedTable(rel, trigger);
	state->query = PayoutGetQueryState(fcinfo->flinfo->fn_mcxt);
	state->relid = RelationGetRelid(rel);
	fcinfo->flinfo->fn_extra = state;

	if (kind == PAYOUT_TRIGGER_ENFORCE)
		PayoutPinGraph(state->query);

	return state;
}

/*
 * PayoutIsAutomatic
 *		Whether a payout goes to processors: the table has no autoprocess
 *		column, or the row's is true.  NULL is manual: nothing is paid
 *		automatically unless it was marked so.
 */
bool
PayoutIsAutomatic(PayoutTableState *state, Relation rel, HeapTuple tuple)
{
	bool		isnull;
	Datum		value;

	if (state->autoprocess_attnum == InvalidAttrNumber)
		return true;
	value = heap_getattr(tuple, state->autoprocess_attnum,
						 RelationGetDescr(rel), &isnull);
	return !isnull && DatumGetBool(value);
}

/*
 * AppendRowKey
 *		Append the canonical text of the row's primary key (see key.c) to
 *		buf; false for a table without one.
 */
static bool
AppendRowKey(StringInfo out, PayoutTableState *state, Relation rel,
			 HeapTuple tuple)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	StringInfoData field;
	int			i;

	if (state->nkeys == 0)
		return false;

	for (i = 0; i < state->nkeys; i++)
	{
		bool		isnull;
		Datum		value = heap_getattr(tuple, state->keyattnums[i], tupdesc,
										 &isnull);

		if (isnull)
			continue;			/* a primary key has none; keep it safe */
		if (state->keykinds[i] == PAYOUT_KEY_UNSUPPORTED)
		{
			/* not for history (refused there): as the type prints it */
			Oid			typoutput;
			bool		typisvarlena;

			getTypeOutputInfo(TupleDescAttr(tupdesc, state->keyattnums[i] - 1)->atttypid,
							  &typoutput, &typisvarlena);
			state->keykinds[i] = PAYOUT_KEY_OUTPUT;
			state->keyoutput[i] = typoutput;
		}
		if (state->nkeys == 1)
		{
			PayoutAppendKeyValue(out, state->keykinds[i], state->keyoutput[i],
								 value);
			break;
		}
		initStringInfo(&field);
		PayoutAppendKeyValue(&field, state->keykinds[i], state->keyoutput[i],
							 value);
		appendStringInfoChar(out, i == 0 ? '(' : ',');
		PayoutAppendRecordField(out, field.data);
		pfree(field.data);
	}
	if (state->nkeys > 1)
		appendStringInfoChar(out, ')');
	return true;
}

/*
 * PayoutRowKey
 *		The canonical text of the row's primary key, or NULL for a table
 *		without one.
 */
char *
PayoutRowKey(PayoutTableState *state, Relation rel, HeapTuple tuple)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (!AppendRowKey(&buf, state, rel, tuple))
		return NULL;
	return buf.data;
}

/*
 * PayoutRowKeyText
 *		The same as text, for history: built in a buffer kept for the next
 *		row, and copied out at its length.
 */
text *
PayoutRowKeyText(PayoutTableState *state, Relation rel, HeapTuple tuple)
{
	static StringInfo buf = NULL;

	if (buf == NULL)
	{
		MemoryContext oldcontext = MemoryContextSwitchTo(TopMemoryContext);

		buf = makeStringInfo();
		MemoryContextSwitchTo(oldcontext);
	}
	resetStringInfo(buf);
	if (!AppendRowKey(buf, state, rel, tuple))
		return NULL;
	return cstring_to_text_with_len(buf->data, buf->len);
}

/*
 * MayReadKey
 *		Whether the current user may read the key columns through the table
 *		the trigger was attached to (for a partition, the partitioned table
 *		the user writes to), as PostgreSQL's own messages require of the
 *		table itself: SELECT on it or on each key column, and no row-level
 *		security in force.
 */
static bool
MayReadKey(PayoutTableState *state, Relation rel)
{
	Oid			userid = GetUserId();
	int			i;

	if (check_enable_rls(state->root, InvalidOid, true) == RLS_ENABLED)
		return false;
	if (pg_class_aclcheck(state->root, userid, ACL_SELECT) == ACLCHECK_OK)
		return true;
	for (i = 0; i < state->nkeys; i++)
	{
		const char *name = NameStr(TupleDescAttr(RelationGetDescr(rel),
												 state->keyattnums[i] - 1)->attname);
		AttrNumber	attnum = get_attnum(state->root, name);

		if (attnum == InvalidAttrNumber ||
			pg_attribute_aclcheck(state->root, attnum, userid, ACL_SELECT) != ACLCHECK_OK)
			return false;
	}
	return true;
}

/*
 * PayoutDescribeRow
 *		Name the row for an error detail: its primary key, as unique
 *		violations do ("Key (id)=(1)"), when the user may read it through
 *		the table they wrote to; else "The row".
 */
char *
PayoutDescribeRow(PayoutTableState *state, Relation rel, HeapTuple tuple)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	StringInfoData names;
	StringInfoData values;
	int			i;

	if (state->nkeys == 0 || !MayReadKey(state, rel))
		return pstrdup("The row");

	initStringInfo(&names);
	initStringInfo(&values);
	for (i = 0; i < state->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, state->keyattnums[i] - 1);
		bool		isnull;
		Datum		value = heap_getattr(tuple, state->keyattnums[i], tupdesc, &isnull);
		Oid			typoutput;
		bool		typisvarlena;

		if (i > 0)
		{
			appendStringInfoString(&names, ", ");
			appendStringInfoString(&values, ", ");
		}
		appendStringInfoString(&names, quote_identifier(NameStr(att->attname)));
		if (isnull)
			appendStringInfoString(&values, "null");
		else
		{
			getTypeOutputInfo(att->atttypid, &typoutput, &typisvarlena);
			appendStringInfoString(&values, OidOutputFunctionCall(typoutput, value));
		}
	}
	return psprintf("Key (%s)=(%s)", names.data, values.data);
}

/*
 * PayoutAttachedTable
 *		The table the trigger was attached to: the relation itself, or, for
 *		a trigger a partition inherited, the partitioned table whose own
 *		trigger of that name it was cloned from.  History and notifications
 *		name that table, the one a DBA or a processor works with, and a
 *		move between partitions is one only within it.  On a Citus worker,
 *		the table a shard belongs to.
 */
Oid
PayoutAttachedTable(Relation rel, Trigger *trigger)
{
	List	   *ancestors;
	ListCell   *lc;
	Oid			result = RelationGetRelid(rel);

	if (!rel->rd_rel->relispartition || !trigger->tgisclone)
		return PayoutCitusLogicalTable(result);

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
	return PayoutCitusLogicalTable(result);
}
