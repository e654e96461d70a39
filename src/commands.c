/*-------------------------------------------------------------------------
 *
 * commands.c
 *	  streaming.create_query() and drop_query(): a query's definition
 *	  (query.c) together with its worker (worker.c), so that the definition
 *	  module starts nothing and the batch, query and worker modules depend
 *	  on each other in one direction only; alter_query() and reset_query()
 *	  (alter.c), which restart the worker when it must pick up the change.
 *	  Also what DROP FOREIGN TABLE (and DROP SCHEMA) of a source does to the
 *	  queries that read it, and how a worker notices a new extension version.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "query.h"
#include "slices.h"
#include "source.h"
#include "streaming.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(streaming_create_query);
PG_FUNCTION_INFO_V1(streaming_drop_query);
PG_FUNCTION_INFO_V1(streaming_alter_query);
PG_FUNCTION_INFO_V1(streaming_reset_query);

/*
 * streaming_create_query implements streaming.create_query(): creates the
 * query and, unless start => false or streaming.autostart is off, starts
 * its worker.
 */
Datum
streaming_create_query(PG_FUNCTION_ARGS)
{
	QueryCreateArgs args;
	bool		start;
	Oid			result;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("name, query, output_mode and trigger must not be null")));
	args.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	args.sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	args.mode = OutputModeFromString(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	args.trigger = text_to_cstring(PG_GETARG_TEXT_PP(3));
	args.event_time = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	args.watermark = PG_ARGISNULL(5) ? NULL : PG_GETARG_INTERVAL_P(5);
	args.sink = PG_ARGISNULL(6) ? "table" : text_to_cstring(PG_GETARG_TEXT_PP(6));
	args.sink_options = PG_ARGISNULL(7) ? NULL : PG_GETARG_JSONB_P(7);
	args.on_error = PG_ARGISNULL(8) ? "dead_letter" : text_to_cstring(PG_GETARG_TEXT_PP(8));
	start = (PG_ARGISNULL(9) ? true : PG_GETARG_BOOL(9)) && streaming_autostart;
	args.enabled = start;
	args.parallelism = PG_NARGS() < 11 || PG_ARGISNULL(10) ? 1 : PG_GETARG_INT32(10);
	SlicesCheck(args.name, NIL, "0", args.parallelism);	/* its range, before the work */

	result = QueryCreate(&args);
	if (args.parallelism != 1)
	{
		/* the query's sources are known now */
		QueryDef   *q = QueryDefLoad(args.name, QUERY_LOCK_BATCH, false);

		SlicesCheck(q->name, q->plan->sources, q->trigger, args.parallelism);
		SlicesSet(q->id, args.parallelism);
	}
	if (start)
		StartQuery(args.name);
	PG_RETURN_OID(result);
}

/*
 * check_result_not_followed refuses to drop the result table of a query
 * that a table source follows (a chained query reads it): the error names
 * the source and a query that reads it, which plain DROP TABLE's
 * dependency error would leave to be found.
 */
static void
check_result_not_followed(QueryDef *q)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(q->result_table)};

	SPI_connect();
	if (CatalogExecute("SELECT d.objid, (SELECT q.name FROM streaming.queries q "
					   "WHERE d.objid OPERATOR(pg_catalog.=) ANY (q.sources) ORDER BY q.name LIMIT 1) "
					   "FROM pg_catalog.pg_depend d "
					   "WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
					   "AND d.refobjid OPERATOR(pg_catalog.=) $1 "
					   "AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
					   "ORDER BY d.objid",
					   1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_depend");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			source = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		char	   *reader = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (!IsStreamingSource(source))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop continuous query \"%s\" because source \"%s\" follows its result table",
						q->name, get_rel_name(source)),
				 reader ? errdetail("Continuous query \"%s\" reads source \"%s\".", reader, get_rel_name(source)) : 0,
				 errhint("Drop the queries that read the source and the source first, or keep the result table with streaming.drop_query(name, keep_result => true).")));
	}
	SPI_finish();
}

/*
 * streaming_drop_query implements streaming.drop_query(name, if_exists,
 * keep_result): ends the query's worker (it may hold the query's row lock
 * in a batch), then drops the query.
 */
Datum
streaming_drop_query(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		if_exists = PG_GETARG_BOOL(1);
	bool		keep_result = PG_GETARG_BOOL(2);
	QueryDef   *q = QueryDefLoad(name, QUERY_LOCK_NONE, if_exists);

	if (q == NULL)
	{
		ereport(NOTICE,
				(errmsg("continuous query \"%s\" does not exist, skipping", name)));
		PG_RETURN_VOID();
	}
	QueryCheckOwner(q);
	if (!keep_result && q->sink.table == NULL)
		check_result_not_followed(q);
	StopQuery(name, false);
	QueryDrop(q, keep_result);
	/* its table sources' replication slots, when this transaction commits */
	TableSourceDropSlots(q->id, q->plan->sources);
	PG_RETURN_VOID();
}

/*
 * query_is_running tells whether a query is enabled and meant to have a
 * worker (not failed, not finished): after its worker is ended to pick up
 * a change, it is started again.
 */
static bool
query_is_running(const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	bool		running;

	SPI_connect();
	if (CatalogExecute("SELECT 1 FROM streaming.queries WHERE name OPERATOR(pg_catalog.=) $1 "
					   "AND enabled AND status OPERATOR(pg_catalog.=) 'running'",
					   1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	running = SPI_processed == 1;
	SPI_finish();
	return running;
}

/*
 * streaming_alter_query implements streaming.alter_query(name, trigger,
 * watermark, watermark_at, on_error, query, output_mode, sink_options):
 * changes them in place, keeping the query's state and offsets (a new
 * SELECT must keep the same state: its result is computed again from it,
 * QueryAlterSelect; the output mode goes between update and complete,
 * QueryAlterMode; sink options merge into the query's).  It takes the lock
 * a batch takes, so it waits for a batch in progress (run() in another
 * session) and the next batch, which loads the query under that lock,
 * sees the change.  A new trigger or SELECT has the pool let go of the
 * query (a batch in progress is cancelled, losing nothing) and take it
 * afresh.
 */
Datum
streaming_alter_query(PG_FUNCTION_ARGS)
{
	char	   *name;
	QueryAlterArgs a;
	TimestampTz watermark_at = PG_ARGISNULL(3) ? 0 : PG_GETARG_TIMESTAMPTZ(3);
	QueryDef   *q;
	bool		restart = false;

	memset(&a, 0, sizeof(a));
	a.trigger = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	a.watermark = PG_ARGISNULL(2) ? NULL : PG_GETARG_INTERVAL_P(2);
	a.watermark_at = PG_ARGISNULL(3) ? NULL : &watermark_at;
	a.on_error = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	/* the catalog of 0.3 has no argument query, output_mode, sink_options */
	a.query = PG_NARGS() < 6 || PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5));
	a.has_mode = PG_NARGS() >= 7 && !PG_ARGISNULL(6);
	if (a.has_mode)
		a.mode = OutputModeFromString(text_to_cstring(PG_GETARG_TEXT_PP(6)));
	a.sink_options = PG_NARGS() < 8 || PG_ARGISNULL(7) ? NULL : PG_GETARG_JSONB_P(7);
	a.parallelism = PG_NARGS() < 9 || PG_ARGISNULL(8) ? 0 : PG_GETARG_INT32(8);
	if (PG_NARGS() >= 9 && !PG_ARGISNULL(8))
		SlicesCheck(PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0)), NIL, "0", a.parallelism);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	q = QueryDefLoad(name, QUERY_LOCK_NONE, false);
	QueryCheckOwner(q);
	if (a.trigger == NULL && a.watermark == NULL && a.watermark_at == NULL && a.on_error == NULL &&
		a.query == NULL && !a.has_mode && a.sink_options == NULL && a.parallelism == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nothing to alter in continuous query \"%s\"", name),
				 errhint("Give at least one of trigger, watermark, watermark_at, on_error, query, output_mode, sink_options and parallelism.")));
	(void) QueryAlterCheck(q, &a, false);
	/* a new trigger, SELECT or parallelism: the workers take the query afresh */
	if ((a.trigger != NULL && strcmp(a.trigger, q->trigger) != 0) || a.query != NULL ||
		(a.parallelism != 0 && a.parallelism != q->parallelism))
	{
		restart = query_is_running(name);
		if (restart)
			StopQuery(name, false);
	}
	/* the lock a batch takes: no batch runs meanwhile */
	q = QueryDefLoad(name, QUERY_LOCK_BATCH, false);
	QueryAlter(q, &a);
	if (a.query != NULL)
		QueryAlterSelect(q, a.query, a.has_mode ? a.mode : q->mode);
	else if (a.has_mode)
		QueryAlterMode(q, a.mode);
	if (a.parallelism != 0)
		SlicesSet(q->id, a.parallelism);
	/* the trigger, sources and parallelism as they are now go together */
	if (a.parallelism != 0 || a.trigger != NULL || a.query != NULL)
	{
		q = QueryDefLoad(name, QUERY_LOCK_NONE, false);
		SlicesCheck(q->name, q->plan->sources, q->trigger, q->parallelism);
	}
	if (restart)
		StartQuery(name);
	PG_RETURN_VOID();
}

/*
 * reset_start reads the start_from of reset_query(): a timestamptz, a
 * jsonb of offsets, or a text that is 'earliest', an object of offsets or
 * a time.  False when it is null: where a new query would start.
 */
static bool
reset_start(FunctionCallInfo fcinfo, SourceStart *start, Jsonb **given)
{
	Oid			type = PG_NARGS() > 1 ? get_fn_expr_argtype(fcinfo->flinfo, 1) : InvalidOid;
	char	   *str;

	memset(start, 0, sizeof(*start));
	*given = NULL;
	if (PG_NARGS() < 2 || PG_ARGISNULL(1))
		return false;
	if (type == TIMESTAMPTZOID)
	{
		start->kind = SOURCE_START_TIME;
		start->time = PG_GETARG_TIMESTAMPTZ(1);
		return true;
	}
	if (type == JSONBOID)
	{
		start->kind = SOURCE_START_OFFSETS;
		*given = PG_GETARG_JSONB_P(1);
		return true;
	}
	str = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (pg_strcasecmp(str, "earliest") == 0)
	{
		start->kind = SOURCE_START_EARLIEST;
		return true;
	}
	if (str[strspn(str, " \t\r\n")] == '{')
	{
		start->kind = SOURCE_START_OFFSETS;
		*given = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(str)));
		return true;
	}
	PG_TRY();
	{
		start->time = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(str),
															  ObjectIdGetDatum(InvalidOid),
															  Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid start_from \"%s\"", str),
				 errhint("Give 'earliest', a timestamptz, or the offsets as a JSON object such as '{\"<partition>\": <offset>}'.")));
	}
	PG_END_TRY();
	if (TIMESTAMP_NOT_FINITE(start->time))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid start_from \"%s\"", str),
				 errhint("Give a finite time, or 'earliest'.")));
	start->kind = SOURCE_START_TIME;
	return true;
}

/*
 * streaming_reset_query implements streaming.reset_query(name
 * [, start_from]): has the pool let go of the query (cancelling a batch in
 * progress), empties its state and result and forgets its offsets,
 * watermark and dead letters (QueryReset), under the lock a batch takes,
 * and has the pool take it again if the query was running.  Its next
 * batches read its sources again from start_from: where a new query would
 * start when it is null, else 'earliest', a time or offsets.
 */
Datum
streaming_reset_query(PG_FUNCTION_ARGS)
{
	char	   *name;
	QueryDef   *q;
	bool		running;
	SourceStart start;
	Jsonb	   *given;
	bool		has_start;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	q = QueryDefLoad(name, QUERY_LOCK_NONE, false);
	QueryCheckOwner(q);
	has_start = reset_start(fcinfo, &start, &given);
	running = query_is_running(name);
	StopQuery(name, false);
	q = QueryDefLoad(name, QUERY_LOCK_BATCH, false);
	QueryReset(q, has_start ? &start : NULL, given);
	if (running)
		StartQuery(name);
	PG_RETURN_VOID();
}

/*
 * ExtensionVersionChanged tells a long-lived process, such as a query
 * worker, whether the extension's version (pg_extension.extversion) has
 * changed since it first asked, or the extension was dropped.  Its library
 * is the one it loaded when it started: after ALTER EXTENSION streaming
 * UPDATE that code may not know the new catalog, so the worker should exit
 * between batches, when this returns true, and be started again on the
 * library installed with the new version.  The first call remembers the
 * version and returns false.  It must be called in a transaction; it costs
 * one index lookup in pg_extension.
 */
bool
ExtensionVersionChanged(void)
{
	static char *first_version = NULL;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	char	   *version = NULL;
	bool		changed;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("streaming"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (first_version == NULL)
	{
		if (version == NULL)
			return true;
		first_version = MemoryContextStrdup(TopMemoryContext, version);
		return false;
	}
	changed = version == NULL || strcmp(version, first_version) != 0;
	return changed;
}

/*
 * drop_queries_of_source runs before a source is dropped.  A query without
 * tables of its own (a stateless query into an existing table) has nothing
 * in pg_depend that makes a plain DROP fail, so that DROP is refused here;
 * CASCADE drops every query that reads the source, as drop_query() would,
 * and first stops its worker, which would otherwise fail on the missing
 * source.  The caller checked that the role may drop the source (others
 * get PostgreSQL's own error); it must also be allowed to drop each query.
 */
static void
drop_queries_of_source(Oid relid, DropBehavior behavior)
{
	ListCell   *lc;

	foreach(lc, QueriesReadingSource(relid))
	{
		char	   *name = lfirst(lc);
		QueryDef   *q = QueryDefLoad(name, QUERY_LOCK_NONE, false);

		if (behavior != DROP_CASCADE)
		{
			/* the query's own tables make PostgreSQL refuse, with their names */
			if (q->sink.table == NULL || OidIsValid(q->state_table))
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot drop source \"%s\" because continuous query \"%s\" reads it",
							get_rel_name(relid), name),
					 errhint("Use DROP ... CASCADE to drop the queries that read it too, or drop the query first with streaming.drop_query().")));
		}
		QueryCheckOwner(q);
		ereport(NOTICE,
				(errmsg("drop cascades to continuous query \"%s\"", name)));
		StopQuery(name, false);
		QueryDrop(q, false);
	}
}

/*
 * StreamingBeforeDrop is called by the utility hook before a DROP FOREIGN
 * TABLE or DROP SCHEMA: see drop_queries_of_source.
 */
void
StreamingBeforeDrop(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_FOREIGN_TABLE && stmt->removeType != OBJECT_SCHEMA)
		return;
	if (!OidIsValid(get_extension_oid("streaming", true)))
		return;
	foreach(lc, stmt->objects)
	{
		if (stmt->removeType == OBJECT_FOREIGN_TABLE)
		{
			RangeVar   *rv = makeRangeVarFromNameList((List *) lfirst(lc));
			Oid			relid = RangeVarGetRelid(rv, NoLock, true);

#if PG_VERSION_NUM >= 160000
			if (OidIsValid(relid) && IsStreamingSource(relid) &&
				object_ownercheck(RelationRelationId, relid, GetUserId()))
#else
			if (OidIsValid(relid) && IsStreamingSource(relid) &&
				pg_class_ownercheck(relid, GetUserId()))
#endif
				drop_queries_of_source(relid, stmt->behavior);
		}
		else
		{
			Oid			nspid = get_namespace_oid(strVal(lfirst(lc)), true);
			ListCell   *sc;

			/* a schema goes only with CASCADE: then so do its sources' queries */
			if (!OidIsValid(nspid) || stmt->behavior != DROP_CASCADE)
				continue;
#if PG_VERSION_NUM >= 160000
			if (!object_ownercheck(NamespaceRelationId, nspid, GetUserId()))
#else
			if (!pg_namespace_ownercheck(nspid, GetUserId()))
#endif
				continue;
			foreach(sc, SourcesInNamespace(nspid))
				drop_queries_of_source(lfirst_oid(sc), DROP_CASCADE);
		}
	}
}
