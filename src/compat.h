/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Shims for differences between PostgreSQL major versions.
 *
 * PostgreSQL 15 is the baseline.  Anything that changed after it is
 * wrapped here, so that the rest of the code can be written once.
 *
 * src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_COMPAT_H
#define PAYOUT_COMPAT_H

/*
 * PG_MODULE_MAGIC_EXT (PostgreSQL 18) lets the server report our name and
 * version; older servers only know PG_MODULE_MAGIC.
 */
#if PG_VERSION_NUM >= 180000
#define PAYOUT_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "payout", .version = "1.0")
#else
#define PAYOUT_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/* MarkGUCPrefixReserved replaced EmitWarningsOnPlaceholders in 15. */
#if PG_VERSION_NUM < 150000
#define MarkGUCPrefixReserved(prefix) EmitWarningsOnPlaceholders(prefix)
#endif

#endif							/* PAYOUT_COMPAT_H */
