/*-------------------------------------------------------------------------
 *
 * plan_cache.h
 *	  A continuous query's statements, prepared once per process.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_PLAN_CACHE_H
#define STREAMING_PLAN_CACHE_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/plancache.h"

/* which of a query's statements */
typedef enum PreparedKind
{
	PREPARED_BATCH,				/* the batch statement */
	PREPARED_CLOSE,				/* the close statement ($1: the watermark) */
	PREPARED_PARTIAL,			/* the batch plan over a part of a batch */
	PREPARED_COMBINED,			/* the batch statement over the parts'
								 * partial states (partial_agg.c) */
	PREPARED_BATCH_OPTIMISTIC,	/* those two, writing new groups plainly */
	PREPARED_COMBINED_OPTIMISTIC,	/* (BuildOptimisticBatchStatement) */
	PREPARED_UNIQUE,			/* the batch statement over partial states
								 * of one row per group (combine_unique_sql) */
	PREPARED_UNIQUE_OPTIMISTIC, /* the same, writing new groups plainly */
	PREPARED_BULK				/* a stateless query's input, whose rows are
								 * written in bulk (bulk_insert.c) */
} PreparedKind;

/* one of a query's statements, and what its plan is made for */
typedef struct PreparedSpec
{
	int32		query_id;
	const char *query;			/* its name, for messages */
	PreparedKind kind;
	const char *sql;
	int			nargs;
	Oid		   *argtypes;
	const char *fingerprint;	/* ResolvedFingerprint at create_query, or NULL */
	int64		scan_rows;		/* rows its scan of the batch input returns */
	int64		state_rows;		/* rows in the query's state table */
} PreparedSpec;

extern CachedPlan *PreparedPlan(const PreparedSpec *spec, double *prepare_ms);
extern int	ExecutePrepared(const PreparedSpec *spec, SPIExecuteOptions *options,
							double *prepare_ms);

#endif							/* STREAMING_PLAN_CACHE_H */
