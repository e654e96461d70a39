/*-------------------------------------------------------------------------
 *
 * query.c
 *	  Continuous query definitions: creating and dropping a query's tables
 *	  and catalog row, loading it, and streaming.explain().  Nothing here
 *	  starts or stops a worker (commands.c does, through worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_index.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/plancache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "formats/event_time.h"
#include "operators/distinct_agg.h"
#include "operators/retract.h"
#include "operators/stream_join.h"
#include "operators/topn.h"
#include "operators/window_state.h"
#include "planner.h"
#include "sinks/sink.h"
#include "partial_agg.h"
#include "query.h"
#include "slices.h"
#include "source.h"
#include "streaming.h"

PG_FUNCTION_INFO_V1(streaming_explain);

#define QUERY_COLUMNS \
	"name, id, query, output_mode, trigger, on_error, result_table, " \
	"state_table, plan, last_batch_id, last_progress_at, state_rows, " \
	"event_time, pg_catalog.extract('epoch', watermark_delay) OPERATOR(pg_catalog.*) 1000000::pg_catalog.numeric, " \
	"watermark, sink, sink_options, sources::pg_catalog.oid[], enabled, owner::pg_catalog.oid, "

/*
 * catalog_has_search_path tells whether the catalog has the column that
 * version 0.2 added: until ALTER EXTENSION streaming UPDATE, this library
 * serves a catalog of version 0.1.
 */
static bool
catalog_has_search_path(void)
{
	Oid			relid = get_relname_relid("queries", get_namespace_oid(STREAMING_SCHEMA, false));

	return get_attnum(relid, "search_path") != InvalidAttrNumber;
}

/*
 * QueryDefLoad reads a query's catalog row, and locks it until the
 * transaction ends as lock says.  QUERY_LOCK_BATCH is what keeps two
 * runners of one query from processing the same input; the slices of a
 * query with parallelism lock as slices.c says.
 */
QueryDef *
QueryDefLoad(const char *name, QueryLock lock, bool missing_ok)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	MemoryContext caller = CurrentMemoryContext;
	QueryDef   *q = NULL;
	char	   *sql;
	static const char *const locks[] = {"", " FOR UPDATE", " FOR KEY SHARE"};

	sql = psprintf("SELECT " QUERY_COLUMNS "%s, %s, %s FROM streaming.queries WHERE name OPERATOR(pg_catalog.=) $1%s",
				   catalog_has_search_path() ? "search_path" : "NULL::pg_catalog.text",
				   CatalogHasOperatingColumns() ? "closed_until" : "NULL::pg_catalog.timestamptz",
				   CatalogHasSlices() ? "parallelism" : "1",
				   locks[lock]);
	/* what waits for every batch waits for the slices' first (slices.c) */
	if (lock == QUERY_LOCK_BATCH && CatalogHasSlices())
	{
		SPI_connect();
		if (CatalogExecute("SELECT 1 FROM streaming.query_slices s, streaming.queries q "
						   "WHERE q.name OPERATOR(pg_catalog.=) $1 AND s.query OPERATOR(pg_catalog.=) q.id "
						   "ORDER BY s.slice FOR UPDATE OF s",
						   1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock streaming.query_slices");
		SPI_finish();
	}
	SPI_connect();
	if (CatalogExecute(sql, 1, argtypes, args, NULL, false, 1) < 0)
		elog(ERROR, "could not read streaming.queries");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		MemoryContext old = MemoryContextSwitchTo(caller);

		q = palloc0(sizeof(QueryDef));
		q->name = SPI_getvalue(tup, desc, 1);
		q->id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		q->query = SPI_getvalue(tup, desc, 3);
		q->mode = OutputModeFromString(SPI_getvalue(tup, desc, 4));
		q->trigger = SPI_getvalue(tup, desc, 5);
		q->on_error = SPI_getvalue(tup, desc, 6);
		d = SPI_getbinval(tup, desc, 7, &isnull);
		q->result_table = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 8, &isnull);
		q->state_table = isnull ? InvalidOid : DatumGetObjectId(d);
		q->plan = ContinuousPlanFromJsonb(DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 9, &isnull)));
		q->last_batch_id = DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull));
		d = SPI_getbinval(tup, desc, 11, &isnull);
		q->last_progress_at = isnull ? 0 : DatumGetTimestampTz(d);
		q->state_rows = DatumGetInt64(SPI_getbinval(tup, desc, 12, &isnull));
		q->event_time = SPI_getvalue(tup, desc, 13);
		d = SPI_getbinval(tup, desc, 14, &isnull);
		/* every source may have a delay of its own (EventTimeSpecParse) */
		q->has_watermark = !isnull || q->event_time != NULL;
		if (!isnull)
			q->watermark_delay = DatumGetInt64(DirectFunctionCall1(numeric_int8, d));
		d = SPI_getbinval(tup, desc, 15, &isnull);
		q->watermark_valid = !isnull;
		q->watermark = isnull ? 0 : DatumGetTimestampTz(d);
		q->sink_name = SPI_getvalue(tup, desc, 16);
		q->sink_options = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 17, &isnull));
		SinkParseOptions(q->sink_name, q->sink_options, q->name, &q->sink);
		q->enabled = DatumGetBool(SPI_getbinval(tup, desc, 19, &isnull));
		q->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 20, &isnull));
		/* before version 0.2, statements were stored with unqualified operators */
		q->search_path = SPI_getvalue(tup, desc, 21);
		if (q->search_path == NULL)
			q->search_path = pstrdup(CATALOG_SEARCH_PATH);
		d = SPI_getbinval(tup, desc, 22, &isnull);
		q->closed_valid = !isnull;
		q->closed_until = isnull ? 0 : DatumGetTimestampTz(d);
		q->parallelism = DatumGetInt32(SPI_getbinval(tup, desc, 23, &isnull));
		/* the catalog's regclass[] survives a dump and restore; OIDs do not */
		{
			ArrayType  *arr = DatumGetArrayTypePCopy(SPI_getbinval(tup, desc, 18, &isnull));
			Datum	   *elems;
			int			nelems;

			deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
							  &elems, NULL, &nelems);
			q->plan->sources = NIL;
			for (int i = 0; i < nelems; i++)
				q->plan->sources = lappend_oid(q->plan->sources, DatumGetObjectId(elems[i]));
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	if (q == NULL && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("continuous query \"%s\" does not exist", name),
				 errhint("See streaming.queries for the queries that exist.")));
	return q;
}

/*
 * QueryDefRefresh takes the row of a query whose batch of one slice has
 * decoded its input FOR NO KEY UPDATE (slices.c) and reads again what the
 * other slices' batches committed meanwhile: the last batch id, counts,
 * the watermark and what it closed.  Only those columns: the definition
 * cannot change while the batch holds the row FOR KEY SHARE.
 */
void
QueryDefRefresh(QueryDef *q)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(q->id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;

	SPI_connect();
	if (CatalogExecute("SELECT last_batch_id, last_progress_at, state_rows, watermark, closed_until "
					   "FROM streaming.queries WHERE id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
					   1, argtypes, args, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not lock continuous query \"%s\"", q->name);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	q->last_batch_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	d = SPI_getbinval(tup, desc, 2, &isnull);
	q->last_progress_at = isnull ? 0 : DatumGetTimestampTz(d);
	q->state_rows = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
	d = SPI_getbinval(tup, desc, 4, &isnull);
	q->watermark_valid = !isnull;
	q->watermark = isnull ? 0 : DatumGetTimestampTz(d);
	d = SPI_getbinval(tup, desc, 5, &isnull);
	q->closed_valid = !isnull;
	q->closed_until = isnull ? 0 : DatumGetTimestampTz(d);
	SPI_finish();
}

/*
 * file_sink_path_free refuses a directory that another query's file sink
 * writes: their part-<batch id> files would overwrite each other.
 */
static void
file_sink_path_free(const char *path)
{
	char	   *canonical = pstrdup(path);

	canonicalize_path(canonical);
	SPI_connect();
	/* every role's queries: rows of others are not visible to the caller */
	if (CatalogExecute("SELECT name, sink_options OPERATOR(pg_catalog.->>) 'path' FROM streaming.queries "
					   "WHERE sink OPERATOR(pg_catalog.=) 'file'", 0, NULL, NULL, NULL,
					   true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *other = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		if (other == NULL)
			continue;
		canonicalize_path(other);
		if (strcmp(other, canonical) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("directory \"%s\" is the file sink of continuous query \"%s\"", path,
							SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)),
					 errhint("Give each query's file sink a directory of its own.")));
	}
	SPI_finish();
}

/*
 * QueryCheckOwner refuses a role that does not have the privileges of the
 * query's owner: only they may run, start, stop or drop it.
 */
void
QueryCheckOwner(QueryDef *q)
{
	if (!has_privs_of_role(GetUserId(), q->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of continuous query \"%s\"", q->name),
				 errdetail("The query belongs to role \"%s\".", GetUserNameFromId(q->owner, false))));
}

/*
 * QueryCheckRunnable raises the error that would fail the query's next
 * batch when something it needs was dropped: its source (DROP SCHEMA ...
 * CASCADE, say, which takes a source without its queries), its result or
 * its state table.  start() calls it, so that starting a query that cannot
 * run is an error rather than a worker that fails at once; every batch
 * calls it too.
 */
void
QueryCheckRunnable(QueryDef *q)
{
	ListCell   *lc;
	bool		dropped = q->plan->sources == NIL;

	foreach(lc, q->plan->sources)
		dropped |= !IsStreamingSource(lfirst_oid(lc));
	if (dropped)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("continuous query \"%s\" cannot run: its source was dropped", q->name),
				 errhint("Drop the query with streaming.drop_query(). DROP FOREIGN TABLE ... CASCADE on a source drops the queries that read it.")));
	if (get_rel_name(q->result_table) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("continuous query \"%s\" cannot run: its result table was dropped", q->name),
				 errhint("Drop the query with streaming.drop_query() and create it again.")));
	if (q->plan->shape != SHAPE_STATELESS && get_rel_name(q->state_table) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("continuous query \"%s\" cannot run: its state table was dropped", q->name),
				 errhint("Drop the query with streaming.drop_query() and create it again.")));
	if (q->plan->input != NULL &&
		!OidIsValid(RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(q->plan->input, "view")),
									 NoLock, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("continuous query \"%s\" cannot run: its input view %s was dropped", q->name, q->plan->input),
				 errdetail("It goes with a table or function the query uses when that is dropped with CASCADE."),
				 errhint("Drop the query with streaming.drop_query() and create it again.")));
}

/*
 * QueriesReadingSource lists the names of the queries, of every role, that
 * read a source.
 */
List *
QueriesReadingSource(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	MemoryContext caller = CurrentMemoryContext;
	List	   *names = NIL;

	SPI_connect();
	if (CatalogExecute("SELECT name FROM streaming.queries "
					   "WHERE $1::pg_catalog.regclass OPERATOR(pg_catalog.=) ANY (sources) ORDER BY name",
					   1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(caller);

		names = lappend(names, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return names;
}

static void
exec_ddl(const char *sql)
{
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not execute: %s", sql);
}

static void
catalog_ddl(const char *sql)
{
	if (CatalogExecute(sql, 0, NULL, NULL, NULL, false, 0) < 0)
		elog(ERROR, "could not execute: %s", sql);
}

static char *
quoted_columns(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 quote_identifier(lfirst(lc)));
	return buf.data;
}

/* the longest trigger interval: a worker waits at most this long */
#define MAX_TRIGGER_USECS	USECS_PER_DAY

/*
 * QueryCheckTrigger validates a trigger: an interval ('0' = as fast as
 * possible, else from a millisecond, the resolution of a worker's wait,
 * 24 hours), 'once' or 'available_now'.
 */
void
QueryCheckTrigger(const char *trigger)
{
	if (strcmp(trigger, "once") == 0 || strcmp(trigger, "available_now") == 0)
		return;
	PG_TRY();
	{
		Interval   *iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
															   CStringGetDatum(trigger),
															   ObjectIdGetDatum(InvalidOid),
															   Int32GetDatum(-1)));

		int64		usecs = iv->time;

		if (iv->month != 0 || iv->day != 0 || usecs < 0 ||
			(usecs > 0 && usecs < 1000) || usecs > MAX_TRIGGER_USECS)
			elog(ERROR, "bad trigger");
	}
	PG_CATCH();
	{
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid trigger \"%s\"", trigger),
				 errdetail("A trigger interval is 0, or from 1 millisecond to 24 hours, written without days or months."),
				 errhint("Use an interval such as '0' or '10 seconds', 'once' or 'available_now'.")));
	}
	PG_END_TRY();
}

/*
 * QueryCheckOnError validates what a query does with input it cannot decode.
 */
void
QueryCheckOnError(const char *on_error)
{
	if (strcmp(on_error, "dead_letter") != 0 && strcmp(on_error, "skip") != 0 &&
		strcmp(on_error, "fail") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for on_error: \"%s\"", on_error),
				 errhint("Valid values are dead_letter, skip and fail.")));
}

/*
 * QueryCheckWatermarkDelay validates a watermark delay: the watermark is
 * the largest event time seen minus it.
 */
void
QueryCheckWatermarkDelay(Interval *delay)
{
	int64		usecs;

	if (delay->month != 0 || delay->day < 0 || delay->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("watermark delay must be a non-negative interval without months"),
				 errhint("Use e.g. '10 seconds' or '1 hour'.")));
	/* every batch reads it in microseconds */
	if (!EventTimeIntervalUsecs(delay, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("watermark delay is out of range"),
				 errdetail("A delay is at most 9223372036854775807 microseconds (about 292,000 years)."),
				 errhint("Use e.g. '10 seconds' or '1 hour'.")));
}

/*
 * QueryCheckSinkKey checks the column that keys the messages of a Kafka
 * sink: one of the query's result columns.
 */
void
QueryCheckSinkKey(ContinuousPlan *plan, const SinkOptions *sink)
{
	bool		found = false;
	ListCell   *lc;

	if (sink->kind != SINK_KAFKA || sink->key == NULL)
		return;
	foreach(lc, plan->result_columns)
		found |= strcmp((char *) lfirst(lc), sink->key) == 0;
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("the key column \"%s\" of the kafka sink is not a column of the query", sink->key),
				 errhint("Name one of the query's result columns, or leave out \"key\".")));
}

/*
 * record_depends_on_sources makes a table derived from the sources depend
 * on them, so that DROP of a source that a query reads is refused.
 */
static void
record_depends_on_sources(Oid relid, List *sources)
{
	ObjectAddress depender;
	ListCell   *lc;

	ObjectAddressSet(depender, RelationRelationId, relid);
	foreach(lc, sources)
	{
		ObjectAddress referenced;

		ObjectAddressSet(referenced, RelationRelationId, lfirst_oid(lc));
		recordDependencyOn(&depender, &referenced, DEPENDENCY_NORMAL);
	}
}

/* has_key_index: a usable unique index on exactly the given columns */
static bool
has_key_index(Relation rel, List *keys)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = index->rd_index;
		bool		match = form->indisunique && form->indimmediate && form->indisvalid &&
			form->indnullsnotdistinct && form->indnkeyatts == list_length(keys) &&
			RelationGetIndexExpressions(index) == NIL && RelationGetIndexPredicate(index) == NIL;
		ListCell   *kc;

		foreach(kc, keys)
		{
			AttrNumber	attno = get_attnum(RelationGetRelid(rel), (char *) lfirst(kc));
			bool		in_index = false;

			for (int i = 0; i < form->indnkeyatts; i++)
				in_index |= form->indkey.values[i] == attno;
			match &= in_index;
		}
		index_close(index, AccessShareLock);
		if (match)
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * check_shared_result_table refuses a second query's result in a table
 * where a grouped query keeps its result (or a grouped query's result
 * where another query writes): a grouped query upserts, replaces and
 * deletes its groups' rows, which would silently overwrite the other
 * query's rows with the same keys.  Queries that only append (projections,
 * filters, deduplications) may share a table.  Every role's queries count,
 * so the catalog is read as its owner.
 */
static void
check_shared_result_table(Oid relid, const char *table, ContinuousPlan *plan)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	bool		grouped = plan->shape == SHAPE_AGGREGATE;

	SPI_connect();
	if (CatalogExecute("SELECT name, shape FROM streaming.queries "
					   "WHERE result_table OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
					   "ORDER BY shape OPERATOR(pg_catalog.=) 'aggregate' DESC, name LIMIT 1",
					   1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	if (SPI_processed == 1)
	{
		char	   *other = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *shape = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		if (grouped || strcmp(shape, "aggregate") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("continuous query \"%s\" already writes its result into table \"%s\"",
							other, table),
					 errdetail("A grouped query upserts and deletes the rows of its groups, and would overwrite the other query's rows with the same keys."),
					 errhint("Give each grouped query a table of its own, or combine the inputs in one query.")));
	}
	SPI_finish();
}

/*
 * existing_result_table checks a table named by sink_options.table: the
 * query writes its result there instead of a table of its own.  Every
 * result column must be a column of it; the query's owner must be allowed
 * to insert (and, unless in append mode, update); a grouped query in
 * update or complete mode needs a unique index NULLS NOT DISTINCT on
 * exactly its keys, for its upserts; a global aggregate, which replaces
 * the table's rows, may not write there.
 */
static Oid
existing_result_table(const char *table, ContinuousPlan *plan, OutputMode mode)
{
	/* self-conflicting: two create_query into one table take turns */
	Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(table, "table")),
										 ShareUpdateExclusiveLock, false);
	Relation	rel = table_open(relid, NoLock);
	char		kind = rel->rd_rel->relkind;
	AclMode		needed = ACL_INSERT;
	ListCell   *lc;

	if (kind != RELKIND_RELATION && kind != RELKIND_PARTITIONED_TABLE && kind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", table),
				 errhint("sink_options.table names a table, a partitioned table or a foreign table.")));
	if (IsStreamingSource(relid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a source", table)));
	foreach(lc, plan->result_columns)
		if (get_attnum(relid, (char *) lfirst(lc)) == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of the query is not a column of table \"%s\"",
							(char *) lfirst(lc), table),
					 errhint("Name the query's columns as the table's, with AS.")));
	check_shared_result_table(relid, table, plan);
	if (mode != OUTPUT_APPEND && plan->shape == SHAPE_AGGREGATE)
	{
		if (plan->result_keys == NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("an aggregate without GROUP BY cannot write into an existing table in %s mode",
							OutputModeName(mode)),
					 errhint("Its single row replaces the whole table: let the query have its own result table.")));
		if (kind == RELKIND_FOREIGN_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a foreign table takes the rows of append mode only"),
					 errhint("Update and complete modes upsert with ON CONFLICT, which foreign tables do not support.")));
		if (!has_key_index(rel, plan->result_keys))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("table \"%s\" has no unique index on exactly (%s) NULLS NOT DISTINCT",
							table, quoted_columns(plan->result_keys)),
					 errhint("The query upserts its groups by these keys: CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT.",
							 table, quoted_columns(plan->result_keys))));
		needed |= ACL_UPDATE;
	}
	if ((plan->session_key != NULL || plan->having != NULL || plan->topn_limit > 0) &&
		mode != OUTPUT_APPEND)
		needed |= ACL_DELETE;
	if (pg_class_aclcheck(relid, GetUserId(), needed) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(kind), table);
	table_close(rel, NoLock);
	return relid;
}

/*
 * revoke_default_grants takes back what the catalog owner's default
 * privileges granted on a table it just created for a query's owner: the
 * state of a query is its owner's, as its catalog rows are.
 */
static void
revoke_default_grants(Oid relid, const char *name)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	List	   *grantees = NIL;
	ListCell   *lc;

	/* not read-only: the table was created by the statement before */
	if (CatalogExecute("SELECT DISTINCT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0::pg_catalog.oid "
					   "THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END "
					   "FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a "
					   "LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee "
					   "WHERE c.oid OPERATOR(pg_catalog.=) $1 AND a.grantee OPERATOR(pg_catalog.<>) c.relowner",
					   1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the privileges of %s", name);
	for (uint64 i = 0; i < SPI_processed; i++)
		grantees = lappend(grantees, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	foreach(lc, grantees)
		catalog_ddl(psprintf("REVOKE ALL ON TABLE %s FROM %s", name, (char *) lfirst(lc)));
}

/*
 * qualified_collation_name names a collation with its schema, whatever the
 * caller's search_path: the table is created under the catalog's.
 */
static char *
qualified_collation_name(Oid collid)
{
	HeapTuple	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(collid));
	Form_pg_collation form;
	char	   *name;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for collation %u", collid);
	form = (Form_pg_collation) GETSTRUCT(tup);
	name = quote_qualified_identifier(get_namespace_name(form->collnamespace),
									  NameStr(form->collname));
	ReleaseSysCache(tup);
	return name;
}

/*
 * create_table_for creates a table of the query's own in the extension's
 * schema, where its owner may not create tables: the columns are those of
 * query sql, analysed as the calling role (no code runs, nothing is
 * planned); the table and its unique index on unique_columns (if not
 * NULL) are then created as the catalog's owner from names and types
 * alone.  The caller
 * adds its other indexes and gives it to its owner (give_table).
 */
static Oid
create_table_for(const char *name, const char *sql, const char *unique_columns)
{
	SPIPlanPtr	prepared;
	CachedPlanSource *source;
	TupleDesc	desc;
	StringInfoData cols;

	prepared = SPI_prepare(sql, 0, NULL);
	if (prepared == NULL)
		elog(ERROR, "could not analyse the batch plan: %s", SPI_result_code_string(SPI_result));
	source = linitial(SPI_plan_get_plan_sources(prepared));
	desc = source->resultDesc;

	initStringInfo(&cols);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		appendStringInfo(&cols, "%s%s %s", i > 0 ? ", " : "",
						 quote_identifier(NameStr(att->attname)),
						 format_type_extended(att->atttypid, att->atttypmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
		if (OidIsValid(att->attcollation) && att->attcollation != get_typcollation(att->atttypid))
			appendStringInfo(&cols, " COLLATE %s", qualified_collation_name(att->attcollation));
	}
	SPI_freeplan(prepared);

	catalog_ddl(psprintf("CREATE TABLE %s (%s)", name, cols.data));
	if (unique_columns != NULL)
		catalog_ddl(psprintf("CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT", name, unique_columns));
	return RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(name, "table")),
							NoLock, false);
}

/* give_table gives a table made by create_table_for to the calling role */
static void
give_table(Oid relid, const char *name)
{
	revoke_default_grants(relid, name);
	catalog_ddl(psprintf("ALTER TABLE %s OWNER TO %s", name,
						 quote_identifier(GetUserNameFromId(GetUserId(), false))));
}

/*
 * create_state_table creates a query's state table, with the columns of
 * its batch plan, unique on its keys, and given to the calling role, whose
 * worker writes it.  A query with DISTINCT aggregates gets its distinct
 * table first (operators/distinct_agg.c), which the batch plan reads.
 */
static Oid
create_state_table(const char *state_name, ContinuousPlan *plan)
{
	Oid			state_oid;

	if (plan->distinct_table != NULL)
	{
		Oid			distinct_oid = create_table_for(plan->distinct_table,
													DistinctAggTableQuery(plan),
													plan->distinct_columns);

		/* closing windows finds their values by their start */
		if (WindowStateCloseIndex(plan) != NULL)
			catalog_ddl(psprintf("CREATE INDEX ON %s (%s)", plan->distinct_table,
								 WindowStateCloseIndex(plan)));
		/* the values that no row holds any more, which the next batch deletes */
		if (RetractEmptyGroupsIndex(plan) != NULL)
			catalog_ddl(psprintf("CREATE INDEX ON %s %s", plan->distinct_table,
								 RetractEmptyGroupsIndex(plan)));
		record_depends_on_sources(distinct_oid, plan->sources);
		give_table(distinct_oid, plan->distinct_table);
	}

	state_oid = create_table_for(state_name, PlanStateQuery(plan), quoted_columns(plan->state_keys));
	/* closing windows finds them by their end, without a scan */
	if (WindowStateCloseIndex(plan) != NULL)
		catalog_ddl(psprintf("CREATE INDEX ON %s (%s)", state_name, WindowStateCloseIndex(plan)));
	/* the top n groups are the first of this index (operators/topn.c) */
	if (TopNStateIndex(plan) != NULL)
		catalog_ddl(psprintf("CREATE INDEX ON %s (%s)", state_name, TopNStateIndex(plan)));
	/* the groups that lost all their rows, which the next batch deletes */
	if (RetractEmptyGroupsIndex(plan) != NULL)
		catalog_ddl(psprintf("CREATE INDEX ON %s %s", state_name, RetractEmptyGroupsIndex(plan)));
	/* evicting old keys of a deduplication finds them by their time */
	if (plan->time_key != NULL)
		catalog_ddl(psprintf("CREATE INDEX ON %s (%s)", state_name, quote_identifier(plan->time_key)));
	give_table(state_oid, state_name);
	return state_oid;
}

/* the name of a query's input view, schema-qualified and quoted */
static char *
input_view_name(int32 id)
{
	return psprintf("%s.%s", STREAMING_SCHEMA, quote_identifier(psprintf("input_%d", id)));
}

/*
 * create_input_view creates the view that a query's batches read their
 * input from (see PlanInputRelation): the user's FROM and WHERE, with the
 * group keys and aggregate arguments as columns.  Being a view, it holds
 * what the query's names meant at create_query (relations and columns by
 * number, functions and operators by OID), and PostgreSQL keeps the
 * objects it uses from being dropped or retyped under it; its text was
 * deparsed under the catalog's search_path and is parsed back under the
 * same, as the catalog's owner, in the schema where the caller may not
 * create.  It then belongs to the query's owner, so that the tables it
 * reads are read with the owner's rights, as the user's query was.
 */
static void
create_input_view(ContinuousPlan *plan)
{
	Oid			view_oid;
	ListCell   *lc;

	/* as CREATE MATERIALIZED VIEW: a later session has another pg_temp */
	foreach(lc, plan->temp_relations)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous query must not read temporary table \"%s\"",
						(char *) lfirst(lc)),
				 errdetail("Its batches run in other sessions, which do not see this session's temporary tables.")));
	catalog_ddl(psprintf("CREATE VIEW %s AS %s", plan->input, plan->input_sql));
	view_oid = RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(plan->input, "view")),
								NoLock, false);
	revoke_default_grants(view_oid, plan->input);
	catalog_ddl(psprintf("ALTER VIEW %s OWNER TO %s", plan->input,
						 quote_identifier(GetUserNameFromId(GetUserId(), false))));
}

/*
 * create_join_states creates the state tables of the sources a query joins
 * (operators/stream_join.c), each with its source's columns (of which the
 * batches keep those the query reads) and an index on its join keys, given
 * to the calling role, and makes the query's input view out of copies
 * of the query that read them.
 */
static void
create_join_states(ContinuousPlan *plan, int32 id)
{
	List	   *relids = NIL;
	List	   *state_oids = NIL;
	ListCell   *lc;

	foreach(lc, plan->join_relids)
		relids = list_append_unique_oid(relids, lfirst_oid(lc));
	foreach(lc, relids)
	{
		Oid			relid = lfirst_oid(lc);
		char	   *name = StreamJoinTableName(id, foreach_current_index(lc) + 1);
		List	   *keys = StreamJoinKeys(plan->join_query, relid);
		Oid			state_oid;

		StringInfoData items;
		bool		expressions = false;
		ListCell   *klc;

		initStringInfo(&items);
		foreach(klc, keys)
		{
			appendStringInfo(&items, "%s%s", items.len > 0 ? ", " : "", (char *) lfirst(klc));
			expressions |= ((char *) lfirst(klc))[0] == '(';
		}
		/* a preserved side of an outer join: whether each row has matched */
		state_oid = create_table_for(name, psprintf("SELECT *%s FROM %s",
													StreamJoinPreserves(plan->join_query, plan->join_rtindexes, relid)
													? ", false AS streaming_matched" : "",
													RelationQualifiedName(relid)), NULL);
		if (keys != NIL && !expressions)
			catalog_ddl(psprintf("CREATE INDEX ON %s (%s)", name, items.data));
		/* the watermark finds the rows it evicts by the column it bounds */
		if (list_nth(plan->join_evict_index, foreach_current_index(lc)) != NULL)
			catalog_ddl(psprintf("CREATE INDEX ON %s (%s)", name,
								 (char *) list_nth(plan->join_evict_index, foreach_current_index(lc))));
		record_depends_on_sources(state_oid, list_make1_oid(relid));
		give_table(state_oid, name);
		/* an index over the owner's expressions is the owner's to make */
		if (expressions)
			exec_ddl(psprintf("CREATE INDEX ON %s (%s)", name, items.data));
		state_oids = lappend_oid(state_oids, state_oid);
		plan->join_sources = lappend(plan->join_sources, RelationQualifiedName(relid));
		plan->join_states = lappend(plan->join_states, name);
		plan->join_columns = lappend(plan->join_columns,
									 StreamJoinColumns(plan->join_query, plan->join_rtindexes, relid));
	}
	PlanExpandJoin(plan, state_oids);
	foreach(lc, relids)
	{
		int			i = foreach_current_index(lc);

		if (((char *) list_nth(plan->join_evict, i))[0] == '\0')
			ereport(NOTICE,
					(errmsg("the join keeps every row of \"%s\": its state grows without bound",
							get_rel_name(lfirst_oid(lc))),
					 errdetail("Its rows are kept to be joined with the other streams' rows of later batches, and no watermark ever evicts them: %s.",
							   (char *) list_nth(plan->join_evict_why, i)),
					 errhint("Give every joined source an event time and a watermark, and bound the join on time, e.g. b.t BETWEEN a.t - interval '1 hour' AND a.t, or streaming.window(a.t, '1 minute') = streaming.window(b.t, '1 minute').")));
	}
}

static void drop_relation_if_exists(Oid relid);

/* drop_named_relation drops a relation the query made, by its name */
static void
drop_named_relation(const char *name)
{
	drop_relation_if_exists(RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(name, "table")),
											 NoLock, true));
}

/*
 * QueryCreate does the work of streaming.create_query(): analyses the
 * query, creates its result table (and state table), and records it,
 * enabled or not.  Starting its worker is the caller's business.
 */
Oid
QueryCreate(const QueryCreateArgs *a)
{
	const char *name = a->name;
	const char *sql = a->sql;
	OutputMode	mode = a->mode;
	const char *trigger = a->trigger;
	const char *on_error = a->on_error;
	const char *sink = a->sink;
	Jsonb	   *sink_options = a->sink_options;
	SinkOptions sink_opts;
	const char *event_time = a->event_time;
	char	   *search_path;
	ContinuousPlan *plan;
	List	   *names;
	char	   *result_name;
	Oid			result_oid;
	Oid			state_oid = InvalidOid;
	int32		id;
	bool		isnull;
	Oid			argtypes[17] = {TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID,
		TEXTOID, REGCLASSOID, REGCLASSOID, JSONBOID, BOOLOID, OIDARRAYOID, TEXTOID, INTERVALOID,
	TEXTOID, JSONBOID, OIDOID, TEXTOID};
	Datum		args[17];
	char		nulls[17];
	Datum	   *source_datums;
	ListCell   *lc;

	if (strlen(name) > 120)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("continuous query name \"%s\" is too long", name),
				 errdetail("A query name has at most 120 bytes.")));
	(void) ParseQualifiedName(name, "continuous query");
	QueryCheckTrigger(trigger);
	QueryCheckOnError(on_error);
	/* without watermark, each source's event time must give its delay */
	if (a->event_time == NULL && a->watermark != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event_time and watermark must be given together"),
				 errhint("The watermark is a delay behind the largest event time seen, e.g. event_time => 'ts', watermark => '10 minutes'.")));
	if (a->watermark != NULL)
		QueryCheckWatermarkDelay(a->watermark);
	/* the caller's search_path, as it is now, is the query's for good */
	search_path = PinnedSearchPath();
	if (sink_options == NULL)
		sink_options = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	SinkParseOptions(sink, sink_options, name, &sink_opts);
	if (sink_opts.kind == SINK_FILE)
	{
		if (!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to create a file sink"),
					 errdetail("Only roles with privileges of the \"pg_write_server_files\" role may write server files.")));
		/* as Spark's file sink: files are only ever added to */
		if (mode != OUTPUT_APPEND)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the file sink supports only the append output mode"),
					 errhint("A file is written once per batch and never rewritten; use the table sink for %s mode.",
							 OutputModeName(mode))));
		FileSinkCheckPath(sink_opts.path);
		file_sink_path_free(sink_opts.path);
	}
	if (sink_opts.kind == SINK_KAFKA)
		KafkaSinkValidate(&sink_opts, GetUserId());

	if (QueryDefLoad(name, QUERY_LOCK_NONE, true) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("continuous query \"%s\" already exists", name),
				 errhint("Choose another name, or drop the query first with streaming.drop_query().")));

	SPI_connect();
	if (CatalogExecute("SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('streaming.queries', 'id'))::pg_catalog.int4",
					   0, NULL, NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not allocate a query id");
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	plan = PlanContinuousQuery(sql, mode, event_time, event_time != NULL,
							   input_view_name(id), false);
	/* the sources' delays, checked as the batches will read them */
	if (event_time != NULL)
		(void) EventTimeSpecParse(event_time, plan->sources,
								  a->watermark ? a->watermark->time + a->watermark->day * USECS_PER_DAY : 0,
								  a->watermark != NULL);
	if (event_time != NULL && list_length(plan->sources) > 1 && !CatalogHasSourceWatermarks())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event_time over several sources needs version 0.5 of the extension's catalog"),
				 errhint("Run ALTER EXTENSION streaming UPDATE.")));
	if (plan->distinct_fresh != NULL)
		plan->distinct_table = DistinctAggTableName(id);
	QueryCheckSinkKey(plan, &sink_opts);

	names = ParseQualifiedName(name, "continuous query");
	result_name = NameListToQuotedString(names);

	SPI_connect();
	if (plan->join_rtindexes != NIL)
		create_join_states(plan, id);
	create_input_view(plan);

	if (sink_opts.table != NULL)
		result_oid = existing_result_table(sink_opts.table, plan, mode);
	else
	{
		/* the result table: named and typed as the SELECT's columns */
		exec_ddl(psprintf("CREATE TABLE %s AS %s WITH NO DATA", result_name, plan->query_sql));
		result_oid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, false);
		record_depends_on_sources(result_oid, plan->sources);
	}

	if (plan->shape != SHAPE_STATELESS)
	{
		char	   *state_name = psprintf("streaming.%s", quote_identifier(psprintf("state_%d", id)));

		if (plan->result_keys != NIL && sink_opts.table == NULL)
			exec_ddl(psprintf("CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT",
							  result_name, quoted_columns(plan->result_keys)));
		state_oid = create_state_table(state_name, plan);
		record_depends_on_sources(state_oid, plan->sources);
	}

	/*
	 * What the statements resolve to now, which every batch checks: this
	 * also makes sure that they make sense for an existing result table.
	 */
	{
		char	   *close_sql = BuildCloseStatement(plan, result_oid, state_oid, 0);
		Oid			close_types[1] = {TIMESTAMPTZOID};

		plan->batch_fingerprint =
			ResolvedFingerprint(BuildBatchStatement(plan, result_oid, state_oid, 0), 1, close_types);
		if (close_sql != NULL)
			plan->close_fingerprint = ResolvedFingerprint(close_sql, 1, close_types);
		PartialAggPlan(plan, result_oid, state_oid, CurrentMemoryContext);
	}

	source_datums = palloc(sizeof(Datum) * list_length(plan->sources));
	foreach(lc, plan->sources)
		source_datums[foreach_current_index(lc)] = ObjectIdGetDatum(lfirst_oid(lc));

	memset(nulls, ' ', sizeof(nulls));
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(id);
	args[2] = CStringGetTextDatum(sql);
	args[3] = CStringGetTextDatum(OutputModeName(mode));
	args[4] = CStringGetTextDatum(trigger);
	args[5] = CStringGetTextDatum(on_error);
	args[6] = ObjectIdGetDatum(result_oid);
	args[7] = ObjectIdGetDatum(state_oid);
	nulls[7] = OidIsValid(state_oid) ? ' ' : 'n';
	args[8] = JsonbPGetDatum(ContinuousPlanToJsonb(plan));
	args[9] = BoolGetDatum(a->enabled);
	args[10] = PointerGetDatum(construct_array(source_datums, list_length(plan->sources),
											   OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	args[11] = event_time ? CStringGetTextDatum(event_time) : (Datum) 0;
	nulls[11] = event_time ? ' ' : 'n';
	args[12] = a->watermark ? IntervalPGetDatum(a->watermark) : (Datum) 0;
	nulls[12] = a->watermark ? ' ' : 'n';
	args[13] = CStringGetTextDatum(sink);
	args[14] = JsonbPGetDatum(sink_options);
	args[15] = ObjectIdGetDatum(GetUserId());
	args[16] = CStringGetTextDatum(search_path);
	if (CatalogExecute(psprintf("INSERT INTO streaming.queries (name, id, query, output_mode, trigger, "
								"on_error, result_table, state_table, plan, enabled, sources, shape, "
								"event_time, watermark_delay, sink, sink_options, owner%s) "
								"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::pg_catalog.regclass[], "
								"$9 OPERATOR(pg_catalog.->>) 'shape', $12, $13, $14, $15, $16::pg_catalog.regrole%s)",
								catalog_has_search_path() ? ", search_path" : "",
								catalog_has_search_path() ? ", $17" : ""),
					   catalog_has_search_path() ? 17 : 16, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into streaming.queries");
	SPI_finish();

	return result_oid;
}

static void
drop_relation_if_exists(Oid relid)
{
	ObjectAddress obj;

	if (!OidIsValid(relid) || get_rel_name(relid) == NULL)
		return;
	ObjectAddressSet(obj, RelationRelationId, relid);
	performDeletion(&obj, DROP_RESTRICT, 0);
}

/*
 * QueryUpgradePlan gives a query planned by an earlier version - whose
 * batches read the user's deparsed text inline, looking its tables up by
 * name each time - its input view and the fingerprints of its statements,
 * as create_query gives a new query: when its text, planned again now, gives
 * the very same statements, it means what it meant, and from then on it is
 * held so.  Otherwise (or if planning fails) it stays as it was, and the
 * README says to create it again.  Called at the start of a batch, as the
 * query's owner under its pinned search_path, as create_query plans.
 */
bool
QueryUpgradePlan(QueryDef *q)
{
	static List *tried = NIL;	/* queries this process tried: once each */
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ContinuousPlan *volatile plan = NULL;
	volatile bool done = false;

	if (q->plan->input != NULL || list_member_int(tried, q->id))
		return false;
	cxt = MemoryContextSwitchTo(TopMemoryContext);
	tried = lappend_int(tried, q->id);
	MemoryContextSwitchTo(cxt);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		/* planned as the stored plan was: its state table has that shape */
		bool		window_range_key = q->plan->window_size == NULL;
		ContinuousPlan *inline_plan = PlanContinuousQuery(q->query, q->mode, q->event_time,
														  q->has_watermark, NULL, window_range_key);
		char	   *old_close = BuildCloseStatement(q->plan, q->result_table, q->state_table, 0);
		char	   *new_close = BuildCloseStatement(inline_plan, q->result_table, q->state_table, 0);

		if (strcmp(BuildBatchStatement(q->plan, q->result_table, q->state_table, 0),
				   BuildBatchStatement(inline_plan, q->result_table, q->state_table, 0)) == 0 &&
			((old_close == NULL && new_close == NULL) ||
			 (old_close != NULL && new_close != NULL && strcmp(old_close, new_close) == 0)))
		{
			Oid			close_types[1] = {TIMESTAMPTZOID};
			Oid			argtypes[2] = {TEXTOID, JSONBOID};
			Datum		args[2];
			char	   *close_sql;

			plan = PlanContinuousQuery(q->query, q->mode, q->event_time, q->has_watermark,
									   input_view_name(q->id), window_range_key);
			SPI_connect();
			create_input_view(plan);
			/* kept for this batch too: out of SPI's memory */
			plan->batch_fingerprint =
				MemoryContextStrdup(cxt, ResolvedFingerprint(BuildBatchStatement(plan, q->result_table,
																				 q->state_table, 0),
															 1, close_types));
			close_sql = BuildCloseStatement(plan, q->result_table, q->state_table, 0);
			if (close_sql != NULL)
				plan->close_fingerprint = MemoryContextStrdup(cxt, ResolvedFingerprint(close_sql, 1, close_types));
			PartialAggPlan(plan, q->result_table, q->state_table, cxt);
			args[0] = CStringGetTextDatum(q->name);
			args[1] = JsonbPGetDatum(ContinuousPlanToJsonb(plan));
			if (CatalogExecute("UPDATE streaming.queries SET plan = $2 WHERE name OPERATOR(pg_catalog.=) $1",
							   2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not update streaming.queries");
			SPI_finish();
			done = true;
		}
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		done = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	if (done)
	{
		q->plan = plan;
		ereport(LOG,
				(errmsg("continuous query \"%s\" now reads its input from %s", q->name, plan->input)));
	}
	return done;
}

/*
 * result_desc_matches tells whether a relation has exactly the columns of
 * desc: the same names and types, in the same order.
 */
static bool
result_desc_matches(Oid relid, TupleDesc desc)
{
	Relation	rel = table_open(relid, AccessShareLock);
	TupleDesc	have = RelationGetDescr(rel);
	int			n = 0;
	bool		same = true;

	for (int i = 0; i < have->natts && same; i++)
	{
		Form_pg_attribute a = TupleDescAttr(have, i);
		Form_pg_attribute b;

		if (a->attisdropped)
			continue;
		if (n >= desc->natts)
		{
			same = false;
			break;
		}
		b = TupleDescAttr(desc, n++);
		same = strcmp(NameStr(a->attname), NameStr(b->attname)) == 0 &&
			a->atttypid == b->atttypid && a->atttypmod == b->atttypmod;
	}
	table_close(rel, AccessShareLock);
	return same && n == desc->natts;
}

/*
 * adopt_query_tables gives a plan made again of a query's SELECT the tables
 * create_query made for the stored plan: its distinct table, and the state
 * tables of its join (with the input view made of copies reading them), as
 * create_query would have.  A plan that needs others keeps none, and so
 * differs from the stored one.
 */
static void
adopt_query_tables(ContinuousPlan *plan, ContinuousPlan *stored)
{
	List	   *state_oids = NIL;
	List	   *relids = NIL;
	ListCell   *lc;

	if (plan->distinct_fresh != NULL)
		plan->distinct_table = stored->distinct_table;
	if (plan->join_rtindexes == NIL)
		return;
	foreach(lc, plan->join_relids)
		relids = list_append_unique_oid(relids, lfirst_oid(lc));
	if (list_length(relids) != list_length(stored->join_states))
		return;
	foreach(lc, relids)
	{
		if (strcmp(RelationQualifiedName(lfirst_oid(lc)), list_nth(stored->join_sources, foreach_current_index(lc))) != 0)
			return;
		/* a preserved side of an outer join has the flag, the others not */
		if (StreamJoinPreserves(plan->join_query, plan->join_rtindexes, lfirst_oid(lc)) !=
			(foreach_current_index(lc) < list_length(stored->join_keep) &&
			 ((char *) list_nth(stored->join_keep, foreach_current_index(lc)))[0] != '\0'))
			return;
		/* the state keeps the columns the stored query reads: no others */
		if (foreach_current_index(lc) < list_length(stored->join_columns) &&
			strcmp(StreamJoinColumns(plan->join_query, plan->join_rtindexes, lfirst_oid(lc)),
				   list_nth(stored->join_columns, foreach_current_index(lc))) != 0)
			return;
		state_oids = lappend_oid(state_oids,
								 RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(list_nth(stored->join_states, foreach_current_index(lc)), "table")),
												  NoLock, false));
	}
	plan->join_sources = stored->join_sources;
	plan->join_states = stored->join_states;
	plan->join_columns = stored->join_columns;
	PlanExpandJoin(plan, state_oids);
}

/*
 * store_altered_plan records a query's new SELECT, plan (with its output
 * mode) and result table, with the fingerprints of what its statements
 * resolve to now, which every batch checks.
 */
static void
store_altered_plan(QueryDef *q, const char *sql, ContinuousPlan *plan, Oid result_oid)
{
	Oid			argtypes[5] = {TEXTOID, TEXTOID, JSONBOID, OIDOID, TEXTOID};
	Oid			close_types[1] = {TIMESTAMPTZOID};
	Datum		args[5];
	int			nestlevel;
	char	   *close_sql;

	nestlevel = PushSearchPath(q->search_path);
	SPI_connect();
	plan->batch_fingerprint =
		ResolvedFingerprint(BuildBatchStatement(plan, result_oid, q->state_table, 0), 1, close_types);
	close_sql = BuildCloseStatement(plan, result_oid, q->state_table, 0);
	if (close_sql != NULL)
		plan->close_fingerprint = ResolvedFingerprint(close_sql, 1, close_types);
	PartialAggPlan(plan, result_oid, q->state_table, CurrentMemoryContext);
	PopCatalogSearchPath(nestlevel);

	args[0] = CStringGetTextDatum(q->name);
	args[1] = CStringGetTextDatum(sql);
	args[2] = JsonbPGetDatum(ContinuousPlanToJsonb(plan));
	args[3] = ObjectIdGetDatum(result_oid);
	args[4] = CStringGetTextDatum(OutputModeName(plan->mode));
	if (CatalogExecute("UPDATE streaming.queries SET query = $2, plan = $3, result_table = $4::pg_catalog.regclass, "
					   "output_mode = $5 WHERE name OPERATOR(pg_catalog.=) $1",
					   5, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");
	SPI_finish();
}

/*
 * QueryAlterSelect gives a query a new SELECT that keeps the same state:
 * it reads the same input the same way and keeps the same keys and partial
 * aggregates (PlanStateDifference), so that only what is computed from the
 * state may differ - the result columns, their expressions, HAVING.  Its
 * result is then computed again from the state, as complete mode keeps it:
 * the result table is emptied and filled, or, when its columns change,
 * created again (under the same name, with the query owner's rights).
 * That needs the whole result to be in the state: a grouped query in
 * complete mode, or in update mode without windows to evict; append mode
 * wrote rows that cannot be written again.  A SELECT that keeps the state
 * differently is an error saying what differs.  The caller checked the
 * owner and holds the lock a batch takes, with the worker gone.  The new
 * SELECT is analysed as the caller, under the query's pinned search_path,
 * in output mode mode (the query's, or the other of update and complete,
 * which QueryAlterCheck allowed).
 */
void
QueryAlterSelect(QueryDef *q, const char *sql, OutputMode mode)
{
	bool		window_range_key = q->plan->window_size == NULL;
	ContinuousPlan *old_plan;
	ContinuousPlan *new_plan;
	const char *difference;
	Oid			result_oid = q->result_table;
	int			nestlevel;

	if (q->plan->input == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the SELECT of continuous query \"%s\" cannot be changed", q->name),
				 errdetail("It was planned by an earlier version of the extension, which did not keep its input view."),
				 errhint("Drop the query and create it again with the new SELECT.")));

	/* both planned now, as the stored plan was: with its input view's name */
	nestlevel = PushSearchPath(q->search_path);
	old_plan = PlanContinuousQuery(q->query, q->mode, q->event_time, q->has_watermark,
								   q->plan->input, window_range_key);
	new_plan = PlanContinuousQuery(sql, mode, q->event_time, q->has_watermark,
								   q->plan->input, window_range_key);
	PopCatalogSearchPath(nestlevel);
	adopt_query_tables(old_plan, q->plan);
	adopt_query_tables(new_plan, q->plan);

	if (strcmp(BuildBatchStatement(q->plan, q->result_table, q->state_table, 0),
			   BuildBatchStatement(old_plan, q->result_table, q->state_table, 0)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the SELECT of continuous query \"%s\" cannot be changed in place", q->name),
				 errdetail("Its SELECT, planned now, no longer gives the statements it runs: what its names refer to has changed."),
				 errhint("Drop the query and create it again with the new SELECT; like streaming.reset_query(), it then reads its sources again.")));
	difference = PlanStateDifference(old_plan, new_plan);
	if (difference != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the new SELECT of continuous query \"%s\" does not keep the same state", q->name),
				 errdetail("%s Only what is computed from the state (the result columns, their expressions, HAVING) can change in place.", difference),
				 errhint("Drop the query and create it again with the new SELECT; like streaming.reset_query(), it then reads its sources again from the start.")));

	if (PlanOutputDifference(old_plan, new_plan))
	{
		OwnerContext owner_cxt;
		SPIPlanPtr	prepared;
		TupleDesc	desc;

		if (q->mode == OUTPUT_APPEND)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the result columns of append-mode query \"%s\" cannot change", q->name),
					 errdetail("Append mode wrote the rows of each window once, when it closed, and forgot its state: they cannot be computed again."),
					 errhint("Drop the query and create it again with the new SELECT; like streaming.reset_query(), it then reads its sources again from the start.")));
		if (q->plan->shape != SHAPE_AGGREGATE || q->plan->session_key != NULL ||
			(q->mode == OUTPUT_UPDATE && q->plan->window_key != NULL))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the result columns of continuous query \"%s\" cannot change", q->name),
					 errdetail("%s",
							   q->plan->shape != SHAPE_AGGREGATE ? "Only a grouped query computes its result from its state." :
							   q->plan->session_key != NULL ? "The result of a query grouped by session windows is not computed again from its state." :
							   "Update mode evicts the state of the windows the watermark closed: their rows cannot be computed again."),
					 errhint("Drop the query and create it again with the new SELECT; like streaming.reset_query(), it then reads its sources again from the start.")));
		if (q->sink.kind != SINK_TABLE || q->sink.table != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the result columns of continuous query \"%s\" cannot change", q->name),
					 errdetail("It writes to %s, not to a result table of its own.",
							   q->sink.table != NULL ? psprintf("table \"%s\"", q->sink.table) : "another sink"),
					 errhint("Drop the query and create it again with the new SELECT.")));

		/* the new result's columns, analysed as the caller (nothing runs) */
		SPI_connect();
		nestlevel = PushSearchPath(q->search_path);
		prepared = SPI_prepare(new_plan->query_sql, 0, NULL);
		if (prepared == NULL)
			elog(ERROR, "could not analyse the new query: %s", SPI_result_code_string(SPI_result));
		desc = CreateTupleDescCopy(((CachedPlanSource *) linitial(SPI_plan_get_plan_sources(prepared)))->resultDesc);
		PopCatalogSearchPath(nestlevel);

		/* the result table is the owner's: its triggers and finalizers run as the owner */
		BeginAsOwner(q->owner, q->search_path, &owner_cxt);
		if (result_desc_matches(q->result_table, desc))
			exec_ddl(psprintf("TRUNCATE TABLE %s", RelationQualifiedName(q->result_table)));
		else
		{
			char	   *result_name = RelationQualifiedName(q->result_table);
			ObjectAddress obj;

			ObjectAddressSet(obj, RelationRelationId, q->result_table);
			performDeletion(&obj, DROP_RESTRICT, 0);
			exec_ddl(psprintf("CREATE TABLE %s AS %s WITH NO DATA", result_name, new_plan->query_sql));
			result_oid = RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(result_name, "table")),
										  NoLock, false);
			if (new_plan->result_keys != NIL)
				exec_ddl(psprintf("CREATE UNIQUE INDEX ON %s (%s) NULLS NOT DISTINCT",
								  result_name, quoted_columns(new_plan->result_keys)));
			record_depends_on_sources(result_oid, new_plan->sources);
		}
		if (SPI_execute(BuildRefillStatement(new_plan, result_oid, q->state_table), false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the result of continuous query \"%s\"", q->name);
		EndAsOwner(&owner_cxt);
		SPI_finish();
	}

	store_altered_plan(q, sql, new_plan, result_oid);
}

/*
 * QueryAlterMode gives a grouped query the other of the update and
 * complete output modes, which keep the same state and result table: its
 * stored plan with the new mode (only the statement that evicts what the
 * watermark closes differs), after the planner has checked the query in
 * that mode as create_query does (complete mode needs an aggregation,
 * ORDER BY ... LIMIT needs complete mode, session windows cannot be
 * updated).  QueryAlterCheck has refused what the mode change cannot keep
 * (append mode; complete mode once update mode evicted windows).  The
 * caller holds the lock a batch takes.
 */
void
QueryAlterMode(QueryDef *q, OutputMode mode)
{
	int			nestlevel;
	ContinuousPlan *planned;

	if (mode == q->mode)
		return;
	nestlevel = PushSearchPath(q->search_path);
	planned = PlanContinuousQuery(q->query, mode, q->event_time, q->has_watermark,
								  q->plan->input, q->plan->window_size == NULL);
	PopCatalogSearchPath(nestlevel);
	q->plan->mode = mode;
	/* not kept in the stored plan; aggregating in parts needs them */
	q->plan->state_merge = planned->state_merge;
	q->plan->close_fingerprint = NULL;
	store_altered_plan(q, q->query, q->plan, q->result_table);
}

/*
 * QueryDrop drops a query's catalog rows, its state table and (unless
 * keep_result) its result table.  Its worker must be gone: it may hold the
 * row lock in a batch.
 */
void
QueryDrop(QueryDef *q, bool keep_result)
{
	ListCell   *lc;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(q->name)};

	SPI_connect();
	if (CatalogExecute("DELETE FROM streaming.queries WHERE name OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from streaming.queries");
	SPI_finish();

	drop_relation_if_exists(q->state_table);
	if (q->plan->distinct_table != NULL)
		drop_named_relation(q->plan->distinct_table);
	if (q->plan->input != NULL)
		drop_relation_if_exists(RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(q->plan->input, "view")),
												 NoLock, true));
	/* after the input view, which reads them */
	foreach(lc, q->plan->join_states)
		drop_named_relation(lfirst(lc));
	/* a table the query wrote into but did not create stays */
	if (!keep_result && q->sink.table == NULL)
		drop_relation_if_exists(q->result_table);
}

/*
 * streaming_explain implements streaming.explain(name): the statements the
 * engine derived from the query, one row per step.
 */
Datum
streaming_explain(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	QueryDef   *q;
	ContinuousPlan *plan;
	ListCell   *lc;
	ListCell   *lc2;

#define EMIT(step, text) \
	do { \
		Datum values[2] = {CStringGetTextDatum(step), CStringGetTextDatum(text)}; \
		bool nulls[2] = {false, false}; \
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); \
	} while (0)

	InitMaterializedSRF(fcinfo, 0);
	q = QueryDefLoad(name, QUERY_LOCK_NONE, false);
	/* the statements show the query's text: its owner's, as the catalog row */
	QueryCheckOwner(q);
	plan = q->plan;

	EMIT("query", plan->query_sql);
	EMIT("shape", psprintf("%s, %s mode",
						   plan->shape == SHAPE_AGGREGATE ? "incremental aggregation" :
						   plan->shape == SHAPE_DEDUP ? "deduplication (each key once)" : "stateless (rows appended)",
						   OutputModeName(q->mode)));
	foreach(lc, plan->sources)
		EMIT("source", RelationQualifiedName(lfirst_oid(lc)));
	if (plan->input != NULL)
	{
		Oid			view = RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(plan->input, "view")),
											NoLock, true);
		int			nestlevel = PushCatalogSearchPath();

		EMIT("input view", !OidIsValid(view) ? psprintf("%s (missing)", plan->input)
			 : psprintf("%s AS %s", plan->input,
						TextDatumGetCString(DirectFunctionCall2(pg_get_viewdef_ext,
																ObjectIdGetDatum(view),
																BoolGetDatum(false)))));
		PopCatalogSearchPath(nestlevel);
	}
	EMIT("result table", RelationQualifiedName(q->result_table));
	forboth(lc, plan->join_sources, lc2, plan->join_states)
	{
		int			i = foreach_current_index(lc);
		char	   *evict = i < list_length(plan->join_evict) ? list_nth(plan->join_evict, i) : "";
		char	   *why = i < list_length(plan->join_evict_why) ? list_nth(plan->join_evict_why, i) : "no watermark";
		bool		preserved = i < list_length(plan->join_keep) && ((char *) list_nth(plan->join_keep, i))[0] != '\0';

		EMIT("join state", psprintf("%s keeps the rows of %s; each batch joins every source's new rows with the other sources' new and kept rows, then keeps its new rows; %s%s",
									(char *) lfirst(lc2), (char *) lfirst(lc),
									evict[0] != '\0'
									? psprintf("a row is deleted when the watermark passes it, WHERE %s ($1: the watermark), as %s", evict, why)
									: psprintf("never evicted, without bound: %s", why),
									preserved ? "; the outer join keeps whether each row has matched (streaming_matched), and a row that never did is appended, padded with NULLs, when deleted" : ""));
	}
	if (plan->close_lag != NULL)
		EMIT("window close", psprintf("the windows close %s behind the watermark: a kept row of the window's source may join a later row of another stream",
									  plan->close_lag));
	if (plan->shape == SHAPE_AGGREGATE)
	{
		EMIT("batch plan", plan->batch_sql);
		EMIT("state table", psprintf("%s, unique on (%s)",
									 RelationQualifiedName(q->state_table),
									 quoted_columns(plan->state_keys)));
		if (plan->distinct_table != NULL)
			EMIT("distinct table", plan->retract
				 ? psprintf("%s (%s, streaming_rows, streaming_change), unique on (%s): streaming_rows counts the rows that hold each value; a batch adds and takes back its rows per value, and aggregates the values that came into their set (streaming_rows above 0) and those that left it",
							plan->distinct_table, plan->distinct_columns, plan->distinct_columns)
				 : psprintf("%s (%s), unique on all its columns: a batch inserts its distinct values, and aggregates those that were new%s",
							plan->distinct_table, plan->distinct_columns,
							plan->window_key != NULL && q->mode != OUTPUT_COMPLETE
							? "; the values of a window go when the watermark closes it" : ""));
		foreach(lc, plan->aggregates)
			EMIT("aggregate", (char *) lfirst(lc));
		EMIT("merge", plan->merge_set && plan->merge_set[0] ? psprintf("ON CONFLICT DO UPDATE SET %s", plan->merge_set)
			 : "ON CONFLICT DO NOTHING");
		/* values of the aggregates over the state row m, then columns over keys and values */
		foreach(lc, plan->values)
			EMIT("finalizer", psprintf("v%d = %s", foreach_current_index(lc) + 1, (char *) lfirst(lc)));
		forboth(lc, plan->result_columns, lc2, plan->finalizers)
			EMIT("finalizer", psprintf("%s = %s", quote_identifier(lfirst(lc)), (char *) lfirst(lc2)));
		if (plan->having != NULL)
			EMIT("having", plan->having);
		if (plan->topn_limit > 0)
			EMIT("top-n", TopNExplain(plan));
		if (q->mode == OUTPUT_APPEND)
			EMIT("emit", psprintf("append the finalized rows of the windows the watermark closes%s to %s",
								  plan->having ? " that satisfy HAVING" : "",
								  RelationQualifiedName(q->result_table)));
		else if (plan->topn_partition != NIL)
			EMIT("emit", psprintf("replace in %s the rows of the partitions the batch touched by their top ranked rows, upserted on (%s)",
								  RelationQualifiedName(q->result_table), quoted_columns(plan->result_keys)));
		else if (plan->topn_limit > 0)
			EMIT("emit", psprintf("keep in %s the finalized rows of the top " INT64_FORMAT " groups, upserted on (%s)",
								  RelationQualifiedName(q->result_table), plan->topn_limit,
								  quoted_columns(plan->result_keys)));
		else if (plan->result_keys != NIL)
			EMIT("emit", psprintf("upsert the finalized rows of the groups the batch touched%s into %s on (%s)%s",
								  plan->having ? " that satisfy HAVING" : "",
								  RelationQualifiedName(q->result_table), quoted_columns(plan->result_keys),
								  plan->having ? "; delete the rows of those that do not" : ""));
		else
			EMIT("emit", psprintf("replace the single row of %s%s", RelationQualifiedName(q->result_table),
								  plan->having ? " (with none if it does not satisfy HAVING)" : ""));
	}
	else if (plan->shape == SHAPE_DEDUP)
	{
		EMIT("state table", psprintf("%s, unique on (%s)%s",
									 RelationQualifiedName(q->state_table),
									 quoted_columns(plan->state_keys),
									 plan->time_key ? psprintf(", keys evicted when %s <= watermark%s",
															   quote_identifier(plan->time_key),
															   plan->close_lag ? psprintf(" - %s", plan->close_lag) : "") : ""));
		EMIT("emit", psprintf("append the rows whose key the state did not hold to %s",
							  RelationQualifiedName(q->result_table)));
	}
	else
		EMIT("emit", psprintf("append the query's rows over the batch to %s",
							  RelationQualifiedName(q->result_table)));
	EMIT("statement", BuildBatchStatement(plan, q->result_table, q->state_table, 0));
	{
		char	   *close_sql = BuildCloseStatement(plan, q->result_table, q->state_table, 0);

		if (close_sql != NULL)
			EMIT("close", close_sql);
	}

	return (Datum) 0;
}
