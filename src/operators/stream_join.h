/*-------------------------------------------------------------------------
 *
 * stream_join.h
 *	  Inner joins between streams: each joined source's rows kept in a
 *	  state table, each batch joining the new rows of every source with
 *	  the others' new and kept rows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_STREAM_JOIN_H
#define STREAMING_STREAM_JOIN_H

#include "postgres.h"

#include "nodes/parsenodes.h"

#include "planner.h"

extern List *StreamJoinFind(Query *query);
extern List *StreamJoinKeys(Query *query, Oid relid);
extern char *StreamJoinColumns(Query *query, List *rtindexes, Oid relid);
extern char *StreamJoinTableName(int32 query_id, int n);
extern char *StreamJoinExpand(Query *query, List *rtindexes, List *sources,
							  List *state_oids);
extern char *StreamJoinStateCtes(ContinuousPlan *plan);

#endif							/* STREAMING_STREAM_JOIN_H */
