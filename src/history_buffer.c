/*-------------------------------------------------------------------------
 *
 * history_buffer.c
 *	  Rows of payout.history buffered and written a statement at a time.
 *
 * The history trigger (history.c) does not write each row itself: it
 * appends the row's values to a buffer, and the buffer is written at once,
 * with the rights of the owner of payout.history: straight into the heap
 * of each partition the rows belong to, a thousand rows a call as COPY
 * does (table_multi_insert), and then into the partition's indexes.  A
 * partition that needs more than that (triggers, CHECK constraints,
 * columns of its own, a foreign table or another table access method), or
 * a history table with rules, takes the executor's path instead: one
 * INSERT ... SELECT FROM unnest() of arrays.  The buffer is written
 *	- at the end of every statement the executor runs (ExecutorFinish, after
 *	  the statement's AFTER triggers have fired), so that the next statement
 *	  sees the rows;
 *	- at the end of every utility statement (COPY fires its AFTER triggers
 *	  without ExecutorFinish);
 *	- before commit and before PREPARE TRANSACTION, for what neither caught
 *	  (a logical replication apply worker fires AFTER triggers on its own);
 *	- when it holds HISTORY_BUFFER_ROWS rows, so that memory stays bounded
 *	  however many rows one statement changes.
 * A row belongs to the subtransaction that recorded it: rolled back with
 * it, it is dropped (SUBXACT_EVENT_ABORT_SUB), and so is everything at the
 * end of a transaction that aborts.  So rows are written only from the
 * subtransaction they belong to: a query that a trigger runs inside an
 * exception block ends in a subtransaction of its own, which may still
 * roll back, and leaves the statement's rows to the statement's end.
 *
 * src/history_buffer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupconvert.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "partitioning/partdesc.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "compat.h"
#include "history_buffer.h"
#include "payout.h"
#include "status.h"

/* Written at once when it holds this many rows. */
#define HISTORY_BUFFER_ROWS 8192

/* Rows one table_multi_insert() call takes, as COPY's buffer does. */
#define HISTORY_INSERT_BATCH 1000

/* The columns a change fills, in the order of the values of a row. */
static const char *const history_columns[HISTORY_NCOLUMNS] = {
	"tbl", "key", "old_status", "new_status", "old_resolution",
	"new_resolution", "xact_time", "clock_time", "user_name",
	"session_user_name", "application_name", "xid", "actor", "old_key"
};

/*
 * The columns a history table of 1.1 has: actor and old_key came with 1.2.
 * Until ALTER EXTENSION payout UPDATE has added them, this library writes
 * a database's history without them (and they are NULL).
 */
#define HISTORY_NCOLUMNS_1_1 12

/* How many of history_columns the history table being written has. */
static int	ncolumns = HISTORY_NCOLUMNS;

typedef struct HistoryBuffer
{
	int			nrows;
	int			maxrows;
	SubTransactionId *subids;
	Datum	   *values[HISTORY_NCOLUMNS];
	bool	   *nulls[HISTORY_NCOLUMNS];
} HistoryBuffer;

static MemoryContext buffer_context = NULL;
static HistoryBuffer buffer;
static bool flushing = false;

/* The prepared INSERT, and the enum types it was prepared for. */
static SPIPlanPtr history_plan = NULL;
static int	plan_ncolumns = 0;
static Oid	plan_status_type = InvalidOid;
static Oid	plan_resolution_type = InvalidOid;

static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* A partition rows are written to, and whether they may go straight in. */
typedef struct HistoryTarget
{
	ResultRelInfo *rri;
	bool		direct;
} HistoryTarget;

static Oid	ColumnType(int column);
static int	ColumnsOf(Relation history);
static SPIPlanPtr GetHistoryPlan(void);
static bool MapColumns(TupleDesc desc, AttrNumber *attnums, AttrNumber *id_attnum);
static bool HasForeignPartition(Relation rel);
static bool TakesRowsDirectly(ResultRelInfo *rri, TupleDesc rootdesc);
static void StoreRow(TupleTableSlot *slot, int row, const AttrNumber *attnums,
					 AttrNumber id_attnum, int64 id);
static bool WriteDirectly(Relation history, int nrows);
static void WriteWithInsert(int nrows);
static void Discard(int nrows);
static void Forget(void);
static void HistoryExecutorFinish(QueryDesc *queryDesc);
static void HistoryProcessUtility(PlannedStmt *pstmt, const char *queryString,
								  bool readOnlyTree,
								  ProcessUtilityContext context,
								  ParamListInfo params,
								  QueryEnvironment *queryEnv,
								  DestReceiver *dest, QueryCompletion *qc);
static void HistoryXactCallback(XactEvent event, void *arg);
static void HistorySubXactCallback(SubXactEvent event, SubTransactionId mySubid,
								   SubTransactionId parentSubid, void *arg);

/*
 * PayoutRegisterHistoryHooks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterHistoryHooks(void)
{
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = HistoryExecutorFinish;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = HistoryProcessUtility;
	RegisterXactCallback(HistoryXactCallback, NULL);
	RegisterSubXactCallback(HistorySubXactCallback, NULL);
}

/*
 * ColumnType
 *		The type of a column of the INSERT, for the arrays of the flush.
 */
static Oid
ColumnType(int column)
{
	switch (column)
	{
		case 0:
			return REGCLASSOID;
		case 2:
		case 3:
			return PayoutEnumTypeOid(PAYOUT_ENUM_STATUS);
		case 4:
		case 5:
			return PayoutEnumTypeOid(PAYOUT_ENUM_RESOLUTION);
		case 6:
		case 7:
			return TIMESTAMPTZOID;
		case 11:
			return XID8OID;
		default:
			return TEXTOID;
	}
}

/*
 * ColumnsOf
 *		How many of the columns of a change the history table has: all, or
 *		those of 1.1 before the update has added the others.
 */
static int
ColumnsOf(Relation history)
{
	TupleDesc	desc = RelationGetDescr(history);
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped &&
			strcmp(NameStr(att->attname), history_columns[HISTORY_NCOLUMNS_1_1]) == 0)
			return HISTORY_NCOLUMNS;
	}
	return HISTORY_NCOLUMNS_1_1;
}

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
	Oid			argtypes[HISTORY_NCOLUMNS];
	StringInfoData sql;
	SPIPlanPtr	plan;
	int			i;

	if (history_plan != NULL &&
		plan_ncolumns == ncolumns &&
		plan_status_type == status_type &&
		plan_resolution_type == resolution_type)
		return history_plan;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "INSERT INTO payout.history (");
	for (i = 0; i < ncolumns; i++)
	{
		argtypes[i] = get_array_type(ColumnType(i));
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "", history_columns[i]);
	}
	appendStringInfoString(&sql, ") SELECT * FROM unnest(");
	for (i = 0; i < ncolumns; i++)
		appendStringInfo(&sql, "%s$%d", i > 0 ? ", " : "", i + 1);
	appendStringInfoChar(&sql, ')');

	plan = SPI_prepare(sql.data, ncolumns, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for payout history: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed for payout history");

	if (history_plan != NULL)
		SPI_freeplan(history_plan);
	history_plan = plan;
	plan_ncolumns = ncolumns;
	plan_status_type = status_type;
	plan_resolution_type = resolution_type;
	return plan;
}

/*
 * PayoutHistoryAppend
 *		Buffer one history row, its values copied; written when the buffer
 *		is full, at the latest.
 */
void
PayoutHistoryAppend(const Datum *values, const bool *nulls)
{
	MemoryContext oldcontext;
	int			row;
	int			i;

	if (buffer_context == NULL)
		buffer_context = AllocSetContextCreate(CacheMemoryContext,
											   "payout history buffer",
											   ALLOCSET_DEFAULT_SIZES);
	oldcontext = MemoryContextSwitchTo(buffer_context);
	if (buffer.nrows == buffer.maxrows)
	{
		int			maxrows = buffer.maxrows ? buffer.maxrows * 2 : 64;

		if (buffer.maxrows == 0)
		{
			buffer.subids = palloc(sizeof(SubTransactionId) * maxrows);
			for (i = 0; i < HISTORY_NCOLUMNS; i++)
			{
				buffer.values[i] = palloc(sizeof(Datum) * maxrows);
				buffer.nulls[i] = palloc(sizeof(bool) * maxrows);
			}
		}
		else
		{
			buffer.subids = repalloc(buffer.subids, sizeof(SubTransactionId) * maxrows);
			for (i = 0; i < HISTORY_NCOLUMNS; i++)
			{
				buffer.values[i] = repalloc(buffer.values[i], sizeof(Datum) * maxrows);
				buffer.nulls[i] = repalloc(buffer.nulls[i], sizeof(bool) * maxrows);
			}
		}
		buffer.maxrows = maxrows;
	}

	row = buffer.nrows;
	buffer.subids[row] = GetCurrentSubTransactionId();
	for (i = 0; i < HISTORY_NCOLUMNS; i++)
	{
		buffer.nulls[i][row] = nulls[i];
		if (nulls[i])
			buffer.values[i][row] = (Datum) 0;
		else if (ColumnType(i) != TEXTOID)
			buffer.values[i][row] = values[i];
		else if (row > 0 && !buffer.nulls[i][row - 1] &&
				 datumIsEqual(values[i], buffer.values[i][row - 1], false, -1))
		{
			/* user names and application name: mostly the last row's */
			buffer.values[i][row] = buffer.values[i][row - 1];
		}
		else
			buffer.values[i][row] = datumCopy(values[i], false, -1);
	}
	buffer.nrows++;
	MemoryContextSwitchTo(oldcontext);

	/* (a flush waiting for an outer statement tries again a buffer later) */
	if (buffer.nrows % HISTORY_BUFFER_ROWS == 0)
		PayoutHistoryFlush();
}

/*
 * Discard
 *		Drop the first nrows rows, written; rows recorded while they were
 *		written stay.
 */
static void
Discard(int nrows)
{
	int			rest = buffer.nrows - nrows;
	int			i;

	if (rest == 0)
	{
		Forget();
		return;
	}
	memmove(buffer.subids, buffer.subids + nrows, sizeof(SubTransactionId) * rest);
	for (i = 0; i < HISTORY_NCOLUMNS; i++)
	{
		memmove(buffer.values[i], buffer.values[i] + nrows, sizeof(Datum) * rest);
		memmove(buffer.nulls[i], buffer.nulls[i] + nrows, sizeof(bool) * rest);
	}
	buffer.nrows = rest;
}

/*
 * Forget
 *		Empty the buffer, and give its memory back.
 */
static void
Forget(void)
{
	buffer.nrows = 0;
	buffer.maxrows = 0;
	if (buffer_context != NULL)
		MemoryContextReset(buffer_context);
}

/*
 * MapColumns
 *		The attribute numbers of payout.history's columns in desc: false if
 *		it has a column that is not one of them, or one of another type.
 */
static bool
MapColumns(TupleDesc desc, AttrNumber *attnums, AttrNumber *id_attnum)
{
	int			found = 0;
	int			i;
	int			k;

	*id_attnum = InvalidAttrNumber;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		if (att->attisdropped)
			return false;
		if (strcmp(name, "id") == 0 && att->atttypid == INT8OID)
		{
			*id_attnum = att->attnum;
			continue;
		}
		for (k = 0; k < ncolumns; k++)
			if (strcmp(name, history_columns[k]) == 0)
				break;
		if (k == ncolumns || att->atttypid != ColumnType(k))
			return false;
		attnums[k] = att->attnum;
		found++;
	}
	return found == ncolumns && *id_attnum != InvalidAttrNumber;
}

/*
 * TakesRowsDirectly
 *		Whether rows routed to a partition may go straight into its heap and
 *		indexes: a heap table of the root's row type whose own NOT NULLs are
 *		the root's, with no triggers, CHECK constraints or generated
 *		columns, whose insert would do nothing the heap and its indexes do
 *		not.
 */
static bool
TakesRowsDirectly(ResultRelInfo *rri, TupleDesc rootdesc)
{
	Relation	rel = rri->ri_RelationDesc;
	TupleDesc	desc = RelationGetDescr(rel);
	TupleConstr *constr = desc->constr;
	int			i;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rri->ri_TrigDesc != NULL ||
		rel->rd_tableam != GetHeapamTableAmRoutine())
		return false;
	if (constr != NULL && (constr->num_check > 0 || constr->has_generated_stored))
		return false;
	if (desc->natts != rootdesc->natts ||
		convert_tuples_by_name(rootdesc, desc) != NULL)
		return false;
	for (i = 0; i < desc->natts; i++)
		if (TupleDescAttr(desc, i)->attnotnull != TupleDescAttr(rootdesc, i)->attnotnull)
			return false;
	return true;
}

/*
 * HasForeignPartition
 *		Whether a partition at any level of rel is a foreign table: routing a
 *		row to one starts the foreign insert, which needs the executor's own
 *		state, so such a history takes the executor's path from the start.
 */
static bool
HasForeignPartition(Relation rel)
{
	PartitionDesc partdesc = RelationGetPartitionDesc(rel, true);
	int			i;

	for (i = 0; i < partdesc->nparts; i++)
	{
		Relation	part;
		bool		found;

		if (get_rel_relkind(partdesc->oids[i]) == RELKIND_FOREIGN_TABLE)
			return true;
		if (partdesc->is_leaf[i])
			continue;
		part = table_open(partdesc->oids[i], RowExclusiveLock);
		found = HasForeignPartition(part);
		table_close(part, NoLock);
		if (found)
			return true;
	}
	return false;
}

/*
 * StoreRow
 *		A buffered row, with its id, as the virtual tuple of slot.
 */
static void
StoreRow(TupleTableSlot *slot, int row, const AttrNumber *attnums,
		 AttrNumber id_attnum, int64 id)
{
	int			k;

	ExecClearTuple(slot);
	for (k = 0; k < ncolumns; k++)
	{
		slot->tts_values[attnums[k] - 1] = buffer.values[k][row];
		slot->tts_isnull[attnums[k] - 1] = buffer.nulls[k][row];
	}
	slot->tts_values[id_attnum - 1] = Int64GetDatum(id);
	slot->tts_isnull[id_attnum - 1] = false;
	ExecStoreVirtualTuple(slot);
}

/*
 * WriteDirectly
 *		Write the buffered rows into the heaps and indexes of the partitions
 *		of payout.history they belong to, routed the way COPY routes them.
 *		Returns false, having written nothing, when a row would go to a
 *		partition that needs the executor's INSERT, or would break one of
 *		the table's NOT NULLs.
 *
 * Each row takes the next id of payout.history's sequence, as its default
 * says, in the order the rows were recorded, before it is routed (a DBA
 * may partition by id too).  Writes nrows rows, those buffered when it
 * started.
 */
static bool
WriteDirectly(Relation history, int nrows)
{
	TupleDesc	desc = RelationGetDescr(history);
	AttrNumber	attnums[HISTORY_NCOLUMNS];
	AttrNumber	id_attnum;
	Oid			sequence;
	EState	   *estate;
	ResultRelInfo *root;
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute = NULL;
	TupleTableSlot *slot;
	TupleTableSlot **batch;
	HistoryTarget *targets;
	int			ntargets = 0;
	ResultRelInfo **rows;
	int64	   *ids;
	CommandId	cid = GetCurrentCommandId(true);
	MemoryContext oldcontext;
	bool		direct = true;
	int			start;
	int			row;
	int			k;

	if (!MapColumns(desc, attnums, &id_attnum) ||
		history->trigdesc != NULL || history->rd_rules != NULL ||
		(history->rd_rel->relkind == RELKIND_PARTITIONED_TABLE &&
		 HasForeignPartition(history)))
		return false;
	sequence = get_relname_relid("history_id_seq", RelationGetNamespace(history));
	if (!OidIsValid(sequence))
		return false;
	for (row = 0; row < nrows; row++)
		for (k = 0; k < ncolumns; k++)
			if (buffer.nulls[k][row] &&
				TupleDescAttr(desc, attnums[k] - 1)->attnotnull)
				return false;

	/* The executor's state for routing and index insertion, as COPY's. */
	estate = CreateExecutorState();
	oldcontext = MemoryContextSwitchTo(estate->es_query_cxt);
	estate->es_output_cid = cid;
	estate->es_snapshot = GetActiveSnapshot();
	root = makeNode(ResultRelInfo);
	InitResultRelInfo(root, history, 0, NULL, 0);
	mtstate = makeNode(ModifyTableState);
	mtstate->ps.plan = NULL;
	mtstate->ps.state = estate;
	mtstate->operation = CMD_INSERT;
	mtstate->mt_nrels = 1;
	mtstate->resultRelInfo = root;
	mtstate->rootResultRelInfo = root;
	if (history->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		proute = ExecSetupPartitionTupleRouting(estate, history);
	else
		ExecOpenIndices(root, false);

	/* Route every row first: all go straight in, or none does. */
	slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsVirtual);
	rows = palloc(sizeof(ResultRelInfo *) * nrows);
	ids = palloc(sizeof(int64) * nrows);
	targets = palloc(sizeof(HistoryTarget) * nrows);
	for (row = 0; row < nrows && direct; row++)
	{
		ResultRelInfo *rri = root;

		ids[row] = nextval_internal(sequence, false);
		if (proute != NULL)
		{
			StoreRow(slot, row, attnums, id_attnum, ids[row]);
			rri = ExecFindPartition(mtstate, root, proute, slot, estate);
			ResetPerTupleExprContext(estate);
		}
		rows[row] = rri;
		for (k = 0; k < ntargets; k++)
			if (targets[k].rri == rri)
				break;
		if (k == ntargets)
		{
			targets[k].rri = rri;
			targets[k].direct = TakesRowsDirectly(rri, desc);
			ntargets++;
		}
		direct = targets[k].direct;
	}

	/*
	 * Then write them in runs of one partition, at most a batch at a time:
	 * the heap in one call, then each row's index entries.
	 */
	batch = palloc0(sizeof(TupleTableSlot *) * HISTORY_INSERT_BATCH);
	for (start = 0; direct && start < nrows; start = row)
	{
		ResultRelInfo *rri = rows[start];
		Relation	rel = rri->ri_RelationDesc;
		int			n;

		for (row = start; row < nrows && rows[row] == rri &&
			 row - start < HISTORY_INSERT_BATCH; row++)
		{
			n = row - start;
			if (batch[n] == NULL)
				batch[n] = ExecInitExtraTupleSlot(estate, desc,
												  table_slot_callbacks(rel));
			StoreRow(batch[n], row, attnums, id_attnum, ids[row]);
		}
		n = row - start;
		table_multi_insert(rel, batch, n, cid, 0, NULL);
		for (k = 0; k < n; k++)
		{
			if (rri->ri_NumIndices > 0)
				list_free(PayoutInsertIndexTuples(rri, batch[k], estate));
			ResetPerTupleExprContext(estate);
			ExecClearTuple(batch[k]);
		}
	}

	if (proute != NULL)
		ExecCleanupTupleRouting(mtstate, proute);
	else
		ExecCloseIndices(root);
	ExecResetTupleTable(estate->es_tupleTable, false);
	MemoryContextSwitchTo(oldcontext);
	FreeExecutorState(estate);
	return direct;
}

/*
 * WriteWithInsert
 *		Write the buffered rows with the executor's INSERT of arrays.  The
 *		arrays are built in the caller's memory context.
 */
static void
WriteWithInsert(int nrows)
{
	Datum		args[HISTORY_NCOLUMNS];
	int			dims[1];
	int			lbs[1] = {1};
	int			ret;
	int			i;

	dims[0] = nrows;
	for (i = 0; i < ncolumns; i++)
	{
		Oid			type = ColumnType(i);
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
		args[i] = PointerGetDatum(construct_md_array(buffer.values[i],
													 buffer.nulls[i], 1, dims,
													 lbs, type, typlen,
													 typbyval, typalign));
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_plan(GetHistoryPlan(), args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not record payout history: %s",
			 SPI_result_code_string(ret));
	SPI_finish();
}

/*
 * PayoutHistoryFlush
 *		Write the buffered rows, in the order they were recorded, as the
 *		owner of payout.history, and empty the buffer.
 *
 * Rows are written only from the subtransaction they all belong to; when
 * some belong to an outer one (the end of a query that a trigger ran in an
 * exception block), they wait for the end of the outer statement, or for
 * commit.  While it writes, nothing else flushes: an INSERT's own end of
 * statement finds the flag set, and rows recorded meanwhile stay in the
 * buffer.  On error the transaction or subtransaction ends and its
 * callbacks drop what is left.
 */
void
PayoutHistoryFlush(void)
{
	Oid			history_relid;
	Relation	history;
	Oid			save_userid;
	int			save_sec_context;
	bool		pushed;
	int			nrows = buffer.nrows;
	int			row;

	if (nrows == 0 || flushing)
		return;
	for (row = 0; row < nrows; row++)
		if (buffer.subids[row] != GetCurrentSubTransactionId())
			return;

	history_relid = get_relname_relid("history",
									  get_namespace_oid(PAYOUT_SCHEMA, false));
	if (!OidIsValid(history_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.history\" does not exist", PAYOUT_SCHEMA),
				 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));

	/*
	 * Before commit there may be no active snapshot (an apply worker's
	 * transaction); the INSERT needs one.
	 */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());

	flushing = true;
	PG_TRY();
	{
		history = table_open(history_relid, RowExclusiveLock);
		ncolumns = ColumnsOf(history);
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(history->rd_rel->relowner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS);
		if (!WriteDirectly(history, nrows))
			WriteWithInsert(nrows);
		SetUserIdAndSecContext(save_userid, save_sec_context);
		table_close(history, NoLock);
		Discard(nrows);
	}
	PG_FINALLY();
	{
		flushing = false;
	}
	PG_END_TRY();

	if (pushed)
		PopActiveSnapshot();
}

/*
 * HistoryExecutorFinish
 *		After a statement's AFTER triggers: write what they recorded.
 */
static void
HistoryExecutorFinish(QueryDesc *queryDesc)
{
	if (prev_ExecutorFinish)
		prev_ExecutorFinish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
	PayoutHistoryFlush();
}

/*
 * HistoryProcessUtility
 *		After a utility statement (COPY): the same.  Not after transaction
 *		control, where the commit writes what is left.
 */
static void
HistoryProcessUtility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
	if (buffer.nrows > 0 && !IsA(pstmt->utilityStmt, TransactionStmt) &&
		IsTransactionState())
		PayoutHistoryFlush();
}

static void
HistoryXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			PayoutHistoryFlush();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			Forget();
			break;
		default:
			break;
	}
}

/*
 * HistorySubXactCallback
 *		Rows of a subtransaction that rolls back are dropped; those of one
 *		that commits now belong to its parent.
 */
static void
HistorySubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			kept = 0;
	int			row;
	int			i;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	for (row = 0; row < buffer.nrows; row++)
	{
		if (buffer.subids[row] == mySubid)
		{
			if (event == SUBXACT_EVENT_ABORT_SUB)
				continue;
			buffer.subids[row] = parentSubid;
		}
		if (kept != row)
		{
			buffer.subids[kept] = buffer.subids[row];
			for (i = 0; i < HISTORY_NCOLUMNS; i++)
			{
				buffer.values[i][kept] = buffer.values[i][row];
				buffer.nulls[i][kept] = buffer.nulls[i][row];
			}
		}
		kept++;
	}
	buffer.nrows = kept;
	if (kept == 0)
		Forget();
}
