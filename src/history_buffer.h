/*-------------------------------------------------------------------------
 *
 * history_buffer.h
 *	  Rows of payout.history buffered and written a statement at a time.
 *
 * src/history_buffer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_HISTORY_BUFFER_H
#define PAYOUT_HISTORY_BUFFER_H

/* The columns of payout.history that a change fills, in order. */
#define HISTORY_NCOLUMNS 14

extern void PayoutRegisterHistoryHooks(void);
extern void PayoutHistoryAppend(const Datum *values, const bool *nulls);
extern void PayoutHistoryFlush(void);

#endif							/* PAYOUT_HISTORY_BUFFER_H */
