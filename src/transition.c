/*-------------------------------------------------------------------------
 *
 * transition.c
 *	  The trigger that rejects illegal payout changes.
 *
 * payout.enforce_transition() is attached BEFORE INSERT OR UPDATE OR
 * DELETE FOR EACH ROW to a table with a payout.status column (1.0 attached
 * it without DELETE).  It reads the status and resolution of each version
 * of the row, asks PayoutJudge (rules.c) whether the change breaks a rule,
 * and reports the rule it breaks.  An UPDATE that leaves the status and
 * the resolution alone passes at once.
 *
 * Trigger arguments, all optional: the status column (default "status"),
 * the resolution column (default "resolution"; an empty string for none),
 * then options: "notify" sends a notification on channel payout_ready when
 * an automatic payout becomes READY or is released from moderation, and on
 * payout_manual when a manual one starts waiting in READY, naming the table
 * the trigger was attached to; "delete_unfinished" lets payouts that are
 * not final be deleted; "autoprocess=<column>" names the boolean column
 * that says whether a payout is processed automatically (true) or by an
 * operator (false or NULL).  A table without a column named "resolution"
 * simply has no resolution; a resolution column named explicitly must
 * exist.
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
 *	  which move.c proves from the heap (and its DELETE half likewise).
 *
 * The trigger must be the last BEFORE ROW trigger of its table, so that the
 * row it judges is the row stored; table_state.c checks that once per
 * statement.  The per-row path does not allocate, but on partitions.
 *
 * src/transition.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/acl.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "move.h"
#include "rules.h"
#include "status.h"
#include "table_state.h"
#include "transition_cache.h"

#define NOTIFY_CHANNEL				"payout_ready"
#define MANUAL_CHANNEL				"payout_manual"

static void CheckTriggerEvent(FunctionCallInfo fcinfo);
static int	GetStatus(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum);
static int	GetResolution(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum);
static bool LockExistingRow(PayoutTableState *state, Relation rel,
							HeapTuple tuple);
static void NotifyReady(PayoutTableState *state, Relation rel,
						HeapTuple tuple, int status, const char *channel);

/*
 * CheckTriggerEvent
 *		Reject every way of firing the function other than BEFORE ROW,
 *		before touching the trigger data.
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
	else if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		problem = "It was fired by TRUNCATE.";

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must be fired BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW",
						trigdata->tg_trigger->tgname,
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail_internal("%s", problem),
				 errhint("Attach the trigger with payout.attach().")));
}

/*
 * GetStatus
 *		The status index of a row, or PAYOUT_NULL_STATUS.
 */
static int
GetStatus(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum)
{
	bool		isnull;
	Datum		value = heap_getattr(tuple, attnum, tupdesc, &isnull);

	if (isnull)
		return PAYOUT_NULL_STATUS;
	return PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(value));
}

/*
 * GetResolution
 *		The resolution index of a row, or PAYOUT_NO_RESOLUTION.
 */
static int
GetResolution(HeapTuple tuple, TupleDesc tupdesc, AttrNumber attnum)
{
	Datum		value;
	bool		isnull;

	if (attnum == InvalidAttrNumber)
		return PAYOUT_NO_RESOLUTION;
	value = heap_getattr(tuple, attnum, tupdesc, &isnull);
	if (isnull)
		return PAYOUT_NO_RESOLUTION;
	return PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION, DatumGetObjectId(value));
}

/*
 * LockExistingRow
 *		Whether a row with the primary key of the proposed row exists; if
 *		so, lock it FOR KEY SHARE, so that it is still there when the INSERT
 *		checks for conflicts.
 *
 * The lookup uses a fresh snapshot, and the lock follows the row's update
 * chain to its latest version, as the upsert's own conflict check does: a
 * row that a concurrent transaction updated is still the payout the upsert
 * will update.  A row that a concurrent transaction deletes, or moves to
 * another partition, before we lock it counts as missing: the proposed
 * row is then judged as a new payout, which is the safe side.  So does a
 * row that this same command has updated or deleted (a DELETE in a WITH
 * clause of the INSERT): its key is free again by the time the INSERT
 * checks it.  A deferrable primary key checks nothing until commit and
 * cannot be the arbiter of an upsert: RelationGetPrimaryKeyIndex() leaves
 * it out, so such a table is treated as one without a primary key.
 *
 * Locking a row takes a right of its own: only a user who could lock it
 * with SELECT ... FOR KEY SHARE (UPDATE on the table the trigger was
 * attached to, no row-level security in the way) does, so that a role
 * with INSERT alone cannot hold payouts away from claim() and expire() by
 * proposing illegal rows with their keys.  Its proposed row is judged as a
 * new payout.
 */
static bool
LockExistingRow(PayoutTableState *state, Relation rel, HeapTuple tuple)
{
	Oid			indexoid = state->pkindex;
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
	if (pg_class_aclcheck(state->root, GetUserId(), ACL_UPDATE) != ACLCHECK_OK ||
		check_enable_rls(state->root, InvalidOid, true) == RLS_ENABLED)
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
	scan = PayoutIndexBeginScan(rel, index, snapshot, nkeys);
	index_rescan(scan, skey, nkeys, NULL, 0);
	if (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TM_FailureData tmfd;
		TM_Result	result;

		ItemPointerData tid = slot->tts_tid;

		/*
		 * Follow the update chain by hand rather than with
		 * TUPLE_LOCK_FLAG_FIND_LAST_VERSION, which raises an error for a
		 * row moved to another partition: for us such a row is gone.
		 */
		for (;;)
		{
			result = table_tuple_lock(rel, &tid, snapshot, slot,
									  GetCurrentCommandId(false),
									  LockTupleKeyShare, LockWaitBlock, 0,
									  &tmfd);
			if (result != TM_Updated ||
				ItemPointerIndicatesMovedPartitions(&tmfd.ctid) ||
				ItemPointerEquals(&tmfd.ctid, &tid))
				break;
			tid = tmfd.ctid;
		}
		/* the version locked must still be the payout with this key */
		if (result == TM_Ok)
		{
			for (i = 0; i < nkeys; i++)
			{
				AttrNumber	attnum = index->rd_index->indkey.values[i];
				Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);
				bool		isnull;
				bool		lockednull;
				Datum		value = heap_getattr(tuple, attnum, tupdesc, &isnull);
				Datum		locked = slot_getattr(slot, attnum, &lockednull);

				if (lockednull ||
					!datumIsEqual(value, locked, att->attbyval, att->attlen))
					result = TM_Deleted;
			}
		}
		found = (result == TM_Ok);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);

	return found;
}

/*
 * NotifyReady
 *		Tell listening processors that a payout has work for them.  NOTIFY
 *		is transactional: it is delivered at commit, and dropped if the
 *		statement or the transaction fails.
 */
static void
NotifyReady(PayoutTableState *state, Relation rel, HeapTuple tuple, int status,
			const char *channel)
{
	StringInfoData payload;
	char	   *key;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"table\": ");
	escape_json(&payload,
				quote_qualified_identifier(get_namespace_name(get_rel_namespace(state->root)),
										   get_rel_name(state->root)));
	appendStringInfoString(&payload, ", \"key\": ");
	key = PayoutRowKey(state, rel, tuple);
	if (key)
		escape_json(&payload, key);
	else
		appendStringInfoString(&payload, "null");
	appendStringInfoString(&payload, ", \"status\": ");
	escape_json(&payload, PayoutStatusLabel(status));
	appendStringInfoChar(&payload, '}');

	Async_Notify(channel, payload.data);
}

/*
 * payout.enforce_transition(): BEFORE INSERT OR UPDATE OR DELETE FOR EACH
 * ROW trigger.
 */
PG_FUNCTION_INFO_V1(payout_enforce_transition);
Datum
payout_enforce_transition(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata;
	PayoutTableState *state;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	oldtuple = NULL;
	HeapTuple	newtuple = NULL;
	PayoutChange change;
	PayoutRule	rule;
	bool		partition;
	bool		auto_before = true;
	bool		auto_after;
	bool		apply_pair = false;
	bool		apply_certain = false;

	CheckTriggerEvent(fcinfo);
	trigdata = (TriggerData *) fcinfo->context;
	state = PayoutGetTableState(fcinfo, PAYOUT_TRIGGER_ENFORCE);
	/* an apply worker's last delete was a delete, unless this inserts */
	PayoutSettleApplyDelete(state, TRIGGER_FIRED_BY_INSERT(trigdata->tg_event));
	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	partition = rel->rd_rel->relispartition;

	memset(&change, 0, sizeof(change));
	change.delete_unfinished = state->delete_unfinished;

	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		oldtuple = trigdata->tg_trigtuple;
		/* the DELETE half of a move: the UPDATE was judged already */
		if (partition && PayoutIsMoveDelete(state, rel, oldtuple))
			return PointerGetDatum(oldtuple);
		if (state->history_events & PAYOUT_HISTORY_DELETE)
			PayoutNoteCascade(rel, oldtuple);
		change.event = PAYOUT_EVENT_DELETE;
		change.from = GetStatus(oldtuple, tupdesc, state->status_attnum);
		if (change.from == PAYOUT_NULL_STATUS)
			change.from = PAYOUT_INITIAL;
		change.oldres = GetResolution(oldtuple, tupdesc, state->resolution_attnum);
		change.manual = !PayoutIsAutomatic(state, rel, oldtuple);
		change.moderator = PayoutIsHeld(change.from, change.oldres) &&
			PayoutIsModerator();
		change.operator_member = PayoutNeedsOperator(&change) &&
			PayoutIsOperator();
		rule = PayoutJudge(&change);

		/*
		 * An apply worker's delete may be the first half of a move; its
		 * verdict waits for the worker's next change.
		 */
		if (PayoutRememberApplyDelete(state, rel, oldtuple, &change, rule))
			return PointerGetDatum(oldtuple);
		if (rule != PAYOUT_RULE_NONE)
			PayoutReportRule(rule, &change, rel, state, oldtuple);
		return PointerGetDatum(oldtuple);
	}

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtuple = trigdata->tg_trigtuple;
		change.event = PAYOUT_EVENT_INSERT;
		change.from = PAYOUT_INITIAL;
		change.oldres = PAYOUT_NO_RESOLUTION;

		/* the INSERT half of a move: the UPDATE was judged already */
		if (partition &&
			PayoutTakeMove(state, rel, newtuple, &change.from, &change.oldres))
			return PointerGetDatum(newtuple);

		/*
		 * The INSERT half of an apply worker's move: judged as the UPDATE
		 * it was.
		 */
		if (PayoutTakeApplyDelete(state, rel, newtuple, &change.from,
								  &change.oldres, &auto_before, &apply_certain))
		{
			change.event = PAYOUT_EVENT_UPDATE;
			apply_pair = true;
		}
	}
	else
	{
		oldtuple = trigdata->tg_trigtuple;
		newtuple = trigdata->tg_newtuple;
		change.event = PAYOUT_EVENT_UPDATE;
		if (state->history_events & PAYOUT_HISTORY_UPDATE)
			PayoutNoteCascade(rel, oldtuple);

		/*
		 * A row stored before the trigger was attached may have no status;
		 * giving it one is judged like a new row.
		 */
		change.from = GetStatus(oldtuple, tupdesc, state->status_attnum);
		if (change.from == PAYOUT_NULL_STATUS)
			change.from = PAYOUT_INITIAL;
		change.oldres = GetResolution(oldtuple, tupdesc, state->resolution_attnum);
		auto_before = PayoutIsAutomatic(state, rel, oldtuple);
	}

	change.to = GetStatus(newtuple, tupdesc, state->status_attnum);
	change.newres = GetResolution(newtuple, tupdesc, state->resolution_attnum);
	auto_after = PayoutIsAutomatic(state, rel, newtuple);
	change.manual = !auto_before;
	change.autoprocess_on = change.event == PAYOUT_EVENT_UPDATE &&
		!auto_before && auto_after;

	/*
	 * The common case: the status and the resolution are left alone, and
	 * autoprocess is not turned on.
	 */
	if (change.event == PAYOUT_EVENT_UPDATE && change.from == change.to &&
		change.oldres == change.newres && !change.autoprocess_on &&
		auto_before == auto_after)
	{
		if (partition && oldtuple != NULL)
			PayoutRememberUpdate(state, rel, oldtuple, newtuple,
								 change.from, change.oldres);
		if (apply_pair)
			PayoutConfirmApplyMove();
		return PointerGetDatum(newtuple);
	}

	if (change.to != PAYOUT_NULL_STATUS)
		change.allowed = state->query->graph[change.from];
	change.moderator = change.event == PAYOUT_EVENT_UPDATE &&
		PayoutIsHeld(change.from, change.oldres) && PayoutIsModerator();
	change.operator_member = PayoutNeedsOperator(&change) && PayoutIsOperator();
	rule = PayoutJudge(&change);

	/*
	 * An apply worker's delete and insert that may be a move, but need not
	 * be: illegal as a move and legal as a delete and a new payout, they
	 * are the latter.
	 */
	if (apply_pair)
	{
		PayoutChange as_new = change;

		as_new.event = PAYOUT_EVENT_INSERT;
		as_new.from = PAYOUT_INITIAL;
		as_new.oldres = PAYOUT_NO_RESOLUTION;
		as_new.allowed = state->query->graph[PAYOUT_INITIAL];
		as_new.manual = false;
		as_new.autoprocess_on = false;
		as_new.moderator = false;
		as_new.operator_member = false;
		if (rule != PAYOUT_RULE_NONE && !apply_certain &&
			change.to != PAYOUT_NULL_STATUS &&
			PayoutJudge(&as_new) == PAYOUT_RULE_NONE)
		{
			PayoutRejectApplyMove();
			change = as_new;
			rule = PAYOUT_RULE_NONE;
		}
		else
			PayoutConfirmApplyMove();
	}

	/*
	 * A proposed row that would be illegal as a new payout, but whose key
	 * exists: an upsert that will become an UPDATE (judged then), or a
	 * duplicate that the primary key will reject.
	 */
	if (rule != PAYOUT_RULE_NONE && rule != PAYOUT_RULE_NOT_NULL &&
		change.event == PAYOUT_EVENT_INSERT &&
		LockExistingRow(state, rel, newtuple))
		return PointerGetDatum(newtuple);

	if (rule != PAYOUT_RULE_NONE)
		PayoutReportRule(rule, &change, rel, state,
						 oldtuple ? oldtuple : newtuple);

	if (change.event == PAYOUT_EVENT_UPDATE && partition && oldtuple != NULL)
		PayoutRememberUpdate(state, rel, oldtuple, newtuple,
							 change.from, change.oldres);

	/*
	 * Work for a processor: an automatic payout that became READY, was
	 * released, or was turned automatic in READY.  Work for an operator: a
	 * manual payout that started waiting in READY.
	 */
	if (state->notify && !PayoutStatusIsFinal(change.to) &&
		!PayoutIsHeld(change.to, change.newres) &&
		((change.to == PAYOUT_STATUS_READY && change.from != change.to) ||
		 (change.event == PAYOUT_EVENT_UPDATE &&
		  PayoutIsHeld(change.from, change.oldres)) ||
		 (change.to == PAYOUT_STATUS_READY && auto_before != auto_after)))
	{
		if (auto_after)
			NotifyReady(state, rel, newtuple, change.to, NOTIFY_CHANNEL);
		else if (change.to == PAYOUT_STATUS_READY)
			NotifyReady(state, rel, newtuple, change.to, MANUAL_CHANNEL);
	}

	return PointerGetDatum(newtuple);
}
