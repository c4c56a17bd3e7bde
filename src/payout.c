/*-------------------------------------------------------------------------
 *
 * payout.c
 *	  Module magic and backend start-up of the payout extension.
 *
 * The extension keeps two per-backend caches: the mapping between the
 * labels of its enum types and their OIDs in this database (status.c), and
 * the transition graph read from payout.transition (transition_cache.c).
 * Both are invalidated through callbacks, which can only be registered,
 * never removed, so they are registered exactly once, when the library is
 * loaded into a backend.
 *
 * src/payout.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "compat.h"
#include "payout.h"
#include "status.h"
#include "transition_cache.h"

PAYOUT_MODULE_MAGIC;

/*
 * _PG_init
 *		Register the cache invalidation callbacks.
 *
 * PostgreSQL loads a library at most once per backend, so this runs at most
 * once per backend, which matters: there are only a few callback slots and
 * no way to give one back.
 */
void
_PG_init(void)
{
	PayoutRegisterEnumCallbacks();
	PayoutRegisterGraphCallbacks();
}
