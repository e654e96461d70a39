/*-------------------------------------------------------------------------
 *
 * topn.h
 *	  Top-N of an aggregation: ORDER BY ... LIMIT n in complete mode, the
 *	  result table holding the first n groups; and the top rows per group,
 *	  row_number() or rank() OVER (PARTITION BY ...) <= n.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_TOPN_H
#define STREAMING_TOPN_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"

#include "planner.h"

extern void PlanTopN(Query *query, ContinuousPlan *plan);
extern Query *TopNPerGroupInner(Query *query);
extern void PlanTopNPerGroup(Query *outer, Query *inner, ContinuousPlan *plan);
extern char *TopNStateIndex(ContinuousPlan *plan);
extern char *TopNBatchStatement(StringInfo sql, ContinuousPlan *plan, Oid result_table,
								Oid state_table, const char *returning, int show_rows);
extern char *TopNExplain(ContinuousPlan *plan);

#endif							/* STREAMING_TOPN_H */
