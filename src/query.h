/*-------------------------------------------------------------------------
 *
 * query.h
 *	  Continuous queries: their catalog rows and the SQL functions that
 *	  create, drop and explain them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_QUERY_H
#define STREAMING_QUERY_H

#include "postgres.h"

#include "planner.h"
#include "sinks/sink.h"
#include "source.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

typedef struct QueryDef
{
	char	   *name;
	int32		id;
	char	   *query;
	OutputMode	mode;
	char	   *trigger;
	char	   *on_error;
	Oid			result_table;
	Oid			state_table;	/* InvalidOid for stateless queries */
	ContinuousPlan *plan;
	int64		last_batch_id;
	TimestampTz last_progress_at;	/* 0 if no batch yet */
	int64		state_rows;
	char	   *event_time;		/* NULL without event time */
	bool		has_watermark;
	int64		watermark_delay;	/* microseconds */
	bool		watermark_valid;	/* false until the first event time */
	TimestampTz watermark;
	bool		closed_valid;	/* false until a batch closes a window or key */
	TimestampTz closed_until;	/* the largest window end (dedup: key) closed */
	SinkOptions sink;
	char	   *sink_name;		/* table, console, notify, file or kafka */
	Jsonb	   *sink_options;	/* as given, as streaming.queries keeps them */
	bool		enabled;
	Oid			owner;
	char	   *search_path;	/* pinned at create_query; batches run under it */
	int			parallelism;	/* slices run side by side (slices.c) */
} QueryDef;

/* what streaming.create_query() was given */
typedef struct QueryCreateArgs
{
	const char *name;
	const char *sql;
	OutputMode	mode;
	const char *trigger;
	const char *event_time;		/* NULL, or with watermark */
	Interval   *watermark;
	const char *sink;
	Jsonb	   *sink_options;	/* NULL for {} */
	const char *on_error;
	bool		enabled;
	int			parallelism;
} QueryCreateArgs;

/*
 * what streaming.alter_query() was given: NULL (has_mode false) leaves a
 * setting as it is
 */
typedef struct QueryAlterArgs
{
	const char *trigger;
	Interval   *watermark;
	TimestampTz *watermark_at;
	const char *on_error;
	const char *query;			/* a new SELECT */
	bool		has_mode;
	OutputMode	mode;
	Jsonb	   *sink_options;	/* merged into the query's */
	int			parallelism;	/* 0: as it is */
} QueryAlterArgs;

/* the lock QueryDefLoad takes on the query's row, until the transaction ends */
typedef enum QueryLock
{
	QUERY_LOCK_NONE,
	QUERY_LOCK_BATCH,			/* FOR UPDATE: a batch of the whole query,
								 * and what waits for every batch */
	QUERY_LOCK_SLICE			/* FOR KEY SHARE: a batch of one slice (its
								 * merge: QueryDefRefresh) */
} QueryLock;

extern QueryDef *QueryDefLoad(const char *name, QueryLock lock, bool missing_ok);
extern void QueryDefRefresh(QueryDef *q);
extern void QueryCheckOwner(QueryDef *q);
extern bool QueryUpgradePlan(QueryDef *q);
extern void QueryCheckRunnable(QueryDef *q);
extern List *QueriesReadingSource(Oid relid);
extern Oid	QueryCreate(const QueryCreateArgs *args);
extern void QueryDrop(QueryDef *q, bool keep_result);

/* what create_query and alter_query accept (query.c) */
extern void QueryCheckTrigger(const char *trigger);
extern void QueryCheckOnError(const char *on_error);
extern void QueryCheckWatermarkDelay(Interval *delay);
extern void QueryCheckSinkKey(ContinuousPlan *plan, const SinkOptions *sink);

/* alter.c: changing a query in place, rebuilding it, its watermark bounds */
extern bool CatalogHasOperatingColumns(void);
extern bool CatalogHasSourceWatermarks(void);
extern Jsonb *QueryAlterCheck(QueryDef *q, const QueryAlterArgs *a, bool notice);
extern void QueryAlter(QueryDef *q, const QueryAlterArgs *a);
extern void QueryReset(QueryDef *q, const SourceStart *start, Jsonb *given);
extern void QueryAlterSelect(QueryDef *q, const char *sql, OutputMode mode);
extern void QueryAlterMode(QueryDef *q, OutputMode mode);
extern bool QueryLateBound(QueryDef *q, bool drop_late, TimestampTz *bound);
extern bool QueryClosingBound(QueryDef *q, TimestampTz watermark, TimestampTz *bound);

#endif							/* STREAMING_QUERY_H */
