/*-------------------------------------------------------------------------
 *
 * provider.h
 *	  Classification of payment provider answers into resolutions.
 *
 * src/provider.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_PROVIDER_H
#define PAYOUT_PROVIDER_H

extern void PayoutRegisterProviderCallbacks(void);

#endif							/* PAYOUT_PROVIDER_H */
