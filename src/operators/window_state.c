/*-------------------------------------------------------------------------
 *
 * window_state.c
 *	  State of an aggregation grouped by a window of the event time, keyed
 *	  by the window's start.
 *
 * A window of streaming.window(ts, size [, slide [, origin]]) whose size is
 * a constant is [start, start + size): its start names it.  The state table
 * keeps that start, a timestamptz, as the group key, rather than the
 * tstzrange the user's query groups by: a fixed-width key is hashed and
 * compared as an integer, where a range is a varlena that every comparison
 * in the state's unique index detoasts and deserializes.  The range is
 * built only for the rows written to the result table, whose column stays
 * the tstzrange the query returns.  The watermark closes a window when its
 * end is at or before it, start + size <= watermark, that is start <=
 * watermark - size: a range scan of the state's key index.
 *
 * Plans made before this layout (no window_size) keep their range key, the
 * expression index on its upper bound and the statements they were made
 * with; so do session windows, whose length varies.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/timestamp.h"

#include "operators/window_state.h"
#include "streaming.h"

/*
 * Operators in generated statements are pg_catalog's, named so (see
 * planner.c); expressions built with them are parenthesized.
 */
#define OP_ADD "OPERATOR(pg_catalog.+)"
#define OP_SUB "OPERATOR(pg_catalog.-)"
#define OP_LE  "OPERATOR(pg_catalog.<=)"

/*
 * WindowStateSizeLiteral returns a window size as an SQL interval literal
 * of microseconds only (no days): the end of a window is start + size
 * microseconds, as streaming.window() computes it, which adding an
 * interval with days would not be across a change of daylight saving time.
 */
char *
WindowStateSizeLiteral(int64 usecs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = usecs;
	return psprintf("%s::pg_catalog.interval",
					quote_literal_cstr(DatumGetCString(DirectFunctionCall1(interval_out,
																		   IntervalPGetDatum(iv)))));
}

/*
 * WindowStateKeyExpr returns the expression of the state key of a window,
 * for the query's input view: streaming.window_start(ts, size) for a
 * tumbling window(ts, size), which computes the start without building
 * the range; otherwise (and in a database whose extension predates
 * window_start) the lower bound of the call's range.
 */
Expr *
WindowStateKeyExpr(Expr *window_call)
{
	FuncExpr   *call = (FuncExpr *) window_call;

	if (IsA(window_call, FuncExpr) && list_length(call->args) == 2 && !call->funcretset)
	{
		Oid			argtypes[2] = {TIMESTAMPTZOID, INTERVALOID};
		Oid			start = LookupFuncName(list_make2(makeString(STREAMING_SCHEMA),
													  makeString("window_start")),
										   2, argtypes, true);

		if (OidIsValid(start))
			return (Expr *) makeFuncExpr(start, TIMESTAMPTZOID, copyObject(call->args),
										 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	}
	return (Expr *) makeFuncExpr(F_LOWER_ANYRANGE, TIMESTAMPTZOID, list_make1(window_call),
								 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
}

/*
 * WindowStateRangeSql returns the SQL of the window that starts at start
 * (an expression) and lasts size (a WindowStateSizeLiteral): the value the
 * user's query has in the window's column.
 */
char *
WindowStateRangeSql(const char *start, const char *size)
{
	return psprintf("pg_catalog.tstzrange(%s, (%s " OP_ADD " %s))", start, start, size);
}

/*
 * WindowStateRangeNode is WindowStateRangeSql as an expression tree, for
 * expressions of the select list and HAVING that are deparsed over the
 * state row.
 */
Node *
WindowStateRangeNode(Node *start, int64 usecs)
{
	Interval   *iv = palloc0(sizeof(Interval));
	Const	   *size;
	Oid			opno;
	Expr	   *end;

	iv->time = usecs;
	size = makeConst(INTERVALOID, -1, InvalidOid, sizeof(Interval),
					 IntervalPGetDatum(iv), false, false);
	opno = OpernameGetOprid(list_make2(makeString("pg_catalog"), makeString("+")),
							TIMESTAMPTZOID, INTERVALOID);
	if (!OidIsValid(opno))
		elog(ERROR, "operator timestamptz + interval not found");
	end = make_opclause(opno, TIMESTAMPTZOID, false, (Expr *) copyObject(start),
						(Expr *) size, InvalidOid, InvalidOid);
	((OpExpr *) end)->opfuncid = F_TIMESTAMPTZ_PL_INTERVAL;
	return (Node *) makeFuncExpr(F_TSTZRANGE_TIMESTAMPTZ_TIMESTAMPTZ, TSTZRANGEOID,
								 list_make2(start, end), InvalidOid, InvalidOid,
								 COERCE_EXPLICIT_CALL);
}

/*
 * WindowStateClosed returns the condition that the window of state row
 * alias has closed: it ends at or before the watermark, $1 (minus the
 * plan's close_lag over a join of streams).
 */
char *
WindowStateClosed(ContinuousPlan *plan, const char *alias)
{
	const char *key = quote_identifier(plan->window_key);
	const char *bound = PlanCloseBound(plan);

	if (plan->window_size == NULL)
		return psprintf("pg_catalog.upper(%s.%s) " OP_LE " %s", alias, key, bound);
	return psprintf("%s.%s " OP_LE " (%s " OP_SUB " %s)", alias, key, bound, plan->window_size);
}

/*
 * WindowStateCloseIndex returns what the state table is indexed on, besides
 * its keys, for the watermark to find the windows it closes (see
 * WindowStateClosed), or NULL when the unique index on the keys serves,
 * the window's start being its first column.
 */
char *
WindowStateCloseIndex(ContinuousPlan *plan)
{
	if (plan->window_key == NULL)
		return NULL;
	if (plan->window_size == NULL)
		return psprintf("pg_catalog.upper(%s)", quote_identifier(plan->window_key));
	if (strcmp(linitial(plan->state_keys), plan->window_key) == 0)
		return NULL;
	return pstrdup(quote_identifier(plan->window_key));
}
