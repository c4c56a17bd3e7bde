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

/* Index constants PAYOUT_STATUS_<label> and PAYOUT_RESOLUTION_<label>. */
typedef enum PayoutStatusIndex
{
#define PAYOUT_STATUS(name, final, description) PAYOUT_STATUS_##name,
#include "labels.h"
#undef PAYOUT_STATUS
	PAYOUT_NUM_STATUSES
} PayoutStatusIndex;

typedef enum PayoutResolutionIndex
{
#define PAYOUT_RESOLUTION(name, group, description) PAYOUT_RESOLUTION_##name,
#include "labels.h"
#undef PAYOUT_RESOLUTION
	PAYOUT_NUM_RESOLUTIONS
} PayoutResolutionIndex;

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

/* No such status: what PayoutFailureStatus returns for a status with none. */
#define PAYOUT_NO_STATUS					(-1)

extern const char *PayoutStatusLabel(int status);
extern bool PayoutStatusIsFinal(int status);
extern int	PayoutFailureStatus(int status);
extern const char *PayoutResolutionLabel(int resolution);
extern PayoutResolutionGroup PayoutResolutionGroupOf(int resolution);

#endif							/* PAYOUT_STATUS_H */
