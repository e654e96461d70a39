/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Background processes: the launcher, which keeps a pool of workers in
 *	  every database with started continuous queries, and the pool
 *	  workers, which run the queries' batches.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_WORKER_H
#define STREAMING_WORKER_H

#include "postgres.h"

extern int	streaming_launcher_naptime;
extern int	streaming_idle_poll;
extern int	streaming_max_workers;
extern int	streaming_workers_per_database;

extern void StreamingRegisterLauncher(void);
extern char *StartPoolWorkers(Oid dboid, int nqueries);

PGDLLEXPORT void StreamingLauncherMain(Datum main_arg);
PGDLLEXPORT void StreamingScannerMain(Datum main_arg);
PGDLLEXPORT void StreamingPoolWorkerMain(Datum main_arg);

extern bool streaming_preloaded;
extern void StartQuery(const char *name);
extern void StopQuery(const char *name, bool disable);
extern void StopDatabaseWorkers(const char *dbname);
#endif							/* STREAMING_WORKER_H */
