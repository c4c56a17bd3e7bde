/*-------------------------------------------------------------------------
 *
 * payout.c
 *	  Module magic and backend start-up of the payout extension.
 *
 * The extension keeps per-backend caches: the mapping between the labels
 * of its enum types and their OIDs in this database (status.c), the
 * transition graph (transition_cache.c) and the provider codes
 * (provider.c); the state of each query (query_state.c, move.c); and the
 * history rows waiting to be written (history_buffer.c).  All are invalidated or forgotten through
 * callbacks, which can only be registered, never removed, so they are
 * registered exactly once, when the library is loaded into a backend.
 *
 * src/payout.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "compat.h"
#include "history_buffer.h"
#include "move.h"
#include "payout.h"
#include "provider.h"
#include "query_state.h"
#include "rules.h"
#include "status.h"
#include "transition_cache.h"

PAYOUT_MODULE_MAGIC;

char	   *payout_moderator_role = NULL;
char	   *payout_operator_role = NULL;

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
	 * The default names no role: a role the extension named but did not
	 * create would belong to whoever creates it first.
	 */
	DefineCustomStringVariable("payout.moderator_role",
							   "Role whose members may release payouts held for moderation.",
							   "Superusers may always release them.  An empty string (the default) or a role that does not exist leaves it to superusers.",
							   &payout_moderator_role,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	/*
	 * The same for operators, who alone move manual payouts (autoprocess
	 * false) on from READY, and turn autoprocess on.
	 */
	DefineCustomStringVariable("payout.operator_role",
							   "Role whose members may process manual payouts.",
							   "Superusers may always process them.  An empty string (the default) or a role that does not exist leaves it to superusers.",
							   &payout_operator_role,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	/*
	 * Who, behind the database role, makes a change: an application that
	 * serves many people through one role sets it per transaction.  The
	 * database cannot check it, so anyone may set it, and history keeps it
	 * apart from the roles the database vouches for.
	 */
	DefineCustomStringVariable("payout.actor",
							   "Who makes the changes, as the application says: recorded in payout.history.actor.",
							   "Set it per transaction with SET LOCAL.  The database does not authenticate it; payout.history.user_name is the role it does.",
							   &payout_actor,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
	MarkGUCPrefixReserved("payout");

	PayoutRegisterEnumCallbacks();
	PayoutRegisterGraphCallbacks();
	PayoutRegisterProviderCallbacks();
	PayoutRegisterQueryStateCallbacks();
	PayoutRegisterMoveCallbacks();
	PayoutRegisterCascadeCallbacks();
	PayoutRegisterHistoryHooks();
}
