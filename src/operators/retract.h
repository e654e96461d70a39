/*-------------------------------------------------------------------------
 *
 * retract.h
 *	  Aggregations that take back the rows a table source with changes
 *	  "all" deletes (and the old rows of its updates).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_RETRACT_H
#define STREAMING_RETRACT_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"

#include "planner.h"

/* the column of the input view and batch rows marking a taken-back row */
#define RETRACT_COLUMN "streaming_retracted"

extern bool RetractCheckQuery(Query *query, ContinuousPlan *plan, const char *event_time,
							  bool ordered);
extern void RetractCheckSessions(ContinuousPlan *plan);
extern char *RetractPlanAggregate(Aggref *agg, AggKind kind, Oid argtype, const char *arg,
								  const char *rows, const char *label, int *nstate,
								  StringInfo outer, StringInfo merge, ContinuousPlan *plan);
extern TargetEntry *RetractMarkColumn(Query *query, ContinuousPlan *plan, AttrNumber resno);
extern char *RetractRowCount(const char *rows);
extern void RetractPlanRows(const char *rows, StringInfo outer, StringInfo merge,
							ContinuousPlan *plan);
extern char *RetractResultCondition(ContinuousPlan *plan);
extern char *RetractEmptiedCte(ContinuousPlan *plan, Oid state_table);
extern const char *RetractEmptyGroupsIndex(ContinuousPlan *plan);

#endif							/* STREAMING_RETRACT_H */
