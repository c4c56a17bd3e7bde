/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  The ledger: payout.history sealed in a chain of SHA-256 blocks.
 *
 * src/ledger.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_LEDGER_H
#define PAYOUT_LEDGER_H

/* payout.ledger_retention: how long sealed rows must be kept, as text. */
extern char *payout_ledger_retention;

extern void PayoutDefineLedgerSettings(void);

#endif							/* PAYOUT_LEDGER_H */
