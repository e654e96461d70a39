/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  The micro-batch engine: one batch of one continuous query.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_BATCH_H
#define STREAMING_BATCH_H

#include "postgres.h"

#include "datatype/timestamp.h"

typedef struct BatchResult
{
	int64		batch_id;
	int64		input_rows;
	int64		state_rows_updated;
	int64		sink_rows;
	bool		endless;		/* the source never runs out of input */
	TimestampTz t_start;		/* when the batch started (its progress row's
								 * timestamp), or when it looked for input */
	/* no batch ran: what the source says to wait for (see SourceBatch) */
	pgsocket	wake_fd;
	TimestampTz wake_at;
	bool		wake_drain;		/* wake_fd is read empty by whoever waits */
	bool		source_waiting; /* a source could not be read (a broker
								 * that did not answer): not "no input" */
} BatchResult;

extern bool RunMicroBatch(const char *query_name, int slice, BatchResult *result);

/* set by a worker running an 'available_now' trigger: when the run began */
extern TimestampTz BatchAvailableNow;

/* set by a worker with a repeating trigger: sources may read ahead */
extern bool BatchLive;

#endif							/* STREAMING_BATCH_H */
