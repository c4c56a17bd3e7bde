/*-------------------------------------------------------------------------
 *
 * rules.h
 *	  The payout rules, as a pure function, and the one place that
 *	  reports a broken rule.
 *
 * src/rules.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_RULES_H
#define PAYOUT_RULES_H

#include "access/htup.h"
#include "compat.h"
#include "utils/relcache.h"

#include "table_state.h"

/* No resolution (NULL, or a table without a resolution column). */
#define PAYOUT_NO_RESOLUTION	(-1)

/* "to" of a change that stores a NULL status. */
#define PAYOUT_NULL_STATUS		(-2)

typedef enum PayoutEvent
{
	PAYOUT_EVENT_INSERT,
	PAYOUT_EVENT_UPDATE,
	PAYOUT_EVENT_DELETE
} PayoutEvent;

/* The rules, each reported under its own constraint name. */
typedef enum PayoutRule
{
	PAYOUT_RULE_NONE,			/* the change breaks no rule */
	PAYOUT_RULE_NOT_NULL,		/* payout_status_not_null */
	PAYOUT_RULE_HOLD,			/* payout_moderation_hold */
	PAYOUT_RULE_MANUAL,			/* payout_manual_processing */
	PAYOUT_RULE_AUTOPROCESS,	/* payout_autoprocess_on */
	PAYOUT_RULE_INITIAL,		/* payout_initial_status */
	PAYOUT_RULE_TRANSITION,		/* payout_status_transition */
	PAYOUT_RULE_FINAL,			/* payout_final_resolution */
	PAYOUT_RULE_FATAL,			/* payout_fatal_resolution */
	PAYOUT_RULE_PROCESSED,		/* payout_processed_resolution */
	PAYOUT_RULE_DELETE			/* payout_delete_unfinished */
} PayoutRule;

/*
 * A change of one payout, in status and resolution indexes.  from is
 * PAYOUT_INITIAL for a new row (and a stored row without a status); to is
 * unused for a DELETE.
 */
typedef struct PayoutChange
{
	PayoutEvent event;
	int			from;
	int			oldres;
	int			to;
	int			newres;
	uint32		allowed;		/* the graph's next statuses of from */
	bool		moderator;		/* the user may change held payouts (asked
								 * only of a held one) */
	bool		manual;			/* the payout was manual (autoprocess not true) */
	bool		autoprocess_on; /* the change turns autoprocess on */
	bool		operator_member;	/* the user may process manual payouts */
	bool		delete_unfinished;	/* the table's option */
} PayoutChange;

extern Oid	PayoutActingUser(void);
extern void PayoutRegisterCascadeCallbacks(void);
extern void PayoutNoteCascade(Relation rel, HeapTuple oldtuple);
extern Oid	PayoutChangeUser(Relation rel, HeapTuple oldtuple);
extern bool PayoutIsHeld(int status, int resolution);
extern bool PayoutIsModerator(void);
extern bool PayoutIsOperator(void);
extern bool PayoutNeedsOperator(const PayoutChange *change);
extern PayoutRule PayoutJudge(const PayoutChange *change);
pg_noreturn extern void PayoutReportRule(PayoutRule rule,
										 const PayoutChange *change,
										 Relation rel,
										 PayoutTableState *state,
										 HeapTuple tuple);

#endif							/* PAYOUT_RULES_H */
