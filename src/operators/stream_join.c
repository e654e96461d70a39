/*-------------------------------------------------------------------------
 *
 * stream_join.c
 *	  Inner joins between streams: each joined source's rows kept in a
 *	  state table, each batch joining the new rows of every source with
 *	  the others' new and kept rows.
 *
 * A join of streams S1 ... Sk is linear in each of them: if every Si is
 * split into the rows kept from earlier batches (Oi, its state table) and
 * the rows of this batch (Di, what the source's scan returns in a batch),
 * S1 join ... join Sk is the union, over every way of choosing Oi or Di
 * for each i, of the joins of the choices.  The choice of all Oi was the
 * output of earlier batches; the other 2^k - 1 are this batch's new
 * output: no pair is missed (whichever side came first, in whichever
 * batch) and none is produced twice.  So the query's input view - the
 * join, its WHERE, and the expressions the rest of the query needs - is
 * the UNION ALL of 2^k - 1 copies of it, each reading some sources' new
 * rows and the others' state tables; what sits on the join (projection,
 * deduplication, aggregation, DISTINCT aggregates) is kept as over a
 * single source.  The batch statement appends each source's new rows to
 * its state table in a CTE, which the copies' reads of the state tables
 * do not see (one snapshot per statement): they read the rows kept before
 * the batch, as the formula needs.
 *
 * A state table has the columns of its source, of which it keeps those
 * the query reads, and an index on the source's join keys (its columns
 * compared with = to another stream's), so
 * that the copies joining few new rows with a large state find their
 * matches by index.  Without watermarks the states grow without bound;
 * create_query says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/prep.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"

#include "operators/stream_join.h"
#include "source.h"
#include "streaming.h"

/*
 * check_outer_joins refuses an outer join in the join tree with streams
 * (range table entries rtindexes) on both sides.
 */
static void
check_outer_joins(Node *jtnode, List *rtindexes)
{
	if (jtnode == NULL || IsA(jtnode, RangeTblRef))
		return;
	if (IsA(jtnode, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) jtnode)->fromlist)
			check_outer_joins(lfirst(lc), rtindexes);
		return;
	}
	if (IsA(jtnode, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) jtnode;

		if (join->jointype != JOIN_INNER)
		{
			Relids		left = get_relids_in_jointree(join->larg, false);
			Relids		right = get_relids_in_jointree(join->rarg, false);
			bool		left_stream = false;
			bool		right_stream = false;
			ListCell   *lc;

			foreach(lc, rtindexes)
			{
				left_stream |= bms_is_member(lfirst_int(lc), left);
				right_stream |= bms_is_member(lfirst_int(lc), right);
			}
			if (left_stream && right_stream)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("outer joins between streams are not supported yet in continuous queries"),
						 errdetail("An unmatched row can be emitted only when no match can come any more, which needs watermarks on both streams."),
						 errhint("Use an inner join.")));
		}
		check_outer_joins(join->larg, rtindexes);
		check_outer_joins(join->rarg, rtindexes);
	}
}

/*
 * whole_row_walker refuses a reference to the whole row of a joined
 * stream: in the copies of the join that read its state table, the row
 * would be of the state table's type, not the source's.
 */
static bool
whole_row_walker(Node *node, void *context)
{
	List	   *rtindexes = (List *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varlevelsup == 0 && ((Var *) node)->varattno == 0 &&
		list_member_int(rtindexes, ((Var *) node)->varno))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the whole row of a joined stream cannot be used in a continuous query"),
				 errhint("Name its columns instead, e.g. a.* in the select list, or ROW(a.x, a.y).")));
	if (IsA(node, Query))
		return false;			/* a subquery's Vars of level 0 are its own */
	return expression_tree_walker(node, whole_row_walker, context);
}

/*
 * StreamJoinFind returns the range table indexes of the sources that the
 * top level of a query joins (two or more), or NIL.  A join of streams in
 * an outer join is refused: an unmatched row can only be emitted once no
 * match can come, which needs watermarks.
 */
List *
StreamJoinFind(Query *query)
{
	List	   *rtindexes = NIL;
	ListCell   *lc;

	foreach(lc, query->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION && IsStreamingSource(rte->relid))
			rtindexes = lappend_int(rtindexes, foreach_current_index(lc) + 1);
	}
	if (list_length(rtindexes) < 2)
		return NIL;

	check_outer_joins((Node *) query->jointree, rtindexes);
	(void) query_tree_walker(query, whole_row_walker, rtindexes, 0);
	return rtindexes;
}

typedef struct KeyWalk
{
	Query	   *query;
	Oid			relid;
	List	   *keys;
} KeyWalk;

static Var *
strip_to_var(Node *node)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node != NULL && IsA(node, Var) && ((Var *) node)->varlevelsup == 0 ? (Var *) node : NULL;
}

/*
 * index_item returns the index key of an expression of one stream (range
 * table entry varno, relation relid) for its state table, whose columns
 * are named as the source's: the column's name for a column, else the
 * expression deparsed over the source's columns, names qualified, in
 * parentheses; NULL for an expression an index cannot hold (not
 * immutable).
 */
static char *
index_item(Node *expr, int varno, Oid relid)
{
	Var		   *var = strip_to_var(expr);
	Node	   *copy;
	char	   *sql;
	int			nestlevel;

	if (var != NULL)
		return var->varattno > 0 ? pstrdup(quote_identifier(get_attname(relid, var->varattno, false))) : NULL;
	if (contain_mutable_functions(expr))
		return NULL;
	copy = copyObject(expr);
	ChangeVarNodes(copy, varno, 1, 0);
	nestlevel = PushCatalogSearchPath();
	sql = deparse_expression(copy, deparse_context_for(get_rel_name(relid), relid), false, false);
	PopCatalogSearchPath(nestlevel);
	return psprintf("(%s)", sql);
}

static bool
key_walker(Node *node, KeyWalk *walk)
{
	if (node == NULL)
		return false;
	if (IsA(node, OpExpr) && list_length(((OpExpr *) node)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) node;
		Node	   *args[2] = {linitial(op->args), lsecond(op->args)};

		/*
		 * a column or an expression of one stream compared with = to a
		 * column or an expression of others (a.x = b.y, a.x = b.y * 10):
		 * the first stream's state is probed by the other side's values
		 */
		if (op_mergejoinable(op->opno, exprType(args[0])) ||
			op_hashjoinable(op->opno, exprType(args[0])))
		{
			for (int i = 0; i < 2; i++)
			{
				Relids		mine = pull_varnos(NULL, args[i]);
				Relids		other = pull_varnos(NULL, args[1 - i]);
				int			varno = 0;
				RangeTblEntry *rte;
				bool		streams_only = !bms_is_empty(other);
				int			o = -1;
				char	   *item;

				if (!bms_get_singleton_member(mine, &varno) || bms_is_member(varno, other) ||
					contain_volatile_functions(args[1 - i]))
					continue;
				while ((o = bms_next_member(other, o)) >= 0)
				{
					RangeTblEntry *ort = rt_fetch(o, walk->query->rtable);

					streams_only &= ort->rtekind == RTE_RELATION && IsStreamingSource(ort->relid);
				}
				rte = rt_fetch(varno, walk->query->rtable);
				if (!streams_only || rte->rtekind != RTE_RELATION || rte->relid != walk->relid)
					continue;
				item = index_item(args[i], varno, rte->relid);
				if (item != NULL)
					walk->keys = list_append_unique(walk->keys, makeString(item));
			}
		}
	}
	if (IsA(node, JoinExpr))
	{
		JoinExpr   *join = (JoinExpr *) node;

		(void) key_walker(join->larg, walk);
		(void) key_walker(join->rarg, walk);
		return key_walker(join->quals, walk);
	}
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
			(void) key_walker(lfirst(lc), walk);
		return key_walker(((FromExpr *) node)->quals, walk);
	}
	if (IsA(node, Query) || IsA(node, SubLink))
		return false;
	return expression_tree_walker(node, key_walker, walk);
}

/*
 * StreamJoinKeys returns what the state table of source relid is indexed
 * on: its columns and expressions that the query's join compares with =
 * to columns or expressions of other streams, as index keys (see
 * index_item).
 */
List *
StreamJoinKeys(Query *query, Oid relid)
{
	KeyWalk		walk = {query, relid, NIL};
	List	   *names = NIL;
	ListCell   *lc;

	(void) key_walker((Node *) query->jointree, &walk);
	foreach(lc, walk.keys)
		names = lappend(names, strVal(lfirst(lc)));
	return names;
}

/*
 * StreamJoinColumns returns the columns of source relid that the query
 * reads through any of its range table entries rtindexes (as PostgreSQL
 * checks the query's privileges on them), quoted and comma-separated in
 * the source's order: "*" when it reads the whole row, "" when none.
 * Only these are kept in the source's state table, so that a role that
 * may read some columns of a source joins it as it may query it, and no
 * column the query does not need is stored.
 */
char *
StreamJoinColumns(Query *query, List *rtindexes, Oid relid)
{
	Bitmapset  *cols = NULL;
	StringInfoData buf;
	ListCell   *lc;
	int			col = -1;

	foreach(lc, rtindexes)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), query->rtable);

		if (rte->relid == relid)
			cols = bms_union(cols, rte->selectedCols);
	}
	if (bms_is_member(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber, cols))
		return "*";
	initStringInfo(&buf);
	while ((col = bms_next_member(cols, col)) >= 0)
	{
		AttrNumber	attno = col + FirstLowInvalidHeapAttributeNumber;

		if (attno <= 0)
			continue;			/* system columns: none in a state table */
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 quote_identifier(get_attname(relid, attno, false)));
	}
	return buf.data;
}

/* the name of a query's n-th join state table, schema-qualified and quoted */
char *
StreamJoinTableName(int32 query_id, int n)
{
	return psprintf("%s.%s", STREAMING_SCHEMA, quote_identifier(psprintf("join_%d_%d", query_id, n)));
}

/*
 * StreamJoinExpand returns the text of the UNION ALL of the 2^k - 1 copies
 * of query (see the header comment): in each, some of the joined sources
 * (range table entries rtindexes, their relations sources) read their new
 * rows, the others their state tables (state_oids), whose columns are the
 * sources' columns, in the same order.
 */
char *
StreamJoinExpand(Query *query, List *rtindexes, List *sources, List *state_oids)
{
	int			k = list_length(rtindexes);
	StringInfoData sql;

	initStringInfo(&sql);
	for (int mask = 1; mask < (1 << k); mask++)
	{
		Query	   *copy = copyObject(query);
		ListCell   *lc;

		foreach(lc, rtindexes)
		{
			int			i = foreach_current_index(lc);
			RangeTblEntry *rte = rt_fetch(lfirst_int(lc), copy->rtable);

			Assert(rte->relid == list_nth_oid(sources, i));
			if ((mask & (1 << i)) != 0)
				continue;		/* its new rows: the source's scan */
			rte->relid = list_nth_oid(state_oids, i);
			rte->relkind = RELKIND_RELATION;
		}
		appendStringInfo(&sql, "%s(%s)", sql.len > 0 ? "\nUNION ALL\n" : "", PlanDeparseQuery(copy));
	}
	return sql.data;
}

/*
 * StreamJoinStateCtes returns the CTEs of the batch statement that append
 * each joined source's new rows (the columns the query reads) to its state
 * table, each followed by a comma and a newline, or "".
 */
char *
StreamJoinStateCtes(ContinuousPlan *plan)
{
	StringInfoData sql;
	ListCell   *lc;
	ListCell   *lc2;

	initStringInfo(&sql);
	forboth(lc, plan->join_sources, lc2, plan->join_states)
	{
		int			i = foreach_current_index(lc);
		/* a plan made before the columns were recorded keeps all */
		char	   *cols = i < list_length(plan->join_columns) ? list_nth(plan->join_columns, i) : "*";

		appendStringInfo(&sql, "join_kept_%d AS (INSERT INTO %s ", i + 1, (char *) lfirst(lc2));
		if (strcmp(cols, "*") == 0 || cols[0] == '\0')
			appendStringInfo(&sql, "SELECT %s FROM %s),\n", cols, (char *) lfirst(lc));
		else
			appendStringInfo(&sql, "(%s) SELECT %s FROM %s),\n", cols, cols, (char *) lfirst(lc));
	}
	return sql.data;
}
