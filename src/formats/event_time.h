/*-------------------------------------------------------------------------
 *
 * event_time.h
 *	  Strict parsing of the timestamps that sources decode: one grammar
 *	  (ISO 8601 / RFC 3339, or epoch numbers), independent of DateStyle.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_EVENT_TIME_H
#define STREAMING_EVENT_TIME_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "pgtime.h"
#include "utils/jsonb.h"

typedef enum EventTimeFormat
{
	EVENT_TIME_ISO8601,			/* 2024-01-02T10:09:03.25+01:00 */
	EVENT_TIME_EPOCH_MS,		/* 1704186543250 */
	EVENT_TIME_EPOCH_S			/* 1704186543.25 */
} EventTimeFormat;

/* how a source's timestamptz columns are read (options of the source) */
typedef struct EventTimeOptions
{
	EventTimeFormat format;		/* "event_time_format" */
	pg_tz	   *tz;				/* "timezone": for times without an offset;
								 * NULL = UTC */
} EventTimeOptions;

/* why EventTimeParse rejected a text */
typedef enum EventTimeError
{
	EVENT_TIME_OK,
	EVENT_TIME_SYNTAX,			/* not the grammar */
	EVENT_TIME_FIELD_RANGE,		/* the grammar, but no such date or time */
	EVENT_TIME_RANGE			/* beyond the range of timestamptz */
} EventTimeError;

/*
 * The event time of one source of a query, as the query's "event_time"
 * argument gives it (EventTimeSpecParse): its column and its watermark
 * delay, or no column when the source has none.
 */
typedef struct EventTimeEntry
{
	Oid			relid;			/* the source */
	char	   *column;			/* its event-time column, or NULL */
	char	   *key;			/* the key of the JSON object that gave it */
	AttrNumber	attno;
	int64		delay;			/* microseconds behind its largest event time */
} EventTimeEntry;

/* the default of option "max_event_time_ahead" */
#define EVENT_TIME_DEFAULT_MAX_AHEAD "1 day"

extern bool EventTimeIsDecodingOption(const char *key);
extern void EventTimeParseOptions(Jsonb *options, EventTimeOptions *out);
extern bool EventTimeMaxAhead(Jsonb *options, int64 *usecs, char **text);
extern EventTimeError EventTimeParse(const EventTimeOptions *opts, const char *str,
									 TimestampTz *result);
extern bool EventTimeParseLocal(const char *str, Timestamp *result);
extern TimestampTz EventTimeInput(const EventTimeOptions *opts, const char *str,
								  const char *column, int32 typmod);
extern char *EventTimeToString(TimestampTz ts);
extern int64 EventTimeDelay(const char *text, const char *what);
extern bool EventTimeIntervalUsecs(const Interval *iv, int64 *usecs);
extern TimestampTz EventTimeWatermark(TimestampTz max_event_time, int64 delay);
extern List *EventTimeSpecParse(const char *spec, List *sources, int64 default_delay,
								bool has_default);
extern EventTimeEntry *EventTimeSpecFind(List *entries, Oid relid);

#endif							/* STREAMING_EVENT_TIME_H */
