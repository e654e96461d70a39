/*-------------------------------------------------------------------------
 *
 * preagg.h
 *	  A grouped query's batch, aggregated in C as it is decoded (see
 *	  preagg.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_PREAGG_H
#define STREAMING_PREAGG_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "nodes/plannodes.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"

typedef struct Preagg Preagg;

extern Preagg *PreaggBegin(PlannedStmt *partial, Relation source, TupleDesc partials_desc,
						   MemoryContext cxt, bool sort_groups, const char **why_not);
extern int64 PreaggAddRow(Preagg *pa, Datum *values, bool *nulls);
extern bool PreaggFull(Preagg *pa);
extern int64 PreaggDump(Preagg *pa, Tuplestorestate *out, bool all);
extern int64 PreaggDumpSorted(Preagg *pa, Tuplestorestate *out);
extern void PreaggEnd(Preagg *pa);

#endif							/* STREAMING_PREAGG_H */
