/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  The ledger: payout.history sealed in a chain of SHA-256 blocks, so
 *	  that a change to a sealed row, its deletion, a row slipped in among
 *	  the sealed ones, a reordering of their ids, a truncated or dropped
 *	  partition or an altered dump shows, whoever made it.
 *
 * Vocabulary.  A *block* (a row of payout.ledger) seals the history rows
 * whose ids lie in its range first_id .. last_id: each row's *leaf*, the
 * SHA-256 of the canonical bytes of every column but the id, streams with
 * its id into the block's rows_hash; each row also gets a *mark* of 18
 * bytes (the index of its table in the block's dictionary, a CRC-32C of
 * its key, its clock_time in seconds from the block's first, and the first
 * 8 bytes of its leaf), which lets verification name the row that differs,
 * check the rows of one table or one payout alone, and tell a row removed
 * by retention from one deleted.  The block's *hash* covers its header,
 * the previous block's hash, rows_hash and the marks; a *digest* is a
 * block's number, hash and time, kept outside the database.
 *
 * Order.  History ids come from one sequence, handed out when a statement
 * writes its rows, before the transaction commits: a lower id can commit
 * after a higher one.  A block therefore never seals a range that a
 * transaction still writing could add to.  Every writer of history holds
 * RowExclusiveLock on payout.history from before it takes an id until it
 * ends.  So a sealer that reads the sequence's last value L and then lists
 * the transactions holding such a lock (GetLockConflicts, as CREATE INDEX
 * CONCURRENTLY does) knows a *horizon*: once those transactions have
 * ended, no row with an id up to L can still appear.  seal() records each
 * horizon it sees, seals up to the newest one whose transactions have all
 * ended, and never waits: writers take no lock of the ledger's and nothing
 * on their path changes.  A row is sealed by the first seal() that starts
 * after the transactions writing history when its id was taken have ended
 * (doc/ledger.md states the bound).  Ids that rolled back leave holes,
 * which stay empty: a row that appears in a sealed range later is reported
 * as added.
 *
 * Tables.  tbl is a regclass: an OID, which differs from one database to
 * another, and which a dump writes as the table's name (a dropped table's
 * as the bare number) and a restore reads back as whatever that name is
 * there.  The ledger keeps no OID: payout.ledger_tables gives each table
 * whose rows it seals a *table number* of its own, beside a regclass
 * column that a dump converts exactly as it converts payout.history.tbl,
 * so that the two agree in every copy of the database.  A leaf holds the
 * table's number; a block's dictionary holds its tables' numbers with
 * their names as sealed, which is the evidence of a rename.  Verification
 * maps each row's tbl through payout.ledger_tables to its number.  The
 * OIDs this file handles live in memory for one call.
 *
 * Time.  A block records when it was sealed, and the times of a chain only
 * go forward.  How long history is kept is the auditor's to say, not the
 * sealer's: verify() takes the sealed rows recorded before the retention
 * it is given, counted back from the newest digest's time (or from its own
 * clock, if that is earlier), for removed by that policy.
 *
 * Snapshots.  seal() reads and writes the ledger's own tables through a
 * snapshot taken at each statement, after it holds the ledger's lock, so
 * that what a sealer before it committed is seen, and nothing of it is a
 * concurrent update, in every isolation level.
 *
 * src/ledger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/int.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "port/pg_bswap.h"
#include "port/pg_crc32c.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "compat.h"
#include "payout.h"
#include "status.h"

/* The canonical form this code writes; verification knows only it. */
#define LEDGER_FORMAT		1

/* A block seals at most this many rows. */
#define LEDGER_BLOCK_ROWS	65536

/* Bytes of a row's mark: table index 2, key tag 4, clock 4, fingerprint 8. */
#define MARK_SIZE			18
#define FINGERPRINT_SIZE	8
#define CLOCK_UNKNOWN		0xFFFFFFFFU

/* Horizons seal() keeps while the transactions they wait for run. */
#define LEDGER_PENDING_MAX	64

/* Rows read from a cursor at a time. */
#define LEDGER_FETCH		1024

/* Row findings verification reports for one block before it counts. */
#define LEDGER_FINDINGS_PER_BLOCK 10

/* Domain separation of what is hashed. */
#define TAG_LEAF			0x01
#define TAG_BLOCK			0x02
#define TAG_ROWS			0x03
#define TAG_MARKS			0x04

/* The columns read from payout.history, in this order. */
#define HISTORY_SELECT \
	"SELECT h.id, h.tbl, h.key, h.old_status, h.new_status," \
	" h.old_resolution, h.new_resolution, h.xact_time, h.clock_time," \
	" h.user_name, h.session_user_name, h.application_name, h.xid," \
	" h.actor, h.old_key FROM payout.history h "
enum
{
	COL_ID, COL_TBL, COL_KEY, COL_OLD_STATUS, COL_NEW_STATUS,
	COL_OLD_RESOLUTION, COL_NEW_RESOLUTION, COL_XACT_TIME, COL_CLOCK_TIME,
	COL_USER_NAME, COL_SESSION_USER_NAME, COL_APPLICATION_NAME, COL_XID,
	COL_ACTOR, COL_OLD_KEY, HISTORY_NCOLS
};

/* The columns of payout.ledger, in this order. */
#define LEDGER_SELECT \
	"SELECT block, format, prev_hash, first_id, last_id, row_count," \
	" min_clock_time, max_clock_time, sealed_at," \
	" table_numbers, table_schemas, table_names," \
	" rows_hash, row_ids, row_marks, hash FROM payout.ledger "
enum
{
	LC_BLOCK, LC_FORMAT, LC_PREV_HASH, LC_FIRST_ID, LC_LAST_ID, LC_ROW_COUNT,
	LC_MIN_CLOCK, LC_MAX_CLOCK, LC_SEALED_AT,
	LC_TABLE_NUMBERS, LC_TABLE_SCHEMAS, LC_TABLE_NAMES,
	LC_ROWS_HASH, LC_ROW_IDS, LC_ROW_MARKS, LC_HASH, LEDGER_NCOLS
};

/*
 * A table in a block's dictionary: the number the ledger gave it, and its
 * name when the block was sealed (NULL if it had been dropped by then).
 */
typedef struct LedgerTable
{
	int32		number;
	char	   *schema;
	char	   *name;
} LedgerTable;

/* A block, as sealed and as stored. */
typedef struct LedgerBlock
{
	int64		block;
	int16		format;
	uint8		prev_hash[PG_SHA256_DIGEST_LENGTH];
	int64		first_id;
	int64		last_id;
	int64		row_count;
	bool		has_clock;
	TimestampTz min_clock;
	TimestampTz max_clock;
	TimestampTz sealed_at;
	int			ntables;
	int			maxtables;
	LedgerTable *tables;
	uint8		rows_hash[PG_SHA256_DIGEST_LENGTH];
	StringInfoData ids;			/* varint deltas */
	StringInfoData marks;		/* MARK_SIZE bytes a row */
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	/* while sealing: each row's clock_time, DT_NOBEGIN if NULL or infinite */
	TimestampTz *clocks;
} LedgerBlock;

/* An enum type's labels by this database's OIDs. */
typedef struct LabelMap
{
	int			n;
	Oid			oids[PAYOUT_NUM_RESOLUTIONS];
	const char *labels[PAYOUT_NUM_RESOLUTIONS];
} LabelMap;

/*
 * A row of payout.ledger_tables, and what verification learns of its
 * number from the blocks.
 */
typedef struct TableRow
{
	int32		number;
	Oid			relid;			/* its tbl, for this call */
	char	   *schema;			/* its name when last sealed */
	char	   *name;
	int64		sealed_block;	/* verify: the newest block that has it */
	char	   *sealed_schema;	/* verify: its newest name sealed */
	char	   *sealed_name;
} TableRow;

/*
 * A relation that history rows name, in this call: the table numbers
 * payout.ledger_tables gives it (one, but for a collision of a dropped
 * table's old OID after a restore), and, while sealing, the number its
 * new rows are sealed under and its place in the block being sealed.
 */
typedef struct RelEntry
{
	Oid			relid;			/* hash key */
	int			nnumbers;
	int32	   *numbers;		/* ascending */
	bool		looked_up;
	char	   *schema;			/* its name now; NULL if dropped */
	char	   *name;
	int32		seal_number;	/* 0 until seal() needs it */
	int64		stamp;			/* the block whose dictionary has it */
	int			index;			/* its index there */
} RelEntry;

/* What one call of seal() or verify() keeps. */
typedef struct LedgerCall
{
	MemoryContext cxt;			/* lives as long as the call */
	pg_cryptohash_ctx *leaf_ctx;
	pg_cryptohash_ctx *stream_ctx;
	StringInfoData canon;
	LabelMap	statuses;
	LabelMap	resolutions;
	bool		utf8;			/* text is stored in UTF-8 already */
	HTAB	   *rels;			/* relation OID -> RelEntry */
	RelEntry   *last_rel;		/* the entry looked up last */
	TableRow   *tables;			/* payout.ledger_tables, by number */
	int			ntables;
	int			maxtables;
	int32		max_number;
} LedgerCall;

/* A history row as read. */
typedef struct HistoryRow
{
	Datum		values[HISTORY_NCOLS];
	bool		nulls[HISTORY_NCOLS];
} HistoryRow;

/* A cursor over payout.history, fetched in batches. */
typedef struct HistoryScan
{
	Portal		portal;
	SPITupleTable *batch;
	uint64		pos;
	uint64		n;
	bool		done;
} HistoryScan;

/* A digest given to verify(). */
typedef struct LedgerDigest
{
	int64		block;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	bool		has_sealed_at;
	TimestampTz sealed_at;		/* the block's, as the digest has it */
	bool		has_taken_at;
	TimestampTz taken_at;		/* when the auditor took it */
	bool		matched;
} LedgerDigest;

/*
 * A table number that sealed blocks use and payout.ledger_tables lacks,
 * with the newest block that has it and its name there.
 */
typedef struct UnmappedNumber
{
	int32		number;
	int64		block;
	char	   *schema;
	char	   *name;
} UnmappedNumber;

/* What verify() is asked and what it has found so far. */
typedef struct VerifyState
{
	LedgerCall *call;
	Tuplestorestate *out;
	TupleDesc	outdesc;
	/* scope */
	Oid			scope_tbl;
	RelEntry   *scope_rel;
	int			nscope;			/* the table numbers of the table asked */
	int32	   *scope_numbers;	/* about, by the map and by the blocks */
	int			nscope_relids;	/* the relations history rows of those */
	Oid		   *scope_relids;	/* numbers name, by the map */
	text	   *scope_key;
	uint32		scope_tag;
	/* digests and retention */
	int			ndigests;
	LedgerDigest *digests;
	int			newest_digest;	/* index, -1 if none */
	bool		has_cutoff;
	TimestampTz cutoff;
	TimestampTz cutoff_from;
	/* progress */
	int64		blocks;
	int64		rows_checked;
	int64		problems;
	int64		retained;
	int64		retained_first_block;
	int64		retained_last_block;
	int			block_findings;
	int64		block_more;
	/* numbers of sealed blocks that payout.ledger_tables has no row for */
	int			nunmapped;
	int			maxunmapped;
	UnmappedNumber *unmapped;
} VerifyState;

static void SealRange(LedgerCall *call, int64 from, int64 to, int64 max_rows,
					  LedgerBlock *prev, bool has_prev,
					  int64 *nblocks, int64 *nrows, int64 *through);
static void Finding(VerifyState *vs, int64 block, int64 id, const char *finding,
					const char *fmt,...) pg_attribute_printf(5, 6);

/* ------------------------------------------------------------------------
 * Canonical bytes and SHA-256
 * ------------------------------------------------------------------------
 */

/*
 * PutU8, PutU16, PutU32, PutU64
 *		Append an unsigned integer, big-endian: the same bytes on every
 *		platform.
 */
static void
PutU8(StringInfo buf, uint8 v)
{
	appendStringInfoCharMacro(buf, (char) v);
}

static void
PutU16(StringInfo buf, uint16 v)
{
	PutU8(buf, (uint8) (v >> 8));
	PutU8(buf, (uint8) v);
}

static void
PutU32(StringInfo buf, uint32 v)
{
	uint32		be = pg_hton32(v);

	appendBinaryStringInfo(buf, (const char *) &be, 4);
}

static void
PutU64(StringInfo buf, uint64 v)
{
	uint64		be = pg_hton64(v);

	appendBinaryStringInfo(buf, (const char *) &be, 8);
}

/*
 * GetU16, GetU32
 *		Read back a big-endian integer of a mark.
 */
static uint16
GetU16(const uint8 *p)
{
	return (uint16) ((p[0] << 8) | p[1]);
}

static uint32
GetU32(const uint8 *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return pg_ntoh32(v);
}

/*
 * PutStr
 *		A string as its length and its bytes in UTF-8, whatever the
 *		database's encoding.
 */
static void
PutStr(LedgerCall *call, StringInfo buf, const char *s, int len)
{
	if (!call->utf8)
	{
		s = pg_server_to_any(s, len, PG_UTF8);
		len = strlen(s);
	}
	PutU32(buf, (uint32) len);
	appendBinaryStringInfo(buf, s, len);
}

/* A value that may be NULL: a byte 0, or a byte 1 and the value. */
static void
PutOptText(LedgerCall *call, StringInfo buf, Datum value, bool isnull)
{
	text	   *t;

	if (isnull)
	{
		PutU8(buf, 0);
		return;
	}
	t = DatumGetTextPP(value);
	PutU8(buf, 1);
	PutStr(call, buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/*
 * PutOptCString
 *		A C string that may be NULL, as PutOptText writes a text.
 */
static void
PutOptCString(LedgerCall *call, StringInfo buf, const char *s)
{
	if (s == NULL)
	{
		PutU8(buf, 0);
		return;
	}
	PutU8(buf, 1);
	PutStr(call, buf, s, strlen(s));
}

/*
 * PutOptI64
 *		A 64-bit integer that may be NULL.
 */
static void
PutOptI64(StringInfo buf, int64 v, bool isnull)
{
	if (isnull)
	{
		PutU8(buf, 0);
		return;
	}
	PutU8(buf, 1);
	PutU64(buf, (uint64) v);
}


/*
 * PutVarint
 *		An unsigned integer in 7-bit groups, low first (LEB128): the gap
 *		between a row's id and the one before, mostly one byte.
 */
static void
PutVarint(StringInfo buf, uint64 v)
{
	while (v >= 0x80)
	{
		PutU8(buf, (uint8) (v | 0x80));
		v >>= 7;
	}
	PutU8(buf, (uint8) v);
}

/*
 * GetVarint
 *		The varint at *pos of a buffer of len bytes; false at its end or on
 *		a truncated one.
 */
static bool
GetVarint(const uint8 *p, int len, int *pos, uint64 *v)
{
	uint64		result = 0;
	int			shift = 0;

	while (*pos < len && shift < 64)
	{
		uint8		b = p[(*pos)++];

		result |= ((uint64) (b & 0x7F)) << shift;
		if ((b & 0x80) == 0)
		{
			*v = result;
			return true;
		}
		shift += 7;
	}
	return false;
}

/*
 * NewSha256
 *		A SHA-256 context of PostgreSQL's cryptohash, freed by EndCall or,
 *		on error, by the resource owner.
 */
static pg_cryptohash_ctx *
NewSha256(void)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return ctx;
}

/*
 * ShaFailed
 *		Report a failure of the hash implementation (OpenSSL's, say).
 */
static void
ShaFailed(pg_cryptohash_ctx *ctx)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("could not compute a SHA-256 hash: %s",
					pg_cryptohash_error(ctx))));
}

/*
 * ShaInit, ShaUpdate, ShaFinal
 *		The cryptohash calls, with their errors reported.
 */
static void
ShaInit(pg_cryptohash_ctx *ctx)
{
	if (pg_cryptohash_init(ctx) < 0)
		ShaFailed(ctx);
}

static void
ShaUpdate(pg_cryptohash_ctx *ctx, const void *data, size_t len)
{
	if (pg_cryptohash_update(ctx, (const uint8 *) data, len) < 0)
		ShaFailed(ctx);
}

static void
ShaFinal(pg_cryptohash_ctx *ctx, uint8 *out)
{
	if (pg_cryptohash_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		ShaFailed(ctx);
}

/* The lower-case hex of n bytes. */
static char *
Hex(const uint8 *p, int n)
{
	static const char digits[] = "0123456789abcdef";
	char	   *s = palloc(2 * n + 1);
	int			i;

	for (i = 0; i < n; i++)
	{
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 0xF];
	}
	s[2 * n] = '\0';
	return s;
}


/* ------------------------------------------------------------------------
 * Tables and labels
 * ------------------------------------------------------------------------
 */

/* The table as a reader would name it: "schema.name", as sealed. */
static const char *
TableText(const LedgerTable *t)
{
	if (t->name == NULL)
		return psprintf("number %d, dropped before it was sealed", t->number);
	return quote_qualified_identifier(t->schema, t->name);
}

/*
 * LookUpName
 *		What a relation is called now, once per call; NULL if it was
 *		dropped.
 */
static void
LookUpName(LedgerCall *call, RelEntry *rel)
{
	MemoryContext oldcxt;
	char	   *name;

	if (rel->looked_up)
		return;
	oldcxt = MemoryContextSwitchTo(call->cxt);
	name = get_rel_name(rel->relid);
	rel->name = name;
	rel->schema = name ? get_namespace_name(get_rel_namespace(rel->relid)) : NULL;
	if (rel->schema == NULL)
		rel->name = NULL;
	rel->looked_up = true;
	MemoryContextSwitchTo(oldcxt);
}

/* A relation as a reader would name it now. */
static char *
RelText(LedgerCall *call, Oid relid, RelEntry *rel)
{
	RelEntry	tmp;

	if (rel == NULL)
	{
		memset(&tmp, 0, sizeof(tmp));
		tmp.relid = relid;
		rel = &tmp;
	}
	LookUpName(call, rel);
	if (rel->name == NULL)
		return psprintf("%u (dropped)", relid);
	return quote_qualified_identifier(rel->schema, rel->name);
}

/*
 * FindRel
 *		The entry of a relation that history rows name, made empty if
 *		create and none is there yet; NULL if none and not create.  One
 *		hash lookup, none for a row of the same table as the row before.
 */
static RelEntry *
FindRel(LedgerCall *call, Oid relid, bool create)
{
	RelEntry   *rel;
	bool		found;

	if (call->last_rel != NULL && call->last_rel->relid == relid)
		return call->last_rel;
	rel = hash_search(call->rels, &relid, create ? HASH_ENTER : HASH_FIND,
					  &found);
	if (rel == NULL)
		return NULL;
	if (!found)
	{
		rel->nnumbers = 0;
		rel->numbers = NULL;
		rel->looked_up = false;
		rel->schema = rel->name = NULL;
		rel->seal_number = 0;
		rel->stamp = 0;
		rel->index = -1;
	}
	call->last_rel = rel;
	return rel;
}

/* Whether a relation's rows are sealed under a table number. */
static bool
RelHasNumber(const RelEntry *rel, int32 number)
{
	int			i;

	if (rel == NULL)
		return false;
	for (i = 0; i < rel->nnumbers; i++)
		if (rel->numbers[i] == number)
			return true;
	return false;
}

/* Give a relation one more table number, in the call's context. */
static void
AddNumber(LedgerCall *call, RelEntry *rel, int32 number)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(call->cxt);

	rel->numbers = rel->numbers ?
		repalloc(rel->numbers, sizeof(int32) * (rel->nnumbers + 1)) :
		palloc(sizeof(int32));
	rel->numbers[rel->nnumbers++] = number;
	MemoryContextSwitchTo(oldcxt);
}

/* Add a row of payout.ledger_tables to what the call knows. */
static TableRow *
AddTableRow(LedgerCall *call, int32 number, Oid relid, const char *schema,
			const char *name)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(call->cxt);
	TableRow   *t;

	if (call->ntables == call->maxtables)
	{
		call->maxtables = call->maxtables ? call->maxtables * 2 : 16;
		call->tables = call->tables ?
			repalloc(call->tables, sizeof(TableRow) * call->maxtables) :
			palloc(sizeof(TableRow) * call->maxtables);
	}
	t = &call->tables[call->ntables++];
	memset(t, 0, sizeof(*t));
	t->number = number;
	t->relid = relid;
	t->schema = schema ? pstrdup(schema) : NULL;
	t->name = name ? pstrdup(name) : NULL;
	call->max_number = Max(call->max_number, number);
	MemoryContextSwitchTo(oldcxt);
	AddNumber(call, FindRel(call, relid, true), number);
	return t;
}

/* The row of payout.ledger_tables of a number; NULL if none. */
static TableRow *
FindTableRow(LedgerCall *call, int32 number)
{
	int			lo = 0;
	int			hi = call->ntables - 1;

	/* rows are loaded in number order, and new numbers are higher */
	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (call->tables[mid].number == number)
			return &call->tables[mid];
		if (call->tables[mid].number < number)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* Whether two names, either of which may be NULL, are the same. */
static bool
SameName(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* A time as UTC text, whatever the session's settings. */
static char *
UtcText(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	char		buf[MAXDATELEN + 1];

	if (TIMESTAMP_NOT_FINITE(t))
		EncodeSpecialTimestamp(t, buf);
	else if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("(out of range)");
	else
		EncodeDateTime(&tm, fsec, false, 0, NULL, USE_ISO_DATES, buf);
	return psprintf("%s+00", buf);
}
/*
 * LoadLabels
 *		This database's OIDs of an enum type's labels, once per call.
 */
static void
LoadLabels(LabelMap *map, PayoutEnumKind kind, int n)
{
	int			i;

	map->n = n;
	for (i = 0; i < n; i++)
	{
		map->oids[i] = PayoutEnumOid(kind, i);
		map->labels[i] = (kind == PAYOUT_ENUM_STATUS) ?
			PayoutStatusLabel(i) : PayoutResolutionLabel(i);
	}
}

/*
 * LabelOf
 *		An enum value's label: OIDs differ from database to database, the
 *		label is what the row means.  A label C does not know (one added by
 *		hand) is read from pg_enum.
 */
static const char *
LabelOf(LabelMap *map, Oid value)
{
	HeapTuple	tup;
	char	   *label;
	int			i;

	for (i = 0; i < map->n; i++)
		if (map->oids[i] == value)
			return map->labels[i];
	tup = SearchSysCache1(ENUMOID, ObjectIdGetDatum(value));
	if (!HeapTupleIsValid(tup))
		return psprintf("(enum value %u)", value);
	label = pstrdup(NameStr(((Form_pg_enum) GETSTRUCT(tup))->enumlabel));
	ReleaseSysCache(tup);
	return label;
}

/*
 * StartCall
 *		What seal() and verify() share for one call: hash contexts, labels
 *		and the tables history rows name.
 */
static void
StartCall(LedgerCall *call)
{
	HASHCTL		ctl;
	int			encoding = GetDatabaseEncoding();

	memset(call, 0, sizeof(*call));
	call->cxt = CurrentMemoryContext;
	call->leaf_ctx = NewSha256();
	call->stream_ctx = NewSha256();
	initStringInfo(&call->canon);
	LoadLabels(&call->statuses, PAYOUT_ENUM_STATUS, PAYOUT_NUM_STATUSES);
	LoadLabels(&call->resolutions, PAYOUT_ENUM_RESOLUTION, PAYOUT_NUM_RESOLUTIONS);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(RelEntry);
	ctl.hcxt = CurrentMemoryContext;
	call->rels = hash_create("payout ledger tables", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	call->utf8 = (encoding == PG_UTF8 || encoding == PG_SQL_ASCII);
}

/*
 * EndCall
 *		Give back the hash contexts.
 */
static void
EndCall(LedgerCall *call)
{
	pg_cryptohash_free(call->leaf_ctx);
	pg_cryptohash_free(call->stream_ctx);
}

/*
 * RunLatest
 *		Run a statement on the ledger's own tables through a snapshot taken
 *		now: it sees what another sealer committed before this one got its
 *		lock, and what this call wrote so far, and finds nothing of it
 *		updated concurrently, whatever the isolation level.
 */
static int
RunLatest(const char *sql, int nargs, Oid *types, Datum *values,
		  const char *nulls, bool read_only, long tcount)
{
	SPIPlanPtr	plan;
	int			ret;

	CommandCounterIncrement();
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	ret = SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(),
							   InvalidSnapshot, read_only, true, tcount);
	SPI_freeplan(plan);
	return ret;
}

/*
 * LoadTables
 *		payout.ledger_tables: the number of each table whose rows the ledger
 *		sealed.  Its tbl is a regclass, converted by a dump as
 *		payout.history.tbl is, so that a row's tbl finds its number in any
 *		copy of the database.  Through a snapshot taken now when sealing.
 */
static void
LoadTables(LedgerCall *call, bool sealing)
{
	const char *sql = "SELECT number, tbl, schema_name, table_name"
		" FROM payout.ledger_tables ORDER BY number";
	int			ret;
	uint64		i;

	ret = sealing ? RunLatest(sql, 0, NULL, NULL, NULL, true, 0) :
		SPI_execute(sql, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.ledger_tables: %s",
			 SPI_result_code_string(ret));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		numnull;
		bool		tblnull;
		int32		number = DatumGetInt32(SPI_getbinval(tup, desc, 1, &numnull));
		Oid			relid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &tblnull));

		/* (NOT NULL and a primary key: only a hand-made row lacks them) */
		if (numnull || tblnull || number <= 0 ||
			(call->ntables > 0 && number <= call->tables[call->ntables - 1].number))
			continue;
		(void) AddTableRow(call, number, relid, SPI_getvalue(tup, desc, 3),
						   SPI_getvalue(tup, desc, 4));
	}
	SPI_freetuptable(SPI_tuptable);
}

/* ------------------------------------------------------------------------
 * Rows: their leaves and marks
 * ------------------------------------------------------------------------
 */

/*
 * RowLeaf
 *		SHA-256 of the canonical bytes of a history row, all columns but
 *		the id, with its table as the number the ledger gave it.  Every
 *		value in a form no setting changes: labels for enums, microseconds
 *		since 2000 UTC for times, UTF-8 for text, the 64-bit transaction
 *		id.
 */
static void
RowLeaf(LedgerCall *call, const HistoryRow *row, int32 number, uint8 *leaf)
{
	StringInfo	buf = &call->canon;
	int			col;

	resetStringInfo(buf);
	PutU8(buf, TAG_LEAF);
	PutU32(buf, (uint32) number);
	for (col = COL_KEY; col < HISTORY_NCOLS; col++)
	{
		Datum		v = row->values[col];
		bool		isnull = row->nulls[col];

		switch (col)
		{
			case COL_OLD_STATUS:
			case COL_NEW_STATUS:
				PutOptCString(call, buf, isnull ? NULL :
							  LabelOf(&call->statuses, DatumGetObjectId(v)));
				break;
			case COL_OLD_RESOLUTION:
			case COL_NEW_RESOLUTION:
				PutOptCString(call, buf, isnull ? NULL :
							  LabelOf(&call->resolutions, DatumGetObjectId(v)));
				break;
			case COL_XACT_TIME:
			case COL_CLOCK_TIME:
				PutOptI64(buf, isnull ? 0 : DatumGetTimestampTz(v), isnull);
				break;
			case COL_XID:
				PutOptI64(buf, isnull ? 0 :
						  (int64) U64FromFullTransactionId(DatumGetFullTransactionId(v)),
						  isnull);
				break;
			default:
				PutOptText(call, buf, v, isnull);
				break;
		}
	}
	ShaInit(call->leaf_ctx);
	ShaUpdate(call->leaf_ctx, buf->data, buf->len);
	ShaFinal(call->leaf_ctx, leaf);
}

/* A CRC-32C of the key: where a payout's rows are among a block's marks. */
static uint32
KeyTag(LedgerCall *call, Datum key, bool isnull)
{
	text	   *t;
	const char *s;
	int			len;
	pg_crc32c	crc;

	if (isnull)
		return 0;
	t = DatumGetTextPP(key);
	s = VARDATA_ANY(t);
	len = VARSIZE_ANY_EXHDR(t);
	if (!call->utf8)
	{
		s = pg_server_to_any(s, len, PG_UTF8);
		len = strlen(s);
	}
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, s, len);
	FIN_CRC32C(crc);
	return crc;
}

/* ------------------------------------------------------------------------
 * Blocks: their hash, and reading and writing them
 * ------------------------------------------------------------------------
 */

/*
 * InitBlock
 *		An empty block, in the current memory context.
 */
static void
InitBlock(LedgerBlock *b)
{
	memset(b, 0, sizeof(*b));
	initStringInfo(&b->ids);
	initStringInfo(&b->marks);
}

/*
 * AddTable
 *		Add a table to a block's dictionary; returns its index.
 */
static int
AddTable(LedgerBlock *b, int32 number, char *schema, char *name)
{
	if (b->ntables == b->maxtables)
	{
		b->maxtables = b->maxtables ? b->maxtables * 2 : 8;
		b->tables = b->tables ?
			repalloc(b->tables, sizeof(LedgerTable) * b->maxtables) :
			palloc(sizeof(LedgerTable) * b->maxtables);
	}
	b->tables[b->ntables].number = number;
	b->tables[b->ntables].schema = name ? schema : NULL;
	b->tables[b->ntables].name = name;
	return b->ntables++;
}

/* The table number of a block's row i, as sealed; -1 if none. */
static int32
MarkNumber(const LedgerBlock *b, int64 i)
{
	uint16		t = GetU16((const uint8 *) b->marks.data + i * MARK_SIZE);

	return t < b->ntables ? b->tables[t].number : -1;
}

/*
 * BlockHash
 *		The hash of a block: its header, its tables with their names as
 *		sealed, the previous hash, its rows_hash and the hash of its ids
 *		and marks, in canonical bytes.
 */
static void
BlockHash(LedgerCall *call, const LedgerBlock *b, uint8 *out)
{
	StringInfoData buf;
	uint8		marks_hash[PG_SHA256_DIGEST_LENGTH];
	int			i;

	initStringInfo(&buf);
	PutU8(&buf, TAG_MARKS);
	PutU32(&buf, (uint32) b->ids.len);
	appendBinaryStringInfo(&buf, b->ids.data, b->ids.len);
	PutU32(&buf, (uint32) b->marks.len);
	ShaInit(call->leaf_ctx);
	ShaUpdate(call->leaf_ctx, buf.data, buf.len);
	ShaUpdate(call->leaf_ctx, b->marks.data, b->marks.len);
	ShaFinal(call->leaf_ctx, marks_hash);

	resetStringInfo(&buf);
	PutU8(&buf, TAG_BLOCK);
	PutU16(&buf, (uint16) b->format);
	PutU64(&buf, (uint64) b->block);
	appendBinaryStringInfo(&buf, (const char *) b->prev_hash, PG_SHA256_DIGEST_LENGTH);
	PutU64(&buf, (uint64) b->first_id);
	PutU64(&buf, (uint64) b->last_id);
	PutU64(&buf, (uint64) b->row_count);
	PutOptI64(&buf, b->min_clock, !b->has_clock);
	PutOptI64(&buf, b->max_clock, !b->has_clock);
	PutU64(&buf, (uint64) b->sealed_at);
	PutU32(&buf, (uint32) b->ntables);
	for (i = 0; i < b->ntables; i++)
	{
		PutU32(&buf, (uint32) b->tables[i].number);
		PutOptCString(call, &buf, b->tables[i].schema);
		PutOptCString(call, &buf, b->tables[i].name);
	}
	appendBinaryStringInfo(&buf, (const char *) b->rows_hash, PG_SHA256_DIGEST_LENGTH);
	appendBinaryStringInfo(&buf, (const char *) marks_hash, PG_SHA256_DIGEST_LENGTH);

	ShaInit(call->leaf_ctx);
	ShaUpdate(call->leaf_ctx, buf.data, buf.len);
	ShaFinal(call->leaf_ctx, out);
	pfree(buf.data);
}

/*
 * ByteaDatum
 *		A bytea of len bytes.
 */
static Datum
ByteaDatum(const void *p, int len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), p, len);
	return PointerGetDatum(b);
}

/*
 * InsertBlock
 *		Store a sealed block.  Inside SPI, as the ledger's owner.
 */
static void
InsertBlock(const LedgerBlock *b)
{
	Oid			types[LEDGER_NCOLS] = {
		INT8OID, INT2OID, BYTEAOID, INT8OID, INT8OID, INT8OID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		BYTEAOID, BYTEAOID, BYTEAOID, BYTEAOID
	};
	Datum		values[LEDGER_NCOLS];
	char		nulls[LEDGER_NCOLS];
	int			n = b->ntables;
	Datum	   *numbers = palloc(sizeof(Datum) * (n + 1));
	Datum	   *schemas = palloc(sizeof(Datum) * (n + 1));
	Datum	   *names = palloc(sizeof(Datum) * (n + 1));
	bool	   *snulls = palloc(sizeof(bool) * (n + 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;
	int			ret;

	for (i = 0; i < n; i++)
	{
		numbers[i] = Int32GetDatum(b->tables[i].number);
		snulls[i] = (b->tables[i].name == NULL);
		schemas[i] = snulls[i] ? (Datum) 0 : CStringGetTextDatum(b->tables[i].schema);
		names[i] = snulls[i] ? (Datum) 0 : CStringGetTextDatum(b->tables[i].name);
	}
	memset(nulls, ' ', sizeof(nulls));
	values[LC_BLOCK] = Int64GetDatum(b->block);
	values[LC_FORMAT] = Int16GetDatum(b->format);
	values[LC_PREV_HASH] = ByteaDatum(b->prev_hash, PG_SHA256_DIGEST_LENGTH);
	values[LC_FIRST_ID] = Int64GetDatum(b->first_id);
	values[LC_LAST_ID] = Int64GetDatum(b->last_id);
	values[LC_ROW_COUNT] = Int64GetDatum(b->row_count);
	values[LC_MIN_CLOCK] = TimestampTzGetDatum(b->min_clock);
	values[LC_MAX_CLOCK] = TimestampTzGetDatum(b->max_clock);
	if (!b->has_clock)
		nulls[LC_MIN_CLOCK] = nulls[LC_MAX_CLOCK] = 'n';
	values[LC_SEALED_AT] = TimestampTzGetDatum(b->sealed_at);
	values[LC_TABLE_NUMBERS] =
		PointerGetDatum(construct_md_array(numbers, NULL, 1, dims, lbs, INT4OID,
										   sizeof(int32), true, TYPALIGN_INT));
	values[LC_TABLE_SCHEMAS] =
		PointerGetDatum(construct_md_array(schemas, snulls, 1, dims, lbs, TEXTOID,
										   -1, false, TYPALIGN_INT));
	values[LC_TABLE_NAMES] =
		PointerGetDatum(construct_md_array(names, snulls, 1, dims, lbs, TEXTOID,
										   -1, false, TYPALIGN_INT));
	values[LC_ROWS_HASH] = ByteaDatum(b->rows_hash, PG_SHA256_DIGEST_LENGTH);
	values[LC_ROW_IDS] = ByteaDatum(b->ids.data, b->ids.len);
	values[LC_ROW_MARKS] = ByteaDatum(b->marks.data, b->marks.len);
	values[LC_HASH] = ByteaDatum(b->hash, PG_SHA256_DIGEST_LENGTH);

	ret = RunLatest("INSERT INTO payout.ledger (block, format, prev_hash,"
					" first_id, last_id, row_count, min_clock_time,"
					" max_clock_time, sealed_at,"
					" table_numbers, table_schemas, table_names,"
					" rows_hash, row_ids, row_marks, hash)"
					" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
					" $11, $12, $13, $14, $15, $16)",
					LEDGER_NCOLS, types, values, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "could not store payout ledger block: %s",
			 SPI_result_code_string(ret));
}

/* Copy a hash out of a bytea; false if it is not 32 bytes. */
static bool
HashFromBytea(Datum value, bool isnull, uint8 *out)
{
	bytea	   *b;

	memset(out, 0, PG_SHA256_DIGEST_LENGTH);
	if (isnull)
		return false;
	b = DatumGetByteaPP(value);
	if (VARSIZE_ANY_EXHDR(b) != PG_SHA256_DIGEST_LENGTH)
		return false;
	memcpy(out, VARDATA_ANY(b), PG_SHA256_DIGEST_LENGTH);
	return true;
}

/*
 * TablesFromArrays
 *		A block's dictionary from its three parallel arrays; false if they
 *		do not fit together.
 */
static bool
TablesFromArrays(LedgerBlock *b, Datum numbers, Datum schemas, Datum names)
{
	Datum	   *nu,
			   *s,
			   *nm;
	bool	   *nunull,
			   *snull,
			   *nmnull;
	int			nn,
				ns,
				nnm;
	int			i;

	deconstruct_array(DatumGetArrayTypeP(numbers), INT4OID, sizeof(int32), true,
					  TYPALIGN_INT, &nu, &nunull, &nn);
	deconstruct_array(DatumGetArrayTypeP(schemas), TEXTOID, -1, false,
					  TYPALIGN_INT, &s, &snull, &ns);
	deconstruct_array(DatumGetArrayTypeP(names), TEXTOID, -1, false,
					  TYPALIGN_INT, &nm, &nmnull, &nnm);
	if (nn != ns || nn != nnm)
		return false;
	b->tables = palloc0(sizeof(LedgerTable) * (nn + 1));
	b->ntables = b->maxtables = nn;
	for (i = 0; i < nn; i++)
	{
		if (nunull[i] || snull[i] != nmnull[i])
			return false;
		b->tables[i].number = DatumGetInt32(nu[i]);
		b->tables[i].schema = snull[i] ? NULL : TextDatumGetCString(s[i]);
		b->tables[i].name = nmnull[i] ? NULL : TextDatumGetCString(nm[i]);
	}
	return true;
}

/*
 * BlockFromTuple
 *		A block as stored, from a row of LEDGER_SELECT.  Returns false if
 *		a column is not what the sealer writes (a NULL, a hash of another
 *		length): the block was altered.
 */
static bool
BlockFromTuple(HeapTuple tuple, TupleDesc desc, LedgerBlock *b)
{
	Datum		v[LEDGER_NCOLS];
	bool		n[LEDGER_NCOLS];
	bool		ok = true;
	int			i;

	heap_deform_tuple(tuple, desc, v, n);
	InitBlock(b);
	for (i = 0; i < LEDGER_NCOLS; i++)
		if (n[i] && i != LC_MIN_CLOCK && i != LC_MAX_CLOCK)
			ok = false;
	b->block = n[LC_BLOCK] ? 0 : DatumGetInt64(v[LC_BLOCK]);
	b->format = n[LC_FORMAT] ? 0 : DatumGetInt16(v[LC_FORMAT]);
	ok &= HashFromBytea(v[LC_PREV_HASH], n[LC_PREV_HASH], b->prev_hash);
	b->first_id = n[LC_FIRST_ID] ? 0 : DatumGetInt64(v[LC_FIRST_ID]);
	b->last_id = n[LC_LAST_ID] ? 0 : DatumGetInt64(v[LC_LAST_ID]);
	b->row_count = n[LC_ROW_COUNT] ? 0 : DatumGetInt64(v[LC_ROW_COUNT]);
	b->has_clock = !n[LC_MIN_CLOCK] && !n[LC_MAX_CLOCK];
	b->min_clock = n[LC_MIN_CLOCK] ? 0 : DatumGetTimestampTz(v[LC_MIN_CLOCK]);
	b->max_clock = n[LC_MAX_CLOCK] ? 0 : DatumGetTimestampTz(v[LC_MAX_CLOCK]);
	b->sealed_at = n[LC_SEALED_AT] ? 0 : DatumGetTimestampTz(v[LC_SEALED_AT]);
	if (!n[LC_TABLE_NUMBERS] && !n[LC_TABLE_SCHEMAS] && !n[LC_TABLE_NAMES])
		ok &= TablesFromArrays(b, v[LC_TABLE_NUMBERS], v[LC_TABLE_SCHEMAS],
							   v[LC_TABLE_NAMES]);
	ok &= HashFromBytea(v[LC_ROWS_HASH], n[LC_ROWS_HASH], b->rows_hash);
	if (!n[LC_ROW_IDS])
	{
		bytea	   *ids = DatumGetByteaPP(v[LC_ROW_IDS]);

		appendBinaryStringInfo(&b->ids, VARDATA_ANY(ids), VARSIZE_ANY_EXHDR(ids));
	}
	if (!n[LC_ROW_MARKS])
	{
		bytea	   *marks = DatumGetByteaPP(v[LC_ROW_MARKS]);

		appendBinaryStringInfo(&b->marks, VARDATA_ANY(marks), VARSIZE_ANY_EXHDR(marks));
	}
	ok &= HashFromBytea(v[LC_HASH], n[LC_HASH], b->hash);
	return ok;
}

/* ------------------------------------------------------------------------
 * Reading payout.history
 * ------------------------------------------------------------------------
 */

/*
 * OpenHistory
 *		A read-only cursor over the history rows a condition selects, in
 *		id order, through the active snapshot.
 */
static void
OpenHistory(HistoryScan *scan, const char *where, int nargs, Oid *types,
			Datum *values)
{
	char	   *sql = psprintf("%s%s ORDER BY h.id", HISTORY_SELECT, where);

	memset(scan, 0, sizeof(*scan));
	scan->portal = SPI_cursor_open_with_args(NULL, sql, nargs, types, values,
											 NULL, true, 0);
}

/*
 * NextRow
 *		The next row of a scan, deformed; false at the end.  The values
 *		stay valid until the next call.
 */
static bool
NextRow(HistoryScan *scan, HistoryRow *row)
{
	if (scan->done)
		return false;
	if (scan->batch == NULL || scan->pos == scan->n)
	{
		if (scan->batch != NULL)
			SPI_freetuptable(scan->batch);
		SPI_cursor_fetch(scan->portal, true, LEDGER_FETCH);
		scan->batch = SPI_tuptable;
		scan->n = SPI_processed;
		scan->pos = 0;
		if (scan->n == 0)
		{
			scan->done = true;
			return false;
		}
	}
	heap_deform_tuple(scan->batch->vals[scan->pos], scan->batch->tupdesc,
					  row->values, row->nulls);
	scan->pos++;
	return true;
}

/*
 * CloseHistory
 *		Close a cursor of OpenHistory.
 */
static void
CloseHistory(HistoryScan *scan)
{
	if (scan->batch != NULL)
		SPI_freetuptable(scan->batch);
	SPI_cursor_close(scan->portal);
}

/*
 * RowId
 *		A row's id (a NULL one, which only tampering makes, sorts first).
 */
static int64
RowId(const HistoryRow *row)
{
	return row->nulls[COL_ID] ? PG_INT64_MIN : DatumGetInt64(row->values[COL_ID]);
}

/*
 * SafeSearchPath
 *		Run what follows with search_path = pg_catalog, pg_temp; returns
 *		the GUC nest level to pass to AtEOXact_GUC.
 */
static int
SafeSearchPath(void)
{
	int			nestlevel = NewGUCNestLevel();

	PayoutRestrictSearchPath();
	return nestlevel;
}

/* ------------------------------------------------------------------------
 * Sealing
 * ------------------------------------------------------------------------
 */

/* A vxid as one bigint, to keep in payout.ledger_pending. */
static int64
VxidToInt64(VirtualTransactionId vxid)
{
	return ((int64) (uint32) (PayoutVxidProc(vxid) + 1) << 32) |
		(int64) vxid.localTransactionId;
}

/*
 * Int64ToVxid
 *		The vxid VxidToInt64 stored.
 */
static VirtualTransactionId
Int64ToVxid(int64 v)
{
	VirtualTransactionId vxid;

	PayoutVxidProc(vxid) = (int) ((uint64) v >> 32) - 1;
	vxid.localTransactionId = (LocalTransactionId) (v & 0xFFFFFFFF);
	return vxid;
}

/*
 * RelOwner
 *		The owner of a relation.
 */
static Oid
RelOwner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * PayoutRelid
 *		A relation of schema payout, which the update to 1.2 creates.
 */
static Oid
PayoutRelid(const char *name)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid(PAYOUT_SCHEMA, false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", PAYOUT_SCHEMA, name),
				 errhint("Update the extension with ALTER EXTENSION payout UPDATE.")));
	return relid;
}


/*
 * HistorySequence
 *		The sequence payout.history's ids come from: the one its column id
 *		takes the next value of by default, which is where the writer of
 *		history draws them (history_buffer.c), whatever it is called.
 */
static Oid
HistorySequence(Oid history_relid)
{
	Relation	history = table_open(history_relid, AccessShareLock);
	AttrNumber	attnum = get_attnum(history_relid, "id");
	Node	   *expr = NULL;
	Oid			seqid = InvalidOid;

	if (attnum != InvalidAttrNumber &&
		TupleDescAttr(RelationGetDescr(history), attnum - 1)->atttypid == INT8OID)
		expr = build_column_default(history, attnum);
	if (expr != NULL && IsA(expr, FuncExpr) &&
		((FuncExpr *) expr)->funcid == F_NEXTVAL &&
		list_length(((FuncExpr *) expr)->args) == 1 &&
		IsA(linitial(((FuncExpr *) expr)->args), Const) &&
		!((Const *) linitial(((FuncExpr *) expr)->args))->constisnull)
		seqid = DatumGetObjectId(((Const *) linitial(((FuncExpr *) expr)->args))->constvalue);
	table_close(history, NoLock);
	if (!OidIsValid(seqid) || get_rel_relkind(seqid) != RELKIND_SEQUENCE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payout history cannot be sealed: its ids do not come from a sequence"),
				 errdetail("Sealing needs column \"id\" of \"%s.history\" to be a bigint that takes the next value of a sequence by default, as the extension made it.",
						   PAYOUT_SCHEMA),
				 errhint("Give it back its default: ALTER TABLE payout.history ALTER COLUMN id SET DEFAULT pg_catalog.nextval('payout.history_id_seq').")));
	return seqid;
}

/*
 * SequenceLastValue
 *		The last id payout.history's sequence gave out, 0 if none; refuses
 *		a sequence with a cache, whose backends hold ids no lock shows.
 */
static int64
SequenceLastValue(Oid seqid)
{
	HeapTuple	tup;
	int64		cache;
	bool		isnull;
	Datum		last;
	char	   *seqname;

	tup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for sequence %u", seqid);
	cache = ((Form_pg_sequence) GETSTRUCT(tup))->seqcache;
	ReleaseSysCache(tup);
	if (cache != 1)
	{
		seqname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(seqid)),
											 get_rel_name(seqid));
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payout history cannot be sealed while sequence \"%s\" has a cache",
						seqname),
				 errdetail("Its cache is " INT64_FORMAT ": backends hold ids that no lock shows, so no range of ids is known to be complete.",
						   cache),
				 errhint("Set its cache back to 1: ALTER SEQUENCE %s CACHE 1.", seqname)));
	}

	if (RunLatest("SELECT pg_catalog.pg_sequence_last_value($1)",
				  1, (Oid[]) {REGCLASSOID}, (Datum[]) {ObjectIdGetDatum(seqid)},
				  NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read sequence %u", seqid);
	last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(last);
}

/*
 * PendingCleared
 *		Whether every transaction a recorded horizon waits for has ended.
 *		Vxids are only meaningful in the postmaster's lifetime that saw
 *		them; after a restart only prepared transactions survive, and they
 *		hold their locks again, so the horizon waits for those.
 */
static bool
PendingCleared(TimestampTz started, Datum waits, VirtualTransactionId *now,
			   int nnow)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	if (started != PgStartTime)
	{
		for (i = 0; i < nnow; i++)
			if (VirtualTransactionIdIsRecoveredPreparedXact(now[i]))
				return false;
		return true;
	}
	deconstruct_array(DatumGetArrayTypeP(waits), INT8OID, 8, FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		VirtualTransactionId vxid;

		if (nulls[i])
			continue;
		vxid = Int64ToVxid(DatumGetInt64(elems[i]));
		if (VirtualTransactionIdIsValid(vxid) && !VirtualXactLock(vxid, false))
			return false;
	}
	return true;
}

/*
 * ClearedHorizon
 *		Record the horizon of this call (last id L, the transactions
 *		writing history now), and return the highest recorded horizon
 *		whose transactions have all ended; frontier if none.
 */
static int64
ClearedHorizon(int64 frontier, int64 last, VirtualTransactionId *vxids,
			   int nvxids)
{
	int64		cleared = frontier;
	uint64		i;

	if (last > frontier)
	{
		Datum	   *elems = palloc(sizeof(Datum) * (nvxids + 1));
		int			dims[1] = {nvxids};
		int			lbs[1] = {1};
		Datum		args[4];
		int			k;

		for (k = 0; k < nvxids; k++)
			elems[k] = Int64GetDatum(VxidToInt64(vxids[k]));
		args[0] = Int64GetDatum(last);
		args[1] = TimestampTzGetDatum(GetCurrentTimestamp());
		args[2] = TimestampTzGetDatum(PgStartTime);
		args[3] = PointerGetDatum(construct_md_array(elems, NULL, 1, dims, lbs,
													 INT8OID, 8, FLOAT8PASSBYVAL,
													 TYPALIGN_DOUBLE));
		if (RunLatest("INSERT INTO payout.ledger_pending"
					  " (horizon, recorded_at, postmaster_start, waits_for)"
					  " SELECT $1, $2, $3, $4"
					  " WHERE (SELECT pg_catalog.count(*) FROM payout.ledger_pending)"
					  " OPERATOR(pg_catalog.<) " CppAsString2(LEDGER_PENDING_MAX)
					  " ON CONFLICT (horizon) DO NOTHING",
					  4, (Oid[]) {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8ARRAYOID},
					  args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record a payout ledger horizon");
	}

	if (RunLatest("SELECT horizon, postmaster_start, waits_for"
				  " FROM payout.ledger_pending ORDER BY horizon",
				  0, NULL, NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.ledger_pending");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		horizon = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		TimestampTz started = DatumGetTimestampTz(SPI_getbinval(tup, desc, 2, &isnull));
		Datum		waits = SPI_getbinval(tup, desc, 3, &isnull);

		if (horizon > cleared && PendingCleared(started, waits, vxids, nvxids))
			cleared = horizon;
	}
	return cleared;
}

/*
 * SealRel
 *		The relation a row being sealed names, with the table number its
 *		rows are sealed under: the one payout.ledger_tables gives it, or a
 *		new one, recorded there, for a table the ledger meets for the first
 *		time.  If a restore made a dropped table's old OID name a table
 *		(the dump keeps a dropped table's OID as a number), that table may
 *		have two numbers: its rows are sealed under the one last sealed
 *		under its name, else the newest.
 */
static RelEntry *
SealRel(LedgerCall *call, Oid relid)
{
	RelEntry   *rel = FindRel(call, relid, true);
	int32		number = 0;
	int			i;

	if (rel->seal_number != 0)
		return rel;
	LookUpName(call, rel);
	for (i = rel->nnumbers - 1; i >= 0 && number == 0; i--)
	{
		TableRow   *t = FindTableRow(call, rel->numbers[i]);

		if (t != NULL && rel->name != NULL &&
			SameName(t->schema, rel->schema) && SameName(t->name, rel->name))
			number = rel->numbers[i];
	}
	if (number == 0 && rel->nnumbers > 0)
		number = rel->numbers[rel->nnumbers - 1];
	if (number == 0)
	{
		Datum		values[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};

		number = call->max_number + 1;
		values[0] = Int32GetDatum(number);
		values[1] = ObjectIdGetDatum(relid);
		values[2] = rel->name ? CStringGetTextDatum(rel->schema) : (Datum) 0;
		values[3] = rel->name ? CStringGetTextDatum(rel->name) : (Datum) 0;
		if (rel->name == NULL)
			nulls[2] = nulls[3] = 'n';
		if (RunLatest("INSERT INTO payout.ledger_tables"
					  " (number, tbl, schema_name, table_name)"
					  " VALUES ($1, $2, $3, $4)",
					  4, (Oid[]) {INT4OID, REGCLASSOID, TEXTOID, TEXTOID},
					  values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not update payout.ledger_tables");
		(void) AddTableRow(call, number, relid, rel->schema, rel->name);
	}
	rel->seal_number = number;
	return rel;
}

/*
 * StoreTableNames
 *		Keep in payout.ledger_tables the name each table of a block was
 *		sealed under, for SealRel to know it again after a restore.
 */
static void
StoreTableNames(LedgerCall *call, const LedgerBlock *b)
{
	int			i;

	for (i = 0; i < b->ntables; i++)
	{
		const LedgerTable *lt = &b->tables[i];
		TableRow   *t = FindTableRow(call, lt->number);
		MemoryContext oldcxt;

		if (t == NULL || lt->name == NULL ||
			(SameName(t->schema, lt->schema) && SameName(t->name, lt->name)))
			continue;
		if (RunLatest("UPDATE payout.ledger_tables"
					  " SET schema_name = $2, table_name = $3"
					  " WHERE number OPERATOR(pg_catalog.=) $1",
					  3, (Oid[]) {INT4OID, TEXTOID, TEXTOID},
					  (Datum[]) {Int32GetDatum(lt->number),
						  CStringGetTextDatum(lt->schema),
					  CStringGetTextDatum(lt->name)},
					  NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update payout.ledger_tables");
		oldcxt = MemoryContextSwitchTo(call->cxt);
		t->schema = pstrdup(lt->schema);
		t->name = pstrdup(lt->name);
		MemoryContextSwitchTo(oldcxt);
	}
}

/*
 * payout.seal(max_rows bigint) returns (blocks, sealed_rows, through_id,
 * waiting)
 *
 * Seals, in blocks, the history rows that no transaction can add to any
 * more, up to max_rows of them (NULL: all).  Never waits for a writer:
 * what is still being written is sealed by a later call.  Runs as the
 * owner of payout.ledger; one call at a time (others wait for it), in any
 * isolation level.
 */
PG_FUNCTION_INFO_V1(payout_seal);
Datum
payout_seal(PG_FUNCTION_ARGS)
{
	int64		max_rows = PG_ARGISNULL(0) ? PG_INT64_MAX : PG_GETARG_INT64(0);
	Oid			history_relid;
	Oid			ledger_relid;
	Oid			seqid;
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
	LOCKTAG		tag;
	VirtualTransactionId *vxids;
	int			nvxids;
	int64		last;
	int64		frontier = 0;
	int64		horizon;
	int64		nblocks = 0;
	int64		nrows = 0;
	int64		through;
	LedgerBlock prev;
	bool		has_prev = false;
	LedgerCall	call;
	TupleDesc	desc;
	Datum		result[4];
	bool		rnulls[4] = {false, false, false, false};

	if (max_rows <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_rows must be positive"),
				 errhint("Pass NULL to seal every row that can be sealed.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("payout history cannot be sealed during recovery"),
				 errhint("Seal on the primary: its blocks reach the standby with the WAL.")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	history_relid = PayoutRelid("history");
	ledger_relid = PayoutRelid("ledger");

	/* One sealer at a time; readers of the ledger are not in the way. */
	LockRelationOid(ledger_relid, ShareRowExclusiveLock);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(RelOwner(ledger_relid),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nestlevel = SafeSearchPath();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	StartCall(&call);
	seqid = HistorySequence(history_relid);

	/*
	 * The last id given out, then who may still hold ids up to it: every
	 * writer of history took its lock before its ids (see the file
	 * header), and holds it until it ends.
	 */
	last = SequenceLastValue(seqid);
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, history_relid);
	vxids = GetLockConflicts(&tag, ShareLock, &nvxids);

	if (RunLatest(LEDGER_SELECT "ORDER BY block DESC LIMIT 1", 0, NULL, NULL,
				  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.ledger");
	if (SPI_processed == 1)
	{
		bool		complete;
		uint8		hash[PG_SHA256_DIGEST_LENGTH];

		complete = BlockFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &prev);
		has_prev = true;
		frontier = prev.last_id;

		/* a new block would vouch for the one it chains to: check it */
		if (complete && prev.format == LEDGER_FORMAT)
			BlockHash(&call, &prev, hash);
		if (!complete || prev.format != LEDGER_FORMAT ||
			memcmp(hash, prev.hash, PG_SHA256_DIGEST_LENGTH) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("payout.ledger's newest block does not match its hash"),
					 errdetail("Block " INT64_FORMAT " %s: a column of it was changed since it was sealed.",
							   prev.block,
							   !complete ? "has an empty column or a hash that is not 32 bytes long" :
							   prev.format != LEDGER_FORMAT ? "is of a format this version does not write" :
							   psprintf("hashes to %s, not to its stored hash %s",
										Hex(hash, PG_SHA256_DIGEST_LENGTH),
										Hex(prev.hash, PG_SHA256_DIGEST_LENGTH))),
					 errhint("Run payout.verify() with the digests kept outside the database to see what was changed; no block is chained to an altered one.")));
	}
	if (frontier > last)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payout.ledger has sealed ids beyond the last one its sequence gave out"),
				 errdetail("The ledger has sealed ids up to " INT64_FORMAT "; the sequence of payout.history's ids gave out ids up to " INT64_FORMAT ". Ids written here come from that sequence: rows with other ids were written elsewhere, such as by a logical replication publisher.",
						   frontier, last),
				 errhint("Seal where the history is written; a subscriber verifies the blocks its publisher sealed.")));
	if (has_prev && GetCurrentTimestamp() < prev.sealed_at)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payout history cannot be sealed while this server's clock is behind the newest block"),
				 errdetail("Block " INT64_FORMAT " was sealed at %s; this server's clock says %s.",
						   prev.block, UtcText(prev.sealed_at),
						   UtcText(GetCurrentTimestamp())),
				 errhint("Seal once the clock has caught up, or set it right: the times of the chain only go forward.")));

	horizon = ClearedHorizon(frontier, last, vxids, nvxids);
	through = frontier;
	if (horizon > frontier)
	{
		LoadTables(&call, true);
		SealRange(&call, frontier, horizon, max_rows, &prev, has_prev,
				  &nblocks, &nrows, &through);
	}

	/* Horizons the blocks reached are done; so are those of empty ranges. */
	if (RunLatest("DELETE FROM payout.ledger_pending"
				  " WHERE horizon OPERATOR(pg_catalog.<=) $1",
				  1, (Oid[]) {INT8OID},
				  (Datum[]) {Int64GetDatum(nrows < max_rows ? Max(horizon, through) : through)},
				  NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not update payout.ledger_pending");

	EndCall(&call);
	SPI_finish();
	AtEOXact_GUC(false, nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	result[0] = Int32GetDatum((int32) nblocks);
	result[1] = Int64GetDatum(nrows);
	result[2] = Int64GetDatum(through);
	result[3] = Int32GetDatum(nvxids);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc),
													  result, rnulls)));
}

/*
 * StartBlock
 *		Begin the block after prev (the first if there is none), in a
 *		memory context of its own.
 */
static MemoryContext
StartBlock(LedgerCall *call, LedgerBlock *b, const LedgerBlock *prev,
		   bool has_prev, int64 first_id)
{
	MemoryContext cxt = AllocSetContextCreate(call->cxt, "payout ledger block",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	uint8		tagbyte = TAG_ROWS;

	InitBlock(b);
	b->clocks = palloc(sizeof(TimestampTz) * LEDGER_BLOCK_ROWS);
	MemoryContextSwitchTo(oldcxt);
	b->format = LEDGER_FORMAT;
	b->block = has_prev ? prev->block + 1 : 1;
	if (has_prev)
		memcpy(b->prev_hash, prev->hash, PG_SHA256_DIGEST_LENGTH);
	b->first_id = first_id;
	ShaInit(call->stream_ctx);
	ShaUpdate(call->stream_ctx, &tagbyte, 1);
	return cxt;
}

/*
 * FinishBlock
 *		Give each mark its clock offset from the block's earliest
 *		clock_time, in whole seconds, or CLOCK_UNKNOWN if the row has no
 *		finite time or its offset does not fit: an offset cut short would
 *		make the row look older than it is, and retention could excuse its
 *		removal.  Then hash and store a block that covers the ids up to
 *		last_id, keep the names its tables were sealed under, and keep of
 *		it in prev what the next block needs.
 */
static void
FinishBlock(LedgerCall *call, LedgerBlock *b, MemoryContext cxt,
			int64 last_id, LedgerBlock *prev, bool has_prev)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	int64		i;

	for (i = 0; i < b->row_count; i++)
	{
		uint32		offset = CLOCK_UNKNOWN;
		uint32		be;
		int64		delta;

		if (b->clocks[i] != DT_NOBEGIN &&
			!pg_sub_s64_overflow(b->clocks[i], b->min_clock, &delta) &&
			delta >= 0 && delta / USECS_PER_SEC < (int64) CLOCK_UNKNOWN)
			offset = (uint32) (delta / USECS_PER_SEC);
		be = pg_hton32(offset);
		memcpy(b->marks.data + i * MARK_SIZE + 6, &be, 4);
	}
	b->last_id = last_id;
	/* never before the block before, should the clock step back meanwhile */
	b->sealed_at = GetCurrentTimestamp();
	if (has_prev && b->sealed_at < prev->sealed_at)
		b->sealed_at = prev->sealed_at;
	ShaFinal(call->stream_ctx, b->rows_hash);
	BlockHash(call, b, b->hash);
	InsertBlock(b);
	StoreTableNames(call, b);
	MemoryContextSwitchTo(oldcxt);

	prev->block = b->block;
	prev->last_id = b->last_id;
	prev->sealed_at = b->sealed_at;
	memcpy(prev->hash, b->hash, PG_SHA256_DIGEST_LENGTH);
	MemoryContextDelete(cxt);
}

/*
 * SealRange
 *		Seal the rows with ids after from and up to to, in blocks of at
 *		most LEDGER_BLOCK_ROWS rows and max_rows in all, read through a
 *		snapshot taken now, after the horizon's transactions ended.
 */
static void
SealRange(LedgerCall *call, int64 from, int64 to, int64 max_rows,
		  LedgerBlock *prev, bool has_prev,
		  int64 *nblocks, int64 *nrows, int64 *through)
{
	HistoryScan scan;
	HistoryRow	row;
	LedgerBlock block;
	MemoryContext blockcxt = NULL;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	int64		previd = from;
	Datum		args[2];

	rowcxt = AllocSetContextCreate(call->cxt, "payout ledger row",
								   ALLOCSET_DEFAULT_SIZES);
	args[0] = Int64GetDatum(from);
	args[1] = Int64GetDatum(to);
	PushActiveSnapshot(GetLatestSnapshot());
	OpenHistory(&scan, "WHERE h.id OPERATOR(pg_catalog.>) $1"
				" AND h.id OPERATOR(pg_catalog.<=) $2",
				2, (Oid[]) {INT8OID, INT8OID}, args);

	while (*nrows < max_rows && NextRow(&scan, &row))
	{
		int64		id = RowId(&row);
		RelEntry   *rel;
		uint8		leaf[PG_SHA256_DIGEST_LENGTH];
		uint64		idbe;

		if (blockcxt == NULL)
			blockcxt = StartBlock(call, &block, prev, has_prev, previd + 1);

		/* the row's table, and its place in the block's dictionary */
		rel = SealRel(call, DatumGetObjectId(row.values[COL_TBL]));
		if (rel->stamp != block.block)
		{
			oldcxt = MemoryContextSwitchTo(blockcxt);
			rel->index = AddTable(&block, rel->seal_number, rel->schema, rel->name);
			MemoryContextSwitchTo(oldcxt);
			rel->stamp = block.block;
		}

		oldcxt = MemoryContextSwitchTo(rowcxt);
		RowLeaf(call, &row, rel->seal_number, leaf);
		MemoryContextSwitchTo(blockcxt);
		/* an infinite time is no time: it tells neither min nor max */
		if (row.nulls[COL_CLOCK_TIME] ||
			TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(row.values[COL_CLOCK_TIME])))
			block.clocks[block.row_count] = DT_NOBEGIN;
		else
		{
			TimestampTz ct = DatumGetTimestampTz(row.values[COL_CLOCK_TIME]);

			block.clocks[block.row_count] = ct;
			if (!block.has_clock)
			{
				block.has_clock = true;
				block.min_clock = block.max_clock = ct;
			}
			else
			{
				block.min_clock = Min(block.min_clock, ct);
				block.max_clock = Max(block.max_clock, ct);
			}
		}
		idbe = pg_hton64((uint64) id);
		ShaUpdate(call->stream_ctx, &idbe, 8);
		ShaUpdate(call->stream_ctx, leaf, PG_SHA256_DIGEST_LENGTH);
		PutVarint(&block.ids, (uint64) (id - previd));
		PutU16(&block.marks, (uint16) rel->index);
		PutU32(&block.marks, KeyTag(call, row.values[COL_KEY], row.nulls[COL_KEY]));
		PutU32(&block.marks, 0);	/* the clock offset, at FinishBlock */
		appendBinaryStringInfo(&block.marks, (const char *) leaf, FINGERPRINT_SIZE);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
		block.row_count++;
		previd = id;
		(*nrows)++;

		if (block.row_count == LEDGER_BLOCK_ROWS || block.ntables == PG_UINT16_MAX)
		{
			FinishBlock(call, &block, blockcxt, id, prev, has_prev);
			blockcxt = NULL;
			has_prev = true;
			(*nblocks)++;
			*through = id;
		}
	}
	CloseHistory(&scan);
	PopActiveSnapshot();

	if (blockcxt != NULL)
	{
		/* the last block covers the ids up to the horizon, unless cut short */
		int64		last_id = (*nrows < max_rows) ? to : previd;

		FinishBlock(call, &block, blockcxt, last_id, prev, has_prev);
		(*nblocks)++;
		*through = last_id;
	}
	MemoryContextDelete(rowcxt);
}

/* ------------------------------------------------------------------------
 * Verification
 * ------------------------------------------------------------------------
 */

/*
 * Finding
 *		One line of verify()'s answer; block and id are NULL when below 0.
 */
static void
Finding(VerifyState *vs, int64 block, int64 id, const char *finding,
		const char *fmt,...)
{
	Datum		values[4];
	bool		nulls[4] = {block < 0, id == PG_INT64_MIN, false, false};
	StringInfoData detail;

	initStringInfo(&detail);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&detail, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&detail, needed);
	}
	values[0] = Int64GetDatum(block);
	values[1] = Int64GetDatum(id);
	values[2] = CStringGetTextDatum(finding);
	values[3] = CStringGetTextDatum(detail.data);
	tuplestore_putvalues(vs->out, vs->outdesc, values, nulls);
}

/*
 * RowFindingTold
 *		Count a difference in a block's rows; true if it is among the first
 *		few of the block, which are told: the others are only counted.
 */
static bool
RowFindingTold(VerifyState *vs)
{
	vs->problems++;
	if (vs->block_findings < LEDGER_FINDINGS_PER_BLOCK)
	{
		vs->block_findings++;
		return true;
	}
	vs->block_more++;
	return false;
}

/* What a row holds now, for the evidence of a finding. */
static char *
RowText(VerifyState *vs, const HistoryRow *row)
{
	LedgerCall *call = vs->call;
	Oid			relid = DatumGetObjectId(row->values[COL_TBL]);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "table %s, key %s, %s -> %s",
					 row->nulls[COL_TBL] ? "NULL" :
					 RelText(call, relid, FindRel(call, relid, false)),
					 row->nulls[COL_KEY] ? "NULL" : TextDatumGetCString(row->values[COL_KEY]),
					 row->nulls[COL_OLD_STATUS] ? "NULL" :
					 LabelOf(&call->statuses, DatumGetObjectId(row->values[COL_OLD_STATUS])),
					 row->nulls[COL_NEW_STATUS] ? "NULL" :
					 LabelOf(&call->statuses, DatumGetObjectId(row->values[COL_NEW_STATUS])));
	if (!row->nulls[COL_CLOCK_TIME])
		appendStringInfo(&buf, ", recorded %s",
						 UtcText(DatumGetTimestampTz(row->values[COL_CLOCK_TIME])));
	return buf.data;
}

/*
 * ParseTime
 *		A timestamp with time zone from text, false if it is none; as
 *		timestamptz_in reads it, without raising an error, and only with
 *		its time zone or offset written out: a time without one would be
 *		read in the session's time zone, and a digest would verify under
 *		one setting and not under another.
 */
static bool
ParseTime(const char *s, TimestampTz *out)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz = 0;
	struct pg_tm tt;
	fsec_t		fsec;

	if (strlen(s) > MAXDATELEN)
		return false;

	/* decoded without a time zone, a time that has one is refused */
	if (ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;
	if (PayoutDecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, NULL) == 0)
		return false;

	/* (decoding changes the fields in place) */
	if (ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;
#if PG_VERSION_NUM < 160000
	/* before 16, decoding raises its own error for an unknown zone name */
	{
		int			i;

		for (i = 0; i < nf; i++)
			if (ftype[i] == DTK_DATE && isalpha((unsigned char) field[i][0]) &&
				pg_tzset(field[i]) == NULL)
				return false;
	}
#endif
	if (PayoutDecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz) != 0 ||
		dtype != DTK_DATE)
		return false;
	return tm2timestamp(&tt, fsec, &tz, out) == 0;
}

/* A hash from 64 hexadecimal digits; false if it is not that. */
static bool
ParseHash(const char *s, uint8 *out)
{
	int			i;

	if (strlen(s) != 2 * PG_SHA256_DIGEST_LENGTH)
		return false;
	for (i = 0; i < 2 * PG_SHA256_DIGEST_LENGTH; i++)
	{
		char		c = s[i];
		int			v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return false;
		if (i % 2 == 0)
			out[i / 2] = (uint8) (v << 4);
		else
			out[i / 2] |= (uint8) v;
	}
	return true;
}

/*
 * BadDigest
 *		Refuse a digest that is not what payout.digest() gives.
 */
static void
BadDigest(int n, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid digest in argument \"digests\""),
			 errdetail("Digest %d %s.", n, what),
			 errhint("Give the digests as payout.digest() returns them, in JSON: an object such as {\"block\": 42, \"hash\": \"<64 hexadecimal digits>\", \"sealed_at\": \"2026-12-06T09:14:03.418934+00:00\"}, or an array of them.")));
}

/*
 * LoadDigests
 *		The digests given: a JSON array of objects with "block" and "hash",
 *		and, optionally, "sealed_at" (what payout.digest() returns, as
 *		row_to_json writes it) and "taken_at" (when the auditor took it,
 *		by the auditor's clock); or one such object.
 */
static void
LoadDigests(VerifyState *vs, Jsonb *digests)
{
	uint64		i;

	vs->newest_digest = -1;
	if (digests == NULL)
		return;
	if (JB_ROOT_IS_SCALAR(digests))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"digests\" must be a JSON object or an array of objects"),
				 errdetail("It is a JSON scalar."),
				 errhint("Give the digests as payout.digest() returns them, in JSON: SELECT row_to_json(d) FROM payout.digest() AS d, or an array of such objects.")));
	if (SPI_execute_with_args("SELECT pg_catalog.jsonb_typeof(e.d),"
							  " pg_catalog.jsonb_typeof(e.d OPERATOR(pg_catalog.->) 'block'),"
							  " e.d OPERATOR(pg_catalog.->>) 'block',"
							  " pg_catalog.jsonb_typeof(e.d OPERATOR(pg_catalog.->) 'hash'),"
							  " e.d OPERATOR(pg_catalog.->>) 'hash',"
							  " pg_catalog.jsonb_typeof(e.d OPERATOR(pg_catalog.->) 'sealed_at'),"
							  " e.d OPERATOR(pg_catalog.->>) 'sealed_at',"
							  " pg_catalog.jsonb_typeof(e.d OPERATOR(pg_catalog.->) 'taken_at'),"
							  " e.d OPERATOR(pg_catalog.->>) 'taken_at'"
							  " FROM pg_catalog.jsonb_array_elements("
							  "   CASE WHEN pg_catalog.jsonb_typeof($1) OPERATOR(pg_catalog.=) 'array'"
							  "   THEN $1 ELSE pg_catalog.jsonb_build_array($1) END) AS e(d)",
							  1, (Oid[]) {JSONBOID}, (Datum[]) {JsonbPGetDatum(digests)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the digests");
	vs->ndigests = (int) SPI_processed;
	vs->digests = palloc0(sizeof(LedgerDigest) * (vs->ndigests + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		LedgerDigest *d = &vs->digests[i];
		int			n = (int) i + 1;
		char	   *type = SPI_getvalue(tup, desc, 1);
		char	   *value;
		char	   *end;

		if (!SameName(type, "object"))
			BadDigest(n, psprintf("is a JSON %s, not an object", type ? type : "null"));

		value = SPI_getvalue(tup, desc, 3);
		if (value == NULL || !SameName(SPI_getvalue(tup, desc, 2), "number") ||
			strspn(value, "0123456789") != strlen(value) || strlen(value) > 18 ||
			(d->block = strtoi64(value, &end, 10)) <= 0)
			BadDigest(n, "has no \"block\", or one that is not a block number");

		value = SPI_getvalue(tup, desc, 5);
		if (value == NULL || !SameName(SPI_getvalue(tup, desc, 4), "string") ||
			!ParseHash(value, d->hash))
			BadDigest(n, "has no \"hash\", or one that is not 64 hexadecimal digits");

		value = SPI_getvalue(tup, desc, 7);
		d->has_sealed_at = (value != NULL && !SameName(SPI_getvalue(tup, desc, 6), "null"));
		if (d->has_sealed_at &&
			(!SameName(SPI_getvalue(tup, desc, 6), "string") || !ParseTime(value, &d->sealed_at)))
			BadDigest(n, "has a \"sealed_at\" that is not a time with its time zone or offset written out");

		value = SPI_getvalue(tup, desc, 9);
		d->has_taken_at = (value != NULL && !SameName(SPI_getvalue(tup, desc, 8), "null"));
		if (d->has_taken_at &&
			(!SameName(SPI_getvalue(tup, desc, 8), "string") || !ParseTime(value, &d->taken_at)))
			BadDigest(n, "has a \"taken_at\" that is not a time with its time zone or offset written out");

		if (vs->newest_digest < 0 || d->block > vs->digests[vs->newest_digest].block)
			vs->newest_digest = (int) i;
	}
}

/*
 * ComputeCutoff
 *		The moment before which sealed rows may be gone, by the retention
 *		the auditor gives: counted back from the newest digest's time (when
 *		its block was sealed, or, if earlier, when the auditor took it),
 *		else from the newest block's; never from later than this server's
 *		clock, so that a block sealed with its time in the future gains
 *		nothing.  Computed in UTC.
 */
static void
ComputeCutoff(VerifyState *vs, Interval *retention)
{
	TimestampTz from;
	TimestampTz now = GetCurrentTimestamp();

	if (retention == NULL)
		return;
	if (vs->newest_digest >= 0)
	{
		LedgerDigest *d = &vs->digests[vs->newest_digest];

		if (!d->has_sealed_at && !d->has_taken_at)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the newest digest has no time to count the retention back from"),
					 errdetail("Digest %d, of block " INT64_FORMAT ", has neither \"sealed_at\" nor \"taken_at\".",
							   vs->newest_digest + 1, d->block),
					 errhint("Keep each digest with its \"sealed_at\", as payout.digest() gives it.")));
		if (d->has_sealed_at && d->has_taken_at)
			from = Min(d->sealed_at, d->taken_at);
		else
			from = d->has_sealed_at ? d->sealed_at : d->taken_at;
	}
	else
	{
		bool		isnull;

		if (SPI_execute("SELECT sealed_at FROM payout.ledger ORDER BY block DESC LIMIT 1",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read payout.ledger");
		if (SPI_processed != 1)
			return;
		from = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
		if (isnull)
			return;
	}
	from = Min(from, now);
	/* a timestamptz is a UTC timestamp: subtract without a time zone */
	vs->cutoff = DatumGetTimestamp(DirectFunctionCall2(timestamp_mi_interval,
													   TimestampGetDatum(from),
													   IntervalPGetDatum(retention)));
	vs->cutoff_from = from;
	vs->has_cutoff = true;
}

/* Whether rows sealed under a table number are among those asked about. */
static bool
ScopeHasNumber(const VerifyState *vs, int32 number)
{
	int			i;

	if (!OidIsValid(vs->scope_tbl))
		return true;
	for (i = 0; i < vs->nscope; i++)
		if (vs->scope_numbers[i] == number)
			return true;
	return false;
}

/* Add a table number to those asked about, once. */
static void
AddScopeNumber(VerifyState *vs, int32 number)
{
	if (ScopeHasNumber(vs, number))
		return;
	vs->scope_numbers = vs->scope_numbers ?
		repalloc(vs->scope_numbers, sizeof(int32) * (vs->nscope + 1)) :
		palloc(sizeof(int32));
	vs->scope_numbers[vs->nscope++] = number;
}

/*
 * ResolveScope
 *		The table numbers of the table asked about: those payout.ledger_tables
 *		maps to it, and those whose newest name in the blocks is its name
 *		now, so that rows sealed under its name are checked even if the
 *		map, which no hash covers, was pointed elsewhere or emptied.  Then
 *		the relations that history rows of those numbers name, by the map:
 *		the table's own, and another if the map says so (TellRenamed lists
 *		each number whose relation is not called as its rows were sealed).
 *		The names in blocks are read before their hashes are checked: a
 *		changed one only widens what is checked, and shows as an altered
 *		block.
 */
static void
ResolveScope(VerifyState *vs)
{
	LedgerCall *call = vs->call;
	RelEntry   *rel = vs->scope_rel;
	uint64		k;
	int			i;

	for (i = 0; i < rel->nnumbers; i++)
		AddScopeNumber(vs, rel->numbers[i]);
	LookUpName(call, rel);
	if (rel->name != NULL)
	{
		if (SPI_execute("SELECT DISTINCT ON (t.n) t.n, t.s, t.nm"
						" FROM payout.ledger l, unnest(l.table_numbers,"
						"  l.table_schemas, l.table_names) AS t(n, s, nm)"
						" WHERE t.nm IS NOT NULL AND t.n IS NOT NULL"
						" ORDER BY t.n, l.block DESC", true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read payout.ledger");
		for (k = 0; k < SPI_processed; k++)
		{
			HeapTuple	tup = SPI_tuptable->vals[k];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int32		number = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));

			if (SameName(SPI_getvalue(tup, desc, 2), rel->schema) &&
				SameName(SPI_getvalue(tup, desc, 3), rel->name))
				AddScopeNumber(vs, number);
		}
		SPI_freetuptable(SPI_tuptable);
	}

	vs->scope_relids = palloc(sizeof(Oid) * (call->ntables + 1));
	vs->scope_relids[vs->nscope_relids++] = vs->scope_tbl;
	for (i = 0; i < call->ntables; i++)
	{
		TableRow   *t = &call->tables[i];
		int			j;

		if (!ScopeHasNumber(vs, t->number))
			continue;
		for (j = 0; j < vs->nscope_relids; j++)
			if (vs->scope_relids[j] == t->relid)
				break;
		if (j == vs->nscope_relids)
			vs->scope_relids[vs->nscope_relids++] = t->relid;
	}
}

/*
 * RowNumber
 *		The table number a history row of relation relid is verified
 *		under, found through payout.ledger_tables; where the relation has
 *		several (see SealRel), the one mark i of block b was sealed with,
 *		if it is one of them.  0, which no table has, if none.
 */
static int32
RowNumber(VerifyState *vs, const LedgerBlock *b, int64 i, Oid relid)
{
	RelEntry   *rel = FindRel(vs->call, relid, false);

	if (rel == NULL || rel->nnumbers == 0)
		return 0;
	if (rel->nnumbers > 1 && i >= 0 && RelHasNumber(rel, MarkNumber(b, i)))
		return MarkNumber(b, i);
	return rel->numbers[rel->nnumbers - 1];
}


/* A block's sealed ids, decoded; false if they do not fit its marks. */
static bool
DecodeIds(const LedgerBlock *b, int64 **ids)
{
	int64		n = b->row_count;
	int64		prev = b->first_id - 1;
	int			pos = 0;
	int64		i;

	*ids = NULL;
	if (n < 0 || n > (int64) (MaxAllocSize / sizeof(int64)) ||
		b->marks.len != n * MARK_SIZE || b->first_id < 1)
		return false;
	*ids = palloc(sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
	{
		uint64		delta;

		/* in unsigned arithmetic: a delta of 2^63 or more is no step back */
		if (!GetVarint((const uint8 *) b->ids.data, b->ids.len, &pos, &delta) ||
			delta == 0 || prev >= b->last_id ||
			delta > (uint64) b->last_id - (uint64) prev)
			return false;
		prev += (int64) delta;
		(*ids)[i] = prev;
	}
	return pos == b->ids.len;
}

typedef struct FingerprintEntry
{
	uint64		fingerprint;	/* hash key */
	int64		index;
} FingerprintEntry;

/* Where in the block a fingerprint was sealed, to recognise a moved row. */
static int64
FindFingerprint(HTAB **fps, const LedgerBlock *b, const uint8 *leaf)
{
	FingerprintEntry *e;
	uint64		key;
	int64		i;

	if (*fps == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(FingerprintEntry);
		ctl.hcxt = CurrentMemoryContext;
		*fps = hash_create("payout ledger fingerprints", b->row_count + 1, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (i = 0; i < b->row_count; i++)
		{
			bool		found;

			memcpy(&key, b->marks.data + i * MARK_SIZE + 10, 8);
			e = hash_search(*fps, &key, HASH_ENTER, &found);
			if (!found)
				e->index = i;
		}
	}
	memcpy(&key, leaf, 8);
	e = hash_search(*fps, &key, HASH_FIND, NULL);
	return e ? e->index : -1;
}

/*
 * The sealed clock_time of a block's row i, to the second, if known: never
 * from an infinite bound, nor one that lies outside the block's bounds.
 */
static bool
SealedClock(const LedgerBlock *b, int64 i, TimestampTz *t)
{
	uint32		offset = GetU32((const uint8 *) b->marks.data + i * MARK_SIZE + 6);

	if (!b->has_clock || offset == CLOCK_UNKNOWN ||
		TIMESTAMP_NOT_FINITE(b->min_clock) || TIMESTAMP_NOT_FINITE(b->max_clock))
		return false;
	if (pg_add_s64_overflow(b->min_clock, (int64) offset * USECS_PER_SEC, t) ||
		*t > b->max_clock)
		return false;
	return true;
}

/* Whether retention may have removed a block's row i. */
static bool
Retained(VerifyState *vs, const LedgerBlock *b, int64 i)
{
	TimestampTz t;
	TimestampTz end;

	/* its clock is known to the second: all of that second must be old */
	return vs->has_cutoff && SealedClock(b, i, &t) &&
		!pg_add_s64_overflow(t, USECS_PER_SEC, &end) && end <= vs->cutoff;
}

/* A run of missing rows of a block, told as one finding. */
typedef struct MissingRun
{
	int64		first;			/* index of the first, -1 if none */
	int64		last;
	int64		count;
} MissingRun;

/*
 * FlushMissing
 *		Tell a run of missing rows, as one finding.
 */
static void
FlushMissing(VerifyState *vs, const LedgerBlock *b, const int64 *ids,
			 MissingRun *run)
{
	TimestampTz t;

	if (run->first < 0)
		return;
	if (RowFindingTold(vs))
	{
		if (run->count == 1)
			Finding(vs, b->block, ids[run->first], "row missing",
					"Row " INT64_FORMAT ", sealed in block " INT64_FORMAT "%s%s, is not in payout.history.",
					ids[run->first], b->block,
					SealedClock(b, run->first, &t) ? " as recorded at " : "",
					SealedClock(b, run->first, &t) ? UtcText(t) : "");
		else
			Finding(vs, b->block, ids[run->first], "rows missing",
					INT64_FORMAT " rows sealed in block " INT64_FORMAT ", ids " INT64_FORMAT " to " INT64_FORMAT ", are not in payout.history.",
					run->count, b->block, ids[run->first], ids[run->last]);
	}
	run->first = -1;
	run->count = 0;
}

/*
 * NoteMissing
 *		A sealed row i that is not there: counted as retained if the
 *		retention allows it, else added to the run of missing rows.
 */
static void
NoteMissing(VerifyState *vs, const LedgerBlock *b, const int64 *ids,
			int64 i, MissingRun *run)
{
	if (Retained(vs, b, i))
	{
		FlushMissing(vs, b, ids, run);
		if (vs->retained == 0 || vs->retained_first_block < 0)
			vs->retained_first_block = b->block;
		vs->retained_last_block = b->block;
		vs->retained++;
		return;
	}
	if (run->first >= 0 && run->last == i - 1)
	{
		run->last = i;
		run->count++;
		return;
	}
	FlushMissing(vs, b, ids, run);
	run->first = run->last = i;
	run->count = 1;
}

/*
 * LookupRow
 *		Row id of payout.history, whatever it names; false if absent.
 */
static bool
LookupRow(int64 id, HistoryRow *row)
{
	HeapTuple	tup;

	if (SPI_execute_with_args(HISTORY_SELECT "WHERE h.id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(id)},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.history");
	if (SPI_processed == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	/* a copy in the caller's context: the result is freed at once */
	tup = heap_copytuple(SPI_tuptable->vals[0]);
	heap_deform_tuple(tup, SPI_tuptable->tupdesc, row->values, row->nulls);
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/*
 * CompareRow
 *		A present row against the mark block b sealed for its id (index i):
 *		false, with a finding, if they differ.  number is the row's table
 *		number and leaf its leaf.
 */
static bool
CompareRow(VerifyState *vs, const LedgerBlock *b, const int64 *ids, int64 i,
		   int32 number, const HistoryRow *row, const uint8 *leaf, HTAB **fps)
{
	const uint8 *mark = (const uint8 *) b->marks.data + i * MARK_SIZE;
	int64		id = ids[i];
	int64		other;

	if (MarkNumber(b, i) == number && memcmp(mark + 10, leaf, FINGERPRINT_SIZE) == 0)
		return true;
	other = FindFingerprint(fps, b, leaf);
	if (other >= 0 && other != i && MarkNumber(b, other) == number)
	{
		if (RowFindingTold(vs))
			Finding(vs, b->block, id, "row moved",
					"Row " INT64_FORMAT " holds what block " INT64_FORMAT " sealed as row " INT64_FORMAT " (fingerprint %s).",
					id, b->block, ids[other], Hex(leaf, FINGERPRINT_SIZE));
		return false;
	}
	if (RowFindingTold(vs))
	{
		TimestampTz t;
		uint16		index = GetU16(mark);
		const char *sealed_table = index < b->ntables ?
		TableText(&b->tables[index]) : "?";

		Finding(vs, b->block, id, "row changed",
				"Row " INT64_FORMAT " differs from what block " INT64_FORMAT " sealed: sealed fingerprint %s (a row of table %s%s%s), now %s (%s).",
				id, b->block, Hex(mark + 10, FINGERPRINT_SIZE), sealed_table,
				SealedClock(b, i, &t) ? " recorded at " : "",
				SealedClock(b, i, &t) ? UtcText(t) : "",
				Hex(leaf, FINGERPRINT_SIZE), RowText(vs, row));
	}
	return false;
}


/* Binary search of a block's sealed ids. */
static int64
SealedIndex(const LedgerBlock *b, const int64 *ids, int64 id)
{
	int64		lo = 0;
	int64		hi = b->row_count - 1;

	while (lo <= hi)
	{
		int64		mid = lo + (hi - lo) / 2;

		if (ids[mid] == id)
			return mid;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}


/* Whether sealed row i of a block is one of those asked about. */
static bool
InScope(VerifyState *vs, const LedgerBlock *b, int64 i, const bool *tables)
{
	const uint8 *mark = (const uint8 *) b->marks.data + i * MARK_SIZE;
	uint16		index = GetU16(mark);

	if (!OidIsValid(vs->scope_tbl))
		return true;
	if (index >= b->ntables || !tables[index])
		return false;
	return vs->scope_key == NULL || GetU32(mark + 2) == vs->scope_tag;
}

/*
 * VerifyRows
 *		The rows of one block against what it sealed: each present row
 *		against its mark, each sealed row that is absent (by retention or
 *		not), each row in its range that it did not seal; and, for the
 *		whole history, the rows against its rows_hash.
 */
static void
VerifyRows(VerifyState *vs, const LedgerBlock *b, bool complete,
		   HistoryScan *scan, HistoryRow *row, bool *have_row)
{
	LedgerCall *call = vs->call;
	bool		whole = !OidIsValid(vs->scope_tbl);
	int64	   *ids;
	bool	   *tables = NULL;
	HTAB	   *fps = NULL;
	MissingRun	run = {-1, -1, 0};
	int64		i = 0;
	int64		problems_before = vs->problems;
	int64		retained_before = vs->retained;
	bool		all_present = true;
	uint8		tagbyte = TAG_ROWS;
	int			t;

	if (!DecodeIds(b, &ids))
	{
		/* no sealer writes such ids, whatever the block's hash says */
		if (complete)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "block altered",
					"The row ids of block " INT64_FORMAT " do not fit its range (ids " INT64_FORMAT " to " INT64_FORMAT ") and its " INT64_FORMAT " marks: its rows cannot be checked.",
					b->block, b->first_id, b->last_id, b->row_count);
		}
		while (*have_row && RowId(row) <= b->last_id)
			*have_row = NextRow(scan, row);
		return;
	}
	if (whole)
	{
		ShaInit(call->stream_ctx);
		ShaUpdate(call->stream_ctx, &tagbyte, 1);
	}
	else
	{
		/* which of the block's tables are the one asked about */
		tables = palloc0(sizeof(bool) * (b->ntables + 1));
		for (t = 0; t < b->ntables; t++)
			tables[t] = ScopeHasNumber(vs, b->tables[t].number);
	}

	for (;;)
	{
		int64		rid = *have_row ? RowId(row) : PG_INT64_MAX;

		/* the next sealed row in scope */
		while (i < b->row_count && !InScope(vs, b, i, tables))
			i++;
		if (rid > b->last_id && i >= b->row_count)
			break;

		if (i < b->row_count && (rid > b->last_id || ids[i] < rid))
		{
			HistoryRow	other;

			/* sealed, absent: a payout's row may be another's by its tag */
			if (vs->scope_key != NULL && LookupRow(ids[i], &other))
			{
				uint8		leaf[PG_SHA256_DIGEST_LENGTH];
				int32		number = RowNumber(vs, b, i,
											   DatumGetObjectId(other.values[COL_TBL]));

				RowLeaf(call, &other, number, leaf);
				/* intact and not this payout's: another's key has its tag */
				if (number != MarkNumber(b, i) ||
					memcmp(b->marks.data + i * MARK_SIZE + 10, leaf, FINGERPRINT_SIZE) != 0)
				{
					vs->rows_checked++;
					(void) CompareRow(vs, b, ids, i, number, &other, leaf, &fps);
				}
				i++;
				continue;
			}
			all_present = false;
			NoteMissing(vs, b, ids, i, &run);
			i++;
			continue;
		}

		if (i < b->row_count && ids[i] == rid)
		{
			uint8		leaf[PG_SHA256_DIGEST_LENGTH];
			int32		number = RowNumber(vs, b, i,
										   DatumGetObjectId(row->values[COL_TBL]));
			uint64		idbe = pg_hton64((uint64) rid);

			FlushMissing(vs, b, ids, &run);
			RowLeaf(call, row, number, leaf);
			if (whole)
			{
				ShaUpdate(call->stream_ctx, &idbe, 8);
				ShaUpdate(call->stream_ctx, leaf, PG_SHA256_DIGEST_LENGTH);
			}
			vs->rows_checked++;
			(void) CompareRow(vs, b, ids, i, number, row, leaf, &fps);
			i++;
			*have_row = NextRow(scan, row);
			continue;
		}

		/* a row in the block's range that it did not seal (in scope) */
		FlushMissing(vs, b, ids, &run);
		all_present = false;
		{
			int64		k = SealedIndex(b, ids, rid);

			if (k >= 0 && !whole)
			{
				/* sealed as another table's or payout's row: changed */
				uint8		leaf[PG_SHA256_DIGEST_LENGTH];
				int32		number = RowNumber(vs, b, k,
											   DatumGetObjectId(row->values[COL_TBL]));

				RowLeaf(call, row, number, leaf);
				vs->rows_checked++;
				(void) CompareRow(vs, b, ids, k, number, row, leaf, &fps);
			}
			else if (RowFindingTold(vs))
				Finding(vs, b->block, rid, "row added",
						"Row " INT64_FORMAT " lies in the range of block " INT64_FORMAT " (ids " INT64_FORMAT " to " INT64_FORMAT "), which did not seal it%s: %s.",
						rid, b->block, b->first_id, b->last_id,
						k >= 0 ? " twice" : "", RowText(vs, row));
		}
		*have_row = NextRow(scan, row);
	}
	FlushMissing(vs, b, ids, &run);

	if (whole && all_present && vs->problems == problems_before &&
		vs->retained == retained_before)
	{
		uint8		rows_hash[PG_SHA256_DIGEST_LENGTH];

		ShaFinal(call->stream_ctx, rows_hash);
		if (memcmp(rows_hash, b->rows_hash, PG_SHA256_DIGEST_LENGTH) != 0)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "block altered",
					"The rows of block " INT64_FORMAT " hash to %s, not to the sealed %s, although each matches its fingerprint.",
					b->block, Hex(rows_hash, PG_SHA256_DIGEST_LENGTH),
					Hex(b->rows_hash, PG_SHA256_DIGEST_LENGTH));
		}
	}
}

/*
 * NoteUnmapped
 *		Remember a table number of a block that payout.ledger_tables has no
 *		row for, with the newest name it was sealed under.
 */
static void
NoteUnmapped(VerifyState *vs, const LedgerBlock *b, const LedgerTable *lt)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(vs->call->cxt);
	UnmappedNumber *u = NULL;
	int			i;

	for (i = 0; i < vs->nunmapped && u == NULL; i++)
		if (vs->unmapped[i].number == lt->number)
			u = &vs->unmapped[i];
	if (u == NULL)
	{
		if (vs->nunmapped == vs->maxunmapped)
		{
			vs->maxunmapped = vs->maxunmapped ? vs->maxunmapped * 2 : 4;
			vs->unmapped = vs->unmapped ?
				repalloc(vs->unmapped, sizeof(UnmappedNumber) * vs->maxunmapped) :
				palloc(sizeof(UnmappedNumber) * vs->maxunmapped);
		}
		u = &vs->unmapped[vs->nunmapped++];
		memset(u, 0, sizeof(*u));
		u->number = lt->number;
	}
	u->block = b->block;
	if (lt->name != NULL)
	{
		u->schema = pstrdup(lt->schema);
		u->name = pstrdup(lt->name);
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * NoteTables
 *		Remember the newest name each table number of a block was sealed
 *		under, to tell at the end which tables are called otherwise now.
 */
static void
NoteTables(VerifyState *vs, const LedgerBlock *b)
{
	LedgerCall *call = vs->call;
	int			i;

	for (i = 0; i < b->ntables; i++)
	{
		const LedgerTable *lt = &b->tables[i];
		TableRow   *t = FindTableRow(call, lt->number);
		MemoryContext oldcxt;

		if (t == NULL)
		{
			NoteUnmapped(vs, b, lt);
			continue;
		}
		t->sealed_block = b->block;
		if (lt->name == NULL ||
			(SameName(t->sealed_schema, lt->schema) && SameName(t->sealed_name, lt->name)))
			continue;
		oldcxt = MemoryContextSwitchTo(call->cxt);
		t->sealed_schema = pstrdup(lt->schema);
		t->sealed_name = pstrdup(lt->name);
		MemoryContextSwitchTo(oldcxt);
	}
}

/*
 * VerifyBlock
 *		A block's own hash, its link to the previous block, the digests of
 *		it, then its rows.
 */
static void
VerifyBlock(VerifyState *vs, LedgerBlock *b, bool complete, bool has_prev,
			const LedgerBlock *prev, HistoryScan *scan, HistoryRow *row,
			bool *have_row)
{
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	bool		hash_ok = false;
	int			k;

	vs->blocks++;
	vs->block_findings = 0;
	vs->block_more = 0;

	if (!complete || b->format != LEDGER_FORMAT)
	{
		vs->problems++;
		Finding(vs, b->block, PG_INT64_MIN, "block altered",
				b->format != LEDGER_FORMAT ?
				"Block " INT64_FORMAT " is of format %d, which this version does not write." :
				"Block " INT64_FORMAT " has an empty column or a hash that is not 32 bytes long.",
				b->block, (int) b->format);
	}
	else
	{
		BlockHash(vs->call, b, hash);
		hash_ok = (memcmp(hash, b->hash, PG_SHA256_DIGEST_LENGTH) == 0);
		if (!hash_ok)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "block altered",
					"Block " INT64_FORMAT " hashes to %s, not to its stored hash %s: a column of it was changed.",
					b->block, Hex(hash, PG_SHA256_DIGEST_LENGTH),
					Hex(b->hash, PG_SHA256_DIGEST_LENGTH));
		}
	}

	if (!has_prev)
	{
		static const uint8 zero[PG_SHA256_DIGEST_LENGTH] = {0};

		if (b->block != 1 || b->first_id != 1 ||
			memcmp(b->prev_hash, zero, PG_SHA256_DIGEST_LENGTH) != 0)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "chain broken",
					"The chain begins with block " INT64_FORMAT " (ids from " INT64_FORMAT "), not with block 1 (ids from 1): the blocks before it are gone.",
					b->block, b->first_id);
		}
	}
	else
	{
		if (b->block != prev->block + 1)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "chain broken",
					"Block " INT64_FORMAT " follows block " INT64_FORMAT ": the blocks between them are gone.",
					b->block, prev->block);
		}
		else if (memcmp(b->prev_hash, prev->hash, PG_SHA256_DIGEST_LENGTH) != 0)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "chain broken",
					"Block " INT64_FORMAT " names %s as the hash of block " INT64_FORMAT ", which is %s.",
					b->block, Hex(b->prev_hash, PG_SHA256_DIGEST_LENGTH),
					prev->block, Hex(prev->hash, PG_SHA256_DIGEST_LENGTH));
		}
		if (b->first_id != prev->last_id + 1)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "chain broken",
					"Block " INT64_FORMAT " seals ids from " INT64_FORMAT ", block " INT64_FORMAT " up to " INT64_FORMAT ".",
					b->block, b->first_id, prev->block, prev->last_id);
		}
		if (b->sealed_at < prev->sealed_at)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "chain broken",
					"Block " INT64_FORMAT " was sealed at %s, before block " INT64_FORMAT " (%s): the times of a chain only go forward.",
					b->block, UtcText(b->sealed_at), prev->block,
					UtcText(prev->sealed_at));
		}
	}

	for (k = 0; k < vs->ndigests; k++)
	{
		LedgerDigest *d = &vs->digests[k];

		if (d->block != b->block)
			continue;
		d->matched = true;
		if (memcmp(d->hash, b->hash, PG_SHA256_DIGEST_LENGTH) != 0 ||
			(complete && !hash_ok))
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "digest mismatch",
					"The digest of block " INT64_FORMAT " is %s; the ledger's block " INT64_FORMAT " %s %s.",
					b->block, Hex(d->hash, PG_SHA256_DIGEST_LENGTH), b->block,
					hash_ok ? "hashes to" : "is stored as",
					Hex(b->hash, PG_SHA256_DIGEST_LENGTH));
		}
		else if (d->has_sealed_at && d->sealed_at != b->sealed_at)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "digest mismatch",
					"The digest of block " INT64_FORMAT " says it was sealed at %s; the ledger's block " INT64_FORMAT " was sealed at %s.",
					b->block, UtcText(d->sealed_at), b->block, UtcText(b->sealed_at));
		}
		else if (d->has_taken_at && d->taken_at < b->sealed_at)
		{
			vs->problems++;
			Finding(vs, b->block, PG_INT64_MIN, "digest mismatch",
					"Block " INT64_FORMAT " was sealed at %s, after its digest was taken at %s: its time was set ahead.",
					b->block, UtcText(b->sealed_at), UtcText(d->taken_at));
		}
	}

	/* rows before this block's range, in no block */
	while (*have_row && RowId(row) < b->first_id)
	{
		if (RowFindingTold(vs))
			Finding(vs, has_prev ? b->block : -1, RowId(row), "row added",
					"Row " INT64_FORMAT " lies before block " INT64_FORMAT " and after %s: no block sealed it: %s.",
					RowId(row), b->block,
					has_prev ? psprintf("block " INT64_FORMAT, prev->block) : "nothing",
					RowText(vs, row));
		*have_row = NextRow(scan, row);
	}

	VerifyRows(vs, b, complete, scan, row, have_row);
	/* the names of an altered block are no evidence */
	if (hash_ok)
		NoteTables(vs, b);

	if (vs->block_more > 0)
		Finding(vs, b->block, PG_INT64_MIN, "more findings",
				INT64_FORMAT " more rows of block " INT64_FORMAT " differ from what it sealed.",
				vs->block_more, b->block);
}

/*
 * FlushRetained
 *		Tell how many sealed rows are gone as the retention allows, and
 *		from which blocks: not a difference, but what an auditor checks
 *		against the policy.
 */
static void
FlushRetained(VerifyState *vs)
{
	if (vs->retained == 0)
		return;
	Finding(vs, vs->retained_first_block, PG_INT64_MIN, "rows retained",
			INT64_FORMAT " sealed %s of %s %s gone, each recorded before %s: the retention given, counted back from %s, allows it.",
			vs->retained, vs->retained == 1 ? "row" : "rows",
			vs->retained_first_block == vs->retained_last_block ?
			psprintf("block " INT64_FORMAT, vs->retained_first_block) :
			psprintf("blocks " INT64_FORMAT " to " INT64_FORMAT,
					 vs->retained_first_block, vs->retained_last_block),
			vs->retained == 1 ? "is" : "are",
			UtcText(vs->cutoff), UtcText(vs->cutoff_from));
}

/* How a table number's rows were last sealed, for a finding. */
static char *
SealedAs(int64 block, const char *schema, const char *name)
{
	return psprintf("whose rows were last sealed in block " INT64_FORMAT " %s",
					block, name ?
					psprintf("under the name %s", quote_qualified_identifier(schema, name)) :
					"after it had been dropped");
}

/*
 * TellRenamed
 *		Each table number, of those asked about, that payout.ledger_tables,
 *		which no hash covers, maps to a relation not called as its rows
 *		were last sealed, to no relation, or to a relation another number
 *		also maps to: not a difference (tables are renamed and dropped, and
 *		a restore may give a dropped table's old OID to another), but never
 *		silent, for the auditor to check against the changes to tables they
 *		know of.  A number that blocks use and the map lacks is a
 *		difference: which table its rows belong to was removed.
 */
static void
TellRenamed(VerifyState *vs)
{
	LedgerCall *call = vs->call;
	int			i;

	for (i = 0; i < call->ntables; i++)
	{
		TableRow   *t = &call->tables[i];
		RelEntry   *rel = FindRel(call, t->relid, true);

		if (t->sealed_block == 0 || !ScopeHasNumber(vs, t->number))
			continue;
		LookUpName(call, rel);
		if (rel->name == NULL)
			Finding(vs, t->sealed_block, PG_INT64_MIN, "table dropped",
					"Table number %d, %s, names no table now: payout.ledger_tables maps it to OID %u, which no relation has.",
					t->number,
					SealedAs(t->sealed_block, t->sealed_schema, t->sealed_name),
					t->relid);
		else if (!SameName(rel->schema, t->sealed_schema) ||
				 !SameName(rel->name, t->sealed_name))
			Finding(vs, t->sealed_block, PG_INT64_MIN, "table renamed",
					"Table number %d, %s, is %s now: payout.ledger_tables maps it there.",
					t->number,
					SealedAs(t->sealed_block, t->sealed_schema, t->sealed_name),
					quote_qualified_identifier(rel->schema, rel->name));
		else if (rel->nnumbers > 1)
		{
			StringInfoData others;
			int			j;

			initStringInfo(&others);
			for (j = 0; j < rel->nnumbers; j++)
				if (rel->numbers[j] != t->number)
					appendStringInfo(&others, "%s%d", others.len > 0 ? ", " : "",
									 rel->numbers[j]);
			Finding(vs, t->sealed_block, PG_INT64_MIN, "table renamed",
					"Table number %d, %s, is %s now, as table number %s is: payout.ledger_tables maps them there together.",
					t->number,
					SealedAs(t->sealed_block, t->sealed_schema, t->sealed_name),
					quote_qualified_identifier(rel->schema, rel->name),
					others.data);
		}
	}

	for (i = 0; i < vs->nunmapped; i++)
	{
		UnmappedNumber *u = &vs->unmapped[i];

		if (!ScopeHasNumber(vs, u->number))
			continue;
		vs->problems++;
		Finding(vs, u->block, PG_INT64_MIN, "table missing",
				"Table number %d, %s, has no row in payout.ledger_tables: which table its rows belong to was removed.",
				u->number, SealedAs(u->block, u->schema, u->name));
	}
}

/*
 * payout.verify(digests jsonb, tbl regclass, key text, retention interval)
 * returns table (block bigint, id bigint, finding text, detail text)
 *
 * Verifies the sealed history, the whole of it or one table's or one
 * payout's rows, from the rows and the chain alone and, given digests,
 * against them; sealed rows older than the retention given may be gone.
 * One line for each finding, the first of each block first, then one line
 * with the verdict: intact or tampered.
 */
PG_FUNCTION_INFO_V1(payout_verify);
Datum
payout_verify(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	VerifyState vs;
	LedgerCall	call;
	HistoryScan scan;
	HistoryRow	row;
	bool		have_row;
	Portal		blocks;
	LedgerBlock prev;
	bool		has_prev = false;
	int64		unsealed = 0;
	int64		unsealed_first = 0;
	int64		unsealed_last = 0;
	Interval   *retention = PG_ARGISNULL(3) ? NULL : PG_GETARG_INTERVAL_P(3);
	int			nestlevel;
	int			k;
	StringInfoData what;

	if (PG_ARGISNULL(1) && !PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a payout's key needs its table"),
				 errhint("Call payout.verify(tbl => 'payouts', key => '42').")));
	if (retention != NULL)
	{
		Interval	zero;

		memset(&zero, 0, sizeof(zero));
		if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
											  IntervalPGetDatum(retention),
											  IntervalPGetDatum(&zero))) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("retention must be a positive interval"),
					 errhint("Give how long history is kept by the policy you verify against, such as '25 months', or NULL if it is kept for ever.")));
	}

	InitMaterializedSRF(fcinfo, 0);
	memset(&vs, 0, sizeof(vs));
	vs.out = rsinfo->setResult;
	vs.outdesc = rsinfo->setDesc;
	vs.retained_first_block = -1;

	nestlevel = SafeSearchPath();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	StartCall(&call);
	vs.call = &call;
	LoadTables(&call, false);
	if (!PG_ARGISNULL(1))
	{
		vs.scope_tbl = PG_GETARG_OID(1);
		vs.scope_rel = FindRel(&call, vs.scope_tbl, true);
		ResolveScope(&vs);
	}
	if (!PG_ARGISNULL(2))
	{
		vs.scope_key = PG_GETARG_TEXT_PP(2);
		vs.scope_tag = KeyTag(&call, PointerGetDatum(vs.scope_key), false);
	}
	LoadDigests(&vs, PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0));
	ComputeCutoff(&vs, retention);

	if (OidIsValid(vs.scope_tbl))
	{
		Datum	   *relids = palloc(sizeof(Datum) * vs.nscope_relids);
		Datum		tbls;

		for (k = 0; k < vs.nscope_relids; k++)
			relids[k] = ObjectIdGetDatum(vs.scope_relids[k]);
		tbls = PointerGetDatum(construct_array(relids, vs.nscope_relids, REGCLASSOID,
											   sizeof(Oid), true, TYPALIGN_INT));
		if (vs.scope_key != NULL)
			OpenHistory(&scan, "WHERE h.tbl OPERATOR(pg_catalog.=) ANY ($1)"
						" AND h.key OPERATOR(pg_catalog.=) $2", 2,
						(Oid[]) {REGCLASSARRAYOID, TEXTOID},
						(Datum[]) {tbls, PointerGetDatum(vs.scope_key)});
		else
			OpenHistory(&scan, "WHERE h.tbl OPERATOR(pg_catalog.=) ANY ($1)", 1,
						(Oid[]) {REGCLASSARRAYOID}, (Datum[]) {tbls});
	}
	else
		OpenHistory(&scan, "", 0, NULL, NULL);
	have_row = NextRow(&scan, &row);

	blocks = SPI_cursor_open_with_args(NULL, LEDGER_SELECT "ORDER BY block",
									   0, NULL, NULL, NULL, true, 0);
	for (;;)
	{
		MemoryContext blockcxt;
		MemoryContext oldcxt;
		SPITupleTable *tt;
		LedgerBlock b;
		bool		complete;

		SPI_cursor_fetch(blocks, true, 1);
		if (SPI_processed == 0)
			break;
		tt = SPI_tuptable;
		blockcxt = AllocSetContextCreate(call.cxt, "payout ledger block",
										 ALLOCSET_DEFAULT_SIZES);
		oldcxt = MemoryContextSwitchTo(blockcxt);
		complete = BlockFromTuple(tt->vals[0], tt->tupdesc, &b);
		SPI_freetuptable(tt);
		VerifyBlock(&vs, &b, complete, has_prev, &prev, &scan, &row, &have_row);
		MemoryContextSwitchTo(oldcxt);
		prev.block = b.block;
		prev.last_id = b.last_id;
		prev.sealed_at = b.sealed_at;
		memcpy(prev.hash, b.hash, PG_SHA256_DIGEST_LENGTH);
		has_prev = true;
		MemoryContextDelete(blockcxt);
	}
	SPI_cursor_close(blocks);

	/* what comes after the last block is not sealed yet */
	while (have_row)
	{
		int64		id = RowId(&row);

		if (unsealed == 0)
			unsealed_first = id;
		unsealed_last = id;
		unsealed++;
		have_row = NextRow(&scan, &row);
	}
	CloseHistory(&scan);
	FlushRetained(&vs);
	TellRenamed(&vs);
	if (unsealed == 1)
		Finding(&vs, has_prev ? prev.block : -1, unsealed_first, "rows unsealed",
				"Row " INT64_FORMAT " is not sealed yet: it comes after %s; payout.seal() seals it.",
				unsealed_first,
				has_prev ? psprintf("block " INT64_FORMAT, prev.block) : "every block");
	else if (unsealed > 1)
		Finding(&vs, has_prev ? prev.block : -1, unsealed_first, "rows unsealed",
				INT64_FORMAT " rows, ids " INT64_FORMAT " to " INT64_FORMAT ", are not sealed yet: they come after %s; payout.seal() seals them.",
				unsealed, unsealed_first, unsealed_last,
				has_prev ? psprintf("block " INT64_FORMAT, prev.block) : "every block");

	for (k = 0; k < vs.ndigests; k++)
	{
		if (vs.digests[k].matched)
			continue;
		vs.problems++;
		Finding(&vs, vs.digests[k].block, PG_INT64_MIN, "digest mismatch",
				"The digest of block " INT64_FORMAT " names a block that payout.ledger does not have (%s): blocks were removed.",
				vs.digests[k].block,
				has_prev ? psprintf("its last block is " INT64_FORMAT, prev.block) : "it is empty");
	}

	initStringInfo(&what);
	if (has_prev)
		appendStringInfo(&what, "Blocks 1 to " INT64_FORMAT ", " INT64_FORMAT " sealed %s%s checked",
						 prev.block, vs.rows_checked,
						 vs.rows_checked == 1 ? "row" : "rows",
						 vs.scope_key ? " of the payout" : OidIsValid(vs.scope_tbl) ? " of the table" : "");
	else
		appendStringInfoString(&what, "Nothing is sealed yet");
	if (vs.ndigests > 0)
		appendStringInfo(&what, ", against %d %s (the newest of block " INT64_FORMAT ")",
						 vs.ndigests, vs.ndigests == 1 ? "digest" : "digests",
						 vs.digests[vs.newest_digest].block);
	if (vs.problems == 0)
		appendStringInfoString(&what, ": no tampering found.");
	else
		appendStringInfo(&what, ": " INT64_FORMAT " %s.", vs.problems,
						 vs.problems == 1 ? "difference" : "differences");
	Finding(&vs, has_prev ? prev.block : -1, has_prev ? prev.last_id : PG_INT64_MIN,
			vs.problems == 0 ? "intact" : "tampered", "%s", what.data);

	EndCall(&call);
	SPI_finish();
	AtEOXact_GUC(false, nestlevel);
	return (Datum) 0;
}
