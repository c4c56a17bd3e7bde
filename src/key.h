/*-------------------------------------------------------------------------
 *
 * key.h
 *	  The canonical text of a payout's primary key.
 *
 * src/key.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAYOUT_KEY_H
#define PAYOUT_KEY_H

#include "lib/stringinfo.h"

/* How one key column is printed. */
typedef enum PayoutKeyKind
{
	PAYOUT_KEY_UNSUPPORTED,		/* its text depends on settings */
	PAYOUT_KEY_OUTPUT,			/* its output function, settings-free */
	PAYOUT_KEY_NUMERIC,			/* without trailing zeros */
	PAYOUT_KEY_DATE,			/* ISO */
	PAYOUT_KEY_TIMESTAMP,		/* ISO */
	PAYOUT_KEY_TIMESTAMPTZ		/* ISO, in UTC */
} PayoutKeyKind;

extern PayoutKeyKind PayoutKeyKindOf(Oid typid, Oid *typoutput);
extern void PayoutAppendKeyValue(StringInfo buf, PayoutKeyKind kind,
								 Oid typoutput, Datum value);
extern void PayoutAppendRecordField(StringInfo buf, const char *value);

#endif							/* PAYOUT_KEY_H */
