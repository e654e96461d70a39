/*-------------------------------------------------------------------------
 *
 * distinct_agg.h
 *	  Aggregates over the distinct values of a group: count(DISTINCT x),
 *	  sum(DISTINCT x), string_agg(DISTINCT x, ', '), ...
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_DISTINCT_AGG_H
#define STREAMING_DISTINCT_AGG_H

#include "postgres.h"

#include "nodes/primnodes.h"

#include "planner.h"

/* the column of the distinct table and batch rows naming the aggregate */
#define DISTINCT_AGG_COLUMN "streaming_d"

/* one aggregate over distinct values, as the planner found it */
typedef struct DistinctAgg
{
	int			number;			/* 1, 2, ...: its streaming_d */
	List	   *columns;		/* its arguments' columns of the input view */
	List	   *types;			/* their types (Oid) */
	char	   *filter;			/* its FILTER's column, or NULL */
} DistinctAgg;

extern char *DistinctAggRows(int number);
extern char *DistinctAggFilter(int number);
extern char *DistinctAggOtherRows(const char *filter);
extern char *DistinctAggOtherFilter(const char *filter);
extern char *DistinctAggSetFinalizer(Aggref *agg, List *state_columns);
extern char *DistinctAggPlan(ContinuousPlan *plan, List *inner_tlist, int nkeys,
							 List *distinct_aggs);
extern char *DistinctAggTableName(int32 query_id);
extern char *DistinctAggTableQuery(ContinuousPlan *plan);
extern char *DistinctAggStatePrefix(ContinuousPlan *plan);
extern char *DistinctAggBatchPrefix(ContinuousPlan *plan);
extern char *DistinctAggCloseCte(ContinuousPlan *plan);

#endif							/* STREAMING_DISTINCT_AGG_H */
