/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: started with the server when the library is in
 *	  shared_preload_libraries, it keeps a worker running for every enabled
 *	  query of every database where the extension is installed.
 *
 * The launcher itself connects to no database.  Every
 * streaming.launcher_naptime it lists the databases and, one at a time,
 * starts a short-lived scanner in each; the scanner looks for the
 * extension and starts a query worker for every enabled query whose
 * worker is not running.  A crashed worker is thus restarted, with a
 * backoff that doubles from one second up to a minute while it keeps
 * failing before it gets going (streaming.queries.restarts, restart_at).  After any server restart,
 * clean or not, enabled queries
 * resume from their committed offsets this way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "source.h"
#include "streaming.h"
#include "worker.h"

int			streaming_launcher_naptime = 5;

/*
 * An enabled query (alias q) of this database ($1) without a live worker:
 * none has claimed it (its pid is in the row) or is starting under its name.
 */
#define GONE_QUERY \
	"q.enabled AND q.status OPERATOR(pg_catalog.<>) 'failed' AND NOT EXISTS " \
	"(SELECT 1 FROM pg_catalog.pg_stat_activity a " \
	"WHERE a.datid OPERATOR(pg_catalog.=) $1 " \
	"AND a.backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "' " \
	"AND (a.pid OPERATOR(pg_catalog.=) q.worker_pid " \
	"OR a.application_name OPERATOR(pg_catalog.=) ('streaming query ' OPERATOR(pg_catalog.||) q.name)))"

/*
 * restart_delay is the backoff before restarting a query whose worker died
 * `restarts` times in a row without getting going: at once the first time,
 * then 1, 2, 4, ... seconds, at most a minute.
 */
static TimestampTz
restart_delay(int restarts)
{
	int			seconds = restarts <= 0 ? 0 : restarts > 7 ? 60 : Min(60, 1 << (restarts - 1));

	return (TimestampTz) seconds * USECS_PER_SEC;
}

/*
 * StreamingRegisterLauncher registers the launcher at server start.
 */
void
StreamingRegisterLauncher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streaming");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "StreamingLauncherMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, STREAMING_LAUNCHER_TYPE);
	snprintf(worker.bgw_type, BGW_MAXLEN, STREAMING_LAUNCHER_TYPE);
	RegisterBackgroundWorker(&worker);
}

/*
 * database_list reads the databases that accept connections.
 */
static List *
database_list(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext caller = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate)
			continue;
		old = MemoryContextSwitchTo(caller);
		dbs = lappend_oid(dbs, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

/*
 * run_scanner starts the scanner of one database and waits for it.
 */
static void
run_scanner(Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streaming");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "StreamingScannerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "streaming scanner");
	snprintf(worker.bgw_type, BGW_MAXLEN, "streaming scanner");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errmsg("streaming launcher could not start a scanner: no free background worker slot"),
				 errhint("Raise max_worker_processes.")));
		return;
	}
	if (WaitForBackgroundWorkerStartup(handle, &pid) == BGWH_STARTED)
		(void) WaitForBackgroundWorkerShutdown(handle);
}

/*
 * StreamingLauncherMain is the launcher's loop.
 */
void
StreamingLauncherMain(Datum main_arg)
{
	MemoryContext loopcxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	loopcxt = AllocSetContextCreate(TopMemoryContext, "streaming launcher",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old;
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		old = MemoryContextSwitchTo(loopcxt);
		foreach(lc, database_list())
		{
			CHECK_FOR_INTERRUPTS();
			run_scanner(lfirst_oid(lc));
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 streaming_launcher_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * StreamingScannerMain starts the missing query workers of one database.
 */
void
StreamingScannerMain(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/* as a superuser: nothing of the database's users may be looked up */
	SetConfigOption("search_path", CATALOG_SEARCH_PATH, PGC_SUSET, PGC_S_OVERRIDE);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "streaming scanner");

	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension "
					"WHERE extname OPERATOR(pg_catalog.=) 'streaming'",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		SPITupleTable *gone;
		uint64		ngone;
		int			started = 0;
		TimestampTz now = GetCurrentTransactionStartTimestamp();
		Oid			argtypes[1] = {OIDOID};
		Datum		args[1];

		args[0] = ObjectIdGetDatum(dboid);
		if (SPI_execute_with_args("SELECT q.name, q.owner::pg_catalog.oid, q.status, q.restarts, q.restart_at "
								  "FROM streaming.queries q WHERE " GONE_QUERY " ORDER BY q.name",
								  1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read streaming.queries");
		gone = SPI_tuptable;
		ngone = SPI_processed;
		for (uint64 i = 0; i < ngone; i++)
		{
			bool		isnull;
			char	   *name = SPI_getvalue(gone->vals[i], gone->tupdesc, 1);
			Oid			owner = DatumGetObjectId(SPI_getbinval(gone->vals[i], gone->tupdesc, 2, &isnull));
			char	   *status = SPI_getvalue(gone->vals[i], gone->tupdesc, 3);
			int			restarts = DatumGetInt32(SPI_getbinval(gone->vals[i], gone->tupdesc, 4, &isnull));
			Datum		restart_at = SPI_getbinval(gone->vals[i], gone->tupdesc, 5, &isnull);
			char	   *waiting;

			CHECK_FOR_INTERRUPTS();

			/*
			 * A query still marked running whose worker is gone died without
			 * saying so (a crash, or the server went down): restart it, at
			 * once the first time and then after a backoff, until a worker
			 * of it has run a batch loop without error.  The backoff is
			 * computed here, not in SQL: the scanner runs as a superuser.
			 */
			if (isnull && strcmp(status, "running") == 0)
			{
				Oid			rtypes[3] = {TEXTOID, INT4OID, TIMESTAMPTZOID};
				Datum		rargs[3];

				rargs[0] = CStringGetTextDatum(name);
				rargs[1] = Int32GetDatum(restarts + 1);
				rargs[2] = TimestampTzGetDatum(now + restart_delay(restarts));
				if (SPI_execute_with_args("UPDATE streaming.queries SET restarts = $2, restart_at = $3 "
										  "WHERE name OPERATOR(pg_catalog.=) $1",
										  3, rtypes, rargs, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "could not update streaming.queries");
				restart_at = rargs[2];
				isnull = false;
			}
			/* not due yet */
			if (!isnull && DatumGetTimestampTz(restart_at) > now)
				continue;

			waiting = QueryWorkerLimitReached(owner, started);
			if (waiting != NULL)
			{
				/* wait, due at once, not counted as a crash */
				Oid			wtypes[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
				Datum		wargs[3];

				wargs[0] = CStringGetTextDatum(name);
				wargs[1] = CStringGetTextDatum(waiting);
				wargs[2] = TimestampTzGetDatum(now);
				if (SPI_execute_with_args("UPDATE streaming.queries SET condition = $2, restart_at = $3 "
										  "WHERE name OPERATOR(pg_catalog.=) $1",
										  3, wtypes, wargs, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "could not update streaming.queries");
			}
			else if (StartQueryWorker(dboid, name, owner, false, NULL))
				started++;
			else
				ereport(LOG,
						(errmsg("could not start a worker for continuous query \"%s\": no free background worker slot", name),
						 errhint("Raise max_worker_processes.")));
		}
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();

	/* slots of table sources whose query is gone keep WAL: drop them */
	TableSourceDropOrphanSlots();
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
