/*-------------------------------------------------------------------------
 *
 * rules.c
 *	  The payout rules, as a pure function, and the one place that
 *	  reports a broken rule.
 *
 * PayoutJudge decides, from status and resolution indexes alone, which
 * rule a change breaks, if any; it reads no table and raises nothing, so
 * the trigger, the upsert check and the tests of the rules share one copy
 * of them.  In the order they are checked:
 *
 *	- a stored payout always has a status;
 *	- a payout whose resolution is in the ERROR group and whose status is
 *	  not final is held for moderation: only a moderator may change its
 *	  status or resolution, or delete it (the change that sets the ERROR
 *	  resolution is free; the hold starts after);
 *	- a manual payout (autoprocess not true) is an operator's from the moment
 *	  it leaves READY until it is final: only an operator moves it out of
 *	  READY toward processing, changes its status or resolution after that
 *	  (a moderator still decides a held one), or deletes it while it is not
 *	  final; and only an operator turns a payout's autoprocess on.  The
 *	  application may still create, ready and end a manual payout that
 *	  waits (TERMINATED, EXPIRED), and turn autoprocess off;
 *	- a new payout starts in a status the graph allows for new rows, and a
 *	  status change follows an edge of the graph;
 *	- a final payout keeps its resolution (the graph has no edge out of a
 *	  final status);
 *	- a FATAL_ERROR resolution is final, so it comes with a final status;
 *	- PROCESSED and PARTIALLY_PROCESSED need an OK resolution, or none;
 *	- a payout that is not final is deleted only where the table was
 *	  attached with delete_unfinished.
 *
 * PayoutReportRule raises the error of a broken rule: SQLSTATE, constraint
 * name, the row's key and what would have been allowed.
 *
 * src/rules.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "payout.h"
#include "rules.h"
#include "status.h"
#include "transition_cache.h"

static char *DescribeStatuses(uint32 statuses);
static const char *ResolutionText(int resolution);
static bool HasRoleOfSetting(const char *rolename);
static bool PastReady(int status);
static int	OperatorHint(void);

/*
 * PayoutIsHeld
 *		Whether a payout with this status (PAYOUT_INITIAL: none) and
 *		resolution is held for moderation.
 */
bool
PayoutIsHeld(int status, int resolution)
{
	return resolution != PAYOUT_NO_RESOLUTION &&
		PayoutResolutionGroupOf(resolution) == PAYOUT_GROUP_ERROR &&
		(status == PAYOUT_INITIAL || !PayoutStatusIsFinal(status));
}

/*
 * PayoutActingUser
 *		The role a change is judged as, and recorded under.
 *
 * That is the current user, except in the actions PostgreSQL takes for a
 * foreign key (ON DELETE CASCADE, ON UPDATE CASCADE, SET NULL, SET
 * DEFAULT): it runs them as the owner of the referencing table, which would
 * let whoever may delete a customer delete a held payout when a superuser,
 * a moderator or an operator owns the payouts.  Those actions, and only
 * they in PostgreSQL, run with SECURITY_NOFORCE_RLS set; they are judged as
 * the session's role (current_user outside any SECURITY DEFINER function),
 * which is the role whose statement caused them.
 */
Oid
PayoutActingUser(void)
{
	if (InNoForceRLSOperation())
		return GetOuterUserId();
	return GetUserId();
}

/*
 * The rows a foreign key's action changes, until history records them.
 *
 * History is recorded by AFTER triggers, which PostgreSQL fires for a
 * foreign key's action once the action's own statement is over: no longer
 * with SECURITY_NOFORCE_RLS, and from PostgreSQL 18 as the role that
 * queued them, the referencing table's owner.  So the enforcement trigger,
 * which runs inside the action, notes the row version it judged (by
 * relation and tuple id, which the AFTER trigger is given as its old row)
 * with the role it judged the change as, and history takes that role from
 * here.  A row version a foreign key's action updated or deleted is never
 * updated or deleted again, so a note is found by its own change only;
 * notes of an aborted subtransaction go with it, and all of them with the
 * transaction.
 */
typedef struct CascadeKey
{
	Oid			relid;
	ItemPointerData tid;
} CascadeKey;

typedef struct CascadeNote
{
	CascadeKey	key;			/* hash key: must be first */
	Oid			user_id;
} CascadeNote;

/* What was noted, in the order it was: subtransaction ids only grow. */
typedef struct CascadeEntry
{
	CascadeKey	key;
	SubTransactionId subxid;
} CascadeEntry;

static HTAB *cascade_notes = NULL;
static CascadeEntry *cascade_order = NULL;
static int	cascade_count = 0;
static int	cascade_max = 0;

static void
CascadeXactCallback(XactEvent event, void *arg)
{
	/* the table lives in TopTransactionContext, which goes with it */
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			cascade_notes = NULL;
			cascade_order = NULL;
			cascade_count = cascade_max = 0;
			break;
		default:
			break;
	}
}

static void
CascadeSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB || cascade_notes == NULL)
		return;

	/*
	 * Subtransactions started after the aborted one, while it was the
	 * innermost, were nested in it: their notes go too.  They are the last
	 * ones noted, so an abort costs what it takes back, never a walk over
	 * every note (a note history has taken already is simply not found).
	 */
	while (cascade_count > 0 &&
		   cascade_order[cascade_count - 1].subxid >= mySubid)
	{
		cascade_count--;
		hash_search(cascade_notes, &cascade_order[cascade_count].key,
					HASH_REMOVE, NULL);
	}
}

/*
 * PayoutRegisterCascadeCallbacks
 *		Called once per backend from _PG_init.
 */
void
PayoutRegisterCascadeCallbacks(void)
{
	RegisterXactCallback(CascadeXactCallback, NULL);
	RegisterSubXactCallback(CascadeSubXactCallback, NULL);
}

/*
 * PayoutNoteCascade
 *		Called by the enforcement trigger for the old row of an UPDATE or a
 *		DELETE of rel that history records: inside a foreign key's action,
 *		note the role the change is judged as.
 */
void
PayoutNoteCascade(Relation rel, HeapTuple oldtuple)
{
	CascadeKey	key;
	CascadeNote *note;
	bool		found;

	if (!InNoForceRLSOperation())
		return;
	if (cascade_notes == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(CascadeKey);
		ctl.entrysize = sizeof(CascadeNote);
		ctl.hcxt = TopTransactionContext;
		cascade_notes = hash_create("payout foreign key actions", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		cascade_max = 64;
		cascade_order = MemoryContextAlloc(TopTransactionContext,
										   sizeof(CascadeEntry) * cascade_max);
	}
	else if (cascade_count == cascade_max)
	{
		cascade_max *= 2;
		cascade_order = repalloc(cascade_order,
								 sizeof(CascadeEntry) * cascade_max);
	}
	memset(&key, 0, sizeof(key));
	key.relid = RelationGetRelid(rel);
	key.tid = oldtuple->t_self;
	note = hash_search(cascade_notes, &key, HASH_ENTER, &found);
	note->user_id = PayoutActingUser();
	cascade_order[cascade_count].key = key;
	cascade_order[cascade_count].subxid = GetCurrentSubTransactionId();
	cascade_count++;
}

/*
 * PayoutChangeUser
 *		The role history records a change of rel under: the one a foreign
 *		key's action judged it as, if one did (oldtuple: the row before the
 *		change, NULL for an INSERT), else the acting user.
 */
Oid
PayoutChangeUser(Relation rel, HeapTuple oldtuple)
{
	if (cascade_notes != NULL && oldtuple != NULL)
	{
		CascadeKey	key;
		CascadeNote *note;
		Oid			user_id;

		memset(&key, 0, sizeof(key));
		key.relid = RelationGetRelid(rel);
		key.tid = oldtuple->t_self;
		note = hash_search(cascade_notes, &key, HASH_FIND, NULL);
		if (note != NULL)
		{
			user_id = note->user_id;
			hash_search(cascade_notes, &key, HASH_REMOVE, NULL);
			return user_id;
		}
	}
	return PayoutActingUser();
}

/*
 * HasRoleOfSetting
 *		Whether the acting user is a superuser or has the privileges of the
 *		role a superuser-only setting names (so a NOINHERIT member must SET
 *		ROLE first).  An empty setting, or a role that does not exist,
 *		leaves it to superusers.
 */
static bool
HasRoleOfSetting(const char *rolename)
{
	Oid			user = PayoutActingUser();
	Oid			roleid;

	if (superuser_arg(user))
		return true;
	if (rolename == NULL || rolename[0] == '\0')
		return false;
	roleid = get_role_oid(rolename, true);
	return OidIsValid(roleid) && has_privs_of_role(user, roleid);
}

/*
 * PayoutIsModerator
 *		Whether the acting user may change a payout held for moderation
 *		(payout.moderator_role).
 */
bool
PayoutIsModerator(void)
{
	return HasRoleOfSetting(payout_moderator_role);
}

/*
 * PayoutIsOperator
 *		Whether the acting user may process manual payouts
 *		(payout.operator_role).
 */
bool
PayoutIsOperator(void)
{
	return HasRoleOfSetting(payout_operator_role);
}

/*
 * payout.is_moderator(): whether the current user may change payouts held
 * for moderation; payout.is_operator(): whether it may process manual
 * payouts.  What the trigger asks, for back offices and the extension's
 * own functions to ask first.
 */
PG_FUNCTION_INFO_V1(payout_is_moderator);
Datum
payout_is_moderator(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PayoutIsModerator());
}

PG_FUNCTION_INFO_V1(payout_is_operator);
Datum
payout_is_operator(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PayoutIsOperator());
}

/*
 * PastReady
 *		Whether a payout in this status has left READY and is not final:
 *		a manual one is then in an operator's hands.
 */
static bool
PastReady(int status)
{
	return status >= 0 && status < PAYOUT_NUM_STATUSES &&
		status != PAYOUT_STATUS_CREATED && status != PAYOUT_STATUS_READY &&
		!PayoutStatusIsFinal(status);
}

/*
 * PayoutNeedsOperator
 *		Whether the change is one only an operator may make: autoprocess
 *		turned on; for a manual payout, leaving READY for a status that is
 *		not final, changing the status or resolution once past READY (but a
 *		moderator's decision on a held payout), or a delete while it is not
 *		final.  The caller asks PayoutIsOperator only then.
 */
bool
PayoutNeedsOperator(const PayoutChange *c)
{
	if (c->event == PAYOUT_EVENT_INSERT)
		return false;
	if (c->event == PAYOUT_EVENT_DELETE)
		return c->manual && c->from != PAYOUT_INITIAL &&
			!PayoutStatusIsFinal(c->from);
	if (c->autoprocess_on)
		return true;
	if (!c->manual || (c->from == c->to && c->oldres == c->newres))
		return false;
	if (c->from == PAYOUT_STATUS_READY)
		return c->to != c->from && c->to >= 0 && !PayoutStatusIsFinal(c->to);
	return PastReady(c->from) &&
		!(c->moderator && PayoutIsHeld(c->from, c->oldres));
}

/*
 * PayoutJudge
 *		Which rule the change breaks, or PAYOUT_RULE_NONE.
 */
PayoutRule
PayoutJudge(const PayoutChange *c)
{
	bool		held = c->event != PAYOUT_EVENT_INSERT &&
		PayoutIsHeld(c->from, c->oldres);

	if (c->event == PAYOUT_EVENT_DELETE)
	{
		if (held && !c->moderator)
			return PAYOUT_RULE_HOLD;
		if (c->from != PAYOUT_INITIAL && !PayoutStatusIsFinal(c->from) &&
			!c->delete_unfinished)
			return PAYOUT_RULE_DELETE;
		if (!c->operator_member && PayoutNeedsOperator(c))
			return PAYOUT_RULE_MANUAL;
		return PAYOUT_RULE_NONE;
	}

	if (c->to == PAYOUT_NULL_STATUS)
		return PAYOUT_RULE_NOT_NULL;
	if (held && !c->moderator && (c->from != c->to || c->oldres != c->newres))
		return PAYOUT_RULE_HOLD;
	if (!c->operator_member && PayoutNeedsOperator(c))
		return c->autoprocess_on ? PAYOUT_RULE_AUTOPROCESS : PAYOUT_RULE_MANUAL;
	if (c->from != c->to && !(c->allowed & ((uint32) 1 << c->to)))
		return c->from == PAYOUT_INITIAL ? PAYOUT_RULE_INITIAL :
			PAYOUT_RULE_TRANSITION;
	if (c->from != PAYOUT_INITIAL && PayoutStatusIsFinal(c->from) &&
		c->oldres != c->newres)
		return PAYOUT_RULE_FINAL;
	if (c->newres != PAYOUT_NO_RESOLUTION &&
		PayoutResolutionGroupOf(c->newres) == PAYOUT_GROUP_FATAL_ERROR &&
		!PayoutStatusIsFinal(c->to))
		return PAYOUT_RULE_FATAL;
	if (c->newres != PAYOUT_NO_RESOLUTION &&
		c->newres != PAYOUT_RESOLUTION_OK &&
		(c->to == PAYOUT_STATUS_PROCESSED ||
		 c->to == PAYOUT_STATUS_PARTIALLY_PROCESSED))
		return PAYOUT_RULE_PROCESSED;
	return PAYOUT_RULE_NONE;
}

/*
 * DescribeStatuses
 *		"A", "A or B", "A, B or C" for a bitmask of statuses.
 */
static char *
DescribeStatuses(uint32 statuses)
{
	StringInfoData buf;
	int			remaining = pg_popcount32(statuses);
	int			status;

	initStringInfo(&buf);
	for (status = 0; status < PAYOUT_NUM_STATUSES; status++)
	{
		if (!(statuses & ((uint32) 1 << status)))
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, remaining == 1 ? " or " : ", ");
		appendStringInfo(&buf, "\"%s\"", PayoutStatusLabel(status));
		remaining--;
	}
	return buf.data;
}

static const char *
ResolutionText(int resolution)
{
	return resolution == PAYOUT_NO_RESOLUTION ? "NULL" :
		psprintf("\"%s\"", PayoutResolutionLabel(resolution));
}

/*
 * OperatorHint
 *		Who the operators are, for the errors of the manual rules.
 */
static int
OperatorHint(void)
{
	if (payout_operator_role && payout_operator_role[0] != '\0')
		return errhint("Operators are the members of role \"%s\" (setting payout.operator_role). They take manual payouts with payout.claim(tbl, batch, manual => true).",
					   payout_operator_role);
	return errhint("Only superusers process manual payouts while payout.operator_role is empty.");
}

/*
 * PayoutReportRule
 *		Raise the error of a broken rule.  tuple is the row as stored (the
 *		new row of an INSERT), which names the payout in the detail.
 */
void
PayoutReportRule(PayoutRule rule, const PayoutChange *c, Relation rel,
				 PayoutTableState *state, HeapTuple tuple)
{
	char	   *row = PayoutDescribeRow(state, rel, tuple);
	const char *from = c->from == PAYOUT_INITIAL ? "NULL" :
		PayoutStatusLabel(c->from);
	AttrNumber	rescol = state->resolution_attnum;
	AttrNumber	statuscol = state->status_attnum;
	int			failure;

	switch (rule)
	{
		case PAYOUT_RULE_NOT_NULL:
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("payout status in column \"%s\" of relation \"%s\" must not be null",
							NameStr(TupleDescAttr(RelationGetDescr(rel), statuscol - 1)->attname),
							RelationGetRelationName(rel)),
					 errdetail("%s has a null status.", row),
					 errtablecol(rel, statuscol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_status_not_null")));
			break;

		case PAYOUT_RULE_HOLD:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("payout is held for moderation"),
					 c->event == PAYOUT_EVENT_DELETE ?
					 errdetail("%s has resolution \"%s\" in status \"%s\"; only a moderator may delete it.",
							   row, PayoutResolutionLabel(c->oldres), from) :
					 errdetail("%s has resolution \"%s\" in status \"%s\"; only a moderator may change it.",
							   row, PayoutResolutionLabel(c->oldres), from),
					 (payout_moderator_role && payout_moderator_role[0] != '\0') ?
					 errhint("Moderators are the members of role \"%s\" (setting payout.moderator_role). They release a payout with an OK resolution, or end it with a FATAL_ERROR resolution and a final status.",
							 payout_moderator_role) :
					 errhint("Only superusers moderate while payout.moderator_role is empty. They release a payout with an OK resolution, or end it with a FATAL_ERROR resolution and a final status."),
					 errtablecol(rel, rescol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_moderation_hold")));
			break;

		case PAYOUT_RULE_MANUAL:
			if (c->event == PAYOUT_EVENT_DELETE)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("payout is in manual processing"),
						 errdetail("%s has autoprocess off and is in status \"%s\", which is not final; only an operator may delete it.",
								   row, from),
						 OperatorHint(),
						 errtablecol(rel, statuscol),
						 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_manual_processing")));
			else if (c->from == PAYOUT_STATUS_READY)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("payout is waiting for manual processing"),
						 errdetail("%s has autoprocess off; only an operator may move it from \"%s\" to \"%s\".",
								   row, from, PayoutStatusLabel(c->to)),
						 OperatorHint(),
						 errtablecol(rel, statuscol),
						 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_manual_processing")));
			else
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("payout is in manual processing"),
						 errdetail("%s has autoprocess off and is in status \"%s\"; only an operator may change its status or resolution until it is final.",
								   row, from),
						 OperatorHint(),
						 errtablecol(rel, c->from != c->to ? statuscol : rescol),
						 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_manual_processing")));
			break;

		case PAYOUT_RULE_AUTOPROCESS:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("autoprocess of a payout can only be turned on by an operator"),
					 errdetail("%s is marked for manual processing.", row),
					 OperatorHint(),
					 errtablecol(rel, state->autoprocess_attnum),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_autoprocess_on")));
			break;

		case PAYOUT_RULE_INITIAL:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("illegal initial payout status \"%s\"",
							PayoutStatusLabel(c->to)),
					 c->allowed ?
					 errdetail("%s: a new payout may only start in %s.",
							   row, DescribeStatuses(c->allowed)) :
					 errdetail("%s: the transition graph lets no new payout start.", row),
					 errhint("Allowed transitions are the rows of table payout.transition."),
					 errtablecol(rel, statuscol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_initial_status")));
			break;

		case PAYOUT_RULE_TRANSITION:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("illegal payout status transition from \"%s\" to \"%s\"",
							from, PayoutStatusLabel(c->to)),
					 PayoutStatusIsFinal(c->from) ?
					 errdetail("%s is in status \"%s\", which is final.", row, from) :
					 c->allowed ?
					 errdetail("%s is in status \"%s\", which may only change to %s.",
							   row, from, DescribeStatuses(c->allowed)) :
					 errdetail("%s is in status \"%s\", which the transition graph lets change to nothing.",
							   row, from),
					 errhint("Allowed transitions are the rows of table payout.transition."),
					 errtablecol(rel, statuscol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_status_transition")));
			break;

		case PAYOUT_RULE_FINAL:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("resolution of a payout in final status \"%s\" cannot change",
							from),
					 errdetail("%s has resolution %s.", row, ResolutionText(c->oldres)),
					 errtablecol(rel, rescol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_final_resolution")));
			break;

		case PAYOUT_RULE_FATAL:
			failure = PayoutFailureStatus(c->from);
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("fatal resolution \"%s\" requires a final status",
							PayoutResolutionLabel(c->newres)),
					 errdetail("%s would be in status \"%s\", which is not final.",
							   row, PayoutStatusLabel(c->to)),
					 failure != PAYOUT_NO_STATUS ?
					 errhint("Set the status to \"%s\" in the same statement.",
							 PayoutStatusLabel(failure)) :
					 errhint("A payout in status \"%s\" cannot fail; see payout.failure_status().",
							 from),
					 errtablecol(rel, rescol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_fatal_resolution")));
			break;

		case PAYOUT_RULE_PROCESSED:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("payout status \"%s\" requires resolution \"OK\"",
							PayoutStatusLabel(c->to)),
					 errdetail("%s would have resolution \"%s\".",
							   row, PayoutResolutionLabel(c->newres)),
					 c->from != c->to ?
					 errhint("Set the resolution to OK, or to NULL, in the same statement.") :
					 errhint("A processed payout keeps an OK resolution, or none."),
					 errtablecol(rel, rescol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_processed_resolution")));
			break;

		case PAYOUT_RULE_DELETE:
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("payout in status \"%s\" cannot be deleted", from),
					 errdetail("%s is not final; only final payouts may be deleted from table \"%s\".",
							   row, RelationGetRelationName(rel)),
					 errhint("Move it to a final status along payout.transition, or attach the table with delete_unfinished => true."),
					 errtablecol(rel, statuscol),
					 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "payout_delete_unfinished")));
			break;

		case PAYOUT_RULE_NONE:
			break;
	}
	elog(ERROR, "payout rule %d reported without a violation", (int) rule);
}
