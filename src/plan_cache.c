/*-------------------------------------------------------------------------
 *
 * plan_cache.c
 *	  A continuous query's statements, prepared once per process and
 *	  prepared again only when something they depend on changes.
 *
 * Every micro-batch runs the same batch statement (and, with a watermark,
 * the same close statement).  Parsing, analysing and planning them again at
 * every batch costs more than running them over a small batch, so each is
 * kept, per process, as a saved CachedPlanSource of PostgreSQL's plan cache,
 * whose invalidation callbacks mark it invalid when a relation, function or
 * type it uses changes, and whose generic plan is reused from batch to
 * batch.  A process may run the batches of several queries, for several
 * owners: a statement is kept under its query's id, its kind and the role it
 * was analysed as (row-level security is applied for that role when it is
 * rewritten), and is prepared anew when its text or its fingerprint differs
 * (a query dropped and created again under the same id).
 *
 * The planner estimates the scan of the batch's input at the batch's row
 * count (fdw.c), and a plan made for ten rows (index lookups into the
 * state) is not the one for a million (a hash join over it): a statement
 * is kept once per order of magnitude of the batch's rows, so that a query
 * catching up on a backlog and one keeping up with a trickle each run a
 * plan made for their size, without planning again at every batch.  As
 * the state grows by an order of magnitude, the statement is prepared
 * again, before autovacuum's ANALYZE of the state table would make the
 * plan cache plan it again.
 *
 * The plan cache would analyse an invalidated statement again by itself,
 * under the owner's search_path and without the fingerprint check that
 * AnalyseResolved makes (see util.c).  That must never happen, so before
 * each execution the statement's relations are locked, invalidations are
 * taken in, and a statement the plan cache would analyse again (invalid,
 * another search_path, another role for row-level security) is dropped and
 * prepared anew through AnalyseResolved; after the locks, nothing between
 * the check and the execution takes in an invalidation.  Should one arrive
 * all the same, the statement's parser hook refuses the analysis, and the
 * batch fails, to be run again.
 *
 * A statement whose text calls a function is analysed again after any
 * function, operator or cast is created, changed or dropped, as it was at
 * every batch before: an overload created since with a closer signature
 * fails the fingerprint check at the next batch, not only at the next
 * invalidation of the statement's own objects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi_priv.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "plan_cache.h"
#include "streaming.h"

/* statements kept per process before unused ones are dropped */
#define PREPARED_MAX 1024

typedef struct PreparedKey
{
	int32		query_id;
	Oid			userid;			/* the role it was analysed as */
	PreparedKind kind;
	int			scan_magnitude; /* of the batch its plan was made for */
} PreparedKey;

typedef struct PreparedStatement
{
	PreparedKey key;			/* hash key: first */
	MemoryContext cxt;			/* the texts below and the SPI plan */
	char	   *query;			/* the query's name, for messages */
	char	   *sql;
	char	   *fingerprint;	/* checked at analysis, or NULL */
	CachedPlanSource *source;	/* saved: the plan cache keeps it current */
	SPIPlanPtr	plan;			/* an SPI plan over source */
	int			state_magnitude;	/* of the state its plan was made for */
	uint64		catalog_generation; /* catalog_generation before analysis */
	uint64		last_used;
	int			in_use;			/* executions under way (nested batches) */
} PreparedStatement;

static HTAB *prepared_statements = NULL;

/* bumped when any function, operator or cast changes (see above) */
static uint64 catalog_generation = 0;
static uint64 use_clock = 0;

static void
catalog_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	catalog_generation++;
}

static void
prepared_init(void)
{
	HASHCTL		ctl;

	if (prepared_statements != NULL)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(PreparedKey);
	ctl.entrysize = sizeof(PreparedStatement);
	ctl.hcxt = TopMemoryContext;
	prepared_statements = hash_create("streaming prepared statements", 16, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterSyscacheCallback(PROCOID, catalog_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(OPEROID, catalog_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(CASTSOURCETARGET, catalog_changed, (Datum) 0);
}

/*
 * refuse_reanalysis is the parser hook of every kept statement: the plan
 * cache calls it only when it analyses the statement again by itself,
 * which the checks in prepared_is_current are there to prevent.  Such an
 * analysis would skip the fingerprint check and resolve names under the
 * owner's search_path, so it is refused.
 */
static void
refuse_reanalysis(struct ParseState *pstate, void *arg)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("a statement of continuous query \"%s\" was invalidated while it was being planned",
					(const char *) arg),
			 errdetail("A concurrent change to an object the statement uses arrived after its locks were taken."),
			 errhint("Run the batch again: its statement is then prepared anew.")));
}

/*
 * lock_relations_walker takes the lock of every relation an analysed
 * statement names, in the mode its analysis chose, as the plan cache does
 * before it trusts a statement (AcquirePlannerLocks).
 */
static bool
lock_relations_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, lock_relations_walker, context,
								 QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			LockRelationOid(rte->relid, rte->rellockmode);
		return false;
	}
	return expression_tree_walker(node, lock_relations_walker, context);
}

/*
 * lock_relations locks what a kept statement and its generic plan use: the
 * plan's range table also holds relations the planner added (bodies of
 * inlined functions), whose locks the plan cache would otherwise take
 * after our check, taking in invalidations then.
 */
static void
lock_relations(CachedPlanSource *source)
{
	ListCell   *lc;

	foreach(lc, source->query_list)
		(void) lock_relations_walker(lfirst(lc), NULL);
	if (source->gplan != NULL)
	{
		foreach(lc, source->gplan->stmt_list)
		{
			PlannedStmt *pstmt = lfirst_node(PlannedStmt, lc);
			ListCell   *lr;

			foreach(lr, pstmt->rtable)
			{
				RangeTblEntry *rte = lfirst_node(RangeTblEntry, lr);

				if (rte->rtekind == RTE_RELATION)
					LockRelationOid(rte->relid, rte->rellockmode);
			}
		}
	}
}

/* magnitude: floor(log10(n)), 0 below 10 */
static int
magnitude(int64 n)
{
	int			m = 0;

	for (; n >= 10; n /= 10)
		m++;
	return m;
}

static bool
equal_or_both_null(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * prepared_is_current says whether a kept statement can run as it is: the
 * same text and fingerprint, no function changed since its analysis, and
 * nothing that would make the plan cache analyse it again.  The locks come
 * first, then the invalidations they let in, then the checks, so that a
 * concurrent change either shows here or waits for the batch to commit.
 */
static bool
prepared_is_current(PreparedStatement *ps, const PreparedSpec *spec)
{
	CachedPlanSource *source = ps->source;

	if (strcmp(ps->sql, spec->sql) != 0 || !equal_or_both_null(ps->fingerprint, spec->fingerprint) ||
		ps->state_magnitude != magnitude(spec->state_rows))
		return false;
	if (source->is_valid)
		lock_relations(source);
	AcceptInvalidationMessages();
	if (ps->catalog_generation != catalog_generation || !source->is_valid)
		return false;
	/* what RevalidateCachedQuery would analyse the statement again for */
	if (!OverrideSearchPathMatchesCurrent(source->search_path))
		return false;
	if (source->dependsOnRLS &&
		(source->rewriteRoleId != GetUserId() || source->rewriteRowSecurity != row_security))
		return false;
	return true;
}

static void
prepared_drop(PreparedStatement *ps)
{
	DropCachedPlan(ps->source);
	MemoryContextDelete(ps->cxt);
	(void) hash_search(prepared_statements, &ps->key, HASH_REMOVE, NULL);
}

/*
 * prepared_make_room drops statements when too many are kept: first those
 * the plan cache has invalidated (of dropped queries, mostly), then the
 * least recently used.
 */
static void
prepared_make_room(void)
{
	HASH_SEQ_STATUS seq;
	PreparedStatement *ps;
	PreparedStatement *oldest = NULL;

	if (hash_get_num_entries(prepared_statements) < PREPARED_MAX)
		return;
	hash_seq_init(&seq, prepared_statements);
	while ((ps = hash_seq_search(&seq)) != NULL)
	{
		if (ps->in_use > 0)
			continue;
		if (!ps->source->is_valid)
			prepared_drop(ps);	/* dynahash allows removing the current one */
		else if (oldest == NULL || ps->last_used < oldest->last_used)
			oldest = ps;
	}
	if (hash_get_num_entries(prepared_statements) >= PREPARED_MAX && oldest != NULL)
		prepared_drop(oldest);
}

/*
 * prepared_build analyses a statement through AnalyseResolved (catalog
 * search_path, fingerprint check) and keeps it.  The batch statement's
 * generic plan is made at its first execution, under the owner's
 * search_path as before, and reused: its parameter, the watermark, only
 * tells which of the batch's groups pass by the state (planner.c,
 * append_passed), which changes no choice of plan.  The close statement's
 * parameter, the watermark, bounds an index scan of the state (windows
 * ending by it): a generic plan, costed at PostgreSQL's default
 * selectivity of a third of the rows, may scan the whole state instead, so it
 * is planned for each watermark - planned only, not analysed again.
 * Either way the plan cache makes one kind of plan per execution, never a
 * generic one and then a custom one, between which an invalidation could
 * make it analyse the statement again.  The SELECT whose rows
 * bulk_insert.c writes is not planned in parallel, as the INSERT it stands
 * for is not: its rows are written while it runs, and in a parallel
 * operation a constraint's function could run no statement, nor could the
 * transaction take its ID.
 */
static PreparedStatement *
prepared_build(PreparedKey *key, const PreparedSpec *spec)
{
	uint64		generation = catalog_generation;
	RawStmt    *stmt;
	List	   *querytrees;
	CachedPlanSource *source;
	MemoryContext cxt;
	MemoryContext oldcxt;
	PreparedStatement *ps;
	SPIPlanPtr	plan;
	bool		found;
	int			options = (spec->kind == PREPARED_BULK ? 0 : CURSOR_OPT_PARALLEL_OK) |
		(spec->kind == PREPARED_CLOSE ? CURSOR_OPT_CUSTOM_PLAN : CURSOR_OPT_GENERIC_PLAN);

	querytrees = AnalyseResolved(spec->sql, spec->nargs, spec->argtypes, spec->query,
								 spec->fingerprint, &stmt);
	source = CreateCachedPlan(stmt, spec->sql, CreateCommandTag(stmt->stmt));

	/* kept only once complete: until then, an error frees it */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "streaming prepared statement",
								ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(cxt);
	plan = palloc0(sizeof(_SPI_plan));
	plan->magic = _SPI_PLAN_MAGIC;
	plan->saved = true;
	plan->oneshot = false;
	plan->plancache_list = list_make1(source);
	plan->plancxt = cxt;
	plan->parse_mode = RAW_PARSE_DEFAULT;
	plan->cursor_options = options;
	plan->nargs = spec->nargs;
	plan->argtypes = spec->nargs > 0 ? palloc(spec->nargs * sizeof(Oid)) : NULL;
	if (spec->nargs > 0)
		memcpy(plan->argtypes, spec->argtypes, spec->nargs * sizeof(Oid));
	MemoryContextSwitchTo(oldcxt);

	/* the search_path recorded here is the owner's: planning happens there */
	CompleteCachedPlan(source, querytrees, NULL, plan->argtypes, spec->nargs,
					   refuse_reanalysis, MemoryContextStrdup(cxt, spec->query),
					   options, false);
	SaveCachedPlan(source);
	MemoryContextSetParent(cxt, CacheMemoryContext);

	prepared_make_room();
	ps = hash_search(prepared_statements, key, HASH_ENTER, &found);
	Assert(!found);
	ps->cxt = cxt;
	ps->query = source->parserSetupArg;
	ps->sql = MemoryContextStrdup(cxt, spec->sql);
	ps->fingerprint = spec->fingerprint != NULL ? MemoryContextStrdup(cxt, spec->fingerprint) : NULL;
	ps->state_magnitude = magnitude(spec->state_rows);
	ps->source = source;
	ps->plan = plan;
	ps->catalog_generation = generation;
	ps->last_used = 0;
	ps->in_use = 0;
	elog(DEBUG1, "continuous query \"%s\": %s statement prepared", spec->query,
		 key->kind == PREPARED_BATCH ? "batch" : key->kind == PREPARED_CLOSE ? "close" :
		 key->kind == PREPARED_PARTIAL ? "partial" :
		 key->kind == PREPARED_COMBINED ? "combined" :
		 key->kind == PREPARED_UNIQUE ? "unique combined" :
		 key->kind == PREPARED_BULK ? "bulk" : "optimistic batch");
	return ps;
}

/*
 * prepared_find returns the statement kept for spec, prepared (again) if
 * need be, its time added to *prepare_ms; or NULL when the one kept is out
 * of date and a batch of the same query runs it below, so that it cannot
 * be dropped yet.
 */
static PreparedStatement *
prepared_find(const PreparedSpec *spec, double *prepare_ms)
{
	PreparedKey key;
	PreparedStatement *ps;
	instr_time	start;
	instr_time	duration;

	prepared_init();
	memset(&key, 0, sizeof(key));
	key.query_id = spec->query_id;
	key.userid = GetUserId();
	key.kind = spec->kind;
	key.scan_magnitude = magnitude(spec->scan_rows);
	ps = hash_search(prepared_statements, &key, HASH_FIND, NULL);
	if (ps != NULL && !prepared_is_current(ps, spec))
	{
		if (ps->in_use > 0)
			return NULL;
		prepared_drop(ps);
		ps = NULL;
	}
	if (ps == NULL)
	{
		INSTR_TIME_SET_CURRENT(start);
		ps = prepared_build(&key, spec);
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		*prepare_ms += INSTR_TIME_GET_MILLISEC(duration);
	}
	ps->last_used = ++use_clock;
	return ps;
}

/*
 * ExecutePrepared runs one of a query's statements through SPI, as
 * SPI_execute_plan_extended with options would, prepared once per process
 * and prepared again only when what it depends on changed (see the top of
 * this file).  The time spent preparing is added to *prepare_ms: nothing
 * when the kept statement served.  Call it between SPI_connect and
 * SPI_finish, as the query's owner under its pinned search_path.
 */
int
ExecutePrepared(const PreparedSpec *spec, SPIExecuteOptions *options, double *prepare_ms)
{
	PreparedStatement *ps;
	volatile int rc = 0;

	ps = prepared_find(spec, prepare_ms);
	if (ps == NULL)
	{
		/* a batch of this very query under way below: prepare for once */
		SPIPlanPtr	plan;
		instr_time	start;
		instr_time	duration;

		INSTR_TIME_SET_CURRENT(start);
		plan = PrepareResolved(spec->sql, spec->nargs, spec->argtypes, spec->query,
							   spec->fingerprint);
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		*prepare_ms += INSTR_TIME_GET_MILLISEC(duration);
		return SPI_execute_plan_extended(plan, options);
	}
	ps->in_use++;
	PG_TRY();
	{
		rc = SPI_execute_plan_extended(ps->plan, options);
	}
	PG_FINALLY();
	{
		ps->in_use--;
	}
	PG_END_TRY();
	return rc;
}

/*
 * PreparedPlan returns the plan that ExecutePrepared would run for spec,
 * pinned in CurrentResourceOwner (ReleaseCachedPlan it there); or NULL
 * when the statement kept is out of date and a batch of the same query
 * runs it below.  Same calling conditions as ExecutePrepared.
 */
CachedPlan *
PreparedPlan(const PreparedSpec *spec, double *prepare_ms)
{
	PreparedStatement *ps = prepared_find(spec, prepare_ms);

	return ps != NULL ? SPI_plan_get_cached_plan(ps->plan) : NULL;
}
