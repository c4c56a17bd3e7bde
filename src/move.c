/*-------------------------------------------------------------------------
 *
 * move.c
 *	  Recognizing the rows an UPDATE moves from one partition to another.
 *
 * PostgreSQL carries out an UPDATE that changes a row's partition as a
 * DELETE from the old partition and an INSERT into the new one.  Row
 * triggers see it that way too: BEFORE UPDATE on the old partition, then
 * BEFORE INSERT on the new one, then (at the end of the statement) AFTER
 * INSERT on the new one; AFTER UPDATE triggers do not fire.  Left alone,
 * the enforcement trigger would judge the INSERT as a new payout and
 * reject it, and history would record it as one.
 *
 * So the BEFORE UPDATE path remembers the last row it let through on a
 * partition; the BEFORE INSERT that follows at once for a moved row
 * recognizes it (same command, same key, same status and resolution) and
 * queues the move; the history trigger's AFTER INSERT finds it at the head
 * of that queue, in the same order, and records the move as the change it
 * is.  Nested statements run with a later command id, so they never match;
 * the key comparison keeps a MERGE from passing off a new row as a moved
 * one.  A table without a primary key (which cannot have history) compares
 * every column instead.
 *
 * Both live in their own memory contexts under CacheMemoryContext: the
 * remembered row is replaced row by row, and the queue is emptied when a
 * new command starts filling it.  A statement nested in a trigger that
 * moves rows of its own empties the queue too; the outer statement's moves
 * are then recorded as inserts into the new partition.
 *
 * src/move.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "nodes/pg_list.h"
#include "storage/proc.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "move.h"
#include "transition.h"

/* The last row the UPDATE path let through on a partition. */
typedef struct MovableRow
{
	LocalTransactionId lxid;
	CommandId	cid;
	Oid			relid;
	Oid			oldstatus;
	Oid			oldresolution;	/* InvalidOid: none */
	Oid			newstatus;
	Oid			newresolution;
	HeapTuple	tuple;
} MovableRow;

/* A recognized move, waiting for the history trigger. */
typedef struct Move
{
	Oid			relid;			/* the new partition */
	char	   *key;
	Oid			oldstatus;
	Oid			oldresolution;
} Move;

static MemoryContext movable_context = NULL;
static MovableRow movable = {InvalidLocalTransactionId};

static MemoryContext moves_context = NULL;
static LocalTransactionId moves_lxid = InvalidLocalTransactionId;
static CommandId moves_cid = InvalidCommandId;
static List *moves = NIL;
static int	moves_next = 0;		/* the head of the queue */

static bool SameCommand(LocalTransactionId lxid, CommandId cid);
static bool SameRowValues(Relation oldrel, HeapTuple oldtuple,
						  Relation newrel, HeapTuple newtuple);

static bool
SameCommand(LocalTransactionId lxid, CommandId cid)
{
	return lxid == MyProc->lxid && cid == GetCurrentCommandId(false);
}

/*
 * SameRowValues
 *		Whether two rows of two partitions hold the same value in each
 *		column, matching columns by name (partitions may order them
 *		differently).  Stored generated columns are left out: the UPDATE
 *		computes them after its BEFORE triggers, before the move.
 *
 * A moved row carries the very datums the UPDATE path saw, so binary
 * equality is the right test.  The same values in every column, partition
 * key included, route to one partition only, so no other row inserted into
 * the new partition by the same command can match a row that stayed put.
 */
static bool
SameRowValues(Relation oldrel, HeapTuple oldtuple,
			  Relation newrel, HeapTuple newtuple)
{
	TupleDesc	olddesc = RelationGetDescr(oldrel);
	TupleDesc	newdesc = RelationGetDescr(newrel);
	int			matched = 0;
	int			i;

	for (i = 0; i < newdesc->natts; i++)
	{
		Form_pg_attribute newatt = TupleDescAttr(newdesc, i);
		AttrNumber	oldattnum;
		Datum		oldvalue;
		Datum		newvalue;
		bool		oldnull;
		bool		newnull;

		if (newatt->attisdropped || newatt->attgenerated)
			continue;
		oldattnum = get_attnum(RelationGetRelid(oldrel), NameStr(newatt->attname));
		if (oldattnum == InvalidAttrNumber)
			return false;
		oldvalue = heap_getattr(oldtuple, oldattnum, olddesc, &oldnull);
		newvalue = heap_getattr(newtuple, i + 1, newdesc, &newnull);
		if (oldnull != newnull ||
			(!newnull && !datumIsEqual(oldvalue, newvalue,
									   newatt->attbyval, newatt->attlen)))
			return false;
		matched++;
	}
	return matched > 0;
}

/*
 * PayoutRememberUpdate
 *		Remember a row the UPDATE path let through on a partition, in case
 *		the UPDATE moves it to another partition.
 */
void
PayoutRememberUpdate(Relation rel, HeapTuple newtuple,
					 Oid oldstatus, Oid oldresolution,
					 Oid newstatus, Oid newresolution)
{
	MemoryContext oldcontext;

	if (movable_context == NULL)
		movable_context = AllocSetContextCreate(CacheMemoryContext,
												"payout movable row",
												ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(movable_context);

	oldcontext = MemoryContextSwitchTo(movable_context);
	movable.tuple = heap_copytuple(newtuple);
	MemoryContextSwitchTo(oldcontext);

	movable.lxid = MyProc->lxid;
	movable.cid = GetCurrentCommandId(false);
	movable.relid = RelationGetRelid(rel);
	movable.oldstatus = oldstatus;
	movable.oldresolution = oldresolution;
	movable.newstatus = newstatus;
	movable.newresolution = newresolution;
}

/*
 * PayoutIsMovedRow
 *		Whether the row being inserted into a partition is the row this
 *		command just let through on another partition.  If so, the move is
 *		queued for the history trigger.
 */
bool
PayoutIsMovedRow(Relation rel, HeapTuple tuple, Oid status, Oid resolution)
{
	Relation	oldrel;
	char	   *oldkey;
	char	   *newkey;
	bool		same;
	MemoryContext oldcontext;
	Move	   *move;

	if (!SameCommand(movable.lxid, movable.cid) ||
		movable.relid == RelationGetRelid(rel) ||
		movable.newstatus != status ||
		movable.newresolution != resolution)
		return false;

	oldrel = RelationIdGetRelation(movable.relid);
	if (!RelationIsValid(oldrel))
		return false;
	oldkey = PayoutRowKey(oldrel, movable.tuple);
	newkey = PayoutRowKey(rel, tuple);
	if (oldkey == NULL && newkey == NULL)
		same = SameRowValues(oldrel, movable.tuple, rel, tuple);
	else
		same = oldkey != NULL && newkey != NULL && strcmp(oldkey, newkey) == 0;
	RelationClose(oldrel);
	if (!same)
		return false;

	movable.lxid = InvalidLocalTransactionId;	/* one move per row */

	/* No primary key, so no history: nobody will take the move. */
	if (newkey == NULL)
		return true;

	if (moves_context == NULL)
		moves_context = AllocSetContextCreate(CacheMemoryContext,
											  "payout moved rows",
											  ALLOCSET_SMALL_SIZES);
	if (!SameCommand(moves_lxid, moves_cid))
	{
		MemoryContextReset(moves_context);
		moves = NIL;
		moves_next = 0;
		moves_lxid = MyProc->lxid;
		moves_cid = GetCurrentCommandId(false);
	}

	oldcontext = MemoryContextSwitchTo(moves_context);
	move = palloc(sizeof(Move));
	move->relid = RelationGetRelid(rel);
	move->key = pstrdup(newkey);
	move->oldstatus = movable.oldstatus;
	move->oldresolution = movable.oldresolution;
	moves = lappend(moves, move);
	MemoryContextSwitchTo(oldcontext);

	return true;
}

/*
 * PayoutTakeMove
 *		Whether the row the history trigger is about to record as inserted
 *		into rel is a moved row; if so, return its status and resolution
 *		before the move and take it off the queue.
 *
 * AFTER INSERT events fire in the order of the inserts, so a moved row is
 * always at the head of the queue when its event comes.
 */
bool
PayoutTakeMove(Relation rel, const char *key,
			   Oid *oldstatus, Oid *oldresolution)
{
	Move	   *move;

	/*
	 * Only the transaction is compared: the history trigger's own inserts
	 * advance the command id while the statement's AFTER events fire.
	 */
	if (moves_next >= list_length(moves) || moves_lxid != MyProc->lxid)
		return false;

	move = (Move *) list_nth(moves, moves_next);
	if (move->relid != RelationGetRelid(rel) || strcmp(move->key, key) != 0)
		return false;

	*oldstatus = move->oldstatus;
	*oldresolution = move->oldresolution;
	moves_next++;
	return true;
}
