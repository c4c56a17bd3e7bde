/*-------------------------------------------------------------------------
 *
 * history_buffer.c
 *	  Rows of payout.history buffered and written a statement at a time.
 *
 * The history trigger (history.c) does not write each row itself: it
 * appends the row to a buffer, and the buffer is written at once, the way
 * COPY writes: each row takes its id (and any column a DBA added takes its
 * default), is routed to its partition of payout.history, and goes
 * straight into the partition's heap, a thousand rows a call, and into its
 * indexes; a partition with BEFORE triggers, or a foreign one, takes its
 * rows one at a time through them; CHECK constraints, generated columns
 * and AFTER triggers of partitions work as for COPY.  No SQL statement is
 * run, so nothing counts one (pg_stat_statements), and every id is drawn
 * once.
 *
 * When: at the end of the statement whose triggers recorded the rows, so
 * that the next statement sees them.  The executor's and the utility
 * statements' hooks (ExecutorFinish, after the AFTER triggers; and
 * ProcessUtility, for COPY) count how deep their statements are nested and
 * write when one ends.  A row recorded while none of them is running is
 * written at once: the hooks are installed when the library is loaded,
 * which may be in the middle of a statement they then do not see end (a
 * session whose first payout change comes from a COPY), and a logical
 * replication apply worker fires triggers outside any of them.  Nothing is
 * therefore left for commit, where PostgreSQL no longer runs user code
 * (deferred triggers have fired): rows still in the buffer then are an
 * error, never a silent loss.  (An apply worker's last change may be a
 * delete that history holds back, in case it is half of a move whose
 * insert comes next: move.c.  When the transaction ends there, that row is
 * written just before commit.)  The buffer is also written when it holds
 * HISTORY_BUFFER_ROWS rows, so that memory stays bounded however many rows
 * one statement changes.
 *
 * A row belongs to the subtransaction that recorded it: rolled back with
 * it, it is dropped; committed, it is its parent's.  The buffer keeps its
 * rows as a stack of runs of one subtransaction each, so each of those
 * events costs O(1) whatever the buffer holds.  Rows are written only when
 * they all belong to the current subtransaction: a query that a trigger
 * runs inside an exception block ends in a subtransaction of its own,
 * which may still roll back, and leaves the statement's rows to the
 * statement's end.
 *
 * Rights: writers get no privilege on payout.history.  Rows are written as
 * its owner, the superuser who created the extension, in a
 * security-restricted operation (SECURITY_RESTRICTED_OPERATION), and
 * whatever a DBA gave history that runs code (triggers, CHECK constraints,
 * defaults, expression indexes or partition keys, operator families of
 * its own) runs with search_path pg_catalog, pg_temp, as PostgreSQL's own
 * maintenance commands run code as a table's owner: such code cannot
 * change the session's role or settings, create temporary objects, or
 * defer triggers.  search_path is changed only when such code is about to
 * run: history as the extension makes it runs none.
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
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "foreign/fdwapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "compat.h"
#include "history_buffer.h"
#include "payout.h"
#include "status.h"

/* Written at once when it holds this many rows. */
#define HISTORY_BUFFER_ROWS 8192

/* Rows one table_multi_insert() call takes, as COPY's buffer does. */
#define HISTORY_INSERT_BATCH 1000

/* The columns a change fills, in the order of the buffer's columns. */
typedef enum HistoryColumn
{
	HC_TBL,
	HC_KEY,
	HC_OLD_STATUS,
	HC_NEW_STATUS,
	HC_OLD_RESOLUTION,
	HC_NEW_RESOLUTION,
	HC_XACT_TIME,
	HC_CLOCK_TIME,
	HC_USER_NAME,
	HC_SESSION_USER_NAME,
	HC_APPLICATION_NAME,
	HC_XID,
	/* columns 1.2 added: a database still on 1.0 or 1.1 has neither */
	HC_ACTOR,
	HC_OLD_KEY,
	HISTORY_NCOLUMNS
} HistoryColumn;

#define HC_FIRST_OPTIONAL HC_ACTOR

static const char *const history_columns[HISTORY_NCOLUMNS] = {
	"tbl", "key", "old_status", "new_status", "old_resolution",
	"new_resolution", "xact_time", "clock_time", "user_name",
	"session_user_name", "application_name", "xid", "actor", "old_key"
};

/* A run of buffered rows of one subtransaction. */
typedef struct HistoryRun
{
	SubTransactionId subid;
	int			first;			/* its first row */
} HistoryRun;

typedef struct HistoryBuffer
{
	int			nrows;
	int			maxrows;
	Datum	   *values[HISTORY_NCOLUMNS];
	bool	   *nulls[HISTORY_NCOLUMNS];
	Oid		   *roles[2];		/* of the user name columns, to share text */
	HistoryRun *runs;			/* stack: the newest subtransaction last */
	int			nruns;
	int			maxruns;
} HistoryBuffer;

/*
 * What the writer needs to know of payout.history, kept until a relcache
 * invalidation of it: which attribute holds each column a change fills,
 * and which other columns take a default.  The columns 1.2 added are
 * missing from a database whose extension is still on an older version:
 * the library serves every version.
 */
typedef struct HistoryLayout
{
	bool		valid;
	Oid			relid;
	Oid			owner;
	AttrNumber	attnums[HISTORY_NCOLUMNS];
	int			ndefaults;
	AttrNumber *default_attnums;	/* the other columns, id first among them */
	Oid		   *default_sequences;	/* nextval(sequence), or InvalidOid */

	/*
	 * Whether writing a row may run code of a DBA's before it reaches a
	 * partition: a default that calls a function outside pg_catalog, a
	 * statement trigger of payout.history, a partition key that is an
	 * expression.
	 */
	bool		runs_code;
	/* the relations of payout.history's tree, sorted, and what is known of
	 * each: 0 not yet, 'p' plain (writing runs no code of a DBA's), 'c' not */
	int			ntree;
	Oid		   *tree;
	char	   *plain;
} HistoryLayout;

char	   *payout_actor = NULL;

static MemoryContext buffer_context = NULL;
static MemoryContext layout_context = NULL;
static int	restricted_nestlevel = 0;	/* of the restricted search_path */
static HistoryBuffer buffer;
static HistoryLayout layout;
static bool flushing = false;
static int	statement_nesting = 0;

static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static bool IsTextColumn(int column);
static Datum CopyText(int column, int row, const char *value);
static Datum RoleName(int column, int row, Oid role);
static bool Writable(void);
static void Forget(void);
static void Discard(int nrows);
static void LoadLayout(Relation history);
static bool NotInCatalog(Oid func_id, void *context);
static bool ExprRunsCode(Node *expr, void *context);
static bool RunsCode(ResultRelInfo *rri);
static void Restrict(void);
static void LayoutCallback(Datum arg, Oid relid);
static void StoreRow(TupleTableSlot *slot, int row, ExprState **defaults,
					 ExprContext *econtext);
static void FlushBatch(ResultRelInfo *rri, TupleTableSlot **batch, int n,
					   EState *estate, CommandId cid);
static void WriteRows(Relation history, int nrows);
static void WriteErrorCallback(void *arg);
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
	CacheRegisterRelcacheCallback(LayoutCallback, (Datum) 0);
}

/*
 * IsTextColumn
 *		Whether a buffer column holds text: copied, and shared with the row
 *		before where equal.  The others are passed by value.
 */
static bool
IsTextColumn(int column)
{
	switch (column)
	{
		case HC_KEY:
		case HC_USER_NAME:
		case HC_SESSION_USER_NAME:
		case HC_APPLICATION_NAME:
		case HC_ACTOR:
		case HC_OLD_KEY:
			return true;
		default:
			return false;
	}
}

/*
 * CopyText
 *		A string as text in the buffer's memory, or the previous row's copy
 *		where it is the same (application_name and payout.actor seldom
 *		change from row to row).  Call in buffer_context.
 */
static Datum
CopyText(int column, int row, const char *value)
{
	if (row > 0 && !buffer.nulls[column][row - 1])
	{
		text	   *previous = DatumGetTextPP(buffer.values[column][row - 1]);
		int			len = strlen(value);

		if (VARSIZE_ANY_EXHDR(previous) == len &&
			memcmp(VARDATA_ANY(previous), value, len) == 0)
			return buffer.values[column][row - 1];
	}
	return CStringGetTextDatum(value);
}

/*
 * RoleName
 *		A role's name as text in the buffer's memory, looked up now: the
 *		previous row's copy where the role is the same.  Nothing is cached
 *		across rows that an invalidation could free under a caller's feet.
 *		Call in buffer_context.
 */
static Datum
RoleName(int column, int row, Oid role)
{
	int			which = column == HC_USER_NAME ? 0 : 1;

	buffer.roles[which][row] = role;
	if (row > 0 && buffer.roles[which][row - 1] == role)
		return buffer.values[column][row - 1];
	return CStringGetTextDatum(GetUserNameFromId(role, false));
}

/*
 * PayoutHistoryAppend
 *		Buffer one history row; written at the end of the statement, at
 *		once when no statement end will come, or when the buffer is full.
 */
void
PayoutHistoryAppend(const PayoutHistoryRow *row)
{
	SubTransactionId subid = GetCurrentSubTransactionId();
	MemoryContext oldcontext;
	const char *appname = application_name;
	int			r;
	int			i;

	if (buffer_context == NULL)
		buffer_context = AllocSetContextCreate(TopMemoryContext,
											   "payout history buffer",
											   ALLOCSET_DEFAULT_SIZES);
	oldcontext = MemoryContextSwitchTo(buffer_context);
	if (buffer.nrows == buffer.maxrows)
	{
		int			maxrows = buffer.maxrows ? buffer.maxrows * 2 : 64;

		for (i = 0; i < HISTORY_NCOLUMNS; i++)
		{
			buffer.values[i] = buffer.maxrows ?
				repalloc(buffer.values[i], sizeof(Datum) * maxrows) :
				palloc(sizeof(Datum) * maxrows);
			buffer.nulls[i] = buffer.maxrows ?
				repalloc(buffer.nulls[i], sizeof(bool) * maxrows) :
				palloc(sizeof(bool) * maxrows);
		}
		for (i = 0; i < 2; i++)
			buffer.roles[i] = buffer.maxrows ?
				repalloc(buffer.roles[i], sizeof(Oid) * maxrows) :
				palloc(sizeof(Oid) * maxrows);
		buffer.maxrows = maxrows;
	}
	if (buffer.nruns == 0 || buffer.runs[buffer.nruns - 1].subid != subid)
	{
		if (buffer.nruns == buffer.maxruns)
		{
			buffer.maxruns = buffer.maxruns ? buffer.maxruns * 2 : 8;
			buffer.runs = buffer.runs ?
				repalloc(buffer.runs, sizeof(HistoryRun) * buffer.maxruns) :
				palloc(sizeof(HistoryRun) * buffer.maxruns);
		}
		buffer.runs[buffer.nruns].subid = subid;
		buffer.runs[buffer.nruns].first = buffer.nrows;
		buffer.nruns++;
	}

	r = buffer.nrows;
	for (i = 0; i < HISTORY_NCOLUMNS; i++)
		buffer.nulls[i][r] = false;
	buffer.values[HC_TBL][r] = ObjectIdGetDatum(row->tbl);
	if (row->key != NULL)
		buffer.values[HC_KEY][r] = datumCopy(PointerGetDatum(row->key), false, -1);
	else
		buffer.nulls[HC_KEY][r] = true;
	buffer.values[HC_OLD_STATUS][r] = row->old_status;
	buffer.nulls[HC_OLD_STATUS][r] = row->old_status_null;
	buffer.values[HC_NEW_STATUS][r] = row->new_status;
	buffer.nulls[HC_NEW_STATUS][r] = row->new_status_null;
	buffer.values[HC_OLD_RESOLUTION][r] = row->old_resolution;
	buffer.nulls[HC_OLD_RESOLUTION][r] = row->old_resolution_null;
	buffer.values[HC_NEW_RESOLUTION][r] = row->new_resolution;
	buffer.nulls[HC_NEW_RESOLUTION][r] = row->new_resolution_null;
	buffer.values[HC_XACT_TIME][r] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	buffer.values[HC_CLOCK_TIME][r] = TimestampTzGetDatum(GetCurrentTimestamp());
	buffer.values[HC_USER_NAME][r] = RoleName(HC_USER_NAME, r, row->user_id);
	buffer.values[HC_SESSION_USER_NAME][r] =
		RoleName(HC_SESSION_USER_NAME, r, GetSessionUserId());
	if (appname != NULL)
		buffer.values[HC_APPLICATION_NAME][r] = CopyText(HC_APPLICATION_NAME, r, appname);
	else
		buffer.nulls[HC_APPLICATION_NAME][r] = true;
	buffer.values[HC_XID][r] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	if (payout_actor != NULL && payout_actor[0] != '\0')
		buffer.values[HC_ACTOR][r] = CopyText(HC_ACTOR, r, payout_actor);
	else
		buffer.nulls[HC_ACTOR][r] = true;
	if (row->old_key != NULL)
		buffer.values[HC_OLD_KEY][r] = datumCopy(PointerGetDatum(row->old_key), false, -1);
	else
		buffer.nulls[HC_OLD_KEY][r] = true;
	buffer.nrows++;
	MemoryContextSwitchTo(oldcontext);

	/*
	 * With no statement of ours running, no statement end will write the
	 * row: write it now.  Otherwise when the buffer is full (a flush that
	 * must wait for an outer statement tries again at the next row).
	 */
	if (statement_nesting == 0 || buffer.nrows >= HISTORY_BUFFER_ROWS)
		PayoutHistoryFlush();
}

/*
 * Writable
 *		Whether the buffered rows may be written now: all of them belong to
 *		the current subtransaction.
 */
static bool
Writable(void)
{
	return buffer.nruns == 1 &&
		buffer.runs[0].subid == GetCurrentSubTransactionId();
}

/*
 * Forget
 *		Empty the buffer, and give its memory back.
 */
static void
Forget(void)
{
	memset(&buffer, 0, sizeof(buffer));
	if (buffer_context != NULL)
		MemoryContextReset(buffer_context);
}

/*
 * Discard
 *		Drop the first nrows rows, written; rows recorded while they were
 *		written (by a trigger of a history partition changing a payout) stay,
 *		in the current subtransaction's run.
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
	for (i = 0; i < HISTORY_NCOLUMNS; i++)
	{
		memmove(buffer.values[i], buffer.values[i] + nrows, sizeof(Datum) * rest);
		memmove(buffer.nulls[i], buffer.nulls[i] + nrows, sizeof(bool) * rest);
	}
	for (i = 0; i < 2; i++)
		memmove(buffer.roles[i], buffer.roles[i] + nrows, sizeof(Oid) * rest);
	buffer.nrows = rest;
	for (i = 0; i < buffer.nruns; i++)
		buffer.runs[i].first = Max(buffer.runs[i].first - nrows, 0);
}

/*
 * LayoutCallback
 *		Relcache callback: forget the layout when payout.history or one of
 *		its partitions may have changed.  Only a flag, as every invalidation
 *		callback.
 */
static void
LayoutCallback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == layout.relid ||
		(layout.valid &&
		 bsearch(&relid, layout.tree, layout.ntree, sizeof(Oid), oid_cmp) != NULL))
		layout.valid = false;
}

/*
 * LoadLayout
 *		Map payout.history's attributes: each column a change fills must be
 *		there with its type; every other column (id, and any a DBA added)
 *		takes its default, for which the common nextval() of a sequence is
 *		noted, to be drawn without evaluating an expression.
 */
static void
LoadLayout(Relation history)
{
	TupleDesc	desc = RelationGetDescr(history);
	AttrNumber	attnums[HISTORY_NCOLUMNS] = {0};
	MemoryContext oldcontext;
	List	   *tree;
	ListCell   *lc;
	int			ndefaults = 0;
	int			i;
	int			k;

	if (layout_context == NULL)
		layout_context = AllocSetContextCreate(CacheMemoryContext,
											   "payout history layout",
											   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(layout_context);
	layout.valid = false;
	layout.relid = RelationGetRelid(history);
	oldcontext = MemoryContextSwitchTo(layout_context);
	layout.default_attnums = palloc(sizeof(AttrNumber) * desc->natts);
	layout.default_sequences = palloc(sizeof(Oid) * desc->natts);
	MemoryContextSwitchTo(oldcontext);

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			wanted;

		if (att->attisdropped)
			continue;
		for (k = 0; k < HISTORY_NCOLUMNS; k++)
			if (strcmp(NameStr(att->attname), history_columns[k]) == 0)
				break;
		if (k == HISTORY_NCOLUMNS)
		{
			Node	   *expr = build_column_default(history, att->attnum);
			Oid			sequence = InvalidOid;

			if (expr != NULL && IsA(expr, FuncExpr) &&
				((FuncExpr *) expr)->funcid == F_NEXTVAL &&
				list_length(((FuncExpr *) expr)->args) == 1 &&
				IsA(linitial(((FuncExpr *) expr)->args), Const) &&
				!((Const *) linitial(((FuncExpr *) expr)->args))->constisnull &&
				att->atttypid == INT8OID)
				sequence = DatumGetObjectId(((Const *) linitial(((FuncExpr *) expr)->args))->constvalue);
			/* id first: it is drawn first, in the order rows were recorded */
			if (strcmp(NameStr(att->attname), "id") == 0 && ndefaults > 0)
			{
				layout.default_attnums[ndefaults] = layout.default_attnums[0];
				layout.default_sequences[ndefaults] = layout.default_sequences[0];
				layout.default_attnums[0] = att->attnum;
				layout.default_sequences[0] = sequence;
			}
			else
			{
				layout.default_attnums[ndefaults] = att->attnum;
				layout.default_sequences[ndefaults] = sequence;
			}
			ndefaults++;
			continue;
		}
		switch (k)
		{
			case HC_TBL:
				wanted = REGCLASSOID;
				break;
			case HC_OLD_STATUS:
			case HC_NEW_STATUS:
				wanted = PayoutEnumTypeOid(PAYOUT_ENUM_STATUS);
				break;
			case HC_OLD_RESOLUTION:
			case HC_NEW_RESOLUTION:
				wanted = PayoutEnumTypeOid(PAYOUT_ENUM_RESOLUTION);
				break;
			case HC_XACT_TIME:
			case HC_CLOCK_TIME:
				wanted = TIMESTAMPTZOID;
				break;
			case HC_XID:
				wanted = XID8OID;
				break;
			default:
				wanted = TEXTOID;
				break;
		}
		if (att->atttypid != wanted)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of relation \"%s.history\" must be of type %s",
							history_columns[k], PAYOUT_SCHEMA,
							format_type_be(wanted)),
					 errdetail("It is of type %s.", format_type_be(att->atttypid)),
					 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));
		attnums[k] = att->attnum;
	}
	for (k = 0; k < HISTORY_NCOLUMNS; k++)
		if (attnums[k] == InvalidAttrNumber && k < HC_FIRST_OPTIONAL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"%s.history\" does not exist",
							history_columns[k], PAYOUT_SCHEMA),
					 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));

	memcpy(layout.attnums, attnums, sizeof(attnums));
	layout.ndefaults = ndefaults;
	layout.owner = history->rd_rel->relowner;

	/* What may run code of a DBA's on the way to a partition. */
	layout.runs_code = history->trigdesc != NULL &&
		(history->trigdesc->trig_insert_before_statement ||
		 history->trigdesc->trig_insert_after_statement);
	for (k = 0; k < ndefaults; k++)
		if (!OidIsValid(layout.default_sequences[k]) &&
			ExprRunsCode(build_column_default(history, layout.default_attnums[k]), NULL))
			layout.runs_code = true;
	tree = find_all_inheritors(layout.relid, NoLock, NULL);
	oldcontext = MemoryContextSwitchTo(layout_context);
	layout.ntree = list_length(tree);
	layout.tree = palloc(sizeof(Oid) * Max(layout.ntree, 1));
	layout.plain = palloc0(sizeof(char) * Max(layout.ntree, 1));
	MemoryContextSwitchTo(oldcontext);
	i = 0;
	foreach(lc, tree)
	{
		Oid			relid = lfirst_oid(lc);
		HeapTuple	partkey;

		layout.tree[i++] = relid;
		partkey = SearchSysCache1(PARTRELID, ObjectIdGetDatum(relid));
		if (HeapTupleIsValid(partkey))
		{
			if (!heap_attisnull(partkey, Anum_pg_partitioned_table_partexprs, NULL))
				layout.runs_code = true;
			ReleaseSysCache(partkey);
		}
	}
	qsort(layout.tree, layout.ntree, sizeof(Oid), oid_cmp);
	list_free(tree);
	layout.valid = true;
}

/*
 * NotInCatalog
 *		check_functions_in_node() checker: a function of someone's, not
 *		PostgreSQL's own.
 */
static bool
NotInCatalog(Oid func_id, void *context)
{
	return get_func_namespace(func_id) != PG_CATALOG_NAMESPACE;
}

/*
 * ExprRunsCode
 *		Whether an expression tree calls a function outside pg_catalog
 *		anywhere in it.
 */
static bool
ExprRunsCode(Node *expr, void *context)
{
	if (expr == NULL)
		return false;
	if (check_functions_in_node(expr, NotInCatalog, context))
		return true;
	return expression_tree_walker(expr, ExprRunsCode, context);
}

/*
 * RunsCode
 *		Whether writing a row into this partition (or payout.history itself)
 *		may run code of a DBA's: a trigger, a foreign table, a generated
 *		column, a CHECK constraint, an index expression or predicate that
 *		calls a function outside pg_catalog, an exclusion constraint, an
 *		index of an operator family outside pg_catalog.  Known once per
 *		partition until it changes.
 */
static bool
RunsCode(ResultRelInfo *rri)
{
	Relation	rel = rri->ri_RelationDesc;
	Oid			relid = RelationGetRelid(rel);
	Oid		   *found = bsearch(&relid, layout.tree, layout.ntree, sizeof(Oid), oid_cmp);
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	bool		code = false;
	int			i;
	int			j;

	if (found != NULL && layout.plain[found - layout.tree] != 0)
		return layout.plain[found - layout.tree] == 'c';

	if (rri->ri_TrigDesc != NULL || rri->ri_FdwRoutine != NULL ||
		(constr != NULL && constr->has_generated_stored))
		code = true;
	for (i = 0; !code && constr != NULL && i < constr->num_check; i++)
		code = ExprRunsCode(stringToNode(constr->check[i].ccbin), NULL);
	for (i = 0; !code && i < rri->ri_NumIndices; i++)
	{
		IndexInfo  *ii = rri->ri_IndexRelationInfo[i];
		Relation	index = rri->ri_IndexRelationDescs[i];

		if (ii->ii_ExclusionOps != NULL ||
			ExprRunsCode((Node *) ii->ii_Expressions, NULL) ||
			ExprRunsCode((Node *) ii->ii_Predicate, NULL))
			code = true;
		for (j = 0; !code && j < IndexRelationGetNumberOfKeyAttributes(index); j++)
		{
			HeapTuple	opf = SearchSysCache1(OPFAMILYOID,
											  ObjectIdGetDatum(index->rd_opfamily[j]));

			if (!HeapTupleIsValid(opf) ||
				((Form_pg_opfamily) GETSTRUCT(opf))->opfnamespace != PG_CATALOG_NAMESPACE)
				code = true;
			if (HeapTupleIsValid(opf))
				ReleaseSysCache(opf);
		}
	}
	/* (a partition attached since the layout was made is asked again) */
	if (found != NULL)
		layout.plain[found - layout.tree] = code ? 'c' : 'p';
	return code;
}

/*
 * Restrict
 *		From here to the end of the flush, search_path is pg_catalog,
 *		pg_temp: code of a DBA's is about to run as the owner of
 *		payout.history.  Done only then, since changing search_path and
 *		putting it back costs as much as writing a row.
 */
static void
Restrict(void)
{
	if (restricted_nestlevel != 0)
		return;
	restricted_nestlevel = NewGUCNestLevel();
	PayoutRestrictSearchPath();
}

/*
 * StoreRow
 *		A buffered row, with its defaults, as the virtual tuple of slot
 *		(payout.history's row type).
 */
static void
StoreRow(TupleTableSlot *slot, int row, ExprState **defaults,
		 ExprContext *econtext)
{
	int			natts = slot->tts_tupleDescriptor->natts;
	int			k;

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, sizeof(bool) * natts);
	for (k = 0; k < HISTORY_NCOLUMNS; k++)
	{
		if (layout.attnums[k] == InvalidAttrNumber)
			continue;
		slot->tts_values[layout.attnums[k] - 1] = buffer.values[k][row];
		slot->tts_isnull[layout.attnums[k] - 1] = buffer.nulls[k][row];
	}
	for (k = 0; k < layout.ndefaults; k++)
	{
		AttrNumber	attnum = layout.default_attnums[k];

		if (OidIsValid(layout.default_sequences[k]))
		{
			slot->tts_values[attnum - 1] =
				Int64GetDatum(nextval_internal(layout.default_sequences[k], false));
			slot->tts_isnull[attnum - 1] = false;
		}
		else if (defaults[k] != NULL)
			slot->tts_values[attnum - 1] =
				ExecEvalExpr(defaults[k], econtext, &slot->tts_isnull[attnum - 1]);
	}
	ExecStoreVirtualTuple(slot);
}

/*
 * FlushBatch
 *		Write a batch of rows of one partition: the heap in one call, then
 *		each row's index entries and AFTER ROW triggers.
 */
static void
FlushBatch(ResultRelInfo *rri, TupleTableSlot **batch, int n, EState *estate,
		   CommandId cid)
{
	int			i;

	if (n == 0)
		return;
	table_multi_insert(rri->ri_RelationDesc, batch, n, cid, 0, NULL);
	for (i = 0; i < n; i++)
	{
		List	   *recheck = NIL;

		if (rri->ri_NumIndices > 0)
			recheck = PayoutInsertIndexTuples(rri, batch[i], estate);
		if (rri->ri_TrigDesc != NULL)
			ExecARInsertTriggers(estate, rri, batch[i], recheck, NULL);
		list_free(recheck);
		ResetPerTupleExprContext(estate);
		ExecClearTuple(batch[i]);
	}
}

/*
 * WriteErrorCallback
 *		Say where an error while writing history comes from: a DBA's
 *		trigger or constraint on a history partition, say.
 */
static void
WriteErrorCallback(void *arg)
{
	errcontext("writing rows of %s.history", PAYOUT_SCHEMA);
}

/*
 * WriteRows
 *		Write the first nrows buffered rows into payout.history, as COPY
 *		would (see the file header).  The caller has switched to the rights
 *		of its owner.
 */
static void
WriteRows(Relation history, int nrows)
{
	TupleDesc	desc = RelationGetDescr(history);
	CommandId	cid = GetCurrentCommandId(true);
	EState	   *estate;
	ExprContext *econtext;
	ResultRelInfo *root;
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute = NULL;
	TupleTableSlot *rootslot;
	TupleTableSlot *batch[HISTORY_INSERT_BATCH] = {0};
	ResultRelInfo *batch_rri = NULL;
	ResultRelInfo *checked_rri = NULL;
	int			nbatch = 0;
	ExprState **defaults;
	ErrorContextCallback errcallback;
	MemoryContext oldcontext;
	int			row;
	int			k;

	estate = CreateExecutorState();
	oldcontext = MemoryContextSwitchTo(estate->es_query_cxt);
	estate->es_output_cid = cid;
	estate->es_snapshot = GetActiveSnapshot();
	PayoutInitRangeTable(estate, history);
	root = makeNode(ResultRelInfo);
	ExecInitResultRelation(estate, root, 1);
	mtstate = makeNode(ModifyTableState);
	mtstate->ps.plan = NULL;
	mtstate->ps.state = estate;
	mtstate->operation = CMD_INSERT;
	mtstate->mt_nrels = 1;
	mtstate->resultRelInfo = root;
	mtstate->rootResultRelInfo = root;
	econtext = GetPerTupleExprContext(estate);

	/* Defaults that are more than a sequence's next value. */
	defaults = palloc0(sizeof(ExprState *) * Max(layout.ndefaults, 1));
	for (k = 0; k < layout.ndefaults; k++)
	{
		Node	   *expr;

		if (OidIsValid(layout.default_sequences[k]))
			continue;
		expr = build_column_default(history, layout.default_attnums[k]);
		if (expr != NULL)
			defaults[k] = ExecPrepareExpr((Expr *) expr, estate);
	}

	errcallback.callback = WriteErrorCallback;
	errcallback.arg = NULL;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;

	if (layout.runs_code)
		Restrict();
	AfterTriggerBeginQuery();
	ExecBSInsertTriggers(estate, root);
	if (history->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		proute = ExecSetupPartitionTupleRouting(estate, history);
	else
		ExecOpenIndices(root, false);
	rootslot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsVirtual);

	for (row = 0; row < nrows; row++)
	{
		ResultRelInfo *rri = root;
		TupleTableSlot *slot;
		TupleConversionMap *map;
		bool		direct;

		ResetPerTupleExprContext(estate);
		StoreRow(rootslot, row, defaults, econtext);
		slot = rootslot;
		if (proute != NULL)
			rri = ExecFindPartition(mtstate, root, proute, slot, estate);
		if (rri != checked_rri)
		{
			if (RunsCode(rri))
				Restrict();
			checked_rri = rri;
		}
		direct = rri->ri_FdwRoutine == NULL &&
			!(rri->ri_TrigDesc != NULL && rri->ri_TrigDesc->trig_insert_before_row);

		if (rri != batch_rri || !direct || nbatch == HISTORY_INSERT_BATCH)
		{
			FlushBatch(batch_rri, batch, nbatch, estate, cid);
			nbatch = 0;
			batch_rri = rri;
		}

		map = rri == root ? NULL : PayoutRootToChildMap(rri, estate);
		if (direct)
		{
			if (batch[nbatch] == NULL ||
				batch[nbatch]->tts_tupleDescriptor != RelationGetDescr(rri->ri_RelationDesc))
			{
				if (batch[nbatch] != NULL)
					ExecDropSingleTupleTableSlot(batch[nbatch]);
				batch[nbatch] = MakeSingleTupleTableSlot(RelationGetDescr(rri->ri_RelationDesc),
														 table_slot_callbacks(rri->ri_RelationDesc));
			}
			if (map != NULL)
				slot = execute_attr_map_slot(map->attrMap, slot, batch[nbatch]);
			else
				slot = ExecCopySlot(batch[nbatch], slot);
		}
		else if (map != NULL)
			slot = execute_attr_map_slot(map->attrMap, slot,
										 rri->ri_PartitionTupleSlot);
		slot->tts_tableOid = RelationGetRelid(rri->ri_RelationDesc);

		if (!direct && rri->ri_TrigDesc != NULL &&
			rri->ri_TrigDesc->trig_insert_before_row &&
			!ExecBRInsertTriggers(estate, rri, slot))
			continue;			/* the trigger said "do nothing" */
		if (rri->ri_RelationDesc->rd_att->constr != NULL &&
			rri->ri_RelationDesc->rd_att->constr->has_generated_stored)
			ExecComputeStoredGenerated(rri, estate, slot, CMD_INSERT);

		if (rri->ri_FdwRoutine != NULL)
		{
			slot = rri->ri_FdwRoutine->ExecForeignInsert(estate, rri, slot, NULL);
			if (slot != NULL && rri->ri_TrigDesc != NULL)
				ExecARInsertTriggers(estate, rri, slot, NIL, NULL);
			continue;
		}
		if (rri->ri_RelationDesc->rd_att->constr != NULL)
			ExecConstraints(rri, slot, estate);
		/* routed rows satisfy the partition constraint, unless a trigger changed them */
		if (rri->ri_RelationDesc->rd_rel->relispartition && !direct)
			ExecPartitionCheck(rri, slot, estate, true);

		if (direct)
		{
			ExecMaterializeSlot(slot);
			nbatch++;
		}
		else
		{
			List	   *recheck = NIL;

			table_tuple_insert(rri->ri_RelationDesc, slot, cid, 0, NULL);
			if (rri->ri_NumIndices > 0)
				recheck = PayoutInsertIndexTuples(rri, slot, estate);
			if (rri->ri_TrigDesc != NULL)
				ExecARInsertTriggers(estate, rri, slot, recheck, NULL);
			list_free(recheck);
		}
	}
	FlushBatch(batch_rri, batch, nbatch, estate, cid);

	ExecASInsertTriggers(estate, root, NULL);
	AfterTriggerEndQuery(estate);
	error_context_stack = errcallback.previous;

	for (k = 0; k < HISTORY_INSERT_BATCH && batch[k] != NULL; k++)
		ExecDropSingleTupleTableSlot(batch[k]);
	ExecResetTupleTable(estate->es_tupleTable, false);
	if (proute != NULL)
		ExecCleanupTupleRouting(mtstate, proute);
	ExecCloseResultRelations(estate);
	ExecCloseRangeTableRelations(estate);
	MemoryContextSwitchTo(oldcontext);
	FreeExecutorState(estate);
}

/*
 * PayoutHistoryFlush
 *		Write the buffered rows, in the order they were recorded, as the
 *		owner of payout.history, and empty the buffer.
 *
 * Rows are written only when they all belong to the current
 * subtransaction (see the file header).  While it writes, nothing else
 * flushes; rows recorded meanwhile (a history partition's trigger that
 * changes a payout) are written next, by the same call.  On error the
 * transaction or subtransaction ends and its callbacks drop what is left,
 * and restore the user and the settings.
 */
void
PayoutHistoryFlush(void)
{
	Oid			history_relid;
	Relation	history;
	Oid			save_userid;
	int			save_sec_context;
	bool		pushed;

	if (buffer.nrows == 0 || flushing || !Writable())
		return;

	/* payout.history, by name unless the layout of it is still good */
	history_relid = layout.valid ? layout.relid :
		get_relname_relid("history", get_namespace_oid(PAYOUT_SCHEMA, false));
	if (!OidIsValid(history_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.history\" does not exist", PAYOUT_SCHEMA),
				 errhint("Reinstall the extension with DROP EXTENSION payout and CREATE EXTENSION payout.")));

	/* An apply worker's trigger may run with no snapshot set. */
	pushed = !ActiveSnapshotSet();
	if (pushed)
		PushActiveSnapshot(GetTransactionSnapshot());

	flushing = true;
	PG_TRY();
	{
		history = table_open(history_relid, RowExclusiveLock);
		/* (opening it may have processed an invalidation of it) */
		if (!layout.valid || layout.relid != history_relid)
			LoadLayout(history);

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(layout.owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION |
							   SECURITY_NOFORCE_RLS);

		while (buffer.nrows > 0 && Writable())
		{
			int			nrows = buffer.nrows;

			WriteRows(history, nrows);
			Discard(nrows);
		}

		if (restricted_nestlevel != 0)
			AtEOXact_GUC(false, restricted_nestlevel);
		restricted_nestlevel = 0;
		SetUserIdAndSecContext(save_userid, save_sec_context);
		table_close(history, NoLock);
	}
	PG_FINALLY();
	{
		/* on error the (sub)transaction's end restores the settings */
		flushing = false;
		restricted_nestlevel = 0;
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
	statement_nesting++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		statement_nesting--;
	}
	PG_END_TRY();
	PayoutHistoryFlush();
}

/*
 * HistoryProcessUtility
 *		After a utility statement (COPY): the same.  Not after transaction
 *		control, which has nothing to write.
 */
static void
HistoryProcessUtility(PlannedStmt *pstmt, const char *queryString,
					  bool readOnlyTree, ProcessUtilityContext context,
					  ParamListInfo params, QueryEnvironment *queryEnv,
					  DestReceiver *dest, QueryCompletion *qc)
{
	statement_nesting++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		statement_nesting--;
	}
	PG_END_TRY();
	if (buffer.nrows > 0 && !IsA(pstmt->utilityStmt, TransactionStmt) &&
		IsTransactionState())
		PayoutHistoryFlush();
}

/*
 * HistoryXactCallback
 *		Nothing may be left to write at commit: PostgreSQL runs no user code
 *		there any more, and a row silently dropped is worse than a failed
 *		commit.  The one exception is an apply worker's last delete (see
 *		move.c), written here as it is.
 */
static void
HistoryXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			PayoutHistoryRecordLastDelete();
			if (buffer.nrows > 0)
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("%d rows of payout history were not written before commit",
								buffer.nrows),
						 errdetail("The transaction is rolled back rather than committed without them.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			Forget();
			statement_nesting = 0;
			break;
		default:
			break;
	}
}

/*
 * HistorySubXactCallback
 *		Rows of a subtransaction that rolls back are dropped; those of one
 *		that commits now belong to its parent.  Either way only the newest
 *		run of the buffer can be the subtransaction's: O(1).
 */
static void
HistorySubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	HistoryRun *top;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	if (buffer.nruns == 0 || buffer.runs[buffer.nruns - 1].subid != mySubid)
		return;
	top = &buffer.runs[buffer.nruns - 1];

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		top->subid = parentSubid;
		if (buffer.nruns > 1 && buffer.runs[buffer.nruns - 2].subid == parentSubid)
			buffer.nruns--;		/* one run with the parent's before it */
		return;
	}

	/* Rolled back: free its copies (a text shared with the row before
	 * belongs to that row), and drop its rows. */
	{
		int			row;
		int			k;

		for (row = buffer.nrows - 1; row >= top->first; row--)
			for (k = 0; k < HISTORY_NCOLUMNS; k++)
				if (IsTextColumn(k) && !buffer.nulls[k][row] &&
					(row == 0 || buffer.nulls[k][row - 1] ||
					 buffer.values[k][row] != buffer.values[k][row - 1]))
					pfree(DatumGetPointer(buffer.values[k][row]));
	}
	buffer.nrows = top->first;
	buffer.nruns--;
	if (buffer.nrows == 0)
		Forget();
}
