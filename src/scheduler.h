/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  Which continuous queries a pool worker holds, and when each is due.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_SCHEDULER_H
#define STREAMING_SCHEDULER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/*
 * A query a pool worker holds: its row in streaming.queries names the
 * worker (worker_pid), and the worker keeps, from batch to batch, what its
 * sources keep (a Kafka consumer, a socket, a slot) and its schedule.
 */
typedef struct PoolQuery
{
	char	   *name;
	int32		id;
	int			slice;			/* the slice it runs (slices.c), or
								 * SLICE_WHOLE */
	Oid			owner;
	char	   *trigger;
	int64		interval_ms;	/* trigger interval; 0 for '0' */
	bool		once;
	bool		available_now;
	TimestampTz available_now_at;	/* when the 'available_now' run began */

	TimestampTz due;			/* no batch before this time */
	bool		wait_input;		/* the last look found nothing: wait for ... */
	int			wake_fd;		/* ... this descriptor to become readable, */
	bool		wake_drain;		/* (read it empty when it is) */
	TimestampTz wake_at;		/* ... or this time */
	bool		woken;			/* wake_fd became readable */

	long		retry_ms;		/* backoff after a batch that must be retried */
	bool		first;			/* no batch has completed since it was taken */
	char	   *condition;		/* as last written to the catalog */
	bool		seen;			/* in the catalog at the last scan */
} PoolQuery;

extern List *SchedulerScan(List *held, int *nqueries);
extern void SchedulerForget(PoolQuery *pq);
extern void SchedulerReleaseAll(List *held);
extern void SchedulerWakeAtCommit(Oid dboid);
extern bool PoolQueryReady(PoolQuery *pq, TimestampTz now);
extern TimestampTz PoolQueryWakeTime(PoolQuery *pq);
extern int64 TriggerIntervalMs(const char *trigger);

#endif							/* STREAMING_SCHEDULER_H */
