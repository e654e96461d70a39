/*-------------------------------------------------------------------------
 *
 * planner.c
 *	  Analysis of a continuous query and generation of the SQL that keeps
 *	  its result incrementally.
 *
 * The user's SELECT is parsed and analysed once, at create_query.  For an
 * aggregation the engine derives, from the analysed Query:
 *
 *	- the batch plan: the user's FROM/WHERE over the batch only, projected
 *	  to the group keys and the aggregates' arguments (deparsed by
 *	  PostgreSQL itself), grouped once more to one partial state per group;
 *	- the state table: the batch plan's columns, unique on the keys;
 *	- the merge: INSERT ... ON CONFLICT (keys) DO UPDATE SET s = combine;
 *	- the finalizers: result column values computed from merged state;
 *	- the emit: the finalized rows of the groups this batch touched,
 *	  upserted into the result table.
 *
 * All of it runs as one statement per batch, so a batch costs what its
 * input and the groups it touches cost, never a rescan of history.
 *
 * Deletes and updates of a table source with changes "all" are taken
 * back from the aggregates (operators/retract.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "optimizer/clauses.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "formats/event_time.h"
#include "operators/distinct_agg.h"
#include "operators/retract.h"
#include "operators/stream_join.h"
#include "operators/topn.h"
#include "operators/window_state.h"
#include "planner.h"
#include "source.h"
#include "streaming.h"
#include "window.h"

/*
 * Operators in generated statements are pg_catalog's, named so: the
 * statements run under the query owner's search_path, where a schema
 * others can write to might define an operator that matches mixed
 * argument types better than pg_catalog's.  OPERATOR() has one precedence
 * whatever it names, so expressions built with them are parenthesized.
 */
#define OP_ADD "OPERATOR(pg_catalog.+)"
#define OP_SUB "OPERATOR(pg_catalog.-)"
#define OP_MUL "OPERATOR(pg_catalog.*)"
#define OP_DIV "OPERATOR(pg_catalog./)"
#define OP_EQ  "OPERATOR(pg_catalog.=)"
#define OP_GT  "OPERATOR(pg_catalog.>)"
#define OP_LE  "OPERATOR(pg_catalog.<=)"

/*
 * OutputModeFromString parses output_mode, with the valid choices in the
 * hint.
 */
OutputMode
OutputModeFromString(const char *mode)
{
	if (strcmp(mode, "append") == 0)
		return OUTPUT_APPEND;
	if (strcmp(mode, "update") == 0)
		return OUTPUT_UPDATE;
	if (strcmp(mode, "complete") == 0)
		return OUTPUT_COMPLETE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid output mode \"%s\"", mode),
			 errhint("Valid output modes are append, update and complete.")));
	return OUTPUT_APPEND;		/* keep compiler quiet */
}

const char *
OutputModeName(OutputMode mode)
{
	switch (mode)
	{
		case OUTPUT_APPEND:
			return "append";
		case OUTPUT_UPDATE:
			return "update";
		case OUTPUT_COMPLETE:
			return "complete";
	}
	return "?";
}

/*
 * analyze_query parses and analyses the text of a continuous query.  An
 * unknown relation gets a hint about sources.
 */
static Query *
analyze_query(const char *sql)
{
	List	   *raw;
	RawStmt    *rs;
	Query	   *query = NULL;
	MemoryContext ctx = CurrentMemoryContext;

	raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(raw) != 1 ||
		!IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("a continuous query must be a single SELECT statement"),
				 errhint("Pass the query as text, e.g. 'SELECT name, count(*) FROM src GROUP BY name'.")));
	rs = linitial_node(RawStmt, raw);

	PG_TRY();
	{
#if PG_VERSION_NUM >= 150000
		query = parse_analyze_fixedparams(rs, sql, NULL, 0, NULL);
#else
		query = parse_analyze(rs, sql, NULL, 0, NULL);
#endif
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		if (edata->sqlerrcode == ERRCODE_UNDEFINED_TABLE && edata->hint == NULL)
		{
			FlushErrorState();
			edata->hint = pstrdup("Create the source with streaming.create_source() first, or check the name and search_path.");
			ReThrowError(edata);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();

	return query;
}

typedef struct SourceWalk
{
	List	   *sources;
	int			references;
	List	   *temp_relations; /* names of temporary relations read */
} SourceWalk;

/*
 * find_sources_walker collects the streaming sources a query reads, in
 * subqueries too, and the temporary relations it reads.
 */
static bool
find_sources_walker(Node *node, SourceWalk *walk)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION && IsStreamingSource(rte->relid))
		{
			walk->references++;
			walk->sources = list_append_unique_oid(walk->sources, rte->relid);
		}
		if (rte->rtekind == RTE_RELATION &&
			get_rel_persistence(rte->relid) == RELPERSISTENCE_TEMP)
			walk->temp_relations = lappend(walk->temp_relations, get_rel_name(rte->relid));
		return false;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, find_sources_walker, walk,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, find_sources_walker, walk);
}

static void
reject(const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s", what),
			 errhint("%s", hint)));
}

/*
 * check_stream_subqueries rejects a subquery that reads the stream and
 * aggregates it or calls a window function: it would see one batch only,
 * where the query means the whole stream.  (The top rows per group,
 * row_number() OVER (PARTITION BY ...) <= n over an aggregation, are such
 * a subquery.)
 */
static bool
check_stream_subqueries(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *sub = (Query *) node;
		SourceWalk	walk = {NIL, 0, NIL};

		(void) query_tree_walker(sub, find_sources_walker, &walk, QTW_EXAMINE_RTES_BEFORE);
		if (walk.sources != NIL && sub->hasWindowFuncs)
			reject("window functions are not supported in continuous queries",
				   "Use streaming.window() for event-time windows, or a view over the result table.");
		if (walk.sources != NIL && (sub->hasAggs || sub->groupClause != NIL))
			reject("a subquery that aggregates a streaming source is not supported in continuous queries",
				   "Make the aggregation the continuous query, and query its result table.");
		return query_tree_walker(sub, check_stream_subqueries, context, 0);
	}
	return expression_tree_walker(node, check_stream_subqueries, context);
}

/*
 * check_query_shape rejects what a continuous query cannot do.
 */
static void
check_query_shape(Query *query)
{
	(void) query_tree_walker(query, check_stream_subqueries, NULL, 0);
	/* UNION ALL: see check_stream_inputs; ORDER BY and LIMIT: PlanTopN (operators/topn.c) */
	if (query->distinctClause != NIL &&
		(query->hasAggs || query->groupClause != NIL || query->havingQual != NULL))
		reject("SELECT DISTINCT with aggregates is not supported in continuous queries",
			   "Apply DISTINCT in a view over the result table.");
	if (query->hasWindowFuncs)
		reject("window functions are not supported in continuous queries",
			   "Use streaming.window() for event-time windows, or a view over the result table.");
	if (query->groupingSets != NIL)
		reject("GROUPING SETS, ROLLUP and CUBE are not supported in continuous queries",
			   "Create one query per grouping.");
	if (query->hasRecursive || query->cteList != NIL)
		reject("WITH is not supported in continuous queries",
			   "Write the common table expression as a subquery in FROM.");
	if (query->rowMarks != NIL)
		reject("FOR UPDATE and FOR SHARE are not supported in continuous queries",
			   "Remove the locking clause.");
}

/*
 * distinct_set_kind accepts a DISTINCT aggregate that is computed from the
 * set of its distinct values (operators/distinct_agg.c), kept as arrays of
 * its arguments: not over arrays, which an array of them would flatten.
 */
static AggKind
distinct_set_kind(Aggref *agg, const char *name)
{
	ListCell   *lc;

	foreach(lc, agg->aggargtypes)
		if (OidIsValid(get_element_type(getBaseType(lfirst_oid(lc)))))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("%s(DISTINCT ...) over an array is not supported in continuous queries", name),
					 errdetail("The distinct values of %s are kept as an array, and an array of arrays would merge them.", name),
					 errhint("Aggregate the array's elements, or use count(DISTINCT ...) of it.")));
	return AGG_DISTINCT_SET;
}

static AggKind
classify_aggregate(Aggref *agg, Oid *argtype)
{
	HeapTuple	tup;
	Form_pg_aggregate aggform;
	Oid			combinefn;
	char	   *name = get_func_name(agg->aggfnoid);
	bool		builtin = get_func_namespace(agg->aggfnoid) == PG_CATALOG_NAMESPACE;

	*argtype = list_length(agg->aggargtypes) == 1 ? linitial_oid(agg->aggargtypes) : InvalidOid;

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(agg->aggfnoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for aggregate %u", agg->aggfnoid);
	aggform = (Form_pg_aggregate) GETSTRUCT(tup);
	combinefn = aggform->aggcombinefn;
	ReleaseSysCache(tup);

	if (agg->aggkind != AGGKIND_NORMAL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ordered-set aggregate %s has no incremental form", name),
				 errdetail("It needs all the values of a group at once, in order; the partial results of separate batches cannot be merged."),
				 errhint("Use an aggregate over a mergeable sketch instead, e.g. tdigest_percentile(x, 100, 0.95) of the tdigest extension for percentiles.")));
	if (agg->aggorder != NIL)
		reject(psprintf("ORDER BY inside aggregate %s is not supported in continuous queries", name),
			   agg->aggdistinct != NIL ? "Remove the ORDER BY: an aggregate over DISTINCT values sees them in their sort order."
			   : "Remove the ORDER BY from the aggregate's arguments.");
	if (agg->aggdistinct != NIL && !OidIsValid(combinefn))
		return distinct_set_kind(agg, name);
	if (!OidIsValid(combinefn))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate function %s has no incremental form", name),
				 errdetail("It has no combine function, so the partial results of separate batches cannot be merged."),
				 errhint("Use an aggregate that has one (pg_aggregate.aggcombinefn), such as count, sum, avg, min or max, or one over DISTINCT values.")));

	if (builtin && strcmp(name, "count") == 0)
		return agg->aggstar ? AGG_COUNT_STAR : AGG_COUNT;
	if (builtin && (strcmp(name, "min") == 0 || strcmp(name, "max") == 0))
		return name[1] == 'i' ? AGG_MIN : AGG_MAX;
	if (builtin && (strcmp(name, "bool_and") == 0 || strcmp(name, "every") == 0))
		return AGG_BOOL_AND;
	if (builtin && strcmp(name, "bool_or") == 0)
		return AGG_BOOL_OR;
	if (builtin && (strcmp(name, "variance") == 0 || strcmp(name, "var_samp") == 0 ||
					strcmp(name, "var_pop") == 0 || strcmp(name, "stddev") == 0 ||
					strcmp(name, "stddev_samp") == 0 || strcmp(name, "stddev_pop") == 0))
	{
		switch (*argtype)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
				return AGG_VARIANCE;
		}
	}
	if (builtin && strcmp(name, "sum") == 0)
	{
		switch (*argtype)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
			case CASHOID:
			case INTERVALOID:
				return AGG_SUM;
		}
	}
	if (builtin && strcmp(name, "avg") == 0)
	{
		switch (*argtype)
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
			case INTERVALOID:
				return AGG_AVG;
		}
	}
	if (agg->aggtranstype == INTERNALOID)
	{
		tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(agg->aggfnoid));
		aggform = (Form_pg_aggregate) GETSTRUCT(tup);
		if (!OidIsValid(aggform->aggserialfn) || !OidIsValid(aggform->aggdeserialfn))
		{
			ReleaseSysCache(tup);
			if (agg->aggdistinct != NIL)
				return distinct_set_kind(agg, name);
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("aggregate function %s has no incremental form", name),
					 errdetail("Its state has type internal and it has no serialization functions, so its state cannot be stored between batches."),
					 errhint("Use an aggregate with serialfunc and deserialfunc, or one with a non-internal state.")));
		}
		ReleaseSysCache(tup);
	}
	return AGG_GENERIC;
}

/*
 * only_union_all tells whether a set operation tree is UNION ALL alone.
 */
static bool
only_union_all(Node *node)
{
	SetOperationStmt *op;

	if (node == NULL || IsA(node, RangeTblRef))
		return true;
	op = castNode(SetOperationStmt, node);
	return op->op == SETOP_UNION && op->all &&
		only_union_all(op->larg) && only_union_all(op->rarg);
}

static bool
reads_stream_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		return rte->rtekind == RTE_RELATION && IsStreamingSource(rte->relid);
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, reads_stream_walker, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, reads_stream_walker, context);
}

/* reads_stream tells whether a query or expression reads a source */
static bool
reads_stream(Node *node)
{
	return reads_stream_walker(node, NULL);
}

/*
 * check_stream_inputs refuses, at every level of a query, what combines
 * two streams in ways a batch cannot keep: UNION, INTERSECT and EXCEPT
 * over streams (which would compare the rows of one batch only), a join
 * of streams below the query's top level, or of a stream with a subquery
 * over one, a stream in a subquery of an expression beside another.
 * Streams may be combined with UNION ALL and, in the query's own FROM,
 * joined (operators/stream_join.c); a stream may be joined with ordinary
 * tables.
 */
static bool
check_stream_inputs(Query *query, bool top)
{
	int			streams = 0;
	int			others = 0;
	ListCell   *lc;

	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && IsStreamingSource(rte->relid))
			streams++;
		else if (rte->rtekind == RTE_SUBQUERY && check_stream_inputs(rte->subquery, false))
			others++;
	}
	if (query->setOperations != NULL)
	{
		if (streams + others > 0 && !only_union_all(query->setOperations))
			reject("UNION, INTERSECT and EXCEPT of streams are not supported in continuous queries",
				   "Combine streams with UNION ALL; for distinct rows, SELECT DISTINCT over the UNION ALL in a subquery.");
		return streams + others > 0;
	}
	/* streams read by subqueries of expressions (WHERE x IN (SELECT ...)) */
	if (reads_stream((Node *) query->jointree->quals) || reads_stream((Node *) query->targetList) ||
		reads_stream(query->havingQual))
		others++;
	/* sources joined in the query's own FROM: operators/stream_join.c */
	if (streams + others > 1 && (!top || others > 0))
		reject("this join between streams is not supported in continuous queries",
			   "Join the sources themselves in the query's own FROM clause (not subqueries over them, nor in a subquery), or combine streams with UNION ALL.");
	return streams + others > 0;
}

static bool event_time_expr(Query *query, Node *expr, List *event_times);

/*
 * event_time_leaves tells whether column attno of every branch of a UNION
 * ALL (set operation tree node of query) is an event-time column.
 */
static bool
event_time_leaves(Query *query, Node *node, AttrNumber attno, List *event_times)
{
	if (IsA(node, RangeTblRef))
	{
		RangeTblEntry *rte = rt_fetch(((RangeTblRef *) node)->rtindex, query->rtable);
		TargetEntry *tle;

		if (rte->rtekind != RTE_SUBQUERY)
			return false;
		tle = get_tle_by_resno(rte->subquery->targetList, attno);
		return tle != NULL && event_time_expr(rte->subquery, (Node *) tle->expr, event_times);
	}
	return event_time_leaves(query, ((SetOperationStmt *) node)->larg, attno, event_times) &&
		event_time_leaves(query, ((SetOperationStmt *) node)->rarg, attno, event_times);
}

/*
 * event_time_expr tells whether an expression of query is the event-time
 * column of a source: the column itself, or a column of a subquery that
 * is one, in every branch of a UNION ALL.
 */
static bool
event_time_expr(Query *query, Node *expr, List *event_times)
{
	RangeTblEntry *rte;
	Var		   *var;

	while (expr != NULL && IsA(expr, RelabelType))
		expr = (Node *) ((RelabelType *) expr)->arg;
	if (expr == NULL || !IsA(expr, Var))
		return false;
	var = (Var *) expr;
	if (var->varlevelsup != 0 || var->varno < 1 || var->varno > list_length(query->rtable) ||
		var->varattno <= 0)
		return false;
	rte = rt_fetch(var->varno, query->rtable);
	if (rte->rtekind == RTE_RELATION && IsStreamingSource(rte->relid))
	{
		EventTimeEntry *e = EventTimeSpecFind(event_times, rte->relid);

		return e != NULL && e->column != NULL && var->varattno == e->attno;
	}
	if (rte->rtekind == RTE_SUBQUERY && rte->subquery->setOperations != NULL)
		return event_time_leaves(rte->subquery, rte->subquery->setOperations, var->varattno,
								 event_times);
	if (rte->rtekind == RTE_SUBQUERY)
	{
		TargetEntry *tle = get_tle_by_resno(rte->subquery->targetList, var->varattno);

		return tle != NULL && event_time_expr(rte->subquery, (Node *) tle->expr, event_times);
	}
	return false;
}

/*
 * is_event_time_window tells whether a group key is streaming.window() of
 * an event-time column of the query's sources: the key that the watermark
 * closes.
 */
static bool
is_event_time_window(Query *query, Node *expr, List *event_times)
{
	FuncExpr   *fexpr;

	if (event_times == NIL || !IsA(expr, FuncExpr))
		return false;
	fexpr = (FuncExpr *) expr;
	if ((strcmp(get_func_name(fexpr->funcid), "window") != 0 &&
		 strcmp(get_func_name(fexpr->funcid), "session_window") != 0) ||
		get_func_namespace(fexpr->funcid) != get_namespace_oid(STREAMING_SCHEMA, false))
		return false;
	return event_time_expr(query, linitial(fexpr->args), event_times);
}

/*
 * is_streaming_func tells whether expr calls streaming.<name>().
 */
static bool
is_streaming_func(Node *expr, const char *name)
{
	FuncExpr   *fexpr;

	if (!IsA(expr, FuncExpr))
		return false;
	fexpr = (FuncExpr *) expr;
	return strcmp(get_func_name(fexpr->funcid), name) == 0 &&
		get_func_namespace(fexpr->funcid) == get_namespace_oid(STREAMING_SCHEMA, false);
}

/*
 * check_window_calls refuses, when the query is created, a call of
 * streaming.window() with constant arguments that would fail on its first
 * row: a size in months, a slide that puts a row in too many windows.
 */
static bool
check_window_calls(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (is_streaming_func(node, "window"))
		WindowCheckConstArgs((FuncExpr *) node);
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, check_window_calls, context, 0);
	return expression_tree_walker(node, check_window_calls, context);
}

static char *
deparse_query(Query *query)
{
	int			nestlevel = PushCatalogSearchPath();
	char	   *sql = pg_get_querydef(query, false);

	PopCatalogSearchPath(nestlevel);
	return sql;
}

/* PlanDeparseQuery is deparse_query, for the operators */
char *
PlanDeparseQuery(Query *query)
{
	return deparse_query(query);
}

/*
 * plan_variance keeps var_samp, var_pop, stddev_samp and stddev_pop (and
 * their aliases variance and stddev).
 *
 * Floating-point input keeps (n, mean, m2) and merges partial states with
 * Chan's parallel formula, which stays accurate where a running sum of
 * squares would cancel catastrophically.  Integer and numeric input keeps
 * the exact numeric sums (n, sum x, sum x^2) that PostgreSQL's own numeric
 * variance uses, merged by exact addition.  It returns the finalizer.
 */
static char *
plan_variance(Aggref *agg, Oid argtype, const char *arg, const char *filter,
			  const char *colname, int *nstate, StringInfo outer,
			  StringInfo merge, ContinuousPlan *plan)
{
	char	   *name = get_func_name(agg->aggfnoid);
	bool		pop = strcmp(name, "var_pop") == 0 || strcmp(name, "stddev_pop") == 0;
	bool		root = strncmp(name, "stddev", 6) == 0;
	char	   *n = psprintf("s%d", ++*nstate);
	char	   *a = psprintf("s%d", ++*nstate);
	char	   *b = psprintf("s%d", ++*nstate);
	char	   *restype = format_type_be_qualified(agg->aggtype);
	char	   *var;
	const char *sep = merge->len > 0 ? ", " : "";

	if (argtype == FLOAT4OID || argtype == FLOAT8OID)
	{
		/* a = mean, b = m2 (sum of squared deviations from the mean) */
		appendStringInfo(outer,
						 ", pg_catalog.count(%s)%s AS %s"
						 ", pg_catalog.avg(%s::pg_catalog.float8)%s AS %s"
						 ", pg_catalog.var_pop(%s::pg_catalog.float8)%s " OP_MUL
						 " pg_catalog.count(%s)%s::pg_catalog.float8 AS %s",
						 arg, filter, n, arg, filter, a, arg, filter, arg, filter, b);
		appendStringInfo(merge,
						 "%s%s = s.%s " OP_ADD " EXCLUDED.%s"
						 ", %s = CASE WHEN s.%s " OP_EQ " 0::pg_catalog.int8 THEN EXCLUDED.%s"
						 " WHEN EXCLUDED.%s " OP_EQ " 0::pg_catalog.int8 THEN s.%s"
						 " ELSE s.%s " OP_ADD " (((EXCLUDED.%s " OP_SUB " s.%s) " OP_MUL " EXCLUDED.%s::pg_catalog.float8)"
						 " " OP_DIV " (s.%s " OP_ADD " EXCLUDED.%s)::pg_catalog.float8) END"
						 ", %s = CASE WHEN s.%s " OP_EQ " 0::pg_catalog.int8 THEN EXCLUDED.%s"
						 " WHEN EXCLUDED.%s " OP_EQ " 0::pg_catalog.int8 THEN s.%s"
						 " ELSE (s.%s " OP_ADD " EXCLUDED.%s) " OP_ADD " (((((EXCLUDED.%s " OP_SUB " s.%s) " OP_MUL
						 " (EXCLUDED.%s " OP_SUB " s.%s))"
						 " " OP_MUL " s.%s::pg_catalog.float8) " OP_MUL " EXCLUDED.%s::pg_catalog.float8)"
						 " " OP_DIV " (s.%s " OP_ADD " EXCLUDED.%s)::pg_catalog.float8) END",
						 sep, n, n, n,
						 a, n, a, n, a, a, a, a, n, n, n,
						 b, n, b, n, b, b, b, a, a, a, a, n, n, n, n);
		var = psprintf("CASE WHEN m.%s " OP_GT " %d::pg_catalog.int8"
					   " THEN GREATEST(m.%s, 0::pg_catalog.float8) " OP_DIV
					   " (m.%s " OP_SUB " %d::pg_catalog.int8)::pg_catalog.float8 END",
					   n, pop ? 0 : 1, b, n, pop ? 0 : 1);
		plan->aggregates = lappend(plan->aggregates,
								   psprintf("%s: %s as count %s, mean %s and sum of squared deviations %s, merged by Chan's parallel formula",
											colname, name, n, a, b));
	}
	else
	{
		/* a = sum x, b = sum x^2, both exact numeric */
		appendStringInfo(outer,
						 ", pg_catalog.count(%s)%s AS %s"
						 ", pg_catalog.sum(%s::pg_catalog.numeric)%s AS %s"
						 ", pg_catalog.sum(%s::pg_catalog.numeric " OP_MUL " %s::pg_catalog.numeric)%s AS %s",
						 arg, filter, n, arg, filter, a, arg, arg, filter, b);
		appendStringInfo(merge,
						 "%s%s = s.%s " OP_ADD " EXCLUDED.%s"
						 ", %s = COALESCE(s.%s " OP_ADD " EXCLUDED.%s, s.%s, EXCLUDED.%s)"
						 ", %s = COALESCE(s.%s " OP_ADD " EXCLUDED.%s, s.%s, EXCLUDED.%s)",
						 sep, n, n, n, a, a, a, a, a, b, b, b, b, b);
		var = psprintf("CASE WHEN m.%s " OP_GT " %d::pg_catalog.int8"
					   " THEN GREATEST(((m.%s::pg_catalog.numeric " OP_MUL " m.%s) " OP_SUB " (m.%s " OP_MUL " m.%s)),"
					   " 0::pg_catalog.numeric)"
					   " " OP_DIV " (m.%s::pg_catalog.numeric " OP_MUL " (m.%s " OP_SUB " %d::pg_catalog.int8)::pg_catalog.numeric) END",
					   n, pop ? 0 : 1, n, b, a, a, n, n, pop ? 0 : 1);
		plan->aggregates = lappend(plan->aggregates,
								   psprintf("%s: %s as count %s, exact numeric sum %s and sum of squares %s, merged by addition",
											colname, name, n, a, b));
	}
	return psprintf("CAST(%s%s%s AS %s)", root ? "pg_catalog.sqrt(" : "",
					var, root ? ")" : "", restype);
}

/*
 * AggBuild collects the pieces of an aggregation's plan while
 * plan_aggregate walks the query: the inner query's target list (group
 * keys, aggregate arguments, filters), the batch plan's SELECT list and
 * GROUP BY, the merge's SET list, the group key expressions (state keys
 * k1, k2, ...) and the distinct aggregates (values v1, v2, ...).
 */
typedef struct AggBuild
{
	List	   *inner_tlist;
	int			resno;
	int			nkeys;
	int			nstate;
	int			nargs;
	int			nfilters;
	StringInfoData outer;
	StringInfoData groupby;
	StringInfoData merge;
	List	   *key_exprs;		/* group key expressions, in key order */
	List	   *aggrefs;		/* distinct aggregates, in value order */
	const char *column;			/* what finalize_mutator is rewriting */
	int			window_keyno;	/* the key kept as its window's start, or 0 */
	int64		window_usecs;	/* that window's size */
	bool		has_distinct;	/* some aggregate keeps its distinct values */
	List	   *distinct_aggs;	/* those aggregates (DistinctAgg) */
} AggBuild;

/* text_list returns names as "a, b, c" */
static char *
text_list(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * keeps_distinct tells whether an aggregate is over DISTINCT values that
 * must be kept: not min, max, bool_and or bool_or, which DISTINCT does not
 * change.
 */
static bool
keeps_distinct(Aggref *agg)
{
	char	   *name;

	if (agg->aggdistinct == NIL)
		return false;
	if (get_func_namespace(agg->aggfnoid) != PG_CATALOG_NAMESPACE)
		return true;
	name = get_func_name(agg->aggfnoid);
	return strcmp(name, "min") != 0 && strcmp(name, "max") != 0 &&
		strcmp(name, "bool_and") != 0 && strcmp(name, "bool_or") != 0 &&
		strcmp(name, "every") != 0;
}

/*
 * avg_finalizer is avg from its state: sum s1 and count s2 of the values.
 */
static char *
avg_finalizer(const char *s1, const char *s2, Oid argtype, const char *restype)
{
	const char *divisor;

	if (argtype == FLOAT4OID || argtype == FLOAT8OID || argtype == INTERVALOID)
		divisor = "pg_catalog.float8";
	else
		divisor = "pg_catalog.numeric";
	/* no NULLIF: it would look its = operator up by name */
	return psprintf("CAST(m.%s%s " OP_DIV " (CASE WHEN m.%s " OP_EQ " 0::pg_catalog.int8"
					" THEN NULL ELSE m.%s END)::%s AS %s)",
					s1, strcmp(divisor, "pg_catalog.numeric") == 0 ? "::pg_catalog.numeric" : "",
					s2, s2, divisor, restype);
}

/*
 * plan_one_aggregate adds to the batch plan and merge the partial state of
 * one aggregate and returns its finalizer: the expression that computes
 * its value from a state row, "m".  label names it in explain().
 */
static char *
plan_one_aggregate(Aggref *agg, const char *label, AggBuild *b, ContinuousPlan *plan)
{
	AggKind		kind;
	Oid			argtype;
	char	   *arg = NULL;
	char	   *all_args = "";
	char	   *filter = "";
	char	   *s1;
	char	   *s2;
	char	   *restype;
	char	   *finalizer = NULL;
	char	   *f = NULL;
	char	   *rows;
	List	   *arg_columns = NIL;
	List	   *arg_types = NIL;

	kind = classify_aggregate(agg, &argtype);
	restype = format_type_be_qualified(agg->aggtype);

	if (agg->args != NIL)
	{
		StringInfoData all;
		ListCell   *alc;

		/* every argument becomes a column of the inner query */
		initStringInfo(&all);
		foreach(alc, agg->args)
		{
			TargetEntry *argtle = lfirst_node(TargetEntry, alc);
			char	   *a;
			char	   *typed;

			/* a column of the input view cannot be of an anonymous record type */
			if (exprType((Node *) argtle->expr) == RECORDOID)
				reject(psprintf("an argument of aggregate %s is an anonymous record, which a continuous query cannot keep",
								get_func_name(agg->aggfnoid)),
					   "Cast the row to a composite type: after CREATE TYPE pair AS (a text, b int), count(DISTINCT (a, b)::pair).");
			a = psprintf("a%d", ++b->nargs);
			typed = psprintf("b.%s::%s", a,
							 format_type_be_qualified(exprType((Node *) argtle->expr)));

			b->inner_tlist = lappend(b->inner_tlist,
									 makeTargetEntry(copyObject(argtle->expr), b->resno++, a, false));
			arg_columns = lappend(arg_columns, a);
			arg_types = lappend_oid(arg_types, exprType((Node *) argtle->expr));
			if (arg == NULL)
				arg = typed;
			appendStringInfo(&all, ", %s", typed);
		}
		all_args = all.data;
	}
	if (agg->aggfilter != NULL)
	{
		/* numbered on their own: several aggregates may have no argument */
		f = psprintf("f%d", ++b->nfilters);

		b->inner_tlist = lappend(b->inner_tlist,
								 makeTargetEntry(copyObject(agg->aggfilter), b->resno++, f, false));
		filter = psprintf(" FILTER (WHERE b.%s)", f);
	}
	rows = f != NULL ? psprintf("b.%s", f) : NULL;
	if (keeps_distinct(agg))
	{
		/* it aggregates its group's new distinct values, which its FILTER passed */
		DistinctAgg *d = palloc0(sizeof(DistinctAgg));

		d->number = list_length(b->distinct_aggs) + 1;
		d->columns = arg_columns;
		d->types = arg_types;
		d->filter = f;
		b->distinct_aggs = lappend(b->distinct_aggs, d);
		filter = DistinctAggFilter(d->number);
		rows = DistinctAggRows(d->number);
		plan->aggregates = lappend(plan->aggregates,
								   psprintf("%s: over the distinct values of its group, kept in the distinct table (streaming_d = %d)",
											label, d->number));
	}
	else if (b->has_distinct)
	{
		filter = DistinctAggOtherFilter(f);
		rows = DistinctAggOtherRows(f);
	}
	if (plan->retract)
		return RetractPlanAggregate(agg, kind, argtype, arg, rows, label, &b->nstate,
									&b->outer, &b->merge, plan);

	s1 = psprintf("s%d", ++b->nstate);
	switch (kind)
	{
		case AGG_COUNT_STAR:
		case AGG_COUNT:
			appendStringInfo(&b->outer, ", pg_catalog.count(%s)%s AS %s",
							 kind == AGG_COUNT_STAR ? "*" : arg, filter, s1);
			appendStringInfo(&b->merge, "%s%s = s.%s " OP_ADD " EXCLUDED.%s",
							 b->merge.len > 0 ? ", " : "", s1, s1, s1);
			finalizer = psprintf("m.%s", s1);
			plan->state_merge = lappend(plan->state_merge, psprintf("pg_catalog.sum(u.%s)", s1));
			plan->aggregates = lappend(plan->aggregates,
									   psprintf("%s: count in bigint column %s, merged by addition", label, s1));
			break;
		case AGG_SUM:
			appendStringInfo(&b->outer, ", pg_catalog.sum(%s)%s AS %s", arg, filter, s1);
			appendStringInfo(&b->merge, "%s%s = COALESCE(s.%s " OP_ADD " EXCLUDED.%s, s.%s, EXCLUDED.%s)",
							 b->merge.len > 0 ? ", " : "", s1, s1, s1, s1, s1);
			finalizer = psprintf("m.%s", s1);
			plan->state_merge = lappend(plan->state_merge, psprintf("pg_catalog.sum(u.%s)", s1));
			plan->aggregates = lappend(plan->aggregates,
									   psprintf("%s: sum in %s column %s, merged by addition", label, restype, s1));
			break;
		case AGG_MIN:
		case AGG_MAX:
			appendStringInfo(&b->outer, ", pg_catalog.%s(%s)%s AS %s",
							 kind == AGG_MIN ? "min" : "max", arg, filter, s1);
			appendStringInfo(&b->merge, "%s%s = %s(s.%s, EXCLUDED.%s)",
							 b->merge.len > 0 ? ", " : "", s1,
							 kind == AGG_MIN ? "LEAST" : "GREATEST", s1, s1);
			finalizer = psprintf("m.%s", s1);
			plan->state_merge = lappend(plan->state_merge,
										psprintf("pg_catalog.%s(u.%s)", kind == AGG_MIN ? "min" : "max", s1));
			plan->aggregates = lappend(plan->aggregates,
									   psprintf("%s: %s in column %s, merged by %s", label,
												kind == AGG_MIN ? "min" : "max", s1,
												kind == AGG_MIN ? "LEAST" : "GREATEST"));
			break;
		case AGG_BOOL_AND:
		case AGG_BOOL_OR:
			appendStringInfo(&b->outer, ", pg_catalog.%s(%s)%s AS %s",
							 kind == AGG_BOOL_AND ? "bool_and" : "bool_or", arg, filter, s1);
			appendStringInfo(&b->merge, "%s%s = COALESCE(s.%s %s EXCLUDED.%s, s.%s, EXCLUDED.%s)",
							 b->merge.len > 0 ? ", " : "", s1, s1,
							 kind == AGG_BOOL_AND ? "AND" : "OR", s1, s1, s1);
			finalizer = psprintf("m.%s", s1);
			plan->state_merge = lappend(plan->state_merge,
										psprintf("pg_catalog.%s(u.%s)", kind == AGG_BOOL_AND ? "bool_and" : "bool_or", s1));
			plan->aggregates = lappend(plan->aggregates,
									   psprintf("%s: %s in boolean column %s, merged by %s", label,
												kind == AGG_BOOL_AND ? "bool_and" : "bool_or", s1,
												kind == AGG_BOOL_AND ? "AND" : "OR"));
			break;
		case AGG_GENERIC:
			{
				char	   *fn = quote_literal_cstr(format_procedure_qualified(agg->aggfnoid));

				plan->state_merge = lappend(plan->state_merge, NULL);
				appendStringInfo(&b->outer, ", streaming.agg_partial(%s::pg_catalog.regprocedure%s)%s AS %s",
								 fn, all_args, filter, s1);
				appendStringInfo(&b->merge, "%s%s = streaming.agg_combine(%s::pg_catalog.regprocedure, s.%s, EXCLUDED.%s)",
								 b->merge.len > 0 ? ", " : "", s1, fn, s1, s1);
				finalizer = psprintf("streaming.agg_finalize(%s::pg_catalog.regprocedure, m.%s, NULL::%s)",
									 fn, s1, restype);
				plan->aggregates = lappend(plan->aggregates,
										   psprintf("%s: %s as its serialized transition state in bytea column %s, merged by its combine function, finalized by its final function",
													label, format_procedure(agg->aggfnoid), s1));
				break;
			}
		case AGG_DISTINCT_SET:
			{
				List	   *columns = NIL;
				ListCell   *alc;

				/* the distinct values, as parallel arrays of the arguments */
				plan->state_merge = lappend(plan->state_merge, NULL);
				foreach(alc, arg_columns)
				{
					char	   *s = foreach_current_index(alc) == 0 ? s1 : psprintf("s%d", ++b->nstate);

					appendStringInfo(&b->outer, ", pg_catalog.array_agg(b.%s)%s AS %s",
									 (char *) lfirst(alc), filter, s);
					appendStringInfo(&b->merge, "%s%s = pg_catalog.array_cat(s.%s, EXCLUDED.%s)",
									 b->merge.len > 0 ? ", " : "", s, s, s);
					columns = lappend(columns, s);
				}
				finalizer = DistinctAggSetFinalizer(agg, columns);
				plan->aggregates = lappend(plan->aggregates,
										   psprintf("%s: %s computed from its distinct values, kept as arrays in column%s %s, merged by appending the new ones",
													label, format_procedure(agg->aggfnoid),
													list_length(columns) > 1 ? "s" : "",
													text_list(columns)));
				break;
			}
		case AGG_VARIANCE:
			plan->state_merge = lappend(plan->state_merge, NULL);
			finalizer = plan_variance(agg, argtype, arg, filter, label, &b->nstate,
									  &b->outer, &b->merge, plan);
			break;
		case AGG_AVG:
			{
				s2 = psprintf("s%d", ++b->nstate);
				/* float4 is summed in float8, as avg(float4) itself does */
				appendStringInfo(&b->outer, ", pg_catalog.sum(%s%s)%s AS %s, pg_catalog.count(%s)%s AS %s",
								 arg, argtype == FLOAT4OID ? "::pg_catalog.float8" : "",
								 filter, s1, arg, filter, s2);
				appendStringInfo(&b->merge, "%s%s = COALESCE(s.%s " OP_ADD " EXCLUDED.%s, s.%s, EXCLUDED.%s), "
								 "%s = s.%s " OP_ADD " EXCLUDED.%s",
								 b->merge.len > 0 ? ", " : "", s1, s1, s1, s1, s1, s2, s2, s2);
				finalizer = avg_finalizer(s1, s2, argtype, restype);
				plan->state_merge = lappend(plan->state_merge, psprintf("pg_catalog.sum(u.%s)", s1));
				plan->state_merge = lappend(plan->state_merge, psprintf("pg_catalog.sum(u.%s)", s2));
				plan->aggregates = lappend(plan->aggregates,
										   psprintf("%s: avg as sum %s and count %s, each merged by addition, finalized as sum / count",
													label, s1, s2));
				break;
			}
	}
	return finalizer;
}

/*
 * collect_aggrefs gathers the distinct aggregates of an expression into
 * b->aggrefs (equal() ignores where they were written, so an aggregate
 * written twice is kept once).  Aggregates of subqueries are theirs.
 */
static bool
collect_aggrefs(Node *node, AggBuild *b)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		if (!list_member(b->aggrefs, node))
			b->aggrefs = lappend(b->aggrefs, node);
		return false;
	}
	if (IsA(node, Query))
		return false;
	return expression_tree_walker(node, collect_aggrefs, b);
}

/*
 * finalize_mutator rewrites an expression of the select list or HAVING
 * into one over the finalized row: every aggregate becomes the column of
 * its value (v1, v2, ...), every group key expression the column of its
 * key (k1, k2, ...), both as Vars of range table entry 1.  What is left
 * must be computable from those alone.
 */
static Node *
finalize_mutator(Node *node, AggBuild *b)
{
	ListCell   *lc;

	if (node == NULL)
		return NULL;
	if (IsA(node, Aggref))
	{
		foreach(lc, b->aggrefs)
			if (equal(node, lfirst(lc)))
				return (Node *) makeVar(1, list_length(b->key_exprs) + foreach_current_index(lc) + 1,
										exprType(node), exprTypmod(node), exprCollation(node), 0);
		elog(ERROR, "aggregate of \"%s\" was not collected", b->column);
	}
	foreach(lc, b->key_exprs)
	{
		if (!equal(node, lfirst(lc)))
			continue;
		/* a window kept as its start is the range again */
		if (foreach_current_index(lc) + 1 == b->window_keyno)
			return WindowStateRangeNode((Node *) makeVar(1, b->window_keyno, TIMESTAMPTZOID, -1,
														 InvalidOid, 0),
										b->window_usecs);
		return (Node *) makeVar(1, foreach_current_index(lc) + 1,
								exprType(node), exprTypmod(node), exprCollation(node), 0);
	}
	if (IsA(node, Var))
		reject(psprintf("%s uses a column that is not a GROUP BY expression", b->column),
			   "Add the column to GROUP BY, or use it inside an aggregate.");
	if (IsA(node, SubLink))
		reject(psprintf("%s has a subquery outside the aggregates", b->column),
			   "Compute it in a view over the result table.");
	if (IsA(node, GroupingFunc))
		reject(psprintf("%s uses GROUPING()", b->column),
			   "Remove it: a continuous query has a single grouping.");
	return expression_tree_mutator(node, finalize_mutator, b);
}

/*
 * deparse_finalized returns the text of a select-list or HAVING expression
 * computed from the finalized row "m" (see finalize_mutator).
 *
 * The text is PostgreSQL's own deparse of the analysed expression, with
 * the aggregates and group keys replaced by Vars, made under the catalog
 * search path (as deparse_query): every name outside pg_catalog comes out
 * schema-qualified, so the text means at every batch what the query meant
 * at create_query.  No part of it is assembled from the user's text.  The
 * Vars refer to a CTE range table entry whose columns are named as those
 * of the finalized row; the generated statements provide that row (see
 * append_finalized).
 */
static char *
deparse_finalized(Node *expr, const char *column, AggBuild *b)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	PlannedStmt *pstmt = makeNode(PlannedStmt);
	List	   *colnames = NIL;
	List	   *context;
	Node	   *finalized;
	int			nestlevel;
	char	   *sql;

	b->column = column;
	finalized = finalize_mutator(expr, b);

	for (int i = 1; i <= list_length(b->key_exprs); i++)
		colnames = lappend(colnames, makeString(psprintf("k%d", i)));
	for (int i = 1; i <= list_length(b->aggrefs); i++)
		colnames = lappend(colnames, makeString(psprintf("v%d", i)));
	rte->rtekind = RTE_CTE;
	rte->ctename = "finalized";
	rte->alias = makeAlias("m", NIL);
	rte->eref = makeAlias("m", colnames);
	rte->inFromCl = true;
	pstmt->rtable = list_make1(rte);

	nestlevel = PushCatalogSearchPath();
	context = deparse_context_for_plan_tree(pstmt, list_make1("m"));
	sql = deparse_expression(finalized, context, true, false);
	PopCatalogSearchPath(nestlevel);
	return sql;
}

/*
 * group_key_index returns the key number (1, 2, ...) of a result column
 * that is a GROUP BY expression, else 0.
 */
static int
group_key_index(Query *query, TargetEntry *tle)
{
	ListCell   *lc;

	if (tle->ressortgroupref == 0)
		return 0;
	foreach(lc, query->groupClause)
		if (((SortGroupClause *) lfirst(lc))->tleSortGroupRef == tle->ressortgroupref)
			return foreach_current_index(lc) + 1;
	return 0;
}

/*
 * PlanOrderGroups returns the groups of sql (a batch plan) sorted on the
 * state's key, as the batch plan of a windowed aggregate gives them (see
 * plan_aggregate).
 */
char *
PlanOrderGroups(ContinuousPlan *plan, const char *sql)
{
	StringInfoData order;
	ListCell   *lc;

	initStringInfo(&order);
	foreach(lc, plan->state_keys)
		appendStringInfo(&order, "%sg.%s", order.len > 0 ? ", " : "", (char *) lfirst(lc));
	return psprintf("SELECT * FROM (%s) AS g ORDER BY %s", sql, order.data);
}

/*
 * plan_aggregate derives the batch plan, merge and finalizers of an
 * aggregation.
 *
 * The state keeps each distinct aggregate of the select list and HAVING
 * once.  When every result column is a group key or an aggregate as it is,
 * and there is no HAVING, a result column is its aggregate's finalizer over
 * the state row.  Otherwise the result is computed in two steps: the
 * values v1, v2, ... of the aggregates from the state row (plan->values),
 * then each result column, and HAVING, from the group keys and those
 * values (plan->finalizers, plan->having; see deparse_finalized).
 */
static void
plan_aggregate(Query *query, ContinuousPlan *plan, bool window_range_key)
{
	Query	   *inner = copyObject(query);
	AggBuild	b;
	List	   *values = NIL;
	bool		direct = query->havingQual == NULL;
	int			key_sets = 0;
	bool		window_set = false;
	ListCell   *lc;

	memset(&b, 0, sizeof(b));
	b.resno = 1;
	initStringInfo(&b.outer);
	initStringInfo(&b.groupby);
	initStringInfo(&b.merge);

	/*
	 * Set-returning functions of one select list run in lockstep, not as a
	 * cross product: past the end of the shorter, its column is NULL.  A
	 * sliding window beside another would put rows in a window of NULL,
	 * which the watermark never closes (Spark refuses two windows too).
	 */
	foreach(lc, query->groupClause)
	{
		TargetEntry *tle = get_sortgroupclause_tle(lfirst(lc), query->targetList);

		if (expression_returns_set((Node *) tle->expr))
			key_sets++;
		if (is_event_time_window(query, (Node *) tle->expr, plan->event_times) &&
			expression_returns_set((Node *) tle->expr))
			window_set = true;
	}
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		/* computed per group, it would emit rows of one key again and again */
		if (!tle->resjunk && group_key_index(query, tle) == 0 && expression_returns_set((Node *) tle->expr))
			reject("a set-returning function in the select list of a continuous aggregate must be grouped by",
				   "Add the expression to GROUP BY, which makes it a key of the result table, or call the function in a query over the result table.");
	}
	if (window_set && key_sets > 1)
		reject("a continuous query grouped by a sliding window cannot group by another set-returning function",
			   "Set-returning functions in one GROUP BY run in lockstep, not as a cross product. Group by one sliding window, and compute the other grouping in a second query.");

	/* group keys: every GROUP BY expression must be a result column */
	foreach(lc, query->groupClause)
	{
		SortGroupClause *sgc = lfirst(lc);
		TargetEntry *tle = get_sortgroupclause_tle(sgc, query->targetList);
		char	   *k = psprintf("k%d", ++b.nkeys);

		if (tle->resjunk)
			reject("every GROUP BY expression must appear in the select list of a continuous query",
				   "Add the expression to the select list; it becomes a key column of the result table.");
		b.key_exprs = lappend(b.key_exprs, tle->expr);
		if (plan->window_key == NULL && is_event_time_window(query, (Node *) tle->expr, plan->event_times))
		{
			plan->window_key = k;
			/* a window of constant size is kept as its start */
			if (!window_range_key && is_streaming_func((Node *) tle->expr, "window") &&
				WindowConstantSize((FuncExpr *) tle->expr, &b.window_usecs))
			{
				plan->window_size = WindowStateSizeLiteral(b.window_usecs);
				b.window_keyno = b.nkeys;
			}
		}
		plan->state_keys = lappend(plan->state_keys, k);
		if (is_streaming_func((Node *) tle->expr, "session_window"))
		{
			FuncExpr   *fexpr = (FuncExpr *) tle->expr;
			Node	   *gap = lsecond(fexpr->args);

			if (plan->session_key != NULL)
				reject("a continuous query can group by one session window only",
					   "Remove all but one streaming.session_window() from GROUP BY.");
			if (!IsA(gap, Const) || ((Const *) gap)->constisnull)
				reject("the gap of a session window must be a constant",
					   "Write the gap as a literal, e.g. streaming.session_window(ts, '30 minutes').");
			/* the inner query yields the event time; sessions are built over it */
			plan->session_key = k;
			plan->session_gap = psprintf("%s::pg_catalog.interval",
										 quote_literal_cstr(DatumGetCString(DirectFunctionCall1(interval_out,
																								((Const *) gap)->constvalue))));
			b.inner_tlist = lappend(b.inner_tlist,
									makeTargetEntry(copyObject(linitial(fexpr->args)), b.resno++, k, false));
			appendStringInfo(&b.outer, "%spg_catalog.tstzrange(pg_catalog.min(b.%s), pg_catalog.max(b.%s) OPERATOR(pg_catalog.+) %s) AS %s",
							 b.nkeys > 1 ? ", " : "", k, k, plan->session_gap, k);
			continue;
		}
		b.inner_tlist = lappend(b.inner_tlist,
								makeTargetEntry(b.window_keyno == b.nkeys ? WindowStateKeyExpr(copyObject(tle->expr))
												: copyObject(tle->expr),
												b.resno++, k, false));
		appendStringInfo(&b.outer, "%sb.%s", b.nkeys > 1 ? ", " : "", k);
		appendStringInfo(&b.groupby, "%sb.%s", b.groupby.len > 0 ? ", " : "", k);
	}
	if (b.nkeys == 0)
	{
		/* a global aggregate keeps one state row, keyed by a constant */
		appendStringInfoString(&b.outer, "true AS k0");
		plan->state_keys = lappend(plan->state_keys, "k0");
	}

	/* the distinct aggregates, and whether each column is one as it is */
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->resjunk)
			continue;
		(void) collect_aggrefs((Node *) tle->expr, &b);
		if (group_key_index(query, tle) == 0 && !IsA(tle->expr, Aggref))
			direct = false;
	}
	(void) collect_aggrefs(query->havingQual, &b);
	foreach(lc, b.aggrefs)
		b.has_distinct |= keeps_distinct(lfirst(lc));
	if (b.has_distinct && plan->session_key != NULL)
		reject("aggregates over DISTINCT values cannot be kept in a session window yet",
			   "Group by streaming.window() of the event time, or aggregate the distinct values in a view over the result table.");

	/* each aggregate's partial state, merge and finalizer */
	foreach(lc, b.aggrefs)
	{
		Aggref	   *agg = lfirst(lc);
		char	   *label = psprintf("v%d", foreach_current_index(lc) + 1);

		if (direct)
		{
			ListCell   *tlc;

			/* named after the first result column that it is */
			foreach(tlc, query->targetList)
			{
				TargetEntry *tle = lfirst(tlc);

				if (!tle->resjunk && equal(tle->expr, agg))
				{
					label = tle->resname ? tle->resname : "?column?";
					break;
				}
			}
		}
		values = lappend(values, plan_one_aggregate(agg, label, &b, plan));
	}

	/* taking rows back: which rows are, and how many rows each group has */
	if (plan->retract)
	{
		b.inner_tlist = lappend(b.inner_tlist, RetractMarkColumn(query, plan, b.resno++));
		RetractPlanRows(b.has_distinct ? DistinctAggOtherRows(NULL) : NULL, &b.outer, &b.merge, plan);
	}

	/* result columns: keys as they are, the rest computed from the values */
	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		char	   *colname = tle->resname ? tle->resname : "?column?";
		int			key = group_key_index(query, tle);

		if (tle->resjunk)
			continue;
		plan->result_columns = lappend(plan->result_columns, colname);
		if (key > 0)
		{
			plan->result_keys = lappend(plan->result_keys, colname);
			plan->finalizers = lappend(plan->finalizers,
									   key == b.window_keyno ? WindowStateRangeSql(psprintf("m.k%d", key), plan->window_size)
									   : psprintf("m.k%d", key));
		}
		else if (direct)
		{
			int			i = 0;

			while (!equal(list_nth(b.aggrefs, i), tle->expr))
				i++;
			plan->finalizers = lappend(plan->finalizers, list_nth(values, i));
		}
		else
			plan->finalizers = lappend(plan->finalizers,
									   deparse_finalized((Node *) tle->expr,
														 psprintf("result column \"%s\"", colname), &b));
	}
	if (!direct)
	{
		plan->values = values;
		if (query->havingQual != NULL)
			plan->having = deparse_finalized(query->havingQual, "HAVING", &b);
	}

	inner->targetList = b.inner_tlist;
	inner->groupClause = NIL;
	inner->hasAggs = false;
	inner->havingQual = NULL;
	/* a join of streams: the input view is made of copies of this */
	plan->join_query = inner;

	plan->merge_set = b.merge.data;
	plan->input_sql = deparse_query(inner);
	if (plan->session_key == NULL)
	{
		/* with DISTINCT aggregates, the input and the new distinct values */
		const char *from = b.has_distinct
			? DistinctAggPlan(plan, b.inner_tlist, list_length(b.key_exprs), b.distinct_aggs)
			: PlanInputRelation(plan);

		plan->batch_sql = psprintf("SELECT %s FROM %s AS b%s%s",
								   b.outer.data, from,
								   b.nkeys > 0 ? " GROUP BY " : "", b.groupby.data);
		/*
		 * Windows kept by their start: the groups are merged in the order of
		 * the state's key, the result's key order too when it lists the
		 * same columns in the same order (ranges of one size sort as their
		 * starts).  New windows then go to
		 * the right end of both B-trees, where an insertion needs no descent,
		 * and the pages an upsert reads are those the previous one read.
		 * The groups are sorted after they are formed: an ORDER BY beside
		 * the GROUP BY would have the batch's rows sorted to group them.
		 */
		if (plan->window_size != NULL)
			plan->batch_sql = PlanOrderGroups(plan, plan->batch_sql);
		return;
	}

	/*
	 * Session windows: the batch's rows are split per key into sessions (a
	 * new session starts where a row comes gap or more after the previous
	 * one), one partial state per session.
	 */
	foreach(lc, plan->state_merge)
		if (lfirst(lc) == NULL)
			reject("this aggregate cannot be kept in a session window yet",
				   "Session windows keep count, sum, avg, min, max, bool_and and bool_or.");
	{
		char	   *k = plan->session_key;
		char	   *partition = "";
		char	   *xpartition = "";

		if (b.groupby.len > 0)
		{
			StringInfoData xp;

			initStringInfo(&xp);
			foreach(lc, plan->state_keys)
				if (strcmp(lfirst(lc), k) != 0)
					appendStringInfo(&xp, "%sx.%s", xp.len > 0 ? ", " : "", (char *) lfirst(lc));
			partition = psprintf("PARTITION BY %s ", b.groupby.data);
			xpartition = psprintf("PARTITION BY %s ", xp.data);
		}

		plan->batch_sql =
			psprintf("SELECT %s FROM ("
					 "SELECT x.*, pg_catalog.sum(x.streaming_break) OVER (%sORDER BY x.%s ROWS UNBOUNDED PRECEDING) AS streaming_session "
					 "FROM (SELECT b.*, CASE WHEN b.%s OPERATOR(pg_catalog.<) (pg_catalog.lag(b.%s) OVER (%sORDER BY b.%s) OPERATOR(pg_catalog.+) %s) "
					 "THEN 0 ELSE 1 END AS streaming_break FROM %s AS b WHERE b.%s IS NOT NULL) AS x) AS b "
					 "GROUP BY %s%sb.streaming_session",
					 b.outer.data,
					 xpartition, k,
					 k, k, partition, k, plan->session_gap,
					 PlanInputRelation(plan), k,
					 b.groupby.data, b.groupby.len > 0 ? ", " : "");
	}
}

static bool string_list_member(List *names, const char *name);

/*
 * PlanStateQuery returns a query whose columns are those of the state
 * table of an aggregation: its batch plan.
 */
char *
PlanStateQuery(ContinuousPlan *plan)
{
	if (plan->distinct_fresh != NULL)
		return psprintf("%s%s", DistinctAggStatePrefix(plan), plan->batch_sql);
	return plan->batch_sql;
}

/*
 * PlanExpandJoin makes the input view of a query that joins streams out of
 * copies of its query (operators/stream_join.c), once create_query has made
 * the state tables of the joined sources, state_oids, in the order of
 * plan->join_sources.
 */
void
PlanExpandJoin(ContinuousPlan *plan, List *state_oids)
{
	List	   *distinct_relids = NIL;
	List	   *per_entry = NIL;
	ListCell   *lc;

	foreach(lc, plan->join_relids)
		distinct_relids = list_append_unique_oid(distinct_relids, lfirst_oid(lc));
	foreach(lc, plan->join_relids)
	{
		ListCell   *dlc;

		foreach(dlc, distinct_relids)
			if (lfirst_oid(dlc) == lfirst_oid(lc))
				per_entry = lappend_oid(per_entry, list_nth_oid(state_oids, foreach_current_index(dlc)));
	}
	plan->input_sql = StreamJoinExpand(plan->join_query, plan->join_rtindexes,
									   plan->join_relids, per_entry);
	StreamJoinOuterStatements(plan, per_entry);
}

/*
 * PlanInputRelation names what a batch statement reads its input from: the
 * query's input view, which holds the user's FROM and WHERE and the
 * expressions of its group keys and aggregate arguments as a view does -
 * by OID, with its dependencies recorded - so that renaming, replacing or
 * retyping a table it reads cannot change what a running query means.
 * Plans of earlier releases have none and read the deparsed text inline
 * (QueryUpgradePlan gives them one when it can).
 */
const char *
PlanInputRelation(ContinuousPlan *plan)
{
	if (plan->input != NULL)
		return plan->input;
	return psprintf("(%s)", plan->input_sql);
}

/*
 * plan_dedup plans SELECT DISTINCT (each row once) and SELECT DISTINCT ON
 * (keys) (the first row of each key), as Spark's dropDuplicates: the state
 * table keeps the rows emitted, unique on the keys, and a batch emits the
 * rows its insert into the state did not find there.  With a watermark and
 * the event-time column among the keys, keys older than the watermark are
 * evicted (a later duplicate of them would be late anyway and dropped).
 */
static void
plan_dedup(Query *query, ContinuousPlan *plan, bool has_watermark)
{
	ListCell   *lc;

	foreach(lc, query->distinctClause)
	{
		SortGroupClause *sgc = lfirst(lc);
		TargetEntry *tle = get_sortgroupclause_tle(sgc, query->targetList);

		if (tle->resjunk || tle->resname == NULL)
			reject("a DISTINCT ON expression must be a column of the select list",
				   "Add it to the select list, with a name.");
		if (string_list_member(plan->state_keys, tle->resname))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_COLUMN),
					 errmsg("column \"%s\" is named twice", tle->resname),
					 errhint("Give every column of the select list its own name.")));
		plan->state_keys = lappend(plan->state_keys, tle->resname);
		/*
		 * over a join, a key's event time may be older than the watermark
		 * (a kept row joined with a new one): plan_join_eviction decides
		 */
		if (has_watermark && plan->time_key == NULL &&
			event_time_expr(query, (Node *) tle->expr, plan->event_times))
			plan->time_key = tle->resname;
	}
	plan->batch_sql = psprintf("SELECT * FROM %s AS b", PlanInputRelation(plan));
}

/*
 * event_time_columns names the event-time columns of a plan's sources,
 * for messages: the column when all have the same, else source.column for
 * each ("or" between them).
 */
static const char *
event_time_columns(ContinuousPlan *plan)
{
	StringInfoData buf;
	ListCell   *lc;

	if (plan->event_time == NULL || plan->event_time[0] != '{')
		return plan->event_time ? plan->event_time : "ts";
	initStringInfo(&buf);
	foreach(lc, plan->event_times)
	{
		EventTimeEntry *e = lfirst(lc);

		if (e->column != NULL)
			appendStringInfo(&buf, "%s%s.%s", buf.len > 0 ? " or " : "",
							 get_rel_name(e->relid), e->column);
	}
	return buf.data;
}

/*
 * join_source_eviction returns the eviction of the state of the joined
 * source that column expr (a column of a joined source, through implicit
 * casts) comes from, NULL if it comes from none; evictions are those of
 * StreamJoinEvictions, one per distinct source of plan->join_relids.
 */
static StreamJoinEviction *
join_source_eviction(Query *query, ContinuousPlan *plan, List *evictions, Node *expr)
{
	Var		   *var = (Var *) strip_implicit_coercions(expr);
	List	   *states = NIL;
	ListCell   *lc;

	if (!IsA(var, Var) || var->varlevelsup != 0 || !list_member_int(plan->join_rtindexes, var->varno))
		return NULL;
	foreach(lc, plan->join_relids)
		states = list_append_unique_oid(states, lfirst_oid(lc));
	foreach(lc, states)
		if (lfirst_oid(lc) == rt_fetch(var->varno, query->rtable)->relid)
			return list_nth(evictions, foreach_current_index(lc));
	return NULL;
}

/*
 * plan_join_dedup_eviction decides whether the keys of a deduplication
 * over a join are evicted by the event time among them (plan->time_key).
 * A join row carries the event time of a kept row of its source, which is
 * behind the watermark by at most the lag of that source's eviction: a
 * key at or before the watermark minus that lag can only come back from a
 * late row, so it goes (close_lag); a source whose state is kept for ever
 * can bring back any key, and nothing is evicted.
 */
static void
plan_join_dedup_eviction(Query *query, ContinuousPlan *plan, List *evictions)
{
	ListCell   *lc;

	foreach(lc, query->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		StreamJoinEviction *ev;

		if (tle->resjunk || tle->resname == NULL || strcmp(tle->resname, plan->time_key) != 0)
			continue;
		ev = join_source_eviction(query, plan, evictions, (Node *) tle->expr);
		if (ev == NULL || ev->predicate == NULL || ev->lag < 0)
			plan->time_key = NULL;
		else if (ev->lag > 0)
			plan->close_lag = WindowStateSizeLiteral(ev->lag);
		return;
	}
	plan->time_key = NULL;
}

/*
 * check_outer_join refuses what cannot sit on an outer join between
 * streams.  Its unmatched rows come out in the close statement, when the
 * watermark evicts them, as rows appended once and never changed: so, as
 * in Spark, append mode only, and none of the operators that keep state
 * of their own over the join's rows (aggregation, DISTINCT), which the
 * batch statement updates before the close statement runs.
 */
static void
check_outer_join(Query *query, ContinuousPlan *plan)
{
	JoinExpr   *join = StreamJoinOuter(query, plan->join_rtindexes);

	if (join == NULL)
		return;
	if (plan->shape != SHAPE_STATELESS)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s over an outer join between streams is not supported in continuous queries",
						plan->shape == SHAPE_AGGREGATE ? "aggregation" : "DISTINCT"),
				 errdetail("The outer join's unmatched rows come out when the watermark passes their time bound, after the batch's rows have been aggregated or deduplicated."),
				 errhint("Append the join's rows to a table with one continuous query, and aggregate them with another that reads that table as a source.")));
	if (plan->mode != OUTPUT_APPEND)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an outer join between streams requires append output mode"),
				 errdetail("Each row is appended once: a matched pair when it is found, an unmatched row padded with NULLs when the watermark guarantees that nothing can match it any more."),
				 errhint("Use output_mode => 'append'.")));
}

/*
 * plan_join_eviction records how the watermark evicts the states of a
 * join of streams (operators/stream_join.c), and how far behind it the
 * windows of an aggregation over the join close: a kept row of the
 * window's source joined with a new row of another stream is older than
 * the watermark, by at most the lag of that source's eviction.  If its
 * state is never evicted, or not by its event time, no window is ever
 * final: the query is refused in append and update modes.
 */
static void
plan_join_eviction(Query *query, ContinuousPlan *plan)
{
	List	   *evictions = StreamJoinEvictions(query, plan->join_rtindexes, plan->join_relids,
												plan->event_times);
	ListCell   *lc;

	foreach(lc, evictions)
	{
		StreamJoinEviction *ev = lfirst(lc);

		plan->join_evict = lappend(plan->join_evict, ev->predicate ? ev->predicate : "");
		plan->join_evict_why = lappend(plan->join_evict_why, ev->why);
		plan->join_evict_index = lappend(plan->join_evict_index, ev->index);
	}
	if (plan->shape == SHAPE_DEDUP && plan->time_key != NULL)
	{
		plan_join_dedup_eviction(query, plan, evictions);
		return;
	}
	if (plan->shape != SHAPE_AGGREGATE || plan->window_key == NULL || plan->mode == OUTPUT_COMPLETE)
		return;
	if (plan->session_key != NULL)
		reject("session windows over a join of streams are not supported in continuous queries",
			   "Group by streaming.window() of a joined source's event time.");
	foreach(lc, query->groupClause)
	{
		TargetEntry *tle = get_sortgroupclause_tle(lfirst(lc), query->targetList);
		Var		   *var;
		StreamJoinEviction *ev;

		if (!is_event_time_window(query, (Node *) tle->expr, plan->event_times))
			continue;
		var = (Var *) strip_implicit_coercions(linitial(((FuncExpr *) tle->expr)->args));
		ev = join_source_eviction(query, plan, evictions, (Node *) var);
		if (ev == NULL || ev->predicate == NULL || ev->lag < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the windows over the join would never be final"),
					 errdetail("The window is over the event time of \"%s\", whose rows the join keeps %s: a kept row joined with a later row of another stream can fall into any window.",
							   get_rel_name(rt_fetch(var->varno, query->rtable)->relid),
							   ev == NULL || ev->predicate == NULL
							   ? psprintf("for ever (%s)", ev ? ev->why : "no watermark")
							   : "until a bound on another column passes the watermark"),
					 errhint("Bound the join on the event times of both streams, e.g. b.t BETWEEN a.t - interval '1 hour' AND a.t, or use complete mode.")));
		if (ev->lag > 0)
			plan->close_lag = WindowStateSizeLiteral(ev->lag);
		break;
	}
}

/*
 * PlanContinuousQuery analyses a continuous query and derives its plan, or
 * raises an error that says what is wrong and what to do instead.
 */
ContinuousPlan *
PlanContinuousQuery(const char *sql, OutputMode mode, const char *event_time,
					bool has_watermark, const char *input, bool window_range_key)
{
	Query	   *query = analyze_query(sql);
	Query	   *ordered = NULL;
	Query	   *per_group = NULL;
	ContinuousPlan *plan = palloc0(sizeof(ContinuousPlan));
	SourceWalk	walk = {NIL, 0, NIL};

	(void) query_tree_walker(query, find_sources_walker, &walk, QTW_EXAMINE_RTES_BEFORE);
	(void) query_tree_walker(query, check_window_calls, NULL, 0);
	if (walk.sources == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a continuous query must read a streaming source"),
				 errhint("Create one with streaming.create_source() and name it in the FROM clause.")));
	(void) check_stream_inputs(query, true);
	plan->sources = walk.sources;
	plan->mode = mode;
	plan->input = input ? pstrdup(input) : NULL;
	plan->temp_relations = walk.temp_relations;

	/* each source's event-time column (the delays are create_query's) */
	if (event_time != NULL)
	{
		plan->event_time = pstrdup(event_time);
		plan->event_times = EventTimeSpecParse(event_time, plan->sources, 0, true);
	}

	/* the top rows per group: the subquery's aggregation is the query's */
	{
		Query	   *inner = TopNPerGroupInner(query);

		if (inner != NULL)
		{
			per_group = query;
			query = inner;
		}
	}
	check_query_shape(query);
	/* HAVING alone makes a query an aggregation, of one group */
	plan->shape = (query->hasAggs || query->groupClause != NIL || query->havingQual != NULL) ? SHAPE_AGGREGATE
		: query->distinctClause != NIL ? SHAPE_DEDUP : SHAPE_STATELESS;
	/* deletes and updates of a table source: see the file's header */
	plan->retract = RetractCheckQuery(query, plan, event_time,
									  per_group != NULL || query->sortClause != NIL ||
									  query->limitCount != NULL || query->limitOffset != NULL);

	if (plan->shape != SHAPE_AGGREGATE && mode == OUTPUT_COMPLETE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("complete output mode requires an aggregation"),
				 errdetail("Complete mode rewrites the whole result each trigger, which is only bounded for aggregates."),
				 errhint("Use append or update mode for a query without GROUP BY or aggregates.")));
	if (plan->shape == SHAPE_AGGREGATE && mode == OUTPUT_APPEND && !has_watermark)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("append output mode requires a watermark for an aggregation"),
				 errdetail("In append mode each result row is written once, when final; without a watermark no group is ever final."),
				 errhint("Use update or complete mode, or give event_time and watermark and group by streaming.window() of the event time.")));

	plan->query_sql = deparse_query(per_group ? per_group : query);
	plan->input_sql = plan->query_sql;
	/* the top-N is planned apart (PlanTopN), over the plan of the rest */
	if (query->sortClause != NIL || query->limitCount != NULL || query->limitOffset != NULL)
	{
		ordered = query;
		query = copyObject(query);
		query->sortClause = NIL;
		query->limitCount = NULL;
		query->limitOffset = NULL;
	}
	/* sources joined in the query's FROM: their rows are kept */
	plan->join_rtindexes = StreamJoinFind(query);
	if (plan->join_rtindexes != NIL)
	{
		ListCell   *lc;

		plan->join_query = query;
		foreach(lc, plan->join_rtindexes)
			plan->join_relids = lappend_oid(plan->join_relids,
											rt_fetch(lfirst_int(lc), query->rtable)->relid);
		check_outer_join(query, plan);
	}
	if (plan->shape == SHAPE_AGGREGATE)
	{
		plan_aggregate(query, plan, window_range_key);
		RetractCheckSessions(plan);
		if (plan->session_key != NULL && mode == OUTPUT_UPDATE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("update output mode is not supported with session windows"),
					 errdetail("Sessions merge as rows arrive, so an updated row can replace several earlier ones."),
					 errhint("Use append mode (with a watermark) or complete mode.")));
		if (mode == OUTPUT_APPEND && plan->window_key == NULL)
		{
			const char *columns = event_time_columns(plan);

			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("append output mode requires grouping by a window of the event time"),
					 errdetail("A group is final when the watermark passes the end of its window, so one group key must be streaming.window(%s, ...).",
							   columns),
					 errhint("Group by streaming.window(%s, size), or use update or complete mode.", columns)));
		}
	}
	else
	{
		ListCell   *lc;

		foreach(lc, query->targetList)
		{
			TargetEntry *tle = lfirst(lc);

			if (!tle->resjunk)
				plan->result_columns = lappend(plan->result_columns,
											   tle->resname ? tle->resname : "?column?");
		}
		if (plan->shape == SHAPE_DEDUP)
			plan_dedup(query, plan, has_watermark);
	}
	if (plan->join_rtindexes != NIL)
		plan_join_eviction(query, plan);
	/* ORDER BY ... LIMIT keeps the top rows of an aggregation, or is refused */
	if (ordered != NULL)
		PlanTopN(ordered, plan);
	if (per_group != NULL)
		PlanTopNPerGroup(per_group, query, plan);
	return plan;
}

/* ------------------------------------------------------------------------
 * Serialization: the plan is stored in streaming.queries.plan
 * ------------------------------------------------------------------------ */

static void
append_string_array(StringInfo buf, const char *key, List *items)
{
	ListCell   *lc;

	appendStringInfo(buf, ", \"%s\": [", key);
	foreach(lc, items)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, lfirst(lc));
	}
	appendStringInfoChar(buf, ']');
}

static void
append_string(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ", \"%s\": ", key);
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

Jsonb *
ContinuousPlanToJsonb(ContinuousPlan *plan)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"shape\": \"%s\"",
					 plan->shape == SHAPE_AGGREGATE ? "aggregate" :
					 plan->shape == SHAPE_DEDUP ? "dedup" : "stateless");
	appendStringInfoString(&buf, ", \"sources\": [");
	foreach(lc, plan->sources)
		appendStringInfo(&buf, "%s%u", foreach_current_index(lc) > 0 ? ", " : "", lfirst_oid(lc));
	appendStringInfoChar(&buf, ']');
	append_string(&buf, "mode", OutputModeName(plan->mode));
	append_string(&buf, "event_time", plan->event_time);
	append_string(&buf, "window_key", plan->window_key);
	if (plan->window_size != NULL)
		append_string(&buf, "window_size", plan->window_size);
	append_string(&buf, "time_key", plan->time_key);
	append_string(&buf, "session_key", plan->session_key);
	append_string(&buf, "session_gap", plan->session_gap);
	append_string_array(&buf, "state_merge", plan->session_key ? plan->state_merge : NIL);
	append_string(&buf, "query", plan->query_sql);
	if (plan->input != NULL)
		append_string(&buf, "input", plan->input);
	if (plan->batch_fingerprint != NULL)
		append_string(&buf, "batch_fingerprint", plan->batch_fingerprint);
	if (plan->close_fingerprint != NULL)
		append_string(&buf, "close_fingerprint", plan->close_fingerprint);
	if (plan->combine_sql != NULL)
	{
		append_string(&buf, "combine", plan->combine_sql);
		if (plan->partial_sql != NULL)
			append_string(&buf, "partial", plan->partial_sql);
		append_string(&buf, "partial_fingerprint", plan->partial_fingerprint);
		append_string(&buf, "combine_fingerprint", plan->combine_fingerprint);
		if (plan->combine_unique_sql != NULL)
			append_string(&buf, "combine_unique", plan->combine_unique_sql);
	}
	append_string(&buf, "batch", plan->batch_sql);
	append_string(&buf, "merge_set", plan->merge_set);
	append_string_array(&buf, "state_keys", plan->state_keys);
	append_string_array(&buf, "aggregates", plan->aggregates);
	append_string_array(&buf, "result_columns", plan->result_columns);
	append_string_array(&buf, "result_keys", plan->result_keys);
	append_string_array(&buf, "finalizers", plan->finalizers);
	append_string_array(&buf, "values", plan->values);
	append_string(&buf, "having", plan->having);
	if (plan->distinct_fresh != NULL)
	{
		append_string(&buf, "distinct_table", plan->distinct_table);
		append_string(&buf, "distinct_columns", plan->distinct_columns);
		append_string(&buf, "distinct_fresh", plan->distinct_fresh);
	}
	if (plan->join_sources != NIL)
	{
		append_string_array(&buf, "join_sources", plan->join_sources);
		append_string_array(&buf, "join_states", plan->join_states);
		append_string_array(&buf, "join_columns", plan->join_columns);
		append_string_array(&buf, "join_evict", plan->join_evict);
		append_string_array(&buf, "join_evict_why", plan->join_evict_why);
		if (plan->join_keep != NIL)
		{
			append_string_array(&buf, "join_keep", plan->join_keep);
			append_string_array(&buf, "join_match", plan->join_match);
			append_string_array(&buf, "join_unmatched", plan->join_unmatched);
		}
		if (plan->close_lag != NULL)
			append_string(&buf, "close_lag", plan->close_lag);
	}
	if (plan->topn_limit > 0)
	{
		append_string(&buf, "topn_limit", psprintf(INT64_FORMAT, plan->topn_limit));
		append_string_array(&buf, "topn_order", plan->topn_order);
		if (plan->topn_partition != NIL)
		{
			append_string_array(&buf, "topn_partition", plan->topn_partition);
			append_string_array(&buf, "topn_partition_columns", plan->topn_partition_columns);
			append_string(&buf, "topn_rank", plan->topn_rank);
		}
	}
	if (plan->retract)
		appendStringInfoString(&buf, ", \"retract\": true");
	appendStringInfoChar(&buf, '}');

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

static List *
jsonb_string_array(Jsonb *obj, const char *key)
{
	JsonbValue *v = JsonbGetKey(obj, key);
	List	   *result = NIL;
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;

	if (v == NULL || v->type != jbvBinary)
		return NIL;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok == WJB_ELEM)
			result = lappend(result, JsonbValueAsText(&elem));
	}
	return result;
}

ContinuousPlan *
ContinuousPlanFromJsonb(Jsonb *obj)
{
	ContinuousPlan *plan = palloc0(sizeof(ContinuousPlan));
	char	   *shape = JsonbGetString(obj, "shape");
	ListCell   *lc;

	plan->shape = strcmp(shape, "aggregate") == 0 ? SHAPE_AGGREGATE :
		strcmp(shape, "dedup") == 0 ? SHAPE_DEDUP : SHAPE_STATELESS;
	foreach(lc, jsonb_string_array(obj, "sources"))
		plan->sources = lappend_oid(plan->sources, (Oid) strtoul(lfirst(lc), NULL, 10));
	plan->mode = OutputModeFromString(JsonbGetString(obj, "mode"));
	plan->event_time = JsonbGetString(obj, "event_time");
	plan->window_key = JsonbGetString(obj, "window_key");
	/* absent from plans made before windows were kept as their start */
	plan->window_size = JsonbGetString(obj, "window_size");
	plan->time_key = JsonbGetString(obj, "time_key");
	plan->session_key = JsonbGetString(obj, "session_key");
	plan->session_gap = JsonbGetString(obj, "session_gap");
	plan->state_merge = jsonb_string_array(obj, "state_merge");
	plan->query_sql = JsonbGetString(obj, "query");
	plan->input = JsonbGetString(obj, "input");
	plan->batch_fingerprint = JsonbGetString(obj, "batch_fingerprint");
	plan->close_fingerprint = JsonbGetString(obj, "close_fingerprint");
	/* absent from plans made before batches were aggregated in parts */
	plan->combine_sql = JsonbGetString(obj, "combine");
	plan->partial_sql = JsonbGetString(obj, "partial");
	plan->partial_fingerprint = JsonbGetString(obj, "partial_fingerprint");
	plan->combine_fingerprint = JsonbGetString(obj, "combine_fingerprint");
	plan->combine_unique_sql = JsonbGetString(obj, "combine_unique");
	plan->batch_sql = JsonbGetString(obj, "batch");
	plan->merge_set = JsonbGetString(obj, "merge_set");
	plan->state_keys = jsonb_string_array(obj, "state_keys");
	plan->aggregates = jsonb_string_array(obj, "aggregates");
	plan->result_columns = jsonb_string_array(obj, "result_columns");
	plan->result_keys = jsonb_string_array(obj, "result_keys");
	plan->finalizers = jsonb_string_array(obj, "finalizers");
	/* absent from plans made before expressions over aggregates */
	plan->values = jsonb_string_array(obj, "values");
	plan->having = JsonbGetString(obj, "having");
	/* absent from plans without DISTINCT aggregates */
	plan->distinct_table = JsonbGetString(obj, "distinct_table");
	plan->distinct_columns = JsonbGetString(obj, "distinct_columns");
	plan->distinct_fresh = JsonbGetString(obj, "distinct_fresh");
	/* absent from plans without a join of streams */
	plan->join_sources = jsonb_string_array(obj, "join_sources");
	plan->join_states = jsonb_string_array(obj, "join_states");
	plan->join_columns = jsonb_string_array(obj, "join_columns");
	/* absent from plans made before joins were evicted */
	plan->join_evict = jsonb_string_array(obj, "join_evict");
	plan->join_evict_why = jsonb_string_array(obj, "join_evict_why");
	/* absent unless the query has an outer join between streams */
	plan->join_keep = jsonb_string_array(obj, "join_keep");
	plan->join_match = jsonb_string_array(obj, "join_match");
	plan->join_unmatched = jsonb_string_array(obj, "join_unmatched");
	plan->close_lag = JsonbGetString(obj, "close_lag");
	/* absent unless the query keeps a top-N */
	{
		char	   *limit = JsonbGetString(obj, "topn_limit");

		if (limit != NULL)
			plan->topn_limit = pg_strtoint64(limit);
		plan->topn_order = jsonb_string_array(obj, "topn_order");
		plan->topn_partition = jsonb_string_array(obj, "topn_partition");
		plan->topn_partition_columns = jsonb_string_array(obj, "topn_partition_columns");
		plan->topn_rank = JsonbGetString(obj, "topn_rank");
	}
	/* absent unless the query takes deleted rows back */
	{
		JsonbValue *retract = JsonbGetKey(obj, "retract");

		plan->retract = retract != NULL && retract->type == jbvBool && retract->val.boolean;
	}
	return plan;
}

static void append_upsert(StringInfo sql, ContinuousPlan *plan);
static char *equality_operator(Oid relid, const char *col, bool *in_catalog);

static bool
string_list_member(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

static char *
quoted_list(List *names, const char *prefix)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 prefix, quote_identifier(lfirst(lc)));
	return buf.data;
}

/*
 * finish_statement closes a statement whose CTE "emitted" holds the rows
 * written to the result table.  The first columns are the counts; with
 * show_rows > 0 (the console sink), up to that many written rows follow,
 * one per output row (one row of NULLs when nothing was written).
 */
static void
finish_statement(StringInfo sql, const char *counts, int show_rows)
{
	if (show_rows <= 0)
		appendStringInfo(sql, "SELECT %s", counts);
	else
		appendStringInfo(sql,
						 "SELECT c.*, e.* FROM (SELECT %s) AS c "
						 "LEFT JOIN (SELECT * FROM emitted LIMIT %d) AS e ON true",
						 counts, show_rows);
}

/*
 * null_safe_equal is "l IS NOT DISTINCT FROM r" for values of the type of
 * column col of relid, with the type's own equality operator named with its
 * schema: IS NOT DISTINCT FROM would look "=" up by name, and for a type
 * without an exact "=" in pg_catalog (varchar, a domain) an operator in a
 * schema of the owner's search_path would match better.
 */
static char *
null_safe_equal(Oid relid, const char *col, const char *l, const char *r)
{
	char	   *op = equality_operator(relid, col, NULL);

	return psprintf("(%s %s %s OR (%s IS NULL AND %s IS NULL))", l, op, r, l, r);
}

/*
 * equality_operator names, as OPERATOR(schema.name), the equality operator
 * of the type of column col of relid; *in_catalog, if given, tells whether
 * it is pg_catalog's.
 */
static char *
equality_operator(Oid relid, const char *col, bool *in_catalog)
{
	Oid			type = get_atttype(relid, get_attnum(relid, col));
	TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_EQ_OPR);
	HeapTuple	tup;
	Form_pg_operator form;
	char	   *op;

	if (!OidIsValid(tc->eq_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify an equality operator for type %s", format_type_be(type))));
	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(tc->eq_opr));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", tc->eq_opr);
	form = (Form_pg_operator) GETSTRUCT(tup);
	op = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(form->oprnamespace)),
				  NameStr(form->oprname));
	if (in_catalog != NULL)
		*in_catalog = form->oprnamespace == PG_CATALOG_NAMESPACE;
	ReleaseSysCache(tup);
	return op;
}

/*
 * append_finalized adds to a statement, when the result columns are
 * computed from the values of the aggregates (plan->values), the CTE
 * "finalized": each row of source (state rows, alias m) with the value of
 * every aggregate, v1, v2, ...  It returns the relation the result
 * columns are computed from, as alias m.
 */
static const char *
append_finalized(StringInfo sql, ContinuousPlan *plan, const char *source)
{
	ListCell   *lc;

	if (plan->values == NIL)
		return source;
	appendStringInfoString(sql, ",\nfinalized AS (SELECT m.*");
	foreach(lc, plan->values)
		appendStringInfo(sql, ", %s AS v%d", (char *) lfirst(lc), foreach_current_index(lc) + 1);
	appendStringInfo(sql, " FROM %s m)", source);
	return "finalized";
}

/*
 * result_condition is what a group's row "m" satisfies to be in the
 * result, or NULL: HAVING, and when deleted rows are taken back, rows in
 * the group (a global aggregate keeps its one row, as SQL's has one over
 * no rows).
 */
static char *
result_condition(ContinuousPlan *plan)
{
	char	   *has_rows = RetractResultCondition(plan);

	if (plan->having != NULL && has_rows != NULL)
		return psprintf("%s AND %s", plan->having, has_rows);
	return plan->having != NULL ? plan->having : has_rows;
}

/*
 * append_result_rows adds the SELECT of the result rows computed from the
 * rows of relation "from": those that satisfy result_condition.
 */
static void
append_result_rows(StringInfo sql, ContinuousPlan *plan, const char *from)
{
	ListCell   *lc;

	appendStringInfoString(sql, "SELECT ");
	foreach(lc, plan->finalizers)
		appendStringInfo(sql, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 (char *) lfirst(lc));
	appendStringInfo(sql, " FROM %s m", from);
	if (result_condition(plan) != NULL)
		appendStringInfo(sql, " WHERE (%s)", result_condition(plan));
}

/*
 * append_unmet adds the CTE "unmet" that deletes from the result table the
 * rows of the groups in "from" that do not satisfy result_condition (any
 * more): HAVING, or rows left.
 */
static void
append_unmet(StringInfo sql, ContinuousPlan *plan, Oid result_table, const char *from)
{
	ListCell   *lc;
	ListCell   *lc2;

	appendStringInfo(sql, "unmet AS (DELETE FROM %s AS r USING %s AS m WHERE (%s) IS NOT TRUE",
					 RelationQualifiedName(result_table), from, result_condition(plan));
	forboth(lc, plan->result_columns, lc2, plan->finalizers)
	{
		char	   *col = lfirst(lc);

		if (string_list_member(plan->result_keys, col))
			appendStringInfo(sql, " AND %s",
							 null_safe_equal(result_table, col,
											 psprintf("r.%s", quote_identifier(col)),
											 (char *) lfirst(lc2)));
	}
	appendStringInfoString(sql, "),\n");
}

/*
 * build_session_statement assembles the batch statement of a query grouped
 * by a session window.  The batch's sessions and the stored sessions of the
 * same keys that overlap them are merged into islands of overlapping
 * sessions; each island becomes one session whose partial states are
 * merged, replacing the sessions it absorbed in the state and (in complete
 * mode) in the result table.
 */
static char *
build_session_statement(ContinuousPlan *plan, const char *result, const char *columns,
						Oid state_table, const char *returning, int show_rows)
{
	const char *state = RelationQualifiedName(state_table);
	StringInfoData sql;
	StringInfoData match;		/* state row s matches batch session b */
	StringInfoData partition;
	StringInfoData keys;
	StringInfoData clear;
	const char *k = plan->session_key;
	const char *from;
	ListCell   *lc;
	ListCell   *lc2;

	initStringInfo(&sql);
	initStringInfo(&match);
	initStringInfo(&partition);
	initStringInfo(&keys);
	initStringInfo(&clear);
	foreach(lc, plan->state_keys)
	{
		char	   *key = lfirst(lc);

		if (strcmp(key, k) == 0)
		{
			appendStringInfo(&keys, "%spg_catalog.tstzrange(pg_catalog.min(pg_catalog.lower(u.%s)), "
							 "pg_catalog.max(pg_catalog.upper(u.%s)))", keys.len > 0 ? ", " : "", k, k);
			continue;
		}
		appendStringInfo(&match, "%s AND ",
						 null_safe_equal(state_table, key, psprintf("s.%s", key), psprintf("b.%s", key)));
		appendStringInfo(&partition, "%su.%s", partition.len > 0 ? ", " : "", key);
		appendStringInfo(&keys, "%su.%s", keys.len > 0 ? ", " : "", key);
	}
	/* result rows of absorbed sessions: keys map to result columns by finalizer */
	forboth(lc, plan->result_columns, lc2, plan->finalizers)
	{
		char	   *fin = lfirst(lc2);

		if (string_list_member(plan->result_keys, lfirst(lc)))
			appendStringInfo(&clear, "%s%s", clear.len > 0 ? " AND " : "",
							 null_safe_equal(state_table, fin + 2,
											 psprintf("r.%s", quote_identifier(lfirst(lc))),
											 psprintf("o.%s", fin + 2)));
	}

	appendStringInfo(&sql, "WITH %sbatch AS (%s),\n", StreamJoinStateCtes(plan), plan->batch_sql);
	appendStringInfo(&sql,
					 "absorbed AS (DELETE FROM %s AS s USING batch AS b WHERE %ss.%s OPERATOR(pg_catalog.&&) b.%s RETURNING s.*),\n",
					 state, match.data, k, k);
	appendStringInfoString(&sql, "sessions AS (SELECT * FROM batch UNION ALL SELECT * FROM absorbed),\n");
	appendStringInfo(&sql,
					 "breaks AS (SELECT u.*, CASE WHEN pg_catalog.max(pg_catalog.upper(u.%s)) OVER (%s%sORDER BY pg_catalog.lower(u.%s) "
					 "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) OPERATOR(pg_catalog.>) pg_catalog.lower(u.%s) THEN 0 ELSE 1 END AS streaming_break "
					 "FROM sessions AS u),\n",
					 k, partition.len > 0 ? "PARTITION BY " : "", partition.len > 0 ? psprintf("%s ", partition.data) : "", k, k);
	appendStringInfo(&sql,
					 "islands AS (SELECT u.*, pg_catalog.sum(u.streaming_break) OVER (%s%sORDER BY pg_catalog.lower(u.%s) ROWS UNBOUNDED PRECEDING) AS streaming_island "
					 "FROM breaks AS u),\n",
					 partition.len > 0 ? "PARTITION BY " : "", partition.len > 0 ? psprintf("%s ", partition.data) : "", k);
	appendStringInfo(&sql, "merged AS (INSERT INTO %s AS s SELECT %s", state, keys.data);
	foreach(lc, plan->state_merge)
		appendStringInfo(&sql, ", %s", (char *) lfirst(lc));
	appendStringInfo(&sql, " FROM islands AS u GROUP BY %s%su.streaming_island RETURNING s.*)",
					 partition.data, partition.len > 0 ? ", " : "");

	if (plan->mode == OUTPUT_APPEND)
	{
		appendStringInfoString(&sql,
							   "\nSELECT (SELECT pg_catalog.count(*) FROM merged), "
							   "(SELECT pg_catalog.count(*) FROM merged) " OP_SUB
							   " (SELECT pg_catalog.count(*) FROM absorbed), 0::pg_catalog.int8");
		return sql.data;
	}
	from = append_finalized(&sql, plan, "merged");
	/* the result rows of the absorbed sessions go; the merged ones replace them */
	appendStringInfo(&sql, ",\ncleared AS (DELETE FROM %s AS r USING absorbed AS o WHERE %s),\n",
					 result, clear.data);
	appendStringInfo(&sql, "emitted AS (INSERT INTO %s AS r (%s) ", result, columns);
	append_result_rows(&sql, plan, from);
	append_upsert(&sql, plan);
	appendStringInfo(&sql, " %s)\n", returning);
	finish_statement(&sql,
					 "(SELECT pg_catalog.count(*) FROM merged), "
					 "(SELECT pg_catalog.count(*) FROM merged) " OP_SUB " (SELECT pg_catalog.count(*) FROM absorbed), "
					 "(SELECT pg_catalog.count(*) FROM emitted)", show_rows);
	return sql.data;
}

/*
 * PlanPassesClosedWindows tells whether the batch statement of a plan
 * passes the groups of the windows that the batch closes by the state
 * table (see append_passed): in update mode, over windows of one size kept
 * by their start, and for group keys whose equality is pg_catalog's (the
 * statement names no other object than before, so the fingerprint taken
 * at create_query still holds).  Such a statement returns a fourth count,
 * the groups passed by.
 */
bool
PlanPassesClosedWindows(ContinuousPlan *plan, Oid state_table)
{
	ListCell   *lc;

	if (plan->shape != SHAPE_AGGREGATE || plan->mode != OUTPUT_UPDATE ||
		plan->window_size == NULL || plan->session_key != NULL || plan->close_lag != NULL ||
		plan->join_sources != NIL || plan->retract || plan->distinct_fresh != NULL ||
		plan->topn_limit > 0 || plan->result_keys == NIL || !OidIsValid(state_table))
		return false;
	foreach(lc, plan->state_keys)
	{
		bool		in_catalog;

		(void) equality_operator(state_table, lfirst(lc), &in_catalog);
		if (!in_catalog)
			return false;
	}
	return true;
}

/* state_columns lists the columns of a state table, each after prefix */
static char *
state_columns(Oid state_table, const char *prefix)
{
	List	   *names = NIL;
	Relation	rel = table_open(state_table, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			names = lappend(names, pstrdup(NameStr(TupleDescAttr(desc, i)->attname)));
	table_close(rel, AccessShareLock);
	return quoted_list(names, prefix);
}

/*
 * append_passed adds the CTEs "held" and "flagged" of a batch statement
 * that passes closed windows by the state (PlanPassesClosedWindows).  A
 * group of a window that the watermark after the batch ($1) closes would be
 * inserted into the state, emitted from there, and deleted again by the
 * close statement of the same batch: when the state holds no row of it
 * (none of the closing windows' rows, "held", matches), its row for the
 * result is the batch's partial state as it is, and it is emitted without
 * being written to the state table and its index.  flagged is the batch
 * with streaming_passed true for those groups.  A group with a null key
 * takes the usual way: equality does not find it in held.
 */
static void
append_passed(StringInfo sql, ContinuousPlan *plan, Oid state_table)
{
	StringInfoData held;
	StringInfoData match;
	StringInfoData keyed;
	ListCell   *lc;

	initStringInfo(&held);
	initStringInfo(&match);
	initStringInfo(&keyed);
	foreach(lc, plan->state_keys)
	{
		const char *k = quote_identifier(lfirst(lc));

		appendStringInfo(&held, "%ss.%s", held.len > 0 ? ", " : "", k);
		appendStringInfo(&match, "%sh.%s %s b.%s", match.len > 0 ? " AND " : "", k,
						 equality_operator(state_table, lfirst(lc), NULL), k);
		appendStringInfo(&keyed, " AND b.%s IS NOT NULL", k);
	}
	appendStringInfo(sql, "held AS (SELECT true AS streaming_held, %s FROM %s AS s WHERE %s),\n",
					 held.data, RelationQualifiedName(state_table), WindowStateClosed(plan, "s"));
	appendStringInfo(sql,
					 "flagged AS (SELECT b.*, (%s%s AND h.streaming_held IS NULL) IS TRUE AS streaming_passed "
					 "FROM batch AS b LEFT JOIN held AS h ON %s),\n",
					 WindowStateClosed(plan, "b"), keyed.data, match.data);
}

/*
 * BuildBatchStatement assembles the one statement a micro-batch runs, with
 * one parameter, the watermark after the batch ($1, null without one).  It
 * returns three counts: state rows updated, state rows inserted (new
 * groups) and rows written to the result table, and a fourth when
 * PlanPassesClosedWindows; with show_rows > 0, the written rows follow
 * (see finish_statement).  A stateless query outside a join of streams
 * with show_rows 0 is an INSERT, which returns nothing: SPI counts its rows.
 */
static char *build_batch_statement(ContinuousPlan *plan, Oid result_table, Oid state_table,
									int show_rows, bool optimistic);

char *
BuildBatchStatement(ContinuousPlan *plan, Oid result_table, Oid state_table,
					int show_rows)
{
	return build_batch_statement(plan, result_table, state_table, show_rows, false);
}

/*
 * PlanWritesNewGroupsPlainly: whether the batch statement of plan upserts
 * the groups it touched into the result table on its keys, where
 * BuildOptimisticBatchStatement may write its new groups plainly.
 */
bool
PlanWritesNewGroupsPlainly(ContinuousPlan *plan)
{
	return plan->shape == SHAPE_AGGREGATE && plan->mode != OUTPUT_APPEND &&
		plan->result_keys != NIL && plan->topn_limit <= 0 && plan->session_key == NULL &&
		!plan->retract;
}

/*
 * BuildOptimisticBatchStatement is BuildBatchStatement whose new groups
 * (new to the state, or closed in the batch that opened them) are written
 * to the result table with a plain INSERT, and the others upserted as
 * before.  A group the state has never held has no row in the query's own
 * result table, so the plain INSERT finds none; if it does all the same
 * (rows written there by others), it fails with a unique violation and the
 * caller runs BuildBatchStatement's statement instead (batch.c).  It saves
 * ON CONFLICT's arbiter lookup and speculative insertion per new group,
 * about half the cost of writing it.  NULL when the plan has no such
 * upsert (PlanWritesNewGroupsPlainly).
 */
char *
BuildOptimisticBatchStatement(ContinuousPlan *plan, Oid result_table, Oid state_table,
							  int show_rows)
{
	if (!PlanWritesNewGroupsPlainly(plan))
		return NULL;
	return build_batch_statement(plan, result_table, state_table, show_rows, true);
}

static char *
build_batch_statement(ContinuousPlan *plan, Oid result_table, Oid state_table,
					  int show_rows, bool optimistic)
{
	char	   *result = RelationQualifiedName(result_table);
	char	   *columns = quoted_list(plan->result_columns, "");
	const char *returning = show_rows > 0 ? "RETURNING *" : "RETURNING 1";
	bool		passes = PlanPassesClosedWindows(plan, state_table);
	const char *from;
	StringInfoData sql;

	initStringInfo(&sql);
	/*
	 * A stateless query whose written rows nobody reads: a plain INSERT,
	 * whose count SPI gives, rather than a CTE that would keep a row per
	 * row written only to count them (spilled to a temporary file once it
	 * outgrows work_mem).
	 */
	if (plan->shape == SHAPE_STATELESS && show_rows <= 0 && plan->join_sources == NIL)
	{
		appendStringInfo(&sql, "INSERT INTO %s (%s) %s", result, columns,
						 plan->input ? psprintf("SELECT * FROM %s", plan->input) : plan->query_sql);
		return sql.data;
	}
	if (plan->shape == SHAPE_STATELESS)
	{
		appendStringInfo(&sql, "WITH %semitted AS (INSERT INTO %s (%s) %s %s)\n",
						 StreamJoinStateCtes(plan), result, columns,
						 plan->input ? psprintf("SELECT * FROM %s", plan->input) : plan->query_sql,
						 returning);
		finish_statement(&sql, "0::pg_catalog.int8, 0::pg_catalog.int8, (SELECT pg_catalog.count(*) FROM emitted)",
						 show_rows);
		return sql.data;
	}

	if (plan->shape == SHAPE_DEDUP)
	{
		/* the rows whose key the state did not hold are new: emit them */
		appendStringInfo(&sql,
						 "WITH %sfresh AS (INSERT INTO %s AS s SELECT * FROM %s AS b "
						 "ON CONFLICT (%s) DO NOTHING RETURNING s.*),\n",
						 StreamJoinStateCtes(plan), RelationQualifiedName(state_table),
						 plan->input ? plan->input : psprintf("(%s)", plan->query_sql),
						 quoted_list(plan->state_keys, ""));
		appendStringInfo(&sql, "emitted AS (INSERT INTO %s (%s) SELECT * FROM fresh %s)\n",
						 result, columns, returning);
		finish_statement(&sql, "0::pg_catalog.int8, (SELECT pg_catalog.count(*) FROM fresh), "
						 "(SELECT pg_catalog.count(*) FROM emitted)", show_rows);
		return sql.data;
	}

	if (plan->session_key != NULL)
		return build_session_statement(plan, result, columns, state_table,
									   returning, show_rows);

	appendStringInfo(&sql, "WITH %s%sbatch AS (%s),\n", StreamJoinStateCtes(plan),
					 plan->distinct_fresh != NULL ? DistinctAggBatchPrefix(plan) : "", plan->batch_sql);
	if (passes)
		append_passed(&sql, plan, state_table);
	appendStringInfo(&sql,
					 "merged AS (INSERT INTO %s AS s SELECT %s FROM %s ON CONFLICT (%s) DO ",
					 RelationQualifiedName(state_table), passes ? state_columns(state_table, "b.") : "*",
					 passes ? "flagged AS b WHERE NOT b.streaming_passed" : "batch",
					 quoted_list(plan->state_keys, ""));
	if (plan->merge_set != NULL && plan->merge_set[0] != '\0')
		appendStringInfo(&sql, "UPDATE SET %s", plan->merge_set);
	else
		appendStringInfoString(&sql, "NOTHING");
	appendStringInfoString(&sql, " RETURNING s.*, (s.xmax " OP_EQ " 0) AS streaming_new_group)");
	/*
	 * The closed windows come before the open ones, whose starts are later:
	 * the result's rows are then written in the order of its key, each at
	 * the right end of its unique index (see plan_aggregate).  Each reader
	 * reads the two CTEs again rather than a third copy of their rows.
	 */
	if (passes)
		appendStringInfo(&sql, ",\ntouched AS NOT MATERIALIZED (SELECT %s, true AS streaming_new_group FROM flagged AS b WHERE b.streaming_passed "
						 "UNION ALL SELECT * FROM merged)",
						 state_columns(state_table, "b."));
	/* the groups that earlier batches emptied go */
	if (RetractEmptiedCte(plan, state_table) != NULL)
		appendStringInfo(&sql, ",\n%s", RetractEmptiedCte(plan, state_table));

	/* append mode writes a group once, when the watermark closes it */
	if (plan->mode == OUTPUT_APPEND)
	{
		appendStringInfoString(&sql,
							   "\nSELECT (SELECT pg_catalog.count(*) FROM merged), "
							   "(SELECT pg_catalog.count(*) FROM merged WHERE streaming_new_group), 0::pg_catalog.int8");
		return sql.data;
	}
	/* ORDER BY ... LIMIT: the result table holds the top rows only */
	if (plan->topn_limit > 0)
		return TopNBatchStatement(&sql, plan, result_table, state_table, returning, show_rows);
	from = append_finalized(&sql, plan, passes ? "touched" : "merged");
	appendStringInfoString(&sql, ",\n");

	if (plan->result_keys == NIL)
	{
		/*
		 * a global aggregate: its single result row is replaced by the merged
		 * one (none if the state had nothing to merge: HAVING without
		 * aggregates keeps the row it has)
		 */
		appendStringInfo(&sql, "cleared AS (DELETE FROM %s WHERE EXISTS (SELECT FROM merged)),\n", result);
		appendStringInfo(&sql, "emitted AS (INSERT INTO %s (%s) ", result, columns);
	}
	else
	{
		/* a group that no longer satisfies HAVING, or has no rows, leaves the result */
		if (result_condition(plan) != NULL)
			append_unmet(&sql, plan, result_table, from);
		if (!optimistic)
			appendStringInfo(&sql, "emitted AS (INSERT INTO %s AS r (%s) ", result, columns);
	}
	if (optimistic)
	{
		/*
		 * New groups plainly, the others upserted
		 * (BuildOptimisticBatchStatement).  The rows written are those
		 * returned: a trigger on the result table may skip some.
		 */
		appendStringInfo(&sql, "emitted_new AS (INSERT INTO %s AS r (%s) ", result, columns);
		append_result_rows(&sql, plan, from);
		appendStringInfo(&sql, " %s m.streaming_new_group %s),\n",
						 result_condition(plan) != NULL ? "AND" : "WHERE", returning);
		appendStringInfo(&sql, "emitted_kept AS (INSERT INTO %s AS r (%s) ", result, columns);
		append_result_rows(&sql, plan, from);
		appendStringInfo(&sql, " %s NOT m.streaming_new_group",
						 result_condition(plan) != NULL ? "AND" : "WHERE");
		append_upsert(&sql, plan);
		appendStringInfo(&sql, " %s),\n", returning);
		appendStringInfoString(&sql, "emitted AS (SELECT * FROM emitted_new UNION ALL SELECT * FROM emitted_kept)\n");
	}
	else
	{
		append_result_rows(&sql, plan, from);
		append_upsert(&sql, plan);
		appendStringInfo(&sql, " %s)\n", returning);
	}
	if (passes)
		finish_statement(&sql,
						 "(SELECT pg_catalog.count(*) FROM touched), "
						 "(SELECT pg_catalog.count(*) FROM touched WHERE streaming_new_group), "
						 "(SELECT pg_catalog.count(*) FROM emitted), "
						 "(SELECT pg_catalog.count(*) FROM flagged WHERE streaming_passed)", show_rows);
	else
		finish_statement(&sql,
						 "(SELECT pg_catalog.count(*) FROM merged), "
						 "(SELECT pg_catalog.count(*) FROM merged WHERE streaming_new_group), "
						 "(SELECT pg_catalog.count(*) FROM emitted)", show_rows);
	return sql.data;
}

/*
 * PlanCloseBound returns what the close statement compares window ends and
 * deduplication keys with: the watermark, $1, or over a join of streams
 * the watermark less close_lag (plan_join_eviction).
 */
const char *
PlanCloseBound(ContinuousPlan *plan)
{
	if (plan->close_lag == NULL)
		return "$1";
	return psprintf("($1 " OP_SUB " %s)", plan->close_lag);
}

/*
 * BuildCloseStatement assembles the statement that runs after the batch
 * statement when the query has a watermark: it removes the state of the
 * windows that end at or before the watermark ($1) and, in append mode,
 * writes their final rows; over a join of streams, it also deletes the
 * rows of the join's states that can no longer match and writes those of
 * an outer join's that never matched, padded with NULLs (operators/
 * stream_join.c).  It returns the rows removed and the rows written, then
 * (over a join whose states are evicted) the join's rows deleted, then,
 * with show_rows > 0, the written rows.  NULL if the query has nothing to
 * close or evict.
 */
char *
BuildCloseStatement(ContinuousPlan *plan, Oid result_table, Oid state_table,
					int show_rows)
{
	StringInfoData sql;
	const char *from;
	char	   *evicted = NULL;
	char	   *evict = StreamJoinEvictCtes(plan, &evicted);
	char	   *more = evicted ? psprintf(", %s", evicted) : "";

	initStringInfo(&sql);
	if (plan->shape == SHAPE_DEDUP && plan->time_key != NULL)
	{
		/*
		 * keys older than the watermark (over a join: than the watermark
		 * less close_lag) can only come back late: evict them
		 */
		appendStringInfo(&sql,
						 "WITH %sclosed AS (DELETE FROM %s AS s WHERE s.%s " OP_LE " %s RETURNING 1)\n"
						 "SELECT pg_catalog.count(*), 0::pg_catalog.int8%s FROM closed",
						 evict, RelationQualifiedName(state_table), quote_identifier(plan->time_key),
						 PlanCloseBound(plan), more);
		return sql.data;
	}
	if (plan->shape != SHAPE_AGGREGATE || plan->window_key == NULL || plan->mode == OUTPUT_COMPLETE)
	{
		char	   *unmatched = StreamJoinUnmatched(plan);

		if (evicted == NULL)
			return NULL;
		/* an outer join's evicted rows that never matched, padded with NULLs */
		if (unmatched != NULL)
		{
			appendStringInfo(&sql, "WITH %semitted AS (INSERT INTO %s (%s) %s %s)\n",
							 evict, RelationQualifiedName(result_table), quoted_list(plan->result_columns, ""),
							 unmatched, show_rows > 0 ? "RETURNING *" : "RETURNING 1");
			finish_statement(&sql, psprintf("0::pg_catalog.int8, (SELECT pg_catalog.count(*) FROM emitted)%s", more),
							 show_rows);
			return sql.data;
		}
		/* the join's states alone */
		appendStringInfo(&sql, "WITH %s", evict);
		sql.len -= 2;			/* the last CTE's ",\n" */
		sql.data[sql.len] = '\0';
		appendStringInfo(&sql, "\nSELECT 0::pg_catalog.int8, 0::pg_catalog.int8%s", more);
		return sql.data;
	}

	appendStringInfo(&sql,
					 "WITH %sclosed AS (DELETE FROM %s AS s WHERE %s RETURNING s.*)",
					 evict, RelationQualifiedName(state_table), WindowStateClosed(plan, "s"));
	/* the distinct values of the closed windows go with their state */
	if (DistinctAggCloseCte(plan) != NULL)
		appendStringInfo(&sql, ",\n%s", DistinctAggCloseCte(plan));
	if (plan->mode == OUTPUT_UPDATE)
	{
		appendStringInfo(&sql, "\nSELECT pg_catalog.count(*), 0::pg_catalog.int8%s FROM closed", more);
		return sql.data;
	}
	from = append_finalized(&sql, plan, "closed");
	appendStringInfo(&sql, ",\nemitted AS (INSERT INTO %s (%s) ",
					 RelationQualifiedName(result_table), quoted_list(plan->result_columns, ""));
	append_result_rows(&sql, plan, from);
	appendStringInfo(&sql, " %s)\n", show_rows > 0 ? "RETURNING *" : "RETURNING 1");
	finish_statement(&sql, psprintf("(SELECT pg_catalog.count(*) FROM closed), (SELECT pg_catalog.count(*) FROM emitted)%s",
									more),
					 show_rows);
	return sql.data;
}

/*
 * PlanEvictsJoin tells whether the close statement of a plan deletes rows
 * of a join's states, and so returns a third count.
 */
bool
PlanEvictsJoin(ContinuousPlan *plan)
{
	char	   *count;

	(void) StreamJoinEvictCtes(plan, &count);
	return count != NULL;
}

/*
 * BuildRefillStatement assembles the statement that writes a grouped
 * query's whole result from its state: every group's finalized row that
 * satisfies HAVING, as complete mode keeps it (alter_query, when a new
 * SELECT keeps the same state).  The result table is empty.
 */
char *
BuildRefillStatement(ContinuousPlan *plan, Oid result_table, Oid state_table)
{
	StringInfoData sql;
	const char *from;

	Assert(plan->shape == SHAPE_AGGREGATE && plan->session_key == NULL);
	initStringInfo(&sql);
	appendStringInfo(&sql, "WITH stored AS (SELECT * FROM %s)", RelationQualifiedName(state_table));
	from = append_finalized(&sql, plan, "stored");
	appendStringInfo(&sql, "\nINSERT INTO %s (%s) ", RelationQualifiedName(result_table),
					 quoted_list(plan->result_columns, ""));
	append_result_rows(&sql, plan, from);
	return sql.data;
}

/* string_lists_equal: the same strings in the same order */
static bool
string_lists_equal(List *a, List *b)
{
	ListCell   *la;
	ListCell   *lb;

	if (list_length(a) != list_length(b))
		return false;
	forboth(la, a, lb, b)
		if (strcmp(lfirst(la), lfirst(lb)) != 0)
			return false;
	return true;
}

static bool
strings_equal(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * PlanStateDifference tells how a new plan of a query keeps its state
 * differently from the old one: NULL if it reads the same input the same
 * way and keeps the same state (keys, partial aggregates, merge, windows),
 * so that only what is computed from the state (the result columns,
 * finalizers, HAVING) may differ; else what differs, for an error's
 * DETAIL.  Both plans come from PlanContinuousQuery with the same input
 * view name, and input_sql set.  The state columns are numbered (s1, s2,
 * ...), so the names of the result columns do not matter, but the order
 * of the aggregates does.
 */
const char *
PlanStateDifference(ContinuousPlan *old, ContinuousPlan *new)
{
	if (old->shape != new->shape)
		return "The new query is not the same kind of query (grouped, deduplicating or stateless).";
	if (list_length(old->sources) != list_length(new->sources) ||
		list_difference_oid(old->sources, new->sources) != NIL)
		return "The new query reads other sources.";
	if (!string_lists_equal(old->state_keys, new->state_keys) ||
		!strings_equal(old->window_key, new->window_key) ||
		!strings_equal(old->window_size, new->window_size) ||
		!strings_equal(old->time_key, new->time_key) ||
		!strings_equal(old->session_key, new->session_key) ||
		!strings_equal(old->session_gap, new->session_gap))
		return "The new query groups by different keys or windows.";
	/* the state columns s1, s2, ...: what the aggregates' labels name is explain's */
	if (!strings_equal(old->batch_sql, new->batch_sql) ||
		!strings_equal(old->merge_set, new->merge_set) ||
		!string_lists_equal(old->state_merge, new->state_merge))
		return "The new query keeps different aggregates (or the same in another order).";
	if (!strings_equal(old->input_sql, new->input_sql))
		return "The new query reads its input differently (its FROM, WHERE, group keys or aggregate arguments).";
	return NULL;
}

/*
 * PlanOutputDifference tells whether two plans that keep the same state
 * compute different result rows from it: other columns, finalizers or
 * HAVING.
 */
bool
PlanOutputDifference(ContinuousPlan *old, ContinuousPlan *new)
{
	return !string_lists_equal(old->result_columns, new->result_columns) ||
		!string_lists_equal(old->result_keys, new->result_keys) ||
		!string_lists_equal(old->finalizers, new->finalizers) ||
		!string_lists_equal(old->values, new->values) ||
		!strings_equal(old->having, new->having);
}

/*
 * append_upsert adds the ON CONFLICT clause that makes an emitted row
 * replace the previous row of its group in the result table.
 */
static void
append_upsert(StringInfo sql, ContinuousPlan *plan)
{
	ListCell   *lc;

	if (plan->result_keys != NIL)
	{
		bool		first = true;

		appendStringInfo(sql, " ON CONFLICT (%s) DO ", quoted_list(plan->result_keys, ""));
		foreach(lc, plan->result_columns)
		{
			char	   *col = lfirst(lc);

			if (string_list_member(plan->result_keys, col))
				continue;
			appendStringInfo(sql, "%s%s = EXCLUDED.%s", first ? "UPDATE SET " : ", ",
							 quote_identifier(col), quote_identifier(col));
			first = false;
		}
		if (first)
			appendStringInfoString(sql, "NOTHING");
	}
}

/* ------------------------------------------------------------------------
 * Pieces of the generated statements that the operators (src/operators/)
 * build theirs with
 * ------------------------------------------------------------------------ */

/* PlanGroupKeyIndex: group_key_index for the operators */
int
PlanGroupKeyIndex(Query *query, TargetEntry *tle)
{
	return group_key_index(query, tle);
}

/* PlanNullSafeEqual: null_safe_equal for the operators */
char *
PlanNullSafeEqual(Oid relid, const char *col, const char *l, const char *r)
{
	return null_safe_equal(relid, col, l, r);
}

/* PlanAppendFinalized: append_finalized for the operators */
const char *
PlanAppendFinalized(StringInfo sql, ContinuousPlan *plan, const char *source)
{
	return append_finalized(sql, plan, source);
}

/* PlanAvgFinalizer: avg_finalizer for the operators */
char *
PlanAvgFinalizer(const char *s1, const char *s2, Oid argtype, const char *restype)
{
	return avg_finalizer(s1, s2, argtype, restype);
}

/* PlanAppendUpsert: append_upsert for the operators */
void
PlanAppendUpsert(StringInfo sql, ContinuousPlan *plan)
{
	append_upsert(sql, plan);
}

/* PlanFinishStatement: finish_statement for the operators */
void
PlanFinishStatement(StringInfo sql, const char *counts, int show_rows)
{
	finish_statement(sql, counts, show_rows);
}
