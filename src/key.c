/*-------------------------------------------------------------------------
 *
 * key.c
 *	  The canonical text of a payout's primary key.
 *
 * payout.history names a payout by the text of its primary key, and so do
 * payout.claim(), the notifications and payout.timeline().  That text must
 * be the same whoever writes it: a type's output function prints under the
 * writer's DateStyle, TimeZone, extra_float_digits, IntervalStyle or
 * bytea_output, so one payout could get two keys, and two payouts one.
 * Each key column is therefore printed in a fixed form, the one pg_dump
 * would print (DateStyle ISO, TimeZone UTC):
 *
 *	- integers, oid, text, varchar, char, name, uuid, boolean and enum
 *	  labels: their output function, which reads no setting;
 *	- numeric: without trailing fractional zeros, so that 1.0 and 1.00
 *	  (equal keys) print alike;
 *	- date, timestamp: ISO; timestamptz: ISO in UTC, "+00" appended;
 *	- any other type (floating point, interval, bytea, arrays, records,
 *	  types of other extensions) is refused when history is attached.
 *
 * Domains are printed as their base type.  A one-column key is its value's
 * text; a composite key is a row literal, as ROW(a, b)::text writes it.
 * payout.history_key() gives applications the same text.
 *
 * src/key.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "key.h"

/*
 * PayoutKeyKindOf
 *		How a key column of type typid (seen through domains) is printed;
 *		*typoutput is its output function where that is the way.
 */
PayoutKeyKind
PayoutKeyKindOf(Oid typid, Oid *typoutput)
{
	Oid			basetype = getBaseType(typid);
	bool		typisvarlena;

	*typoutput = InvalidOid;
	switch (basetype)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case UUIDOID:
		case BOOLOID:
			getTypeOutputInfo(basetype, typoutput, &typisvarlena);
			return PAYOUT_KEY_OUTPUT;
		case NUMERICOID:
			return PAYOUT_KEY_NUMERIC;
		case DATEOID:
			return PAYOUT_KEY_DATE;
		case TIMESTAMPOID:
			return PAYOUT_KEY_TIMESTAMP;
		case TIMESTAMPTZOID:
			return PAYOUT_KEY_TIMESTAMPTZ;
		default:
			if (type_is_enum(basetype))
			{
				getTypeOutputInfo(basetype, typoutput, &typisvarlena);
				return PAYOUT_KEY_OUTPUT;
			}
			return PAYOUT_KEY_UNSUPPORTED;
	}
}

/*
 * PayoutAppendKeyValue
 *		Append the canonical text of one key value.
 */
void
PayoutAppendKeyValue(StringInfo buf, PayoutKeyKind kind, Oid typoutput,
					 Datum value)
{
	char		text[MAXDATELEN + 1];
	struct pg_tm tm;
	fsec_t		fsec;

	switch (kind)
	{
		case PAYOUT_KEY_OUTPUT:
			appendStringInfoString(buf, OidOutputFunctionCall(typoutput, value));
			return;
		case PAYOUT_KEY_NUMERIC:
			appendStringInfoString(buf, numeric_normalize(DatumGetNumeric(value)));
			return;
		case PAYOUT_KEY_DATE:
			{
				DateADT		date = DatumGetDateADT(value);

				if (DATE_NOT_FINITE(date))
					EncodeSpecialDate(date, text);
				else
				{
					j2date(date + POSTGRES_EPOCH_JDATE,
						   &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
					EncodeDateOnly(&tm, USE_ISO_DATES, text);
				}
				break;
			}
		case PAYOUT_KEY_TIMESTAMP:
		case PAYOUT_KEY_TIMESTAMPTZ:
			{
				Timestamp	ts = DatumGetTimestamp(value);

				/* timestamptz is stored in UTC: print it without a zone */
				if (TIMESTAMP_NOT_FINITE(ts))
					EncodeSpecialTimestamp(ts, text);
				else if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("timestamp out of range")));
				else
					EncodeDateTime(&tm, fsec, kind == PAYOUT_KEY_TIMESTAMPTZ,
								   0, NULL, USE_ISO_DATES, text);
				break;
			}
		case PAYOUT_KEY_UNSUPPORTED:
		default:
			elog(ERROR, "key column type without a canonical text");
	}
	appendStringInfoString(buf, text);
}

/*
 * PayoutAppendRecordField
 *		Append one field of a row literal the way record_out does: quoted
 *		when it is empty or holds a quote, a backslash, a parenthesis, a
 *		comma or white space.
 */
void
PayoutAppendRecordField(StringInfo buf, const char *value)
{
	const char *p;
	bool		quote = (value[0] == '\0');

	for (p = value; *p && !quote; p++)
		quote = (*p == '"' || *p == '\\' || *p == '(' || *p == ')' ||
				 *p == ',' || isspace((unsigned char) *p));
	if (!quote)
	{
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (p = value; *p; p++)
	{
		if (*p == '"' || *p == '\\')
			appendStringInfoChar(buf, *p);
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '"');
}

/*
 * payout.history_key(VARIADIC "any") returns text
 *
 * The key text under which payout.history records the payout whose
 * primary key columns hold these values, in key order.  NULL if any is
 * NULL (a primary key has none).  A type without a canonical text is an
 * error even with NULL values, which lets attach() check key types.
 */
PG_FUNCTION_INFO_V1(payout_history_key);
Datum
payout_history_key(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	int			nargs = PG_NARGS();
	PayoutKeyKind kinds[FUNC_MAX_ARGS];
	Oid			typoutput[FUNC_MAX_ARGS];
	int			i;

	if (get_fn_expr_variadic(fcinfo->flinfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("payout.history_key() does not take a VARIADIC array"),
				 errhint("Pass the key columns as separate arguments.")));

	/* the types first, so that a call with NULLs checks them too */
	for (i = 0; i < nargs; i++)
	{
		Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, i);

		kinds[i] = PayoutKeyKindOf(typid, &typoutput[i]);
		if (kinds[i] == PAYOUT_KEY_UNSUPPORTED)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("type %s cannot be part of a payout key in history",
							format_type_be(typid)),
					 errdetail("Its text depends on the session's settings."),
					 errhint("Use a key of an integer, numeric, text, uuid, date or timestamp type, or attach with history => false.")));
	}

	initStringInfo(&buf);
	for (i = 0; i < nargs; i++)
	{
		StringInfoData field;

		if (PG_ARGISNULL(i))
			PG_RETURN_NULL();
		if (nargs == 1)
		{
			PayoutAppendKeyValue(&buf, kinds[i], typoutput[i], PG_GETARG_DATUM(i));
			break;
		}
		initStringInfo(&field);
		PayoutAppendKeyValue(&field, kinds[i], typoutput[i], PG_GETARG_DATUM(i));
		appendStringInfoChar(&buf, i == 0 ? '(' : ',');
		PayoutAppendRecordField(&buf, field.data);
	}
	if (nargs > 1)
		appendStringInfoChar(&buf, ')');

	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
