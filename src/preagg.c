/*-------------------------------------------------------------------------
 *
 * preagg.c
 *	  A grouped query's batch, aggregated in C as it is decoded.
 *
 * partial_agg.c aggregates a large batch in parts: every PART_ROWS decoded
 * rows are kept in a tuple store, then the parts' plan (partial_sql) runs
 * over them through SPI and its partial states are kept.  Each row is
 * thus formed into a tuple, stored, read back and taken apart again
 * before it is grouped, and each part starts an executor.  When that plan
 * is simple enough, this module does what it does, row by row, as the
 * decoder hands each row over: it evaluates the plan's own expressions
 * (the scan's filter and output, the aggregates' arguments) over the
 * decoded values, finds the row's group in a hash table built on the
 * plan's grouping (its equality operators, their hash functions and
 * collations), and advances the group's transition states with the
 * aggregates' own transition functions, as nodeAgg.c does.  When the table
 * outgrows the memory a hash aggregate may use (hash_mem), and once the
 * input is read, its groups go to the partial states, which the batch
 * statement combines as it combines the parts' (partial_agg.c).  The
 * groups and their states are those the parts would make; there are only
 * fewer rows of partial states, as a group met in several parts is met
 * once here.  When its keys are Datums of types with a default order and
 * the batch statement can take them so, a full table writes out only its
 * groups of the lowest keys, in order (write_lower); if no group comes
 * back at or below them, as over windows in time, the groups left are
 * written in order at the end (PreaggDumpSorted), and the partial states
 * are one row per group in the order of their keys, which the batch
 * statement takes as its groups without combining or sorting them.
 *
 * A plan qualifies (PreaggBegin) when it is an aggregate grouped on
 * columns of one scan of the source, or of the rows a sliding window of
 * constant size, slide and origin makes of it (each row once per window,
 * by the window's start, which the state is keyed by: SlidingInput), with
 * no HAVING, of built-in
 * aggregates whose result is their transition state (no final function
 * and no internal state: count, sums of integers, min, max, bool_and, ...)
 * without DISTINCT, ORDER BY or FILTER; and when its expressions call only
 * built-in functions and the extension's, none of them volatile nor one
 * that runs a statement (query_to_xml and its kin), over
 * values of built-in types (whose support functions are built in too),
 * with no subquery, parameter or domain check: nothing that needs an
 * executor's state or could run a statement.  Otherwise the parts run
 * their plan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_agg.h"
#include "parser/parse_coerce.h"
#include "parser/parsetree.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/sortsupport.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "preagg.h"
#include "window.h"

/* one aggregate of the plan */
typedef struct PreaggTrans
{
	FmgrInfo	transfn;
	FunctionCallInfo fcinfo;	/* its state and arguments */
	int			nargs;
	int			firstarg;		/* its first argument in the argument slot */
	Datum		initval;
	bool		initnull;
	int16		typlen;			/* of its state */
	bool		typbyval;
} PreaggTrans;

/* one group's state of one aggregate, as nodeAgg.c keeps it */
typedef struct PreaggState
{
	Datum		value;
	bool		isnull;
	bool		novalue;		/* a strict transition function's, before
								 * its first input */
} PreaggState;

/*
 * Grouping columns of types whose equality is that of their Datums
 * (integers, timestamps, dates, bool, ...), up to FAST_KEYS of them, are
 * grouped in a hash table of their Datums, without the tuples, hash and
 * equality functions of TupleHashTable.
 */
#define FAST_KEYS 4

/*
 * The groups' states are allocated in blocks of up to STATES_BLOCK bytes,
 * and the table starts with up to START_GROUPS buckets: less for a small
 * hash_mem, a sixteenth of which each takes at most.
 */
#define STATES_BLOCK (64 * 1024)
#define START_GROUPS 1024

typedef struct FastKey
{
	Datum		values[FAST_KEYS];
	bool		nulls[FAST_KEYS];
} FastKey;

typedef struct FastGroup
{
	FastKey		key;
	PreaggState *states;
	uint32		hash;
	uint32		touched;		/* the table's tick when it last took a row */
	char		status;
} FastGroup;

/* fast_key_hash: a key's hash, of its Datums mixed (MurmurHash3's finalizer) */
static inline uint32
fast_key_hash(const FastKey *key)
{
	uint64		h = 0;

	for (int i = 0; i < FAST_KEYS; i++)
	{
		uint64		x = (uint64) key->values[i] + (uint64) key->nulls[i];

		x ^= x >> 33;
		x *= UINT64CONST(0xff51afd7ed558ccd);
		x ^= x >> 33;
		x *= UINT64CONST(0xc4ceb9fe1a85ec53);
		x ^= x >> 33;
		h = hash_combine64(h, x);
	}
	return (uint32) (h ^ (h >> 32));
}

#define SH_PREFIX fastgroups
#define SH_ELEMENT_TYPE FastGroup
#define SH_KEY_TYPE FastKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) fast_key_hash(&(k))
#define SH_EQUAL(tb, a, b) (memcmp(&(a), &(b), sizeof(FastKey)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

struct Preagg
{
	MemoryContext cxt;
	MemoryContext metacxt;		/* the hash table */
	MemoryContext tablecxt;		/* its groups and their states */
	ExprContext *econtext;		/* per row */
	ExprContext *aggcontext;	/* per row the aggregate reads: econtext, or
								 * per window of a sliding window */
	TupleTableSlot *scanslot;	/* the decoded row */
	ExprState  *qual;			/* the scan's filter, or NULL */
	ProjectionInfo *scanproj;	/* the scan's output */
	ProjectionInfo *argproj;	/* the aggregates' arguments, or NULL */

	/*
	 * Grouped by a sliding window: the scan's output goes through the
	 * ProjectSet of streaming.window() and the Result that takes each
	 * window's start, a row per window.
	 */
	ExprState  *window_ts;		/* the window's time, or NULL */
	WindowGrid	grid;
	ProjectionInfo *setproj;	/* the ProjectSet's columns but the window */
	int			window_col;		/* the window's, in setproj's output */
	ProjectionInfo *resultproj; /* the Result's output */

	/* the grouping */
	int			nkeys;
	AttrNumber *keycols;		/* in the scan's output, from 1 */
	AttrNumber *keyidx;			/* 1 .. nkeys */
	TupleDesc	keydesc;
	Oid		   *eqfuncs;
	FmgrInfo   *hashfuncs;
	Oid		   *collations;
	TupleTableSlot *keyslot;	/* the row's key */
	TupleTableSlot *entryslot;	/* a group's key, read back */
	TupleHashTable table;
	fastgroups_hash *fast;		/* instead, with keys of Datums compared */
	int64		fast_max_groups;	/* the groups it holds at most */
	uint64		fast_buckets;	/* in as many buckets */
	uint32		tick;			/* rows it took (wraps around) */
	int64		groups;
	bool		all_datum_keys; /* datum_equality for every grouping column */
	Size		mem_limit;

	int			ntrans;
	PreaggTrans *trans;
	char	   *free_states;	/* what is left of the last block of states */
	Size		free_size;

	/* the order of the groups (PreaggDumpSorted): keys, in the output's order */
	int			nsort;
	int		   *sortkey;
	SortSupport sortsupport;
	/*
	 * While sorted_runs holds, every write-out wrote the groups of the
	 * lowest keys, in order, all above those written before (the last
	 * being last_written), and kept the others in the table
	 * (write_lower); no group since had a key at or below it.
	 */
	bool		sorted_runs;
	bool		written;
	FastKey		last_written;
	MemoryContext sparecxt;		/* where write_first moves the groups kept */

	/* the partial states: per column, a key (>= 0) or an aggregate */
	TupleDesc	out_desc;
	int		   *out_key;
	int		   *out_trans;
	Datum	   *out_values;
	bool	   *out_nulls;
};

static void forget_groups(Preagg *pa);
static bool sortable(Preagg *pa);
static int	compare_keys(Preagg *pa, const FastKey *a, const FastKey *b);
static int64 write_lower(Preagg *pa, Tuplestorestate *out);
static int64 write_stale(Preagg *pa, Tuplestorestate *out);

/*
 * untrusted_function: whether a function may not run here: one that runs
 * a statement, a volatile one, or one neither built in nor the
 * extension's (*context).
 */
static bool
untrusted_function(Oid funcid, void *context)
{
	/* built in and stable, but they run the statement or read the tables they are given */
	switch (funcid)
	{
		case F_QUERY_TO_XML:
		case F_QUERY_TO_XMLSCHEMA:
		case F_QUERY_TO_XML_AND_XMLSCHEMA:
		case F_CURSOR_TO_XML:
		case F_CURSOR_TO_XMLSCHEMA:
		case F_TABLE_TO_XML:
		case F_TABLE_TO_XMLSCHEMA:
		case F_TABLE_TO_XML_AND_XMLSCHEMA:
		case F_SCHEMA_TO_XML:
		case F_SCHEMA_TO_XMLSCHEMA:
		case F_SCHEMA_TO_XML_AND_XMLSCHEMA:
		case F_DATABASE_TO_XML:
		case F_DATABASE_TO_XMLSCHEMA:
		case F_DATABASE_TO_XML_AND_XMLSCHEMA:
			return true;
		default:
			break;
	}
	if (func_volatile(funcid) == PROVOLATILE_VOLATILE)
		return true;
	if (funcid < FirstNormalObjectId)
		return false;
	return !OidIsValid(*(Oid *) context) ||
		getExtensionOfObject(ProcedureRelationId, funcid) != *(Oid *) context;
}

/*
 * unsupported: whether an expression needs what this module does not
 * give (an executor's state, a subquery, a parameter), could run user
 * code (a function not trusted, a domain's check, a value of a type not
 * built in), or reads more than a column of the row.
 */
static bool
unsupported(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, untrusted_function, context))
		return true;
	if (IsA(node, SubPlan) || IsA(node, AlternativeSubPlan) || IsA(node, SubLink) ||
		IsA(node, Param) || IsA(node, CoerceToDomain) || IsA(node, NextValueExpr) ||
		IsA(node, Aggref) || IsA(node, WindowFunc) || IsA(node, GroupingFunc))
		return true;
	if (IsA(node, Var) && ((Var *) node)->varattno <= 0)
		return true;

	/*
	 * Built-in functions call the support functions of the types of their
	 * values: a range's comparison is its subtype's operator class's, which
	 * may be PL/pgSQL, as may a user type's equality and hash functions,
	 * which group the rows.  They may run in the parts' statement, not
	 * here: only values of built-in types (or domains over them) are.
	 */
	if (!IsA(node, List) && !IsA(node, TargetEntry) && !IsA(node, CaseWhen) &&
		getBaseType(exprType(node)) >= FirstNormalObjectId)
		return true;
	return expression_tree_walker(node, unsupported, context);
}

/*
 * datum_equality: whether equality by an operator is that of the Datums
 * (by-value types, each value one Datum); not floats, whose zeros and NaNs
 * are not.
 */
static bool
datum_equality(Oid eqop)
{
	switch (get_opcode(eqop))
	{
		case F_INT2EQ:
		case F_INT4EQ:
		case F_INT8EQ:
		case F_TIMESTAMP_EQ:
		case F_TIMESTAMPTZ_EQ:
		case F_DATE_EQ:
		case F_TIME_EQ:
		case F_BOOLEQ:
		case F_OIDEQ:
		case F_CHAREQ:
			return true;
		default:
			return false;
	}
}

/* start_groups: how many buckets a table of entries of entry_size starts with */
static long
start_groups(Preagg *pa, Size entry_size)
{
	return Max(Min(START_GROUPS, (long) (pa->mem_limit / 16 / entry_size)), 16);
}

/* build_table makes the (empty) hash table of the groups */
static void
build_table(Preagg *pa)
{
	MemoryContext old = MemoryContextSwitchTo(pa->metacxt);

	pa->groups = 0;
	if (pa->all_datum_keys && pa->nkeys <= FAST_KEYS)
	{
		Size		per_group = MAXALIGN(sizeof(PreaggState) * Max(pa->ntrans, 1));
		uint64		buckets = 16;

		/*
		 * It grows, doubling, up to the most buckets that fit in hash_mem
		 * with the states of as many groups as three quarters of them,
		 * which is all it holds: simplehash grows a table before it is 90%
		 * full, and earlier if its probes get long, which they may from
		 * 70% on.  A table that is full, or grew so, is written out and
		 * emptied (made again with the buckets planned), not grown.
		 */
		while ((buckets * 2) * sizeof(FastGroup) + (buckets * 2) * 3 / 4 * per_group <= pa->mem_limit)
			buckets *= 2;
		pa->fast_max_groups = buckets * 3 / 4;
		pa->fast_buckets = buckets;
		pa->fast = fastgroups_create(pa->metacxt, start_groups(pa, sizeof(FastGroup)), NULL);
		MemoryContextSwitchTo(old);
		return;
	}
	pa->table = BuildTupleHashTableExt(NULL, pa->keydesc, pa->nkeys, pa->keyidx, pa->eqfuncs,
									   pa->hashfuncs, pa->collations,
									   start_groups(pa, sizeof(TupleHashEntryData)),
									   sizeof(PreaggState) * pa->ntrans, pa->metacxt,
									   pa->tablecxt, pa->aggcontext->ecxt_per_tuple_memory, false);
	MemoryContextSwitchTo(old);
}

/*
 * SlidingInput: what an aggregate grouped by a sliding window reads.  The
 * input view keys the state by lower(streaming.window(ts, size, slide)),
 * which the planner makes a ProjectSet of the window() call (a row per
 * window) under a Result that takes lower() of it.  Here the ProjectSet's
 * window column holds the window's start instead, a timestamptz, which
 * the Result's lower() calls become references to: no range is built.
 */
typedef struct SlidingInput
{
	Expr	   *ts;				/* the window's time, over the scan's output */
	WindowGrid	grid;
	List	   *set_tlist;		/* the ProjectSet's, the window's column null */
	int			window_col;		/* from 0 */
	List	   *result_tlist;	/* the Result's, over the starts */
} SlidingInput;

typedef struct WindowStartContext
{
	AttrNumber	attno;			/* the window's column, from 1 */
	bool		range_read;		/* read other than by lower() */
} WindowStartContext;

static Node *
take_window_start(Node *node, WindowStartContext *cxt)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == F_LOWER_ANYRANGE &&
		list_length(((FuncExpr *) node)->args) == 1)
	{
		Var		   *var = linitial(((FuncExpr *) node)->args);

		if (IsA(var, Var) && var->varno == OUTER_VAR && var->varattno == cxt->attno)
			return (Node *) makeVar(OUTER_VAR, cxt->attno, TIMESTAMPTZOID, -1, InvalidOid, 0);
	}
	if (IsA(node, Var) && ((Var *) node)->varno == OUTER_VAR && ((Var *) node)->varattno == cxt->attno)
		cxt->range_read = true;
	return expression_tree_mutator(node, take_window_start, cxt);
}

/*
 * sliding_window_input: whether plan, a Result, takes the starts of the
 * windows of a ProjectSet whose one set-returning function is the
 * extension's sliding window() with a constant grid, over the scan
 * (*in).  The window's range must be read by lower() alone.
 */
static bool
sliding_window_input(Plan *plan, Oid *extension, SlidingInput *in)
{
	Result	   *result = (Result *) plan;
	Plan	   *set = outerPlan(plan);
	WindowStartContext cxt;
	ListCell   *lc;

	if (result->resconstantqual != NULL || plan->qual != NIL || plan->initPlan != NIL ||
		set == NULL || !IsA(set, ProjectSet) || set->qual != NIL || set->initPlan != NIL ||
		!OidIsValid(*extension))
		return false;
	in->window_col = -1;
	foreach(lc, set->targetlist)
	{
		TargetEntry *tle = lfirst(lc);

		if (!expression_returns_set((Node *) tle->expr))
		{
			in->set_tlist = lappend(in->set_tlist, tle);
			continue;
		}
		if (in->window_col >= 0 || !IsA(tle->expr, FuncExpr) ||
			getExtensionOfObject(ProcedureRelationId, ((FuncExpr *) tle->expr)->funcid) != *extension ||
			!WindowSlidingCall(tle->expr, &in->grid) ||
			expression_returns_set(linitial(((FuncExpr *) tle->expr)->args)))
			return false;
		in->window_col = foreach_current_index(lc);
		in->ts = linitial(((FuncExpr *) tle->expr)->args);
		in->set_tlist = lappend(in->set_tlist,
								makeTargetEntry((Expr *) makeNullConst(TIMESTAMPTZOID, -1, InvalidOid),
												tle->resno, tle->resname, tle->resjunk));
	}
	if (in->window_col < 0)
		return false;
	cxt.attno = in->window_col + 1;
	cxt.range_read = false;
	in->result_tlist = (List *) take_window_start((Node *) plan->targetlist, &cxt);
	return !cxt.range_read;
}

/*
 * PreaggBegin readies the aggregation of a batch of the source rel by the
 * plan of its parts, whose partial states have the columns of
 * partials_desc, in a context under cxt; or returns NULL, with why not,
 * when the plan does not qualify (see the top of the file).  The plan
 * must stay valid until PreaggEnd (its caller holds it).
 */
Preagg *
PreaggBegin(PlannedStmt *stmt, Relation rel, TupleDesc partials_desc, MemoryContext cxt,
			bool sort_groups, const char **why_not)
{
	Plan	   *child;
	Agg		   *agg;
	ForeignScan *scan;
	TupleDesc	srcdesc;
	TupleDesc	scandesc;
	List	   *aggrefs = NIL;
	List	   *argtlist = NIL;
	Oid			extension = get_extension_oid("streaming", true);
	SlidingInput window = {0};
	TupleDesc	indesc;
	Preagg	   *pa;
	MemoryContext old;
	ListCell   *lc;
	int			i;

#define REFUSE(reason) do { *why_not = (reason); return NULL; } while (0)

	if (stmt->commandType != CMD_SELECT || stmt->subplans != NIL || stmt->hasModifyingCTE ||
		!IsA(stmt->planTree, Agg))
		REFUSE("its plan is not one aggregate");
	agg = (Agg *) stmt->planTree;
	if ((agg->aggstrategy != AGG_HASHED && agg->aggstrategy != AGG_SORTED) || agg->numCols == 0 ||
		agg->groupingSets != NIL || agg->chain != NIL || agg->aggsplit != AGGSPLIT_SIMPLE ||
		agg->plan.qual != NIL || agg->plan.initPlan != NIL)
		REFUSE("its plan is not one aggregate");
	child = outerPlan(agg);
	/* a sorted aggregate: the sort only orders the groups */
	if (child != NULL && IsA(child, Sort) && child->initPlan == NIL)
		child = outerPlan(child);
	/* a sliding window: a row per window of each row, its start taken */
	if (child != NULL && IsA(child, Result))
	{
		if (!sliding_window_input(child, &extension, &window))
			REFUSE("its aggregate reads a set-returning function other than a sliding window of constant size, slide and origin");
		child = outerPlan(outerPlan(child));
	}
	if (child == NULL || !IsA(child, ForeignScan))
		REFUSE("its aggregate does not read the source");
	scan = (ForeignScan *) child;
	if (scan->operation != CMD_SELECT || scan->fdw_scan_tlist != NIL || scan->scan.scanrelid == 0 ||
		scan->scan.plan.initPlan != NIL ||
		rt_fetch(scan->scan.scanrelid, stmt->rtable)->relid != RelationGetRelid(rel))
		REFUSE("its aggregate does not read the source");
	if (unsupported((Node *) scan->scan.plan.targetlist, &extension) ||
		unsupported((Node *) scan->scan.plan.qual, &extension) ||
		unsupported((Node *) window.ts, &extension) ||
		unsupported((Node *) window.set_tlist, &extension) ||
		unsupported((Node *) window.result_tlist, &extension))
		REFUSE("its input calls a function that is volatile, not built in or runs a statement, or has a value of a type not built in");
	if (list_length(agg->plan.targetlist) != partials_desc->natts)
		REFUSE("its output is not the partial states");
	/* what the statement would check as it starts */
#if PG_VERSION_NUM >= 160000
	if (!ExecCheckPermissions(stmt->rtable, stmt->permInfos, false))
#else
	if (!ExecCheckRTPerms(stmt->rtable, false))
#endif
		REFUSE("a relation it reads may not be read");

	old = MemoryContextSwitchTo(cxt);
	pa = palloc0(sizeof(Preagg));
	pa->cxt = AllocSetContextCreate(cxt, "streaming batch aggregation", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(pa->cxt);
	pa->metacxt = AllocSetContextCreate(pa->cxt, "streaming batch aggregation table",
										ALLOCSET_DEFAULT_SIZES);
	pa->tablecxt = AllocSetContextCreate(pa->cxt, "streaming batch aggregation groups",
										 ALLOCSET_DEFAULT_SIZES);
	pa->out_desc = CreateTupleDescCopy(partials_desc);
	pa->out_key = palloc(sizeof(int) * partials_desc->natts);
	pa->out_trans = palloc(sizeof(int) * partials_desc->natts);
	pa->out_values = palloc(sizeof(Datum) * partials_desc->natts);
	pa->out_nulls = palloc(sizeof(bool) * partials_desc->natts);

	/* the partial states: grouping columns and aggregates */
	foreach(lc, agg->plan.targetlist)
	{
		TargetEntry *tle = lfirst(lc);
		Node	   *expr = (Node *) tle->expr;

		i = foreach_current_index(lc);
		pa->out_key[i] = -1;
		pa->out_trans[i] = -1;
		if (tle->resjunk || exprType(expr) != TupleDescAttr(partials_desc, i)->atttypid)
			break;
		if (IsA(expr, Var) && ((Var *) expr)->varno == OUTER_VAR)
		{
			for (int k = 0; k < agg->numCols; k++)
				if (agg->grpColIdx[k] == ((Var *) expr)->varattno)
					pa->out_key[i] = k;
			if (pa->out_key[i] < 0)
				break;
		}
		else if (IsA(expr, Aggref))
		{
			pa->out_trans[i] = list_length(aggrefs);
			aggrefs = lappend(aggrefs, expr);
		}
		else
			break;
	}
	if (lc != NULL)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(pa->cxt);
		REFUSE("an output of its aggregate is not a grouping column or an aggregate");
	}

	/* the aggregates */
	pa->ntrans = list_length(aggrefs);
	pa->trans = palloc0(sizeof(PreaggTrans) * Max(pa->ntrans, 1));
	foreach(lc, aggrefs)
	{
		Aggref	   *aggref = lfirst(lc);
		PreaggTrans *t = &pa->trans[foreach_current_index(lc)];
		HeapTuple	tup;
		Form_pg_aggregate form;
		Oid			transfn;
		Datum		textinit;
		Oid			inputs[FUNC_MAX_ARGS];
		Expr	   *transexpr;
		Expr	   *invexpr = NULL;
		ListCell   *alc;
		const char *refused = NULL;

		if (aggref->aggdistinct != NIL || aggref->aggorder != NIL || aggref->aggfilter != NULL ||
			aggref->aggdirectargs != NIL || aggref->aggkind != AGGKIND_NORMAL ||
			aggref->agglevelsup != 0 || aggref->aggsplit != AGGSPLIT_SIMPLE ||
			aggref->aggfnoid >= FirstNormalObjectId || aggref->aggtranstype == INTERNALOID ||
			list_length(aggref->args) >= FUNC_MAX_ARGS)
			refused = "an aggregate is not one it runs";
		else if (unsupported((Node *) aggref->args, &extension))
			refused = "an aggregate's argument calls a function that is volatile, not built in or runs a statement, or has a value of a type not built in";
		if (refused == NULL)
		{
			tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggref->aggfnoid));
			if (!HeapTupleIsValid(tup))
				elog(ERROR, "cache lookup failed for aggregate %u", aggref->aggfnoid);
			form = (Form_pg_aggregate) GETSTRUCT(tup);
			transfn = form->aggtransfn;
			if (OidIsValid(form->aggfinalfn))
				refused = "an aggregate has a final function";
			textinit = SysCacheGetAttr(AGGFNOID, tup, Anum_pg_aggregate_agginitval, &t->initnull);
			if (refused == NULL && !t->initnull)
			{
				Oid			typinput;
				Oid			typioparam;

				getTypeInputInfo(aggref->aggtranstype, &typinput, &typioparam);
				t->initval = OidInputFunctionCall(typinput, TextDatumGetCString(textinit), typioparam, -1);
			}
			ReleaseSysCache(tup);
		}
		if (refused != NULL)
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(pa->cxt);
			REFUSE(refused);
		}

		t->nargs = list_length(aggref->args);
		t->firstarg = list_length(argtlist);
		foreach(alc, aggref->args)
		{
			TargetEntry *arg = lfirst(alc);

			inputs[foreach_current_index(alc)] = exprType((Node *) arg->expr);
			argtlist = lappend(argtlist, makeTargetEntry(arg->expr, list_length(argtlist) + 1, NULL, false));
		}
		build_aggregate_transfn_expr(inputs, t->nargs, 0, aggref->aggvariadic, aggref->aggtranstype,
									 aggref->inputcollid, transfn, InvalidOid, &transexpr, &invexpr);
		fmgr_info(transfn, &t->transfn);
		fmgr_info_set_expr((Node *) transexpr, &t->transfn);
		/* as CREATE AGGREGATE requires: the first input starts the state */
		if (t->transfn.fn_strict && t->initnull &&
			(t->nargs == 0 || !IsBinaryCoercible(inputs[0], aggref->aggtranstype)))
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(pa->cxt);
			REFUSE("an aggregate's state cannot start from its input");
		}
		get_typlenbyval(aggref->aggtranstype, &t->typlen, &t->typbyval);
		t->fcinfo = palloc0(SizeForFunctionCallInfo(t->nargs + 1));
		InitFunctionCallInfoData(*t->fcinfo, &t->transfn, t->nargs + 1, aggref->inputcollid, NULL, NULL);
	}

	/* the grouping, by the plan's equality operators and their hash functions */
	pa->nkeys = agg->numCols;
	pa->keycols = palloc(sizeof(AttrNumber) * pa->nkeys);
	pa->keyidx = palloc(sizeof(AttrNumber) * pa->nkeys);
	pa->eqfuncs = palloc(sizeof(Oid) * pa->nkeys);
	pa->hashfuncs = palloc(sizeof(FmgrInfo) * pa->nkeys);
	pa->collations = palloc(sizeof(Oid) * pa->nkeys);
	scandesc = ExecTypeFromTL(scan->scan.plan.targetlist);
	/* what the aggregate reads: the scan's output, or a window's rows */
	indesc = window.result_tlist != NIL ? ExecTypeFromTL(window.result_tlist) : scandesc;
	pa->keydesc = CreateTemplateTupleDesc(pa->nkeys);
	for (i = 0; i < pa->nkeys; i++)
	{
		Oid			lhash;
		Oid			rhash;

		if (agg->grpColIdx[i] < 1 || agg->grpColIdx[i] > indesc->natts ||
			!get_op_hash_functions(agg->grpOperators[i], &lhash, &rhash) || lhash != rhash)
		{
			MemoryContextSwitchTo(old);
			MemoryContextDelete(pa->cxt);
			REFUSE("a grouping column cannot be hashed");
		}
		pa->all_datum_keys = (i == 0 || pa->all_datum_keys) && datum_equality(agg->grpOperators[i]) &&
			TupleDescAttr(indesc, agg->grpColIdx[i] - 1)->attbyval;
		pa->keycols[i] = agg->grpColIdx[i];
		pa->keyidx[i] = i + 1;
		pa->eqfuncs[i] = get_opcode(agg->grpOperators[i]);
		fmgr_info(rhash, &pa->hashfuncs[i]);
		pa->collations[i] = agg->grpCollations[i];
		TupleDescCopyEntry(pa->keydesc, i + 1, indesc, pa->keycols[i]);
	}

	/* the expressions, over the decoded row */
	srcdesc = CreateTupleDescCopy(RelationGetDescr(rel));
	pa->econtext = CreateStandaloneExprContext();
	/* what a row's windows compute is freed window by window */
	pa->aggcontext = window.result_tlist != NIL ? CreateStandaloneExprContext() : pa->econtext;
	pa->scanslot = MakeSingleTupleTableSlot(srcdesc, &TTSOpsVirtual);
	pa->qual = ExecInitQual(scan->scan.plan.qual, NULL);
	pa->scanproj = ExecBuildProjectionInfo(scan->scan.plan.targetlist, pa->econtext,
										   MakeSingleTupleTableSlot(scandesc, &TTSOpsVirtual),
										   NULL, srcdesc);
	if (window.result_tlist != NIL)
	{
		TupleDesc	setdesc = ExecTypeFromTL(window.set_tlist);

		pa->grid = window.grid;
		pa->window_col = window.window_col;
		pa->window_ts = ExecInitExpr(window.ts, NULL);
		pa->setproj = ExecBuildProjectionInfo(window.set_tlist, pa->econtext,
											  MakeSingleTupleTableSlot(setdesc, &TTSOpsVirtual),
											  NULL, scandesc);
		pa->resultproj = ExecBuildProjectionInfo(window.result_tlist, pa->aggcontext,
												 MakeSingleTupleTableSlot(indesc, &TTSOpsVirtual),
												 NULL, setdesc);
	}
	if (argtlist != NIL)
		pa->argproj = ExecBuildProjectionInfo(argtlist, pa->aggcontext,
											  MakeSingleTupleTableSlot(ExecTypeFromTL(argtlist),
																	   &TTSOpsVirtual),
											  NULL, indesc);
	pa->keyslot = MakeSingleTupleTableSlot(pa->keydesc, &TTSOpsMinimalTuple);
	pa->entryslot = MakeSingleTupleTableSlot(pa->keydesc, &TTSOpsMinimalTuple);
	pa->mem_limit = get_hash_memory_limit();
	build_table(pa);
	pa->sorted_runs = sort_groups && sortable(pa);
	if (pa->fast != NULL)
		pa->sparecxt = AllocSetContextCreate(pa->cxt, "streaming batch aggregation groups",
											 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(old);
	return pa;
}

/* start_state: a new group's state of an aggregate */
static void
start_state(Preagg *pa, PreaggTrans *t, PreaggState *s)
{
	s->isnull = s->novalue = t->initnull;
	s->value = (Datum) 0;
	if (!t->initnull)
	{
		MemoryContext old = MemoryContextSwitchTo(pa->tablecxt);

		s->value = datumCopy(t->initval, t->typbyval, t->typlen);
		MemoryContextSwitchTo(old);
	}
}

/*
 * advance: a group's state of an aggregate, advanced by one row's
 * arguments, as nodeAgg.c's advance_transition_function does.  Runs in the
 * row's memory; a new state that is a reference is copied to the groups'.
 */
static void
advance(Preagg *pa, PreaggTrans *t, PreaggState *s, TupleTableSlot *args)
{
	FunctionCallInfo fcinfo = t->fcinfo;
	Datum		value;

	for (int i = 0; i < t->nargs; i++)
	{
		fcinfo->args[i + 1].value = args->tts_values[t->firstarg + i];
		fcinfo->args[i + 1].isnull = args->tts_isnull[t->firstarg + i];
		/* a strict function skips a row with a null argument */
		if (fcinfo->args[i + 1].isnull && t->transfn.fn_strict)
			return;
	}
	if (t->transfn.fn_strict)
	{
		if (s->novalue)
		{
			/* the first input is the state (binary coercible: PreaggBegin) */
			MemoryContext old = MemoryContextSwitchTo(pa->tablecxt);

			s->value = datumCopy(fcinfo->args[1].value, t->typbyval, t->typlen);
			MemoryContextSwitchTo(old);
			s->isnull = false;
			s->novalue = false;
			return;
		}
		/* a strict function that returned null is not called again */
		if (s->isnull)
			return;
	}
	fcinfo->args[0].value = s->value;
	fcinfo->args[0].isnull = s->isnull;
	fcinfo->isnull = false;
	value = FunctionCallInvoke(fcinfo);
	if (!t->typbyval && DatumGetPointer(value) != DatumGetPointer(s->value))
	{
		if (!fcinfo->isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(pa->tablecxt);

			value = datumCopy(value, t->typbyval, t->typlen);
			MemoryContextSwitchTo(old);
		}
		if (!s->isnull)
			pfree(DatumGetPointer(s->value));
	}
	s->value = value;
	s->isnull = fcinfo->isnull;
}

/* new_states: a new group's states, carved from blocks of STATES_BLOCK */
static PreaggState *
new_states(Preagg *pa)
{
	Size		size = MAXALIGN(sizeof(PreaggState) * Max(pa->ntrans, 1));
	PreaggState *states;

	if (pa->free_size < size)
	{
		pa->free_size = Max(size, Min(STATES_BLOCK, pa->mem_limit / 16));
		pa->free_states = MemoryContextAlloc(pa->tablecxt, pa->free_size);
	}
	states = (PreaggState *) pa->free_states;
	pa->free_states += size;
	pa->free_size -= size;

	for (int i = 0; i < pa->ntrans; i++)
		start_state(pa, &pa->trans[i], &states[i]);
	pa->groups++;
	return states;
}

/*
 * add_to_group advances the states of the group of a row of what the
 * aggregate reads (out) by its arguments.
 */
static void
add_to_group(Preagg *pa, TupleTableSlot *out)
{
	ExprContext *econtext = pa->aggcontext;
	TupleTableSlot *args = NULL;
	TupleHashEntry entry;
	PreaggState *states;
	bool		isnew;
	MemoryContext old;

	if (pa->fast != NULL)
	{
		FastKey		key;
		FastGroup  *group;
		bool		found;

		memset(&key, 0, sizeof(key));
		for (int i = 0; i < pa->nkeys; i++)
		{
			key.nulls[i] = out->tts_isnull[pa->keycols[i] - 1];
			if (!key.nulls[i])
				key.values[i] = out->tts_values[pa->keycols[i] - 1];
		}
		group = fastgroups_insert(pa->fast, key, &found);
		if (!found)
		{
			group->states = new_states(pa);
			/* a group at or below those written out: the runs overlap */
			if (pa->written && pa->sorted_runs && compare_keys(pa, &key, &pa->last_written) <= 0)
				pa->sorted_runs = false;
		}
		group->touched = ++pa->tick;
		states = group->states;
	}
	else
	{
		ExecClearTuple(pa->keyslot);
		for (int i = 0; i < pa->nkeys; i++)
		{
			pa->keyslot->tts_values[i] = out->tts_values[pa->keycols[i] - 1];
			pa->keyslot->tts_isnull[i] = out->tts_isnull[pa->keycols[i] - 1];
		}
		ExecStoreVirtualTuple(pa->keyslot);
		entry = LookupTupleHashEntry(pa->table, pa->keyslot, &isnew, NULL);
		if (isnew)
			entry->additional = new_states(pa);
		states = entry->additional;
	}

	if (pa->argproj != NULL)
	{
		econtext->ecxt_outertuple = out;
		args = ExecProject(pa->argproj);
	}
	old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	for (int i = 0; i < pa->ntrans; i++)
		advance(pa, &pa->trans[i], &states[i], args);
	MemoryContextSwitchTo(old);
}

/*
 * PreaggAddRow aggregates one decoded row (the source's columns), which
 * the scan's filter may skip, and returns how many rows the aggregate
 * took of it: none or one, or one per window of a sliding window.  Its
 * values may be freed once it returns.
 */
int64
PreaggAddRow(Preagg *pa, Datum *values, bool *nulls)
{
	ExprContext *econtext = pa->econtext;
	TupleTableSlot *row = pa->scanslot;
	TupleTableSlot *out;
	TupleTableSlot *set;
	Datum		ts;
	bool		tsnull;
	TimestampTz start;
	int64		nwindows;
	int			natts = row->tts_tupleDescriptor->natts;

	ResetExprContext(econtext);
	ExecClearTuple(row);
	memcpy(row->tts_values, values, sizeof(Datum) * natts);
	memcpy(row->tts_isnull, nulls, sizeof(bool) * natts);
	ExecStoreVirtualTuple(row);
	econtext->ecxt_scantuple = row;
	if (pa->qual != NULL && !ExecQual(pa->qual, econtext))
		return 0;
	out = ExecProject(pa->scanproj);
	if (pa->window_ts == NULL)
	{
		add_to_group(pa, out);
		return 1;
	}

	/* a row per window that contains the row's time; none without one */
	econtext->ecxt_outertuple = out;
	ts = ExecEvalExpr(pa->window_ts, econtext, &tsnull);
	if (tsnull)
		return 0;
	nwindows = WindowSlidingStarts(&pa->grid, DatumGetTimestampTz(ts), &start);
	set = ExecProject(pa->setproj);
	set->tts_isnull[pa->window_col] = false;
	for (int64 i = 0; i < nwindows; i++, start += pa->grid.slide)
	{
		ResetExprContext(pa->aggcontext);
		set->tts_values[pa->window_col] = TimestampTzGetDatum(start);
		pa->aggcontext->ecxt_outertuple = set;
		add_to_group(pa, ExecProject(pa->resultproj));
	}
	return nwindows;
}

/*
 * PreaggFull: whether the groups take more memory than a hash aggregate
 * may (hash_mem), and should go to the partial states.
 */
bool
PreaggFull(Preagg *pa)
{
	/* simplehash grows early when its probes get long, past 70% or so */
	if (pa->fast != NULL &&
		(pa->groups >= pa->fast_max_groups || pa->fast->size > pa->fast_buckets))
		return true;
	return pa->groups > 0 &&
		MemoryContextMemAllocated(pa->tablecxt, false) +
		MemoryContextMemAllocated(pa->metacxt, false) > pa->mem_limit;
}


/* put_group writes one group's row of partial states into out */
static void
put_group(Preagg *pa, Tuplestorestate *out, Datum *keys, bool *keynulls, PreaggState *states)
{
	for (int i = 0; i < pa->out_desc->natts; i++)
	{
		if (pa->out_key[i] >= 0)
		{
			pa->out_values[i] = keys[pa->out_key[i]];
			pa->out_nulls[i] = keynulls[pa->out_key[i]];
		}
		else
		{
			pa->out_values[i] = states[pa->out_trans[i]].value;
			pa->out_nulls[i] = states[pa->out_trans[i]].isnull;
		}
	}
	tuplestore_putvalues(out, pa->out_desc, pa->out_values, pa->out_nulls);
}

/*
 * PreaggDump writes one row of partial states per group into out, forgets
 * the groups, and returns how many it wrote: all of them, or with all
 * false, of a table that is full, those of the lowest keys while the
 * groups are written in order (write_lower), else of a table of Datums
 * those that took no row for longest (write_stale).
 */
int64
PreaggDump(Preagg *pa, Tuplestorestate *out, bool all)
{
	TupleHashIterator iter;
	TupleHashEntry entry;
	int64		n = 0;

	if (pa->sorted_runs && !all)
		return write_lower(pa, out);
	pa->sorted_runs = false;
	if (pa->fast != NULL && !all)
		return write_stale(pa, out);

	if (pa->fast != NULL)
	{
		fastgroups_iterator fiter;
		FastGroup  *group;

		fastgroups_start_iterate(pa->fast, &fiter);
		while ((group = fastgroups_iterate(pa->fast, &fiter)) != NULL)
		{
			put_group(pa, out, group->key.values, group->key.nulls, group->states);
			n++;
		}
	}
	else
	{
		InitTupleHashIterator(pa->table, &iter);
		while ((entry = ScanTupleHashTable(pa->table, &iter)) != NULL)
		{
			ExecStoreMinimalTuple(entry->firstTuple, pa->entryslot, false);
			slot_getallattrs(pa->entryslot);
			put_group(pa, out, pa->entryslot->tts_values, pa->entryslot->tts_isnull, entry->additional);
			n++;
		}
		TermTupleHashIterator(&iter);
		ExecClearTuple(pa->entryslot);
	}

	forget_groups(pa);
	return n;
}

/*
 * empty_fast empties a table of Datums; one that grew past the buckets
 * planned for it (PreaggFull) is made again with as many.
 */
static void
empty_fast(Preagg *pa)
{
	if (pa->fast->size > pa->fast_buckets)
	{
		fastgroups_destroy(pa->fast);
		pa->fast = fastgroups_create(pa->metacxt, pa->fast_max_groups, NULL);
	}
	else
		fastgroups_reset(pa->fast);
}

/*
 * forget_groups empties the table.  It is kept, its buckets sized for as
 * many groups again (a table of Datums never outgrows its memory:
 * PreaggFull); unless they alone take half the memory allowed.
 */
static void
forget_groups(Preagg *pa)
{
	MemoryContextReset(pa->tablecxt);
	pa->free_size = 0;
	pa->groups = 0;
	if (pa->fast == NULL && MemoryContextMemAllocated(pa->metacxt, false) > pa->mem_limit / 2)
	{
		MemoryContextReset(pa->metacxt);
		pa->table = NULL;
		pa->fast = NULL;
		build_table(pa);
	}
	else if (pa->fast != NULL)
		empty_fast(pa);
	else
		ResetTupleHashTable(pa->table);
}

/* compare_keys orders two keys of a table of Datums (sortable) */
static int
compare_keys(Preagg *pa, const FastKey *a, const FastKey *b)
{
	for (int i = 0; i < pa->nsort; i++)
	{
		int			k = pa->sortkey[i];
		int			c = ApplySortComparator(a->values[k], a->nulls[k], b->values[k], b->nulls[k],
											&pa->sortsupport[i]);

		if (c != 0)
			return c;
	}
	return 0;
}

/* compare_groups orders two groups of a table of Datums by their keys */
static int
compare_groups(const void *a, const void *b, void *arg)
{
	return compare_keys(arg, &(*(FastGroup *const *) a)->key, &(*(FastGroup *const *) b)->key);
}

/*
 * compare_touched orders two groups by when they last took a row, the
 * longest ago first: by how many rows ago, which the wrap-around of the
 * tick leaves right.
 */
static int
compare_touched(const void *a, const void *b, void *arg)
{
	Preagg	   *pa = arg;
	uint32		age_a = pa->tick - (*(FastGroup *const *) a)->touched;
	uint32		age_b = pa->tick - (*(FastGroup *const *) b)->touched;

	return age_a > age_b ? -1 : age_a < age_b;
}

/* sorted_groups: the groups of a table of Datums, sorted by cmp */
static FastGroup **
sorted_groups(Preagg *pa, int64 *n, qsort_arg_comparator cmp)
{
	fastgroups_iterator iter;
	FastGroup  *group;
	FastGroup **groups;

	*n = 0;
	groups = MemoryContextAllocHuge(pa->cxt, sizeof(FastGroup *) * Max(pa->fast->members, 1));
	fastgroups_start_iterate(pa->fast, &iter);
	while ((group = fastgroups_iterate(pa->fast, &iter)) != NULL && *n < pa->fast->members)
		groups[(*n)++] = group;
	qsort_arg(groups, *n, sizeof(FastGroup *), cmp, pa);
	return groups;
}

/*
 * write_first writes out the first three quarters of the groups of a
 * table of Datums, ordered, and keeps the others.  The groups kept move to
 * the spare context, the table emptied, so that the memory of the others
 * goes.  It frees groups.
 */
static int64
write_first(Preagg *pa, Tuplestorestate *out, FastGroup **groups, int64 n)
{
	int64		keep = n / 4;
	FastGroup  *kept;
	MemoryContext old;
	Size		size = sizeof(PreaggState) * pa->ntrans;


	for (int64 i = 0; i < n - keep; i++)
	{
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		put_group(pa, out, groups[i]->key.values, groups[i]->key.nulls, groups[i]->states);
	}

	/*
	 * The groups kept, with their states copied to the spare context (the
	 * groups themselves go back in the table: not there, where they would
	 * count as the table's memory, PreaggFull).
	 */
	MemoryContextReset(pa->sparecxt);
	old = MemoryContextSwitchTo(pa->sparecxt);
	kept = MemoryContextAllocHuge(pa->cxt, sizeof(FastGroup) * Max(keep, 1));
	for (int64 i = 0; i < keep; i++)
	{
		FastGroup  *from = groups[n - keep + i];

		kept[i].key = from->key;
		kept[i].touched = from->touched;
		kept[i].states = palloc(Max(size, 1));
		for (int t = 0; t < pa->ntrans; t++)
		{
			PreaggState *s = &kept[i].states[t];

			*s = from->states[t];
			if (!s->isnull && !pa->trans[t].typbyval)
				s->value = datumCopy(s->value, false, pa->trans[t].typlen);
		}
	}
	MemoryContextSwitchTo(old);
	pfree(groups);

	/* the spare context becomes the groups' */
	old = (MemoryContext) pa->tablecxt;
	pa->tablecxt = pa->sparecxt;
	pa->sparecxt = old;
	MemoryContextReset(pa->sparecxt);
	pa->free_size = 0;
	pa->groups = 0;
	empty_fast(pa);
	for (int64 i = 0; i < keep; i++)
	{
		bool		found;
		FastGroup  *group = fastgroups_insert(pa->fast, kept[i].key, &found);

		group->states = kept[i].states;
		group->touched = kept[i].touched;
		pa->groups++;
	}
	pfree(kept);
	return n - keep;
}

/*
 * write_lower writes out the groups of the lowest keys, three quarters of
 * them, in order, and keeps the others.  Over rows that come in about the
 * order of their keys (windows over time), those are the groups that are
 * done: the groups written out in the end are then one row per group, in
 * order (sorted_runs, PreaggDumpSorted).
 */
static int64
write_lower(Preagg *pa, Tuplestorestate *out)
{
	int64		n;
	FastGroup **groups = sorted_groups(pa, &n, compare_groups);

	if (n - n / 4 > 0)
	{
		pa->last_written = groups[n - n / 4 - 1]->key;
		pa->written = true;
	}
	return write_first(pa, out, groups, n);
}

/*
 * write_stale writes out the three quarters of the groups that took no row
 * for longest, and keeps the others.  Over rows that come in the order of
 * their keys in several streams read by turns (a topic's partitions, each
 * in the order of time), the groups of the lowest keys are those of the
 * stream that is behind, which come back; those that took no row for
 * long are done.
 */
static int64
write_stale(Preagg *pa, Tuplestorestate *out)
{
	int64		n;
	FastGroup **groups = sorted_groups(pa, &n, compare_touched);

	return write_first(pa, out, groups, n);
}

/*
 * sortable: whether the groups can be written in the order of their keys,
 * as ORDER BY of the partial states' key columns would sort them (each
 * type's default order, nulls last): a table of Datums, of keys that
 * have a default order.
 */
static bool
sortable(Preagg *pa)
{
	MemoryContext old;

	if (pa->fast == NULL)
		return false;
	if (pa->sortsupport != NULL)
		return true;
	old = MemoryContextSwitchTo(pa->cxt);
	pa->sortkey = palloc(sizeof(int) * pa->nkeys);
	pa->sortsupport = palloc0(sizeof(SortSupportData) * pa->nkeys);
	pa->nsort = 0;
	for (int i = 0; i < pa->out_desc->natts; i++)
	{
		int			k = pa->out_key[i];
		TypeCacheEntry *type;
		SortSupport ssup = &pa->sortsupport[pa->nsort];

		/* each key once (the planner names a key once anyway) */
		if (k < 0 || pa->nsort == pa->nkeys)
			continue;
		for (int j = 0; j < pa->nsort; j++)
			if (pa->sortkey[j] == k)
				k = -1;
		if (k < 0)
			continue;
		type = lookup_type_cache(TupleDescAttr(pa->keydesc, k)->atttypid, TYPECACHE_LT_OPR);
		if (!OidIsValid(type->lt_opr))
		{
			MemoryContextSwitchTo(old);
			pa->sortsupport = NULL;
			return false;
		}
		ssup->ssup_cxt = pa->cxt;
		ssup->ssup_collation = pa->collations[k];
		ssup->ssup_nulls_first = false;
		PrepareSortSupportFromOrderingOp(type->lt_opr, ssup);
		pa->sortkey[pa->nsort++] = k;
	}
	MemoryContextSwitchTo(old);
	if (pa->nsort != pa->nkeys)
		pa->sortsupport = NULL;
	return pa->sortsupport != NULL;
}

/*
 * PreaggDumpSorted writes out every group, in the order of their keys,
 * when every write-out before wrote groups in order, below those left
 * (sorted_runs); or returns -1 having written nothing.  All the partial
 * states are then one row per group, in order: the batch statement takes
 * them as its groups (partial_agg.c), without combining or sorting them.
 */
int64
PreaggDumpSorted(Preagg *pa, Tuplestorestate *out)
{
	FastGroup **groups;
	int64		n;

	if (!pa->sorted_runs)
		return -1;
	groups = sorted_groups(pa, &n, compare_groups);
	for (int64 i = 0; i < n; i++)
	{
		if ((i & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
		put_group(pa, out, groups[i]->key.values, groups[i]->key.nulls, groups[i]->states);
	}
	pfree(groups);
	forget_groups(pa);
	return n;
}

/* PreaggEnd frees what PreaggBegin made */
void
PreaggEnd(Preagg *pa)
{
	MemoryContextDelete(pa->cxt);
}
