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

/* Status indexes the C code names, in declaration order. */
#define PAYOUT_STATUS_CREATE_FAILED			0
#define PAYOUT_STATUS_CREATED				1
#define PAYOUT_STATUS_READY					2
#define PAYOUT_STATUS_TERMINATED			3
#define PAYOUT_STATUS_EXPIRED				4
#define PAYOUT_STATUS_INVOKING				5
#define PAYOUT_STATUS_INVOKE_FAILED			6
#define PAYOUT_STATUS_PROCESSING			7
#define PAYOUT_STATUS_PENDING				8
#define PAYOUT_STATUS_PROCESSED				9
#define PAYOUT_STATUS_PARTIALLY_PROCESSED	10
#define PAYOUT_STATUS_PROCESS_FAILED		11
#define PAYOUT_STATUS_CANCELLING			12
#define PAYOUT_STATUS_CANCELLED				13
#define PAYOUT_STATUS_CANCEL_FAILED			14
#define PAYOUT_STATUS_REVOKING				15
#define PAYOUT_STATUS_REVOKED				16
#define PAYOUT_STATUS_REVOKE_FAILED			17

/* Resolution indexes the C code names. */
#define PAYOUT_RESOLUTION_OK				0
#define PAYOUT_RESOLUTION_CONNECTION_ERROR	1
#define PAYOUT_RESOLUTION_PROVIDER_INTERNAL_ERROR	2
#define PAYOUT_RESOLUTION_CONNECTION_TIMEOUT_ERROR	3
#define PAYOUT_RESOLUTION_UNKNOWN			5

/* No such status: what PayoutFailureStatus returns for a status with none. */
#define PAYOUT_NO_STATUS					(-1)

extern const char *PayoutStatusLabel(int status);
extern bool PayoutStatusIsFinal(int status);
extern int	PayoutFailureStatus(int status);
extern const char *PayoutResolutionLabel(int resolution);
extern PayoutResolutionGroup PayoutResolutionGroupOf(int resolution);

#endif							/* PAYOUT_STATUS_H */
