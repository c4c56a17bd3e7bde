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
#include "utils/guc.h"
#include "utils/inval.h"

#include "compat.h"
#include "payout.h"
#include "provider.h"
#include "status.h"
#include "transition_cache.h"

PAYOUT_MODULE_MAGIC;

char	   *payout_moderator_role = NULL;

/*
 * _PG_init
 *		Define the settings and register the cache invalidation callbacks.
 *
 * PostgreSQL loads a library at most once per backend, so this runs at most
 * once per backend, which matters: there are only a few callback slots and
 * no way to give one back.
 */
void
_PG_init(void)
{
	/*
	 * Only a superuser may say who the moderators are: anyone who could
	 * change it could name a role of their own and release their own holds.
	 */
	DefineCustomStringVariable("payout.moderator_role",
							   "Role whose members may release payouts held for moderation.",
							   "Superusers may always release them.  An empty string or a role that does not exist leaves it to superusers.",
							   &payout_moderator_role,
							   "payout_moderator",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	MarkGUCPrefixReserved("payout");

	PayoutRegisterEnumCallbacks();
	PayoutRegisterGraphCallbacks();
	PayoutRegisterProviderCallbacks();
}

/*
 * PayoutAcceptChanges
 *		Process pending invalidations, so that edits of the extension's
 *		tables (the graph, the provider codes) that other sessions have
 *		committed are seen.
 *
 * Other backends process invalidations when a transaction starts or when
 * they take a new lock, but a statement inside a transaction that already
 * holds its locks would not look.  Callers come here once per statement:
 * with an FmgrInfo, at the first call of the query at that call site
 * (fn_extra records it, so the function must not use fn_extra otherwise);
 * with NULL, unconditionally.  It is cheap when nothing is pending.
 */
void
PayoutAcceptChanges(FmgrInfo *flinfo)
{
	if (flinfo != NULL && flinfo->fn_extra != NULL)
		return;

	AcceptInvalidationMessages();

	if (flinfo != NULL)
		flinfo->fn_extra = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(bool));
}
