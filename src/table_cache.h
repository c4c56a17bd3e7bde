/*-------------------------------------------------------------------------
 *
 * table_cache.h
 *	  Per-backend copies of the extension's configuration tables, and
 *	  their invalidation.
 *
 * src/table_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_TABLE_CACHE_H
#define PAYOUT_TABLE_CACHE_H

#include "fmgr.h"
#include "utils/relcache.h"

/*
 * The state of one cached table.  The owner keeps the copy itself and
 * rebuilds it when valid is false, between PayoutTableCacheOpen and
 * PayoutTableCacheClose.
 */
typedef struct PayoutTableCache
{
	const char *relname;		/* table in schema payout */
	bool		valid;
	Oid			relid;			/* InvalidOid while unknown */
	Oid			placement;		/* Citus placement read instead, if any */
	uint64		invalidations;	/* bumped by every invalidation */
} PayoutTableCache;

extern void PayoutRegisterTableCache(PayoutTableCache *cache);
extern Relation PayoutTableCacheOpen(PayoutTableCache *cache,
									 uint64 *generation);
extern void PayoutTableCacheClose(PayoutTableCache *cache, Relation rel,
								  uint64 generation);
extern void PayoutAcceptChanges(FmgrInfo *flinfo);

#endif							/* PAYOUT_TABLE_CACHE_H */
