/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  The micro-batch engine and streaming.run().
 *
 * One micro-batch runs inside one transaction (the caller's, for run();
 * its own, in a query worker):
 *
 *	lock the query's catalog row (no two runners process the same input)
 *	read the committed offsets, plan the batch's input, decode it
 *	run the batch statement: batch plan -> merge into state -> emit
 *	write the new offsets, dead letters, batch id and a progress row
 *
 * so the state, the result table and the offsets commit or roll back
 * together, and a crash replays exactly the uncommitted input.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"


#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "bulk_insert.h"
#include "formats/event_time.h"
#include "partial_agg.h"
#include "preagg.h"
#include "plan_cache.h"
#include "query.h"
#include "sinks/sink.h"
#include "slices.h"
#include "source.h"
#include "streaming.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(streaming_run);

TimestampTz BatchAvailableNow = 0;
bool		BatchLive = false;

/* what one batch did, for its progress row */
typedef struct BatchStats
{
	int64		batch_id;
	int64		updated;		/* state rows inserted or updated */
	int64		inserted;		/* of which new groups */
	int64		removed;		/* state rows closed by the watermark */
	int64		join_removed;	/* rows of a join's states it evicted */
	int64		sink_rows;
	bool		watermark_valid;
	TimestampTz watermark;		/* after this batch */
	bool		closed_valid;
	TimestampTz closed_until;	/* the largest window end (key) it closed */
	TimestampTz t_start;
	TimestampTz t_planned;
	TimestampTz t_decoded;
	TimestampTz t_merging;		/* a slice's batch holds the query's row */
	TimestampTz t_executed;
	double		prepare_ms;		/* preparing its statements (0: reused) */
	int			flushes;		/* statements run while decoding (flush_rows) */
	double		flush_ms;		/* and how long they took */
	int64		batch_rows;		/* rows its scan of the source returns */
	int			slice;			/* the slice it reads, or SLICE_WHOLE */
	/* a slice's batch: the other slices, as lock_for_merge read them */
	bool		others_behind;	/* one is behind and has no watermark yet */
	bool		hold_valid;		/* the least watermark of those behind */
	TimestampTz hold;
	bool		others_valid;	/* the largest watermark of the others */
	TimestampTz others;
	bool		own_valid;		/* the slice's own watermark, before and */
	TimestampTz own;			/* after the batch */
} BatchStats;

static double
ms_between(TimestampTz start, TimestampTz stop)
{
	return (double) (stop - start) / 1000.0;
}

/*
 * decode_batch reads the planned input into batch->rows.  The fast path
 * decodes everything in one subtransaction; if any record raises an error
 * the subtransaction is rolled back and the input decoded again record by
 * record, so that bad records become dead letters and good ones are kept.
 */
static void
decode_batch(SourceBatch *batch)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool failed = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		batch->routine->read_batch(batch, false);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		/*
		 * Cancellation and the like are not about the input, nor is the
		 * failure of a statement run over decoded rows (flush_rows), which
		 * decoding again would only meet again.
		 */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
			edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY ||
			batch->flush_failed)
			ReThrowError(edata);
		FreeErrorData(edata);
		failed = true;
	}
	PG_END_TRY();

	if (failed)
	{
		/*
		 * Record by record, a failing record's subtransaction would take
		 * back a flush it started: the careful pass keeps every row.
		 */
		batch->flush = NULL;
		batch->consume = NULL;
		SourceBatchReset(batch);
		batch->routine->read_batch(batch, true);
	}
}

/*
 * text_array builds a text[] from C strings.
 */
static Datum
text_array(List *strings)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(strings), 1));
	ListCell   *lc;

	foreach(lc, strings)
		elems[foreach_current_index(lc)] = CStringGetTextDatum(lfirst(lc));
	return PointerGetDatum(construct_array(elems, list_length(strings), TEXTOID,
										   -1, false, TYPALIGN_INT));
}

/*
 * commit_source writes what a batch consumed of one source: its offsets
 * and its dead letters.
 */
static void
commit_source(QueryDef *q, SourceBatch *sb, int64 batch_id)
{
	ListCell   *lc;
	List	   *partitions = NIL;
	Datum	   *offsets;
	Oid			argtypes[6];
	Datum		args[6];
	char		nulls[6];

	/* offsets */
	offsets = palloc(sizeof(Datum) * Max(list_length(sb->offsets), 1));
	foreach(lc, sb->offsets)
	{
		SourceOffset *off = lfirst(lc);

		partitions = lappend(partitions, off->partition);
		offsets[foreach_current_index(lc)] = Int64GetDatum(off->offset);
	}
	if (sb->offsets != NIL)
	{
		argtypes[0] = TEXTOID;
		argtypes[1] = OIDOID;
		argtypes[2] = TEXTARRAYOID;
		argtypes[3] = INT8ARRAYOID;
		argtypes[4] = INT8OID;
		args[0] = CStringGetTextDatum(q->name);
		args[1] = ObjectIdGetDatum(sb->relid);
		args[2] = text_array(partitions);
		args[3] = PointerGetDatum(construct_array(offsets, list_length(sb->offsets), INT8OID,
												  sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[4] = Int64GetDatum(batch_id);
		if (CatalogExecute("INSERT INTO streaming.offsets AS o "
								  "(query, source, partition, \"offset\", batch_id) "
								  "SELECT $1, $2, p, n, $5 FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) AS u(p, n) "
								  "ON CONFLICT (query, source, partition) DO UPDATE "
								  "SET \"offset\" = EXCLUDED.\"offset\", batch_id = EXCLUDED.batch_id, "
								  "committed_at = pg_catalog.now()",
								  5, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write streaming.offsets");
	}

	/* dead letters */
	foreach(lc, sb->dead_letters)
	{
		DeadLetter *dl = lfirst(lc);

		argtypes[0] = TEXTOID;
		argtypes[1] = OIDOID;
		argtypes[2] = INT8OID;
		argtypes[3] = TEXTOID;
		argtypes[4] = BYTEAOID;
		argtypes[5] = TEXTOID;
		args[0] = CStringGetTextDatum(q->name);
		args[1] = ObjectIdGetDatum(sb->relid);
		args[2] = Int64GetDatum(batch_id);
		args[3] = CStringGetTextDatum(dl->position);
		args[4] = PointerGetDatum(dl->payload);
		args[5] = CStringGetTextDatum(dl->error);
		memset(nulls, ' ', sizeof(nulls));
		nulls[4] = dl->payload ? ' ' : 'n';
		if (CatalogExecute("INSERT INTO streaming.dead_letters "
								  "(query, source, batch_id, position, payload, error) "
								  "VALUES ($1, $2, $3, $4, $5, $6)",
								  6, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write streaming.dead_letters");
	}
}

/*
 * advance_watermark computes the query's watermark after a batch, as
 * Spark's WatermarkTracker does with its default policy (min): each
 * source's watermark is its largest event time seen minus its delay, never
 * moving back; the query's is the least of them, and never moves back
 * either.  A source that has read no event time yet holds it back, as
 * Spark counts it at 0 (with a catalog older than 0.5, which keeps no
 * source's watermark across batches, the sources of this batch that read
 * one make it).  The sources' watermarks of earlier
 * batches come from streaming.source_watermarks, to which commit_batch
 * writes those of this batch (before ALTER EXTENSION streaming UPDATE to
 * 0.5, only this batch's count, as for a single source before).
 */
static void
advance_watermark(QueryDef *q, List *batches, BatchStats *st)
{
	ListCell   *lc;
	bool		any = false;
	bool		all_seen = true;
	TimestampTz least = 0;

	st->watermark_valid = q->watermark_valid;
	st->watermark = q->watermark;
	if (!q->has_watermark)
		return;
	/*
	 * one source: its watermark is the query's, which streaming.queries
	 * keeps; the table is read and written only for several
	 */
	if (list_length(batches) > 1 && CatalogHasSourceWatermarks())
	{
		Oid			argtypes[1] = {TEXTOID};
		Datum		args[1] = {CStringGetTextDatum(q->name)};

		SPI_connect();
		/* not read-only: what a runner we waited for committed, too */
		if (CatalogExecute("SELECT source::pg_catalog.oid, max_event_time, watermark "
						   "FROM streaming.source_watermarks WHERE query OPERATOR(pg_catalog.=) $1",
						   1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read streaming.source_watermarks");
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		isnull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));

			foreach(lc, batches)
			{
				SourceBatch *sb = lfirst(lc);

				if (sb->relid != relid || sb->event_time_attno == 0)
					continue;
				sb->source_seen = true;
				sb->source_max = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
				sb->source_watermark = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
			}
		}
		SPI_finish();
	}
	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);

		if (sb->has_max_event_time)
		{
			TimestampTz wm = EventTimeWatermark(sb->max_event_time, sb->event_time_delay);

			if (!sb->source_seen || sb->max_event_time > sb->source_max)
				sb->source_max = sb->max_event_time;
			if (!sb->source_seen || wm > sb->source_watermark)
				sb->source_watermark = wm;
			sb->source_seen = true;
			sb->source_moved = true;
		}
		if (sb->source_seen && (!any || sb->source_watermark < least))
		{
			least = sb->source_watermark;
			any = true;
		}
		/*
		 * A source with an event time that has read none yet holds the
		 * watermark back, as Spark's WatermarkTracker counts such a source
		 * at 0: otherwise its first rows could be late for windows that
		 * the other sources' watermark closed before it had any.
		 */
		if (sb->event_time_attno > 0 && !sb->source_seen && CatalogHasSourceWatermarks())
			all_seen = false;
	}
	/* -infinity: a delay beyond the range of timestamptz, no watermark yet */
	if (any && all_seen && !TIMESTAMP_IS_NOBEGIN(least) && (!st->watermark_valid || least > st->watermark))
	{
		st->watermark = least;
		st->watermark_valid = true;
	}
}

/*
 * commit_source_watermarks writes the watermarks of the sources that read
 * event times in this batch, for a query over several (see
 * advance_watermark).
 */
static void
commit_source_watermarks(QueryDef *q, List *batches, int64 batch_id)
{
	ListCell   *lc;

	if (!q->has_watermark || list_length(batches) < 2 || !CatalogHasSourceWatermarks())
		return;
	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);
		Oid			argtypes[5] = {TEXTOID, OIDOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID};
		Datum		args[5];

		if (!sb->source_moved)
			continue;
		args[0] = CStringGetTextDatum(q->name);
		args[1] = ObjectIdGetDatum(sb->relid);
		args[2] = TimestampTzGetDatum(sb->source_max);
		args[3] = TimestampTzGetDatum(sb->source_watermark);
		args[4] = Int64GetDatum(batch_id);
		if (CatalogExecute("INSERT INTO streaming.source_watermarks AS w "
						   "(query, source, max_event_time, watermark, batch_id) "
						   "VALUES ($1, $2::pg_catalog.regclass, $3, $4, $5) "
						   "ON CONFLICT (query, source) DO UPDATE "
						   "SET max_event_time = EXCLUDED.max_event_time, watermark = EXCLUDED.watermark, "
						   "batch_id = EXCLUDED.batch_id",
						   5, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write streaming.source_watermarks");
	}
}

/*
 * commit_batch writes what the batch consumed and what it did, in the
 * batch's transaction: offsets, dead letters, the query's row, progress.
 */
static void
commit_batch(QueryDef *q, List *batches, BatchStats *st)
{
	ListCell   *blc;
	int64		input_rows = 0;
	int64		n_dead_letters = 0;
	int64		late_rows = 0;
	TimestampTz t_end;
	double		total_ms;
	double		in_rate = -1;
	StringInfoData durations;
	StringInfoData sources;
	Oid			argtypes[17];
	Datum		args[17];
	char		nulls[17];
	int64		batch_id = st->batch_id;
	TimestampTz t_start = st->t_start;

	SPI_connect();

	foreach(blc, batches)
	{
		SourceBatch *sb = lfirst(blc);

		input_rows += sb->input_rows;
		n_dead_letters += sb->n_dead_letters;
		late_rows += sb->drop_late ? sb->late_rows : 0;
		commit_source(q, sb, batch_id);
	}
	commit_source_watermarks(q, batches, batch_id);

	/* progress, in Spark's StreamingQueryProgress terms */
	t_end = GetCurrentTimestamp();
	total_ms = ms_between(t_start, t_end);
	if (q->last_progress_at != 0 && t_start > q->last_progress_at)
		in_rate = input_rows / (ms_between(q->last_progress_at, t_start) / 1000.0);

	initStringInfo(&durations);
	appendStringInfo(&durations,
					 "{\"latest_offset\": %.3f, \"get_batch\": %.3f, \"add_batch\": %.3f, "
					 "\"query_planning\": %.3f, \"commit_offsets\": %.3f, \"trigger_execution\": %.3f",
					 ms_between(t_start, st->t_planned), ms_between(st->t_planned, st->t_decoded),
					 ms_between(st->t_merging, st->t_executed), st->prepare_ms,
					 ms_between(st->t_executed, t_end), total_ms);
	/* the part of add_batch that ran while get_batch decoded (flush_rows) */
	if (st->flushes > 0)
		appendStringInfo(&durations, ", \"add_batch_while_reading\": %.3f", st->flush_ms);
	/* a slice's batch: how long it waited for the others' merges */
	if (st->slice != SLICE_WHOLE)
		appendStringInfo(&durations, ", \"merge_wait\": %.3f, \"slice\": %d",
						 ms_between(st->t_decoded, st->t_merging), st->slice);
	appendStringInfoChar(&durations, '}');
	initStringInfo(&sources);
	appendStringInfoChar(&sources, '[');
	foreach(blc, batches)
	{
		SourceBatch *sb = lfirst(blc);

		appendStringInfoString(&sources, foreach_current_index(blc) > 0 ? ", {\"source\": " : "{\"source\": ");
		escape_json(&sources, sb->name);
		appendStringInfoString(&sources, ", \"kind\": ");
		escape_json(&sources, sb->routine->kind);
		appendStringInfo(&sources, ", \"start_offset\": %s, \"end_offset\": %s, ",
						 sb->start_offset ? JsonbToCString(NULL, &sb->start_offset->root, 0) : "null",
						 sb->end_offset ? JsonbToCString(NULL, &sb->end_offset->root, 0) : "null");
		if (sb->latest_offset)
			appendStringInfo(&sources, "\"latest_offset\": %s, ",
							 JsonbToCString(NULL, &sb->latest_offset->root, 0));
		if (sb->lost_records > 0)
			appendStringInfo(&sources, "\"lost_records\": " INT64_FORMAT ", ", sb->lost_records);
		if (sb->metrics)
			appendStringInfo(&sources, "%s, ", sb->metrics);
		appendStringInfo(&sources, "\"input_rows\": " INT64_FORMAT ", \"dead_letters\": " INT64_FORMAT "}",
						 sb->input_rows, sb->n_dead_letters);
	}
	appendStringInfoChar(&sources, ']');

	memset(nulls, ' ', sizeof(nulls));
	argtypes[0] = TEXTOID;
	args[0] = CStringGetTextDatum(q->name);
	argtypes[1] = INT8OID;
	args[1] = Int64GetDatum(batch_id);
	argtypes[2] = TIMESTAMPTZOID;
	args[2] = TimestampTzGetDatum(t_start);
	argtypes[3] = INT8OID;
	args[3] = Int64GetDatum(input_rows);
	argtypes[4] = FLOAT8OID;
	args[4] = Float8GetDatum(in_rate);
	nulls[4] = in_rate < 0 ? 'n' : ' ';
	argtypes[5] = FLOAT8OID;
	args[5] = Float8GetDatum(total_ms > 0 ? input_rows / (total_ms / 1000.0) : 0);
	argtypes[6] = TEXTOID;
	args[6] = CStringGetTextDatum(durations.data);
	argtypes[7] = INT8OID;
	args[7] = Int64GetDatum(q->state_rows + st->inserted - st->removed);
	nulls[7] = OidIsValid(q->state_table) ? ' ' : 'n';
	argtypes[8] = INT8OID;
	args[8] = Int64GetDatum(st->updated);
	nulls[8] = OidIsValid(q->state_table) ? ' ' : 'n';
	argtypes[9] = INT8OID;
	args[9] = Int64GetDatum(n_dead_letters);
	argtypes[10] = TEXTOID;
	args[10] = CStringGetTextDatum(sources.data);
	argtypes[11] = INT8OID;
	args[11] = Int64GetDatum(st->sink_rows);
	argtypes[12] = INT8OID;
	args[12] = Int64GetDatum(st->inserted - st->removed);
	argtypes[13] = TIMESTAMPTZOID;
	args[13] = TimestampTzGetDatum(st->watermark);
	nulls[13] = st->watermark_valid ? ' ' : 'n';
	argtypes[14] = INT8OID;
	args[14] = Int64GetDatum(late_rows);
	argtypes[15] = INT8OID;
	args[15] = Int64GetDatum(st->removed + st->join_removed);
	if (CatalogExecute("INSERT INTO streaming.progress (query, batch_id, \"timestamp\", "
							  "input_rows, input_rows_per_second, processed_rows_per_second, "
							  "duration_ms, state_rows_total, state_rows_updated, dead_letters, "
							  "sources, sink_rows, watermark, state_rows_dropped_by_watermark, "
							  "state_rows_removed) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7::pg_catalog.jsonb, $8, $9, $10, $11::pg_catalog.jsonb, $12, "
							  "$14, $15, $16)",
							  16, argtypes, args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write streaming.progress");

	/* bounded history: older progress rows go, by primary-key range */
	if (streaming_progress_retention > 0 && batch_id >= streaming_progress_retention)
	{
		Oid			rtypes[2] = {TEXTOID, INT8OID};
		Datum		rargs[2] = {args[0], Int64GetDatum(batch_id - streaming_progress_retention)};

		if (CatalogExecute("DELETE FROM streaming.progress WHERE query OPERATOR(pg_catalog.=) $1 "
						   "AND batch_id OPERATOR(pg_catalog.<=) $2",
								  2, rtypes, rargs, NULL, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not trim streaming.progress");
	}

	/* since 0.3: totals, and the bound of what the watermark closed */
	argtypes[16] = TIMESTAMPTZOID;
	args[16] = TimestampTzGetDatum(st->closed_until);
	nulls[16] = st->closed_valid ? ' ' : 'n';
	if (CatalogExecute(CatalogHasOperatingColumns()
					   ? "UPDATE streaming.queries SET last_batch_id = $2, "
					   "last_progress_at = $3, state_rows = state_rows OPERATOR(pg_catalog.+) $13, "
					   "watermark = $14, closed_until = GREATEST(closed_until, $17), "
					   "input_rows_total = input_rows_total OPERATOR(pg_catalog.+) $4, "
					   "late_rows_total = late_rows_total OPERATOR(pg_catalog.+) $15, "
					   "dead_letters_total = dead_letters_total OPERATOR(pg_catalog.+) $10, "
					   "sink_rows_total = sink_rows_total OPERATOR(pg_catalog.+) $12 "
					   "WHERE name OPERATOR(pg_catalog.=) $1"
					   : "UPDATE streaming.queries SET last_batch_id = $2, "
					   "last_progress_at = $3, state_rows = state_rows OPERATOR(pg_catalog.+) $13, "
					   "watermark = $14 "
					   "WHERE name OPERATOR(pg_catalog.=) $1",
					   CatalogHasOperatingColumns() ? 17 : 14, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");

	SPI_finish();
}

/* statement_spec: what run_statement prepares for one of q's statements */
static void
statement_spec(QueryDef *q, BatchStats *st, PreparedKind kind, const char *sql, PreparedSpec *spec)
{
	static Oid	close_types[1] = {TIMESTAMPTZOID};

	spec->query_id = q->id;
	spec->query = q->name;
	spec->kind = kind;
	spec->sql = sql;
	spec->nargs = 1;
	spec->argtypes = close_types;
	/* an optimistic statement resolves the names its plain one does */
	/* the bulk statement reads the input view alone, by its qualified name */
	spec->fingerprint = kind == PREPARED_BULK ? NULL :
		kind == PREPARED_CLOSE ? q->plan->close_fingerprint :
		kind == PREPARED_PARTIAL ? q->plan->partial_fingerprint :
		kind == PREPARED_COMBINED || kind == PREPARED_COMBINED_OPTIMISTIC ||
		kind == PREPARED_UNIQUE || kind == PREPARED_UNIQUE_OPTIMISTIC ? q->plan->combine_fingerprint :
		q->plan->batch_fingerprint;
	/* the close statement reads the state only */
	spec->scan_rows = kind == PREPARED_CLOSE ? 0 : st->batch_rows;
	spec->state_rows = q->state_rows;
}

/*
 * run_statement runs the batch or the close statement ($1: the watermark
 * after the batch, in options->params) of a query, prepared once per
 * process (ExecutePrepared), and returns SPI's result code.
 */
static int
run_statement(QueryDef *q, BatchStats *st, PreparedKind kind, const char *sql,
			  SPIExecuteOptions *options)
{
	PreparedSpec spec;

	statement_spec(q, st, kind, sql, &spec);
	return ExecutePrepared(&spec, options, &st->prepare_ms);
}

/*
 * writes_plainly: whether the batch statement of q is a stateless query's
 * plain INSERT of its rows (BuildBatchStatement): those of its input view,
 * or, planned by an earlier version without one, of its query.
 */
static bool
writes_plainly(QueryDef *q, int show_rows)
{
	return q->plan->shape == SHAPE_STATELESS && show_rows <= 0 && q->plan->join_sources == NIL;
}

/*
 * run_insert runs the plain INSERT sql of a stateless query
 * (writes_plainly), or, when it reads an input view and nothing could tell
 * the two apart (BulkInsertApplies), the SELECT of its input whose rows
 * bulk_insert.c writes as COPY FROM does; it returns how many rows it
 * wrote.
 */
static uint64
run_insert(QueryDef *q, BatchStats *st, const char *sql, SPIExecuteOptions *options)
{
	DestReceiver *dest;
	uint64		rows;

	if (q->plan->input == NULL ||
		!BulkInsertApplies(q->result_table,
						   RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(q->plan->input, "view")),
											NoLock, false),
						   q->plan->result_columns))
	{
		if (run_statement(q, st, PREPARED_BATCH, sql, options) != SPI_OK_INSERT)
			elog(ERROR, "batch statement of query \"%s\" failed", q->name);
		return SPI_processed;
	}
	dest = BulkInsertReceiverCreate(q->result_table);
	options->dest = dest;
	if (run_statement(q, st, PREPARED_BULK, psprintf("SELECT * FROM %s", q->plan->input),
					  options) != SPI_OK_SELECT)
		elog(ERROR, "batch statement of query \"%s\" failed", q->name);
	options->dest = NULL;
	rows = BulkInsertReceiverRows(dest);
	dest->rDestroy(dest);
	return rows;
}

/*
 * watermark_param: the statements' $1, the watermark after the batch (null
 * if the query has none yet)
 */
static ParamListInfo
watermark_param(BatchStats *st)
{
	ParamListInfo params = makeParamList(1);

	params->params[0].value = TimestampTzGetDatum(st->watermark);
	params->params[0].isnull = !st->watermark_valid;
	params->params[0].pflags = PARAM_FLAG_CONST;
	params->params[0].ptype = TIMESTAMPTZOID;
	return params;
}

/* queries whose optimistic statement met a row it did not expect */
static List *optimism_failed = NIL;

/*
 * run_batch_statement runs a query's batch statement: its optimistic form
 * first when there is one (BuildOptimisticBatchStatement), in a
 * subtransaction; if that finds a new group's row already in the result
 * table (a unique violation), the subtransaction goes and the statement
 * runs as it is, which upserts every group.  A query that met such a row
 * is not tried optimistically again in this process.
 */
static int
run_batch_statement(QueryDef *q, BatchStats *st, PreparedKind kind, const char *sql,
					const char *optimistic_sql, SPIExecuteOptions *options)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int rc = 0;
	volatile bool conflict = false;

	if (optimistic_sql == NULL || list_member_int(optimism_failed, q->id))
		return run_statement(q, st, kind, sql, options);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		rc = run_statement(q, st, kind == PREPARED_COMBINED ? PREPARED_COMBINED_OPTIMISTIC
						   : kind == PREPARED_UNIQUE ? PREPARED_UNIQUE_OPTIMISTIC
						   : PREPARED_BATCH_OPTIMISTIC, optimistic_sql, options);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		/* any other error leaves with the subtransaction gone, as it came */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
			ReThrowError(edata);
		elog(DEBUG1, "continuous query \"%s\": a new group's row was in the result table already (%s); its groups are upserted",
			 q->name, edata->message);
		FreeErrorData(edata);
		conflict = true;
	}
	PG_END_TRY();
	if (!conflict)
		return rc;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		optimism_failed = lappend_int(optimism_failed, q->id);
		MemoryContextSwitchTo(old);
	}
	return run_statement(q, st, kind, sql, options);
}

/*
 * execute_to_sink runs the batch and close statements of a query with the
 * file or Kafka sink: the rows they write to the result table go to the
 * sink as they come (in complete mode, the whole result table after them).
 * The statements are prepared once per process (ExecutePrepared).
 * The file enters the manifest, streaming.sink_files, in the batch's
 * transaction; Kafka has acknowledged every message before it commits.
 */
static void
execute_to_sink(QueryDef *q, BatchStats *st, PreparedKind kind, const char *sql, const char *close_sql)
{
	FileSink   *fs = NULL;
	KafkaSink  *ks = NULL;
	SinkRowCallback emit;
	void	   *arg;
	SPIExecuteOptions options;
	DestReceiver *dest;
	bool		passes = PlanPassesClosedWindows(q->plan, q->state_table);

	if (q->sink.kind == SINK_FILE)
	{
		/* as create_query checked, at every batch: rights can be revoked */
		if (!has_privs_of_role(q->owner, ROLE_PG_WRITE_SERVER_FILES))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to write the file sink of continuous query \"%s\"", q->name),
					 errdetail("Only roles with privileges of the \"pg_write_server_files\" role may write server files, and the query's owner no longer has them.")));
		fs = FileSinkBegin(&q->sink, st->batch_id);
		emit = FileSinkWrite;
		arg = fs;
	}
	else
	{
		ks = KafkaSinkBegin(&q->sink, q->name, q->owner);
		emit = KafkaSinkProduce;
		arg = ks;
	}

	memset(&options, 0, sizeof(options));
	dest = SinkReceiverCreate(passes ? 4 : 3, 3, emit, arg);
	options.dest = dest;
	options.params = watermark_param(st);
	if (run_statement(q, st, kind, sql, &options) != SPI_OK_SELECT)
		elog(ERROR, "batch statement of query \"%s\" failed", q->name);
	st->updated = SinkReceiverCount(dest, 1);
	st->inserted = SinkReceiverCount(dest, 2);
	st->sink_rows = SinkReceiverCount(dest, 3);
	/* groups that never entered the state count as inserted and removed */
	st->removed = passes ? SinkReceiverCount(dest, 4) : 0;
	dest->rDestroy(dest);

	if (close_sql != NULL)
		st->closed_valid = QueryClosingBound(q, st->watermark, &st->closed_until);
	if (close_sql != NULL)
	{
		bool		evicts = PlanEvictsJoin(q->plan);

		dest = SinkReceiverCreate(evicts ? 3 : 2, 2, emit, arg);
		options.dest = dest;
		options.params = watermark_param(st);
		if (run_statement(q, st, PREPARED_CLOSE, close_sql, &options) != SPI_OK_SELECT)
			elog(ERROR, "close statement of query \"%s\" failed", q->name);
		st->removed += SinkReceiverCount(dest, 1);
		st->sink_rows += SinkReceiverCount(dest, 2);
		if (evicts)
			st->join_removed = SinkReceiverCount(dest, 3);
		dest->rDestroy(dest);
	}

	/* complete mode sends the whole result every batch */
	if (q->mode == OUTPUT_COMPLETE)
	{
		TupleTableSlot *slot;

		/* not read-only: it must see what the batch statement wrote */
		if (SPI_execute(psprintf("SELECT * FROM %s", RelationQualifiedName(q->result_table)),
						false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the result of query \"%s\"", q->name);
		slot = MakeSingleTupleTableSlot(SPI_tuptable->tupdesc, &TTSOpsHeapTuple);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			ExecStoreHeapTuple(SPI_tuptable->vals[i], slot, false);
			emit(arg, slot, 0);
			ExecClearTuple(slot);
		}
		ExecDropSingleTupleTableSlot(slot);
	}

	if (ks != NULL)
		(void) KafkaSinkFinish(ks);
	else
	{
		char	   *path;
		int64		bytes;
		int64		rows = FileSinkFinish(fs, &path, &bytes);

		if (path != NULL)
		{
			Oid			argtypes[5] = {TEXTOID, INT8OID, TEXTOID, INT8OID, INT8OID};
			Datum		args[5] = {CStringGetTextDatum(q->name), Int64GetDatum(st->batch_id),
			CStringGetTextDatum(path), Int64GetDatum(rows), Int64GetDatum(bytes)};

			if (CatalogExecute("INSERT INTO streaming.sink_files (query, batch_id, path, rows, bytes) "
							   "VALUES ($1, $2, $3, $4, $5)", 5, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not write streaming.sink_files");
		}
	}
}

/*
 * execute_batch runs the batch statement (batch plan, merge, emit) and,
 * when the watermark has advanced, the close statement (emit and evict the
 * windows it closed).  They are analysed under the catalog's search_path,
 * where their text means what it meant at create_query (AnalyseResolved),
 * once per process and again only when what they use changes
 * (ExecutePrepared), and run as the query's owner under the search_path
 * pinned at create_query, which the user's functions and triggers see.
 */
static void
execute_batch(QueryDef *q, BatchStats *st, PreparedKind kind, const char *sql,
			  const char *optimistic_sql, const char *close_sql, int show_rows)
{
	bool		isnull;
	SPIExecuteOptions options;
	bool		passes = PlanPassesClosedWindows(q->plan, q->state_table);
	int			rc;

	SPI_connect();
	if (q->sink.kind == SINK_FILE || q->sink.kind == SINK_KAFKA)
	{
		execute_to_sink(q, st, kind, sql, close_sql);
		SPI_finish();
		return;
	}
	memset(&options, 0, sizeof(options));
	options.params = watermark_param(st);
	if (writes_plainly(q, show_rows))
	{
		/* after those that ran while decoding (flush_rows) */
		st->updated = st->inserted = 0;
		st->sink_rows += run_insert(q, st, sql, &options);
	}
	else
	{
		rc = run_batch_statement(q, st, kind, sql, optimistic_sql, &options);
		if (rc != SPI_OK_SELECT || SPI_processed < 1)
			elog(ERROR, "batch statement of query \"%s\" failed", q->name);
		st->updated = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		st->inserted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		st->sink_rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		/* groups that never entered the state count as inserted and removed */
		st->removed = passes ? DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)) : 0;
		if (show_rows > 0 && (q->mode != OUTPUT_APPEND || q->plan->shape != SHAPE_AGGREGATE))
			ConsoleSinkShow(q->name, st->batch_id, SPI_tuptable,
							st->sink_rows > 0 ? SPI_processed : 0, passes ? 5 : 4, &q->sink);
	}

	if (close_sql != NULL)
	{
		int64		emitted;
		bool		evicts = PlanEvictsJoin(q->plan);

		st->closed_valid = QueryClosingBound(q, st->watermark, &st->closed_until);

		options.params = watermark_param(st);
		if (run_statement(q, st, PREPARED_CLOSE, close_sql, &options) != SPI_OK_SELECT ||
			SPI_processed < 1)
			elog(ERROR, "close statement of query \"%s\" failed", q->name);
		st->removed += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		emitted = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		if (evicts)
			st->join_removed = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		st->sink_rows += emitted;
		if (show_rows > 0 && q->mode == OUTPUT_APPEND)
			ConsoleSinkShow(q->name, st->batch_id, SPI_tuptable,
							emitted > 0 ? SPI_processed : 0, evicts ? 4 : 3, &q->sink);
	}

	/* the console sink shows the whole result in complete mode */
	if (q->sink.kind == SINK_CONSOLE && q->mode == OUTPUT_COMPLETE)
	{
		char	   *order = "";

		if (q->plan->result_keys != NIL)
		{
			StringInfoData keys;
			ListCell   *lc;

			initStringInfo(&keys);
			foreach(lc, q->plan->result_keys)
				appendStringInfo(&keys, "%s%s", foreach_current_index(lc) > 0 ? ", " : " ORDER BY ",
								 quote_identifier(lfirst(lc)));
			order = keys.data;
		}
		if (SPI_execute(psprintf("SELECT * FROM %s%s LIMIT %d", RelationQualifiedName(q->result_table),
								 order, q->sink.num_rows + 1), false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the result of query \"%s\"", q->name);
		ConsoleSinkShow(q->name, st->batch_id, SPI_tuptable, SPI_processed, 1, &q->sink);
	}
	if (q->sink.kind == SINK_NOTIFY)
		NotifySinkSend(&q->sink, q->name, st->batch_id, st->sink_rows);
	SPI_finish();
}

/*
 * A stateless query's batch that decodes many rows writes them while it
 * decodes: each time the source's rows reach FLUSH_ROWS, its INSERT runs
 * over them (in the batch's transaction, as the query's owner) and they
 * are let go.  The rows then stay in memory instead of spilling to a
 * temporary file, and a Kafka consumer goes on fetching the next messages
 * while the rows are inserted, rather than the batch inserting only once
 * everything is read.  The batch and its offsets commit as one, as before.
 */
#define FLUSH_ROWS	10000

/*
 * A grouped query's batch aggregates its rows in parts of PART_ROWS rows
 * (partial_agg.c): larger parts than a stateless query writes, for fewer
 * partial states of the same group to combine (rows of one group come
 * spread over a Kafka batch, a partition after another), still within the
 * default work_mem.
 */
#define PART_ROWS	40000

/*
 * A batch of at least OPTIMISTIC_ROWS rows (or partial states) writes its
 * new groups with a plain INSERT (run_batch_statement); a smaller one would
 * spend on the subtransaction what it saves.
 */
#define OPTIMISTIC_ROWS	1000

typedef struct FlushContext
{
	QueryDef   *q;
	BatchStats *st;
	const char *sql;
	Oid			owner;			/* the query's owner, as the statement runs */
	int			owner_sec_context;
	bool		checked;		/* a stateless query: writes_apart_safely */
	/* a grouped query: the partial states of the parts (partial_agg.c) */
	bool		in_parts;
	Tuplestorestate *partials;	/* made by the first part */
	TupleDesc	partials_desc;	/* the state table's columns */
	MemoryContext cxt;			/* the batch's */
	ResourceOwner resowner;		/* the batch's, outside the decoding's
								 * subtransaction */
	/* the same, aggregated in C as it is decoded (preagg.c) */
	Preagg	   *preagg;
	CachedPlan *partial_plan;	/* the parts' plan, which it runs */
	int64		preagg_rows;	/* rows it aggregated since it last wrote its
								 * groups (a row per window of a sliding one) */
	bool		unique;			/* it wrote the partial states once, one row
								 * per group in the order of their keys */
} FlushContext;

/* reads_relation: whether a relation WalkViewReads visits is *target */
static bool
reads_relation(Oid relid, Query *view_query, void *target)
{
	return view_query == NULL && relid == *(Oid *) target;
}

/*
 * flushes_early: whether the batch of sb may write its rows as it decodes
 * them: a stateless query's plain INSERT (BuildBatchStatement) over one
 * source, whose rows are independent of one another (no stream join, no
 * retraction, no slices), into a table that no trigger watches (a
 * statement trigger fires once per batch, as it did) and that the query
 * does not read (sink_options.table: a query that skips the rows the table
 * holds would see those of its own batch's earlier writes, which one
 * statement per batch does not).
 */
static bool
flushes_early(QueryDef *q, int show_rows, int slice)
{
	return writes_plainly(q, show_rows) && q->plan->input != NULL && list_length(q->plan->sources) == 1 &&
		!q->plan->retract && slice == SLICE_WHOLE && (q->sink.kind == SINK_TABLE || q->sink.kind == SINK_NOTIFY);
}

/*
 * writes_apart_safely: the rest of flushes_early's conditions, which look
 * at the catalog, asked only of a batch that has rows to write apart
 * (flush_rows), not of every small one.
 */
static bool
writes_apart_safely(QueryDef *q)
{
	HeapTuple	tup;
	bool		triggers;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(q->result_table));
	if (!HeapTupleIsValid(tup))
		return false;
	triggers = ((Form_pg_class) GETSTRUCT(tup))->relhastriggers ||
		((Form_pg_class) GETSTRUCT(tup))->relhasrules;
	ReleaseSysCache(tup);
	if (triggers)
		return false;

	/* the input view, and what it reads */
	return !WalkViewReads(RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(q->plan->input, "view")),
										   NoLock, false),
						  reads_relation, &q->result_table);
}

/*
 * partials_store: where the partial states of a batch aggregated in parts
 * go, made by the first part.  Its temporary file, if it spills, belongs
 * to the batch: it outlives a decoding that fails and is taken back.
 */
static Tuplestorestate *
partials_store(FlushContext *fc)
{
	if (fc->partials == NULL)
	{
		ResourceOwner decoding = CurrentResourceOwner;
		MemoryContext old = MemoryContextSwitchTo(fc->cxt);

		CurrentResourceOwner = fc->resowner;
		fc->partials = tuplestore_begin_heap(false, false, work_mem);
		CurrentResourceOwner = decoding;
		MemoryContextSwitchTo(old);
	}
	return fc->partials;
}

/*
 * flush_rows runs, over the rows sb holds, a stateless query's INSERT or a
 * grouped query's batch plan (whose partial states it keeps), in the
 * middle of decoding (SourceBatchAddRow), and empties them.  The decoder
 * runs as the source's owner; the statement runs as the query's, as it
 * does after decoding.
 */
static void
flush_rows(SourceBatch *sb, void *arg)
{
	FlushContext *fc = arg;
	Oid			decoder;
	int			decoder_sec_context;
	int64		n = tuplestore_tuple_count(sb->rows);
	SPIExecuteOptions options;

	TimestampTz t0 = GetCurrentTimestamp();

	if (!fc->in_parts && !fc->checked)
	{
		fc->checked = true;
		if (!writes_apart_safely(fc->q))
		{
			/* the batch writes its rows after decoding, in one statement */
			sb->flush = NULL;
			return;
		}
	}
	GetUserIdAndSecContext(&decoder, &decoder_sec_context);
	SetUserIdAndSecContext(fc->owner, fc->owner_sec_context);
	FdwSetBatchInput(sb->relid, sb->rows);
	sb->flush_failed = true;
	PG_TRY();
	{
		SPI_connect();
		memset(&options, 0, sizeof(options));
		options.params = watermark_param(fc->st);
		fc->st->batch_rows = n;
		if (fc->in_parts)
		{
			DestReceiver *dest = CreateDestReceiver(DestTuplestore);

			SetTuplestoreDestReceiverParams(dest, partials_store(fc), fc->cxt, false, NULL, NULL);
			options.dest = dest;
			/* plans made before partial_sql: the batch plan, sorted */
			if (run_statement(fc->q, fc->st, PREPARED_PARTIAL,
							  fc->q->plan->partial_sql ? fc->q->plan->partial_sql : fc->q->plan->batch_sql,
							  &options) != SPI_OK_SELECT)
				elog(ERROR, "batch plan of query \"%s\" failed", fc->q->name);
			dest->rDestroy(dest);
		}
		else
		{
			sb->flushed_out += run_insert(fc->q, fc->st, fc->sql, &options);
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		FdwClearBatchInput();
	}
	PG_END_TRY();
	SetUserIdAndSecContext(decoder, decoder_sec_context);
	sb->flush_failed = false;
	sb->flushed_rows += n;
	sb->flushes++;
	sb->flush_ms += ms_between(t0, GetCurrentTimestamp());
	tuplestore_clear(sb->rows);
}

/*
 * dump_groups writes the groups that the batch's C aggregation holds to
 * its partial states, as a part would (flush_rows): all of them, or of a
 * full table, those PreaggDump lets go.
 */
static int64
dump_groups(FlushContext *fc, SourceBatch *sb, bool all)
{
	TimestampTz t0 = GetCurrentTimestamp();
	int64		groups = PreaggDump(fc->preagg, partials_store(fc), all);

	if (groups > 0)
		sb->flushes++;
	sb->flush_ms += ms_between(t0, GetCurrentTimestamp());
	return groups;
}

/*
 * consume_row aggregates one decoded row of a batch in C (preagg.c), as
 * the query's owner, as its parts' statement would: an error there is the
 * query's, not the input's (flush_failed).
 */
static void
consume_row(SourceBatch *sb, Datum *values, bool *nulls, void *arg)
{
	FlushContext *fc = arg;
	Oid			decoder;
	int			decoder_sec_context;

	GetUserIdAndSecContext(&decoder, &decoder_sec_context);
	SetUserIdAndSecContext(fc->owner, fc->owner_sec_context);
	sb->flush_failed = true;
	fc->preagg_rows += PreaggAddRow(fc->preagg, values, nulls);
	sb->flushed_rows++;
	if (PreaggFull(fc->preagg))
	{
		int64		rows = fc->preagg_rows;

		/*
		 * A table that fills before its groups take two rows each on
		 * average hardly combines anything: the rest of the batch goes to
		 * the parts' statement, whose hash aggregation spills instead.
		 */
		if (dump_groups(fc, sb, false) * 2 > rows)
		{
			/* those it kept too */
			dump_groups(fc, sb, true);
			sb->consume = NULL;
			elog(DEBUG1, "continuous query \"%s\": the groups of its batch outgrow hash_mem as fast as its rows come; the rest of the batch is aggregated by its parts' statement",
				 fc->q->name);
		}
		fc->preagg_rows = 0;
	}
	sb->flush_failed = false;
	SetUserIdAndSecContext(decoder, decoder_sec_context);
}

/*
 * begin_preagg: a batch that would be aggregated in parts is aggregated in
 * C as it is decoded instead (preagg.c), when the parts' plan allows; its
 * rows are then not kept for the parts' statement.  The plan is held until
 * end_preagg.  Called as the query's owner.
 */
static void
begin_preagg(FlushContext *fc, SourceBatch *sb)
{
	PreparedSpec spec;
	Relation	state;
	const char *why_not = NULL;
	int64		batch_rows = fc->st->batch_rows;

	if (fc->q->plan->partial_sql == NULL)
		return;
	state = table_open(fc->q->state_table, AccessShareLock);
	fc->partials_desc = CreateTupleDescCopy(RelationGetDescr(state));
	table_close(state, AccessShareLock);

	/* the plan a part of PART_ROWS rows runs */
	fc->st->batch_rows = PART_ROWS;
	statement_spec(fc->q, fc->st, PREPARED_PARTIAL, fc->q->plan->partial_sql, &spec);
	fc->st->batch_rows = batch_rows;
	SPI_connect();
	fc->partial_plan = PreparedPlan(&spec, &fc->st->prepare_ms);
	SPI_finish();
	if (fc->partial_plan != NULL)
		fc->preagg = PreaggBegin(linitial_node(PlannedStmt, fc->partial_plan->stmt_list), sb->rel,
								 fc->partials_desc, fc->cxt, fc->q->plan->combine_unique_sql != NULL,
								 &why_not);
	if (fc->preagg == NULL)
	{
		if (fc->partial_plan != NULL)
			ReleaseCachedPlan(fc->partial_plan, CurrentResourceOwner);
		fc->partial_plan = NULL;
		elog(DEBUG1, "continuous query \"%s\": its batch is aggregated by its parts' statement: %s",
			 fc->q->name, why_not ? why_not : "its plan is being prepared again");
		return;
	}
	elog(DEBUG1, "continuous query \"%s\": its batch is aggregated as it is decoded", fc->q->name);
	sb->consume = consume_row;
}

/*
 * end_preagg: the rows are decoded.  When the fast pass aggregated them to
 * the end, the groups left go to the partial states; when it failed and
 * the input was decoded again record by record, the rows were kept for
 * the statement; when consume_row gave the rest of the batch to the
 * parts' statement, the table was just written out.
 */
static void
end_preagg(FlushContext *fc, SourceBatch *sb)
{
	if (sb->consume != NULL)
	{
		/*
		 * Groups written out in the order of their keys, each once, when
		 * the plan has a statement that reads them so (PreaggDumpSorted).
		 */
		if (fc->q->plan->combine_unique_sql != NULL && tuplestore_tuple_count(sb->rows) == 0)
		{
			TimestampTz t0 = GetCurrentTimestamp();
			int64		groups = PreaggDumpSorted(fc->preagg, partials_store(fc));

			fc->unique = groups >= 0;
			if (groups > 0)
				sb->flushes++;
			sb->flush_ms += ms_between(t0, GetCurrentTimestamp());
		}
		if (!fc->unique)
			dump_groups(fc, sb, true);
		elog(DEBUG1, "continuous query \"%s\": " INT64_FORMAT " rows aggregated as they were decoded, into " INT64_FORMAT " partial states%s",
			 fc->q->name, sb->flushed_rows, fc->partials ? (int64) tuplestore_tuple_count(fc->partials) : 0,
			 fc->unique ? ", one per group, in the order of their keys" : "");
	}
	sb->consume = NULL;
	PreaggEnd(fc->preagg);
	fc->preagg = NULL;
	ReleaseCachedPlan(fc->partial_plan, fc->resowner);
	fc->partial_plan = NULL;
}

/*
 * open_source sets up the batch of one source of a query: what the query
 * asks of it (event time, late rows, trigger), before plan_batch.
 */
static SourceBatch *
open_source(QueryDef *q, Oid relid, EventTimeEntry *event_time, int slice,
			MemoryContext batchcxt)
{
	SourceBatch *sb = palloc0(sizeof(SourceBatch));
	char	   *kind;

	sb->query = q->name;
	sb->query_id = q->id;
	sb->slice = slice == SLICE_WHOLE ? 0 : slice;
	sb->nslices = slice == SLICE_WHOLE ? 1 : q->parallelism;
	sb->relid = relid;
	if (!SourceLookup(sb->relid, &sb->name, &kind, &sb->options))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the source of continuous query \"%s\" does not exist", q->name)));
	sb->routine = SourceRoutineByKind(kind);
	sb->rel = table_open(sb->relid, AccessShareLock);
	sb->mcxt = batchcxt;
	sb->keep_dead_letters = strcmp(q->on_error, "skip") != 0;
	/* as Spark's Trigger.Once: the one batch takes all the input there is */
	sb->read_all = strcmp(q->trigger, "once") == 0;
	sb->available_now = BatchAvailableNow;
	sb->live = BatchLive && !sb->read_all && sb->available_now == 0;
	sb->wake_fd = PGINVALID_SOCKET;
	/* a source the event_time argument leaves out has none */
	if (event_time != NULL && event_time->column != NULL)
	{
		sb->event_time_attno = event_time->attno;
		sb->event_time_delay = event_time->delay;
		/*
		 * complete mode keeps every group, so late rows still count there;
		 * a deduplication drops them, as Spark's dropDuplicates does, and
		 * so does a join of streams, whose states the watermark evicts
		 */
		sb->drop_late = q->has_watermark &&
			((q->plan->shape == SHAPE_AGGREGATE && q->mode != OUTPUT_COMPLETE) ||
			 q->plan->shape == SHAPE_DEDUP || q->plan->join_sources != NIL);
		/* the watermark, and what it closed even if moved back since */
		sb->has_watermark = QueryLateBound(q, sb->drop_late, &sb->watermark);
	}
	SourceBatchReset(sb);
	return sb;
}

/*
 * wait_for_sources tells the caller of a batch that found no input what
 * to wait for: the one descriptor its sources wait on, if they all wait on
 * the same, and the earliest time any asked to be asked again.  A worker
 * waits on one descriptor per query: sources that wait on different ones
 * (Kafka and files), or one that waits on none (a table source), are
 * asked again at streaming.idle_poll at the latest, as a single source
 * that can tell nothing is; waiting on one source's time alone (a file
 * source's minute, Kafka's seconds) would leave the others' input there
 * unread meanwhile.
 */
static void
wait_for_sources(List *batches, BatchResult *result)
{
	ListCell   *lc;
	bool		several = false;

	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);

		if (sb->wake_fd == PGINVALID_SOCKET ||
			(result->wake_fd != PGINVALID_SOCKET && result->wake_fd != sb->wake_fd))
			several = list_length(batches) > 1;
		else
		{
			result->wake_fd = sb->wake_fd;
			result->wake_drain |= sb->wake_drain;
		}
		if (sb->wake_at != 0 && (result->wake_at == 0 || sb->wake_at < result->wake_at))
			result->wake_at = sb->wake_at;
	}
	if (several)
	{
		TimestampTz poll = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   streaming_idle_poll);

		result->wake_fd = PGINVALID_SOCKET;
		result->wake_drain = false;
		if (result->wake_at == 0 || result->wake_at > poll)
			result->wake_at = poll;
	}
}

static void
close_sources(List *batches)
{
	ListCell   *lc;

	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);

		if (sb->rows != NULL)
			tuplestore_end(sb->rows);
		table_close(sb->rel, AccessShareLock);
	}
}

/*
 * analyze_grown_join_states analyses the join states of a query that have
 * doubled since they were last analysed (operators/stream_join.c): the
 * copies of the join that read them are planned from their statistics,
 * and a plan made when a state was small (a hash join over all of it)
 * must give way to index lookups as it grows, so that a batch keeps
 * costing its input.  ANALYZE invalidates the prepared batch statement,
 * which is prepared again at the next batch.  At most log2(rows) times
 * per state, each a sample of constant size; a state autovacuum is
 * analysing is skipped.  The counts are the statistics system's, as of the
 * batches committed before this one.
 */
static void
analyze_grown_join_states(QueryDef *q)
{
	ListCell   *lc;

	foreach(lc, q->plan->join_states)
	{
		Oid			relid = RangeVarGetRelid(makeRangeVarFromNameList(ParseQualifiedName(lfirst(lc), "table")),
											 NoLock, true);
		Oid			argtypes[1] = {OIDOID};
		Datum		args[1] = {ObjectIdGetDatum(relid)};
		bool		isnull;
		bool		grown;

		if (!OidIsValid(relid))
			continue;
		SPI_connect();
		if (SPI_execute_with_args("SELECT (pg_catalog.pg_stat_get_live_tuples($1) OPERATOR(pg_catalog.>=) 1000) "
								  "AND (pg_catalog.pg_stat_get_live_tuples($1)::pg_catalog.float4 OPERATOR(pg_catalog.>) "
								  "(2::pg_catalog.float4 OPERATOR(pg_catalog.*) GREATEST(c.reltuples, 0::pg_catalog.float4))) "
								  "FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) $1",
								  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the size of %s", (char *) lfirst(lc));
		grown = SPI_processed == 1 &&
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
		if (grown &&
			SPI_execute(psprintf("ANALYZE (SKIP_LOCKED) %s", (char *) lfirst(lc)), false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "could not analyze %s", (char *) lfirst(lc));
		SPI_finish();
	}
}

/*
 * drop_newly_late drops the decoded rows of a slice's batch that the
 * watermark committed by other slices since it was decoded makes late,
 * as a single runner that ran their batches first would have: the rows
 * at or before the bound that QueryLateBound gives now.
 */
static void
drop_newly_late(QueryDef *q, SourceBatch *sb)
{
	TimestampTz bound;
	Tuplestorestate *kept;
	TupleTableSlot *slot;
	MemoryContext old;

	if (!sb->drop_late || sb->event_time_attno == 0 || sb->rows == NULL ||
		!QueryLateBound(q, true, &bound) ||
		(sb->has_watermark && bound <= sb->watermark))
		return;
	old = MemoryContextSwitchTo(sb->mcxt);
	kept = tuplestore_begin_heap(true, false, work_mem);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(sb->rel), &TTSOpsMinimalTuple);
	while (tuplestore_gettupleslot(sb->rows, true, false, slot))
	{
		bool		isnull;
		Datum		ts = slot_getattr(slot, sb->event_time_attno, &isnull);

		CHECK_FOR_INTERRUPTS();
		if (!isnull && DatumGetTimestampTz(ts) <= bound)
		{
			sb->late_rows++;
			continue;
		}
		tuplestore_puttupleslot(kept, slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(sb->rows);
	sb->rows = kept;
	sb->has_watermark = true;
	sb->watermark = bound;
	MemoryContextSwitchTo(old);
}

/*
 * read_slices reads, for a slice's batch that holds the query's row, the
 * watermarks of the query's slices (see slice_watermark).
 */
static void
read_slices(QueryDef *q, BatchStats *st)
{
	Oid			argtypes[3] = {INT4OID, INT4OID, INT4OID};
	Datum		args[3] = {Int32GetDatum(q->id), Int32GetDatum(st->slice), Int32GetDatum(q->parallelism)};

	SPI_connect();
	if (CatalogExecute("SELECT slice, watermark, drained FROM streaming.query_slices "
					   "WHERE query OPERATOR(pg_catalog.=) $1 AND slice OPERATOR(pg_catalog.<) $3",
					   3, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.query_slices");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int			slice = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		Datum		d = SPI_getbinval(tup, desc, 2, &isnull);
		TimestampTz wm = isnull ? 0 : DatumGetTimestampTz(d);
		bool		has_wm = !isnull;
		bool		drained = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));

		if (slice == st->slice)
		{
			st->own_valid = has_wm;
			st->own = wm;
			continue;
		}
		if (has_wm && (!st->others_valid || wm > st->others))
		{
			st->others = wm;
			st->others_valid = true;
		}
		if (drained)
			continue;
		if (!has_wm)
			st->others_behind = true;
		else if (!st->hold_valid || wm < st->hold)
		{
			st->hold = wm;
			st->hold_valid = true;
		}
	}
	SPI_finish();
}

/*
 * slice_drained tells whether a slice's batch read all the input its
 * sources knew of when it was planned.
 */
static bool
slice_drained(List *batches)
{
	bool		drained = true;
	ListCell   *lc;

	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);

		drained &= !sb->planned || sb->drained;
	}
	return drained;
}

/*
 * slice_watermark moves the watermark of a slice's batch as far as the
 * other slices allow.  Each slice keeps its own watermark, what its input
 * alone moves it to.  The query's is the largest of them (a single
 * runner's: the largest event time over all partitions, minus the delay),
 * but it does not pass the watermark of a slice that is behind: one whose
 * last batch left input it knew of unread, or that has not read yet.  So
 * a slice that reads ahead (a backlog read in parallel, one slice
 * scheduled sooner than another) does not make the other slice's rows
 * late, which one runner reading all the partitions in the same batches
 * would not have dropped; once every slice has caught up, the watermark
 * is a single runner's.
 */
static void
slice_watermark(QueryDef *q, List *batches, BatchStats *st)
{
	ListCell   *lc;
	bool		batch_valid = false;
	TimestampTz batch_wm = 0;

	/* the slice's own: what this batch's event times move it to */
	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);
		TimestampTz wm;

		if (!sb->has_max_event_time)
			continue;
		wm = EventTimeWatermark(sb->max_event_time, sb->event_time_delay);
		if (!batch_valid || wm < batch_wm)
			batch_wm = wm;
		batch_valid = true;
	}
	if (batch_valid && !TIMESTAMP_IS_NOBEGIN(batch_wm) && (!st->own_valid || batch_wm > st->own))
	{
		st->own = batch_wm;
		st->own_valid = true;
	}

	/*
	 * This slice is behind too when its batch left input unread: the
	 * others' watermark must not make the rest of its input late.
	 */
	if (!slice_drained(batches))
	{
		if (!st->own_valid)
			st->others_behind = true;
		else if (!st->hold_valid || st->own < st->hold)
		{
			st->hold = st->own;
			st->hold_valid = true;
		}
	}

	/* the largest, as far as a slice behind allows */
	if (st->others_valid && (!st->watermark_valid || st->others > st->watermark))
	{
		st->watermark = st->others;
		st->watermark_valid = true;
	}
	if (st->others_behind)
	{
		st->watermark = q->watermark;
		st->watermark_valid = q->watermark_valid;
	}
	else if (st->hold_valid && st->watermark_valid && st->watermark > st->hold)
	{
		st->watermark = q->watermark_valid ? Max(q->watermark, st->hold) : st->hold;
		st->watermark_valid = true;
	}
}

/*
 * commit_slice records a slice's watermark, and whether its batch read all
 * the input it knew of (slice_watermark).
 */
static void
commit_slice(QueryDef *q, List *batches, BatchStats *st)
{
	Oid			argtypes[4] = {INT4OID, INT4OID, TIMESTAMPTZOID, BOOLOID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	args[0] = Int32GetDatum(q->id);
	args[1] = Int32GetDatum(st->slice);
	args[2] = TimestampTzGetDatum(st->own);
	nulls[2] = st->own_valid ? ' ' : 'n';
	args[3] = BoolGetDatum(slice_drained(batches));
	SPI_connect();
	if (CatalogExecute("UPDATE streaming.query_slices SET watermark = $3, drained = $4 "
					   "WHERE query OPERATOR(pg_catalog.=) $1 AND slice OPERATOR(pg_catalog.=) $2",
					   4, argtypes, args, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.query_slices");
	SPI_finish();
}

/*
 * slice_found_nothing: a slice whose sources had nothing to read holds
 * the watermark back no longer (slice_watermark); not when a source could
 * not tell (a broker that did not answer).
 */
static void
slice_found_nothing(QueryDef *q, int slice, bool waiting)
{
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		args[2] = {Int32GetDatum(q->id), Int32GetDatum(slice)};

	if (waiting)
		return;
	SPI_connect();
	if (CatalogExecute("UPDATE streaming.query_slices SET drained = true "
					   "WHERE query OPERATOR(pg_catalog.=) $1 AND slice OPERATOR(pg_catalog.=) $2 AND NOT drained",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.query_slices");
	SPI_finish();
}

/*
 * lock_for_merge: a slice's batch, its input decoded, takes the query's
 * row for the rest of the batch (slices.c) and goes on from what the
 * batches committed meanwhile: the batch id after theirs, their
 * watermark, what it makes late, their counts.
 */
static void
lock_for_merge(QueryDef *q, List *batches, BatchStats *st)
{
	ListCell   *lc;

	QueryDefRefresh(q);
	st->batch_id = q->last_batch_id + 1;
	foreach(lc, batches)
		drop_newly_late(q, (SourceBatch *) lfirst(lc));
	read_slices(q, st);
}

/*
 * RunMicroBatch runs the next micro-batch of a query in the current
 * transaction: of all its input (slice SLICE_WHOLE), or of one slice of a
 * query with parallelism.  It returns false, having changed nothing, when
 * no new input is available.
 */
bool
RunMicroBatch(const char *query_name, int slice, BatchResult *result)
{
	MemoryContext batchcxt;
	MemoryContext oldcxt;
	QueryDef   *q;
	List	   *batches = NIL;
	bool		planned = false;
	ListCell   *lc;
	BatchStats	st;
	char	   *sql;
	char	   *close_sql;
	int			show_rows;
	OwnerContext owner_cxt;
	Oid			reader;
	int			reader_sec_context;
	List	   *event_times = NIL;
	uint64		waits = SourceWaits;
	FlushContext flush;
	bool		aggregates_in_parts;
	volatile bool combined = false;
	char	   *optimistic_sql = NULL;

	batchcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming micro-batch",
									 ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(batchcxt);
	memset(&st, 0, sizeof(st));
	st.t_start = GetCurrentTimestamp();
	if (result != NULL)
	{
		memset(result, 0, sizeof(BatchResult));
		result->t_start = st.t_start;
		result->wake_fd = PGINVALID_SOCKET;
	}

	/* a slice's batch: its slice's row first (slices.c) */
	if (slice != SLICE_WHOLE)
		SliceLock(query_name, slice);
	q = QueryDefLoad(query_name, slice == SLICE_WHOLE ? QUERY_LOCK_BATCH : QUERY_LOCK_SLICE, false);
	st.slice = slice;
	/* parallelism lowered since the slice was taken: nothing to read */
	if (slice != SLICE_WHOLE && (slice >= q->parallelism || q->parallelism <= 1))
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(batchcxt);
		return false;
	}
	/* from here on, the query's code runs as its owner, whoever asked */
	BeginAsOwner(q->owner, q->search_path, &owner_cxt);
	st.batch_id = q->last_batch_id + 1;
	QueryCheckRunnable(q);
	/* a query planned by an earlier version gets its input view */
	(void) QueryUpgradePlan(q);

	/* each source's event time: the columns were checked at create_query */
	if (q->event_time != NULL)
		event_times = EventTimeSpecParse(q->event_time, q->plan->sources, q->watermark_delay, true);

	/* each source's input after its committed offsets, as its owner reads it */
	foreach(lc, q->plan->sources)
	{
		SourceBatch *sb = open_source(q, lfirst_oid(lc), EventTimeSpecFind(event_times, lfirst_oid(lc)),
									  slice, batchcxt);

		batches = lappend(batches, sb);
		GetUserIdAndSecContext(&reader, &reader_sec_context);
		SetUserIdAndSecContext(sb->rel->rd_rel->relowner, reader_sec_context |
							   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
		sb->planned = sb->routine->plan_batch(sb);
		SetUserIdAndSecContext(reader, reader_sec_context);
		planned |= sb->planned;
	}
	if (!planned)
	{
		if (slice != SLICE_WHOLE)
			slice_found_nothing(q, slice, SourceWaits != waits);
		if (result != NULL)
		{
			wait_for_sources(batches, result);
			result->source_waiting = SourceWaits != waits;
		}
		EndAsOwner(&owner_cxt);
		close_sources(batches);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(batchcxt);
		return false;
	}
	st.t_planned = GetCurrentTimestamp();

	/* one row more than shown, to tell when rows were left out */
	show_rows = q->sink.kind == SINK_CONSOLE && q->mode != OUTPUT_COMPLETE ? q->sink.num_rows + 1 : 0;
	/* the file and Kafka sinks take every row written (complete: see below) */
	if ((q->sink.kind == SINK_FILE || q->sink.kind == SINK_KAFKA) && q->mode != OUTPUT_COMPLETE)
		show_rows = PG_INT32_MAX;
	sql = BuildBatchStatement(q->plan, q->result_table, q->state_table, show_rows);
	memset(&flush, 0, sizeof(flush));
	aggregates_in_parts = q->plan->combine_sql != NULL && slice == SLICE_WHOLE &&
		list_length(batches) == 1;
	if (aggregates_in_parts || flushes_early(q, show_rows, slice))
	{
		SourceBatch *sb = linitial(batches);

		flush.q = q;
		flush.st = &st;
		flush.sql = sql;
		flush.cxt = batchcxt;
		flush.resowner = CurrentResourceOwner;
		flush.in_parts = aggregates_in_parts;
		GetUserIdAndSecContext(&flush.owner, &flush.owner_sec_context);
		sb->flush = flush_rows;
		sb->flush_arg = &flush;
		sb->flush_rows = aggregates_in_parts ? PART_ROWS : FLUSH_ROWS;
		if (aggregates_in_parts)
			begin_preagg(&flush, sb);
	}

	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);

		/*
		 * The source's input is read and decoded with its owner's rights:
		 * the input functions of its columns' types and the checks of their
		 * domains are its owner's choice, run for whoever reads the source.
		 * A source without new input takes part with no rows.
		 */
		if (!sb->planned)
			continue;
		GetUserIdAndSecContext(&reader, &reader_sec_context);
		SetUserIdAndSecContext(sb->rel->rd_rel->relowner, reader_sec_context |
							   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
		decode_batch(sb);
		SetUserIdAndSecContext(reader, reader_sec_context);
		if (sb->n_dead_letters > 0 && strcmp(q->on_error, "fail") == 0)
		{
			DeadLetter *dl = linitial(sb->dead_letters);

			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("could not decode record at %s: %s", dl->position, dl->error),
					 errdetail("Continuous query \"%s\" has on_error = 'fail'.", q->name),
					 errhint("Fix or remove the input, or create the query with on_error => 'dead_letter'.")));
		}
	}

	/*
	 * A grouped query whose batch was aggregated in parts: the rest of the
	 * rows too, then the batch statement reads the combined partial
	 * states.  When decoding failed and ran again record by record, it
	 * wrote no parts: what the first attempt made goes.
	 */
	if (flush.preagg != NULL)
		end_preagg(&flush, linitial(batches));
	if (flush.partials != NULL)
	{
		SourceBatch *sb = linitial(batches);

		if (sb->flushes > 0)
		{
			Relation	state = table_open(q->state_table, AccessShareLock);

			flush.partials_desc = CreateTupleDescCopy(RelationGetDescr(state));
			table_close(state, AccessShareLock);
			if (tuplestore_tuple_count(sb->rows) > 0)
				flush_rows(sb, &flush);
			combined = true;
			sql = BuildBatchStatement(PartialAggCombined(q->plan, flush.unique), q->result_table,
									  q->state_table, show_rows);
		}
		else
		{
			tuplestore_end(flush.partials);
			flush.partials = NULL;
		}
	}
	st.t_decoded = GetCurrentTimestamp();
	if (slice != SLICE_WHOLE)
		lock_for_merge(q, batches, &st);
	st.t_merging = GetCurrentTimestamp();
	advance_watermark(q, batches, &st);
	if (slice != SLICE_WHOLE && q->has_watermark)
		slice_watermark(q, batches, &st);

	/* the batch statement: the FDW scan of each source returns its rows */
	close_sql = st.watermark_valid
		? BuildCloseStatement(q->plan, q->result_table, q->state_table, show_rows) : NULL;
	st.batch_rows = 0;
	foreach(lc, batches)
	{
		SourceBatch *sb = lfirst(lc);

		FdwSetBatchInput(sb->relid, sb->rows);
		st.batch_rows += tuplestore_tuple_count(sb->rows);
		/* what was written while decoding (flush_rows) */
		st.sink_rows += sb->flushed_out;
		st.flushes += sb->flushes;
		st.flush_ms += sb->flush_ms;
	}
	if (combined)
	{
		st.batch_rows = tuplestore_tuple_count(flush.partials);
		PartialAggSetInput(flush.partials, flush.partials_desc);
	}

	/*
	 * A batch of many rows writes its new groups plainly (run_batch_statement):
	 * into the query's own result table, without a file or Kafka sink, which
	 * would have sent the rows of an attempt that is taken back.
	 */
	if (st.batch_rows >= OPTIMISTIC_ROWS && slice == SLICE_WHOLE && q->sink.table == NULL &&
		(q->sink.kind == SINK_TABLE || q->sink.kind == SINK_CONSOLE || q->sink.kind == SINK_NOTIFY))
		optimistic_sql = BuildOptimisticBatchStatement(combined ? PartialAggCombined(q->plan, flush.unique) : q->plan,
													   q->result_table, q->state_table, show_rows);
	PG_TRY();
	{
		execute_batch(q, &st, !combined ? PREPARED_BATCH : flush.unique ? PREPARED_UNIQUE : PREPARED_COMBINED,
					  sql, optimistic_sql, close_sql, show_rows);
	}
	PG_FINALLY();
	{
		FdwClearBatchInput();
		PartialAggClearInput();
	}
	PG_END_TRY();
	if (flush.partials != NULL)
		tuplestore_end(flush.partials);
	st.t_executed = GetCurrentTimestamp();

	analyze_grown_join_states(q);
	commit_batch(q, batches, &st);
	if (slice != SLICE_WHOLE)
		commit_slice(q, batches, &st);

	if (result != NULL)
	{
		result->batch_id = st.batch_id;
		foreach(lc, batches)
		{
			SourceBatch *sb = lfirst(lc);

			result->input_rows += sb->input_rows;
			result->endless |= sb->endless;
		}
		result->state_rows_updated = st.updated;
		result->sink_rows = st.sink_rows;
		result->t_start = st.t_start;
	}

	EndAsOwner(&owner_cxt);
	close_sources(batches);
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(batchcxt);
	return true;
}

/*
 * streaming_run implements streaming.run(name, max_batches): runs
 * micro-batches in the calling session until no new input is available or
 * max_batches have run, and returns how many ran.  They run inside the
 * caller's transaction and commit with it.
 */
Datum
streaming_run(PG_FUNCTION_ARGS)
{
	char	   *name;
	int64		max_batches = -1;
	int64		n = 0;
	int			slice = PG_NARGS() < 3 || PG_ARGISNULL(2) ? SLICE_WHOLE : PG_GETARG_INT32(2);
	QueryDef   *q;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
	{
		max_batches = PG_GETARG_INT32(1);
		if (max_batches < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("max_batches must not be negative")));
	}

	/* before waiting for the query's lock */
	q = QueryDefLoad(name, QUERY_LOCK_NONE, false);
	QueryCheckOwner(q);
	if (PG_NARGS() >= 3 && !PG_ARGISNULL(2) &&
		(slice < 0 || slice >= q->parallelism || q->parallelism == 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("continuous query \"%s\" has no slice %d", name, slice),
				 q->parallelism == 1 ? errdetail("It has parallelism 1: its input is not split.") :
				 errdetail("It has parallelism %d: slices 0 to %d.", q->parallelism, q->parallelism - 1)));
	/* a table source's slot: only before the transaction writes or locks */
	SourcePrepareQuery(q->name, q->id, q->plan->sources);

	while (max_batches < 0 || n < max_batches)
	{
		BatchResult res;

		CHECK_FOR_INTERRUPTS();
		if (!RunMicroBatch(name, slice, &res))
			break;
		n++;
		/* a source that never runs out has one batch available now */
		if (res.endless && max_batches < 0)
			break;
	}
	PG_RETURN_INT64(n);
}
