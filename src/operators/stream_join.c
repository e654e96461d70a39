/*-------------------------------------------------------------------------
 *
 * stream_join.c
 *	  Joins between streams: each joined source's rows kept in a state
 *	  table, each batch joining the new rows of every source with the
 *	  others' new and kept rows; an outer join's unmatched rows emitted
 *	  when the watermark evicts them.
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
 * matches by index.
 *
 * A state is evicted as Spark's StreamingSymmetricHashJoinExec evicts:
 * rows of the other streams that come later have event times after the
 * query's watermark (rows at or before it are late and dropped), so a kept
 * row of X can no longer match once the upper bound that the join's
 * condition puts on another stream Y's event time, as a function of X's
 * row, is at or before the watermark.  The bounds are read from the
 * conjuncts of the join's conditions: comparisons of two streams' times,
 * each plus or minus a constant interval ("b.t <= a.t + interval '1 hour'",
 * BETWEEN), and the same tumbling window of both ("streaming.window(a.t,
 * s) = streaming.window(b.t, s)").  With three streams or more, a row of X
 * goes when it can match no later row of any other stream; a source joined
 * with itself keeps one state, whose row goes when it can match no later
 * row in any of its places in the join.  The close
 * statement, which runs when the watermark has moved, deletes the dead
 * rows through an index on the bounded column.  A state without such a
 * bound grows without bound; create_query says which and why.
 *
 * An outer join (LEFT, RIGHT, FULL) of two streams is kept as Spark keeps
 * it.  The copies join as an inner join does: they produce the pairs that
 * match, each once.  An unmatched row of a preserved side can only be
 * emitted when no later row can match it - when the watermark evicts it -
 * so create_query wants watermarks on both streams and a bound in the ON
 * condition that evicts each preserved side.  Both sides are evicted by
 * the ON condition alone: WHERE applies after the join and does not decide
 * which rows match, nor so whether a row is to be padded.  The state of a
 * preserved side has a column more, streaming_matched: the batch statement
 * keeps its new rows with whether a kept or new row of the other side
 * matches them, and sets it on its kept rows that the other side's new
 * rows match, so that it is true as soon as a pair with the row has been
 * output, in that pair's transaction.  The close statement deletes the
 * rows the watermark has made dead, and appends the query's rows of those
 * that never matched, padded with NULLs: the query over them outer-joined
 * with nothing (ON false), so that its select list, WHERE and joins with
 * ordinary tables apply as SQL applies them.  Each row comes out once and
 * is never taken back, so only append mode is accepted, with nothing that
 * keeps state of its own (aggregation, DISTINCT) over the join.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/prep.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "formats/event_time.h"
#include "operators/stream_join.h"
#include "operators/window_state.h"
#include "source.h"
#include "streaming.h"
#include "window.h"

/*
 * find_outer_join finds the outer join between streams (range table
 * entries rtindexes) in a join tree, *found, refusing one that is not
 * supported: between other than the query's two streams, each named
 * directly on its side, on the side of another outer join that it pads
 * with NULLs, with an alias, or with a subquery or a volatile function in
 * its ON condition (the statements that track which rows matched evaluate
 * the condition apart).
 * under_outer: on such a side.
 */
static void
find_outer_join(Node *jtnode, List *rtindexes, bool under_outer, JoinExpr **found)
{
	if (jtnode == NULL || IsA(jtnode, RangeTblRef))
		return;
	if (IsA(jtnode, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) jtnode)->fromlist)
			find_outer_join(lfirst(lc), rtindexes, under_outer, found);
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
			{
				if (list_length(rtindexes) != 2 || !IsA(join->larg, RangeTblRef) ||
					!IsA(join->rarg, RangeTblRef))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("an outer join between streams must join two streams named directly on its two sides"),
							 errdetail("The query joins %d streams; an outer join is supported between two sources, with ordinary tables joined outside it.",
									   list_length(rtindexes)),
							 errhint("Write the outer join as a LEFT, RIGHT or FULL JOIN of the two sources themselves, e.g. a LEFT JOIN b ON ..., and join other tables to its result.")));
				if (under_outer)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("an outer join between streams cannot be on the side of another outer join that is padded with NULLs"),
							 errhint("Join ordinary tables to the result of the streams' outer join, e.g. (a LEFT JOIN b ON ...) LEFT JOIN t ON t.x = a.x.")));
				/* its sides' states have a column more than the sources */
				if (join->alias != NULL)
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("an outer join between streams cannot have an alias"),
							 errhint("Name the columns of its two sides, e.g. a.x and b.y.")));
				if (checkExprHasSubLink(join->quals))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("the ON condition of an outer join between streams cannot contain a subquery")));
				/* the pairs and the matched flags must see one answer */
				if (contain_volatile_functions(join->quals))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("the ON condition of an outer join between streams cannot call volatile functions"),
							 errdetail("The condition is evaluated once to output the pairs and again to tell which rows matched; a volatile function could answer differently, and a row could come out both matched and padded with NULLs."),
							 errhint("Move the volatile part to WHERE, or mark the function STABLE or IMMUTABLE if it is.")));
				*found = join;
			}
		}
		find_outer_join(join->larg, rtindexes,
						under_outer || join->jointype == JOIN_RIGHT || join->jointype == JOIN_FULL, found);
		find_outer_join(join->rarg, rtindexes,
						under_outer || join->jointype == JOIN_LEFT || join->jointype == JOIN_FULL, found);
	}
}

/*
 * StreamJoinOuter returns the outer join between the streams (range table
 * entries rtindexes) of a query, or NULL: at most one, see
 * find_outer_join.
 */
JoinExpr *
StreamJoinOuter(Query *query, List *rtindexes)
{
	JoinExpr   *found = NULL;

	find_outer_join((Node *) query->jointree, rtindexes, false, &found);
	return found;
}

/* join_preserves: whether outer join keeps the unmatched rows of rtindex */
static bool
join_preserves(JoinExpr *join, int rtindex)
{
	if (join == NULL)
		return false;
	if (((RangeTblRef *) join->larg)->rtindex == rtindex)
		return join->jointype == JOIN_LEFT || join->jointype == JOIN_FULL;
	if (((RangeTblRef *) join->rarg)->rtindex == rtindex)
		return join->jointype == JOIN_RIGHT || join->jointype == JOIN_FULL;
	return false;
}

/*
 * StreamJoinPreserves tells whether the state of source relid keeps a
 * preserved side of the query's outer join between streams, and so has
 * the column streaming_matched.
 */
bool
StreamJoinPreserves(Query *query, List *rtindexes, Oid relid)
{
	JoinExpr   *join = StreamJoinOuter(query, rtindexes);
	ListCell   *lc;

	foreach(lc, rtindexes)
		if (rt_fetch(lfirst_int(lc), query->rtable)->relid == relid &&
			join_preserves(join, lfirst_int(lc)))
			return true;
	return false;
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
 * top level of a query joins (two or more), or NIL.  An outer join between
 * them is checked here (find_outer_join), its watermarks and bound by
 * StreamJoinEvictions.
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

	(void) StreamJoinOuter(query, rtindexes);
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
 * kept_columns sets *attnos to the columns of source relid that the query
 * reads through any of its range table entries rtindexes (as PostgreSQL
 * checks the query's privileges on them), false when it reads the whole
 * row.
 */
static bool
kept_columns(Query *query, List *rtindexes, Oid relid, Bitmapset **attnos)
{
	Bitmapset  *cols = NULL;
	ListCell   *lc;
	int			col = -1;

	*attnos = NULL;
	foreach(lc, rtindexes)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), query->rtable);

		if (rte->relid == relid)
			cols = bms_union(cols, rte->selectedCols);
	}
	if (bms_is_member(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber, cols))
		return false;
	while ((col = bms_next_member(cols, col)) >= 0)
	{
		AttrNumber	attno = col + FirstLowInvalidHeapAttributeNumber;

		if (attno > 0)			/* system columns: none in a state table */
			*attnos = bms_add_member(*attnos, attno);
	}
	return true;
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
	int			attno = -1;

	if (!kept_columns(query, rtindexes, relid, &cols))
		return "*";
	initStringInfo(&buf);
	while ((attno = bms_next_member(cols, attno)) >= 0)
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
						 quote_identifier(get_attname(relid, attno, false)));
	return buf.data;
}

/* the name of a query's n-th join state table, schema-qualified and quoted */
char *
StreamJoinTableName(int32 query_id, int n)
{
	return psprintf("%s.%s", STREAMING_SCHEMA, quote_identifier(psprintf("join_%d_%d", query_id, n)));
}

/*
 * inner_outer_join makes the outer join between streams of a copy of the
 * query an inner join: the copies produce the pairs that match, the
 * unmatched rows come out when the watermark evicts them.
 */
static void
inner_outer_join(Query *copy, List *rtindexes)
{
	JoinExpr   *join = StreamJoinOuter(copy, rtindexes);

	if (join == NULL)
		return;
	join->jointype = JOIN_INNER;
	rt_fetch(join->rtindex, copy->rtable)->jointype = JOIN_INNER;
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
		inner_outer_join(copy, rtindexes);
		appendStringInfo(&sql, "%s(%s)", sql.len > 0 ? "\nUNION ALL\n" : "", PlanDeparseQuery(copy));
	}
	return sql.data;
}

/* outer_statement: per-state statement i of list, "" if none */
static char *
outer_statement(List *statements, int i)
{
	return i < list_length(statements) ? (char *) list_nth(statements, i) : "";
}

/*
 * StreamJoinStateCtes returns the CTEs of the batch statement that append
 * each joined source's new rows (the columns the query reads) to its state
 * table, each followed by a comma and a newline, or "".  A preserved side
 * of an outer join keeps them with their streaming_matched flag, and sets
 * it on its kept rows that the other side's new rows match.
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

		/* a preserved side of an outer join: with whether each row matched */
		if (outer_statement(plan->join_keep, i)[0] != '\0')
		{
			appendStringInfo(&sql, "join_kept_%d AS (INSERT INTO %s (%s%sstreaming_matched) %s),\n",
							 i + 1, (char *) lfirst(lc2), cols, cols[0] != '\0' ? ", " : "",
							 outer_statement(plan->join_keep, i));
			appendStringInfo(&sql, "join_matched_%d AS (UPDATE %s AS s SET streaming_matched = true "
							 "WHERE s.ctid OPERATOR(pg_catalog.=) ANY (ARRAY(%s)) AND NOT s.streaming_matched),\n",
							 i + 1, (char *) lfirst(lc2), outer_statement(plan->join_match, i));
			continue;
		}
		appendStringInfo(&sql, "join_kept_%d AS (INSERT INTO %s ", i + 1, (char *) lfirst(lc2));
		if (strcmp(cols, "*") == 0 || cols[0] == '\0')
			appendStringInfo(&sql, "SELECT %s FROM %s),\n", cols, (char *) lfirst(lc));
		else
			appendStringInfo(&sql, "(%s) SELECT %s FROM %s),\n", cols, cols, (char *) lfirst(lc));
	}
	return sql.data;
}

/* ------------------------------------------------------------------------
 * Outer joins: which kept rows matched, and the rows that never did
 * ------------------------------------------------------------------------ */

/*
 * How renumber_vars_walker moves the Vars of two streams (range table
 * entries from[]) into a statement of their own: to entries to[], up[]
 * query levels above the condition.
 */
typedef struct RenumberVars
{
	int			from[2];
	int			to[2];
	int			up[2];
} RenumberVars;

static bool
renumber_vars_walker(Node *node, RenumberVars *r)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varlevelsup == 0)
	{
		Var		   *var = (Var *) node;

		for (int i = 0; i < 2; i++)
			if (var->varno == r->from[i])
			{
				var->varno = var->varnosyn = r->to[i];
				var->varattnosyn = var->varattno;
				var->varlevelsup = r->up[i];
				break;
			}
		return false;
	}
	/* no subquery: find_outer_join refused them in the ON condition */
	return expression_tree_walker(node, renumber_vars_walker, r);
}

/* stream_rte: the entry of stream varno of query, reading relation relid */
static RangeTblEntry *
stream_rte(Query *query, int varno, Oid relid)
{
	RangeTblEntry *rte = copyObject(rt_fetch(varno, query->rtable));

	rte->relid = relid;
	rte->relkind = get_rel_relkind(relid);
	return rte;
}

/* select_from: a SELECT of no columns yet FROM the entries rtes WHERE quals */
static Query *
select_from(List *rtes, Node *quals)
{
	Query	   *q = makeNode(Query);
	List	   *from = NIL;

	q->commandType = CMD_SELECT;
	q->querySource = QSRC_ORIGINAL;
	q->canSetTag = true;
	q->rtable = rtes;
	for (int i = 1; i <= list_length(rtes); i++)
	{
		RangeTblRef *ref = makeNode(RangeTblRef);

		ref->rtindex = i;
		from = lappend(from, ref);
	}
	q->jointree = makeFromExpr(from, quals);
	q->hasSubLinks = checkExprHasSubLink(quals);
	return q;
}

/*
 * match_exists returns EXISTS (a row of relation relid, as stream y, that
 * the ON condition on matches with the row of stream x of the enclosing
 * statement, its only entry).
 */
static Node *
match_exists(Query *query, Node *on, int x, int y, Oid relid)
{
	RenumberVars r = {{x, y}, {1, 1}, {1, 0}};
	Node	   *cond = copyObject(on);
	SubLink    *link = makeNode(SubLink);

	(void) renumber_vars_walker(cond, &r);
	link->subLinkType = EXISTS_SUBLINK;
	link->subselect = (Node *) select_from(list_make1(stream_rte(query, y, relid)), cond);
	link->location = -1;
	return (Node *) link;
}

/*
 * keep_statement returns the SELECT of the new rows of preserved stream x
 * (source x_source) that its state keeps, each with whether a row of y
 * matches it, kept (y_state) or new (y_source): the union of three
 * SELECTs, which EXISTS and NOT EXISTS in WHERE make semi- and anti-joins.
 */
static char *
keep_statement(Query *query, List *rtindexes, Node *on, int x, int y,
			   Oid x_source, Oid y_source, Oid y_state)
{
	Bitmapset  *cols;
	StringInfoData sql;

	(void) kept_columns(query, rtindexes, x_source, &cols);
	initStringInfo(&sql);
	for (int part = 0; part < 3; part++)
	{
		Node	   *in_state = match_exists(query, on, x, y, y_state);
		Node	   *in_batch = match_exists(query, on, x, y, y_source);
		Node	   *quals;
		Query	   *q;
		int			attno = -1;

		/* matched by a kept row; by a new row only; by none */
		if (part == 0)
			quals = in_state;
		else
			quals = make_and_qual((Node *) make_notclause((Expr *) in_state),
								  part == 1 ? in_batch : (Node *) make_notclause((Expr *) in_batch));
		q = select_from(list_make1(stream_rte(query, x, x_source)), quals);
		while ((attno = bms_next_member(cols, attno)) >= 0)
		{
			Oid			type;
			int32		typmod;
			Oid			collation;

			get_atttypetypmodcoll(x_source, attno, &type, &typmod, &collation);
			q->targetList = lappend(q->targetList,
									makeTargetEntry((Expr *) makeVar(1, attno, type, typmod, collation, 0),
													list_length(q->targetList) + 1,
													get_attname(x_source, attno, false), false));
		}
		q->targetList = lappend(q->targetList,
								makeTargetEntry((Expr *) makeBoolConst(part < 2, false),
												list_length(q->targetList) + 1, "streaming_matched", false));
		appendStringInfo(&sql, "%s(%s)", sql.len > 0 ? " UNION ALL " : "", PlanDeparseQuery(q));
	}
	return sql.data;
}

/*
 * match_statement returns the SELECT of the ctids of the rows of the state
 * of stream x (x_state) that the new rows of y (y_source) match.
 */
static char *
match_statement(Query *query, Node *on, int x, int y, Oid x_state, Oid y_source)
{
	RenumberVars r = {{x, y}, {1, 2}, {0, 0}};
	Node	   *cond = copyObject(on);
	Query	   *q;

	(void) renumber_vars_walker(cond, &r);
	q = select_from(list_make2(stream_rte(query, x, x_state), stream_rte(query, y, y_source)), cond);
	q->targetList = list_make1(makeTargetEntry((Expr *) makeVar(1, SelfItemPointerAttributeNumber,
																TIDOID, -1, InvalidOid, 0),
											   1, "ctid", false));
	return PlanDeparseQuery(q);
}

/*
 * unmatched_statement returns the query over the rows of preserved stream
 * x in CTE join_unmatched_<n> (its evicted rows that never matched, with
 * the columns of its state x_state), each padded with NULLs for stream y:
 * the outer join made to join nothing (ON false) with y's state, so that
 * the select list, WHERE and the joins with ordinary tables apply to the
 * padded rows as SQL applies them.  No column of the query is the join's
 * own: it has no alias (find_outer_join), and USING, which only compares
 * keys, puts no time bound on it (StreamJoinEvictions refuses it).
 */
static char *
unmatched_statement(Query *query, List *rtindexes, int x, int y, Oid x_state, Oid y_state, int n)
{
	Query	   *q = copyObject(query);
	JoinExpr   *join;
	RangeTblEntry *rte;
	Relation	rel;
	TupleDesc	desc;

	join = StreamJoinOuter(q, rtindexes);
	join->jointype = ((RangeTblRef *) join->larg)->rtindex == x ? JOIN_LEFT : JOIN_RIGHT;
	join->quals = makeBoolConst(false, false);
	rt_fetch(join->rtindex, q->rtable)->jointype = join->jointype;

	rte = rt_fetch(y, q->rtable);
	rte->relid = y_state;
	rte->relkind = RELKIND_RELATION;

	rte = rt_fetch(x, q->rtable);
	rte->rtekind = RTE_CTE;
	rte->relid = InvalidOid;
	rte->relkind = 0;
	rte->inh = false;
	rte->ctename = psprintf("join_unmatched_%d", n);
	rte->ctelevelsup = 0;
	rte->self_reference = false;
	rte->eref = makeAlias(rte->eref->aliasname, NIL);
	rte->coltypes = rte->coltypmods = rte->colcollations = NIL;
	rel = table_open(x_state, AccessShareLock);
	desc = RelationGetDescr(rel);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		rte->eref->colnames = lappend(rte->eref->colnames, makeString(pstrdup(NameStr(att->attname))));
		rte->coltypes = lappend_oid(rte->coltypes, att->atttypid);
		rte->coltypmods = lappend_int(rte->coltypmods, att->atttypmod);
		rte->colcollations = lappend_oid(rte->colcollations, att->attcollation);
	}
	table_close(rel, AccessShareLock);
	return PlanDeparseQuery(q);
}

/*
 * StreamJoinOuterStatements makes the statements of the preserved sides of
 * a query's outer join between streams (plan->join_keep, join_match and
 * join_unmatched, see planner.h), once create_query has made the states,
 * state_oids (one per range table entry of plan->join_rtindexes).  Each
 * row of a preserved side's state has a flag, streaming_matched: a batch
 * keeps its new rows with whether a kept or new row of the other side
 * matches them by the ON condition, and sets it on the kept rows that its
 * new rows of the other side match; the close statement appends the query's
 * rows of the evicted rows that never matched, padded with NULLs.  Whether
 * a row matched is the ON condition's business alone, as in SQL: WHERE
 * applies after the join, to the padded rows as to the pairs.
 */
void
StreamJoinOuterStatements(ContinuousPlan *plan, List *state_oids)
{
	Query	   *query = plan->join_query;
	JoinExpr   *join = StreamJoinOuter(query, plan->join_rtindexes);
	ListCell   *lc;

	plan->join_keep = plan->join_match = plan->join_unmatched = NIL;
	if (join == NULL)
		return;
	/* two streams, two states (one source joined with itself is refused) */
	Assert(list_length(plan->join_rtindexes) == 2);
	foreach(lc, plan->join_rtindexes)
	{
		int			i = foreach_current_index(lc);
		int			x = lfirst_int(lc);
		int			y = list_nth_int(plan->join_rtindexes, 1 - i);
		Oid			x_source = list_nth_oid(plan->join_relids, i);
		Oid			y_source = list_nth_oid(plan->join_relids, 1 - i);

		if (!join_preserves(join, x))
		{
			plan->join_keep = lappend(plan->join_keep, "");
			plan->join_match = lappend(plan->join_match, "");
			plan->join_unmatched = lappend(plan->join_unmatched, "");
			continue;
		}
		plan->join_keep = lappend(plan->join_keep,
								  keep_statement(query, plan->join_rtindexes, join->quals, x, y,
												 x_source, y_source, list_nth_oid(state_oids, 1 - i)));
		plan->join_match = lappend(plan->join_match,
								   match_statement(query, join->quals, x, y,
												   list_nth_oid(state_oids, i), y_source));
		plan->join_unmatched = lappend(plan->join_unmatched,
									   unmatched_statement(query, plan->join_rtindexes, x, y,
														   list_nth_oid(state_oids, i),
														   list_nth_oid(state_oids, 1 - i), i + 1));
	}
}

/*
 * StreamJoinUnmatched returns the query of the rows that the close
 * statement appends for the evicted rows of an outer join's preserved
 * sides that never matched (the UNION ALL of join_unmatched, over CTEs
 * join_unmatched_<n>), or NULL.
 */
char *
StreamJoinUnmatched(ContinuousPlan *plan)
{
	StringInfoData sql;
	ListCell   *lc;

	initStringInfo(&sql);
	foreach(lc, plan->join_unmatched)
		if (((char *) lfirst(lc))[0] != '\0')
			appendStringInfo(&sql, "%s(%s)", sql.len > 0 ? " UNION ALL " : "", (char *) lfirst(lc));
	return sql.len > 0 ? sql.data : NULL;
}

/* ------------------------------------------------------------------------
 * Eviction of the states by the watermark
 * ------------------------------------------------------------------------ */

#define OP_LE  "OPERATOR(pg_catalog.<=)"
#define OP_LT  "OPERATOR(pg_catalog.<)"
#define OP_SUB "OPERATOR(pg_catalog.-)"

/*
 * An upper bound that a conjunct of the join's condition puts on a column
 * of one stream (range table entry varno) in terms of a column of another
 * (of_varno): varno.attno < (or <=) of_varno.of_attno + offset, or, with
 * window_size > 0, both in the same tumbling window of that size (so
 * varno.attno < the end of of_attno's window).
 */
typedef struct TimeBound
{
	int			varno;
	AttrNumber	attno;
	int			of_varno;
	AttrNumber	of_attno;
	int64		offset;
	int64		window_size;
} TimeBound;

/*
 * collect_conjuncts appends the conjuncts of the join's conditions to
 * *quals: those of WHERE and of inner joins.  The ON condition of an outer
 * join of the streams with an ordinary table does not restrict which rows
 * of the streams match each other - their row is emitted whether it holds
 * or not - so it bounds nothing.  (An outer join between streams is
 * bounded by its ON condition alone: StreamJoinEvictions.)
 */
static void
collect_conjuncts(Node *node, List **quals)
{
	if (node == NULL)
		return;
	if (IsA(node, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) node)->fromlist)
			collect_conjuncts(lfirst(lc), quals);
		collect_conjuncts(((FromExpr *) node)->quals, quals);
	}
	else if (IsA(node, JoinExpr))
	{
		collect_conjuncts(((JoinExpr *) node)->larg, quals);
		collect_conjuncts(((JoinExpr *) node)->rarg, quals);
		if (((JoinExpr *) node)->jointype == JOIN_INNER)
			collect_conjuncts(((JoinExpr *) node)->quals, quals);
	}
	else if (IsA(node, List))
	{
		ListCell   *lc;

		foreach(lc, (List *) node)
			collect_conjuncts(lfirst(lc), quals);
	}
	else if (is_andclause(node))
		collect_conjuncts((Node *) ((BoolExpr *) node)->args, quals);
	else if (!IsA(node, RangeTblRef))
		*quals = lappend(*quals, node);
}

/*
 * calendar_interval_walker finds a timestamptz plus or minus a constant
 * interval in days or months, which time_term does not take as a bound.
 */
static bool
calendar_interval_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, OpExpr) && list_length(((OpExpr *) node)->args) == 2)
	{
		Oid			fn = get_opcode(((OpExpr *) node)->opno);
		Node	   *iv = fn == F_INTERVAL_PL_TIMESTAMPTZ ? linitial(((OpExpr *) node)->args)
			: lsecond(((OpExpr *) node)->args);

		if ((fn == F_INTERVAL_PL_TIMESTAMPTZ || fn == F_TIMESTAMPTZ_PL_INTERVAL ||
			 fn == F_TIMESTAMPTZ_MI_INTERVAL) &&
			IsA(iv, Const) && !((Const *) iv)->constisnull &&
			(DatumGetIntervalP(((Const *) iv)->constvalue)->month != 0 ||
			 DatumGetIntervalP(((Const *) iv)->constvalue)->day != 0))
			return true;
	}
	return expression_tree_walker(node, calendar_interval_walker, context);
}

/*
 * time_term reads a column of a stream, plus or minus a constant interval
 * of fixed length (no days or months, whose length varies), into its
 * range table entry, column and offset in microseconds.
 */
static bool
time_term(Node *node, int *varno, AttrNumber *attno, int64 *offset)
{
	Var		   *var = strip_to_var(node);

	*offset = 0;
	if (var == NULL && node != NULL && IsA(node, OpExpr) && list_length(((OpExpr *) node)->args) == 2)
	{
		OpExpr	   *op = (OpExpr *) node;
		Oid			fn = get_opcode(op->opno);
		Node	   *ts = linitial(op->args);
		Node	   *iv = lsecond(op->args);
		Interval   *interval;

		if (fn == F_INTERVAL_PL_TIMESTAMPTZ)
		{
			ts = lsecond(op->args);
			iv = linitial(op->args);
		}
		else if (fn != F_TIMESTAMPTZ_PL_INTERVAL && fn != F_TIMESTAMPTZ_MI_INTERVAL)
			return false;
		if (!IsA(iv, Const) || ((Const *) iv)->constisnull)
			return false;
		interval = DatumGetIntervalP(((Const *) iv)->constvalue);
		if (interval->month != 0 || interval->day != 0)
			return false;
		*offset = fn == F_TIMESTAMPTZ_MI_INTERVAL ? -interval->time : interval->time;
		var = strip_to_var(ts);
	}
	if (var == NULL || var->varattno <= 0)
		return false;
	*varno = var->varno;
	*attno = var->varattno;
	return true;
}

/* tumbling_window: the column and size of streaming.window(column, size) */
static bool
tumbling_window(Node *node, int *varno, AttrNumber *attno, int64 *size)
{
	FuncExpr   *fexpr;
	Var		   *var;

	if (node == NULL || !IsA(node, FuncExpr))
		return false;
	fexpr = (FuncExpr *) node;
	if (list_length(fexpr->args) != 2 || strcmp(get_func_name(fexpr->funcid), "window") != 0 ||
		get_func_namespace(fexpr->funcid) != get_namespace_oid(STREAMING_SCHEMA, false) ||
		!WindowConstantSize(fexpr, size))
		return false;
	var = strip_to_var(linitial(fexpr->args));
	if (var == NULL || var->varattno <= 0)
		return false;
	*varno = var->varno;
	*attno = var->varattno;
	return true;
}

/* time_bounds returns the upper bounds (TimeBound) a conjunct puts on streams' times */
static List *
time_bounds(Node *qual)
{
	OpExpr	   *op;
	Oid			fn;
	int			lv,
				rv;
	AttrNumber	la,
				ra;
	int64		lc,
				rc;
	TimeBound  *b;

	if (!IsA(qual, OpExpr) || list_length(((OpExpr *) qual)->args) != 2)
		return NIL;
	op = (OpExpr *) qual;
	fn = get_opcode(op->opno);
	if (fn == F_RANGE_EQ)
	{
		int64		lsize,
					rsize;
		TimeBound  *b2;

		if (!tumbling_window(linitial(op->args), &lv, &la, &lsize) ||
			!tumbling_window(lsecond(op->args), &rv, &ra, &rsize) || lsize != rsize || lv == rv)
			return NIL;
		b = palloc0(sizeof(TimeBound));
		*b = (TimeBound) {lv, la, rv, ra, 0, lsize};
		b2 = palloc0(sizeof(TimeBound));
		*b2 = (TimeBound) {rv, ra, lv, la, 0, lsize};
		return list_make2(b, b2);
	}
	if (fn != F_TIMESTAMPTZ_LT && fn != F_TIMESTAMPTZ_LE &&
		fn != F_TIMESTAMPTZ_GT && fn != F_TIMESTAMPTZ_GE)
		return NIL;
	if (!time_term(linitial(op->args), &lv, &la, &lc) ||
		!time_term(lsecond(op->args), &rv, &ra, &rc) || lv == rv)
		return NIL;
	b = palloc0(sizeof(TimeBound));
	/* l + lc < r + rc bounds l by r; l + lc > r + rc bounds r by l */
	if (fn == F_TIMESTAMPTZ_LT || fn == F_TIMESTAMPTZ_LE)
		*b = (TimeBound) {lv, la, rv, ra, rc - lc, 0};
	else
		*b = (TimeBound) {rv, ra, lv, la, lc - rc, 0};
	return list_make1(b);
}

/*
 * offset_text: " + interval 'n seconds'" (or minus) for messages, whatever
 * the session's IntervalStyle; "" for none
 */
static char *
offset_text(int64 usecs)
{
	int64		magnitude = usecs < 0 ? -usecs : usecs;

	if (usecs == 0)
		return "";
	if (magnitude % USECS_PER_SEC == 0)
		return psprintf(" %c interval '" INT64_FORMAT " seconds'", usecs < 0 ? '-' : '+',
						magnitude / USECS_PER_SEC);
	return psprintf(" %c interval '%.6f seconds'", usecs < 0 ? '-' : '+',
					(double) magnitude / USECS_PER_SEC);
}

/* column_name: a stream's column, qualified by the stream's name in the query */
static char *
column_name(Query *query, int varno, AttrNumber attno)
{
	RangeTblEntry *rte = rt_fetch(varno, query->rtable);

	return psprintf("%s.%s", rte->eref->aliasname, get_attname(rte->relid, attno, false));
}

/* join_type_name: LEFT, RIGHT or FULL, for messages */
static const char *
join_type_name(JoinExpr *join)
{
	return join->jointype == JOIN_LEFT ? "LEFT" : join->jointype == JOIN_RIGHT ? "RIGHT" : "FULL";
}

/*
 * check_outer_eviction refuses an outer join between streams whose
 * preserved sides the watermark does not evict (their evictions, one per
 * entry of rtindexes): an unmatched row of such a side would never be
 * emitted.  As Spark, it wants a watermark on both sources and a bound in
 * the ON condition on the other side's event time.
 */
static void
check_outer_eviction(Query *query, JoinExpr *outer, List *rtindexes, List *relids,
					 List *event_times, List *evictions)
{
	List	   *states = NIL;
	ListCell   *lc;

	foreach(lc, relids)
	{
		EventTimeEntry *e = EventTimeSpecFind(event_times, lfirst_oid(lc));

		if (e == NULL || e->column == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a %s outer join between streams requires a watermark on both sources", join_type_name(outer)),
					 errdetail("A row that matches nothing is emitted, padded with NULLs, once the watermark guarantees that no later row can match it, but %s.",
							   event_times == NIL ? "the query has no watermark"
							   : psprintf("source \"%s\" has no event time", get_rel_name(lfirst_oid(lc)))),
					 errhint("Give both sources an event time and a watermark (event_time and watermark), and bound the ON condition on their event times, e.g. b.t BETWEEN a.t AND a.t + interval '1 hour'.")));
	}
	foreach(lc, relids)
		states = list_append_unique_oid(states, lfirst_oid(lc));
	if (list_length(states) < list_length(relids))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an outer join of a source with itself is not supported in continuous queries"),
				 errdetail("Both sides would share the one state of source \"%s\", whose rows have one matched flag, not one per side.",
						   get_rel_name(linitial_oid(states)))));
	foreach(lc, rtindexes)
	{
		Oid			relid = list_nth_oid(relids, foreach_current_index(lc));
		StreamJoinEviction *ev = NULL;
		ListCell   *slc;

		foreach(slc, states)
			if (lfirst_oid(slc) == relid)
				ev = list_nth(evictions, foreach_current_index(slc));

		if (join_preserves(outer, lfirst_int(lc)) && ev->predicate == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a %s outer join between streams requires a time bound in its ON condition", join_type_name(outer)),
					 errdetail("A row of \"%s\" that matches nothing is emitted, padded with NULLs, once the watermark guarantees that no later row can match it, but %s.",
							   get_rel_name(relid), ev->why),
					 errhint("Bound the other source's event time in the ON condition, e.g. b.t BETWEEN a.t AND a.t + interval '1 hour' (a bound in WHERE does not decide which rows match).")));
	}
}

/*
 * StreamJoinEvictions derives, for each state of a join (the distinct
 * relations of relids, the relations of the range table entries rtindexes,
 * in order), whether and how the watermark evicts it (see the header
 * comment).  event_times are the sources' EventTimeEntry (NIL: the query
 * has no watermark).
 */
List *
StreamJoinEvictions(Query *query, List *rtindexes, List *relids, List *event_times)
{
	JoinExpr   *outer = StreamJoinOuter(query, rtindexes);
	List	   *quals = NIL;
	List	   *bounds = NIL;
	List	   *states = NIL;
	List	   *result = NIL;
	ListCell   *lc;

	/*
	 * Rows of an outer join between streams match by its ON condition
	 * alone: WHERE applies after the join.  A row of either side is kept
	 * for as long as the ON condition lets it match a later row of the
	 * other, which sets that row's streaming_matched flag even when WHERE
	 * drops the pair.
	 */
	collect_conjuncts(outer != NULL ? outer->quals : (Node *) query->jointree, &quals);
	foreach(lc, quals)
		bounds = list_concat(bounds, time_bounds(lfirst(lc)));
	foreach(lc, relids)
		states = list_append_unique_oid(states, lfirst_oid(lc));

	foreach(lc, states)
	{
		Oid			relid = lfirst_oid(lc);
		StreamJoinEviction *ev = palloc0(sizeof(StreamJoinEviction));
		EventTimeEntry *mine = EventTimeSpecFind(event_times, relid);
		StringInfoData pred;
		StringInfoData why;
		ListCell   *xlc;

		result = lappend(result, ev);
		ev->lag = 0;
		if (event_times == NIL)
		{
			ev->why = pstrdup("the query has no watermark");
			continue;
		}
		initStringInfo(&pred);
		initStringInfo(&why);

		/*
		 * Each place x of the source in the join (two or more when it is
		 * joined with itself): a kept row goes when it can match no later
		 * row in any of them.
		 */
		foreach(xlc, rtindexes)
		{
			int			x = lfirst_int(xlc);
			ListCell   *ylc;

			if (list_nth_oid(relids, foreach_current_index(xlc)) != relid)
				continue;
			foreach(ylc, rtindexes)
			{
				int			y = lfirst_int(ylc);
				Oid			yrelid = list_nth_oid(relids, foreach_current_index(ylc));
				EventTimeEntry *theirs = EventTimeSpecFind(event_times, yrelid);
				TimeBound  *best = NULL;
				ListCell   *blc;
				char	   *col;
				int64		lag;

				if (y == x)
					continue;
				if (theirs == NULL || theirs->column == NULL)
				{
					ev->why = psprintf("source \"%s\" has no event time, so its later rows may have any time",
									   get_rel_name(yrelid));
					break;
				}
				/* the tightest bound on y's event time by a column of x */
				foreach(blc, bounds)
				{
					TimeBound  *b = lfirst(blc);

					if (b->varno != y || b->attno != theirs->attno || b->of_varno != x)
						continue;
					if (best == NULL || (best->window_size > 0 && b->window_size == 0) ||
						(b->window_size == 0 && b->of_attno == best->of_attno && b->offset < best->offset))
						best = b;
				}
				if (best == NULL)
				{
					ev->why = psprintf("the join's condition puts no upper bound on %s (the event time of \"%s\") in terms of %s%s",
									   column_name(query, y, theirs->attno), get_rel_name(yrelid),
									   yrelid == relid ? pstrdup("the columns of its other occurrence in the join")
									   : psprintf("the columns of \"%s\"", get_rel_name(relid)),
									   expression_tree_walker((Node *) quals, calendar_interval_walker, NULL)
									   ? " (an interval in days or months has no fixed length and bounds nothing: write interval '24 hours', not '1 day')"
									   : "");
					break;
				}
				col = pstrdup(quote_identifier(get_attname(relid, best->of_attno, false)));
				if (ev->index == NULL)
					ev->index = col;
				if (best->window_size > 0)
				{
					appendStringInfo(&pred, "%s(%s " OP_LT " pg_catalog.lower(%s.\"window\"($1, %s)))",
									 pred.len > 0 ? " AND " : "", col, STREAMING_SCHEMA,
									 WindowStateSizeLiteral(best->window_size));
					appendStringInfo(&why, "%s%s is in the same window as %s (of interval '" INT64_FORMAT " seconds')",
									 why.len > 0 ? "; " : "", column_name(query, y, theirs->attno),
									 column_name(query, x, best->of_attno), best->window_size / USECS_PER_SEC);
					lag = best->window_size;
				}
				else
				{
					if (best->offset == 0)
						appendStringInfo(&pred, "%s(%s " OP_LE " $1)", pred.len > 0 ? " AND " : "", col);
					else
						appendStringInfo(&pred, "%s(%s " OP_LE " ($1 " OP_SUB " %s))", pred.len > 0 ? " AND " : "",
										 col, WindowStateSizeLiteral(best->offset));
					appendStringInfo(&why, "%s%s <= %s%s", why.len > 0 ? "; " : "",
									 column_name(query, y, theirs->attno), column_name(query, x, best->of_attno),
									 offset_text(best->offset));
					lag = Max(best->offset, 0);
				}
				/* what the rows this state keeps have at least, behind the watermark */
				if (mine == NULL || mine->column == NULL || best->of_attno != mine->attno)
					ev->lag = -1;
				else if (ev->lag >= 0)
					ev->lag = Max(ev->lag, lag);
			}
			if (ev->why != NULL)
				break;
		}
		if (ev->why != NULL)
		{
			ev->index = NULL;
			continue;
		}
		ev->predicate = pred.data;
		ev->why = why.data;
	}
	if (outer != NULL)
		check_outer_eviction(query, outer, rtindexes, relids, event_times, result);
	return result;
}

/*
 * StreamJoinEvictCtes returns the CTEs of the close statement that delete
 * the rows of the join's states that the watermark ($1) has made dead,
 * each followed by a comma and a newline, and in *count the expression of
 * how many they deleted; "" and NULL when no state is evicted.  For a
 * preserved side of an outer join, CTE join_unmatched_<n> follows with
 * its deleted rows that never matched (StreamJoinUnmatched).
 */
char *
StreamJoinEvictCtes(ContinuousPlan *plan, char **count)
{
	StringInfoData sql;
	StringInfoData sum;
	ListCell   *lc;
	ListCell   *lc2;

	initStringInfo(&sql);
	initStringInfo(&sum);
	forboth(lc, plan->join_states, lc2, plan->join_evict)
	{
		int			i = foreach_current_index(lc) + 1;

		if (((char *) lfirst(lc2))[0] == '\0')
			continue;
		if (outer_statement(plan->join_unmatched, i - 1)[0] != '\0')
			appendStringInfo(&sql, "join_evicted_%d AS (DELETE FROM %s WHERE %s RETURNING *),\n"
							 "join_unmatched_%d AS (SELECT * FROM join_evicted_%d WHERE NOT streaming_matched),\n",
							 i, (char *) lfirst(lc), (char *) lfirst(lc2), i, i);
		else
			appendStringInfo(&sql, "join_evicted_%d AS (DELETE FROM %s WHERE %s RETURNING 1),\n",
							 i, (char *) lfirst(lc), (char *) lfirst(lc2));
		appendStringInfo(&sum, "%s(SELECT pg_catalog.count(*) FROM join_evicted_%d)",
						 sum.len > 0 ? " OPERATOR(pg_catalog.+) " : "", i);
	}
	*count = sum.len > 0 ? sum.data : NULL;
	return sql.data;
}
