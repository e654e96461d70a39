/*-------------------------------------------------------------------------
 *
 * event_time.c
 *	  Strict parsing of the timestamps that sources decode.
 *
 * A source's timestamptz columns (its event time among them) are read
 * with one grammar, whatever the session's DateStyle: timestamptz_in
 * reads "01/02/2024" as January 2 or February 1 depending on DateStyle,
 * takes "now", "epoch" or "Jan 2" and a hundred other spellings, and a
 * watermark that jumps a day ahead on a misread row drops the valid rows
 * that follow as late.  Here a text is one of:
 *
 *	iso8601 (default):
 *		YYYY-MM-DD ("T" | "t" | " ") hh:mm:ss [ "." 1-9 digits ] [ offset ]
 *		offset = "Z" | "z" | ("+" | "-") hh [ [":"] mm ]
 *	  years 0001-9999, hours 00-23, seconds 00-60 (a leap second, as
 *	  timestamptz_in takes it, is the first second of the next minute, and
 *	  may not carry the time of day past 24:00:00),
 *	  offsets up to 15:59; no offset means the source's "timezone" option
 *	  (default UTC).  Digits after the microsecond are rounded as
 *	  timestamptz_in rounds them: the fraction is read as a double and
 *	  rounded to the nearest microsecond, half to even.
 *	epoch_ms / epoch_s:
 *		[ "-" ] digits [ "." 1-9 digits ]
 *	  milliseconds or seconds since 1970-01-01 00:00:00 UTC, rounded to the
 *	  microsecond the same way.
 *
 * The parser writes the TimestampTz directly (this is the hot path of
 * every decoded row) and gives exactly timestamptz_in's answer, with
 * TimeZone set to the source's timezone, for every text it accepts: the
 * same calendar (date2j), the same local-time rule (DetermineTimeZoneOffset)
 * and the same rounding.  sql/event_time.sql checks that on random input.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>

#include "common/int.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "formats/event_time.h"
#include "streaming.h"

PG_FUNCTION_INFO_V1(streaming_parse_event_time);

/* the longest fraction taken: nanoseconds */
#define EVENT_TIME_MAX_FRACTION 9

/* how much of a bad text an error message quotes */
#define EVENT_TIME_QUOTE_LIMIT 64

/*
 * EventTimeIsDecodingOption tells whether key is an event-time option that
 * only a source that decodes records can use (not max_event_time_ahead,
 * which bounds any source's event time).
 */
bool
EventTimeIsDecodingOption(const char *key)
{
	return strcmp(key, "event_time_format") == 0 || strcmp(key, "timezone") == 0;
}

/*
 * EventTimeParseOptions reads and validates "event_time_format" and
 * "timezone".  The time zone is looked up as SET TIME ZONE looks up a zone
 * name (pg_tzset: the names of pg_timezone_names, and POSIX zone specs).
 */
void
EventTimeParseOptions(Jsonb *options, EventTimeOptions *out)
{
	char	   *format = JsonbGetString(options, "event_time_format");
	char	   *zone = JsonbGetString(options, "timezone");

	memset(out, 0, sizeof(*out));
	if (format == NULL || strcmp(format, "iso8601") == 0)
		out->format = EVENT_TIME_ISO8601;
	else if (strcmp(format, "epoch_ms") == 0)
		out->format = EVENT_TIME_EPOCH_MS;
	else if (strcmp(format, "epoch_s") == 0)
		out->format = EVENT_TIME_EPOCH_S;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"event_time_format\": \"%s\"", format),
				 errhint("Valid formats are iso8601, epoch_ms and epoch_s.")));

	if (zone != NULL && pg_strcasecmp(zone, "UTC") != 0)
	{
		pg_tz	   *tz = zone[0] != '\0' ? pg_tzset(zone) : NULL;

		if (tz == NULL || !pg_tz_acceptable(tz))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"timezone\": \"%s\"", zone),
					 errhint("Use a time zone name of pg_timezone_names, such as \"Europe/Berlin\".")));
		out->tz = tz;
	}
}

/*
 * parse_interval reads an interval as interval_in does, its error raised
 * under the name of what it is (an option, a watermark), with a hint; and
 * returns it in microseconds, or false if it has months or is negative.
 */
static bool
parse_interval(const char *s, const char *what, const char *hint, int64 *usecs)
{
	MemoryContext cxt = CurrentMemoryContext;
	Interval   *iv = NULL;

	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(s),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		edata->sqlerrcode = ERRCODE_INVALID_PARAMETER_VALUE;
		edata->detail = edata->message;
		edata->message = psprintf("invalid value for %s: \"%s\"", what, s);
		edata->hint = pstrdup(hint);
		ReThrowError(edata);
	}
	PG_END_TRY();
	return EventTimeIntervalUsecs(iv, usecs);
}

/*
 * EventTimeIntervalUsecs turns a delay into microseconds; false if it has
 * months, is negative or does not fit in 64 bits.
 */
bool
EventTimeIntervalUsecs(const Interval *iv, int64 *usecs)
{
	int64		days;

	return iv->month == 0 && iv->day >= 0 && iv->time >= 0 &&
		!pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days) &&
		!pg_add_s64_overflow(days, iv->time, usecs);
}

/*
 * EventTimeWatermark is a watermark: max_event_time minus delay, or
 * -infinity when that lies before the earliest timestamptz (a delay that
 * long makes no row late).
 */
TimestampTz
EventTimeWatermark(TimestampTz max_event_time, int64 delay)
{
	TimestampTz wm;

	if (pg_sub_s64_overflow(max_event_time, delay, &wm) || !IS_VALID_TIMESTAMP(wm))
		TIMESTAMP_NOBEGIN(wm);
	return wm;
}

/*
 * EventTimeMaxAhead reads "max_event_time_ahead": how far ahead of the
 * clock an event time may be.  False if the check is off (JSON null or
 * "off"); otherwise *usecs is the interval, and *text (if not NULL) the
 * option as written, for messages.
 */
bool
EventTimeMaxAhead(Jsonb *options, int64 *usecs, char **text)
{
	JsonbValue *v = JsonbGetKey(options, "max_event_time_ahead");
	const char *hint = "Use a fixed, non-negative interval such as '1 day' or '10 minutes' (no months or years), or \"off\".";
	char	   *s;

	if (v != NULL && v->type == jbvNull)
		return false;
	s = v == NULL ? pstrdup(EVENT_TIME_DEFAULT_MAX_AHEAD) : JsonbGetString(options, "max_event_time_ahead");
	if (pg_strcasecmp(s, "off") == 0)
		return false;
	if (!parse_interval(s, "option \"max_event_time_ahead\"", hint, usecs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"max_event_time_ahead\": \"%s\"", s),
				 errhint("%s", hint)));
	if (text != NULL)
		*text = s;
	return true;
}

/*
 * EventTimeDelay reads a watermark delay written as text (what names it in
 * messages): a non-negative interval without months, in microseconds.
 */
int64
EventTimeDelay(const char *text, const char *what)
{
	const char *hint = "Use a non-negative interval without months, e.g. '10 seconds' or '1 hour'.";
	int64		usecs;

	if (!parse_interval(text, what, hint, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("watermark delay must be a non-negative interval without months"),
				 errdetail("%s is \"%s\".", what, text),
				 errhint("%s", hint)));
	return usecs;
}

/* ------------------------------------------------------------------------
 * The event time of each source of a query
 * ------------------------------------------------------------------------ */

/*
 * source_named returns the source of sources that name denotes (its name,
 * or its schema-qualified name), or InvalidOid.  A name that denotes two
 * sources (of the same name in two schemas, or "a.b" as the source "a.b"
 * and as the source "b" of schema "a") is an error: the schema-qualified
 * name tells them apart.
 */
static Oid
source_named(List *sources, const char *name)
{
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, sources)
	{
		Oid			relid = lfirst_oid(lc);

		if (strcmp(get_rel_name(relid), name) != 0 &&
			strcmp(psprintf("%s.%s", get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
				   name) != 0)
			continue;
		if (OidIsValid(found))
			ereport(ERROR,
					(errcode(ERRCODE_AMBIGUOUS_ALIAS),
					 errmsg("event_time names \"%s\", which is ambiguous", name),
					 errdetail("It denotes sources %s and %s of the query.",
							   RelationQualifiedName(found), RelationQualifiedName(relid)),
					 errhint("Key the object by the schema-qualified name of the source.")));
		found = relid;
	}
	return found;
}

/*
 * event_time_column checks that column is a timestamptz column of source
 * relid and returns its number; several says whether the query reads
 * other sources too, for the hint.
 */
static AttrNumber
event_time_column(Oid relid, const char *column, bool several)
{
	AttrNumber	attnum = get_attnum(relid, column);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("event_time column \"%s\" does not exist in source \"%s\"",
						column, get_rel_name(relid)),
				 several ? errhint("Give each source's event-time column in a JSON object keyed by source name, e.g. event_time => '{\"%s\": \"ts\"}'; a source left out has no event time.",
								   get_rel_name(relid))
				 : errhint("Name a timestamptz column of the source.")));
	if (get_atttype(relid, attnum) != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("event_time column \"%s\" must be of type timestamp with time zone", column),
				 errdetail("It is a column of source \"%s\".", get_rel_name(relid)),
				 errhint("Declare the column as timestamptz in the source's schema.")));
	return attnum;
}

/*
 * EventTimeSpecParse reads the "event_time" argument of a query over
 * sources (their relations, each once) and returns one EventTimeEntry per
 * source, in their order.  The argument is a column name, which every
 * source must have, or a JSON object keyed by source name whose values are
 * a column name or {"column": ..., "watermark": ...} (a delay of its own).
 * A source the object leaves out has no event time: like a stream without
 * withWatermark in Spark, it neither drops late rows nor holds the query's
 * watermark back.  Entries without a delay of their own take default_delay
 * (the query's "watermark"), which has_default says was given.
 */
List *
EventTimeSpecParse(const char *spec, List *sources, int64 default_delay, bool has_default)
{
	List	   *entries = NIL;
	ListCell   *lc;
	const char *p = spec;
	Jsonb	   *obj;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	bool		any = false;

	foreach(lc, sources)
	{
		EventTimeEntry *e = palloc0(sizeof(EventTimeEntry));

		e->relid = lfirst_oid(lc);
		e->delay = default_delay;
		entries = lappend(entries, e);
	}
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p != '{')
	{
		/* one column name: every source's */
		foreach(lc, entries)
		{
			EventTimeEntry *e = lfirst(lc);

			e->attno = event_time_column(e->relid, spec, list_length(sources) > 1);
			e->column = pstrdup(spec);
		}
		if (!has_default)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_time and watermark must be given together"),
					 errhint("The watermark is a delay behind the largest event time seen, e.g. event_time => 'ts', watermark => '10 minutes'.")));
		return entries;
	}

	obj = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(spec)));
	if (!JB_ROOT_IS_OBJECT(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_time must be a column name or a JSON object keyed by source name")));
	it = JsonbIteratorInit(&obj->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		Oid			relid;
		EventTimeEntry *e;
		char	   *column = NULL;
		char	   *delay = NULL;

		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		relid = source_named(sources, key);
		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("event_time names \"%s\", which is not a source of the query", key),
					 errhint("Key the object by the names of the sources the query reads.")));
		e = EventTimeSpecFind(entries, relid);
		if (e->column != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("event_time gives the event time of source %s twice", RelationQualifiedName(relid)),
					 errdetail("Keys \"%s\" and \"%s\" both name it.", e->key, key),
					 errhint("Give each source's event time once.")));
		e->key = key;
		if (v.type == jbvString)
			column = pnstrdup(v.val.string.val, v.val.string.len);
		else if (v.type == jbvBinary)
		{
			Jsonb	   *entry = JsonbValueToJsonb(&v);
			JsonbIterator *eit = JsonbIteratorInit(&entry->root);
			JsonbValue	ev;

			while ((tok = JsonbIteratorNext(&eit, &ev, true)) != WJB_DONE)
				if (tok == WJB_KEY &&
					!(ev.val.string.len == 6 && strncmp(ev.val.string.val, "column", 6) == 0) &&
					!(ev.val.string.len == 9 && strncmp(ev.val.string.val, "watermark", 9) == 0))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("unknown key \"%.*s\" in the event time of source \"%s\"",
									ev.val.string.len, ev.val.string.val, key),
							 errhint("A source's event time is {\"column\": \"ts\"} or {\"column\": \"ts\", \"watermark\": \"1 minute\"}.")));
			if (JB_ROOT_IS_OBJECT(entry))
			{
				column = JsonbGetString(entry, "column");
				delay = JsonbGetString(entry, "watermark");
			}
		}
		if (column == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the event time of source \"%s\" must name its column", key),
					 errhint("Give a column name, or {\"column\": \"ts\", \"watermark\": \"1 minute\"}.")));
		e->attno = event_time_column(relid, column, list_length(sources) > 1);
		e->column = column;
		if (delay != NULL)
			e->delay = EventTimeDelay(delay, psprintf("the watermark of source \"%s\"", key));
		else if (!has_default)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source \"%s\" has no watermark delay", key),
					 errhint("Give the query's watermark, the delay of the sources that give none, or a \"watermark\" for this source.")));
		any = true;
	}
	if (!any)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_time names no source"),
				 errhint("Key the object by the names of the sources the query reads, e.g. '{\"%s\": \"ts\"}'.",
						 get_rel_name(linitial_oid(sources)))));
	return entries;
}

/* EventTimeSpecFind returns the entry of source relid, or NULL */
EventTimeEntry *
EventTimeSpecFind(List *entries, Oid relid)
{
	ListCell   *lc;

	foreach(lc, entries)
		if (((EventTimeEntry *) lfirst(lc))->relid == relid)
			return lfirst(lc);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------ */

/* a decimal digit, whatever the locale says of other bytes */
#define IS_DIGIT(c) ((unsigned char) ((c) - '0') <= 9)

/* two_digits reads exactly two decimal digits */
static inline bool
two_digits(const char *p, int *value)
{
	if (!IS_DIGIT(p[0]) || !IS_DIGIT(p[1]))
		return false;
	*value = (p[0] - '0') * 10 + (p[1] - '0');
	return true;
}

/*
 * parse_fraction reads the digits after a decimal point (1 to
 * EVENT_TIME_MAX_FRACTION of them, at *p) as a count of units of
 * 10^-scale, and advances *p past them.  Up to scale digits are exact;
 * more are rounded as timestamptz_in's ParseFractionalSecond rounds them
 * (strtod of the fraction, times 10^scale, rint).  The result may equal
 * 10^scale (.9999999 seconds rounds up to a whole second).
 */
static bool
parse_fraction(const char **p, int scale, int64 *units)
{
	const char *s = *p;
	int			n = 0;
	int64		v = 0;

	while (IS_DIGIT(s[n]))
	{
		if (n >= EVENT_TIME_MAX_FRACTION)
			return false;
		v = v * 10 + (s[n] - '0');
		n++;
	}
	if (n == 0)
		return false;
	if (n <= scale)
	{
		for (int i = n; i < scale; i++)
			v *= 10;
		*units = v;
	}
	else
	{
		char		buf[EVENT_TIME_MAX_FRACTION + 2];

		buf[0] = '.';
		memcpy(buf + 1, s, n);
		buf[n + 1] = '\0';
		*units = (int64) rint(strtod(buf, NULL) * pow(10, scale));
	}
	*p = s + n;
	return true;
}

/* the fields of an ISO 8601 text, as parse_iso8601_fields reads them */
typedef struct Iso8601Fields
{
	int			year;
	int			mon;
	int			mday;
	int			hour;
	int			min;
	int			sec;
	int64		time;			/* time of day in microseconds, fraction included */
	bool		has_offset;
	int			tz;				/* seconds west of UTC, as PostgreSQL counts */
} Iso8601Fields;

/*
 * parse_iso8601_fields reads the ISO 8601 grammar (see the file header)
 * and checks the fields' ranges; the text must end after it.
 */
static EventTimeError
parse_iso8601_fields(const char *p, Iso8601Fields *f)
{
	int			y2;
	int64		fsec = 0;

	f->has_offset = false;
	f->tz = 0;
	/* YYYY-MM-DD */
	if (!two_digits(p, &f->year) || !two_digits(p + 2, &y2) || p[4] != '-' ||
		!two_digits(p + 5, &f->mon) || p[7] != '-' || !two_digits(p + 8, &f->mday))
		return EVENT_TIME_SYNTAX;
	f->year = f->year * 100 + y2;
	p += 10;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return EVENT_TIME_SYNTAX;
	p++;
	/* hh:mm:ss[.fraction] */
	if (!two_digits(p, &f->hour) || p[2] != ':' || !two_digits(p + 3, &f->min) ||
		p[5] != ':' || !two_digits(p + 6, &f->sec))
		return EVENT_TIME_SYNTAX;
	p += 8;
	if (*p == '.')
	{
		p++;
		if (!parse_fraction(&p, 6, &fsec))
			return EVENT_TIME_SYNTAX;
	}
	/* offset */
	if (*p == 'Z' || *p == 'z')
	{
		f->has_offset = true;
		p++;
	}
	else if (*p == '+' || *p == '-')
	{
		int			sign = *p == '+' ? 1 : -1;
		int			oh;
		int			om = 0;

		p++;
		if (!two_digits(p, &oh))
			return EVENT_TIME_SYNTAX;
		p += 2;
		if (*p == ':')
		{
			if (!two_digits(p + 1, &om))
				return EVENT_TIME_SYNTAX;
			p += 3;
		}
		else if (IS_DIGIT(*p))
		{
			if (!two_digits(p, &om))
				return EVENT_TIME_SYNTAX;
			p += 2;
		}
		if (oh > MAX_TZDISP_HOUR || om >= MINS_PER_HOUR)
			return EVENT_TIME_FIELD_RANGE;
		f->has_offset = true;
		f->tz = -sign * (oh * SECS_PER_HOUR + om * SECS_PER_MINUTE);
	}
	if (*p != '\0')
		return EVENT_TIME_SYNTAX;

	if (f->year < 1 || f->mon < 1 || f->mon > MONTHS_PER_YEAR ||
		f->mday < 1 || f->mday > day_tab[isleap(f->year)][f->mon - 1] ||
		f->hour >= HOURS_PER_DAY || f->min >= MINS_PER_HOUR || f->sec > SECS_PER_MINUTE)
		return EVENT_TIME_FIELD_RANGE;
	/* a leap second may end the day, not pass it (time_overflows) */
	f->time = (((int64) f->hour * MINS_PER_HOUR + f->min) * SECS_PER_MINUTE + f->sec) * USECS_PER_SEC + fsec;
	if (f->time > USECS_PER_DAY)
		return EVENT_TIME_FIELD_RANGE;
	return EVENT_TIME_OK;
}

/*
 * parse_iso8601 reads the ISO 8601 grammar (see the file header).
 */
static EventTimeError
parse_iso8601(const EventTimeOptions *opts, const char *p, TimestampTz *result)
{
	Iso8601Fields f;
	EventTimeError err = parse_iso8601_fields(p, &f);

	if (err != EVENT_TIME_OK)
		return err;

	/* local time without an offset: the source's zone, as DecodeDateTime does */
	if (!f.has_offset && opts->tz != NULL)
	{
		struct pg_tm tm;

		memset(&tm, 0, sizeof(tm));
		tm.tm_year = f.year;
		tm.tm_mon = f.mon;
		tm.tm_mday = f.mday;
		tm.tm_hour = f.hour;
		tm.tm_min = f.min;
		tm.tm_sec = f.sec;
		f.tz = DetermineTimeZoneOffset(&tm, opts->tz);
	}

	/* as tm2timestamp: local date and time, then the zone */
	*result = (TimestampTz) (date2j(f.year, f.mon, f.mday) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY +
		f.time + (int64) f.tz * USECS_PER_SEC;
	return EVENT_TIME_OK;
}

/*
 * EventTimeParseLocal reads a timestamp without time zone in the ISO 8601
 * grammar without an offset (the date and time alone); false for any other
 * text, which the caller then gives to timestamp_in.  The value is
 * timestamp_in's for every text accepted (the same calendar and rounding;
 * no time zone, so no dependence on TimeZone).
 */
bool
EventTimeParseLocal(const char *str, Timestamp *result)
{
	Iso8601Fields f;

	if (parse_iso8601_fields(str, &f) != EVENT_TIME_OK || f.has_offset)
		return false;
	*result = (Timestamp) (date2j(f.year, f.mon, f.mday) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY +
		f.time;
	return true;
}

/*
 * parse_epoch reads [-]digits[.digits] as milliseconds (ms) or seconds
 * since the Unix epoch.
 */
static EventTimeError
parse_epoch(const char *p, bool ms, TimestampTz *result)
{
	bool		neg = false;
	int64		whole = 0;
	int64		frac = 0;
	int64		usecs;
	int64		unit = ms ? 1000 : USECS_PER_SEC;
	const char *start;

	if (*p == '-')
	{
		neg = true;
		p++;
	}
	start = p;
	while (IS_DIGIT(*p))
	{
		if (pg_mul_s64_overflow(whole, 10, &whole) ||
			pg_add_s64_overflow(whole, *p - '0', &whole))
			return EVENT_TIME_RANGE;
		p++;
	}
	if (p == start)
		return EVENT_TIME_SYNTAX;
	if (*p == '.')
	{
		p++;
		if (!parse_fraction(&p, ms ? 3 : 6, &frac))
			return EVENT_TIME_SYNTAX;
	}
	if (*p != '\0')
		return EVENT_TIME_SYNTAX;
	if (pg_mul_s64_overflow(whole, unit, &usecs) ||
		pg_add_s64_overflow(usecs, frac, &usecs))
		return EVENT_TIME_RANGE;
	if (neg)
		usecs = -usecs;
	/* Unix epoch to PostgreSQL epoch */
	if (pg_sub_s64_overflow(usecs, (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY,
							result) ||
		!IS_VALID_TIMESTAMP(*result))
		return EVENT_TIME_RANGE;
	return EVENT_TIME_OK;
}

/*
 * EventTimeParse reads one text in the source's event-time format.  It
 * raises no error: the caller decides what a rejected text means.
 */
EventTimeError
EventTimeParse(const EventTimeOptions *opts, const char *str, TimestampTz *result)
{
	switch (opts->format)
	{
		case EVENT_TIME_ISO8601:
			return parse_iso8601(opts, str, result);
		case EVENT_TIME_EPOCH_MS:
			return parse_epoch(str, true, result);
		case EVENT_TIME_EPOCH_S:
			return parse_epoch(str, false, result);
	}
	return EVENT_TIME_SYNTAX;
}

/* quoted: the start of a bad text, for a message */
static char *
quoted(const char *str)
{
	int			len = strlen(str);

	if (len <= EVENT_TIME_QUOTE_LIMIT)
		return pstrdup(str);
	len = pg_mbcliplen(str, len, EVENT_TIME_QUOTE_LIMIT);
	return psprintf("%.*s...", len, str);
}

static const char *
expected(EventTimeFormat format)
{
	switch (format)
	{
		case EVENT_TIME_ISO8601:
			return "ISO 8601 such as 2024-01-02T10:09:03Z";
		case EVENT_TIME_EPOCH_MS:
			return "epoch milliseconds such as 1704190143000";
		case EVENT_TIME_EPOCH_S:
			return "epoch seconds such as 1704190143";
	}
	return "";
}

/*
 * EventTimeInput converts the text of a timestamptz column of a source,
 * with the column's typmod applied as timestamptz_in applies it.  A text
 * outside the grammar is an error that says what was expected, which the
 * decoders turn into a dead letter.
 */
TimestampTz
EventTimeInput(const EventTimeOptions *opts, const char *str, const char *column, int32 typmod)
{
	TimestampTz result;

	switch (EventTimeParse(opts, str, &result))
	{
		case EVENT_TIME_OK:
			break;
		case EVENT_TIME_SYNTAX:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("invalid event time \"%s\" in column \"%s\": expected %s",
							quoted(str), column, expected(opts->format))));
			break;
		case EVENT_TIME_FIELD_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_FIELD_OVERFLOW),
					 errmsg("invalid event time \"%s\" in column \"%s\": a date, time or offset field is out of range",
							quoted(str), column)));
			break;
		case EVENT_TIME_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("invalid event time \"%s\" in column \"%s\": out of the range of timestamp with time zone",
							quoted(str), column)));
			break;
	}
	if (typmod >= 0 && typmod < MAX_TIMESTAMP_PRECISION)
		result = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_scale,
														 TimestampTzGetDatum(result),
														 Int32GetDatum(typmod)));
	return result;
}

/*
 * EventTimeToString renders a timestamp in ISO 8601, UTC, for messages
 * that must not depend on the session's DateStyle or TimeZone.
 */
char *
EventTimeToString(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup(TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity");
	if (fsec != 0)
		return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
						tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * streaming_parse_event_time(text, format text, timezone text) returns the
 * timestamptz that a source with these options reads from the text, or
 * NULL if it rejects it.  No SQL object of the extension calls it: the
 * test suite declares it, to compare the parser with timestamptz_in.
 */
Datum
streaming_parse_event_time(PG_FUNCTION_ARGS)
{
	EventTimeOptions opts;
	char	   *str;
	TimestampTz result;
	StringInfoData options;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	str = text_to_cstring(PG_GETARG_TEXT_PP(0));
	initStringInfo(&options);
	appendStringInfoString(&options, "{\"event_time_format\": ");
	escape_json(&options, PG_ARGISNULL(1) ? "iso8601" : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	appendStringInfoString(&options, ", \"timezone\": ");
	escape_json(&options, PG_ARGISNULL(2) ? "UTC" : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	appendStringInfoChar(&options, '}');
	EventTimeParseOptions(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(options.data))),
						  &opts);
	if (EventTimeParse(&opts, str, &result) != EVENT_TIME_OK)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(result);
}
