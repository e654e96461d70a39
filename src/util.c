/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers shared across the extension: reading option objects
 *	  (jsonb), deparsing under a fixed search_path, and statements on the
 *	  extension's catalog run as its owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "executor/spi_priv.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "streaming.h"

/*
 * JsonbGetKey returns the value of a top-level key of an object, or NULL.
 */
JsonbValue *
JsonbGetKey(Jsonb *obj, const char *key)
{
	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj))
		return NULL;
	return getKeyJsonValueFromContainer(&obj->root, key, strlen(key), NULL);
}

/*
 * JsonbValueAsText renders a scalar as text (strings unquoted).
 */
char *
JsonbValueAsText(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvNull:
			return NULL;
		default:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	}
}

/*
 * JsonbGetBool reads a boolean option; "true"/"false" strings are accepted.
 */
bool
JsonbGetBool(Jsonb *obj, const char *key, bool dflt)
{
	JsonbValue *v = JsonbGetKey(obj, key);

	if (v == NULL || v->type == jbvNull)
		return dflt;
	if (v->type == jbvBool)
		return v->val.boolean;
	if (v->type == jbvString)
	{
		bool		result;
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);

		if (parse_bool(s, &result))
			return result;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\"", key),
			 errhint("Use true or false.")));
	return dflt;				/* keep compiler quiet */
}

/*
 * JsonbGetInt64 reads an integer option (a JSON number or a numeric string)
 * and checks that it is at least min.
 */
int64
JsonbGetInt64(Jsonb *obj, const char *key, int64 dflt, int64 min)
{
	JsonbValue *v = JsonbGetKey(obj, key);
	char	   *s;
	char	   *end;
	long long	result;

	if (v == NULL || v->type == jbvNull)
		return dflt;
	if (v->type != jbvNumeric && v->type != jbvString)
		goto bad;
	s = JsonbValueAsText(v);
	errno = 0;
	result = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || result < min)
		goto bad;
	return (int64) result;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\"", key),
			 errhint("Use an integer of at least " INT64_FORMAT ".", min)));
	return dflt;				/* keep compiler quiet */
}

/*
 * JsonbGetString reads a string option, or NULL when absent.
 */
char *
JsonbGetString(Jsonb *obj, const char *key)
{
	JsonbValue *v = JsonbGetKey(obj, key);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\"", key),
				 errhint("Use a JSON string.")));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * JsonbObjectKeys lists the top-level keys of an object; anything but an
 * object is an error, as an options argument must be one.
 */
List *
JsonbObjectKeys(Jsonb *obj)
{
	List	   *keys = NIL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			level = 0;

	if (obj == NULL)
		return NIL;
	if (!JB_ROOT_IS_OBJECT(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));

	it = JsonbIteratorInit(&obj->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			level++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			level--;
		else if (tok == WJB_KEY && level == 1)
			keys = lappend(keys, pnstrdup(v.val.string.val, v.val.string.len));
	}
	return keys;
}

/*
 * PushCatalogSearchPath sets search_path to "pg_catalog, pg_temp" until the
 * matching PopCatalogSearchPath.  Deparsed SQL then qualifies every name
 * outside pg_catalog and means the same thing in any session, and the
 * extension's own statements resolve nothing a caller can define: naming
 * pg_temp last keeps a temporary table or type (which PostgreSQL otherwise
 * finds before pg_catalog) from shadowing a catalog one, and functions and
 * operators are never looked up in pg_temp.
 */
int
PushCatalogSearchPath(void)
{
	return PushSearchPath(CATALOG_SEARCH_PATH);
}

/*
 * PushSearchPath sets search_path until the matching PopCatalogSearchPath,
 * as a function's SET clause does.
 */
int
PushSearchPath(const char *path)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", path,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
PopCatalogSearchPath(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

static char *dependencies_fingerprint(Query *query);

/*
 * analyse_resolved parses and analyses one statement under the catalog's
 * search_path, and rewrites it; *fingerprint gets what its names resolved
 * to, when fingerprint is not NULL (before rewriting: the defaults of a
 * result table's columns and the insides of views are not named by the
 * text).
 */
static List *
analyse_resolved(const char *sql, int nargs, Oid *argtypes, RawStmt **stmt,
				 char **fingerprint)
{
	List	   *raw = pg_parse_query(sql);
	Query	   *query;
	int			nestlevel;

	if (list_length(raw) != 1)
		elog(ERROR, "expected one statement, got %d", list_length(raw));
	*stmt = linitial_node(RawStmt, raw);
	nestlevel = PushCatalogSearchPath();
	query = parse_analyze_fixedparams(*stmt, sql, argtypes, nargs, NULL);
	PopCatalogSearchPath(nestlevel);
	if (fingerprint != NULL)
		*fingerprint = dependencies_fingerprint(query);
	return pg_rewrite_query(query);
}

static int
cstring_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

/* what fingerprint_walker collects */
typedef struct Fingerprint
{
	List	   *words;
} Fingerprint;

/*
 * fingerprint_add notes an object found, unless it is PostgreSQL's own:
 * only a superuser can add to pg_catalog, so a name that finds another
 * object than before finds one outside it - which shows - and leaving
 * pg_catalog's out keeps casts the generated text adds (LIMIT n as int8)
 * from mattering.
 */
static void
fingerprint_add(Fingerprint *fp, const char *kind, char *name)
{
	if (strncmp(name, "pg_catalog.", 11) == 0)
		return;
	fp->words = lappend(fp->words, psprintf("%s %s", kind, name));
}

/*
 * fingerprint_walker names, with their schemas, the functions, aggregates,
 * operators and domains an analysed statement uses.
 */
static bool
fingerprint_walker(Node *node, Fingerprint *fp)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, fingerprint_walker, fp, QTW_EXAMINE_RTES_BEFORE);
	/*
	 * Relations are left out: a batch statement names only the extension's
	 * own (the input view, the state table) and the result table, by what
	 * their OIDs are named now, and a renamed result table is no change of
	 * meaning.
	 */
	if (IsA(node, RangeTblEntry))
		return false;
	if (IsA(node, FuncExpr))
		fingerprint_add(fp, "function", format_procedure_qualified(((FuncExpr *) node)->funcid));
	else if (IsA(node, Aggref))
		fingerprint_add(fp, "aggregate", format_procedure_qualified(((Aggref *) node)->aggfnoid));
	else if (IsA(node, WindowFunc))
		fingerprint_add(fp, "function", format_procedure_qualified(((WindowFunc *) node)->winfnoid));
	else if (IsA(node, OpExpr) || IsA(node, DistinctExpr) || IsA(node, NullIfExpr))
		fingerprint_add(fp, "operator", format_operator_qualified(((OpExpr *) node)->opno));
	else if (IsA(node, ScalarArrayOpExpr))
		fingerprint_add(fp, "operator", format_operator_qualified(((ScalarArrayOpExpr *) node)->opno));
	else if (IsA(node, RowCompareExpr))
	{
		ListCell   *lc;

		foreach(lc, ((RowCompareExpr *) node)->opnos)
			fingerprint_add(fp, "operator", format_operator_qualified(lfirst_oid(lc)));
	}
	else if (IsA(node, CoerceToDomain))
		fingerprint_add(fp, "domain", format_type_be_qualified(((CoerceToDomain *) node)->resulttype));
	return expression_tree_walker(node, fingerprint_walker, fp);
}

/*
 * dependencies_fingerprint lists what an analysed statement's names found:
 * its functions, aggregates, operators and domains, each named
 * with its schema (and a routine with its argument types), sorted and
 * without repeats.  Two analyses of one text that resolved a name to
 * different objects differ here; a dump restored elsewhere, with other
 * OIDs, does not.
 */
static char *
dependencies_fingerprint(Query *query)
{
	Fingerprint fp = {NIL};
	StringInfoData buf;
	ListCell   *lc;

	(void) fingerprint_walker((Node *) query, &fp);
	list_sort(fp.words, cstring_cmp);
	initStringInfo(&buf);
	foreach(lc, fp.words)
	{
		/* the same object named twice is one dependency */
		if (foreach_current_index(lc) > 0 &&
			strcmp(lfirst(lc), list_nth(fp.words, foreach_current_index(lc) - 1)) == 0)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len > 0 ? "; " : "", (char *) lfirst(lc));
	}
	return buf.data;
}

/*
 * AnalyseResolved parses, analyses and rewrites one statement under
 * "pg_catalog, pg_temp", for it to be planned and executed later under
 * whatever search_path is current then; *stmt gets its raw parse tree.
 *
 * A continuous query's statements embed the user's query as PostgreSQL's
 * deparser printed it under that same path: every name outside pg_catalog
 * is qualified, and a pg_catalog function or operator is printed bare.  Run
 * through SPI_execute under the owner's search_path, that text would be
 * resolved again at every batch, and a function planted later in a schema
 * on the path with a closer signature (format(text, bigint) beside
 * pg_catalog.format(text, VARIADIC "any")) would be called instead, with the
 * rights of whoever owns the query.  Analysed under the catalog path, every
 * name resolves as create_query resolved it, as a view's stored tree
 * would; the owner's functions still run under the owner's pinned path.
 *
 * A fingerprint (ResolvedFingerprint at create_query) makes it check that
 * the analysis found the very objects it found then: a name the catalog
 * path resolves can still find a better match created since in its own
 * schema (public.f(numeric) beside a query's public.f(anyelement)), and
 * such a statement fails, naming query, instead of running another's code.
 * Every analysis of a query's statement goes through here, so none skips
 * the check (see plan_cache.c).
 */
List *
AnalyseResolved(const char *sql, int nargs, Oid *argtypes, const char *query,
				const char *fingerprint, RawStmt **stmt)
{
	char	   *found = NULL;
	List	   *querytrees = analyse_resolved(sql, nargs, argtypes, stmt,
											  fingerprint != NULL ? &found : NULL);

	if (fingerprint != NULL && strcmp(fingerprint, found) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("continuous query \"%s\" no longer means what it meant at create_query", query),
				 errdetail("A name in its statements now finds another function, operator or domain "
						   "than when it was created (one created since in the name's schema, with a closer signature): "
						   "it found \"%s\", it finds \"%s\".", fingerprint, found),
				 errhint("Look at what was created in the schemas the query names. To accept the new meaning, drop the query and create it again.")));
	return querytrees;
}

/*
 * PrepareResolved prepares one statement for SPI_execute_plan[_extended],
 * analysed and checked by AnalyseResolved.  The plan is SPI's one-shot
 * kind, which is never re-analysed: analysing here rather than in SPI is
 * all that differs from SPI_execute.  Call it between SPI_connect and
 * SPI_finish; the plan lives in the current memory context and serves one
 * execution.  A statement run at every batch is better prepared once
 * (ExecutePrepared).
 */
SPIPlanPtr
PrepareResolved(const char *sql, int nargs, Oid *argtypes, const char *query,
				const char *fingerprint)
{
	RawStmt    *stmt;
	CachedPlanSource *source;
	List	   *querytrees = AnalyseResolved(sql, nargs, argtypes, query, fingerprint, &stmt);
	SPIPlanPtr	plan;

	source = CreateOneShotCachedPlan(stmt, sql, CreateCommandTag(stmt->stmt));
	CompleteCachedPlan(source, querytrees, NULL, argtypes, nargs, NULL, NULL,
					   CURSOR_OPT_PARALLEL_OK, false);

	plan = palloc0(sizeof(_SPI_plan));
	plan->magic = _SPI_PLAN_MAGIC;
	plan->saved = false;
	plan->oneshot = false;		/* analysed already: SPI must not do it again */
	plan->plancache_list = list_make1(source);
	plan->plancxt = CurrentMemoryContext;
	plan->parse_mode = RAW_PARSE_DEFAULT;
	plan->cursor_options = CURSOR_OPT_PARALLEL_OK;
	plan->nargs = nargs;
	plan->argtypes = argtypes;
	return plan;
}

/*
 * ResolvedFingerprint: the fingerprint of a statement as AnalyseResolved
 * analyses it now, for create_query to keep.
 */
char *
ResolvedFingerprint(const char *sql, int nargs, Oid *argtypes)
{
	RawStmt    *stmt;
	char	   *found;

	(void) analyse_resolved(sql, nargs, argtypes, &stmt, &found);
	return found;
}

/*
 * PinnedSearchPath returns the current search_path to be pinned on a
 * continuous query: its batches run under it, whoever triggers them, as a
 * function runs under its SET search_path.  pg_temp is put last unless the
 * path places it itself, so that no temporary object can shadow the
 * owner's tables and types.
 */
char *
PinnedSearchPath(void)
{
	const char *path = GetConfigOption("search_path", false, false);
	List	   *elems;
	char	   *copy = pstrdup(path ? path : "");
	ListCell   *lc;

	if (!SplitIdentifierString(copy, ',', &elems))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid search_path \"%s\"", path)));
	foreach(lc, elems)
		if (strcmp((char *) lfirst(lc), "pg_temp") == 0)
			return pstrdup(path);
	return *path ? psprintf("%s, pg_temp", path) : pstrdup("pg_temp");
}

/*
 * BeginAsOwner switches to a query's owner, as REFRESH MATERIALIZED VIEW
 * does: the user's code in the query (functions, operators, the tables it
 * reads and writes) runs with the owner's rights and under the owner's
 * pinned search_path, whoever triggers the batch.  When the current user
 * is someone else, the operation is also security-restricted, so that the
 * owner's code cannot change the session that runs it.  EndAsOwner undoes
 * it, and every setting the batch changed; an error undoes it too, with
 * the (sub)transaction.
 */
void
BeginAsOwner(Oid owner, const char *search_path, OwnerContext *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	if (owner != saved->userid)
		SetUserIdAndSecContext(owner, saved->sec_context |
							   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	saved->nestlevel = PushSearchPath(search_path);
}

void
EndAsOwner(OwnerContext *saved)
{
	/* as REFRESH MATERIALIZED VIEW: settings the owner's code made go too */
	AtEOXact_GUC(false, saved->nestlevel);
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * RelationQualifiedName returns "schema"."name" of a relation, quoted.
 */
char *
RelationQualifiedName(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}

/*
 * CatalogOwner returns the role that owns the extension's catalog tables
 * (the role that created the extension).
 */
Oid
CatalogOwner(void)
{
	Oid			relid = get_relname_relid("queries", get_namespace_oid(STREAMING_SCHEMA, false));
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		elog(ERROR, "catalog table %s.queries is missing", STREAMING_SCHEMA);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * The plans of CatalogExecute's statements, prepared once per process and
 * kept: a worker runs the same few dozen at every batch and every look.
 * PostgreSQL's plan cache analyses and plans a kept statement again when
 * what it reads changes (DROP or ALTER EXTENSION), under the search_path
 * it was prepared with, which CatalogExecute always sets the same.  Keyed
 * by a hash of the text and the argument types; a statement whose key is
 * taken by another, or beyond CATALOG_PLANS, runs unprepared, as before.
 */
#define CATALOG_PLANS 256

typedef struct CatalogPlan
{
	uint32		key;
	char	   *sql;
	int			nargs;
	Oid		   *argtypes;
	SPIPlanPtr	plan;			/* NULL until prepared */
} CatalogPlan;

static HTAB *catalog_plans = NULL;

static uint32
catalog_plan_key(const char *sql, int nargs, const Oid *argtypes)
{
	uint32		key = hash_bytes((const unsigned char *) sql, strlen(sql));

	if (nargs > 0)
		key = hash_combine(key, hash_bytes((const unsigned char *) argtypes, sizeof(Oid) * nargs));
	return key;
}

/* the kept plan of a statement, prepared now if need be; NULL: run it unprepared */
static SPIPlanPtr
catalog_plan(const char *sql, int nargs, Oid *argtypes)
{
	uint32		key = catalog_plan_key(sql, nargs, argtypes);
	CatalogPlan *entry;
	bool		found;
	SPIPlanPtr	plan;

	if (catalog_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(CatalogPlan);
		ctl.hcxt = TopMemoryContext;
		catalog_plans = hash_create("streaming catalog plans", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(catalog_plans, &key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		if (entry->plan != NULL && entry->nargs == nargs && strcmp(entry->sql, sql) == 0 &&
			(nargs == 0 || memcmp(entry->argtypes, argtypes, sizeof(Oid) * nargs) == 0))
			return entry->plan;
		return NULL;
	}
	if (hash_get_num_entries(catalog_plans) >= CATALOG_PLANS)
		return NULL;

	/* prepared first: an error (a catalog without the table) leaves no entry */
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	entry = hash_search(catalog_plans, &key, HASH_ENTER, &found);
	entry->sql = MemoryContextStrdup(TopMemoryContext, sql);
	entry->nargs = nargs;
	entry->argtypes = NULL;
	if (nargs > 0)
	{
		entry->argtypes = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * nargs);
		memcpy(entry->argtypes, argtypes, sizeof(Oid) * nargs);
	}
	entry->plan = plan;
	return plan;
}

/*
 * CatalogExecute runs one statement on the extension's catalog (schema
 * streaming) as the catalog's owner, with search_path set to
 * "pg_catalog, pg_temp" (see PushCatalogSearchPath), from a plan it
 * keeps (catalog_plan).
 * Every role may read the catalog, but only the extension's functions write
 * it, after checking that the caller owns what it changes; a query's worker,
 * which runs as the query's owner, records its batches the same way.  The
 * statements are the extension's own, with every name qualified, so nothing
 * the calling role defines can run with the owner's rights.  Call it between
 * SPI_connect and SPI_finish.
 */
int
CatalogExecute(const char *sql, int nargs, Oid *argtypes, Datum *values,
			   const char *nulls, bool read_only, long count)
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
	int			rc;
	SPIPlanPtr	plan;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(CatalogOwner(), save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	nestlevel = PushCatalogSearchPath();
	plan = catalog_plan(sql, nargs, argtypes);
	if (plan != NULL)
		rc = SPI_execute_plan(plan, values, nulls, read_only, count);
	else
		rc = SPI_execute_with_args(sql, nargs, argtypes, values, nulls, read_only, count);
	PopCatalogSearchPath(nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return rc;
}

/* what WalkViewReads carries through the tree */
typedef struct ViewReads
{
	ViewReadVisit visit;
	void	   *arg;
	List	   *views;			/* the views seen, each walked once */
} ViewReads;

static bool
view_reads_walker(Node *node, ViewReads *vr)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;
		Relation	view;
		Query	   *query;
		bool		found;

		if (rte->rtekind != RTE_RELATION)
			return false;
		if (vr->visit(rte->relid, NULL, vr->arg))
			return true;
		/* a view's rule names the view itself too (OLD, NEW) */
		if (rte->relkind != RELKIND_VIEW || list_member_oid(vr->views, rte->relid))
			return false;
		check_stack_depth();
		vr->views = lappend_oid(vr->views, rte->relid);
		/* locked as the statement that reads it will lock it */
		view = relation_open(rte->relid, AccessShareLock);
		query = get_view_query(view);
		found = vr->visit(rte->relid, query, vr->arg) || view_reads_walker((Node *) query, vr);
		relation_close(view, NoLock);
		return found;
	}
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, view_reads_walker, vr, QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, view_reads_walker, vr);
}

/*
 * WalkViewReads calls visit(relid, NULL, arg) for the view and for every
 * relation it reads, and visit(relid, query, arg) with the query of each
 * view among them, through the views those read in turn, each once; it
 * stops at the first visit that returns true, and returns whether one
 * did.  The views stay locked as a statement reading them would lock them.
 */
bool
WalkViewReads(Oid view, ViewReadVisit visit, void *arg)
{
	RangeTblEntry rte;
	ViewReads	vr;

	memset(&rte, 0, sizeof(rte));
	rte.type = T_RangeTblEntry;
	rte.rtekind = RTE_RELATION;
	rte.relkind = RELKIND_VIEW;
	rte.relid = view;
	vr.visit = visit;
	vr.arg = arg;
	vr.views = NIL;
	return view_reads_walker((Node *) &rte, &vr);
}

/*
 * ParseQualifiedName splits a possibly schema-qualified name, as SQL
 * writes it, into its parts; what names the object in the error.
 */
List *
ParseQualifiedName(const char *name, const char *what)
{
	MemoryContext ctx = CurrentMemoryContext;
	List	   *volatile names = NIL;

	PG_TRY();
	{
#if PG_VERSION_NUM >= 160000
		names = stringToQualifiedNameList(name, NULL);
#else
		names = stringToQualifiedNameList(name);
#endif
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_INVALID_NAME)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid %s name \"%s\"", what, name),
				 errhint("A name is an SQL identifier, schema-qualified or not; write one with spaces or capitals in double quotes, as in SQL: '\"Sales Report\"'.")));
	}
	PG_END_TRY();
	return names;
}

/*
 * LockStreamingExtension tells whether the extension is installed in this
 * database and, if so, keeps it so until the transaction ends: it takes
 * the lock on the extension that DROP EXTENSION takes exclusively, so
 * that a worker's scan or batch never meets a catalog half dropped (the
 * drop waits for it, or it sees the extension gone).
 */
bool
LockStreamingExtension(void)
{
	Oid			extoid = get_extension_oid("streaming", true);

	if (!OidIsValid(extoid))
		return false;
	/* LockDatabaseObject takes in the invalidations it waited for */
	LockDatabaseObject(ExtensionRelationId, extoid, 0, AccessShareLock);
	return OidIsValid(get_extension_oid("streaming", true));
}
