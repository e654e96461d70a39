/*-------------------------------------------------------------------------
 *
 * retract.c
 *	  Aggregations that take back the rows a table source with changes
 *	  "all" deletes (and the old rows of its updates).
 *
 * A table source with changes "all" hands a batch the rows deleted from
 * its table (and the old rows of updates, the new ones being inserted
 * rows) as retracted rows: its scan returns them with a marked ctid
 * (SOURCE_RETRACTED_BLOCK), which the input view turns into the column
 * streaming_retracted - a column only the generated statements read, so
 * the user's schema and query stay as they are.  The batch plan computes
 * each partial state as what the batch added minus what it took back,
 * each with its own FILTER (so that nothing overflows that plain SQL
 * would not): count(x) as the difference of two counts, sum(x) as the
 * difference of two sums plus the count of its non-null values (the sum
 * is NULL when that reaches 0, as SQL's is), avg(x) as that sum and
 * count.  Partial states then merge by plain addition, and a hidden state
 * column, streaming_rows, counts the group's rows.  A group whose rows all
 * went leaves the result table in the batch that takes them back, as it
 * would leave SELECT ... GROUP BY over the table; its state row, all
 * zeros, stays until the next batch deletes it (a partial index finds the
 * empty groups): the statement that made it empty cannot also delete it.
 * If the group comes back first, the merge adds to the zeros.
 *
 * Aggregates over DISTINCT values (operators/distinct_agg.c) keep, beside
 * each value of a group, how many of the group's rows hold it: a value is
 * in the set while that count is above 0, and the batch aggregates, as
 * added and taken-back rows, the values that came into the set and those
 * that left it.
 *
 * Only aggregates whose state subtracts exactly can be kept that way:
 * count, and sum and avg of integers and numerics (they have an inverse
 * transition function, pg_aggregate.aggminvtransfn); float sums, min,
 * max and the generic ones cannot, and neither can
 * append mode, stateless and deduplicating queries, joins of streams,
 * top-N, session windows and watermarks (a late delete would be dropped):
 * the planner asks RetractCheckQuery, RetractCheckSessions and
 * RetractPlanAggregate, which refuse them at create_query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "operators/retract.h"
#include "source.h"
#include "streaming.h"

#define OP_ADD "OPERATOR(pg_catalog.+)"
#define OP_SUB "OPERATOR(pg_catalog.-)"
#define OP_EQ  "OPERATOR(pg_catalog.=)"
#define OP_GT  "OPERATOR(pg_catalog.>)"

/*
 * RetractCheckQuery tells whether a query reads a source whose deleted rows
 * are taken back (plan->retract), and then refuses what cannot take a row
 * back: anything but an aggregation in update or complete mode of that
 * one source, read in the query's own FROM, without a watermark, a top-N
 * or a session window (the aggregates themselves: RetractPlanAggregate;
 * session windows: RetractCheckSessions).
 */
bool
RetractCheckQuery(Query *query, ContinuousPlan *plan, const char *event_time, bool ordered)
{
	Oid			source = InvalidOid;
	char	   *name;
	int			entries = 0;
	ListCell   *lc;

	foreach(lc, plan->sources)
		if (TableSourceRetracts(lfirst_oid(lc)))
			source = lfirst_oid(lc);
	if (!OidIsValid(source))
		return false;
	name = get_rel_name(source);
	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && rte->relid == source)
			entries++;
	}
	if (plan->shape != SHAPE_AGGREGATE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous query over source \"%s\" must aggregate", name),
				 errdetail("The source follows deletes and updates (changes \"all\"), which the query must take back from its results; %s",
						   plan->shape == SHAPE_DEDUP
						   ? "SELECT DISTINCT writes each row once and keeps no count of the rows behind it."
						   : "a query without GROUP BY or aggregates appends rows to its result, and a deleted row cannot be taken back from rows already written."),
				 errhint("Aggregate with count, sum or avg in update or complete mode, or create the source with changes \"insert\".")));
	if (plan->mode == OUTPUT_APPEND)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("append output mode cannot take rows back from the results of source \"%s\"", name),
				 errdetail("The source follows deletes and updates (changes \"all\"), but append mode writes each result row once, when final."),
				 errhint("Use update or complete mode.")));
	if (list_length(plan->sources) > 1 || entries != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("source \"%s\" must be the only stream of its continuous query, read once in the query's own FROM", name),
				 errdetail("The source follows deletes and updates (changes \"all\"); taking them back is supported for an aggregation of that source alone, not through joins of streams, UNION ALL or subqueries."),
				 errhint("Join the source with ordinary tables only, and name it directly in the query's FROM clause.")));
	if (event_time != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("event_time and watermark are not supported over source \"%s\"", name),
				 errdetail("The source follows deletes and updates (changes \"all\"); a delete behind the watermark would be dropped as late, and the results would keep the deleted row."),
				 errhint("Leave out event_time and watermark.")));
	if (ordered)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ORDER BY, LIMIT and the top rows per group are not supported over source \"%s\"", name),
				 errdetail("The source follows deletes and updates (changes \"all\"); a group that loses rows may fall out of the top ones, which the result table does not keep."),
				 errhint("Order and limit the result table in a view over it.")));
	return true;
}

/*
 * RetractCheckSessions refuses a session window over a source whose rows
 * are taken back, once the aggregation is planned.
 */
void
RetractCheckSessions(ContinuousPlan *plan)
{
	if (plan->session_key != NULL && plan->retract)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("session windows are not supported over source \"%s\"",
						get_rel_name(linitial_oid(plan->sources))),
				 errdetail("The source follows deletes and updates (changes \"all\"); a deleted row may split a session in two, which its state cannot tell."),
				 errhint("Group by the columns that make a session, or create the source with changes \"insert\".")));
}

/*
 * RetractPlanAggregate plans one aggregate over a source whose deleted rows
 * are taken back, as plan_one_aggregate does the others: each partial
 * state is what the batch added (rows without streaming_retracted) minus
 * what it took back, and merges by addition.  rows is the condition over
 * the batch's row "b" that the aggregate's rows satisfy (its FILTER), or
 * NULL.  It appends the state columns to outer, their merge to merge, and
 * returns the finalizer.  An aggregate whose state cannot subtract
 * exactly is refused.
 */
char *
RetractPlanAggregate(Aggref *agg, AggKind kind, Oid argtype, const char *arg,
					 const char *rows, const char *label, int *nstate,
					 StringInfo outer, StringInfo merge, ContinuousPlan *plan)
{
	const char *and_f = rows != NULL ? psprintf(" AND %s", rows) : "";
	char	   *added = psprintf(" FILTER (WHERE NOT b." RETRACT_COLUMN "%s)", and_f);
	char	   *taken = psprintf(" FILTER (WHERE b." RETRACT_COLUMN "%s)", and_f);
	const char *counted = kind == AGG_COUNT_STAR ? "*" : arg;
	char	   *s1;
	char	   *s2;
	const char *sum_type;
	bool		exact = argtype == INT2OID || argtype == INT4OID || argtype == INT8OID ||
		argtype == NUMERICOID;
	HeapTuple	tup;
	Oid			invfn;

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(agg->aggfnoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", agg->aggfnoid);
	invfn = ((Form_pg_aggregate) GETSTRUCT(tup))->aggminvtransfn;
	ReleaseSysCache(tup);
	if (!(kind == AGG_COUNT_STAR || kind == AGG_COUNT ||
		  ((kind == AGG_SUM || kind == AGG_AVG) && exact)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate %s%s cannot take rows back", format_procedure(agg->aggfnoid),
						agg->aggdistinct != NIL ? " over DISTINCT values" : ""),
				 errdetail("Source \"%s\" follows deletes and updates (changes \"all\"), so every aggregate of the query must subtract a deleted row from its state; %s",
						   get_rel_name(linitial_oid(plan->sources)),
						   !OidIsValid(invfn)
						   ? "this one has no inverse transition function (pg_aggregate.aggminvtransfn)."
						   : "of those with an inverse transition function, count, and sum and avg of integers and numerics are kept so."),
				 errhint("Use count, or sum or avg of integer or numeric values (with or without DISTINCT), or create the source with changes \"insert\" if the table's rows are never deleted or updated.")));

	s1 = psprintf("s%d", ++*nstate);
	if (kind == AGG_COUNT_STAR || kind == AGG_COUNT)
	{
		appendStringInfo(outer, ", (pg_catalog.count(%s)%s " OP_SUB " pg_catalog.count(%s)%s) AS %s",
						 counted, added, counted, taken, s1);
		appendStringInfo(merge, "%s%s = s.%s " OP_ADD " EXCLUDED.%s",
						 merge->len > 0 ? ", " : "", s1, s1, s1);
		plan->aggregates = lappend(plan->aggregates,
								   psprintf("%s: count in bigint column %s, the batch's rows added minus those taken back, merged by addition",
											label, s1));
		return psprintf("m.%s", s1);
	}

	/* sum and avg: the sum, never NULL, and the count of the values summed */
	s2 = psprintf("s%d", ++*nstate);
	sum_type = argtype == INT2OID || argtype == INT4OID ? "pg_catalog.int8" : "pg_catalog.numeric";
	appendStringInfo(outer,
					 ", (COALESCE(pg_catalog.sum(%s)%s, 0::%s) " OP_SUB " COALESCE(pg_catalog.sum(%s)%s, 0::%s)) AS %s"
					 ", (pg_catalog.count(%s)%s " OP_SUB " pg_catalog.count(%s)%s) AS %s",
					 arg, added, sum_type, arg, taken, sum_type, s1,
					 arg, added, arg, taken, s2);
	appendStringInfo(merge, "%s%s = s.%s " OP_ADD " EXCLUDED.%s, %s = s.%s " OP_ADD " EXCLUDED.%s",
					 merge->len > 0 ? ", " : "", s1, s1, s1, s2, s2, s2);
	plan->aggregates = lappend(plan->aggregates,
							   psprintf("%s: %s as sum %s and count %s of the values, each the batch's added minus taken back, merged by addition, finalized as %s",
										label, kind == AGG_SUM ? "sum" : "avg", s1, s2,
										kind == AGG_SUM ? "the sum, NULL when the count is 0" : "sum / count"));
	if (kind == AGG_AVG)
		return PlanAvgFinalizer(s1, s2, argtype, format_type_be_qualified(agg->aggtype));
	return psprintf("CASE WHEN m.%s " OP_GT " 0::pg_catalog.int8 THEN m.%s END", s2, s1);
}

/*
 * RetractMarkColumn returns the column of the input view that tells a
 * retracted row of the query's source, streaming_retracted, numbered
 * resno: ctid = SOURCE_RETRACTED_*, over the source's entry in the
 * query's own FROM (RetractCheckQuery made sure it is there, once).
 */
TargetEntry *
RetractMarkColumn(Query *query, ContinuousPlan *plan, AttrNumber resno)
{
	Oid			source = linitial_oid(plan->sources);
	ItemPointer tid = palloc(sizeof(ItemPointerData));
	Var		   *var = NULL;
	OpExpr	   *op;
	ListCell   *lc;

	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && rte->relid == source)
			var = makeVar(foreach_current_index(lc) + 1, SelfItemPointerAttributeNumber,
						  TIDOID, -1, InvalidOid, 0);
	}
	if (var == NULL)
		elog(ERROR, "source %u is not in the query's FROM", source);
	ItemPointerSet(tid, SOURCE_RETRACTED_BLOCK, SOURCE_RETRACTED_OFFSET);
	op = (OpExpr *) make_opclause(TIDEqualOperator, BOOLOID, false, (Expr *) var,
								  (Expr *) makeConst(TIDOID, -1, InvalidOid, sizeof(ItemPointerData),
													 PointerGetDatum(tid), false, false),
								  InvalidOid, InvalidOid);
	set_opfuncid(op);
	return makeTargetEntry((Expr *) op, resno, RETRACT_COLUMN, false);
}

/*
 * RetractRowCount is the count of the batch's rows "b" that satisfy rows
 * (all if NULL), grouped as the statement around it groups them: those
 * the batch added minus those it took back.
 */
char *
RetractRowCount(const char *rows)
{
	const char *and_rows = rows != NULL ? psprintf(" AND %s", rows) : "";

	return psprintf("(pg_catalog.count(*) FILTER (WHERE NOT b." RETRACT_COLUMN "%s) " OP_SUB
					" pg_catalog.count(*) FILTER (WHERE b." RETRACT_COLUMN "%s))",
					and_rows, and_rows);
}

/*
 * RetractPlanRows adds to the batch plan and merge the hidden state column
 * streaming_rows, the group's rows: those the batch added minus those it
 * took back, merged by addition.  rows is the condition the input rows
 * satisfy among the batch's rows (NULL: all are).
 */
void
RetractPlanRows(const char *rows, StringInfo outer, StringInfo merge, ContinuousPlan *plan)
{
	appendStringInfo(outer, ", %s AS streaming_rows", RetractRowCount(rows));
	appendStringInfoString(merge, ", streaming_rows = s.streaming_rows " OP_ADD " EXCLUDED.streaming_rows");
	plan->aggregates = lappend(plan->aggregates,
							   "streaming_rows: the group's rows, in bigint column streaming_rows, merged by addition; a group without rows leaves the result");
}

/*
 * RetractResultCondition is what a group's state row "m" satisfies to be
 * in the result when deleted rows are taken back: rows in the group (a
 * global aggregate keeps its one row, as SQL's has one over no rows); NULL
 * for other queries.
 */
char *
RetractResultCondition(ContinuousPlan *plan)
{
	if (plan->retract && plan->result_keys != NIL)
		return "m.streaming_rows " OP_GT " 0::pg_catalog.int8";
	return NULL;
}

/*
 * RetractEmptiedCte returns the CTE of the batch statement that deletes the
 * state rows of the groups that earlier batches emptied (none that this
 * batch merged: that was the same statement, and leaves them to the
 * next), or NULL.
 */
char *
RetractEmptiedCte(ContinuousPlan *plan, Oid state_table)
{
	if (!plan->retract)
		return NULL;
	return psprintf("emptied AS (DELETE FROM %s AS s WHERE s.streaming_rows " OP_EQ " 0::pg_catalog.int8)",
					RelationQualifiedName(state_table));
}

/*
 * RetractEmptyGroupsIndex is what the state table of a query that takes
 * deleted rows back is indexed on, so that a batch finds the groups that
 * earlier ones emptied without a scan (CREATE INDEX ON state ...); NULL
 * for other queries.
 */
const char *
RetractEmptyGroupsIndex(ContinuousPlan *plan)
{
	if (!plan->retract)
		return NULL;
	return "(streaming_rows) WHERE streaming_rows " OP_EQ " 0::pg_catalog.int8";
}
