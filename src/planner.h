/*-------------------------------------------------------------------------
 *
 * planner.h
 *	  Analysis of a continuous query and the SQL the engine derives from it:
 *	  the batch plan, the state table, the merge, the finalizers and the
 *	  emit statement.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_PLANNER_H
#define STREAMING_PLANNER_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "utils/jsonb.h"

typedef enum OutputMode
{
	OUTPUT_APPEND,
	OUTPUT_UPDATE,
	OUTPUT_COMPLETE
} OutputMode;

typedef enum QueryShape
{
	SHAPE_STATELESS,			/* projection, filter, joins with tables */
	SHAPE_AGGREGATE,			/* GROUP BY and/or aggregates */
	SHAPE_DEDUP					/* SELECT DISTINCT [ON]: each row (key) once */
} QueryShape;

/* how the planner keeps an aggregate's state */
typedef enum AggKind
{
	AGG_COUNT_STAR,
	AGG_COUNT,
	AGG_SUM,
	AGG_AVG,
	AGG_MIN,
	AGG_MAX,
	AGG_BOOL_AND,
	AGG_BOOL_OR,
	AGG_VARIANCE,				/* var_samp/var_pop/stddev_samp/stddev_pop */
	AGG_GENERIC,				/* any other aggregate with a combine function */
	AGG_DISTINCT_SET			/* DISTINCT, no combine function: from the set */
} AggKind;

typedef struct ContinuousPlan
{
	QueryShape	shape;
	OutputMode	mode;
	char	   *event_time;		/* the query's event_time: a column of every
								 * source, or a JSON object of each source's
								 * (EventTimeSpecParse); NULL if none */
	List	   *event_times;	/* not serialized: its EventTimeEntry per
								 * source, NIL without event time */
	char	   *close_lag;		/* an aggregation or dedup over a join: how far behind
								 * the watermark its windows close, an SQL
								 * interval literal, or NULL (not behind) */
	char	   *window_key;		/* state key holding window(event_time, ...) */
	char	   *window_size;	/* the window's size, an SQL interval literal,
								 * when the state key is the window's start
								 * (operators/window_state.c); NULL when it
								 * is the window itself (session windows,
								 * plans of earlier releases) */
	char	   *time_key;		/* dedup: state key holding the event time, or NULL */
	char	   *session_key;	/* state key of streaming.session_window(), or NULL */
	char	   *session_gap;	/* its gap, as an SQL interval literal */
	List	   *state_merge;	/* session: per state column, the aggregate merging
								 * partial states, over alias "u" */
	List	   *sources;		/* OIDs of the source relations read */
	char	   *query_sql;		/* the user's query, deparsed */
	char	   *input;			/* the query's input view, schema-qualified
								 * and quoted; NULL in plans of earlier releases,
								 * which read input_sql inline */
	char	   *input_sql;		/* the view's query: the user's FROM and
								 * WHERE, the group keys and aggregate
								 * arguments as columns (not serialized) */
	char	   *batch_fingerprint;	/* what the batch statement resolved to
									 * at create_query (ResolvedFingerprint) */
	char	   *close_fingerprint;	/* the same of the close statement */
	char	   *combine_sql;	/* aggregate: the batch plan over the partial
								 * states of a batch aggregated in parts,
								 * or NULL (partial_agg.c) */
	char	   *partial_sql;	/* the batch plan run over each part: batch_sql
								 * without its ORDER BY, or NULL in plans
								 * made before (batch_sql then) */
	char	   *partial_fingerprint;	/* what the part's statement resolved to */
	char	   *combine_fingerprint;	/* and the batch statement over
										 * combine_sql */
	char	   *combine_unique_sql; /* combine_sql over partial states of one
									 * row per group, in the order of their
									 * keys, or NULL (partial_agg.c) */
	List	   *temp_relations; /* temporary relations the query reads (not
								 * serialized) */
	char	   *batch_sql;		/* aggregate: partial state per group; dedup:
								 * the query (its columns make the state) */
	List	   *state_keys;		/* aggregate, dedup: key columns of the state table */
	char	   *merge_set;		/* aggregate: SET list of ON CONFLICT DO UPDATE */
	List	   *aggregates;		/* aggregate: how each aggregate is kept, text */
	List	   *result_columns; /* names of the result columns, in order */
	List	   *result_keys;	/* aggregate: result columns that are keys */
	List	   *finalizers;		/* aggregate: per result column, over "m" */
	List	   *values;			/* aggregate: per distinct aggregate, its value
								 * v1, v2, ... over the state row "m"; if set,
								 * finalizers and having are over the row of
								 * the keys and values */
	char	   *having;			/* aggregate: HAVING over "m", or NULL */
	char	   *distinct_table; /* aggregate with DISTINCT aggregates: the
								 * table of their values, schema-qualified
								 * and quoted (operators/distinct_agg.c) */
	char	   *distinct_columns;	/* its columns, as an INSERT lists them;
									 * with retraction, but for the count
									 * columns streaming_rows and
									 * streaming_change */
	char	   *distinct_fresh; /* the batch's distinct values, over "inp" */
	List	   *join_sources;	/* a join of streams: the joined sources,
								 * schema-qualified and quoted, each once */
	List	   *join_states;	/* their state tables, the same way
								 * (operators/stream_join.c) */
	List	   *join_columns;	/* the columns of each that the query reads,
								 * quoted, comma-separated: what its state
								 * keeps ("*": all; NIL: plans before) */
	List	   *join_evict;		/* per state: the condition under which the
								 * watermark ($1) deletes a row, over its
								 * columns; "" if never */
	List	   *join_evict_why;	/* per state: the bounds the condition follows
								 * from, or why there is none */
	/*
	 * An outer join between streams: per state, "" for a side that is not
	 * preserved, else the statements of operators/stream_join.c
	 */
	List	   *join_keep;		/* the SELECT of its new rows with their
								 * streaming_matched flag */
	List	   *join_match;		/* the SELECT of the ctids of its kept rows
								 * that new rows of the other side match */
	List	   *join_unmatched; /* the SELECT of the query's rows, padded
								 * with NULLs, of its rows in CTE
								 * join_unmatched_<n> */
	/* not serialized: what create_query needs to make the join's states */
	List	   *join_evict_index;	/* per state: the column eviction reads,
									 * quoted, or NULL */
	List	   *join_rtindexes; /* range table entries of the joined sources */
	List	   *join_relids;	/* their relations, per entry */
	Query	   *join_query;		/* the query the input view is made of */
	int64		topn_limit;		/* ORDER BY ... LIMIT: the n kept, else 0 */
	List	   *topn_order;		/* its order over state columns, each
								 * "column ASC|DESC NULLS FIRST|LAST", the
								 * group keys last (operators/topn.c) */
	List	   *topn_partition; /* top rows per group: the state keys of
								 * PARTITION BY, else NIL */
	List	   *topn_partition_columns;	/* their result columns */
	char	   *topn_rank;		/* per group: row_number or rank */
	bool		retract;		/* aggregate over a table source with
								 * changes "all": deleted rows are taken
								 * back (operators/retract.c) */
} ContinuousPlan;

extern OutputMode OutputModeFromString(const char *mode);
extern const char *OutputModeName(OutputMode mode);

extern ContinuousPlan *PlanContinuousQuery(const char *sql, OutputMode mode,
										   const char *event_time, bool has_watermark,
										   const char *input, bool window_range_key);
extern Jsonb *ContinuousPlanToJsonb(ContinuousPlan *plan);
extern ContinuousPlan *ContinuousPlanFromJsonb(Jsonb *plan);
extern const char *PlanInputRelation(ContinuousPlan *plan);
extern char *PlanStateQuery(ContinuousPlan *plan);
extern char *PlanOrderGroups(ContinuousPlan *plan, const char *sql);
extern char *PlanDeparseQuery(Query *query);
extern void PlanExpandJoin(ContinuousPlan *plan, List *state_oids);
extern bool PlanPassesClosedWindows(ContinuousPlan *plan, Oid state_table);
extern bool PlanWritesNewGroupsPlainly(ContinuousPlan *plan);
extern char *BuildOptimisticBatchStatement(ContinuousPlan *plan, Oid result_table,
										   Oid state_table, int show_rows);
extern char *BuildBatchStatement(ContinuousPlan *plan, Oid result_table,
								 Oid state_table, int show_rows);
extern char *BuildCloseStatement(ContinuousPlan *plan, Oid result_table,
								 Oid state_table, int show_rows);
extern bool PlanEvictsJoin(ContinuousPlan *plan);
extern const char *PlanCloseBound(ContinuousPlan *plan);
extern char *BuildRefillStatement(ContinuousPlan *plan, Oid result_table, Oid state_table);
extern const char *PlanStateDifference(ContinuousPlan *old, ContinuousPlan *new);
extern bool PlanOutputDifference(ContinuousPlan *old, ContinuousPlan *new);

/* pieces of generated statements, for src/operators/ */
extern int	PlanGroupKeyIndex(Query *query, TargetEntry *tle);
extern char *PlanNullSafeEqual(Oid relid, const char *col, const char *l, const char *r);
extern const char *PlanAppendFinalized(StringInfo sql, ContinuousPlan *plan, const char *source);
extern char *PlanAvgFinalizer(const char *s1, const char *s2, Oid argtype, const char *restype);
extern void PlanAppendUpsert(StringInfo sql, ContinuousPlan *plan);
extern void PlanFinishStatement(StringInfo sql, const char *counts, int show_rows);

#endif							/* STREAMING_PLANNER_H */
