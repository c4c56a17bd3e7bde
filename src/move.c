/*-------------------------------------------------------------------------
 *
 * move.c
 *	  Proving that a row an UPDATE inserts into a partition is a row it
 *	  moved there.
 *
 * PostgreSQL carries out an UPDATE that changes a row's partition as a
 * DELETE from the old partition and an INSERT into the new one.  Row
 * triggers see it that way too: BEFORE UPDATE on the old partition, BEFORE
 * DELETE there, then BEFORE INSERT on the new one; after the statement,
 * AFTER DELETE on the old and AFTER INSERT on the new one (no AFTER
 * UPDATE).  Left alone, the enforcement trigger would judge the INSERT as
 * a new payout, and history would record a delete and a new payout.
 *
 * Nothing here guesses which INSERT belongs to which UPDATE.  The BEFORE
 * UPDATE path, having judged the change, records the old row version's TID
 * with the verdict; that record is good for exactly one BEFORE INSERT, the
 * next one in the same subtransaction, which is the INSERT half of the
 * move if there is one.  That INSERT passes as a move only when
 *	- it comes from the same subtransaction and lands in another partition
 *	  of the same attached table;
 *	- the old row version was deleted by this very subtransaction and
 *	  carries PostgreSQL's own mark of a row moved to another partition
 *	  (HeapTupleHeaderIndicatesMovedPartitions), read from the heap;
 *	- the inserted row has the status, the resolution, the autoprocess flag
 *	  and the primary key (compared as datums) of the row the UPDATE
 *	  judged.
 * Anything else is judged as a new payout.  The BEFORE DELETE of the move
 * is recognized by the same record: the very row version just judged.
 *
 * A proven move is queued for the history trigger, whose AFTER INSERT finds
 * it by partition and key datums and records the UPDATE it was.  All of it
 * lives in one memory context and dies with its subtransaction or
 * transaction (RegisterSubXactCallback, RegisterXactCallback).
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
#include "nodes/pg_list.h"
#include "storage/bufmgr.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "move.h"
#include "rules.h"
#include "status.h"

/* The key of a row, as datums copied into move_context. */
typedef struct RowKey
{
	int			nkeys;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	bool		byval[INDEX_MAX_KEYS];
	int16		len[INDEX_MAX_KEYS];
} RowKey;

/* The row version the UPDATE path judged last, on a partition. */
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
	RowKey		key;			/* of the new row */
} JudgedUpdate;

/* A proven move, waiting for the history trigger. */
typedef struct Move
{
	SubTransactionId subid;
	Oid			relid;			/* the new partition */
	int			from;
	int			oldres;
	RowKey		key;
} Move;

static MemoryContext move_context = NULL;
static MemoryContext judged_context = NULL;
static JudgedUpdate judged;
static List *moves = NIL;

static void ReadKey(PayoutTableState *state, Relation rel, HeapTuple tuple,
					RowKey *key);
static bool SameKey(const RowKey *a, const RowKey *b);
static bool OldVersionMoved(void);
static void MoveXactCallback(XactEvent event, void *arg);
static void MoveSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
								SubTransactionId parentSubid, void *arg);
static void ForgetAll(void);

/*
 * PayoutRegisterMoveCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterMoveCallbacks(void)
{
	RegisterXactCallback(MoveXactCallback, NULL);
	RegisterSubXactCallback(MoveSubXactCallback, NULL);
}

static void
ForgetAll(void)
{
	judged.valid = false;
	moves = NIL;
	if (move_context != NULL)
		MemoryContextReset(move_context);
	if (judged_context != NULL)
		MemoryContextReset(judged_context);
}

static void
MoveXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ForgetAll();
			break;
		default:
			break;
	}
}

/*
 * MoveSubXactCallback
 *		A move never spans the end of a subtransaction: forget the judged
 *		row, and the queued moves of the subtransaction that ends (its
 *		statements' AFTER triggers have fired; what is left belongs to a
 *		table without history, or to a rolled-back statement).
 */
static void
MoveSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return;
	judged.valid = false;
	foreach(lc, moves)
	{
		Move	   *move = (Move *) lfirst(lc);

		if (move->subid == mySubid)
			moves = foreach_delete_current(moves, lc);
	}
	if (moves == NIL && move_context != NULL)
		MemoryContextReset(move_context);
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

	key->nkeys = state->nkeys;
	for (i = 0; i < state->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, state->keyattnums[i] - 1);
		Datum		value = heap_getattr(tuple, state->keyattnums[i], tupdesc,
										 &key->isnull[i]);

		key->byval[i] = att->attbyval;
		key->len[i] = att->attlen;
		key->values[i] = key->isnull[i] ? (Datum) 0 :
			datumCopy(value, att->attbyval, att->attlen);
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
 *		partition, with the verdict, in case the UPDATE moves it.
 */
void
PayoutRememberUpdate(PayoutTableState *state, Relation rel,
					 HeapTuple oldtuple, HeapTuple newtuple,
					 int from, int oldres)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	MemoryContext oldcontext;
	Datum		value;
	bool		isnull;

	if (judged_context == NULL)
		judged_context = AllocSetContextCreate(CacheMemoryContext,
											   "payout judged update",
											   ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(judged_context);

	judged.valid = false;
	value = heap_getattr(newtuple, state->status_attnum, tupdesc, &isnull);
	if (isnull)
		return;
	judged.to = PayoutEnumIndex(PAYOUT_ENUM_STATUS, DatumGetObjectId(value));
	judged.newres = PAYOUT_NO_RESOLUTION;
	if (state->resolution_attnum != InvalidAttrNumber)
	{
		value = heap_getattr(newtuple, state->resolution_attnum, tupdesc, &isnull);
		if (!isnull)
			judged.newres = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
											DatumGetObjectId(value));
	}

	judged.automatic = PayoutIsAutomatic(state, rel, newtuple);
	oldcontext = MemoryContextSwitchTo(judged_context);
	ReadKey(state, rel, newtuple, &judged.key);
	MemoryContextSwitchTo(oldcontext);

	judged.subid = GetCurrentSubTransactionId();
	judged.relid = RelationGetRelid(rel);
	judged.tid = oldtuple->t_self;
	judged.root = state->root;
	judged.from = from;
	judged.oldres = oldres;
	judged.valid = true;
}

/*
 * PayoutIsMoveDelete
 *		Whether a BEFORE DELETE on a partition is the DELETE half of a move:
 *		the row version the UPDATE path judged last, in this subtransaction.
 */
bool
PayoutIsMoveDelete(Relation rel, HeapTuple oldtuple)
{
	return judged.valid &&
		judged.subid == GetCurrentSubTransactionId() &&
		judged.relid == RelationGetRelid(rel) &&
		ItemPointerEquals(&judged.tid, &oldtuple->t_self);
}

/*
 * OldVersionMoved
 *		Whether the judged row version was deleted by the current
 *		subtransaction and marked as moved to another partition.  Read from
 *		the heap: the mark is PostgreSQL's, set by the DELETE half of the
 *		move.  A partition of another table access method proves nothing.
 */
static bool
OldVersionMoved(void)
{
	Relation	oldrel;
	HeapTupleData tuple;
	Buffer		buffer;
	bool		moved = false;

	oldrel = table_open(judged.relid, AccessShareLock);
	if (oldrel->rd_rel->relam != HEAP_TABLE_AM_OID)
	{
		table_close(oldrel, AccessShareLock);
		return false;
	}

	tuple.t_self = judged.tid;
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
 * PayoutTakeMove
 *		Whether the row a BEFORE INSERT on a partition is about to insert is
 *		the INSERT half of a move (see the file header).  If so, return the
 *		status and resolution it had before the move, and queue the move
 *		for the history trigger.  Every call uses up the judged row.
 */
bool
PayoutTakeMove(PayoutTableState *state, Relation rel, HeapTuple newtuple,
			   int *from, int *oldres)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	RowKey		key;
	Datum		value;
	bool		isnull;
	int			to;
	int			newres = PAYOUT_NO_RESOLUTION;
	MemoryContext oldcontext;
	Move	   *move;

	if (!judged.valid)
		return false;
	judged.valid = false;

	if (judged.subid != GetCurrentSubTransactionId() ||
		judged.root != state->root ||
		judged.relid == RelationGetRelid(rel))
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
	if (to != judged.to || newres != judged.newres ||
		PayoutIsAutomatic(state, rel, newtuple) != judged.automatic)
		return false;

	ReadKey(state, rel, newtuple, &key);
	if (!SameKey(&key, &judged.key) || !OldVersionMoved())
		return false;

	*from = judged.from;
	*oldres = judged.oldres;

	if (state->has_history && state->nkeys > 0)
	{
		if (move_context == NULL)
			move_context = AllocSetContextCreate(CacheMemoryContext,
												 "payout moved rows",
												 ALLOCSET_DEFAULT_SIZES);
		oldcontext = MemoryContextSwitchTo(move_context);
		move = palloc(sizeof(Move));
		move->subid = GetCurrentSubTransactionId();
		move->relid = RelationGetRelid(rel);
		move->from = judged.from;
		move->oldres = judged.oldres;
		ReadKey(state, rel, newtuple, &move->key);
		moves = lappend(moves, move);
		MemoryContextSwitchTo(oldcontext);
	}
	return true;
}

/*
 * PayoutTakeMovedRow
 *		Whether the row the history trigger is about to record as inserted
 *		into rel is a proven move; if so, return its status and resolution
 *		before the move and take it off the queue.
 *
 * The row must have been inserted by this transaction, into this
 * partition, with the key of a queued move; the key is unique in the
 * partition, so no other row of the statement can have it.  AFTER INSERT
 * events fire in the order of the inserts, so the move is nearly always
 * at the head of the queue.
 */
bool
PayoutTakeMovedRow(PayoutTableState *state, Relation rel, HeapTuple newtuple,
				   int *from, int *oldres)
{
	RowKey		key;
	ListCell   *lc;

	if (moves == NIL ||
		!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(newtuple->t_data)))
		return false;

	ReadKey(state, rel, newtuple, &key);
	foreach(lc, moves)
	{
		Move	   *move = (Move *) lfirst(lc);

		if (move->relid != RelationGetRelid(rel) || !SameKey(&move->key, &key))
			continue;
		*from = move->from;
		*oldres = move->oldres;
		moves = foreach_delete_current(moves, lc);
		if (moves == NIL)
			MemoryContextReset(move_context);
		return true;
	}
	return false;
}
