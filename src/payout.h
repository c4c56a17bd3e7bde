/*-------------------------------------------------------------------------
 *
 * payout.h
 *	  Module entry point of the payout extension.
 *
 * src/payout.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_H
#define PAYOUT_H

/* Name of the schema that CREATE EXTENSION payout creates. */
#define PAYOUT_SCHEMA "payout"

/* payout.moderator_role: members of this role may release moderation holds. */
extern char *payout_moderator_role;

/* payout.operator_role: members of this role process manual payouts. */
extern char *payout_operator_role;

/* PostgreSQL 15's fmgr.h does not declare it. */
extern void _PG_init(void);

#endif							/* PAYOUT_H */
