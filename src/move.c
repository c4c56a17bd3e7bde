/*-------------------------------------------------------------------------
 *
 * move.c
 *	  Recognising the two halves of a payout that moves to another
 *	  partition.
 *
 * PostgreSQL carries out an UPDATE that changes a row's partition as a
 * DELETE from the old partition and an INSERT into the new one.  Row
 * triggers see it that way too: BEFORE UPDATE on the old partition, BEFORE
 * DELETE there, then BEFORE INSERT on the new one; at the end of the
 * statement AFTER DELETE on the old and AFTER INSERT on the new one (no
 * AFTER UPDATE).  Left alone, the enforcement trigger would judge the
 * INSERT as a new payout, and history would record a delete and a new
 * payout.
 *
 * Nothing here guesses which INSERT belongs to which UPDATE.  The BEFORE
 * UPDATE path, having judged the change, records the old row version's TID
 * with the verdict; that record is good for exactly one BEFORE INSERT of
 * the same query, the next one, which is the INSERT half of the move if
 * there is one.  That INSERT passes as a move only when
 *	- it comes from the same subtransaction and lands in another partition
 *	  of the same attached table;
 *	- the old row version was deleted by this very subtransaction and
 *	  carries PostgreSQL's own mark of a row moved to another partition
 *	  (HeapTupleHeaderIndicatesMovedPartitions), read from the heap;
 *	- the inserted row has the status, the resolution, the autoprocess flag
 *	  and the primary key (compared as datums) of the row the UPDATE
 *	  judged.
 * Anything else is judged as a new payout.  The BEFORE DELETE of the move
 * is recognised by the same record: the very row version just judged.
 *
 * The record lives in the state of the query (query_state.c), so that a
 * statement a user trigger runs between the two halves (in a BEFORE DELETE
 * trigger of the old partition, say, or a BEFORE INSERT trigger of the new
 * one), in an exception block or not, on this table or another, has its
 * own and leaves this one alone; and a subtransaction that starts and ends
 * in between changes nothing.
 *
 * History pairs the halves the same way, without remembering anything per
 * row: the AFTER DELETE of a moved row version is followed, among the
 * events the history trigger gets in that query, by the AFTER INSERT of its
 * new version, which PostgreSQL queued right after it.  The deleted half
 * waits in the query's state for that one event, which must be an insert
 * by the same transaction and command into the same attached table.  So
 * that the two halves always reach history together, a move between a
 * partition that records history and one that does not is refused.
 *
 * A logical replication apply worker gets a move as a DELETE and an INSERT
 * without the mark: from the publisher (logical decoding sends a
 * cross-partition UPDATE as the two changes it made), or of its own (an
 * UPDATE whose new row belongs in another of the subscriber's partitions).
 * Either way the INSERT comes right after the DELETE, in the same
 * transaction, with no BEFORE UPDATE.  So in an apply worker every delete
 * is recorded as the possible first half of a move until the worker's next
 * change: if that is an INSERT into the same attached table, it is judged
 * as the UPDATE the two were, and history records one change; if it is
 * anything else, or the transaction commits, the delete was a delete, and a
 * delete the rules refuse is refused then.  History keeps the deleted half
 * for that next change, and writes it as a delete if it is not a move: at
 * the next change, or just before commit when the delete was the
 * transaction's last change.
 *
 * src/move.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "replication/logicalworker.h"
#include "storage/bufmgr.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "move.h"
#include "query_state.h"
#include "rules.h"
#include "status.h"

/* The key of a row, as datums copied into the query's context. */
typedef struct RowKey
{
	int			nkeys;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	bool		byval[INDEX_MAX_KEYS];
	int16		len[INDEX_MAX_KEYS];
} RowKey;

/* The row version the UPDATE path of a query judged last, on a partition. */
typedef struct JudgedUpdate
{
	bool		valid;
	SubTransactionId subid;
	Oid			relid;			/* the old partition */
	ItemPointerData tid;		/* the old row version */
	Oid			root;			/* the attached table */
	int			from;
	int			oldres;
	int			to;
	int			newres;
	bool		automatic;		/* the new row's autoprocess */
	bool		records_delete; /* the old partition records deletes */
	RowKey		key;			/* of the new row */
} JudgedUpdate;

/* A row an apply worker deleted, maybe the first half of a move. */
typedef struct ApplyDelete
{
	bool		valid;
	Oid			relid;
	ItemPointerData tid;
	Oid			root;
	int			from;
	int			oldres;
	bool		automatic;
	bool		records_delete;
} ApplyDelete;

/* The deleted half of a move, waiting for history to record the move. */
typedef struct MovedRow
{
	bool		valid;
	TransactionId xid;			/* that deleted it */
	CommandId	cid;
	PayoutMovedRow row;			/* its key in keybuf */
	text	   *keybuf;			/* reused from move to move */
	Size		keybufsize;
} MovedRow;

typedef struct PayoutMoveState
{
	JudgedUpdate judged;
	MovedRow	moved;
} PayoutMoveState;

/*
 * An apply worker's moves span changes, so they live as long as the
 * transaction: the last delete, with the error of the rule it breaks if
 * any (in TopTransactionContext); the delete a proven INSERT made half a
 * move; and history's deleted half.
 */
static ApplyDelete apply_delete;
static ErrorData *apply_refusal = NULL;
static bool apply_moved_valid = false;
static Oid	apply_moved_relid;
static ItemPointerData apply_moved_tid;
static MovedRow apply_stash;

static PayoutMoveState *GetMoveState(PayoutQueryState *query);
static void ReadKey(PayoutTableState *state, Relation rel, HeapTuple tuple,
					RowKey *key);
static bool SameKey(const RowKey *a, const RowKey *b);
static bool OldVersionMoved(const JudgedUpdate *judged);
static void CheckHistoryOfMove(Relation rel, Oid from_relid,
							   bool records_delete, PayoutTableState *state);
static void ForgetApplyMoves(void);
static bool StashInto(MovedRow *moved, MemoryContext cxt, HeapTuple oldtuple,
					  const PayoutMovedRow *row);
static void MoveXactCallback(XactEvent event, void *arg);

/*
 * PayoutRegisterMoveCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterMoveCallbacks(void)
{
	RegisterXactCallback(MoveXactCallback, NULL);
}

/*
 * MoveXactCallback
 *		A refused delete that no INSERT followed fails the commit; the end of
 *		the transaction forgets the apply worker's moves.
 */
static void
MoveXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			PayoutSettleApplyDelete(NULL, false);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ForgetApplyMoves();
			break;
		default:
			break;
	}
}

/*
 * ForgetApplyMoves
 *		The transaction ended: its ErrorData went with TopTransactionContext.
 */
static void
ForgetApplyMoves(void)
{
	apply_delete.valid = false;
	apply_refusal = NULL;
	apply_moved_valid = false;
	apply_stash.valid = false;
}

static PayoutMoveState *
GetMoveState(PayoutQueryState *query)
{
	if (query->moves == NULL)
		query->moves = MemoryContextAllocZero(query->cxt,
											  sizeof(PayoutMoveState));
	return query->moves;
}

/*
 * ReadKey
 *		Copy the primary key datums of a row into the current context.
 */
static void
ReadKey(PayoutTableState *state, Relation rel, HeapTuple tuple, RowKey *key)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	key->nkeys = 0;
	for (i = 0; i < state->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, state->keyattnums[i] - 1);
		Datum		value = heap_getattr(tuple, state->keyattnums[i], tupdesc,
										 &key->isnull[i]);

		key->byval[i] = att->attbyval;
		key->len[i] = att->attlen;
		key->values[i] = key->isnull[i] ? (Datum) 0 :
			datumCopy(value, att->attbyval, att->attlen);
		key->nkeys = i + 1;		/* what is copied, to be freed */
	}
}

/*
 * SameKey
 *		Whether two keys hold the same datums (partitions of one table have
 *		the same key columns, in the same order, of the same types).
 */
static bool
SameKey(const RowKey *a, const RowKey *b)
{
	int			i;

	if (a->nkeys != b->nkeys)
		return false;
	for (i = 0; i < a->nkeys; i++)
	{
		if (a->isnull[i] != b->isnull[i] || a->byval[i] != b->byval[i] ||
			a->len[i] != b->len[i])
			return false;
		if (!a->isnull[i] &&
			!datumIsEqual(a->values[i], b->values[i], a->byval[i], a->len[i]))
			return false;
	}
	return true;
}

/*
 * PayoutRememberUpdate
 *		Record the row version the UPDATE path just let through on a
 *		partition, with the verdict, in case the UPDATE moves it.  The
 *		previous row's record is freed: one record per query at a time.
 */
void
PayoutRememberUpdate(PayoutTableState *state, Relation rel,
					 HeapTuple oldtuple, HeapTuple newtuple,
					 int from, int oldres)
{
	PayoutMoveState *moves = GetMoveState(state->query);
	JudgedUpdate *judged = &moves->judged;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	MemoryContext oldcontext;
	Datum		value;
	bool		isnull;
	int			i;

	/* the previous row's key, used or not: one record per query */
	for (i = 0; i < judged->key.nkeys; i++)
	{
		if (!judged->key.byval[i] && !judged->key.isnull[i])
			pfree(DatumGetPointer(judged->key.values[i]));
	}
	judged->key.nkeys = 0;
	judged->valid = false;

	value = heap_getattr(newtuple, state->status_attnum, tupdesc, &isnull);
	if (isnull)
		return;
	judged->to = PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(value));
	judged->newres = PAYOUT_NO_RESOLUTION;
	if (state->resolution_attnum != InvalidAttrNumber)
	{
		value = heap_getattr(newtuple, state->resolution_attnum, tupdesc, &isnull);
		if (!isnull)
			judged->newres = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
											 DatumGetObjectId(value));
	}

	judged->automatic = PayoutIsAutomatic(state, rel, newtuple);
	oldcontext = MemoryContextSwitchTo(state->query->cxt);
	ReadKey(state, rel, newtuple, &judged->key);
	MemoryContextSwitchTo(oldcontext);

	judged->subid = GetCurrentSubTransactionId();
	judged->relid = RelationGetRelid(rel);
	judged->tid = oldtuple->t_self;
	judged->root = state->root;
	judged->from = from;
	judged->oldres = oldres;
	judged->records_delete = (state->history_events & PAYOUT_HISTORY_DELETE) != 0;
	judged->valid = true;
}

/*
 * PayoutIsMoveDelete
 *		Whether a BEFORE DELETE on a partition is the DELETE half of a move:
 *		the row version the UPDATE path of this query judged last, in this
 *		subtransaction.
 */
bool
PayoutIsMoveDelete(PayoutTableState *state, Relation rel, HeapTuple oldtuple)
{
	JudgedUpdate *judged;

	if (state->query->moves == NULL)
		return false;
	judged = &state->query->moves->judged;
	return judged->valid &&
		judged->subid == GetCurrentSubTransactionId() &&
		judged->relid == RelationGetRelid(rel) &&
		ItemPointerEquals(&judged->tid, &oldtuple->t_self);
}

/*
 * OldVersionMoved
 *		Whether the judged row version was deleted by the current
 *		subtransaction and marked as moved to another partition.  Read from
 *		the heap: the mark is PostgreSQL's, set by the DELETE half of the
 *		move.  A partition of another table access method proves nothing.
 */
static bool
OldVersionMoved(const JudgedUpdate *judged)
{
	Relation	oldrel;
	HeapTupleData tuple;
	Buffer		buffer;
	bool		moved = false;

	oldrel = table_open(judged->relid, AccessShareLock);
	if (oldrel->rd_rel->relam != HEAP_TABLE_AM_OID)
	{
		table_close(oldrel, AccessShareLock);
		return false;
	}

	tuple.t_self = judged->tid;
	if (heap_fetch(oldrel, SnapshotAny, &tuple, &buffer, false))
	{
		HeapTupleHeader htup;

		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		htup = tuple.t_data;
		moved = !(htup->t_infomask & HEAP_XMAX_INVALID) &&
			!HEAP_XMAX_IS_LOCKED_ONLY(htup->t_infomask) &&
			HeapTupleHeaderIndicatesMovedPartitions(htup) &&
			TransactionIdEquals(HeapTupleHeaderGetUpdateXid(htup),
								GetCurrentTransactionIdIfAny());
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		ReleaseBuffer(buffer);
	}
	table_close(oldrel, AccessShareLock);
	return moved;
}

/*
 * CheckHistoryOfMove
 *		Refuse a move between a partition that records the delete and one
 *		that does not record the insert, or the other way round: history
 *		would see only one half, and record a delete or a new payout.
 */
static void
CheckHistoryOfMove(Relation rel, Oid from_relid, bool records_delete,
				   PayoutTableState *state)
{
	bool		records_insert = (state->history_events & PAYOUT_HISTORY_INSERT) != 0;

	if (records_delete == records_insert)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("payout cannot move from partition \"%s\" to partition \"%s\"",
					get_rel_name(from_relid), RelationGetRelationName(rel)),
			 errdetail("Partition \"%s\" records payout history and partition \"%s\" does not, so history would record the move as %s.",
					   records_delete ? get_rel_name(from_relid) : RelationGetRelationName(rel),
					   records_delete ? RelationGetRelationName(rel) : get_rel_name(from_relid),
					   records_delete ? "a delete" : "a new payout"),
			 errhint("Enable the payout history triggers on every partition, or on none."),
			 errtable(rel)));
}

/*
 * PayoutTakeMove
 *		Whether the row a BEFORE INSERT on a partition is about to insert is
 *		the INSERT half of a move (see the file header).  If so, return the
 *		status and resolution it had before the move.  Every call uses up the
 *		query's judged row.
 */
bool
PayoutTakeMove(PayoutTableState *state, Relation rel, HeapTuple newtuple,
			   int *from, int *oldres)
{
	JudgedUpdate *judged;
	TupleDesc	tupdesc = RelationGetDescr(rel);
	RowKey		key;
	Datum		value;
	bool		isnull;
	int			to;
	int			newres = PAYOUT_NO_RESOLUTION;

	if (state->query->moves == NULL || !state->query->moves->judged.valid)
		return false;
	judged = &state->query->moves->judged;
	judged->valid = false;

	if (judged->subid != GetCurrentSubTransactionId() ||
		judged->root != state->root ||
		judged->relid == RelationGetRelid(rel))
		return false;

	value = heap_getattr(newtuple, state->status_attnum, tupdesc, &isnull);
	if (isnull)
		return false;
	to = PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(value));
	if (state->resolution_attnum != InvalidAttrNumber)
	{
		value = heap_getattr(newtuple, state->resolution_attnum, tupdesc, &isnull);
		if (!isnull)
			newres = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
									 DatumGetObjectId(value));
	}
	if (to != judged->to || newres != judged->newres ||
		PayoutIsAutomatic(state, rel, newtuple) != judged->automatic)
		return false;

	ReadKey(state, rel, newtuple, &key);
	if (!SameKey(&key, &judged->key) || !OldVersionMoved(judged))
		return false;

	CheckHistoryOfMove(rel, judged->relid, judged->records_delete, state);
	*from = judged->from;
	*oldres = judged->oldres;
	return true;
}

/*
 * PayoutRememberApplyDelete
 *		In a logical replication apply worker, record a delete as the
 *		possible first half of a move.  rule is the rule the delete breaks,
 *		PAYOUT_RULE_NONE for none: its error waits for the worker's next
 *		change.  Returns false outside an apply worker.
 */
bool
PayoutRememberApplyDelete(PayoutTableState *state, Relation rel,
						  HeapTuple oldtuple, PayoutChange *change,
						  PayoutRule rule)
{
	MemoryContext oldcontext = CurrentMemoryContext;

	if (!IsLogicalWorker())
		return false;

	PayoutSettleApplyDelete(NULL, false);
	if (rule != PAYOUT_RULE_NONE)
	{
		PG_TRY();
		{
			PayoutReportRule(rule, change, rel, state, oldtuple);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(TopTransactionContext);
			apply_refusal = CopyErrorData();
			FlushErrorState();
			MemoryContextSwitchTo(oldcontext);
		}
		PG_END_TRY();
	}

	apply_delete.relid = RelationGetRelid(rel);
	apply_delete.tid = oldtuple->t_self;
	apply_delete.root = state->root;
	apply_delete.from = change->from;
	apply_delete.oldres = change->oldres;
	apply_delete.automatic = !change->manual;
	apply_delete.records_delete = (state->history_events & PAYOUT_HISTORY_DELETE) != 0;
	apply_delete.valid = true;
	return true;
}

/*
 * PayoutSettleApplyDelete
 *		At an apply worker's next change (state, and whether it inserts), or
 *		before commit (NULL): unless it is the INSERT into the same attached
 *		table that makes the last delete half of a move, the delete was a
 *		delete, and the error of a rule it breaks is raised now.
 */
void
PayoutSettleApplyDelete(PayoutTableState *state, bool inserting)
{
	ErrorData  *edata = apply_refusal;

	if (!apply_delete.valid)
		return;
	if (state != NULL && inserting && state->root == apply_delete.root)
		return;
	apply_delete.valid = false;
	apply_refusal = NULL;
	if (edata != NULL)
		ReThrowError(edata);
}

/*
 * PayoutTakeApplyDelete
 *		Whether the row an apply worker's BEFORE INSERT is about to insert is
 *		the second half of a move whose delete was the worker's last change:
 *		if so, return what the row was before, to be judged as the UPDATE it
 *		is, and lift the delete's refusal.
 */
bool
PayoutTakeApplyDelete(PayoutTableState *state, Relation rel,
					  int *from, int *oldres, bool *automatic)
{
	if (!apply_delete.valid || apply_delete.root != state->root)
		return false;
	apply_delete.valid = false;
	apply_refusal = NULL;		/* freed with TopTransactionContext */

	CheckHistoryOfMove(rel, apply_delete.relid, apply_delete.records_delete,
					   state);
	*from = apply_delete.from;
	*oldres = apply_delete.oldres;
	*automatic = apply_delete.automatic;
	apply_moved_relid = apply_delete.relid;
	apply_moved_tid = apply_delete.tid;
	apply_moved_valid = true;
	return true;
}

/*
 * StashInto
 *		Keep the deleted half of a move in moved, its key in a buffer of
 *		cxt reused from move to move: nothing is kept per row.
 */
static bool
StashInto(MovedRow *moved, MemoryContext cxt, HeapTuple oldtuple,
		  const PayoutMovedRow *row)
{
	HeapTupleHeader htup = oldtuple->t_data;

	moved->row = *row;
	if (row->key != NULL)
	{
		Size		size = VARSIZE_ANY(row->key);

		if (size > moved->keybufsize)
		{
			if (moved->keybuf != NULL)
				pfree(moved->keybuf);
			moved->keybuf = MemoryContextAlloc(cxt, size);
			moved->keybufsize = size;
		}
		memcpy(moved->keybuf, row->key, size);
		moved->row.key = moved->keybuf;
	}
	moved->xid = HeapTupleHeaderGetUpdateXid(htup);
	moved->cid = HeapTupleHeaderGetCmax(htup);
	moved->valid = true;
	return true;
}

/*
 * PayoutStashMovedRow
 *		At the history trigger's AFTER DELETE of a row version: if it is
 *		the deleted half of a move (PostgreSQL's mark, or an apply worker's
 *		delete that a proven INSERT followed), keep what history needs of it
 *		for the AFTER INSERT of the new version, and return true.  The key
 *		is copied into a buffer of the query's, reused by the next move:
 *		nothing is kept per row.
 */
bool
PayoutStashMovedRow(PayoutQueryState *query, Relation rel,
					HeapTuple oldtuple, const PayoutMovedRow *row)
{
	Oid			relid = RelationGetRelid(rel);

	if (HeapTupleHeaderIndicatesMovedPartitions(oldtuple->t_data))
		return StashInto(&GetMoveState(query)->moved, query->cxt, oldtuple, row);

	/*
	 * An apply worker's delete that is its last change (the INSERT may come
	 * in its next message), or that an INSERT of the same message already
	 * made half a move.
	 */
	if (!IsLogicalWorker())
		return false;
	if ((apply_delete.valid && apply_delete.relid == relid &&
		 ItemPointerEquals(&apply_delete.tid, &oldtuple->t_self)) ||
		(apply_moved_valid && apply_moved_relid == relid &&
		 ItemPointerEquals(&apply_moved_tid, &oldtuple->t_self)))
	{
		apply_stash.valid = false;
		StashInto(&apply_stash, TopMemoryContext, oldtuple, row);
		apply_stash.cid = InvalidCommandId;
		return true;
	}
	return false;
}

/*
 * PayoutTakeMovedRow
 *		At the history trigger's AFTER INSERT of a row version: if the
 *		deleted half of a move waits, and this row is its new version (the
 *		next insert history sees in this query, by the same transaction and
 *		command, into the same attached table), return the stashed half.
 *		A stash this row does not match is returned too, as a delete, which
 *		the caller records first (it cannot happen while moves between
 *		partitions with and without history are refused); so is a stash
 *		left when history gets another kind of event (newtuple NULL).  The
 *		returned key is valid until the next move is stashed.
 */
bool
PayoutTakeMovedRow(PayoutQueryState *query, HeapTuple newtuple, Oid root,
				   PayoutMovedRow *row, bool *matched)
{
	MovedRow   *moved;
	HeapTupleHeader htup;

	*matched = false;
	if (query->moves != NULL && query->moves->moved.valid)
	{
		moved = &query->moves->moved;
		moved->valid = false;
		*row = moved->row;
		if (newtuple == NULL)
			return true;
		htup = newtuple->t_data;
		*matched = moved->row.root == root &&
			TransactionIdEquals(HeapTupleHeaderGetRawXmin(htup), moved->xid) &&
			HeapTupleHeaderGetCmin(htup) == moved->cid;
		return true;
	}

	/*
	 * An apply worker's: the inserted half is the row whose BEFORE INSERT
	 * took the deleted half's delete (by the same transaction; the two
	 * halves may come in two messages, with two commands).
	 */
	if (!apply_stash.valid)
		return false;
	apply_stash.valid = false;
	*row = apply_stash.row;
	*matched = newtuple != NULL && apply_moved_valid &&
		apply_stash.row.root == root &&
		TransactionIdEquals(HeapTupleHeaderGetRawXmin(newtuple->t_data),
							apply_stash.xid);
	apply_moved_valid = false;
	return true;
}

/*
 * PayoutTakeApplyStash
 *		Before commit: an apply worker's deleted half that no INSERT
 *		followed, for history to record as the delete it was.
 */
bool
PayoutTakeApplyStash(PayoutMovedRow *row)
{
	if (!apply_stash.valid)
		return false;
	apply_stash.valid = false;
	*row = apply_stash.row;
	return true;
}
