/*-------------------------------------------------------------------------
 *
 * rate_source.c
 *	  The rate source: generated rows (timestamp, value), for tests,
 *	  demos and benchmarks, as Spark's rate source.
 *
 * Two variants:
 *	- rows_per_second (and ramp_up_time): the rows due since the query's
 *	  first batch; value v is due at start + v / rows_per_second.  The
 *	  source's clock ticks every RATE_TICK: a batch takes the rows due by
 *	  the last tick, and a source with none due tells the worker when the
 *	  next one is, so that a query with trigger '0' runs at most one batch
 *	  a tick and sleeps in between, however many rows a second it makes.
 *	- rows_per_batch (with start_timestamp and advance_millis_per_batch):
 *	  batch b holds values [b * n, (b + 1) * n), all stamped start_timestamp
 *	  + b * advance_millis_per_batch, identical on every run.
 *
 * Its offsets, in streaming.offsets, are the next value, and the start
 * time or the next batch index, so a restart goes on where it stopped.
 *
 * Every numeric option has an upper bound (RATE_MAX_ROWS and the like), and
 * a batch never holds more than RATE_MAX_ROWS rows: rows due by the clock
 * beyond that (after a long stop) wait for the next batches.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "source.h"
#include "streaming.h"

/* the most rows per second, per batch, and in one batch */
#define RATE_MAX_ROWS			10000000
/* the longest ramp_up_time, in seconds, and advance_millis_per_batch */
#define RATE_MAX_RAMP_UP_SECONDS 86400
#define RATE_MAX_ADVANCE_MILLIS	((int64) 86400 * 1000)
/* the clock of rows_per_second: rows come out a tenth of a second at a time */
#define RATE_TICK				(USECS_PER_SEC / 10)
/* with rows_per_second 0, look again now and then (nothing will come) */
#define RATE_NEVER_CHECK		(10 * USECS_PER_SEC)

/* every option of a rate source: checked, and listed by the hint */
static const char *const rate_options[] = {
	"rows_per_second", "ramp_up_time", "rows_per_batch", "start_timestamp",
	"advance_millis_per_batch", "max_event_time_ahead", NULL
};

typedef struct RatePlan
{
	int64		first_value;
	int64		nrows;
	TimestampTz start;			/* time-based: the query's first batch */
	double		rows_per_second;
	TimestampTz batch_time;		/* deterministic: this batch's timestamp */
	bool		deterministic;
	AttrNumber	ts_att;
	AttrNumber	value_att;
} RatePlan;

static int64
rows_per_second(Jsonb *options)
{
	return SourceGetIntOption(options, "rows_per_second", 1, 0, RATE_MAX_ROWS);
}

static int64
rows_per_batch(Jsonb *options)
{
	return SourceGetIntOption(options, "rows_per_batch", 1, 1, RATE_MAX_ROWS);
}

static int64
advance_millis_per_batch(Jsonb *options)
{
	return SourceGetIntOption(options, "advance_millis_per_batch", 1000, 0, RATE_MAX_ADVANCE_MILLIS);
}

/*
 * ramp_up_seconds reads ramp_up_time: a number of seconds, or an interval
 * without months, from 0 to RATE_MAX_RAMP_UP_SECONDS.
 */
static int64
ramp_up_seconds(Jsonb *options)
{
	JsonbValue *v = JsonbGetKey(options, "ramp_up_time");
	char	   *text;
	Interval   *iv;
	int64		usecs;

	/* a number, or a string of digits, is a number of seconds */
	if (v == NULL || v->type != jbvString)
		return SourceGetIntOption(options, "ramp_up_time", 0, 0, RATE_MAX_RAMP_UP_SECONDS);
	text = JsonbValueAsText(v);
	if (text[0] == '\0' || strspn(text, "0123456789") == strlen(text))
		return SourceGetIntOption(options, "ramp_up_time", 0, 0, RATE_MAX_RAMP_UP_SECONDS);
	iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(text),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	if (iv->month != 0 || iv->time < 0 || iv->day < 0 ||
		iv->day > RATE_MAX_RAMP_UP_SECONDS / SECS_PER_DAY ||
		(usecs = iv->time + (int64) iv->day * USECS_PER_DAY) > RATE_MAX_RAMP_UP_SECONDS * USECS_PER_SEC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"ramp_up_time\": \"%s\"", text),
				 errhint("Use a number of seconds, or an interval such as '10 seconds', from 0 to %d seconds.",
						 RATE_MAX_RAMP_UP_SECONDS)));
	return usecs / USECS_PER_SEC;
}

static TimestampTz
start_timestamp(Jsonb *options)
{
	char	   *text = JsonbGetString(options, "start_timestamp");
	TimestampTz ts;

	if (text == NULL)
		return (TimestampTz) -((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
												 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"start_timestamp\": \"%s\"", text),
				 errhint("Use a finite timestamp.")));
	return ts;
}

/*
 * batch_timestamp is the timestamp of the rows of deterministic batch
 * number index: start + index * advance; an error once it would leave the
 * range of timestamptz.
 */
static TimestampTz
batch_timestamp(Jsonb *options, int64 index)
{
	int64		step;
	int64		ts;

	if (pg_mul_s64_overflow(index, advance_millis_per_batch(options) * 1000, &step) ||
		pg_add_s64_overflow(start_timestamp(options), step, &ts) ||
		!IS_VALID_TIMESTAMP(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp of rate batch " INT64_FORMAT " is out of range", index),
				 errhint("Use a smaller advance_millis_per_batch or an earlier start_timestamp.")));
	return ts;
}

/*
 * rate_validate checks the options: one variant or the other.
 */
static void
rate_validate(Jsonb *options)
{
	bool		per_batch = JsonbGetKey(options, "rows_per_batch") != NULL;

	SourceCheckOptionKeys(options, "source kind \"rate\"", rate_options, NULL);
	if (per_batch && (JsonbGetKey(options, "rows_per_second") != NULL ||
					  JsonbGetKey(options, "ramp_up_time") != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"rows_per_batch\" and \"rows_per_second\" exclude each other"),
				 errhint("Use rows_per_second (and ramp_up_time) for rows by the clock, or rows_per_batch, start_timestamp and advance_millis_per_batch for identical batches on every run.")));
	if (!per_batch && (JsonbGetKey(options, "start_timestamp") != NULL ||
					   JsonbGetKey(options, "advance_millis_per_batch") != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"start_timestamp\" and \"advance_millis_per_batch\" need \"rows_per_batch\"")));
	(void) rows_per_second(options);
	(void) ramp_up_seconds(options);
	(void) rows_per_batch(options);
	(void) advance_millis_per_batch(options);
	(void) start_timestamp(options);
}

static void
rate_check_schema(Jsonb *options, TupleDesc desc)
{
	if (SourceFindColumn(desc, "timestamp", TIMESTAMPTZOID) == InvalidAttrNumber ||
		SourceFindColumn(desc, "value", INT8OID) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a rate source has the columns \"timestamp\" timestamptz and \"value\" bigint"),
				 errhint("Leave out the schema to get them.")));
}

static Jsonb *
offset_jsonb(int64 value)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(psprintf("{\"value\": " INT64_FORMAT "}", value))));
}

/*
 * rows_due is how many rows are due elapsed seconds after the start, with a
 * linear ramp up to the full rate over ramp seconds.
 */
static int64
rows_due(double rps, double ramp, double elapsed)
{
	if (elapsed <= 0)
		return 0;
	if (ramp > 0 && elapsed < ramp)
		return (int64) (rps * elapsed * elapsed / (2 * ramp));
	return (int64) (rps * (ramp / 2 + (elapsed - ramp)));
}

/*
 * seconds_until_due is the time after the start, in seconds, at which row
 * v falls due (the inverse of rows_due), or -1 if it never does.
 */
static double
seconds_until_due(double rps, double ramp, int64 v)
{
	double		n = (double) v + 1;

	if (rps <= 0)
		return -1;
	if (ramp > 0 && n <= rps * ramp / 2)
		return sqrt(2 * ramp * n / rps);
	return n / rps + ramp / 2;
}

static bool
rate_plan_batch(SourceBatch *batch)
{
	MemoryContext old = MemoryContextSwitchTo(batch->mcxt);
	RatePlan   *plan = palloc0(sizeof(RatePlan));
	TupleDesc	desc = RelationGetDescr(batch->rel);
	bool		found;

	plan->ts_att = SourceFindColumn(desc, "timestamp", TIMESTAMPTZOID);
	plan->value_att = SourceFindColumn(desc, "value", INT8OID);
	plan->first_value = SourceCommittedOffset(batch, "value", 0, &found);

	if (JsonbGetKey(batch->options, "rows_per_batch") != NULL)
	{
		int64		n = rows_per_batch(batch->options);
		int64		index = SourceCommittedOffset(batch, "batch", 0, &found);

		plan->deterministic = true;
		plan->nrows = n;
		plan->batch_time = batch_timestamp(batch->options, index);
		SourceBatchAddOffset(batch, "batch", index + 1);
		batch->endless = true;
	}
	else
	{
		TimestampTz now = GetCurrentTimestamp();
		int64		start_us = SourceCommittedOffset(batch, "start", now, &found);
		double		rps = (double) rows_per_second(batch->options);
		double		ramp = (double) ramp_up_seconds(batch->options);
		int64		elapsed = Max(now - start_us, 0);
		int64		ticked = elapsed - elapsed % RATE_TICK;
		int64		due = rows_due(rps, ramp, (double) ticked / USECS_PER_SEC);

		plan->start = start_us;
		plan->rows_per_second = rps;
		/* a backlog (after a stop) comes in batches of at most RATE_MAX_ROWS */
		plan->nrows = Min(Max(due - plan->first_value, 0), RATE_MAX_ROWS);
		SourceBatchAddOffset(batch, "start", start_us);
		/* the first batch only records the start */
		if (plan->nrows == 0 && found)
		{
			double		next = seconds_until_due(rps, ramp, plan->first_value);
			int64		next_us;

			/* the first tick at which the next row is due, and never this one */
			if (next < 0 || next > (double) RATE_MAX_RAMP_UP_SECONDS * 1000)
				batch->wake_at = now + RATE_NEVER_CHECK;
			else
			{
				next_us = (int64) ceil(next * USECS_PER_SEC / RATE_TICK) * RATE_TICK;
				batch->wake_at = start_us + Max(next_us, ticked + RATE_TICK);
			}
			MemoryContextSwitchTo(old);
			return false;
		}
	}
	SourceBatchAddOffset(batch, "value", plan->first_value + plan->nrows);
	batch->start_offset = offset_jsonb(plan->first_value);
	batch->end_offset = offset_jsonb(plan->first_value + plan->nrows);
	batch->private = plan;
	MemoryContextSwitchTo(old);
	return true;
}

static void
rate_read_batch(SourceBatch *batch, bool careful)
{
	RatePlan   *plan = batch->private;
	TupleDesc	desc = RelationGetDescr(batch->rel);
	Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);

	for (int i = 0; i < desc->natts; i++)
		nulls[i] = true;
	nulls[plan->ts_att - 1] = false;
	nulls[plan->value_att - 1] = false;
	for (int64 v = plan->first_value; v < plan->first_value + plan->nrows; v++)
	{
		TimestampTz ts;

		CHECK_FOR_INTERRUPTS();
		if (plan->deterministic)
			ts = plan->batch_time;
		else
			ts = plan->start + (int64) ((double) v * USECS_PER_SEC / plan->rows_per_second);
		values[plan->ts_att - 1] = TimestampTzGetDatum(ts);
		values[plan->value_att - 1] = Int64GetDatum(v);
		SourceBatchAddRow(batch, values, nulls);
	}
}

/*
 * rate_peek shows the first rows the source would produce.
 */
static void
rate_peek(SourceBatch *batch, int64 max_rows)
{
	RatePlan	plan;
	TupleDesc	desc = RelationGetDescr(batch->rel);

	memset(&plan, 0, sizeof(plan));
	plan.ts_att = SourceFindColumn(desc, "timestamp", TIMESTAMPTZOID);
	plan.value_att = SourceFindColumn(desc, "value", INT8OID);
	if (JsonbGetKey(batch->options, "rows_per_batch") != NULL)
	{
		plan.deterministic = true;
		plan.batch_time = start_timestamp(batch->options);
		plan.nrows = Min(max_rows, rows_per_batch(batch->options));
	}
	else
	{
		plan.start = GetCurrentTimestamp();
		plan.rows_per_second = Max((double) rows_per_second(batch->options), 1);
		plan.nrows = max_rows;
	}
	batch->private = &plan;
	rate_read_batch(batch, true);
	batch->private = NULL;
}

static const char *
rate_default_schema(Jsonb *options)
{
	return "\"timestamp\" timestamptz, value bigint";
}

const SourceRoutine RateSourceRoutine = {
	.kind = "rate",
	.default_schema = rate_default_schema,
	.validate = rate_validate,
	.check_schema = rate_check_schema,
	.plan_batch = rate_plan_batch,
	.read_batch = rate_read_batch,
	.peek = rate_peek,
};
