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
#include "common/int.h"
#include "datatype/timestamp.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/pathnodes.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/rangetypes.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "window.h"

/* 1970-01-01 00:00:00+00, the default origin of the window grid */
#define UNIX_EPOCH_TIMESTAMPTZ \
	((TimestampTz) -((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY))

/*
 * The most windows a sliding window puts one row in (size / slide): more is
 * a mistake (a slide of a microsecond) that would multiply every row.
 */
#define WINDOW_MAX_PER_ROW	10000

PG_FUNCTION_INFO_V1(streaming_window_tumbling);
PG_FUNCTION_INFO_V1(streaming_window_sliding);
PG_FUNCTION_INFO_V1(streaming_window_start);

/* what the SRF keeps from call to call */
typedef struct SlidingState
{
	TimestampTz ts;
	int64		size;
	int64		slide;
	TimestampTz oldest;			/* start of the oldest window that contains ts */
	TypeCacheEntry *typcache;	/* tstzrange's */
} SlidingState;

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
				 errdetail("A month has no fixed length, and windows of a grid all have the same length."),
				 errhint("Use days, hours, minutes or seconds, e.g. '30 days'.")));
	if (pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &usecs) ||
		pg_add_s64_overflow(usecs, iv->time, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window %s is out of range", what)));
	if (usecs <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window %s must be positive", what)));
	return usecs;
}

/*
 * fixed_usecs is interval_usecs without its errors: whether an interval
 * is a positive number of microseconds (no months, no overflow).
 */
static bool
fixed_usecs(Interval *iv, int64 *usecs)
{
	return iv->month == 0 &&
		!pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, usecs) &&
		!pg_add_s64_overflow(*usecs, iv->time, usecs) && *usecs > 0;
}

/* a mod b, in [0, b), for b > 0 */
static int64
floor_mod(int64 a, int64 b)
{
	int64		r = a % b;

	return r < 0 ? r + b : r;
}

/*
 * grid_offset is how far ts lies after the latest point of the grid
 * origin + k * step at or before it, in [0, step).  It is computed without
 * forming ts - origin, which overflows for timestamps near the ends of the
 * range.
 */
static int64
grid_offset(TimestampTz ts, TimestampTz origin, int64 step)
{
	int64		m = floor_mod(ts, step) - floor_mod(origin, step);

	return m < 0 ? m + step : m;
}

static void
check_finite(TimestampTz ts, const char *what)
{
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("cannot place an infinite %s in a window", what)));
}

/* the error for a window that does not fit in the range of timestamptz */
static void
window_out_of_range(TimestampTz ts)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("window of timestamp %s is out of range", timestamptz_to_str(ts)),
			 errdetail("A bound of the window would lie outside the range of timestamp with time zone.")));
}

/* earlier: point - back, or the out-of-range error if that overflows */
static TimestampTz
earlier(TimestampTz ts, TimestampTz point, int64 back)
{
	int64		result;

	if (pg_sub_s64_overflow(point, back, &result))
		window_out_of_range(ts);
	return result;
}

/*
 * make_window builds the window [start, start + size) of ts, after checking
 * that both bounds are timestamps.
 */
static Datum
make_window(TypeCacheEntry *typcache, TimestampTz ts, TimestampTz start, int64 size)
{
	RangeBound	lower;
	RangeBound	upper;
	int64		end;

	if (pg_add_s64_overflow(start, size, &end) ||
		!IS_VALID_TIMESTAMP(start) || !IS_VALID_TIMESTAMP(end))
		window_out_of_range(ts);

	lower.val = TimestampTzGetDatum(start);
	lower.infinite = false;
	lower.inclusive = true;
	lower.lower = true;
	upper.val = TimestampTzGetDatum(end);
	upper.infinite = false;
	upper.inclusive = false;
	upper.lower = false;
#if PG_VERSION_NUM >= 160000
	return RangeTypePGetDatum(make_range(typcache, &lower, &upper, false, NULL));
#else
	return RangeTypePGetDatum(make_range(typcache, &lower, &upper, false));
#endif
}

/*
 * window_typcache returns tstzrange's type cache entry, looked up once per
 * call site: a batch makes a window for every row.
 */
static TypeCacheEntry *
window_typcache(void **cache)
{
	if (*cache == NULL)
		*cache = lookup_type_cache(TSTZRANGEOID, TYPECACHE_RANGE_INFO);
	return (TypeCacheEntry *) *cache;
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

	check_finite(ts, "timestamp");
	PG_RETURN_DATUM(make_window(window_typcache(&fcinfo->flinfo->fn_extra), ts,
								earlier(ts, ts, grid_offset(ts, origin, size)), size));
}

/*
 * streaming_window_start implements streaming.window_start(ts, size), the
 * start of streaming.window(ts, size), which the state of a windowed
 * aggregate is keyed by: lower(window(ts, size)) without building the
 * range.  It fails where window(ts, size) fails.
 */
Datum
streaming_window_start(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	int64		size = interval_usecs(PG_GETARG_INTERVAL_P(1), "size");
	TimestampTz start;
	int64		end;

	check_finite(ts, "timestamp");
	start = earlier(ts, ts, grid_offset(ts, UNIX_EPOCH_TIMESTAMPTZ, size));
	if (pg_add_s64_overflow(start, size, &end) ||
		!IS_VALID_TIMESTAMP(start) || !IS_VALID_TIMESTAMP(end))
		window_out_of_range(ts);
	PG_RETURN_TIMESTAMPTZ(start);
}

/* windows_per_row: the most windows of size, slide apart, a row falls in */
static int64
windows_per_row(int64 size, int64 slide)
{
	return size / slide + (size % slide != 0);
}

/*
 * check_slide rejects a slide longer than the size (rows between windows)
 * and one so short that each row would fall in too many windows.
 */
static void
check_slide(int64 size, int64 slide, Interval *size_iv, Interval *slide_iv)
{
	int64		per_row;

	if (slide > size)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window slide must not be longer than its size"),
				 errhint("With a longer slide some rows would belong to no window.")));
	per_row = windows_per_row(size, slide);
	if (per_row > WINDOW_MAX_PER_ROW)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a sliding window may put a row in at most %d windows", WINDOW_MAX_PER_ROW),
				 errdetail("A size of %s with a slide of %s puts each row in " INT64_FORMAT " windows.",
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(size_iv))),
						   DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(slide_iv))),
						   per_row),
				 errhint("Use a longer slide or a shorter size.")));
}

/*
 * window_arg_value reduces an argument of a window() call to a constant if
 * it is one once folded: a cast ('1 month'::text::interval), an expression
 * of constants (make_interval(months => 1), '1 day' * 30), or a constant
 * written with a name (size => '1 month'), whose NamedArgExpr wrapper the
 * parser leaves in place.  NULL when the value depends on the row or is
 * volatile.  Folding as the planner estimates (stable functions too) only
 * serves the check: what the batch computes is not changed.
 */
static Const *
window_arg_value(Node *arg)
{
	PlannerGlobal glob;
	PlannerInfo root;
	Node	   *folded;

	if (IsA(arg, NamedArgExpr))
		arg = (Node *) ((NamedArgExpr *) arg)->arg;
	if (!IsA(arg, Const))
	{
		if (contain_var_clause(arg) || contain_volatile_functions(arg) ||
			contain_subplans(arg) || contain_agg_clause(arg))
			return NULL;
		memset(&glob, 0, sizeof(glob));
		memset(&root, 0, sizeof(root));
		root.type = T_PlannerInfo;
		glob.type = T_PlannerGlobal;
		root.glob = &glob;
		folded = estimate_expression_value(&root, copyObject(arg));
		if (!IsA(folded, Const))
			return NULL;
		arg = folded;
	}
	return ((Const *) arg)->constisnull ? NULL : (Const *) arg;
}

/*
 * WindowCheckConstArgs checks the constant arguments of a streaming.window()
 * call (size, slide, origin) as the call itself would, before any row.
 * Arguments given by name go to their parameter's place.
 */
void
WindowCheckConstArgs(FuncExpr *fexpr)
{
	Const	   *args[4] = {NULL, NULL, NULL, NULL};
	ListCell   *lc;
	int64		size = 0;

	foreach(lc, fexpr->args)
	{
		Node	   *arg = lfirst(lc);
		int			pos = IsA(arg, NamedArgExpr) ? ((NamedArgExpr *) arg)->argnumber
			: foreach_current_index(lc);

		if (pos >= 0 && pos < 4)
			args[pos] = window_arg_value(arg);
	}
	if (args[1] != NULL)
		size = interval_usecs(DatumGetIntervalP(args[1]->constvalue), "size");
	if (args[2] != NULL)
	{
		int64		slide = interval_usecs(DatumGetIntervalP(args[2]->constvalue), "slide");

		if (args[1] != NULL)
			check_slide(size, slide, DatumGetIntervalP(args[1]->constvalue),
						DatumGetIntervalP(args[2]->constvalue));
	}
	if (args[3] != NULL)
		check_finite(DatumGetTimestampTz(args[3]->constvalue), "origin");
}

/*
 * WindowConstantSize tells whether a streaming.window() call has a constant
 * size, and gives it in microseconds: then every window it returns ends
 * size after its start, so its start alone names it.  Only an immutable
 * size counts (a stable one may differ from batch to batch).  A size the
 * call would refuse is not one: WindowCheckConstArgs reports it.
 */
bool
WindowConstantSize(FuncExpr *fexpr, int64 *usecs)
{
	ListCell   *lc;

	foreach(lc, fexpr->args)
	{
		Node	   *arg = lfirst(lc);
		int			pos = IsA(arg, NamedArgExpr) ? ((NamedArgExpr *) arg)->argnumber
			: foreach_current_index(lc);

		if (pos != 1)
			continue;
		/* immutable only: the size is written into the query's statements */
		if (IsA(arg, NamedArgExpr))
			arg = (Node *) ((NamedArgExpr *) arg)->arg;
		if (contain_var_clause(arg) || contain_mutable_functions(arg) ||
			contain_subplans(arg) || contain_agg_clause(arg))
			return false;
		arg = eval_const_expressions(NULL, copyObject(arg));
		if (!IsA(arg, Const) || ((Const *) arg)->constisnull)
			return false;
		return fixed_usecs(DatumGetIntervalP(((Const *) arg)->constvalue), usecs);
	}
	return false;
}

/*
 * WindowSlidingStarts: the windows that contain ts start in (ts - size,
 * ts]: the latest at last = ts - offset from the grid, the others every
 * slide before it while they still reach past ts, ceil((size - offset) /
 * slide) in all.  The bounds of the oldest and the latest are checked, and
 * with them those of the windows between.
 */
int64
WindowSlidingStarts(const WindowGrid *grid, TimestampTz ts, TimestampTz *oldest)
{
	int64		offset;
	int64		n;
	TimestampTz last;
	int64		end;

	check_finite(ts, "timestamp");
	offset = grid_offset(ts, grid->origin, grid->slide);
	last = earlier(ts, ts, offset);
	n = (grid->size - offset - 1) / grid->slide + 1;
	/* (n - 1) * slide < size cannot overflow */
	*oldest = earlier(ts, last, (n - 1) * grid->slide);
	if (pg_add_s64_overflow(last, grid->size, &end) ||
		!IS_VALID_TIMESTAMP(*oldest) || !IS_VALID_TIMESTAMP(end))
		window_out_of_range(ts);
	return n;
}

/*
 * WindowSlidingCall: the call must be streaming_window_sliding itself
 * (its caller makes sure that the function is the extension's), with
 * constant arguments after the time that the call accepts: the size, the
 * slide (the size when null) and the origin.
 */
bool
WindowSlidingCall(Expr *expr, WindowGrid *grid)
{
	FuncExpr   *call = (FuncExpr *) expr;
	FmgrInfo	flinfo;
	Const	   *size;
	Const	   *slide;
	Const	   *origin;

	if (!IsA(expr, FuncExpr) || !call->funcretset || list_length(call->args) != 4)
		return false;
	fmgr_info(call->funcid, &flinfo);
	if (flinfo.fn_addr != streaming_window_sliding)
		return false;
	size = lsecond(call->args);
	slide = lthird(call->args);
	origin = lfourth(call->args);
	if (!IsA(size, Const) || !IsA(slide, Const) || !IsA(origin, Const) ||
		size->constisnull || origin->constisnull ||
		!fixed_usecs(DatumGetIntervalP(size->constvalue), &grid->size))
		return false;
	if (slide->constisnull)
		grid->slide = grid->size;
	else if (!fixed_usecs(DatumGetIntervalP(slide->constvalue), &grid->slide) ||
			 grid->slide > grid->size ||
			 windows_per_row(grid->size, grid->slide) > WINDOW_MAX_PER_ROW)
		return false;
	grid->origin = DatumGetTimestampTz(origin->constvalue);
	return !TIMESTAMP_NOT_FINITE(grid->origin);
}

/*
 * streaming_window_sliding implements streaming.window(ts, size, slide
 * [, origin]): every window of the grid that contains ts, oldest first.
 * The windows are computed, not searched for, so the cost of a row is the
 * number of windows it is in.
 */
Datum
streaming_window_sliding(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	SlidingState *state;

	if (SRF_IS_FIRSTCALL())
	{
		SlidingState st;
		TimestampTz origin;
		WindowGrid	grid;
		MemoryContext old;

		funcctx = SRF_FIRSTCALL_INIT();
		/* the size and slide are checked even when there is no row time */
		if (PG_ARGISNULL(1))
			SRF_RETURN_DONE(funcctx);
		st.size = interval_usecs(PG_GETARG_INTERVAL_P(1), "size");
		if (PG_ARGISNULL(2))
			st.slide = st.size;
		else
		{
			st.slide = interval_usecs(PG_GETARG_INTERVAL_P(2), "slide");
			check_slide(st.size, st.slide, PG_GETARG_INTERVAL_P(1), PG_GETARG_INTERVAL_P(2));
		}
		if (PG_ARGISNULL(0) || PG_ARGISNULL(3))
			SRF_RETURN_DONE(funcctx);
		st.ts = PG_GETARG_TIMESTAMPTZ(0);
		origin = PG_GETARG_TIMESTAMPTZ(3);
		check_finite(st.ts, "timestamp");
		check_finite(origin, "origin");
		grid.size = st.size;
		grid.slide = st.slide;
		grid.origin = origin;
		funcctx->max_calls = (uint64) WindowSlidingStarts(&grid, st.ts, &st.oldest);

		st.typcache = lookup_type_cache(TSTZRANGEOID, TYPECACHE_RANGE_INFO);
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		state = palloc(sizeof(SlidingState));
		*state = st;
		funcctx->user_fctx = state;
		MemoryContextSwitchTo(old);
	}

	funcctx = SRF_PERCALL_SETUP();
	state = funcctx->user_fctx;
	CHECK_FOR_INTERRUPTS();
	if (funcctx->call_cntr < funcctx->max_calls)
	{
		/* oldest first; every window's bounds were checked */
		TimestampTz start = state->oldest + (int64) funcctx->call_cntr * state->slide;
		Datum		window;

		/* before SRF_RETURN_NEXT, which advances call_cntr */
		window = make_window(state->typcache, state->ts, start, state->size);

		SRF_RETURN_NEXT(funcctx, window);
	}
	SRF_RETURN_DONE(funcctx);
}
