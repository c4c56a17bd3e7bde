/*-------------------------------------------------------------------------
 *
 * status.h
 *	  Labels and classes of the payout enum types.
 *
 * Statuses, resolutions and resolution groups are identified in C by their
 * position in the enum type's declaration (an "index"), which is the same
 * in every database.  Their OIDs are not: status.c maps between the two.
 *
 * src/status.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_STATUS_H
#define PAYOUT_STATUS_H

#define PAYOUT_NUM_STATUSES		18
#define PAYOUT_NUM_RESOLUTIONS	27

/*
 * Pseudo status index of "no status yet": the from side of the edges that
 * say which status a new row may start in.
 */
#define PAYOUT_INITIAL			PAYOUT_NUM_STATUSES

/* The enum types whose labels C knows. */
typedef enum PayoutEnumKind
{
	PAYOUT_ENUM_STATUS,
	PAYOUT_ENUM_RESOLUTION,
	PAYOUT_ENUM_RESOLUTION_GROUP
} PayoutEnumKind;

/* Labels of payout.resolution_group, in declaration order. */
typedef enum PayoutResolutionGroup
{
	PAYOUT_GROUP_OK,
	PAYOUT_GROUP_ERROR,
	PAYOUT_GROUP_FATAL_ERROR
} PayoutResolutionGroup;

extern void PayoutRegisterEnumCallbacks(void);

extern Oid	PayoutEnumTypeOid(PayoutEnumKind kind);
extern int	PayoutEnumIndex(PayoutEnumKind kind, Oid value);
extern Oid	PayoutEnumOid(PayoutEnumKind kind, int index);

extern const char *PayoutStatusLabel(int status);
extern bool PayoutStatusIsFinal(int status);

#endif							/* PAYOUT_STATUS_H */
