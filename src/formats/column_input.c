/*-------------------------------------------------------------------------
 *
 * column_input.c
 *	  Converting the text of a column of a decoded record into its Datum.
 *
 * Every decoded value goes through here, so the common column types are
 * written straight from the record's bytes: smallint, integer, bigint,
 * double precision, boolean, text, varchar and timestamp (timestamptz
 * columns are read by the source's event-time grammar, event_time.c).
 * Each fast path either is sure, because the text has a form whose value
 * it computes exactly as the type's input function would, or does not
 * know; then the input function itself reads the text, and gives the value
 * or the error.  A fast path never rejects a text, so bad values fail with
 * the input function's own message, as dead letters of the same text.
 * Domains, typmods that change values and every other type take the input
 * function.  t/042_decode_fast_paths.pl compares both on many values.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "formats/decoder.h"

/* a decimal digit, whatever the locale says of other bytes */
#define IS_DIGIT(c) ((unsigned char) ((c) - '0') <= 9)

/* the longest float8 text taken: too short to overflow or underflow */
#define FAST_FLOAT8_MAX_LEN 32

/*
 * fast_kind_of: the fast path of a column of type type and typmod typmod
 * (not a domain: domain_in checks constraints).
 */
static FastInputKind
fast_kind_of(Oid type, int32 typmod)
{
	switch (type)
	{
		case INT2OID:
			return FAST_INPUT_INT2;
		case INT4OID:
			return FAST_INPUT_INT4;
		case INT8OID:
			return FAST_INPUT_INT8;
		case FLOAT8OID:
			return FAST_INPUT_FLOAT8;
		case BOOLOID:
			return FAST_INPUT_BOOL;
		case TEXTOID:
			return FAST_INPUT_TEXT;
		case VARCHAROID:
			return FAST_INPUT_VARCHAR;
		case TIMESTAMPOID:
			/* a precision below microseconds rounds: timestamp_in does that */
			if (typmod >= 0 && typmod < MAX_TIMESTAMP_PRECISION)
				return FAST_INPUT_NONE;
			return FAST_INPUT_TIMESTAMP;
		default:
			return FAST_INPUT_NONE;
	}
}

/*
 * fast_integer reads [+-] followed by 1 to maxdigits decimal digits and
 * nothing else: few enough digits that the value cannot overflow the
 * type, so pg_strtoint16/32/64 would return the same value.
 */
static inline bool
fast_integer(const char *s, int len, int maxdigits, int64 *result)
{
	int64		v = 0;
	bool		neg = false;
	int			i = 0;

	if (len > 0 && (s[0] == '-' || s[0] == '+'))
	{
		neg = s[0] == '-';
		i = 1;
	}
	if (len - i < 1 || len - i > maxdigits)
		return false;
	for (; i < len; i++)
	{
		if (!IS_DIGIT(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*result = neg ? -v : v;
	return true;
}

/*
 * fast_float8 reads [-] digits [ "." digits ], at most
 * FAST_FLOAT8_MAX_LEN bytes: strtod cannot overflow or underflow on it,
 * and float8in's answer is then strtod's.
 */
static inline bool
fast_float8(const char *s, int len, double *result)
{
	int			i = 0;
	int			start;

	if (len > FAST_FLOAT8_MAX_LEN)
		return false;
	if (i < len && s[i] == '-')
		i++;
	start = i;
	while (i < len && IS_DIGIT(s[i]))
		i++;
	if (i == start)
		return false;
	if (i < len && s[i] == '.')
	{
		start = ++i;
		while (i < len && IS_DIGIT(s[i]))
			i++;
		if (i == start)
			return false;
	}
	if (i != len)
		return false;
	*result = strtod(s, NULL);
	return true;
}

/*
 * fast_input converts text (len bytes, NUL-terminated there, no NUL
 * before) to a Datum of the column's type if it is sure of the value;
 * false if the input function must read it.
 */
static inline bool
fast_input(FastInputKind kind, const char *s, int len, int32 typmod, Datum *result)
{
	int64		i;
	double		d;
	Timestamp	ts;

	switch (kind)
	{
		case FAST_INPUT_NONE:
			return false;
		case FAST_INPUT_INT2:
			if (!fast_integer(s, len, 4, &i))
				return false;
			*result = Int16GetDatum((int16) i);
			return true;
		case FAST_INPUT_INT4:
			if (!fast_integer(s, len, 9, &i))
				return false;
			*result = Int32GetDatum((int32) i);
			return true;
		case FAST_INPUT_INT8:
			if (!fast_integer(s, len, 18, &i))
				return false;
			*result = Int64GetDatum(i);
			return true;
		case FAST_INPUT_FLOAT8:
			if (!fast_float8(s, len, &d))
				return false;
			*result = Float8GetDatum(d);
			return true;
		case FAST_INPUT_BOOL:
			/* boolin's most common spellings, exactly */
			if ((len == 4 && memcmp(s, "true", 4) == 0) || (len == 1 && s[0] == 't'))
				*result = BoolGetDatum(true);
			else if ((len == 5 && memcmp(s, "false", 5) == 0) || (len == 1 && s[0] == 'f'))
				*result = BoolGetDatum(false);
			else
				return false;
			return true;
		case FAST_INPUT_VARCHAR:
			/* bytes are at least characters: within the limit, nothing to check */
			if (typmod >= (int32) VARHDRSZ && len > typmod - (int32) VARHDRSZ)
				return false;
			/* FALLTHROUGH */
		case FAST_INPUT_TEXT:
			*result = PointerGetDatum(cstring_to_text_with_len(s, len));
			return true;
		case FAST_INPUT_TIMESTAMP:
			if (!EventTimeParseLocal(s, &ts))
				return false;
			*result = TimestampGetDatum(ts);
			return true;
	}
	return false;
}

/*
 * ColumnInputsInit looks up how to convert the text of each column: the
 * type's input function, except for timestamptz columns (and domains over
 * timestamptz), which are read by the source's event-time grammar rather
 * than by timestamptz_in and its DateStyle; and the fast path, if any.
 */
void
ColumnInputsInit(ColumnInputs *ci, TupleDesc tupdesc, const FormatOptions *opts)
{
	int			n = Max(tupdesc->natts, 1);

	ci->natts = tupdesc->natts;
	ci->infuncs = palloc0(sizeof(FmgrInfo) * n);
	ci->ioparams = palloc0(sizeof(Oid) * n);
	ci->typmods = palloc0(sizeof(int32) * n);
	ci->dropped = palloc0(sizeof(bool) * n);
	ci->event_time = palloc0(sizeof(bool) * n);
	ci->fast = palloc0(sizeof(FastInputKind) * n);
	ci->names = palloc0(sizeof(char *) * n);
	ci->domain_info = palloc0(sizeof(void *) * n);
	ci->types = palloc0(sizeof(Oid) * n);
	ci->event_time_opts = opts->event_time;
	ci->mcxt = CurrentMemoryContext;
	for (int i = 0; i < ci->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Oid			infunc;
		int32		base_typmod = att->atttypmod;

		ci->dropped[i] = att->attisdropped;
		if (att->attisdropped)
			continue;
		ci->names[i] = NameStr(att->attname);
		ci->types[i] = att->atttypid;
		if (getBaseTypeAndTypmod(att->atttypid, &base_typmod) == TIMESTAMPTZOID)
		{
			ci->event_time[i] = true;
			ci->typmods[i] = base_typmod;
			continue;
		}
		getTypeInputInfo(att->atttypid, &infunc, &ci->ioparams[i]);
		fmgr_info(infunc, &ci->infuncs[i]);
		ci->typmods[i] = att->atttypmod;
		ci->fast[i] = fast_kind_of(att->atttypid, att->atttypmod);
	}
}

/*
 * ColumnInputLen converts the text of a column: len bytes, NUL-terminated
 * at len, with no NUL before (NULL: SQL NULL, which only a domain can
 * reject).
 */
Datum
ColumnInputLen(ColumnInputs *ci, int attno, char *text, int len)
{
	Datum		value = (Datum) 0;

	if (!ci->event_time[attno])
	{
		if (text != NULL && fast_input(ci->fast[attno], text, len, ci->typmods[attno], &value))
			return value;
		return InputFunctionCall(&ci->infuncs[attno], text, ci->ioparams[attno], ci->typmods[attno]);
	}
	if (text != NULL)
		value = TimestampTzGetDatum(EventTimeInput(&ci->event_time_opts, text, ci->names[attno],
												   ci->typmods[attno]));
	if (ci->types[attno] != TIMESTAMPTZOID)
		domain_check(value, text == NULL, ci->types[attno], &ci->domain_info[attno], ci->mcxt);
	return value;
}

/* ColumnInput converts a NUL-terminated text (NULL: SQL NULL) */
Datum
ColumnInput(ColumnInputs *ci, int attno, char *text)
{
	return ColumnInputLen(ci, attno, text, text != NULL ? (int) strlen(text) : 0);
}
