/*-------------------------------------------------------------------------
 *
 * slices.h
 *	  One query on several workers: the slices of a query's input.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_SLICES_H
#define STREAMING_SLICES_H

#include "postgres.h"

#include "nodes/pg_list.h"

/* the most slices a query may have (streaming.queries.parallelism) */
#define SLICES_MAX 64

/* a batch that reads all of a query's input, not one slice of it */
#define SLICE_WHOLE (-1)

extern bool CatalogHasSlices(void);
extern int	SliceOfPartition(int32 partition, int nslices);
extern int	SliceOfFile(const char *path, int nslices);
extern void SlicesCheck(const char *query, List *sources, const char *trigger, int parallelism);
extern void SlicesSet(int32 query_id, int parallelism);
extern void SliceLock(const char *query, int slice);
extern void SlicesLockAll(int32 query_id);
extern void SlicesRelease(int32 query_id);

#endif							/* STREAMING_SLICES_H */
