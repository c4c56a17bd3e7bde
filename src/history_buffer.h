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

/*
 * What a change records; the rest of the row (times, the session's user,
 * application_name, payout.actor, the transaction id) the buffer adds.
 * Pointers are read during PayoutHistoryAppend only.
 */
typedef struct PayoutHistoryRow
{
	Oid			tbl;			/* the attached table */
	text	   *key;			/* the key after the change (before, for a
								 * delete) */
	text	   *old_key;		/* the key before, if the change changed it */
	Datum		old_status;
	Datum		new_status;
	Datum		old_resolution;
	Datum		new_resolution;
	bool		old_status_null;
	bool		new_status_null;
	bool		old_resolution_null;
	bool		new_resolution_null;
	Oid			user_id;		/* the acting user */
} PayoutHistoryRow;

/* payout.actor: who, behind the database role, makes the change. */
extern char *payout_actor;

extern void PayoutRegisterHistoryHooks(void);
extern void PayoutHistoryAppend(const PayoutHistoryRow *row);
extern void PayoutHistoryFlush(void);

/* history.c */
extern void PayoutHistoryRecordLastDelete(void);

#endif							/* PAYOUT_HISTORY_BUFFER_H */
