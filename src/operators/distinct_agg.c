/*-------------------------------------------------------------------------
 *
 * distinct_agg.c
 *	  Aggregates over the distinct values of a group: count(DISTINCT x),
 *	  sum(DISTINCT x), avg(DISTINCT x), string_agg(DISTINCT x, ', '), ...
 *
 * The partial results of two batches cannot be merged when the aggregate
 * sees each value once: a value of this batch may have been seen by an
 * earlier one.  So the values themselves are kept.  A query with DISTINCT
 * aggregates has, beside its state table, a distinct table: one row per
 * group key, aggregate (column streaming_d: 1, 2, ...) and distinct value
 * of its arguments, unique on all of them.  A batch inserts the distinct
 * values it read; ON CONFLICT DO NOTHING drops those the table held, and
 * what the insert returns - the values this group has never seen - is
 * what the batch aggregates:
 *
 *	- an aggregate with a combine function (count, sum, avg, variance, any
 *	  combinable aggregate) aggregates the new values as if without
 *	  DISTINCT and merges the result into the state as usual: the set of
 *	  old values and the set of new ones are disjoint, so combining their
 *	  aggregates gives the aggregate of the union.  A batch costs what its
 *	  input costs (an index probe per distinct value), whatever the number
 *	  of values the group has;
 *	- an aggregate without one (array_agg, string_agg, json_agg, ...) is
 *	  computed from the whole set when its row is finalized: the state
 *	  keeps its arguments' distinct values as arrays, appended to by each
 *	  batch's new values (never the same value twice), and the finalizer
 *	  runs the aggregate with DISTINCT over their elements, so that the
 *	  order and NULL handling are PostgreSQL's own.  A batch costs the size
 *	  of the sets of the groups it touches.
 *
 * In one statement: the batch's input is read once into the CTE "inp";
 * "fresh" inserts into the distinct table and returns the new values; the
 * batch plan groups the union of inp's rows (streaming_d = 0, read by the
 * ordinary aggregates) and fresh's rows (streaming_d = n, read by the n-th
 * distinct aggregate).  Every group of fresh is a group of inp, so the
 * union makes no group of its own.
 *
 * Over a table source whose deleted rows are taken back (operators/
 * retract.c), a value is in its group's set while rows of the group hold
 * it: the distinct table keeps, per value, streaming_rows, how many do.  A
 * batch groups its rows per value, adds the ones it inserts and subtracts
 * the ones it takes back (ON CONFLICT DO UPDATE), and keeps in
 * streaming_change what it added, so that what the upsert returns tells
 * whether the value was in the set before (streaming_rows -
 * streaming_change above 0) and is after (streaming_rows above 0).  The
 * values that came into their set are aggregated as added rows, those
 * that left it as taken-back ones, which count, sum and avg subtract as
 * they do deleted rows.  A value taken back that its group never had (a
 * row from before the query's stream) goes below 0 and stays out of the
 * set until more rows holding it are added than were taken back, as a
 * group with more rows taken back than added stays out of the results; a
 * value that reaches 0 is deleted by the next batch, as an emptied group
 * is.
 *
 * The watermark evicts the distinct values of the windows it closes with
 * their state.  min, max, bool_and and bool_or are the same with DISTINCT
 * as without and are kept as without.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "operators/distinct_agg.h"
#include "operators/retract.h"
#include "operators/window_state.h"
#include "streaming.h"

#define OP_ADD "OPERATOR(pg_catalog.+)"
#define OP_SUB "OPERATOR(pg_catalog.-)"
#define OP_EQ "OPERATOR(pg_catalog.=)"
#define OP_NE "OPERATOR(pg_catalog.<>)"
#define OP_GT "OPERATOR(pg_catalog.>)"

/*
 * With retraction, whether a value returned by the batch's upsert, "f", is
 * in its set after the batch, and whether it was before
 */
#define DISTINCT_AGG_IN_SET "(f.streaming_rows " OP_GT " 0::pg_catalog.int8)"
#define DISTINCT_AGG_WAS_IN_SET "((f.streaming_rows " OP_SUB " f.streaming_change) " OP_GT " 0::pg_catalog.int8)"

/*
 * DistinctAggRows returns the condition on the batch rows "b" of the n-th
 * distinct aggregate: the new values of its group (with retraction, the
 * values that came into or left its set).
 */
char *
DistinctAggRows(int number)
{
	return psprintf("b." DISTINCT_AGG_COLUMN " " OP_EQ " %d::pg_catalog.int2", number);
}

/* DistinctAggFilter returns DistinctAggRows as a FILTER clause */
char *
DistinctAggFilter(int number)
{
	return psprintf(" FILTER (WHERE %s)", DistinctAggRows(number));
}

/*
 * DistinctAggOtherRows returns the condition on the batch rows "b" of an
 * ordinary aggregate of a query with distinct aggregates: the batch's
 * input rows only, and of those the ones its own FILTER column (or NULL)
 * passes.
 */
char *
DistinctAggOtherRows(const char *filter)
{
	if (filter == NULL)
		return "b." DISTINCT_AGG_COLUMN " " OP_EQ " 0::pg_catalog.int2";
	return psprintf("(b." DISTINCT_AGG_COLUMN " " OP_EQ " 0::pg_catalog.int2) AND b.%s", filter);
}

/* DistinctAggOtherFilter returns DistinctAggOtherRows as a FILTER clause */
char *
DistinctAggOtherFilter(const char *filter)
{
	return psprintf(" FILTER (WHERE %s)", DistinctAggOtherRows(filter));
}

/*
 * DistinctAggSetFinalizer returns the finalizer of a distinct aggregate
 * without a combine function, whose arguments' distinct values the state
 * row "m" keeps as parallel arrays in state_columns: the aggregate, with
 * DISTINCT, over their elements.  The arrays are unnested in the select
 * list, in step, and not in FROM, where an element of a composite type
 * would be expanded into its fields.  The aggregate is named with its
 * schema, and each element is cast to the type of its argument in the
 * query (array_agg keeps a domain's values as its base type), so the call
 * resolves to the aggregate of the query.
 */
char *
DistinctAggSetFinalizer(Aggref *agg, List *state_columns)
{
	StringInfoData call;
	StringInfoData unnest;
	ListCell   *lc;
	ListCell   *type;

	initStringInfo(&call);
	initStringInfo(&unnest);
	forboth(lc, state_columns, type, agg->aggargtypes)
	{
		int			i = foreach_current_index(lc) + 1;

		appendStringInfo(&call, "%sCAST(u.x%d AS %s)", i > 1 ? ", " : "", i,
						 format_type_be_qualified(lfirst_oid(type)));
		appendStringInfo(&unnest, "%spg_catalog.unnest(m.%s) AS x%d",
						 i > 1 ? ", " : "", (char *) lfirst(lc), i);
	}
	return psprintf("CAST((SELECT %s(DISTINCT %s) FROM (SELECT %s) AS u) AS %s)",
					quote_qualified_identifier(get_namespace_name(get_func_namespace(agg->aggfnoid)),
											   get_func_name(agg->aggfnoid)),
					call.data, unnest.data,
					format_type_be_qualified(agg->aggtype));
}

/*
 * DistinctAggPlan completes the plan of a query with distinct aggregates:
 * the distinct table's columns (the group keys, streaming_d, and each
 * distinct aggregate's argument columns, named as in the input view) and
 * the SELECT of a batch's distinct values per aggregate, over "inp".  It
 * returns the relation the batch plan groups: inp's rows and fresh's.
 */
char *
DistinctAggPlan(ContinuousPlan *plan, List *inner_tlist, int nkeys, List *distinct_aggs)
{
	StringInfoData columns;
	StringInfoData fresh;
	StringInfoData fresh_rows;
	List	   *value_columns = NIL;
	ListCell   *lc;
	ListCell   *lc2;

	initStringInfo(&columns);
	initStringInfo(&fresh);
	initStringInfo(&fresh_rows);

	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&columns, "%s, ", ((TargetEntry *) list_nth(inner_tlist, i))->resname);
	appendStringInfoString(&columns, DISTINCT_AGG_COLUMN);
	foreach(lc, distinct_aggs)
	{
		DistinctAgg *d = lfirst(lc);

		foreach(lc2, d->columns)
		{
			appendStringInfo(&columns, ", %s", (char *) lfirst(lc2));
			value_columns = lappend(value_columns, lfirst(lc2));
		}
	}

	/*
	 * per aggregate, the distinct values of each group its FILTER passes;
	 * with retraction, with the rows that the batch adds to each
	 */
	foreach(lc, distinct_aggs)
	{
		DistinctAgg *d = lfirst(lc);
		StringInfoData groupby;

		initStringInfo(&groupby);
		appendStringInfo(&fresh, "%sSELECT %s", fresh.len > 0 ? " UNION ALL " : "",
						 plan->retract ? "" : "DISTINCT ");
		for (int i = 0; i < nkeys; i++)
		{
			char	   *k = ((TargetEntry *) list_nth(inner_tlist, i))->resname;

			appendStringInfo(&fresh, "b.%s AS %s, ", k, k);
			appendStringInfo(&groupby, "%sb.%s", groupby.len > 0 ? ", " : "", k);
		}
		appendStringInfo(&fresh, "%d::pg_catalog.int2 AS " DISTINCT_AGG_COLUMN, d->number);
		foreach(lc2, distinct_aggs)
		{
			DistinctAgg *e = lfirst(lc2);
			ListCell   *col;
			ListCell   *type;

			forboth(col, e->columns, type, e->types)
			{
				if (e == d)
				{
					appendStringInfo(&fresh, ", b.%s AS %s", (char *) lfirst(col), (char *) lfirst(col));
					appendStringInfo(&groupby, "%sb.%s", groupby.len > 0 ? ", " : "", (char *) lfirst(col));
				}
				else
					appendStringInfo(&fresh, ", NULL::%s AS %s",
									 format_type_be_qualified(lfirst_oid(type)), (char *) lfirst(col));
			}
		}
		if (plan->retract)
			appendStringInfo(&fresh, ", %s AS streaming_rows, %s AS streaming_change",
							 RetractRowCount(NULL), RetractRowCount(NULL));
		appendStringInfoString(&fresh, " FROM inp AS b");
		if (d->filter != NULL)
			appendStringInfo(&fresh, " WHERE b.%s", d->filter);
		/* a value the batch adds as many rows of as it takes back is left as it is */
		if (plan->retract)
			appendStringInfo(&fresh, " GROUP BY %s HAVING %s " OP_NE " 0::pg_catalog.int8",
							 groupby.data, RetractRowCount(NULL));
	}

	/* fresh's rows in the input view's columns, NULL where it has none */
	foreach(lc, inner_tlist)
	{
		TargetEntry *tle = lfirst(lc);
		bool		kept = foreach_current_index(lc) < nkeys;

		foreach(lc2, value_columns)
			kept |= strcmp(lfirst(lc2), tle->resname) == 0;
		if (kept)
			appendStringInfo(&fresh_rows, "f.%s, ", tle->resname);
		else if (strcmp(tle->resname, RETRACT_COLUMN) == 0)
			/* a value that left its set is taken back */
			appendStringInfoString(&fresh_rows, "(NOT " DISTINCT_AGG_IN_SET "), ");
		else
			appendStringInfo(&fresh_rows, "NULL::%s, ",
							 format_type_be_qualified(exprType((Node *) tle->expr)));
	}

	plan->distinct_columns = columns.data;
	plan->distinct_fresh = fresh.data;
	return psprintf("(SELECT b.*, 0::pg_catalog.int2 AS " DISTINCT_AGG_COLUMN " FROM inp AS b"
					" UNION ALL SELECT %sf." DISTINCT_AGG_COLUMN " FROM fresh AS f%s)",
					fresh_rows.data,
					plan->retract ? " WHERE " DISTINCT_AGG_IN_SET " " OP_NE " " DISTINCT_AGG_WAS_IN_SET : "");
}

/* the name of a query's distinct table, schema-qualified and quoted */
char *
DistinctAggTableName(int32 query_id)
{
	return psprintf("%s.%s", STREAMING_SCHEMA,
					quote_identifier(psprintf("state_%d_distinct", query_id)));
}

/*
 * DistinctAggTableQuery returns a query whose columns are those of the
 * distinct table, for create_query to analyse.
 */
char *
DistinctAggTableQuery(ContinuousPlan *plan)
{
	return psprintf("WITH inp AS (SELECT * FROM %s AS b) %s",
					PlanInputRelation(plan), plan->distinct_fresh);
}

/*
 * DistinctAggStatePrefix returns the WITH clause under which the batch
 * plan can be analysed alone (for the columns of the state table): inp
 * and fresh as relations of the right columns, without the insert.
 */
char *
DistinctAggStatePrefix(ContinuousPlan *plan)
{
	return psprintf("WITH inp AS (SELECT * FROM %s AS b), fresh AS (SELECT * FROM %s AS d) ",
					PlanInputRelation(plan), plan->distinct_table);
}

/*
 * DistinctAggBatchPrefix returns CTEs of the batch statement, each followed
 * by a comma:
 * the batch's input, read once, and the insert of its distinct values
 * that returns the new ones.
 */
char *
DistinctAggBatchPrefix(ContinuousPlan *plan)
{
	if (plan->retract)
		return psprintf("inp AS MATERIALIZED (SELECT * FROM %s AS b),\n"
						"fresh AS (INSERT INTO %s AS d (%s, streaming_rows, streaming_change) %s"
						" ON CONFLICT (%s) DO UPDATE SET streaming_rows = d.streaming_rows " OP_ADD " EXCLUDED.streaming_rows,"
						" streaming_change = EXCLUDED.streaming_change RETURNING d.*),\n"
						"distinct_emptied AS (DELETE FROM %s AS d WHERE d.streaming_rows " OP_EQ " 0::pg_catalog.int8),\n",
						PlanInputRelation(plan), plan->distinct_table,
						plan->distinct_columns, plan->distinct_fresh, plan->distinct_columns,
						plan->distinct_table);
	return psprintf("inp AS MATERIALIZED (SELECT * FROM %s AS b),\n"
					"fresh AS (INSERT INTO %s AS d (%s) %s ON CONFLICT DO NOTHING RETURNING d.*),\n",
					PlanInputRelation(plan), plan->distinct_table,
					plan->distinct_columns, plan->distinct_fresh);
}

/*
 * DistinctAggCloseCte returns the CTE of the close statement that evicts
 * the distinct values of the windows the watermark ($1) closes, or NULL.
 */
char *
DistinctAggCloseCte(ContinuousPlan *plan)
{
	if (plan->distinct_table == NULL || plan->window_key == NULL)
		return NULL;
	return psprintf("distinct_closed AS (DELETE FROM %s AS d WHERE %s)",
					plan->distinct_table, WindowStateClosed(plan, "d"));
}
