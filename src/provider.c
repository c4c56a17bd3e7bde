/*-------------------------------------------------------------------------
 *
 * provider.c
 *	  payout.classify(): map a payment provider's answer to a resolution.
 *
 * Table payout.provider_code maps (provider, code) pairs to resolutions.
 * classify() is meant to be called once per row of a bulk UPDATE, so each
 * backend keeps the table as a sorted array and answers with a binary
 * search.  The array lives in its own memory context under
 * CacheMemoryContext and is rebuilt, like the transition graph, when the
 * table changes (table_cache.c).
 *
 * An answer that is not mapped is classified by how the call went: a
 * timeout, an HTTP 500, another non-2xx status (0 standing for a transport
 * failure with no HTTP answer at all), or else UNKNOWN, which the seed puts
 * in the ERROR group, so an unmapped answer is held for moderation and
 * never processed.
 *
 * src/provider.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "payout.h"
#include "provider.h"
#include "status.h"
#include "table_cache.h"

/* Columns of payout.provider_code, as created by the install script. */
#define Anum_provider_code_provider		1
#define Anum_provider_code_code			2
#define Anum_provider_code_resolution	3

typedef struct ProviderCode
{
	char	   *provider;
	char	   *code;
	int			resolution;
} ProviderCode;

static MemoryContext provider_context = NULL;
static ProviderCode *provider_codes = NULL;
static int	provider_ncodes = 0;
static PayoutTableCache provider_cache = {"provider_code"};

static void LoadProviderCodes(void);
static int	CompareProviderCodes(const void *a, const void *b);
static bool KnownProvider(const char *provider);
static int	LookupProviderCode(const char *provider, const char *code);

/*
 * PayoutRegisterProviderCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterProviderCallbacks(void)
{
	PayoutRegisterTableCache(&provider_cache);
}

static int
CompareProviderCodes(const void *a, const void *b)
{
	const ProviderCode *x = (const ProviderCode *) a;
	const ProviderCode *y = (const ProviderCode *) b;
	int			cmp = strcmp(x->provider, y->provider);

	return cmp != 0 ? cmp : strcmp(x->code, y->code);
}

/*
 * LoadProviderCodes
 *		Read payout.provider_code into a sorted array.
 *
 * The new array is built in a fresh context, which replaces the old one
 * only once it is complete, so an error half-way (a label C does not know)
 * leaks nothing and leaves no half-built array behind.  The strings are
 * compared bytewise (strcmp), the same order for building and searching;
 * it need not match any collation.
 */
static void
LoadProviderCodes(void)
{
	uint64		generation;
	MemoryContext context;
	MemoryContext oldcontext;
	ProviderCode *codes;
	int			ncodes = 0;
	int			maxcodes = 64;
	Relation	rel;
	TupleDesc	tupdesc;
	SysScanDesc scan;
	HeapTuple	tuple;

	/*
	 * Built under the caller's context, so that an error half-way frees it
	 * with the rest of the query's memory; moved under CacheMemoryContext
	 * once complete.
	 */
	context = AllocSetContextCreate(CurrentMemoryContext,
									"payout provider codes",
									ALLOCSET_SMALL_SIZES);
	oldcontext = MemoryContextSwitchTo(context);
	codes = palloc(sizeof(ProviderCode) * maxcodes);

	rel = PayoutTableCacheOpen(&provider_cache, &generation);
	tupdesc = RelationGetDescr(rel);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Datum		provider;
		Datum		code;
		Datum		resolution;
		bool		isnull[3];

		provider = heap_getattr(tuple, Anum_provider_code_provider, tupdesc, &isnull[0]);
		code = heap_getattr(tuple, Anum_provider_code_code, tupdesc, &isnull[1]);
		resolution = heap_getattr(tuple, Anum_provider_code_resolution, tupdesc, &isnull[2]);
		if (isnull[0] || isnull[1] || isnull[2])
			continue;			/* excluded by the table's constraints */

		if (ncodes == maxcodes)
		{
			maxcodes *= 2;
			codes = repalloc(codes, sizeof(ProviderCode) * maxcodes);
		}
		codes[ncodes].provider = TextDatumGetCString(provider);
		codes[ncodes].code = TextDatumGetCString(code);
		codes[ncodes].resolution = PayoutEnumIndex(PAYOUT_ENUM_RESOLUTION,
												   DatumGetObjectId(resolution));
		ncodes++;
	}
	systable_endscan(scan);
	MemoryContextSwitchTo(oldcontext);

	qsort(codes, ncodes, sizeof(ProviderCode), CompareProviderCodes);

	MemoryContextSetParent(context, CacheMemoryContext);
	if (provider_context != NULL)
		MemoryContextDelete(provider_context);
	provider_context = context;
	provider_codes = codes;
	provider_ncodes = ncodes;
	PayoutTableCacheClose(&provider_cache, rel, generation);
}

/*
 * KnownProvider
 *		Whether the table maps any code of this provider.
 */
static bool
KnownProvider(const char *provider)
{
	int			lo = 0;
	int			hi = provider_ncodes;

	/* lower bound of provider in the sorted array */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (strcmp(provider_codes[mid].provider, provider) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < provider_ncodes && strcmp(provider_codes[lo].provider, provider) == 0;
}

/*
 * LookupProviderCode
 *		The resolution index mapped to (provider, code), or -1.
 */
static int
LookupProviderCode(const char *provider, const char *code)
{
	ProviderCode key;
	ProviderCode *found;

	key.provider = (char *) provider;
	key.code = (char *) code;
	found = bsearch(&key, provider_codes, provider_ncodes,
					sizeof(ProviderCode), CompareProviderCodes);
	return found ? found->resolution : -1;
}

/*
 * payout.classify(provider text, code text, http_status integer,
 *				   timed_out boolean) returns payout.resolution
 *
 * Precedence: a mapped (provider, code); a timeout; HTTP 500; any other
 * status outside 2xx (0: no HTTP answer); UNKNOWN.
 */
PG_FUNCTION_INFO_V1(payout_classify);
Datum
payout_classify(PG_FUNCTION_ARGS)
{
	char	   *provider;
	char	   *code = NULL;
	bool		has_status = !PG_ARGISNULL(2);
	int32		http_status = has_status ? PG_GETARG_INT32(2) : 0;
	bool		timed_out = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	int			resolution = -1;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payment provider must not be null")));
	if (has_status && http_status != 0 && (http_status < 100 || http_status > 999))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("HTTP status %d is out of range", http_status),
				 errhint("Pass a status from 100 to 999, or 0 when the call got no HTTP answer at all.")));
	if (PG_ARGISNULL(1) && !timed_out && !has_status)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("provider answer code must not be null"),
				 errhint("For a call that got no answer, pass its HTTP status (0 for none) or timed_out => true.")));

	PayoutAcceptChanges(fcinfo->flinfo);
	if (!provider_cache.valid)
		LoadProviderCodes();

	provider = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!KnownProvider(provider))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown payment provider \"%s\"", provider),
				 errdetail("Table payout.provider_code maps no code of this provider."),
				 errhint("Add the provider's codes to payout.provider_code.")));

	if (!PG_ARGISNULL(1))
	{
		code = text_to_cstring(PG_GETARG_TEXT_PP(1));
		resolution = LookupProviderCode(provider, code);
	}

	if (resolution < 0)
	{
		if (timed_out)
			resolution = PAYOUT_RESOLUTION_CONNECTION_TIMEOUT_ERROR;
		else if (has_status && http_status == 500)
			resolution = PAYOUT_RESOLUTION_PROVIDER_INTERNAL_ERROR;
		else if (has_status && (http_status < 200 || http_status > 299))
			resolution = PAYOUT_RESOLUTION_CONNECTION_ERROR;
		else
			resolution = PAYOUT_RESOLUTION_UNKNOWN;
	}

	PG_RETURN_OID(PayoutEnumOid(PAYOUT_ENUM_RESOLUTION, resolution));
}
