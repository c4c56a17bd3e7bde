/*-------------------------------------------------------------------------
 *
 * history_buffer.c
 *	  Rows of payout.history buffered and written a statement at a time.
 *
 * The history trigger (history.c) does not write each row itself: it
 * appends the row's values to a buffer, and the buffer is written with one
 * INSERT ... SELECT FROM unnest() of arrays, one executor round trip for
 * every row a statement recorded, with the rights of the owner of
 * payout.history.  The buffer is written
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
 * end of a transaction that aborts.
 *
 * src/history_buffer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "history_buffer.h"
#include "payout.h"
#include "status.h"

/* Written at once when it holds this many rows. */
#define HISTORY_BUFFER_ROWS 8192

static const char *const history_insert =
"INSERT INTO payout.history"
" (tbl, key, old_status, new_status, old_resolution, new_resolution,"
"  xact_time, clock_time, user_name, session_user_name, application_name, xid)"
" SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

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
static Oid	plan_status_type = InvalidOid;
static Oid	plan_resolution_type = InvalidOid;

static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static Oid	ColumnType(int column);
static SPIPlanPtr GetHistoryPlan(void);
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
	SPIPlanPtr	plan;
	int			i;

	if (history_plan != NULL &&
		plan_status_type == status_type &&
		plan_resolution_type == resolution_type)
		return history_plan;

	for (i = 0; i < HISTORY_NCOLUMNS; i++)
		argtypes[i] = get_array_type(ColumnType(i));

	plan = SPI_prepare(history_insert, HISTORY_NCOLUMNS, argtypes);
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
		Oid			type = ColumnType(i);

		buffer.nulls[i][row] = nulls[i];
		/* the by-reference columns are text */
		buffer.values[i][row] = nulls[i] ? (Datum) 0 :
			(type == TEXTOID ? datumCopy(values[i], false, -1) : values[i]);
	}
	buffer.nrows++;
	MemoryContextSwitchTo(oldcontext);

	if (buffer.nrows >= HISTORY_BUFFER_ROWS)
		PayoutHistoryFlush();
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
 * PayoutHistoryFlush
 *		Write the buffered rows, in the order they were recorded, with one
 *		INSERT of arrays, as the owner of payout.history.
 *
 * The arrays are built in the caller's memory context and the buffer is
 * emptied before the INSERT runs, so that the INSERT's own end of statement
 * finds nothing to write.
 */
void
PayoutHistoryFlush(void)
{
	Datum		args[HISTORY_NCOLUMNS];
	int			dims[1];
	int			lbs[1] = {1};
	Oid			history_relid;
	HeapTuple	classtup;
	Oid			history_owner;
	Oid			save_userid;
	int			save_sec_context;
	int			ret;
	int			i;
	bool		pushed;

	if (buffer.nrows == 0 || flushing)
		return;

	dims[0] = buffer.nrows;
	for (i = 0; i < HISTORY_NCOLUMNS; i++)
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
	Forget();

	history_relid = get_relname_relid("history",
									  get_namespace_oid(PAYOUT_SCHEMA, false));
	classtup = SearchSysCache1(RELOID, ObjectIdGetDatum(history_relid));
	if (!HeapTupleIsValid(classtup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.history\" does not exist", PAYOUT_SCHEMA),
				 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));
	history_owner = ((Form_pg_class) GETSTRUCT(classtup))->relowner;
	ReleaseSysCache(classtup);

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
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(history_owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute_plan(GetHistoryPlan(), args, NULL, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "could not record payout history: %s",
				 SPI_result_code_string(ret));
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec_context);
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
