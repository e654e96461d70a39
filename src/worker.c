/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Pool workers, which run the batches of every started continuous query
 *	  of their database, and streaming.start() / streaming.stop().
 *
 * Each database where queries are started has a pool of background
 * workers: streaming.workers_per_database of them at most, and
 * streaming.max_workers in all databases.  A pool worker connects to its
 * database as the bootstrap superuser and holds a share of the database's
 * started queries (scheduler.c says which).  It runs one batch at a time,
 * one transaction each, for whichever held query is due, in turn: a query
 * with trigger '0' is due again as soon as its batch ends, an interval
 * trigger one interval after its last batch started (a batch that overruns
 * is followed at once, without a catch-up burst), 'once' and
 * 'available_now' until they mark the query finished.  A query whose
 * source had nothing waits for what the source says to wait for: a
 * descriptor that becomes readable when input arrives (Kafka, a socket),
 * or the time the next input is due (the rate source); only a source that
 * can tell neither is looked at again after streaming.idle_poll.  While
 * no held query is due, the worker sleeps on its latch and those
 * descriptors.  A busy query thus gets one batch, then every other due
 * query gets one: no query starves the others.
 *
 * Every batch runs as the query's owner, security-restricted (the owner's
 * code can change nothing of the session: no SET ROLE, no temporary
 * objects, and the settings it makes are undone after the batch), as
 * REFRESH MATERIALIZED VIEW runs a view's owner's code.  Deferred triggers
 * would fire at commit, outside the owner's rights: a batch that queued
 * some fails instead, saying so.
 *
 * A batch that fails marks its query failed, with its error; the worker
 * goes on with the others.  A source that lost its connection, or a
 * serialization failure or deadlock, is retried with a backoff.  SIGTERM
 * (pg_terminate_backend, shutdown, DROP DATABASE) ends the worker between
 * batches, or cancels the batch in progress as a query cancel would, which
 * loses nothing: the batch is one transaction, rolled back, and its input
 * is read again.  A worker that exits lets go of its queries, and the
 * other workers take them at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "commands/dbcommands.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "query.h"
#include "scheduler.h"
#include "slices.h"
#include "source.h"
#include "streaming.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(streaming_start);
PG_FUNCTION_INFO_V1(streaming_stop);

int			streaming_idle_poll = 200;
int			streaming_max_workers = 4;
int			streaming_workers_per_database = 2;

/*
 * How often a pool worker looks at the catalog for queries to take or give
 * up, besides when start(), stop() or an exiting worker sets its latch.
 */
#define POOL_SCAN_MS 5000

/* a pool worker with no started query in its database exits after this */
#define POOL_IDLE_EXIT_MS 10000

/*
 * Set by SIGTERM.  While a batch runs (in_batch), SIGTERM also cancels it
 * as a query cancel does: the error it raises rolls the batch back.
 */
static volatile sig_atomic_t got_sigterm = false;
static volatile sig_atomic_t in_batch = false;

/* the queries this worker holds, and whose turn is next */
static List *held = NIL;
static int	turn = 0;

/* the role the worker connected as (the bootstrap superuser) */
static Oid	worker_user = InvalidOid;

/* the extension was updated since the worker started */
static bool new_version = false;

/* the query whose batch runs, for the context of log lines */
static const char *batch_query = NULL;

/*
 * count_pool_workers counts the live pool workers of a database (or of
 * all databases, with InvalidOid).  Callers are in a transaction.
 */
static int64
count_pool_workers(Oid dboid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(dboid)};
	bool		isnull;
	int64		n;

	SPI_connect();
	if (CatalogExecute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity "
					   "WHERE backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "' "
					   "AND ($1 OPERATOR(pg_catalog.=) 0 OR datid OPERATOR(pg_catalog.=) $1)",
					   1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return n;
}

/*
 * StartPoolWorkers starts the pool workers a database lacks for nqueries
 * started queries: as many as there are queries, up to
 * streaming.workers_per_database, as far as streaming.max_workers (all
 * databases) and free background worker slots allow.  Returns NULL, or
 * why a query of the database has no worker.  Callers are in a
 * transaction.
 */
char *
StartPoolWorkers(Oid dboid, int nqueries)
{
	int64		in_db = count_pool_workers(dboid);
	int64		in_all = count_pool_workers(InvalidOid);
	int64		wanted = Min(nqueries, streaming_workers_per_database) - in_db;
	char	   *why = NULL;

	if (nqueries <= 0)
		return NULL;
	if (wanted > streaming_max_workers - in_all)
	{
		wanted = streaming_max_workers - in_all;
		if (in_db + Max(wanted, 0) == 0)
			why = psprintf("waiting for a worker: streaming.max_workers (%d) pool workers run in other databases",
						   streaming_max_workers);
	}
	for (int64 i = 0; i < wanted; i++)
	{
		BackgroundWorker worker;
		BackgroundWorkerHandle *handle;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "streaming");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "StreamingPoolWorkerMain");
		snprintf(worker.bgw_name, BGW_MAXLEN, "streaming worker");
		snprintf(worker.bgw_type, BGW_MAXLEN, STREAMING_WORKER_TYPE);
		worker.bgw_main_arg = ObjectIdGetDatum(dboid);
		worker.bgw_notify_pid = 0;
		if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		{
			if (in_db + i == 0)
				why = pstrdup("waiting for a worker: no background worker slot is free (max_worker_processes)");
			break;
		}
	}
	return why;
}

/*
 * surplus_worker: whether the database has more pool workers than its
 * nqueries started queries (and slices) need, in a transaction of its own.
 */
static bool
surplus_worker(Oid dboid, int nqueries)
{
	int64		in_db;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	in_db = count_pool_workers(dboid);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return in_db > Min(nqueries, streaming_workers_per_database);
}

/*
 * exec_query_update runs one statement about a query's catalog row in a
 * transaction of its own, if the row is still this worker's (for a slice
 * > 0, if the query is still started).
 */
static void
exec_query_update(const char *set, PoolQuery *pq, const char *text)
{
	Oid			argtypes[3] = {INT4OID, INT4OID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	args[0] = Int32GetDatum(pq->id);
	args[1] = Int32GetDatum(MyProcPid);
	args[2] = text ? CStringGetTextDatum(text) : (Datum) 0;
	nulls[2] = text ? ' ' : 'n';
	/* a slice > 0 (slices.c) speaks for its query while it is started */
	if (CatalogExecute(psprintf("UPDATE streaming.queries SET %s WHERE id OPERATOR(pg_catalog.=) $1 "
								"AND %s", set,
								pq->slice > 0 ? "enabled AND $2 OPERATOR(pg_catalog.=) $2" :
								"worker_pid OPERATOR(pg_catalog.=) $2"),
					   3, argtypes, args, nulls, false, 0) < 0)
		elog(ERROR, "could not update the state of query \"%s\"", pq->name);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/* log lines of a batch name its query */
static void
batch_error_context(void *arg)
{
	if (batch_query != NULL)
		errcontext("continuous query \"%s\"", batch_query);
}

/*
 * discard_session_state drops what the owner's code may have left in the
 * session, as DISCARD ALL does, so that the next batch — of another
 * role's query, maybe — finds none of it: prepared statements, LISTEN
 * registrations (which would fill the server's notification queue),
 * session-level advisory locks, sequence values (lastval()), the seed of
 * random() (setseed(), which DISCARD ALL keeps).  Settings are
 * undone by the batch's GUC nest level, and temporary objects cannot be
 * made in a security-restricted operation.
 */
static void
discard_session_state(void)
{
	DropAllPreparedStatements();
	Async_UnlistenAll();
	LockReleaseSession(USER_LOCKMETHOD);
	ResetSequenceCaches();
	/* random() seeded afresh: not from a seed the owner's setseed() chose */
	{
		uint64		r;

		if (!pg_strong_random(&r, sizeof(r)))
			r = (uint64) GetCurrentTimestamp() ^ (uint64) MyProcPid;
		(void) DirectFunctionCall1(setseed, Float8GetDatum((double) (r >> 11) / (double) (UINT64CONST(1) << 53)));
	}
}

/*
 * query_is_mine tells whether a query (or the slice of it that pq runs)
 * is started and held by this worker; with lock, the query's row is
 * locked as a batch of the whole query locks it.
 */
static bool
query_is_mine(PoolQuery *pq, bool lock)
{
	Oid			argtypes[3] = {INT4OID, INT4OID, INT4OID};
	Datum		args[3] = {Int32GetDatum(pq->id), Int32GetDatum(MyProcPid), Int32GetDatum(pq->slice)};
	bool		mine;

	SPI_connect();
	if (CatalogExecute(pq->slice > 0 ?
					   "SELECT 1 FROM streaming.queries q JOIN streaming.query_slices s "
					   "ON s.query OPERATOR(pg_catalog.=) q.id "
					   "WHERE q.id OPERATOR(pg_catalog.=) $1 AND s.slice OPERATOR(pg_catalog.=) $3 "
					   "AND s.slice OPERATOR(pg_catalog.<) q.parallelism "
					   "AND s.worker_pid OPERATOR(pg_catalog.=) $2 AND q.enabled "
					   "AND q.status OPERATOR(pg_catalog.<>) 'failed'" :
					   lock ?
					   "SELECT 1 FROM streaming.queries WHERE id OPERATOR(pg_catalog.=) $1 "
					   "AND worker_pid OPERATOR(pg_catalog.=) $2 AND enabled FOR UPDATE" :
					   "SELECT 1 FROM streaming.queries WHERE id OPERATOR(pg_catalog.=) $1 "
					   "AND worker_pid OPERATOR(pg_catalog.=) $2 AND enabled",
					   3, argtypes, args, NULL, !lock, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	mine = SPI_processed == 1;
	SPI_finish();
	return mine;
}

/*
 * exec_slice_update runs one statement about the row of a slice > 0 that
 * this worker holds, in a transaction of its own.
 */
static void
exec_slice_update(const char *set, PoolQuery *pq)
{
	Oid			argtypes[3] = {INT4OID, INT4OID, INT4OID};
	Datum		args[3] = {Int32GetDatum(pq->id), Int32GetDatum(MyProcPid), Int32GetDatum(pq->slice)};

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (CatalogExecute(psprintf("UPDATE streaming.query_slices SET %s WHERE query OPERATOR(pg_catalog.=) $1 "
								"AND slice OPERATOR(pg_catalog.=) $3 AND worker_pid OPERATOR(pg_catalog.=) $2", set),
					   3, argtypes, args, NULL, false, 0) < 0)
		elog(ERROR, "could not update the state of query \"%s\"", pq->name);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * stop_in_progress tells whether stop() or drop_query() of query id holds
 * its lock now (see StopQuery).
 */
static bool
stop_in_progress(int32 id)
{
	if (!ConditionalLockDatabaseObject(StreamingStopLockClass(), (Oid) id, 0, ShareLock))
		return true;
	UnlockDatabaseObject(StreamingStopLockClass(), (Oid) id, 0, ShareLock);
	return false;
}

/*
 * run_batch runs one micro-batch of a held query in its own transaction,
 * as the query's owner.  Returns whether a batch ran; *mine tells whether
 * the query is still started and this worker's.
 */
static bool
run_batch(PoolQuery *pq, bool *mine, BatchResult *res)
{
	bool		ran = false;
	bool		quiet = false;
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
	ErrorContextCallback errcb;

	memset(res, 0, sizeof(BatchResult));
	res->t_start = GetCurrentTimestamp();
	res->wake_fd = PGINVALID_SOCKET;
	/* batch after batch: sources may keep what they read ahead */
	BatchLive = !pq->once && !pq->available_now;
	BatchAvailableNow = pq->available_now_at;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, psprintf("streaming micro-batch: %s", pq->name));
	batch_query = pq->name;
	errcb.callback = batch_error_context;
	errcb.arg = NULL;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/*
	 * The owner's rights, security-restricted; its settings undone after.
	 * session_user is the owner too, as in a session of the owner's: what
	 * audit triggers record.
	 */
	SetSessionAuthorization(pq->owner, superuser_arg(pq->owner));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(pq->owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	nestlevel = NewGUCNestLevel();

	/* after DROP EXTENSION the worker has nothing left to do */
	*mine = LockStreamingExtension();
	/* ALTER EXTENSION UPDATE: a new worker, which knows the new catalog */
	if (*mine && ExtensionVersionChanged())
	{
		new_version = true;
		*mine = false;
	}
	*mine = *mine && query_is_mine(pq, false);
	/*
	 * Not while stop() or drop_query() of the query is at it: having
	 * cancelled the batch in progress, it waits for the query's row, which
	 * a batch begun now would take first and hold to its end.  A stop()
	 * that begins after this look finds the batch in pg_stat_activity (set
	 * above) and cancels it.  The query is let go of at the next scan.
	 */
	if (*mine && !stop_in_progress(pq->id))
	{
		QueryDef   *q = QueryDefLoad(pq->name, QUERY_LOCK_NONE, true);

		*mine = q != NULL && q->id == pq->id;
		if (*mine)
		{
			/*
			 * What a source waits for is this query's: a condition another
			 * query's source left in the process (SourceCondition) is not
			 * (a file query shown waiting for another query's broker)
			 */
			SourceClearCondition();
			/* before the batch writes or locks anything (a table source's slot) */
			SourcePrepareQuery(q->name, q->id, q->plan->sources);

			/*
			 * A source that can tell it has no input spares the query the
			 * lock on its row, which takes a transaction id and writes WAL:
			 * a query over a quiet table would otherwise do both at every
			 * look.  Not for 'once' or available_now, whose batch that
			 * finds nothing ends the run.
			 */
			quiet = pq->slice == SLICE_WHOLE && !pq->once && !pq->available_now &&
				SourcesQuiet(q->name, q->id, q->plan->sources, &res->wake_at);
			/* a slice's batch takes its slice's row first (slices.c) */
			if (!quiet && pq->slice != SLICE_WHOLE)
				SliceLock(pq->name, pq->slice);
			/* still, under the row lock the batch holds: stop() waited for it */
			if (!quiet)
				*mine = query_is_mine(pq, pq->slice == SLICE_WHOLE);
		}
		if (*mine && !quiet)
			ran = RunMicroBatch(pq->name, pq->slice, res);
	}

	/* as the owner, or not at all: a deferred trigger is refused here */
	AfterTriggerFireDeferred();
	/* nothing of the owner's session state is left for the next batch */
	discard_session_state();
	AtEOXact_GUC(false, nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	SetSessionAuthorization(worker_user, true);

	error_context_stack = errcb.previous;
	batch_query = NULL;
	PopActiveSnapshot();

	/*
	 * Idle before the commit releases the query's row: a batch that ran
	 * for over STUCK_BATCH_SECONDS would otherwise show a worker stuck
	 * with the row free for a moment, and another worker would take the
	 * query (and meet the slot of a table source still held here).
	 */
	pgstat_report_activity(STATE_IDLE, NULL);
	CommitTransactionCommand();
	pgstat_report_stat(false);
	return ran;
}

/*
 * worker_sigterm is the SIGTERM handler of a pool worker: it only sets
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
 * worker_sigint: a cancel (stop(), pg_cancel_backend) cancels the batch in
 * progress; between batches there is nothing to cancel.
 */
static void
worker_sigint(SIGNAL_ARGS)
{
	if (in_batch)
		StatementCancelHandler(postgres_signal_arg);
}

/*
 * worker_exit lets go of the held queries, so that the other workers take
 * them at once, and exits.  The catalog rows stay as they are otherwise:
 * the queries stay started.
 */
static void
worker_exit(const char *why, const char *cancelled)
{
	/* a cancel that came after the batch's last check has nothing to cancel */
	QueryCancelPending = false;
	if (why != NULL)
		ereport(LOG,
				(errmsg("streaming worker stopping %s", why),
				 cancelled ? errdetail("The batch of continuous query \"%s\" in progress was rolled back; its input is read again by the next run.", cancelled) : 0));
	SchedulerReleaseAll(held);
	proc_exit(0);
}

/* tells whether the extension is installed in the worker's database */
static bool
has_extension(void)
{
	bool		found;

	StartTransactionCommand();
	found = OidIsValid(get_extension_oid("streaming", true));
	CommitTransactionCommand();
	return found;
}

/*
 * fail_query records a batch's error: a query that may succeed by trying
 * again waits and tries again; any other error fails it.  Returns false
 * when the query failed (and was let go of).
 */
static bool
fail_query(PoolQuery *pq, ErrorData *edata)
{
	/*
	 * A source that lost its connection (class 08), input that changed
	 * under the batch, a deadlock or a serialization failure (class 40),
	 * a lock held elsewhere (lock_timeout, a table source's slot that the
	 * worker that ran the query before still holds: 55P03), or a cancel
	 * (stop(), or pg_cancel_backend of the worker) is not a reason to
	 * fail: nothing was committed, so run the batch again (after a backoff
	 * but for a cancel).
	 */
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
	{
		/* by stop() (the query is let go of at the next look), or by hand */
		pq->due = 0;
		pq->wait_input = false;
		return true;
	}
	if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION ||
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_TRANSACTION_ROLLBACK ||
		edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
	{
		if (pq->condition)
			pfree(pq->condition);
		pq->condition = MemoryContextStrdup(TopMemoryContext, edata->message);
		/* the query's condition is what its whole, or its slice 0, meets */
		if (pq->slice <= 0)
			exec_query_update("condition = $3", pq, pq->condition);
		pq->due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pq->retry_ms);
		pq->wait_input = false;
		pq->retry_ms = Min(pq->retry_ms * 2, 30000);
		return true;
	}
	if (pq->slice > 0)
	{
		/* a slice that fails fails its query, whoever holds slice 0 */
		exec_slice_update("worker_pid = NULL", pq);
		exec_query_update("status = 'failed', worker_pid = NULL, condition = NULL, last_error = $3",
						  pq, edata->message);
	}
	else
		exec_query_update("status = 'failed', worker_pid = NULL, condition = NULL, last_error = $3",
						  pq, edata->message);
	return false;
}

/*
 * run_turn runs one batch of a held query and sets when it is due next.
 * Returns false when the worker let go of the query.
 */
static bool
run_turn(PoolQuery *pq, MemoryContext loopcxt)
{
	TimestampTz started = GetCurrentTimestamp();
	BatchResult res;
	volatile bool mine = true;
	volatile bool ran = false;
	MemoryContext old;

	old = MemoryContextSwitchTo(loopcxt);
	PG_TRY();
	{
		bool		m;

		in_batch = true;
		ran = run_batch(pq, &m, &res);
		mine = m;
		in_batch = false;
		/* a cancel that came as the batch committed has nothing to cancel */
		QueryCancelPending = false;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		keep;

		in_batch = false;
		/* the batch rolled back; record why, and stop this query only */
		MemoryContextSwitchTo(loopcxt);
		edata = CopyErrorData();
		batch_query = NULL;
		if (got_sigterm)
		{
			/* stopped: the cancel (or whatever failed meanwhile) is no failure */
			if (edata->sqlerrcode != ERRCODE_QUERY_CANCELED)
				EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			SetSessionAuthorization(worker_user, true);
			worker_exit("on request", pq->name);
		}
		/* idle before the abort releases the row, as after a commit */
		pgstat_report_activity(STATE_IDLE, NULL);
		AbortCurrentTransaction();
		SetSessionAuthorization(worker_user, true);
		/* DROP EXTENSION under the batch: not an error, the end */
		if (!has_extension())
		{
			FlushErrorState();
			MemoryContextSwitchTo(old);
			MemoryContextReset(loopcxt);
			return false;
		}
		/* stop() cancels the batch of the query it stops: no error */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ereport(LOG,
					(errmsg("streaming query \"%s\": the batch in progress was cancelled", pq->name),
					 errdetail("It was rolled back; its input is read again by the next batch.")));
		else
			EmitErrorReport();
		FlushErrorState();
		/* what the sources kept may be what failed: start them afresh */
		SourceForgetQuery(pq->name, pq->slice);
		keep = fail_query(pq, edata);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loopcxt);
		return keep;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextReset(loopcxt);
	if (!mine)
		return false;
	pq->retry_ms = 1000;

	/* it got going: the next crash takes it again at once */
	if (pq->first)
	{
		if (pq->slice > 0)
			exec_slice_update("restarts = 0", pq);
		else
			exec_query_update("restarts = 0", pq, NULL);
		pq->first = false;
	}
	/* what the source waits for (a broker, a server), for the status view */
	if (pq->slice <= 0 &&
		((SourceCondition == NULL) != (pq->condition == NULL) ||
		 (pq->condition != NULL && strcmp(pq->condition, SourceCondition) != 0)))
	{
		if (pq->condition)
			pfree(pq->condition);
		pq->condition = SourceCondition ? MemoryContextStrdup(TopMemoryContext, SourceCondition) : NULL;
		exec_query_update("condition = $3", pq, pq->condition);
	}

	/*
	 * 'once' and 'available_now' end when their input is read, not when a
	 * source could not be read (a broker that did not answer): that is
	 * tried again, as a batch that failed to reach it.
	 */
	if ((pq->once || pq->available_now) && !ran && res.source_waiting)
	{
		pq->due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), pq->retry_ms);
		pq->wait_input = false;
		pq->retry_ms = Min(pq->retry_ms * 2, 30000);
		return true;
	}
	if (pq->once || (pq->available_now && (!ran || res.endless)))
	{
		exec_query_update("status = 'finished', worker_pid = NULL, condition = NULL, enabled = false",
						  pq, NULL);
		return false;
	}
	pq->woken = false;
	pq->wait_input = !ran && !pq->available_now;
	pq->wake_fd = res.wake_fd;
	pq->wake_at = res.wake_at;
	pq->wake_drain = res.wake_drain;
	if (pq->wait_input && pq->wake_at == 0 &&
		(pq->interval_ms == 0 || res.wake_fd == PGINVALID_SOCKET))
	{
		/*
		 * A source that cannot tell when input comes is looked at again
		 * after streaming.idle_poll (or at the next interval trigger).
		 */
		if (pq->interval_ms == 0)
			pq->wake_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), streaming_idle_poll);
		else
			pq->wait_input = false;
	}

	/*
	 * The next trigger is one interval after this batch started, as its
	 * progress row says: timed from anywhere earlier, a batch that was slow
	 * to get going would be followed too soon.
	 */
	if (pq->interval_ms > 0)
		pq->due = (ran ? res.t_start : started) + pq->interval_ms * 1000;
	else
		pq->due = 0;
	return true;
}

/*
 * wait_for_turn sleeps until a held query is ready, the latch is set, or
 * until (at the latest).  A descriptor that became readable marks its
 * queries woken.  Returns whether the latch was set.
 */
static bool
wait_for_turn(TimestampTz until)
{
	bool		latch_set = false;
	WaitEventSet *set;
	WaitEvent	events[16];
	int			nfds = 0;
	ListCell   *lc;
	long		ms;
	int			n;
	List	   *fds = NIL;

	/* each descriptor once: queries may share one */
	foreach(lc, held)
	{
		PoolQuery  *pq = lfirst(lc);

		if (pq->wait_input && !pq->woken && pq->wake_fd != PGINVALID_SOCKET)
			fds = list_append_unique_int(fds, pq->wake_fd);
	}
	nfds = list_length(fds);
	ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);
	if (ms <= 0 && nfds == 0)
		return false;
	set = CreateWaitEventSet(CurrentMemoryContext, nfds + 2);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	foreach(lc, fds)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, lfirst_int(lc), NULL, NULL);
	n = WaitEventSetWait(set, Max(ms, 0), events, lengthof(events), PG_WAIT_EXTENSION);
	for (int i = 0; i < n; i++)
	{
		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_set = true;
		}
		if (events[i].events & WL_SOCKET_READABLE)
		{
			bool		drain = false;

			/* every query waiting on this descriptor (a shared one) */
			foreach(lc, held)
			{
				PoolQuery  *pq = lfirst(lc);

				if (pq->wait_input && pq->wake_fd == events[i].fd)
				{
					pq->woken = true;
					drain |= pq->wake_drain;
				}
			}
			/*
			 * A shared descriptor (the file sources' directory watch) is
			 * read empty here, once every query waiting on it is woken: a
			 * query that is not waiting looks at its source at its next
			 * batch anyway.
			 */
			if (drain)
			{
				char		buf[4096];

				while (read(events[i].fd, buf, sizeof(buf)) > 0)
					;
			}
		}
	}
	FreeWaitEventSet(set);
	list_free(fds);
	return latch_set;
}

/*
 * scan brings the held queries up to date with the catalog (scheduler.c);
 * returns the number of started queries of the database, 0 if the
 * extension is not (or no longer) installed.  A worker started once too
 * often (start() and the launcher at once) exits at its first scan.
 */
static int
scan(Oid dboid, bool *first_scan)
{
	volatile int nqueries = 0;

	if (*first_scan)
	{
		int64		in_db;
		int64		in_all;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		/* the version this worker runs for */
		(void) ExtensionVersionChanged();
		in_db = count_pool_workers(dboid);
		in_all = count_pool_workers(InvalidOid);
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (in_db > streaming_workers_per_database || in_all > streaming_max_workers)
			worker_exit(NULL, NULL);
		*first_scan = false;
	}
	PG_TRY();
	{
		int			n;

		held = SchedulerScan(held, &n);
		nqueries = n;
		if (n < 0)
		{
			/* DROP EXTENSION: leave, unless just started by an uncommitted start() */
			if (GetCurrentTimestamp() - MyStartTimestamp >= (TimestampTz) POOL_IDLE_EXIT_MS * 1000)
				worker_exit(NULL, NULL);
			nqueries = 0;
		}
	}
	PG_CATCH();
	{
		/*
		 * DROP EXTENSION under the scan: not an error, the end.  What the
		 * scan left of the list is not to be trusted, nor used again.
		 */
		held = NIL;
		AbortCurrentTransaction();
		if (has_extension())
			PG_RE_THROW();
		FlushErrorState();
		nqueries = 0;
	}
	PG_END_TRY();
	return nqueries;
}

/*
 * StreamingPoolWorkerMain is the entry point of a pool worker.
 */
void
StreamingPoolWorkerMain(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	MemoryContext loopcxt;
	TimestampTz next_scan = 0;
	TimestampTz idle_since = 0;
	TimestampTz surplus_since = 0;
	bool		first_scan = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	pqsignal(SIGINT, worker_sigint);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	worker_user = GetSessionUserId();
	SetConfigOption("application_name", "streaming worker", PGC_USERSET, PGC_S_SESSION);
	pgstat_report_appname("streaming worker");
	/* nothing of the database's users is looked up outside a batch */
	SetConfigOption("search_path", CATALOG_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION);
	/* offsets and results share each commit, so a lost commit is replayed */
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);

	loopcxt = AllocSetContextCreate(TopMemoryContext, "streaming pool worker",
									ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		TimestampTz now;
		TimestampTz until;
		PoolQuery  *next = NULL;
		int			nheld;

		if (got_sigterm)
			worker_exit("on request", NULL);
		/* a cancel meant for a batch that has ended has nothing to cancel */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * A latch set by start(), stop() or another worker giving up or
		 * asking for its share: look at the catalog now, even between two
		 * batches of queries that are always ready.
		 */
		if (MyLatch->is_set)
		{
			ResetLatch(MyLatch);
			next_scan = 0;
		}
		now = GetCurrentTimestamp();
		if (now >= next_scan)
		{
			int			nqueries = scan(dboid, &first_scan);

			next_scan = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), POOL_SCAN_MS);
			if (nqueries == 0)
			{
				/*
				 * None started (or the extension is gone): the worker stays
				 * a while, as the start() that started it may not have
				 * committed yet, and the next may come soon.
				 */
				if (idle_since == 0)
					idle_since = now;
				else if (now - idle_since >= (TimestampTz) POOL_IDLE_EXIT_MS * 1000)
					worker_exit(NULL, NULL);
			}
			else
				idle_since = 0;

			/*
			 * Two starters that counted the pool before either's worker
			 * showed in pg_stat_activity (a start() and the launcher's
			 * scan) may both have started one: a worker that holds nothing
			 * while the database has more workers than started queries
			 * (or than streaming.workers_per_database) leaves after a
			 * while.  Should two leave, the launcher starts what is
			 * missing.
			 */
			if (nqueries > 0 && held == NIL && surplus_worker(dboid, nqueries))
			{
				if (surplus_since == 0)
					surplus_since = now;
				else if (now - surplus_since >= (TimestampTz) POOL_IDLE_EXIT_MS * 1000)
					worker_exit(NULL, NULL);
			}
			else
				surplus_since = 0;
			turn = 0;
		}

		/* the next ready query, in turn after the last one that ran */
		nheld = list_length(held);
		now = GetCurrentTimestamp();
		for (int i = 0; i < nheld; i++)
		{
			PoolQuery  *pq = list_nth(held, (turn + i) % nheld);

			if (PoolQueryReady(pq, now))
			{
				next = pq;
				turn = (turn + i + 1) % nheld;
				break;
			}
		}
		if (next != NULL)
		{
			if (!run_turn(next, loopcxt))
			{
				SchedulerForget(next);
				held = list_delete_ptr(held, next);
			}
			if (new_version)
				worker_exit("for the new version of the extension", NULL);
			continue;
		}

		/* nothing ready: sleep until one may be, or the next scan */
		until = next_scan;
		{
			ListCell   *lc;

			foreach(lc, held)
			{
				TimestampTz t = PoolQueryWakeTime((PoolQuery *) lfirst(lc));

				if (t != 0 && t < until)
					until = t;
			}
		}
		/* a latch set by start() or stop(): look at the catalog now */
		if (wait_for_turn(until))
			next_scan = 0;
	}
}

/*
 * StartQuery enables a query; a pool worker of the database takes it.
 */
void
StartQuery(const char *name)
{
	QueryDef   *q = QueryDefLoad(name, QUERY_LOCK_NONE, false);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};
	int64		nqueries;
	bool		isnull;
	char	   *waiting;

	QueryCheckOwner(q);
	/* a query that cannot run is an error here, not a worker that fails */
	QueryCheckRunnable(q);
	SPI_connect();
	/* a stopped or failed query's slices are taken afresh (before its row: slices.c) */
	if (q->parallelism > 1)
	{
		if (CatalogExecute("SELECT 1 FROM streaming.queries WHERE name OPERATOR(pg_catalog.=) $1 "
						   "AND enabled AND status OPERATOR(pg_catalog.=) 'running'",
						   1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read streaming.queries");
		if (SPI_processed == 0)
			SlicesRelease(q->id);
	}
	if (CatalogExecute("UPDATE streaming.queries SET enabled = true, status = 'running', "
					   "last_error = NULL, restart_at = NULL, condition = NULL "
					   "WHERE name OPERATOR(pg_catalog.=) $1 AND NOT (enabled AND status OPERATOR(pg_catalog.=) 'running')",
					   1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");
	if (CatalogExecute(CatalogHasSlices() ?
						"SELECT COALESCE(pg_catalog.sum(parallelism), 0)::pg_catalog.int8 FROM streaming.queries "
						"WHERE enabled AND status OPERATOR(pg_catalog.<>) 'failed'" :
						"SELECT pg_catalog.count(*) FROM streaming.queries "
					   "WHERE enabled AND status OPERATOR(pg_catalog.<>) 'failed'",
					   0, NULL, NULL, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	nqueries = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	waiting = StartPoolWorkers(MyDatabaseId, (int) nqueries);
	if (waiting != NULL)
	{
		if (!streaming_preloaded)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("could not start continuous query \"%s\"", name),
					 errdetail("%s.", waiting),
					 errhint("Raise streaming.max_workers, or max_worker_processes.")));
		SPI_connect();
		if (CatalogExecute(psprintf("UPDATE streaming.queries SET condition = %s "
									"WHERE name OPERATOR(pg_catalog.=) $1", quote_literal_cstr(waiting)),
						   1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update streaming.queries");
		SPI_finish();
		ereport(NOTICE,
				(errmsg("continuous query \"%s\" waits for a worker", name),
				 errdetail("%s; the launcher starts one when it can.", waiting)));
		return;
	}
	/* the workers look at once (they see the query when this commits) */
	SchedulerWakeAtCommit(MyDatabaseId);
	if (!streaming_preloaded)
		ereport(NOTICE,
				(errmsg("continuous query \"%s\" runs until the server restarts", name),
				 errhint("Add streaming to shared_preload_libraries to start enabled queries at server start.")));
}

/*
 * signal_pool_workers sends signo to the pool workers of database dboid:
 * with batch_of, only to one running that batch now (its activity), read
 * as the catalog's owner, who sees every worker's activity; without, to
 * all of them, read as the caller (the extension need not be installed in
 * dboid).  A pid is checked to be a backend of dboid before it is sent.
 */
static void
signal_pool_workers(Oid dboid, const char *batch_of, int signo)
{
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	const char *sql;
	List	   *pids = NIL;
	ListCell   *lc;
	int			rc;

	args[0] = ObjectIdGetDatum(dboid);
	args[1] = batch_of ? CStringGetTextDatum(batch_of) : (Datum) 0;
	sql = batch_of ?
		"SELECT pid FROM pg_catalog.pg_stat_activity "
		"WHERE backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "' "
		"AND datid OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active' "
		"AND query OPERATOR(pg_catalog.=) $2" :
		"SELECT pid FROM pg_catalog.pg_stat_activity "
		"WHERE datid OPERATOR(pg_catalog.=) $1 "
		"AND backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "'";
	SPI_connect();
	rc = batch_of ? CatalogExecute(sql, 2, argtypes, args, NULL, true, 0) :
		SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		pids = lappend_int(pids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 1, &isnull)));
	}
	SPI_finish();
	foreach(lc, pids)
	{
		PGPROC	   *proc = BackendPidGetProc(lfirst_int(lc));

		if (proc != NULL && proc->databaseId == dboid)
			(void) kill(lfirst_int(lc), signo);
	}
}

/*
 * cancel_batch cancels a batch of the query that a pool worker is running
 * now, as pg_cancel_backend would: it rolls back, losing nothing.  The
 * caller owns the query, and the worker (a superuser's process) runs it
 * for the caller; should the worker have gone on to another query's batch
 * in the meantime, that batch is cancelled and run again at once.
 */
static void
cancel_batch(const char *name)
{
	/*
	 * What the workers run now, not what they ran when the caller's
	 * transaction first looked at pg_stat_activity: a snapshot kept from
	 * then would have this cancel whatever batch runs now, another role's.
	 */
	pgstat_clear_backend_activity_snapshot();
	/* as the catalog's owner: a worker's activity is hidden from others */
	signal_pool_workers(MyDatabaseId, psprintf("streaming micro-batch: %s", name), SIGINT);
}

/*
 * StopQuery disables a query (with disable) and lets go of it: once this
 * returns, no worker runs a batch of it until it is started again.  A
 * batch in progress is cancelled, and waited for as it rolls back.
 */
void
StopQuery(const char *name, bool disable)
{
	QueryDef   *q = QueryDefLoad(name, QUERY_LOCK_NONE, false);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(name)};

	QueryCheckOwner(q);

	/*
	 * Until this transaction ends, no worker takes the query: the lock
	 * that every claim needs.  The row lock that a batch holds until
	 * it ends makes the update below wait for the batch in progress, which
	 * is cancelled first.
	 */
	LockDatabaseObject(StreamingStopLockClass(), (Oid) q->id, 0, STREAMING_STOP_LOCKMODE);
	cancel_batch(name);
	/* the slices' batches first, before the query's row (slices.c) */
	SlicesRelease(q->id);
	SPI_connect();
	if (CatalogExecute(disable ?
					   "UPDATE streaming.queries SET enabled = false, status = 'stopped', restart_at = NULL, "
					   "worker_pid = NULL, condition = NULL WHERE name OPERATOR(pg_catalog.=) $1" :
					   "UPDATE streaming.queries SET worker_pid = NULL WHERE name OPERATOR(pg_catalog.=) $1",
					   1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");
	SPI_finish();
	/* the worker lets go of what it keeps for the query at once */
	SchedulerWakeAtCommit(MyDatabaseId);
}

/*
 * StopDatabaseWorkers ends the pool workers of a database that is about to
 * be dropped (DROP DATABASE refuses while other sessions are connected),
 * if the dropping role may drop it: its owner, or a superuser.  The
 * queries stay enabled: if the drop fails after all, the launcher starts
 * the pool again.
 */
void
StopDatabaseWorkers(const char *dbname)
{
	Oid			dboid = get_database_oid(dbname, true);

	if (!OidIsValid(dboid) || dboid == MyDatabaseId ||
		!pg_database_ownercheck(dboid, GetUserId()))
		return;
	/* the owner of the database ends its workers as the server would */
	signal_pool_workers(dboid, NULL, SIGTERM);
	/* DROP DATABASE itself waits a few seconds for them to go */
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
 * streaming_stop implements streaming.stop(name): returns once no worker
 * runs the query.
 */
Datum
streaming_stop(PG_FUNCTION_ARGS)
{
	StopQuery(text_to_cstring(PG_GETARG_TEXT_PP(0)), true);
	PG_RETURN_VOID();
}
