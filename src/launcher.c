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
 * failing before it gets going (streaming.queries.restarts, restart_at).  After any server restart, clean or not, enabled queries
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
#include "utils/snapmgr.h"

#include "streaming.h"
#include "worker.h"

int			streaming_launcher_naptime = 5;

/* an enabled query (alias q) of this database without a live worker */
#define GONE_QUERY \
	"q.enabled AND q.status <> 'failed' AND NOT EXISTS " \
	"(SELECT 1 FROM pg_catalog.pg_stat_activity a " \
	"WHERE a.datid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) " \
	"AND a.backend_type = '" STREAMING_WORKER_TYPE "' " \
	"AND a.application_name = 'streaming query ' || q.name)"


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

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "streaming scanner");

	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'streaming'",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		SPITupleTable *due;
		uint64		ndue;
		int			started = 0;

		/*
		 * A query still marked running whose worker is gone died without
		 * saying so (a crash, or the server went down): restart it, at once
		 * the first time and then after a backoff that doubles up to a
		 * minute, until a worker of it has run a batch loop without error.
		 */
		if (SPI_execute("UPDATE streaming.queries q SET restarts = q.restarts + 1, "
						"restart_at = now() + least(60, CASE WHEN q.restarts = 0 THEN 0 "
						"ELSE 2 ^ (q.restarts - 1) END) * interval '1 second' "
						"WHERE " GONE_QUERY " AND q.status = 'running' AND q.restart_at IS NULL",
						false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update streaming.queries");
		/* enabled queries whose worker is not alive, and due */
		if (SPI_execute("SELECT q.name, q.owner::oid FROM streaming.queries q "
						"WHERE " GONE_QUERY " AND (q.restart_at IS NULL OR q.restart_at <= now()) "
						"ORDER BY q.name", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read streaming.queries");
		due = SPI_tuptable;
		ndue = SPI_processed;
		for (uint64 i = 0; i < ndue; i++)
		{
			bool		isnull;
			char	   *name = SPI_getvalue(due->vals[i], due->tupdesc, 1);
			Oid			owner = DatumGetObjectId(SPI_getbinval(due->vals[i], due->tupdesc, 2, &isnull));
			char	   *waiting = QueryWorkerLimitReached(started);

			if (waiting != NULL)
			{
				/* wait, due at once, not counted as a crash */
				Oid			argtypes[2] = {TEXTOID, TEXTOID};
				Datum		args[2] = {CStringGetTextDatum(name), CStringGetTextDatum(waiting)};

				if (SPI_execute_with_args("UPDATE streaming.queries SET restart_at = now(), condition = $2 "
										  "WHERE name = $1", 2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "could not update streaming.queries");
			}
			else if (StartQueryWorker(dboid, name, owner, false))
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
	pgstat_report_activity(STATE_IDLE, NULL);
	proc_exit(0);
}
