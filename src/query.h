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
	SinkOptions sink;
	bool		enabled;
	Oid			owner;
	char	   *search_path;	/* pinned at create_query; batches run under it */
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
} QueryCreateArgs;

extern QueryDef *QueryDefLoad(const char *name, bool lock_for_batch, bool missing_ok);
extern void QueryCheckOwner(QueryDef *q);
extern bool QueryUpgradePlan(QueryDef *q);
extern void QueryCheckRunnable(QueryDef *q);
extern List *QueriesReadingSource(Oid relid);
extern Oid	QueryCreate(const QueryCreateArgs *args);
extern void QueryDrop(QueryDef *q, bool keep_result);

#endif							/* STREAMING_QUERY_H */
