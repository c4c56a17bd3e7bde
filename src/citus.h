/*-------------------------------------------------------------------------
 *
 * citus.h
 *	  What payout needs to know of Citus.
 *
 * src/citus.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_CITUS_H
#define PAYOUT_CITUS_H

extern Oid	PayoutCitusPlacement(Oid relid);
extern Oid	PayoutCitusLogicalTable(Oid relid);

#endif							/* PAYOUT_CITUS_H */
