/*-------------------------------------------------------------------------
 *
 * partial_agg.c
 *	  A grouped query's large batch, aggregated in parts while it is
 *	  decoded.
 *
 * A batch aggregates its input into one partial state per group (the
 * plan's batch_sql) before it merges them into the state table.  Over a
 * large batch that meant keeping every decoded row until the end (spilled
 * to a temporary file once past work_mem) and aggregating them all at
 * once, while a Kafka consumer waited.  Instead, each time the source's
 * rows reach a part (batch.c, PART_ROWS), batch_sql runs over them (less
 * the sort of its groups: partial_sql) and its partial states are kept;
 * the rows are let go.  Once the input is read,
 * the batch statement takes its groups from the combined partial states
 * (combine_sql) instead of from batch_sql: one row per group, as before,
 * so that the merge, the result and the counts are the same.
 *
 * Partial states combine with the aggregates that merge them into the
 * state table across batches (the plan's state_merge: the sum of counts
 * and sums, the max of maxima, ...), cast back to the state column's type.
 * A plan qualifies when every state column has such a merge; not sums of
 * floating-point numbers, whose rounding would depend on where the parts
 * begin (a single pass over the batch sums in input order); not distinct
 * aggregates, session windows, retractions or stream joins, which keep
 * more than a state per group.  Plans made before keep aggregating the
 * whole batch.
 *
 * streaming.batch_partials() returns the partial states to the batch
 * statement: the process's own, kept for the statement that runs next.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "partial_agg.h"
#include "streaming.h"

PG_FUNCTION_INFO_V1(streaming_batch_partials);

/* the partial states the next statement reads (PartialAggSetInput) */
static Tuplestorestate *batch_partials = NULL;
static TupleDesc batch_partials_desc = NULL;

/*
 * collation_clause: " COLLATE <name>" for a column whose collation is not
 * its type's, else "".
 */
static char *
collation_clause(Form_pg_attribute att)
{
	HeapTuple	tup;
	Form_pg_collation form;
	char	   *name;

	if (!OidIsValid(att->attcollation) || att->attcollation == get_typcollation(att->atttypid))
		return "";
	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(att->attcollation));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for collation %u", att->attcollation);
	form = (Form_pg_collation) GETSTRUCT(tup);
	name = quote_qualified_identifier(get_namespace_name(form->collnamespace), NameStr(form->collname));
	ReleaseSysCache(tup);
	return psprintf(" COLLATE %s", name);
}

/*
 * combine_sql builds the plan's batch plan over the partial states, or
 * returns NULL when the plan does not qualify (see the top of the file).
 */
static char *
combine_sql(ContinuousPlan *plan, Oid state_table, char **unique)
{
	Relation	rel;
	TupleDesc	desc;
	StringInfoData select;
	StringInfoData columns;
	StringInfoData groupby;
	ListCell   *merge;
	ListCell   *lc;
	bool		ok = true;

	if (plan->shape != SHAPE_AGGREGATE || plan->session_key != NULL || plan->distinct_table != NULL ||
		plan->retract || plan->join_sources != NIL || list_length(plan->sources) != 1 ||
		plan->input == NULL || plan->batch_sql == NULL || plan->state_merge == NIL ||
		!OidIsValid(state_table))
		return NULL;
	foreach(lc, plan->state_merge)
		if (lfirst(lc) == NULL)
			return NULL;

	initStringInfo(&select);
	initStringInfo(&columns);
	initStringInfo(&groupby);
	rel = table_open(state_table, AccessShareLock);
	desc = RelationGetDescr(rel);
	merge = list_head(plan->state_merge);
	for (int i = 0; i < desc->natts && ok; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *col = quote_identifier(NameStr(att->attname));
		char	   *type = format_type_extended(att->atttypid, att->atttypmod,
												FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
		bool		key = false;
		ListCell   *klc;

		if (att->attisdropped)
		{
			ok = false;
			break;
		}
		foreach(klc, plan->state_keys)
			key |= strcmp(lfirst(klc), NameStr(att->attname)) == 0;
		appendStringInfo(&columns, "%s%s %s%s", i > 0 ? ", " : "", col, type, collation_clause(att));
		if (key)
		{
			appendStringInfo(&select, "%su.%s", i > 0 ? ", " : "", col);
			appendStringInfo(&groupby, "%su.%s", groupby.len > 0 ? ", " : "", col);
			continue;
		}
		/* the state columns follow the keys, in the order of their merges */
		if (merge == NULL)
		{
			ok = false;
			break;
		}
		/* a floating-point sum depends on the order it adds in */
		if ((att->atttypid == FLOAT4OID || att->atttypid == FLOAT8OID) &&
			strncmp(lfirst(merge), "pg_catalog.sum(", 15) == 0)
			ok = false;
		appendStringInfo(&select, "%s(%s)::%s AS %s", i > 0 ? ", " : "", (char *) lfirst(merge), type, col);
		merge = lnext(plan->state_merge, merge);
	}
	table_close(rel, AccessShareLock);
	if (!ok || merge != NULL || groupby.len == 0)
		return NULL;

	/*
	 * Partial states that are one row per group, in the order of their
	 * keys (preagg.c), are the batch plan's rows as they are: neither
	 * combined nor sorted again.  The statement reads them in that order
	 * (its join with the held state keeps the order of its outer side).
	 */
	*unique = psprintf("SELECT * FROM streaming.batch_partials() AS u(%s)", columns.data);

	/*
	 * The groups in the order the batch plan gives them (planner.c): the
	 * partial states sorted on the state's key first, which the grouping
	 * then keeps.  The planner, which expects a few partial states per
	 * group, would rather hash them and sort the groups after; but there
	 * are about as many of them as groups (one per group and part, or per
	 * writing out of preagg.c's table), and both would spill.
	 */
	if (plan->window_size != NULL)
	{
		StringInfoData order;

		initStringInfo(&order);
		foreach(lc, plan->state_keys)
			appendStringInfo(&order, "%su.%s", order.len > 0 ? ", " : "",
							 quote_identifier(lfirst(lc)));
		appendStringInfo(&select, " FROM (SELECT * FROM streaming.batch_partials() AS u(%s) ORDER BY %s) AS u GROUP BY %s",
						 columns.data, order.data, groupby.data);
		return PlanOrderGroups(plan, psprintf("SELECT %s", select.data));
	}
	appendStringInfo(&select, " FROM streaming.batch_partials() AS u(%s) GROUP BY %s",
					 columns.data, groupby.data);
	return psprintf("SELECT %s", select.data);
}

/*
 * partial_sql returns the batch plan that each part runs: batch_sql
 * without the sort of its groups (PlanOrderGroups), which the partial
 * states do not need, as the combined ones are sorted again.
 */
static char *
partial_sql(ContinuousPlan *plan)
{
	const char *prefix = "SELECT * FROM (";
	char	   *sorted;
	size_t		len = strlen(plan->batch_sql);
	size_t		outer;

	if (plan->window_size == NULL)
		return plan->batch_sql;
	/* the wrapping of an empty plan tells its length */
	sorted = PlanOrderGroups(plan, "");
	outer = strlen(sorted);
	if (len <= outer || strncmp(plan->batch_sql, prefix, strlen(prefix)) != 0 ||
		strcmp(plan->batch_sql + len - (outer - strlen(prefix)), sorted + strlen(prefix)) != 0)
		return plan->batch_sql;
	return pnstrdup(plan->batch_sql + strlen(prefix), len - outer);
}

/*
 * PartialAggPlan decides, when a plan is made (create_query, alter_query,
 * the upgrade of an older plan), whether its batches may be aggregated in
 * parts, and makes what they need: combine_sql and the fingerprints of the
 * two statements (ResolvedFingerprint; call it as create_query does).  The
 * strings are copied into cxt.
 */
void
PartialAggPlan(ContinuousPlan *plan, Oid result_table, Oid state_table, MemoryContext cxt)
{
	Oid			close_types[1] = {TIMESTAMPTZOID};
	char	   *combine;
	char	   *unique = NULL;
	ContinuousPlan combined;

	plan->combine_sql = plan->partial_sql = plan->partial_fingerprint = plan->combine_fingerprint = NULL;
	plan->combine_unique_sql = NULL;
	/* a catalog older than 0.5 (before ALTER EXTENSION UPDATE) lacks it */
	if (!OidIsValid(LookupFuncName(list_make2(makeString(STREAMING_SCHEMA), makeString("batch_partials")),
								   0, NULL, true)))
		return;
	combine = combine_sql(plan, state_table, &unique);
	if (combine == NULL)
		return;
	combined = *plan;
	combined.batch_sql = combine;
	plan->combine_sql = MemoryContextStrdup(cxt, combine);
	plan->partial_sql = MemoryContextStrdup(cxt, partial_sql(plan));
	plan->partial_fingerprint = MemoryContextStrdup(cxt, ResolvedFingerprint(plan->partial_sql, 1, close_types));
	plan->combine_fingerprint =
		MemoryContextStrdup(cxt, ResolvedFingerprint(BuildBatchStatement(&combined, result_table, state_table, 0),
													  1, close_types));
	/* it runs under the same fingerprint (statement_spec in batch.c) */
	combined.batch_sql = unique;
	if (strcmp(ResolvedFingerprint(BuildBatchStatement(&combined, result_table, state_table, 0),
								   1, close_types), plan->combine_fingerprint) == 0)
		plan->combine_unique_sql = MemoryContextStrdup(cxt, unique);
}

/*
 * PartialAggCombined returns the plan whose batch statement reads the
 * combined partial states: a copy of plan with combine_sql as its batch
 * plan, or with combine_unique_sql when the partial states are one row
 * per group in the order of their keys (PreaggDumpSorted).
 */
ContinuousPlan *
PartialAggCombined(ContinuousPlan *plan, bool unique)
{
	ContinuousPlan *combined = palloc(sizeof(ContinuousPlan));

	*combined = *plan;
	combined->batch_sql = unique ? plan->combine_unique_sql : plan->combine_sql;
	return combined;
}

/*
 * PartialAggSetInput makes the partial states the rows of
 * streaming.batch_partials() until PartialAggClearInput; the caller keeps
 * and ends them.  A batch statement may run twice over them (see
 * run_batch_statement in batch.c): each call returns a copy.
 */
void
PartialAggSetInput(Tuplestorestate *partials, TupleDesc desc)
{
	batch_partials = partials;
	batch_partials_desc = desc;
}

void
PartialAggClearInput(void)
{
	batch_partials = NULL;
	batch_partials_desc = NULL;
}

/*
 * streaming_batch_partials implements streaming.batch_partials(): the
 * partial states of the batch under way, for its batch statement; outside
 * of one, an error.
 */
Datum
streaming_batch_partials(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0 || rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("streaming.batch_partials() must be called in FROM with a column definition list")));
	if (batch_partials == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("streaming.batch_partials() returns the partial states of a micro-batch, and none is under way")));
	if (batch_partials_desc->natts != rsinfo->expectedDesc->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the column definition list of streaming.batch_partials() does not match the partial states")));
	for (int i = 0; i < batch_partials_desc->natts; i++)
		if (TupleDescAttr(batch_partials_desc, i)->atttypid != TupleDescAttr(rsinfo->expectedDesc, i)->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("the column definition list of streaming.batch_partials() does not match the partial states")));
	/* the function scan ends the tuplestore it is given: a copy */
	{
		MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
		Tuplestorestate *copy = tuplestore_begin_heap(false, false, work_mem);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(batch_partials_desc, &TTSOpsMinimalTuple);

		tuplestore_rescan(batch_partials);
		while (tuplestore_gettupleslot(batch_partials, true, false, slot))
			tuplestore_puttupleslot(copy, slot);
		ExecDropSingleTupleTableSlot(slot);
		rsinfo->returnMode = SFRM_Materialize;
		rsinfo->setResult = copy;
		/* the executor frees a dynamic descriptor given back: a copy */
		rsinfo->setDesc = CreateTupleDescCopy(rsinfo->expectedDesc);
		MemoryContextSwitchTo(old);
	}
	return (Datum) 0;
}
