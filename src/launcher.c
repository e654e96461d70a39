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
 * extension and, when queries are started there, starts the pool workers
 * the database lacks (worker.c).  A pool worker that exited or crashed is
 * thus replaced, and after any server restart, clean or not, started
 * queries resume from their committed offsets this way; the pool workers
 * take the queries, with a backoff for those whose worker died holding
 * them (scheduler.c).
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

#include "slices.h"
#include "source.h"
#include "streaming.h"
#include "worker.h"

int			streaming_launcher_naptime = 5;

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

	/* the launcher and a scanner take two slots; the pool needs the rest */
	if (streaming_max_workers + 2 > max_worker_processes)
		ereport(WARNING,
				(errmsg("streaming.max_workers (%d) is too high for max_worker_processes (%d)",
						streaming_max_workers, max_worker_processes),
				 errdetail("The streaming launcher and its scanner take two background worker slots, "
						   "so at most %d pool workers can run, fewer if other extensions or parallel queries take slots.",
						   Max(max_worker_processes - 2, 0)),
				 errhint("Raise max_worker_processes to at least %d, or lower streaming.max_workers.",
						 streaming_max_workers + 2)));

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
 * StreamingScannerMain starts the missing pool workers of one database.
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

	if (LockStreamingExtension())
	{
		int64		nqueries;
		bool		isnull;
		char	   *waiting;

		if (SPI_execute(CatalogHasSlices() ?
						"SELECT COALESCE(pg_catalog.sum(parallelism), 0)::pg_catalog.int8 FROM streaming.queries "
						"WHERE enabled AND status OPERATOR(pg_catalog.<>) 'failed'" :
						"SELECT pg_catalog.count(*) FROM streaming.queries "
						"WHERE enabled AND status OPERATOR(pg_catalog.<>) 'failed'",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read streaming.queries");
		nqueries = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		waiting = StartPoolWorkers(dboid, (int) nqueries);
		/* the status view says why a query has no worker */
		if (waiting != NULL)
		{
			Oid			argtypes[1] = {TEXTOID};
			Datum		args[1] = {CStringGetTextDatum(waiting)};

			if (SPI_execute_with_args("UPDATE streaming.queries SET condition = $1 "
									  "WHERE enabled AND worker_pid IS NULL "
									  "AND status OPERATOR(pg_catalog.<>) 'failed' "
									  "AND condition IS DISTINCT FROM $1",
									  1, argtypes, args, NULL, false, 0) < 0)
				elog(ERROR, "could not update streaming.queries");
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
