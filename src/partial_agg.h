/*-------------------------------------------------------------------------
 *
 * partial_agg.h
 *	  A grouped query's large batch, aggregated in parts while it is
 *	  decoded (see partial_agg.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_PARTIAL_AGG_H
#define STREAMING_PARTIAL_AGG_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "utils/tuplestore.h"

#include "planner.h"

extern void PartialAggPlan(ContinuousPlan *plan, Oid result_table, Oid state_table, MemoryContext cxt);
extern ContinuousPlan *PartialAggCombined(ContinuousPlan *plan, bool unique);
extern void PartialAggSetInput(Tuplestorestate *partials, TupleDesc desc);
extern void PartialAggClearInput(void);

#endif							/* STREAMING_PARTIAL_AGG_H */
