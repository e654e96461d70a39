/*-------------------------------------------------------------------------
 *
 * stream_join.h
 *	  Joins between streams: each joined source's rows kept in a state
 *	  table, each batch joining the new rows of every source with the
 *	  others' new and kept rows; an outer join's unmatched rows emitted
 *	  when the watermark evicts them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_STREAM_JOIN_H
#define STREAMING_STREAM_JOIN_H

#include "postgres.h"

#include "nodes/parsenodes.h"

#include "planner.h"

/*
 * How the watermark evicts the state of one joined source: the rows for
 * which predicate (over the state's columns, $1 the watermark) holds can
 * match no later row of the other streams.  No predicate: never evicted.
 */
typedef struct StreamJoinEviction
{
	char	   *predicate;		/* NULL: the state is never evicted */
	char	   *index;			/* the column the predicate bounds, quoted */
	char	   *why;			/* the bounds it follows from, or why none */
	int64		lag;			/* the rows kept have an event time after the
								 * watermark minus lag; -1: none known */
} StreamJoinEviction;

extern List *StreamJoinFind(Query *query);
extern JoinExpr *StreamJoinOuter(Query *query, List *rtindexes);
extern bool StreamJoinPreserves(Query *query, List *rtindexes, Oid relid);
extern List *StreamJoinKeys(Query *query, Oid relid);
extern char *StreamJoinColumns(Query *query, List *rtindexes, Oid relid);
extern char *StreamJoinTableName(int32 query_id, int n);
extern char *StreamJoinExpand(Query *query, List *rtindexes, List *sources,
							  List *state_oids);
extern void StreamJoinOuterStatements(ContinuousPlan *plan, List *state_oids);
extern char *StreamJoinStateCtes(ContinuousPlan *plan);
extern List *StreamJoinEvictions(Query *query, List *rtindexes, List *relids,
								 List *event_times);
extern char *StreamJoinEvictCtes(ContinuousPlan *plan, char **count);
extern char *StreamJoinUnmatched(ContinuousPlan *plan);

#endif							/* STREAMING_STREAM_JOIN_H */
