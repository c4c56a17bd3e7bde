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
 * bytes (the table's index in the block's dictionary, a CRC-32C of its
 * key, its clock_time in seconds from the block's first, and the first 8
 * bytes of its leaf), which lets verification name the row that differs,
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
 * Names.  tbl is a regclass, whose OID a dump and restore changes, so a
 * leaf holds the table's schema and name when it was sealed.  A block's
 * dictionary keeps each table's OID and name; the sealer records in the
 * next block every rename (or drop) of a table the ledger knows, so that
 * verification finds a table by its OID in the database that sealed it,
 * and by its name, followed through the recorded renames, in a restored
 * one (an *incarnation* is the system identifier, database and extension
 * OID that sealed a block).  After a restore the sealer finds each table
 * it knows again by a history row sealed under it, whose tbl holds the
 * table's new OID, so that a rename made meanwhile is recorded too.
 *
 * src/ledger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "port/pg_crc32c.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "compat.h"
#include "ledger.h"
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

#define LEDGER_SELECT \
	"SELECT block, format, prev_hash, first_id, last_id, row_count," \
	" min_clock_time, max_clock_time, sealed_at, retention," \
	" system_identifier, database_oid, extension_oid," \
	" table_oids, table_schemas, table_names," \
	" renamed_oids, renamed_from_schemas, renamed_from_names," \
	" renamed_to_schemas, renamed_to_names," \
	" rows_hash, row_ids, row_marks, hash FROM payout.ledger "
#define LEDGER_NCOLS 25

char	   *payout_ledger_retention = NULL;

/* Who sealed a block: a database as one cluster's copy of it. */
typedef struct LedgerIncarnation
{
	uint64		system_identifier;
	Oid			database;
	Oid			extension;
} LedgerIncarnation;

/*
 * A table as the ledger names it: by schema and name, or, for an OID that
 * names no relation (a dropped table), by that number.
 */
typedef struct LedgerIdent
{
	bool		dangling;
	Oid			oid;			/* in the incarnation that recorded it */
	char	   *schema;			/* NULL when dangling */
	char	   *name;			/* the OID's digits when dangling */
	int64		row_id;			/* while sealing: a row of it; not hashed */
} LedgerIdent;

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
	bool		has_retention;
	Interval	retention;
	LedgerIncarnation inc;
	int			ntables;
	int			maxtables;
	LedgerIdent *tables;
	int			nrenames;
	int			maxrenames;
	LedgerIdent *renamed_from;	/* oid: the table's */
	LedgerIdent *renamed_to;
	uint8		rows_hash[PG_SHA256_DIGEST_LENGTH];
	StringInfoData ids;			/* varint deltas */
	StringInfoData marks;		/* MARK_SIZE bytes a row */
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	/* while sealing: each row's clock_time, DT_NOBEGIN for NULL */
	TimestampTz *clocks;
} LedgerBlock;

/* An enum type's labels by this database's OIDs. */
typedef struct LabelMap
{
	int			n;
	Oid			oids[PAYOUT_NUM_RESOLUTIONS];
	const char *labels[PAYOUT_NUM_RESOLUTIONS];
} LabelMap;

/* What one call of seal() or verify() keeps. */
typedef struct LedgerCall
{
	MemoryContext cxt;			/* lives as long as the call */
	pg_cryptohash_ctx *leaf_ctx;
	pg_cryptohash_ctx *stream_ctx;
	StringInfoData canon;
	LabelMap	statuses;
	LabelMap	resolutions;
	HTAB	   *idents;			/* relation OID -> LedgerIdent now */
	LedgerIncarnation here;
	bool		utf8;			/* text is stored in UTF-8 already */
} LedgerCall;

typedef struct IdentEntry
{
	Oid			relid;			/* hash key */
	LedgerIdent ident;
} IdentEntry;

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

/* A rename the chain records, with the block and incarnation. */
typedef struct LedgerRename
{
	int64		block;
	LedgerIncarnation inc;
	LedgerIdent from;
	LedgerIdent to;
} LedgerRename;

/* Where a dictionary entry's table is now. */
typedef struct Tracker
{
	LedgerIncarnation inc;
	LedgerIdent ident;
} Tracker;

/* A digest given to verify(). */
typedef struct LedgerDigest
{
	int64		block;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	TimestampTz sealed_at;
	bool		matched;
} LedgerDigest;

/* What verify() is asked and what it has found so far. */
typedef struct VerifyState
{
	LedgerCall *call;
	Tuplestorestate *out;
	TupleDesc	outdesc;
	/* scope */
	Oid			scope_tbl;
	text	   *scope_key;
	uint32		scope_tag;
	/* digests and retention */
	int			ndigests;
	LedgerDigest *digests;
	int64		newest_digest_block;
	bool		has_cutoff;
	TimestampTz cutoff;
	/* renames recorded by the chain */
	int			nrenames;
	LedgerRename *renames;
	/* progress */
	int64		blocks;
	int64		rows_checked;
	int64		problems;
	int64		retained;
	int64		retained_first_block;
	int64		retained_last_block;
	int			block_findings;
	int64		block_more;
} VerifyState;

static void SealRange(LedgerCall *call, int64 from, int64 to, int64 max_rows,
					  LedgerBlock *prev, bool has_prev, Interval *retention,
					  int64 *nblocks, int64 *nrows, int64 *through);
static void StoreKnownTable(const LedgerIdent *ident);
static void Finding(VerifyState *vs, int64 block, int64 id, const char *finding,
					const char *fmt,...) pg_attribute_printf(5, 6);

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------
 */

/*
 * PayoutDefineLedgerSettings
 *		Called once per backend from _PG_init.
 */
void
PayoutDefineLedgerSettings(void)
{
	/*
	 * Only a superuser may say how long sealed history is kept: whoever sets
	 * it says which removed rows verification takes for retention.
	 */
	DefineCustomStringVariable("payout.ledger_retention",
							   "How long sealed payout history is kept; verification takes sealed rows older than that for removed by retention.",
							   "An interval such as '25 months'.  Empty (the default): sealed rows are kept for ever, and a removed one is reported as missing.",
							   &payout_ledger_retention,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}

/*
 * ParseRetention
 *		The retention in force, from payout.ledger_retention; false if none.
 */
static bool
ParseRetention(Interval *out)
{
	Interval   *parsed;
	Interval	zero;

	if (payout_ledger_retention == NULL || payout_ledger_retention[0] == '\0')
		return false;
	parsed = DatumGetIntervalP(DirectFunctionCall3(interval_in,
												   CStringGetDatum(payout_ledger_retention),
												   ObjectIdGetDatum(InvalidOid),
												   Int32GetDatum(-1)));
	memset(&zero, 0, sizeof(zero));
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp,
										  IntervalPGetDatum(parsed),
										  IntervalPGetDatum(&zero))) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payout.ledger_retention must be a positive interval"),
				 errdetail("It is \"%s\".", payout_ledger_retention),
				 errhint("Set it to how long history is kept, such as '25 months', or to '' to keep it for ever.")));
	*out = *parsed;
	return true;
}

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

/* A table: kind 1, schema and name; or kind 2 and the OID it was. */
static void
PutIdent(LedgerCall *call, StringInfo buf, const LedgerIdent *ident)
{
	if (ident->dangling)
	{
		PutU8(buf, 2);
		PutU32(buf, ident->oid);
		return;
	}
	PutU8(buf, 1);
	PutStr(call, buf, ident->schema, strlen(ident->schema));
	PutStr(call, buf, ident->name, strlen(ident->name));
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
 * Tables, labels and incarnations
 * ------------------------------------------------------------------------
 */

/*
 * IncEqual
 *		Whether two blocks were sealed by the same copy of the database.
 */
static bool
IncEqual(const LedgerIncarnation *a, const LedgerIncarnation *b)
{
	return a->system_identifier == b->system_identifier &&
		a->database == b->database && a->extension == b->extension;
}

/*
 * IdentEqual
 *		Whether two names name the same table: the same schema and name,
 *		or the same dropped OID.
 */
static bool
IdentEqual(const LedgerIdent *a, const LedgerIdent *b)
{
	if (a->dangling != b->dangling)
		return false;
	if (a->dangling)
		return a->oid == b->oid;
	return strcmp(a->schema, b->schema) == 0 && strcmp(a->name, b->name) == 0;
}

/* The table as a reader would name it: "schema.name" or its old OID. */
static char *
IdentText(const LedgerIdent *ident)
{
	if (ident->dangling)
		return psprintf("%u", ident->oid);
	return quote_qualified_identifier(ident->schema, ident->name);
}

/*
 * CurrentIdent
 *		What relation relid is called now, looked up once per call.
 */
static const LedgerIdent *
CurrentIdent(LedgerCall *call, Oid relid)
{
	IdentEntry *entry;
	bool		found;
	char	   *name;
	MemoryContext oldcxt;

	entry = hash_search(call->idents, &relid, HASH_ENTER, &found);
	if (found)
		return &entry->ident;
	oldcxt = MemoryContextSwitchTo(call->cxt);
	entry->ident.oid = relid;
	name = get_rel_name(relid);
	if (name == NULL)
	{
		entry->ident.dangling = true;
		entry->ident.schema = NULL;
		entry->ident.name = psprintf("%u", relid);
	}
	else
	{
		entry->ident.dangling = false;
		entry->ident.name = name;
		entry->ident.schema = get_namespace_name(get_rel_namespace(relid));
	}
	MemoryContextSwitchTo(oldcxt);
	return &entry->ident;
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
 *		What seal() and verify() share for one call: hash contexts, labels,
 *		the names of tables, and which copy of the database this is.
 */
static void
StartCall(LedgerCall *call)
{
	HASHCTL		ctl;
	int			encoding = GetDatabaseEncoding();

	call->cxt = CurrentMemoryContext;
	call->leaf_ctx = NewSha256();
	call->stream_ctx = NewSha256();
	initStringInfo(&call->canon);
	LoadLabels(&call->statuses, PAYOUT_ENUM_STATUS, PAYOUT_NUM_STATUSES);
	LoadLabels(&call->resolutions, PAYOUT_ENUM_RESOLUTION, PAYOUT_NUM_RESOLUTIONS);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(IdentEntry);
	ctl.hcxt = CurrentMemoryContext;
	call->idents = hash_create("payout ledger tables", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	call->here.system_identifier = GetSystemIdentifier();
	call->here.database = MyDatabaseId;
	call->here.extension = get_extension_oid("payout", false);
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

/* ------------------------------------------------------------------------
 * Rows: their leaves and marks
 * ------------------------------------------------------------------------
 */

/*
 * RowLeaf
 *		SHA-256 of the canonical bytes of a history row, all columns but
 *		the id, with the table named by ident.  Every value in a form no
 *		setting changes: labels for enums, microseconds since 2000 UTC for
 *		times, UTF-8 for text, the 64-bit transaction id.
 */
static void
RowLeaf(LedgerCall *call, const HistoryRow *row, const LedgerIdent *ident,
		uint8 *leaf)
{
	StringInfo	buf = &call->canon;
	int			col;

	resetStringInfo(buf);
	PutU8(buf, TAG_LEAF);
	PutIdent(call, buf, ident);
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
AddTable(LedgerBlock *b, const LedgerIdent *ident)
{
	if (b->ntables == b->maxtables)
	{
		b->maxtables = b->maxtables ? b->maxtables * 2 : 8;
		b->tables = b->tables ?
			repalloc(b->tables, sizeof(LedgerIdent) * b->maxtables) :
			palloc(sizeof(LedgerIdent) * b->maxtables);
	}
	b->tables[b->ntables] = *ident;
	return b->ntables++;
}

/*
 * AddRename
 *		Record in a block that a table the ledger knows was renamed (or
 *		dropped) since the block before.
 */
static void
AddRename(LedgerBlock *b, const LedgerIdent *from, const LedgerIdent *to)
{
	if (b->nrenames == b->maxrenames)
	{
		b->maxrenames = b->maxrenames ? b->maxrenames * 2 : 4;
		b->renamed_from = b->renamed_from ?
			repalloc(b->renamed_from, sizeof(LedgerIdent) * b->maxrenames) :
			palloc(sizeof(LedgerIdent) * b->maxrenames);
		b->renamed_to = b->renamed_to ?
			repalloc(b->renamed_to, sizeof(LedgerIdent) * b->maxrenames) :
			palloc(sizeof(LedgerIdent) * b->maxrenames);
	}
	b->renamed_from[b->nrenames] = *from;
	b->renamed_to[b->nrenames] = *to;
	b->nrenames++;
}

/*
 * BlockHash
 *		The hash of a block: its header, the previous hash, its rows_hash
 *		and the hash of its ids and marks, in canonical bytes.
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
	if (b->has_retention)
	{
		PutU8(&buf, 1);
		PutU32(&buf, (uint32) b->retention.month);
		PutU32(&buf, (uint32) b->retention.day);
		PutU64(&buf, (uint64) b->retention.time);
	}
	else
		PutU8(&buf, 0);
	PutU64(&buf, b->inc.system_identifier);
	PutU32(&buf, b->inc.database);
	PutU32(&buf, b->inc.extension);
	PutU32(&buf, (uint32) b->ntables);
	for (i = 0; i < b->ntables; i++)
	{
		PutU32(&buf, b->tables[i].oid);
		PutIdent(call, &buf, &b->tables[i]);
	}
	PutU32(&buf, (uint32) b->nrenames);
	for (i = 0; i < b->nrenames; i++)
	{
		PutU32(&buf, b->renamed_from[i].oid);
		PutIdent(call, &buf, &b->renamed_from[i]);
		PutIdent(call, &buf, &b->renamed_to[i]);
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

/* The arrays of OIDs, schemas and names of a list of tables. */
static void
IdentArrays(const LedgerIdent *idents, int n, Datum *oids, Datum *schemas,
			Datum *names)
{
	Datum	   *o = palloc(sizeof(Datum) * (n + 1));
	Datum	   *s = palloc(sizeof(Datum) * (n + 1));
	bool	   *snull = palloc(sizeof(bool) * (n + 1));
	Datum	   *nm = palloc(sizeof(Datum) * (n + 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		o[i] = ObjectIdGetDatum(idents[i].oid);
		snull[i] = idents[i].dangling;
		s[i] = idents[i].dangling ? (Datum) 0 : CStringGetTextDatum(idents[i].schema);
		nm[i] = CStringGetTextDatum(idents[i].name);
	}
	if (oids)
		*oids = PointerGetDatum(construct_md_array(o, NULL, 1, dims, lbs,
												   OIDOID, sizeof(Oid), true,
												   TYPALIGN_INT));
	*schemas = PointerGetDatum(construct_md_array(s, snull, 1, dims, lbs,
												  TEXTOID, -1, false,
												  TYPALIGN_INT));
	*names = PointerGetDatum(construct_md_array(nm, NULL, 1, dims, lbs,
												TEXTOID, -1, false,
												TYPALIGN_INT));
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
		TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID,
		INT8OID, OIDOID, OIDOID,
		OIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		OIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		BYTEAOID, BYTEAOID, BYTEAOID, BYTEAOID
	};
	Datum		values[LEDGER_NCOLS];
	char		nulls[LEDGER_NCOLS];
	int			ret;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(b->block);
	values[1] = Int16GetDatum(b->format);
	values[2] = ByteaDatum(b->prev_hash, PG_SHA256_DIGEST_LENGTH);
	values[3] = Int64GetDatum(b->first_id);
	values[4] = Int64GetDatum(b->last_id);
	values[5] = Int64GetDatum(b->row_count);
	values[6] = TimestampTzGetDatum(b->min_clock);
	values[7] = TimestampTzGetDatum(b->max_clock);
	if (!b->has_clock)
		nulls[6] = nulls[7] = 'n';
	values[8] = TimestampTzGetDatum(b->sealed_at);
	values[9] = IntervalPGetDatum(&b->retention);
	if (!b->has_retention)
		nulls[9] = 'n';
	values[10] = Int64GetDatum((int64) b->inc.system_identifier);
	values[11] = ObjectIdGetDatum(b->inc.database);
	values[12] = ObjectIdGetDatum(b->inc.extension);
	IdentArrays(b->tables, b->ntables, &values[13], &values[14], &values[15]);
	IdentArrays(b->renamed_from, b->nrenames, &values[16], &values[17], &values[18]);
	IdentArrays(b->renamed_to, b->nrenames, NULL, &values[19], &values[20]);
	values[21] = ByteaDatum(b->rows_hash, PG_SHA256_DIGEST_LENGTH);
	values[22] = ByteaDatum(b->ids.data, b->ids.len);
	values[23] = ByteaDatum(b->marks.data, b->marks.len);
	values[24] = ByteaDatum(b->hash, PG_SHA256_DIGEST_LENGTH);

	ret = SPI_execute_with_args("INSERT INTO payout.ledger (block, format, prev_hash,"
								" first_id, last_id, row_count, min_clock_time,"
								" max_clock_time, sealed_at, retention,"
								" system_identifier, database_oid, extension_oid,"
								" table_oids, table_schemas, table_names,"
								" renamed_oids, renamed_from_schemas, renamed_from_names,"
								" renamed_to_schemas, renamed_to_names,"
								" rows_hash, row_ids, row_marks, hash)"
								" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
								" $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,"
								" $21, $22, $23, $24, $25)",
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

/* The tables of three parallel arrays; false if they do not fit. */
static bool
IdentsFromArrays(Datum oids, bool oidsnull, Datum schemas, bool schemasnull,
				 Datum names, bool namesnull, LedgerIdent **out, int *n)
{
	Datum	   *o,
			   *s,
			   *nm;
	bool	   *onull,
			   *snull,
			   *nmnull;
	int			no,
				ns,
				nn;
	int			i;

	*out = NULL;
	*n = 0;
	if (oidsnull || schemasnull || namesnull)
		return false;
	deconstruct_array(DatumGetArrayTypeP(oids), OIDOID, sizeof(Oid), true,
					  TYPALIGN_INT, &o, &onull, &no);
	deconstruct_array(DatumGetArrayTypeP(schemas), TEXTOID, -1, false,
					  TYPALIGN_INT, &s, &snull, &ns);
	deconstruct_array(DatumGetArrayTypeP(names), TEXTOID, -1, false,
					  TYPALIGN_INT, &nm, &nmnull, &nn);
	if (no != ns || no != nn)
		return false;
	*out = palloc0(sizeof(LedgerIdent) * (no + 1));
	for (i = 0; i < no; i++)
	{
		if (onull[i] || nmnull[i])
			return false;
		(*out)[i].oid = DatumGetObjectId(o[i]);
		(*out)[i].dangling = snull[i];
		(*out)[i].schema = snull[i] ? NULL : TextDatumGetCString(s[i]);
		(*out)[i].name = TextDatumGetCString(nm[i]);
	}
	*n = no;
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
	LedgerIdent *to;
	int			nto;
	int			i;

	heap_deform_tuple(tuple, desc, v, n);
	InitBlock(b);
	for (i = 0; i < LEDGER_NCOLS; i++)
		if (n[i] && i != 6 && i != 7 && i != 9)
			ok = false;
	b->block = n[0] ? 0 : DatumGetInt64(v[0]);
	b->format = n[1] ? 0 : DatumGetInt16(v[1]);
	ok &= HashFromBytea(v[2], n[2], b->prev_hash);
	b->first_id = n[3] ? 0 : DatumGetInt64(v[3]);
	b->last_id = n[4] ? 0 : DatumGetInt64(v[4]);
	b->row_count = n[5] ? 0 : DatumGetInt64(v[5]);
	b->has_clock = !n[6] && !n[7];
	b->min_clock = n[6] ? 0 : DatumGetTimestampTz(v[6]);
	b->max_clock = n[7] ? 0 : DatumGetTimestampTz(v[7]);
	b->sealed_at = n[8] ? 0 : DatumGetTimestampTz(v[8]);
	b->has_retention = !n[9];
	if (!n[9])
		b->retention = *DatumGetIntervalP(v[9]);
	b->inc.system_identifier = n[10] ? 0 : (uint64) DatumGetInt64(v[10]);
	b->inc.database = n[11] ? InvalidOid : DatumGetObjectId(v[11]);
	b->inc.extension = n[12] ? InvalidOid : DatumGetObjectId(v[12]);
	ok &= IdentsFromArrays(v[13], n[13], v[14], n[14], v[15], n[15],
						   &b->tables, &b->ntables);
	b->maxtables = b->ntables;
	ok &= IdentsFromArrays(v[16], n[16], v[17], n[17], v[18], n[18],
						   &b->renamed_from, &b->nrenames);
	ok &= IdentsFromArrays(v[16], n[16], v[19], n[19], v[20], n[20],
						   &to, &nto);
	b->renamed_to = to;
	if (nto != b->nrenames)
	{
		ok = false;
		b->nrenames = Min(nto, b->nrenames);
	}
	b->maxrenames = b->nrenames;
	ok &= HashFromBytea(v[21], n[21], b->rows_hash);
	if (!n[22])
	{
		bytea	   *ids = DatumGetByteaPP(v[22]);

		appendBinaryStringInfo(&b->ids, VARDATA_ANY(ids), VARSIZE_ANY_EXHDR(ids));
	}
	if (!n[23])
	{
		bytea	   *marks = DatumGetByteaPP(v[23]);

		appendBinaryStringInfo(&b->marks, VARDATA_ANY(marks), VARSIZE_ANY_EXHDR(marks));
	}
	ok &= HashFromBytea(v[24], n[24], b->hash);
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

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/* ------------------------------------------------------------------------
 * Sealing
 * ------------------------------------------------------------------------
 */

/*
 * ReadLatest
 *		Run a query of the ledger's own tables through a snapshot taken
 *		now, which sees what another sealer committed before this one got
 *		its lock and what this call wrote so far, whatever the isolation
 *		level.
 */
static int
ReadLatest(const char *sql, int nargs, Oid *types, Datum *values, long tcount)
{
	int			ret;

	CommandCounterIncrement();
	PushActiveSnapshot(GetLatestSnapshot());
	ret = SPI_execute_with_args(sql, nargs, types, values, NULL, true, tcount);
	PopActiveSnapshot();
	return ret;
}

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

	tup = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for sequence %u", seqid);
	cache = ((Form_pg_sequence) GETSTRUCT(tup))->seqcache;
	ReleaseSysCache(tup);
	if (cache != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payout history cannot be sealed while sequence \"%s.history_id_seq\" has a cache", PAYOUT_SCHEMA),
				 errdetail("Its cache is " INT64_FORMAT ": backends hold ids that no lock shows, so no range of ids is known to be complete.", cache),
				 errhint("ALTER SEQUENCE payout.history_id_seq CACHE 1;")));

	if (SPI_execute_with_args("SELECT pg_catalog.pg_sequence_last_value($1)",
							  1, (Oid[]) {REGCLASSOID},
							  (Datum[]) {ObjectIdGetDatum(seqid)},
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
		if (SPI_execute_with_args("INSERT INTO payout.ledger_pending"
								  " (horizon, recorded_at, postmaster_start, waits_for)"
								  " SELECT $1, $2, $3, $4"
								  " WHERE (SELECT pg_catalog.count(*) FROM payout.ledger_pending)"
								  " OPERATOR(pg_catalog.<) " CppAsString2(LEDGER_PENDING_MAX)
								  " ON CONFLICT (horizon) DO NOTHING",
								  4, (Oid[]) {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8ARRAYOID},
								  args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record a payout ledger horizon");
	}

	if (ReadLatest("SELECT horizon, postmaster_start, waits_for"
				   " FROM payout.ledger_pending ORDER BY horizon",
				   0, NULL, NULL, 0) != SPI_OK_SELECT)
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
 * LoadKnownTables
 *		The tables the sealer watches for renames, with the name each had
 *		when last sealed.  In a database restored since the last block, their
 *		OIDs are new: each is found by a history row sealed under it, which
 *		names the table by its new OID whatever it was renamed to meanwhile
 *		(so the next block records the rename), else by its name.
 */
static List *
LoadKnownTables(bool remap)
{
	List	   *known = NIL;
	List	   *kept = NIL;
	ListCell   *lc;
	uint64		i;

	if (ReadLatest("SELECT relation, schema_name, table_name, row_id FROM payout.ledger_names",
				   0, NULL, NULL, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.ledger_names");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		LedgerIdent *ident = palloc0(sizeof(LedgerIdent));
		bool		isnull;
		Datum		row_id;

		ident->oid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		ident->schema = SPI_getvalue(tup, desc, 2);
		ident->name = SPI_getvalue(tup, desc, 3);
		ident->dangling = (ident->schema == NULL);
		row_id = SPI_getbinval(tup, desc, 4, &isnull);
		ident->row_id = isnull ? 0 : DatumGetInt64(row_id);
		known = lappend(known, ident);
	}
	if (!remap)
		return known;

	foreach(lc, known)
	{
		LedgerIdent *ident = lfirst(lc);
		Oid			relid = InvalidOid;

		/* a dropped table has nothing to follow any more */
		if (ident->dangling)
			continue;
		if (ident->row_id != 0 &&
			ReadLatest("SELECT h.tbl FROM payout.history h WHERE h.id OPERATOR(pg_catalog.=) $1",
					   1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(ident->row_id)},
					   1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			bool		isnull;
			Datum		tbl = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											1, &isnull);

			if (!isnull && get_rel_name(DatumGetObjectId(tbl)) != NULL)
				relid = DatumGetObjectId(tbl);
		}
		if (!OidIsValid(relid))
		{
			Oid			nsp = get_namespace_oid(ident->schema, true);

			if (OidIsValid(nsp))
				relid = get_relname_relid(ident->name, nsp);
		}
		if (!OidIsValid(relid))
			continue;
		ident->oid = relid;
		kept = lappend(kept, ident);
	}
	if (SPI_execute("DELETE FROM payout.ledger_names", false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not update payout.ledger_names");
	foreach(lc, kept)
		StoreKnownTable(lfirst(lc));
	return kept;
}

/*
 * StoreKnownTable
 *		Remember a table in payout.ledger_names: its name as sealed, and a
 *		row sealed under it.
 */
static void
StoreKnownTable(const LedgerIdent *ident)
{
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = ObjectIdGetDatum(ident->oid);
	values[1] = ident->dangling ? (Datum) 0 : CStringGetTextDatum(ident->schema);
	if (ident->dangling)
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(ident->name);
	values[3] = Int64GetDatum(ident->row_id);
	if (ident->row_id == 0)
		nulls[3] = 'n';
	if (SPI_execute_with_args("INSERT INTO payout.ledger_names AS n VALUES ($1, $2, $3, $4)"
							  " ON CONFLICT (relation) DO UPDATE"
							  " SET schema_name = excluded.schema_name,"
							  " table_name = excluded.table_name,"
							  " row_id = COALESCE(excluded.row_id, n.row_id)",
							  4, (Oid[]) {OIDOID, TEXTOID, TEXTOID, INT8OID},
							  values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not update payout.ledger_names");
}

/*
 * payout.seal(max_rows bigint) returns (blocks, sealed_rows, through_id,
 * waiting)
 *
 * Seals, in blocks, the history rows that no transaction can add to any
 * more, up to max_rows of them (NULL: all).  Never waits for a writer:
 * what is still being written is sealed by a later call.  Runs as the
 * owner of payout.ledger; one call at a time (others wait for it).
 */
PG_FUNCTION_INFO_V1(payout_seal);
Datum
payout_seal(PG_FUNCTION_ARGS)
{
	int64		max_rows = PG_ARGISNULL(0) ? PG_INT64_MAX : PG_GETARG_INT64(0);
	Interval	retention;
	bool		has_retention;
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
	has_retention = ParseRetention(&retention);

	history_relid = PayoutRelid("history");
	ledger_relid = PayoutRelid("ledger");
	seqid = PayoutRelid("history_id_seq");

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

	/*
	 * The last id given out, then who may still hold ids up to it: every
	 * writer of history took its lock before its ids (see the file
	 * header), and holds it until it ends.
	 */
	last = SequenceLastValue(seqid);
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, history_relid);
	vxids = GetLockConflicts(&tag, ShareLock, &nvxids);

	if (ReadLatest(LEDGER_SELECT "ORDER BY block DESC LIMIT 1", 0, NULL, NULL, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.ledger");
	if (SPI_processed == 1)
	{
		(void) BlockFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &prev);
		has_prev = true;
		frontier = prev.last_id;
	}
	if (frontier > last)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("payout.ledger has sealed ids up to " INT64_FORMAT ", beyond the last id sequence \"%s.history_id_seq\" gave out (" INT64_FORMAT ")",
						frontier, PAYOUT_SCHEMA, last),
				 errdetail("Ids written here come from that sequence; rows with other ids were written elsewhere, such as by a logical replication publisher."),
				 errhint("Seal where the history is written; a subscriber verifies the blocks its publisher sealed.")));

	horizon = ClearedHorizon(frontier, last, vxids, nvxids);
	through = frontier;
	if (horizon > frontier)
		SealRange(&call, frontier, horizon, max_rows, &prev, has_prev,
				  has_retention ? &retention : NULL, &nblocks, &nrows, &through);

	/* Horizons the blocks reached are done; so are those of empty ranges. */
	if (SPI_execute_with_args("DELETE FROM payout.ledger_pending"
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
		   bool has_prev, int64 first_id, Interval *retention)
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
	b->has_retention = (retention != NULL);
	if (retention)
		b->retention = *retention;
	b->inc = call->here;
	ShaInit(call->stream_ctx);
	ShaUpdate(call->stream_ctx, &tagbyte, 1);
	return cxt;
}

/*
 * FinishBlock
 *		Give each mark its clock offset from the block's earliest
 *		clock_time, then hash and store a block that covers the ids up to
 *		last_id, remember its tables, and keep of it in prev what the next
 *		block needs.
 */
static void
FinishBlock(LedgerCall *call, LedgerBlock *b, MemoryContext cxt,
			int64 last_id, LedgerBlock *prev)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(cxt);
	int64		i;
	int			t;

	for (i = 0; i < b->row_count; i++)
	{
		uint32		offset = CLOCK_UNKNOWN;
		uint32		be;

		if (b->clocks[i] != DT_NOBEGIN)
			offset = (uint32) Min((b->clocks[i] - b->min_clock) / USECS_PER_SEC,
								  (int64) CLOCK_UNKNOWN - 1);
		be = pg_hton32(offset);
		memcpy(b->marks.data + i * MARK_SIZE + 6, &be, 4);
	}
	b->last_id = last_id;
	b->sealed_at = GetCurrentTimestamp();
	ShaFinal(call->stream_ctx, b->rows_hash);
	BlockHash(call, b, b->hash);
	InsertBlock(b);

	/* its tables, and a row of each, for the next rename and restore */
	for (t = 0; t < b->ntables; t++)
		StoreKnownTable(&b->tables[t]);
	MemoryContextSwitchTo(oldcxt);

	prev->block = b->block;
	prev->last_id = b->last_id;
	memcpy(prev->hash, b->hash, PG_SHA256_DIGEST_LENGTH);
	prev->inc = b->inc;
	MemoryContextDelete(cxt);
}

/*
 * SealRange
 *		Seal the rows with ids after from and up to to, in blocks of at
 *		most LEDGER_BLOCK_ROWS rows and max_rows in all, read through a
 *		snapshot taken now, after the horizon's transactions ended.  The
 *		first block also records the renames of the tables the ledger knows.
 */
static void
SealRange(LedgerCall *call, int64 from, int64 to, int64 max_rows,
		  LedgerBlock *prev, bool has_prev, Interval *retention,
		  int64 *nblocks, int64 *nrows, int64 *through)
{
	HistoryScan scan;
	HistoryRow	row;
	LedgerBlock block;
	MemoryContext blockcxt = NULL;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	List	   *known = NIL;
	bool		first = true;
	int64		previd = from;
	int			lasttable = -1;
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
		Oid			tbl = DatumGetObjectId(row.values[COL_TBL]);
		uint8		leaf[PG_SHA256_DIGEST_LENGTH];
		uint64		idbe;
		int			t;

		if (blockcxt == NULL)
		{
			blockcxt = StartBlock(call, &block, prev, has_prev,
								  previd + 1, retention);
			lasttable = -1;
		}
		if (first)
		{
			ListCell   *lc;

			known = LoadKnownTables(has_prev && !IncEqual(&prev->inc, &call->here));
			foreach(lc, known)
			{
				LedgerIdent *was = lfirst(lc);
				const LedgerIdent *now = CurrentIdent(call, was->oid);

				if (!IdentEqual(was, now))
				{
					oldcxt = MemoryContextSwitchTo(blockcxt);
					AddRename(&block, was, now);
					MemoryContextSwitchTo(oldcxt);
					*was = *now;
					StoreKnownTable(was);
				}
			}
			first = false;
		}

		/* the row's table in the block's dictionary */
		if (lasttable >= 0 && block.tables[lasttable].oid == tbl)
			t = lasttable;
		else
		{
			for (t = 0; t < block.ntables; t++)
				if (block.tables[t].oid == tbl)
					break;
			if (t == block.ntables)
			{
				oldcxt = MemoryContextSwitchTo(blockcxt);
				t = AddTable(&block, CurrentIdent(call, tbl));
				MemoryContextSwitchTo(oldcxt);
			}
			lasttable = t;
		}

		block.tables[t].row_id = id;
		oldcxt = MemoryContextSwitchTo(rowcxt);
		RowLeaf(call, &row, &block.tables[t], leaf);
		MemoryContextSwitchTo(blockcxt);
		if (row.nulls[COL_CLOCK_TIME])
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
		PutU16(&block.marks, (uint16) t);
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
			FinishBlock(call, &block, blockcxt, id, prev);
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

		FinishBlock(call, &block, blockcxt, last_id, prev);
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

/* What a row holds now, for the evidence of a finding. */
static char *
RowText(VerifyState *vs, const HistoryRow *row)
{
	LedgerCall *call = vs->call;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "table %s, key %s, %s -> %s",
					 IdentText(CurrentIdent(call, DatumGetObjectId(row->values[COL_TBL]))),
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
 * LoadDigests
 *		The digests given, a JSON array of objects with "block" and "hash"
 *		(what payout.digest() returns, as row_to_json writes it), or one
 *		such object.
 */
static void
LoadDigests(VerifyState *vs, Jsonb *digests)
{
	uint64		i;

	vs->newest_digest_block = -1;
	if (digests == NULL)
		return;
	if (SPI_execute_with_args("SELECT (d OPERATOR(pg_catalog.->>) 'block')::pg_catalog.int8,"
							  " pg_catalog.decode(d OPERATOR(pg_catalog.->>) 'hash', 'hex')"
							  " FROM pg_catalog.jsonb_array_elements("
							  "   CASE pg_catalog.jsonb_typeof($1) WHEN 'array' THEN $1"
							  "   ELSE pg_catalog.jsonb_build_array($1) END) AS d",
							  1, (Oid[]) {JSONBOID}, (Datum[]) {JsonbPGetDatum(digests)},
							  NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the digests");
	vs->ndigests = (int) SPI_processed;
	vs->digests = palloc0(sizeof(LedgerDigest) * (vs->ndigests + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		blocknull;
		bool		hashnull;
		Datum		block = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &blocknull);
		Datum		hash = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &hashnull);

		if (blocknull || !HashFromBytea(hash, hashnull, vs->digests[i].hash))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("digest %d has no block number or no SHA-256 hash", (int) i + 1),
					 errdetail("A digest is an object with \"block\" (a number) and \"hash\" (64 hexadecimal digits)."),
					 errhint("Pass the rows of payout.digest() as JSON: SELECT row_to_json(d) FROM payout.digest() d.")));
		vs->digests[i].block = DatumGetInt64(block);
		vs->newest_digest_block = Max(vs->newest_digest_block, vs->digests[i].block);
	}
}

/*
 * LoadRenames
 *		Every rename the chain records, in order: a table's rows are
 *		followed from the name they were sealed under to the name it has.
 */
static void
LoadRenames(VerifyState *vs)
{
	uint64		i;
	int			n = 0;
	int			max = 8;

	if (SPI_execute(LEDGER_SELECT
					"WHERE pg_catalog.cardinality(renamed_oids) OPERATOR(pg_catalog.>) 0"
					" ORDER BY block", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.ledger");
	vs->renames = palloc(sizeof(LedgerRename) * max);
	for (i = 0; i < SPI_processed; i++)
	{
		LedgerBlock b;
		int			k;

		(void) BlockFromTuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, &b);
		for (k = 0; k < b.nrenames; k++)
		{
			if (n == max)
			{
				max *= 2;
				vs->renames = repalloc(vs->renames, sizeof(LedgerRename) * max);
			}
			vs->renames[n].block = b.block;
			vs->renames[n].inc = b.inc;
			vs->renames[n].from = b.renamed_from[k];
			vs->renames[n].to = b.renamed_to[k];
			n++;
		}
	}
	vs->nrenames = n;
}

/*
 * ComputeCutoff
 *		The moment before which sealed rows may be gone by retention: the
 *		time of the newest digest's block (else of the newest block), less
 *		the retention that block records, computed in UTC.
 */
static void
ComputeCutoff(VerifyState *vs)
{
	bool		isnull;
	Datum		sealed_at;
	Datum		retention;
	int			ret;

	if (vs->newest_digest_block >= 0)
		ret = SPI_execute_with_args("SELECT sealed_at, retention FROM payout.ledger"
									" WHERE block OPERATOR(pg_catalog.=) $1",
									1, (Oid[]) {INT8OID},
									(Datum[]) {Int64GetDatum(vs->newest_digest_block)},
									NULL, true, 1);
	else
		ret = SPI_execute("SELECT sealed_at, retention FROM payout.ledger"
						  " ORDER BY block DESC LIMIT 1", true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.ledger");
	if (SPI_processed != 1)
		return;
	sealed_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return;
	retention = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		return;
	/* a timestamptz is a UTC timestamp: subtract without a time zone */
	vs->cutoff = DatumGetTimestamp(DirectFunctionCall2(timestamp_mi_interval,
													   sealed_at, retention));
	vs->has_cutoff = true;
}

/*
 * TrackTables
 *		Where each table of a block's dictionary is now: followed through
 *		the renames recorded after the block, by OID within the database
 *		that recorded them and by name across a dump and restore.
 */
static Tracker *
TrackTables(VerifyState *vs, const LedgerBlock *b)
{
	Tracker    *t = palloc(sizeof(Tracker) * (b->ntables + 1));
	int			i;
	int			k;

	for (i = 0; i < b->ntables; i++)
	{
		t[i].inc = b->inc;
		t[i].ident = b->tables[i];
		for (k = 0; k < vs->nrenames; k++)
		{
			LedgerRename *r = &vs->renames[k];
			bool		same = IncEqual(&r->inc, &t[i].inc);

			if (r->block <= b->block)
				continue;
			if ((same && r->from.oid == t[i].ident.oid) ||
				(!same && IdentEqual(&r->from, &t[i].ident)))
			{
				t[i].ident = r->to;
				t[i].inc = r->inc;
			}
		}
	}
	return t;
}

/* The dictionary index of the table a row names now; -1 if none. */
static int
TableIndex(VerifyState *vs, const LedgerBlock *b, const Tracker *t, Oid tbl)
{
	const LedgerIdent *now = NULL;
	int			i;

	for (i = 0; i < b->ntables; i++)
	{
		/*
		 * A dropped table's rows keep its OID, which a dump writes and a
		 * restore reads back as that number, whatever it names by then.
		 */
		if (IncEqual(&t[i].inc, &vs->call->here) || t[i].ident.dangling)
		{
			if (t[i].ident.oid == tbl)
				return i;
		}
		else
		{
			if (now == NULL)
				now = CurrentIdent(vs->call, tbl);
			if (IdentEqual(now, &t[i].ident))
				return i;
		}
	}
	return -1;
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
		b->marks.len != n * MARK_SIZE)
		return false;
	*ids = palloc(sizeof(int64) * (n + 1));
	for (i = 0; i < n; i++)
	{
		uint64		delta;

		if (!GetVarint((const uint8 *) b->ids.data, b->ids.len, &pos, &delta) ||
			delta == 0 || prev + (int64) delta > b->last_id)
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

/* The sealed clock_time of a block's row i, if known. */
static bool
SealedClock(const LedgerBlock *b, int64 i, TimestampTz *t)
{
	uint32		offset = GetU32((const uint8 *) b->marks.data + i * MARK_SIZE + 6);

	if (!b->has_clock || offset == CLOCK_UNKNOWN)
		return false;
	*t = b->min_clock + (TimestampTz) offset * USECS_PER_SEC;
	return true;
}

/* Whether retention may have removed a block's row i. */
static bool
Retained(VerifyState *vs, const LedgerBlock *b, int64 i)
{
	TimestampTz t;

	/* its clock is known to the second: all of that second must be old */
	return vs->has_cutoff && SealedClock(b, i, &t) && t + USECS_PER_SEC <= vs->cutoff;
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
	if (SPI_execute_with_args(HISTORY_SELECT "WHERE h.id OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {INT8OID}, (Datum[]) {Int64GetDatum(id)},
							  NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read payout.history");
	if (SPI_processed == 0)
		return false;
	heap_deform_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
					  row->values, row->nulls);
	return true;
}

/*
 * CompareRow
 *		A present row against the mark block b sealed for its id (index i):
 *		false, with a finding, if they differ.  leaf is the row's leaf.
 */
static bool
CompareRow(VerifyState *vs, const LedgerBlock *b, const int64 *ids, int64 i,
		   int tindex, const HistoryRow *row, const uint8 *leaf, HTAB **fps)
{
	const uint8 *mark = (const uint8 *) b->marks.data + i * MARK_SIZE;
	int64		id = ids[i];
	int64		other;

	if (GetU16(mark) == tindex && memcmp(mark + 10, leaf, FINGERPRINT_SIZE) == 0)
		return true;
	other = FindFingerprint(fps, b, leaf);
	if (other >= 0 && other != i &&
		GetU16((const uint8 *) b->marks.data + other * MARK_SIZE) == tindex)
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
		const char *sealed_table = GetU16(mark) < b->ntables ?
		IdentText(&b->tables[GetU16(mark)]) : "?";

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
InScope(VerifyState *vs, const LedgerBlock *b, int64 i, int target)
{
	const uint8 *mark = (const uint8 *) b->marks.data + i * MARK_SIZE;

	if (!OidIsValid(vs->scope_tbl))
		return true;
	if (target < 0 || GetU16(mark) != target)
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
VerifyRows(VerifyState *vs, const LedgerBlock *b, HistoryScan *scan,
		   HistoryRow *row, bool *have_row)
{
	LedgerCall *call = vs->call;
	bool		whole = !OidIsValid(vs->scope_tbl);
	int64	   *ids;
	Tracker    *trackers;
	HTAB	   *fps = NULL;
	MissingRun	run = {-1, -1, 0};
	int			target = -1;
	int64		i = 0;
	int64		problems_before = vs->problems;
	int64		retained_before = vs->retained;
	bool		all_present = true;
	uint8		tagbyte = TAG_ROWS;

	if (!DecodeIds(b, &ids))
	{
		/* the block's own check said so; skip its rows */
		while (*have_row && RowId(row) <= b->last_id)
			*have_row = NextRow(scan, row);
		return;
	}
	trackers = TrackTables(vs, b);
	if (!whole)
		target = TableIndex(vs, b, trackers, vs->scope_tbl);
	if (whole)
	{
		ShaInit(call->stream_ctx);
		ShaUpdate(call->stream_ctx, &tagbyte, 1);
	}

	for (;;)
	{
		int64		rid = *have_row ? RowId(row) : PG_INT64_MAX;

		/* the next sealed row in scope */
		while (i < b->row_count && !InScope(vs, b, i, target))
			i++;
		if (rid > b->last_id && i >= b->row_count)
			break;

		if (i < b->row_count && (rid > b->last_id || ids[i] < rid))
		{
			HistoryRow other;

			/* sealed, absent: a payout's row may be another's by its tag */
			if (vs->scope_key != NULL && LookupRow(ids[i], &other))
			{
				uint8		leaf[PG_SHA256_DIGEST_LENGTH];
				int			t = TableIndex(vs, b, trackers,
										   DatumGetObjectId(other.values[COL_TBL]));

				RowLeaf(call, &other, t >= 0 ? &b->tables[t] :
						CurrentIdent(call, DatumGetObjectId(other.values[COL_TBL])),
						leaf);
				/* intact and not this payout's: another's key has its tag */
				if (t != target ||
					memcmp(b->marks.data + i * MARK_SIZE + 10, leaf, FINGERPRINT_SIZE) != 0)
				{
					vs->rows_checked++;
					(void) CompareRow(vs, b, ids, i, t, &other, leaf, &fps);
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
			Oid			tbl = DatumGetObjectId(row->values[COL_TBL]);
			int			t = TableIndex(vs, b, trackers, tbl);
			uint64		idbe = pg_hton64((uint64) rid);

			FlushMissing(vs, b, ids, &run);
			RowLeaf(call, row, t >= 0 ? &b->tables[t] : CurrentIdent(call, tbl), leaf);
			if (whole)
			{
				ShaUpdate(call->stream_ctx, &idbe, 8);
				ShaUpdate(call->stream_ctx, leaf, PG_SHA256_DIGEST_LENGTH);
			}
			vs->rows_checked++;
			(void) CompareRow(vs, b, ids, i, t, row, leaf, &fps);
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
				Oid			tbl = DatumGetObjectId(row->values[COL_TBL]);
				int			t = TableIndex(vs, b, trackers, tbl);

				RowLeaf(call, row, t >= 0 ? &b->tables[t] : CurrentIdent(call, tbl), leaf);
				vs->rows_checked++;
				(void) CompareRow(vs, b, ids, k, t, row, leaf, &fps);
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

	VerifyRows(vs, b, scan, row, have_row);

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
			INT64_FORMAT " sealed %s of %s are gone, each recorded before %s, as the retention the ledger records allows.",
			vs->retained, vs->retained == 1 ? "row" : "rows",
			vs->retained_first_block == vs->retained_last_block ?
			psprintf("block " INT64_FORMAT, vs->retained_first_block) :
			psprintf("blocks " INT64_FORMAT " to " INT64_FORMAT,
					 vs->retained_first_block, vs->retained_last_block),
			UtcText(vs->cutoff));
}

/*
 * payout.verify(digests jsonb, tbl regclass, key text) returns table
 * (block bigint, id bigint, finding text, detail text)
 *
 * Verifies the sealed history, the whole of it or one table's or one
 * payout's rows, from the rows and the chain alone and, given digests,
 * against them.  One line for each finding, the first of each block
 * first, then one line with the verdict: intact or tampered.
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
	int			nestlevel;
	int			k;
	StringInfoData what;

	if (PG_ARGISNULL(1) && !PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a payout's key needs its table"),
				 errhint("Call payout.verify(tbl => 'payouts', key => '42').")));

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
	if (!PG_ARGISNULL(1))
		vs.scope_tbl = PG_GETARG_OID(1);
	if (!PG_ARGISNULL(2))
	{
		vs.scope_key = PG_GETARG_TEXT_PP(2);
		vs.scope_tag = KeyTag(&call, PointerGetDatum(vs.scope_key), false);
	}
	LoadDigests(&vs, PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0));
	LoadRenames(&vs);
	ComputeCutoff(&vs);

	if (vs.scope_key != NULL)
		OpenHistory(&scan, "WHERE h.tbl OPERATOR(pg_catalog.=) $1"
					" AND h.key OPERATOR(pg_catalog.=) $2", 2,
					(Oid[]) {REGCLASSOID, TEXTOID},
					(Datum[]) {ObjectIdGetDatum(vs.scope_tbl), PointerGetDatum(vs.scope_key)});
	else if (OidIsValid(vs.scope_tbl))
		OpenHistory(&scan, "WHERE h.tbl OPERATOR(pg_catalog.=) $1", 1,
					(Oid[]) {REGCLASSOID},
					(Datum[]) {ObjectIdGetDatum(vs.scope_tbl)});
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
						 vs.newest_digest_block);
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
