/*-------------------------------------------------------------------------
 *
 * window.c
 *	  Event-time windows: streaming.window(ts, size [, slide [, origin]]).
 *
 * A window is a tstzrange [start, end).  Tumbling windows (no slide)
 * partition time into consecutive windows of one size; sliding windows
 * start every slide and each row belongs to the ceil(size / slide) windows
 * that contain it.  origin shifts the grid (default: the Unix epoch).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/rangetypes.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

/* 1970-01-01 00:00:00+00, the default origin of the window grid */
#define UNIX_EPOCH_TIMESTAMPTZ \
	((TimestampTz) -((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY))

PG_FUNCTION_INFO_V1(streaming_window_tumbling);
PG_FUNCTION_INFO_V1(streaming_window_sliding);

/*
 * interval_usecs turns a window size or slide into microseconds; months
 * have no fixed length, so they are rejected, and a day counts 24 hours.
 */
static int64
interval_usecs(Interval *iv, const char *what)
{
	int64		usecs;

	if (iv->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window %s must not contain months or years", what),
				 errhint("Use days, hours, minutes or seconds, e.g. '30 days'.")));
	usecs = iv->time + (int64) iv->day * USECS_PER_DAY;
	if (usecs <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window %s must be positive", what)));
	return usecs;
}

/* floor division that rounds toward minus infinity */
static int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static Datum
make_window(TimestampTz start, int64 size)
{
	TypeCacheEntry *typcache = lookup_type_cache(TSTZRANGEOID, TYPECACHE_RANGE_INFO);
	RangeBound	lower;
	RangeBound	upper;

	lower.val = TimestampTzGetDatum(start);
	lower.infinite = false;
	lower.inclusive = true;
	lower.lower = true;
	upper.val = TimestampTzGetDatum(start + size);
	upper.infinite = false;
	upper.inclusive = false;
	upper.lower = false;
#if PG_VERSION_NUM >= 160000
	return RangeTypePGetDatum(make_range(typcache, &lower, &upper, false, NULL));
#else
	return RangeTypePGetDatum(make_range(typcache, &lower, &upper, false));
#endif
}

static void
check_finite(TimestampTz ts)
{
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot place an infinite timestamp in a window")));
}

/*
 * streaming_window_tumbling implements streaming.window(ts, size): the one
 * window [start, start + size) that contains ts.
 */
Datum
streaming_window_tumbling(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	int64		size = interval_usecs(PG_GETARG_INTERVAL_P(1), "size");
	TimestampTz origin = UNIX_EPOCH_TIMESTAMPTZ;

	check_finite(ts);
	PG_RETURN_DATUM(make_window(origin + floor_div(ts - origin, size) * size, size));
}

/*
 * streaming_window_sliding implements streaming.window(ts, size, slide
 * [, origin]): every window of the grid that contains ts, oldest first.
 */
Datum
streaming_window_sliding(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	int64	   *state;

	if (SRF_IS_FIRSTCALL() && (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3)))
	{
		funcctx = SRF_FIRSTCALL_INIT();
		SRF_RETURN_DONE(funcctx);
	}
	if (SRF_IS_FIRSTCALL())
	{
		TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
		int64		size = interval_usecs(PG_GETARG_INTERVAL_P(1), "size");
		int64		slide = PG_ARGISNULL(2) ? size : interval_usecs(PG_GETARG_INTERVAL_P(2), "slide");
		TimestampTz origin = PG_GETARG_TIMESTAMPTZ(3);
		MemoryContext old;
		TimestampTz last;
		TimestampTz first;

		funcctx = SRF_FIRSTCALL_INIT();
		check_finite(ts);
		if (slide > size)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("window slide must not be longer than its size"),
					 errhint("With a longer slide some rows would belong to no window.")));

		/* the latest window that starts at or before ts, then back by slide */
		last = origin + floor_div(ts - origin, slide) * slide;
		first = last;
		while (first - slide + size > ts)
			first -= slide;

		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		state = palloc(sizeof(int64) * 3);
		state[0] = first;
		state[1] = last;
		state[2] = slide;
		funcctx->user_fctx = state;
		funcctx->max_calls = (uint64) ((last - first) / slide) + 1;
		MemoryContextSwitchTo(old);
	}

	funcctx = SRF_PERCALL_SETUP();
	state = funcctx->user_fctx;
	if (funcctx->call_cntr < funcctx->max_calls)
	{
		int64		size = interval_usecs(PG_GETARG_INTERVAL_P(1), "size");
		TimestampTz start = state[0] + (int64) funcctx->call_cntr * state[2];

		SRF_RETURN_NEXT(funcctx, make_window(start, size));
	}
	SRF_RETURN_DONE(funcctx);
}
