/*-------------------------------------------------------------------------
 *
 * commands.c
 *	  streaming.create_query() and drop_query(): a query's definition
 *	  (query.c) together with its worker (worker.c), so that the definition
 *	  module starts nothing and the batch, query and worker modules depend
 *	  on each other in one direction only.  Also what DROP FOREIGN TABLE
 *	  (and DROP SCHEMA) of a source does to the queries that read it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "query.h"
#include "source.h"
#include "streaming.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(streaming_create_query);
PG_FUNCTION_INFO_V1(streaming_drop_query);

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

	result = QueryCreate(&args);
	if (start)
		StartQuery(args.name);
	PG_RETURN_OID(result);
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
	QueryDef   *q = QueryDefLoad(name, false, if_exists);

	if (q == NULL)
	{
		ereport(NOTICE,
				(errmsg("continuous query \"%s\" does not exist, skipping", name)));
		PG_RETURN_VOID();
	}
	QueryCheckOwner(q);
	StopQuery(name, false);
	QueryDrop(q, keep_result);
	/* its table sources' replication slots, when this transaction commits */
	TableSourceDropSlots(q->id, q->plan->sources);
	PG_RETURN_VOID();
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
		QueryDef   *q = QueryDefLoad(name, false, false);

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
