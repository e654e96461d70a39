/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Query workers: one background worker per running continuous query,
 *	  and streaming.start() / streaming.stop().
 *
 * A query worker connects to the query's database as the query's owner and
 * runs micro-batches, one transaction each, as its trigger says: '0' as
 * fast as possible, an interval (a batch that overruns is followed at once,
 * without a catch-up burst), 'once' or 'available_now' (then it marks the
 * query finished).  While its source has nothing, the worker sleeps on its
 * latch and on what the source says to wait for: a descriptor that becomes
 * readable when input arrives (Kafka), or the time the next input is due
 * (the rate source); only a source that can tell neither is polled, every
 * streaming.idle_poll.
 *
 * SIGTERM (stop(), pg_terminate_backend, shutdown) ends the worker between
 * batches, or cancels the batch in progress as a query cancel would, which
 * loses nothing: the batch is one transaction, rolled back, and its input
 * is read again by the next run.  Either way the worker logs that it stops,
 * naming its query, and exits normally.  A batch that fails marks the query
 * failed, with its error, and ends the worker; the other queries go on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "query.h"
#include "source.h"
#include "streaming.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(streaming_start);
PG_FUNCTION_INFO_V1(streaming_stop);

int			streaming_idle_poll = 200;
int			streaming_max_workers = 0;
int			streaming_max_workers_per_role = 4;

/* the catalog row of the query this worker runs ($1 name, $2 pid) */
#define THIS_WORKER \
	"name OPERATOR(pg_catalog.=) $1 AND worker_pid OPERATOR(pg_catalog.=) $2"

/*
 * Set by SIGTERM.  While a batch runs (in_batch), SIGTERM also cancels it
 * as a query cancel does: the error it raises rolls the batch back.
 */
static volatile sig_atomic_t got_sigterm = false;
static volatile sig_atomic_t in_batch = false;

/* bgw_extra of a query worker */
typedef struct QueryWorkerArgs
{
	Oid			owner;
	char		query[BGW_EXTRALEN - sizeof(Oid)];
} QueryWorkerArgs;

/*
 * StartQueryWorker registers a dynamic background worker for a query; with
 * wait, it waits until the worker has started and returns its pid in
 * *started_pid.  False if no worker slot is free.
 */
bool
StartQueryWorker(Oid dboid, const char *query, Oid owner, bool wait, int *started_pid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	QueryWorkerArgs args;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "streaming");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "StreamingQueryWorkerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "streaming query %s", query);
	snprintf(worker.bgw_type, BGW_MAXLEN, STREAMING_WORKER_TYPE);
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = wait ? MyProcPid : 0;
	memset(&args, 0, sizeof(args));
	args.owner = owner;
	strlcpy(args.query, query, sizeof(args.query));
	StaticAssertStmt(sizeof(args) <= BGW_EXTRALEN, "query worker arguments do not fit bgw_extra");
	memcpy(worker.bgw_extra, &args, sizeof(args));

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return false;
	if (wait && WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		return false;
	if (started_pid)
		*started_pid = wait ? (int) pid : 0;
	return true;
}

/*
 * QueryWorkerLimitReached tells whether a query of owner may not start a
 * worker now: streaming.max_workers query workers already run in all (or
 * streaming.max_workers_per_role of its owner's, unless the owner is a
 * superuser), counting `starting` more that were launched but are not yet
 * up.  If so, it returns the condition to show on the query, which waits.
 * Callers are in a transaction.
 */
char *
QueryWorkerLimitReached(Oid owner, int starting)
{
	int64		running;
	int64		of_owner;
	bool		isnull;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(owner)};
	bool		per_role = streaming_max_workers_per_role > 0 && !superuser_arg(owner);

	if (streaming_max_workers <= 0 && !per_role)
		return NULL;
	SPI_connect();
	if (CatalogExecute("SELECT pg_catalog.count(*), "
					   "pg_catalog.count(*) FILTER (WHERE usesysid OPERATOR(pg_catalog.=) $1) "
					   "FROM pg_catalog.pg_stat_activity "
					   "WHERE backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "'",
					   1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	running = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	of_owner = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	if (streaming_max_workers > 0 && running + starting >= streaming_max_workers)
		return psprintf("waiting for a worker: streaming.max_workers (%d) queries are running",
						streaming_max_workers);
	if (per_role && of_owner + starting >= streaming_max_workers_per_role)
		return psprintf("waiting for a worker: streaming.max_workers_per_role (%d) queries of role \"%s\" are running",
						streaming_max_workers_per_role, GetUserNameFromId(owner, false));
	return NULL;
}

/*
 * exec_in_transaction runs one statement about a query's catalog row in a
 * transaction of its own; returns the number of rows it touched.
 */
static uint64
exec_in_transaction(const char *sql, const char *query, const char *text)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	uint64		n;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	args[0] = CStringGetTextDatum(query);
	args[1] = Int32GetDatum(MyProcPid);
	args[2] = text ? CStringGetTextDatum(text) : (Datum) 0;
	nulls[2] = text ? ' ' : 'n';
	if (CatalogExecute(sql, 3, argtypes, args, nulls, false, 0) < 0)
		elog(ERROR, "could not update the state of query \"%s\"", query);
	n = SPI_processed;
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return n;
}

/*
 * run_batch runs one micro-batch in its own transaction.  Returns whether
 * a batch ran; *enabled tells whether the query still exists and is
 * enabled.
 */
static bool
run_batch(const char *name, bool *enabled, BatchResult *res)
{
	QueryDef   *q;
	bool		ran = false;

	memset(res, 0, sizeof(BatchResult));
	res->t_start = GetCurrentTimestamp();
	res->wake_fd = PGINVALID_SOCKET;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "streaming micro-batch");

	/* after DROP EXTENSION the worker has nothing left to do */
	q = OidIsValid(get_extension_oid("streaming", true)) ? QueryDefLoad(name, false, true) : NULL;
	*enabled = q != NULL && q->enabled;
	if (*enabled)
	{
		/* before the batch writes or locks anything (a table source's slot) */
		SourcePrepareQuery(q->name, q->id, q->plan->sources);
		ran = RunMicroBatch(name, res);
	}

	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
	return ran;
}

/*
 * trigger_interval_ms reads a trigger interval, in milliseconds.
 */
static int64
trigger_interval_ms(const char *trigger)
{
	Interval   *iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
														   CStringGetDatum(trigger),
														   ObjectIdGetDatum(InvalidOid),
														   Int32GetDatum(-1)));

	return (iv->time + (int64) iv->day * USECS_PER_DAY) / 1000;
}

/*
 * worker_sigterm is the SIGTERM handler of a query worker: it only sets
 * flags and the latch (the loop leaves between batches); a batch in
 * progress is cancelled at its next CHECK_FOR_INTERRUPTS.
 */
static void
worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	if (in_batch)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * worker_stop ends the worker on SIGTERM with a LOG line naming its query;
 * the catalog row is left to whoever stopped it (stop() marks the query
 * stopped; at shutdown it stays enabled and starts again with the server).
 */
static void
worker_stop(const char *query, bool cancelled)
{
	/* a cancel that came after the batch's last check has nothing to cancel */
	QueryCancelPending = false;
	ereport(LOG,
			(errmsg("streaming query \"%s\": worker stopping on request", query),
			 cancelled ? errdetail("The batch in progress was rolled back; its input is read again by the next run.") : 0));
	proc_exit(0);
}

/*
 * wait_until sleeps until the time until, or until fd (when valid) is
 * readable.  A latch wake-up (a signal, a configuration reload) is served
 * and the wait goes on: it must not start a batch before its time, which
 * is what made two batches of a 700 ms trigger start 19 ms apart.
 */
static void
wait_until(TimestampTz until, pgsocket fd)
{
	for (;;)
	{
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
		int			events = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;
		int			rc;

		if (ms <= 0)
			return;
		if (fd != PGINVALID_SOCKET)
			events |= WL_SOCKET_READABLE;
		rc = WaitLatchOrSocket(MyLatch, events, fd, ms, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			if (got_sigterm)
				return;
			CHECK_FOR_INTERRUPTS();
			if (ConfigReloadPending)
			{
				ConfigReloadPending = false;
				ProcessConfigFile(PGC_SIGHUP);
			}
		}
		if (rc & WL_SOCKET_READABLE)
			return;
	}
}

/*
 * wait_for_input sleeps while the source has nothing: until its descriptor
 * is readable or its wake-up time comes; a source that can tell neither is
 * looked at again after streaming.idle_poll, unless poll is false (an
 * interval trigger, whose own schedule does that).
 */
static void
wait_for_input(BatchResult *res, bool poll)
{
	TimestampTz until = res->wake_at;

	if (until == 0)
	{
		if (!poll && res->wake_fd == PGINVALID_SOCKET)
			return;
		until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), streaming_idle_poll);
	}
	wait_until(until, res->wake_fd);
}

/*
 * StreamingQueryWorkerMain is the entry point of a query worker.
 */
void
StreamingQueryWorkerMain(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	QueryWorkerArgs args;
	char	   *trigger;
	volatile int64 interval_ms = 0;
	bool		once;
	bool		available_now;
	volatile bool first = true;
	volatile long retry_ms = 1000;
	char	   *volatile condition = NULL;
	MemoryContext loopcxt;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, args.owner, 0);

	SetConfigOption("application_name", psprintf("streaming query %s", args.query),
					PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname(psprintf("streaming query %s", args.query));
	/* offsets and results share each commit, so a lost commit is replayed */
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);

	/* one worker per query: claim the query, only while it is enabled */
	if (exec_in_transaction("UPDATE streaming.queries q SET status = 'running', worker_pid = $2, "
							"last_error = NULL, condition = NULL, restart_at = NULL "
							"WHERE name OPERATOR(pg_catalog.=) $1 AND enabled AND NOT EXISTS "
							"(SELECT 1 FROM pg_catalog.pg_stat_activity a "
							"WHERE a.pid OPERATOR(pg_catalog.=) q.worker_pid "
							"AND a.pid OPERATOR(pg_catalog.<>) $2 "
							"AND a.backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "') "
							/* not while stop() or drop_query() is at it (StopQuery) */
							"AND pg_catalog.pg_try_advisory_xact_lock(" CppAsString2(STREAMING_STOP_LOCK) ", q.id)",
							args.query, NULL) != 1)
		proc_exit(0);

	/* the trigger, read once: a changed trigger takes a restart */
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		QueryDef   *q = QueryDefLoad(args.query, false, false);

		trigger = MemoryContextStrdup(TopMemoryContext, q->trigger);
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	once = strcmp(trigger, "once") == 0;
	available_now = strcmp(trigger, "available_now") == 0;
	if (!once && !available_now)
		interval_ms = trigger_interval_ms(trigger);
	/* available_now: the input present now, however many batches it takes */
	if (available_now)
		BatchAvailableNow = GetCurrentTimestamp();
	/* batch after batch: sources may keep what they read ahead */
	BatchLive = !once && !available_now;

	loopcxt = AllocSetContextCreate(TopMemoryContext, "streaming query worker",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		TimestampTz started = GetCurrentTimestamp();
		bool		enabled = true;
		BatchResult res;
		volatile bool ran = false;
		MemoryContext old;

		if (got_sigterm)
			worker_stop(args.query, false);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		old = MemoryContextSwitchTo(loopcxt);
		PG_TRY();
		{
			in_batch = true;
			ran = run_batch(args.query, &enabled, &res);
			in_batch = false;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			in_batch = false;
			/* the batch rolled back; record why, and stop this query only */
			MemoryContextSwitchTo(loopcxt);
			edata = CopyErrorData();
			/* stopped: the cancel (or whatever failed meanwhile) is no failure */
			if (got_sigterm)
			{
				if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
					EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
				worker_stop(args.query, true);
			}
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
			/*
			 * A source that lost its connection (class 08), or input that
			 * changed under the batch, a deadlock or a serialization failure
			 * (class 40) is not a reason to fail: nothing was committed, so
			 * wait and run the batch again.
			 */
			if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION ||
				ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_TRANSACTION_ROLLBACK)
			{
				SourceSetCondition("%s", edata->message);
				condition = MemoryContextStrdup(TopMemoryContext, SourceCondition);
				exec_in_transaction("UPDATE streaming.queries SET condition = $3 "
									"WHERE " THIS_WORKER, args.query, condition);
				SourceClearCondition();
				MemoryContextReset(loopcxt);
				wait_until(TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry_ms),
						   PGINVALID_SOCKET);
				retry_ms = Min(retry_ms * 2, 30000);
				continue;
			}
			exec_in_transaction("UPDATE streaming.queries SET status = 'failed', worker_pid = NULL, "
								"condition = NULL, last_error = $3 WHERE " THIS_WORKER,
								args.query, edata->message);
			proc_exit(1);
		}
		PG_END_TRY();
		if (got_sigterm)
			worker_stop(args.query, false);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);
		retry_ms = 1000;

		/* it got going: the next crash restarts it at once again */
		if (first)
		{
			exec_in_transaction("UPDATE streaming.queries SET restarts = 0 "
								"WHERE " THIS_WORKER " AND restarts OPERATOR(pg_catalog.>) 0",
								args.query, NULL);
			first = false;
		}
		/* what the source waits for (a broker, a server), for the status view */
		if ((SourceCondition == NULL) != (condition == NULL) ||
			(condition != NULL && strcmp(condition, SourceCondition) != 0))
		{
			if (condition)
				pfree(condition);
			condition = SourceCondition ? MemoryContextStrdup(TopMemoryContext, SourceCondition) : NULL;
			exec_in_transaction("UPDATE streaming.queries SET condition = $3 "
								"WHERE " THIS_WORKER, args.query, condition);
		}

		if (!enabled)
			break;
		if (once || (available_now && (!ran || res.endless)))
		{
			exec_in_transaction("UPDATE streaming.queries SET status = 'finished', worker_pid = NULL, "
								"condition = NULL, enabled = false WHERE " THIS_WORKER,
								args.query, NULL);
			break;
		}
		if (available_now)
			continue;
		if (interval_ms > 0)
		{
			/*
			 * The next trigger is one interval after this batch started, as
			 * its progress row says: timed from anywhere earlier, a batch
			 * that was slow to get going would be followed too soon.  After
			 * a trigger that found nothing, the worker then also waits for
			 * the source.
			 */
			TimestampTz from = ran ? res.t_start : started;

			wait_until(from + interval_ms * 1000, PGINVALID_SOCKET);
			if (!ran)
				wait_for_input(&res, false);
		}
		else if (!ran)
			wait_for_input(&res, true);
	}
	proc_exit(0);
}

/*
 * worker_pids lists the live workers of a query in this database: the one
 * whose pid is in the query's row (start() writes it, the worker claims
 * it), and any other still starting under the query's name.  The
 * application name alone does not do, as PostgreSQL cuts it at 63 bytes.
 */
static List *
worker_pids(const char *name)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2] = {ObjectIdGetDatum(MyDatabaseId), CStringGetTextDatum(name)};
	List	   *pids = NIL;

	SPI_connect();
	if (CatalogExecute("SELECT a.pid FROM pg_catalog.pg_stat_activity a "
					   "WHERE a.datid OPERATOR(pg_catalog.=) $1 "
					   "AND a.backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "' "
					   "AND (a.pid OPERATOR(pg_catalog.=) (SELECT q.worker_pid FROM streaming.queries q "
					   "WHERE q.name OPERATOR(pg_catalog.=) $2) "
					   "OR a.application_name OPERATOR(pg_catalog.=) ('streaming query ' OPERATOR(pg_catalog.||) $2))",
					   2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		pids = lappend_int(pids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 1, &isnull)));
	}
	SPI_finish();
	return pids;
}

static void
update_query(const char *sql, const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};

	SPI_connect();
	if (CatalogExecute(sql, 1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");
	SPI_finish();
}

/*
 * StartQuery enables a query and starts its worker now.
 */
void
StartQuery(const char *name)
{
	QueryDef   *q = QueryDefLoad(name, false, false);
	char	   *waiting;
	int			pid = 0;

	QueryCheckOwner(q);
	/* a query that cannot run is an error here, not a worker that fails */
	QueryCheckRunnable(q);
	update_query("UPDATE streaming.queries SET enabled = true, status = 'running', "
				 "last_error = NULL WHERE name OPERATOR(pg_catalog.=) $1", name);
	if (worker_pids(name) != NIL)
		return;
	if ((waiting = QueryWorkerLimitReached(q->owner, 0)) != NULL)
	{
		if (!streaming_preloaded)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start continuous query \"%s\"", name),
					 errdetail("%s.", waiting),
					 errhint("Stop a query, or raise streaming.max_workers or streaming.max_workers_per_role.")));
		/* not a crash: due now, so the launcher starts it once a worker stops */
		update_query(psprintf("UPDATE streaming.queries SET restart_at = pg_catalog.now(), condition = %s "
							  "WHERE name OPERATOR(pg_catalog.=) $1", quote_literal_cstr(waiting)), name);
		ereport(NOTICE,
				(errmsg("continuous query \"%s\" waits for a worker", name),
				 errdetail("%s; the launcher starts it when one stops.", waiting)));
		return;
	}
	if (!StartQueryWorker(MyDatabaseId, q->name, q->owner, true, &pid))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a worker for continuous query \"%s\"", name),
				 errdetail("No background worker slot is free."),
				 errhint("Raise max_worker_processes: each running query takes one slot, and the launcher one.")));
	/* stop() finds it by this pid even before it has claimed the query */
	{
		Oid			argtypes[2] = {TEXTOID, INT4OID};
		Datum		args[2] = {CStringGetTextDatum(name), Int32GetDatum(pid)};

		SPI_connect();
		if (CatalogExecute("UPDATE streaming.queries SET worker_pid = $2 "
						   "WHERE name OPERATOR(pg_catalog.=) $1",
						   2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update streaming.queries");
		SPI_finish();
	}
	if (!streaming_preloaded)
		ereport(NOTICE,
				(errmsg("continuous query \"%s\" runs until the server restarts", name),
				 errhint("Add streaming to shared_preload_libraries to start enabled queries at server start.")));
}

/*
 * StopQuery ends a query's worker, waiting for it to exit, and disables
 * the query.
 */
void
StopQuery(const char *name, bool disable)
{
	QueryDef   *q = QueryDefLoad(name, false, false);
	ListCell   *lc;

	QueryCheckOwner(q);

	/*
	 * Until this transaction ends, no new worker claims the query: the
	 * launcher sees a worker it stopped exit and would start another, which
	 * could claim the query before this transaction disables it (and then
	 * run a whole batch, which this transaction would wait for).
	 */
	(void) DirectFunctionCall2(pg_advisory_xact_lock_int4,
							   Int32GetDatum(STREAMING_STOP_LOCK), Int32GetDatum(q->id));
	foreach(lc, worker_pids(name))
	{
		int			pid = lfirst_int(lc);
		bool		gone;

		gone = DatumGetBool(DirectFunctionCall2(pg_terminate_backend,
												Int32GetDatum(pid), Int64GetDatum(10000)));
		if (!gone)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("the worker of continuous query \"%s\" did not exit within 10 seconds", name)));
	}
	if (disable)
		update_query("UPDATE streaming.queries SET enabled = false, status = 'stopped', restart_at = NULL, "
					 "worker_pid = NULL, condition = NULL WHERE name OPERATOR(pg_catalog.=) $1", name);
}

/*
 * StopDatabaseWorkers ends the query workers of a database that is about to
 * be dropped (DROP DATABASE refuses while other sessions are connected), as
 * far as the dropping role may: its own workers, or all with superuser or
 * pg_signal_backend.  The queries stay enabled: if the drop fails after
 * all, the launcher starts them again.
 */
void
StopDatabaseWorkers(const char *dbname)
{
	Oid			dboid = get_database_oid(dbname, true);
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	List	   *pids = NIL;
	ListCell   *lc;

	if (!OidIsValid(dboid) || dboid == MyDatabaseId)
		return;
	args[0] = ObjectIdGetDatum(dboid);
	SPI_connect();
	/* as the caller: the extension need not be installed in this database */
	if (SPI_execute_with_args("SELECT pid, usesysid FROM pg_catalog.pg_stat_activity "
							  "WHERE datid OPERATOR(pg_catalog.=) $1 "
							  "AND backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "'",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int			pid = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		Oid			role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));

		if (!isnull && (has_privs_of_role(GetUserId(), role) ||
						has_privs_of_role(GetUserId(), ROLE_PG_SIGNAL_BACKEND)))
			pids = lappend_int(pids, pid);
	}
	SPI_finish();

	foreach(lc, pids)
		(void) DirectFunctionCall2(pg_terminate_backend,
								   Int32GetDatum(lfirst_int(lc)), Int64GetDatum(5000));
}

/*
 * streaming_start implements streaming.start(name).
 */
Datum
streaming_start(PG_FUNCTION_ARGS)
{
	StartQuery(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * streaming_stop implements streaming.stop(name): returns once the worker
 * has exited.
 */
Datum
streaming_stop(PG_FUNCTION_ARGS)
{
	StopQuery(text_to_cstring(PG_GETARG_TEXT_PP(0)), true);
	PG_RETURN_VOID();
}
