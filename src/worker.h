/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background processes: the launcher, which starts a query worker for
 *	  every enabled query of every database with the extension, and the
 *	  query workers, which run one continuous query each.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_WORKER_H
#define STREAMING_WORKER_H

#include "postgres.h"

/* the backend_type of query workers, as pg_stat_activity shows it */
#define STREAMING_WORKER_TYPE "streaming query"
#define STREAMING_LAUNCHER_TYPE "streaming launcher"

extern int	streaming_launcher_naptime;
extern int	streaming_idle_poll;
extern int	streaming_max_workers;
extern int	streaming_max_workers_per_role;

extern void StreamingRegisterLauncher(void);
extern bool StartQueryWorker(Oid dboid, const char *query, Oid owner, bool wait,
							 int *started_pid);
extern char *QueryWorkerLimitReached(Oid owner, int starting);

PGDLLEXPORT void StreamingLauncherMain(Datum main_arg);
PGDLLEXPORT void StreamingScannerMain(Datum main_arg);
PGDLLEXPORT void StreamingQueryWorkerMain(Datum main_arg);

extern bool streaming_preloaded;
extern void StartQuery(const char *name);
extern void StopQuery(const char *name, bool disable);
extern void StopDatabaseWorkers(const char *dbname);
#endif							/* STREAMING_WORKER_H */
