/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  Which continuous queries a pool worker holds, and when each is due.
 *
 * Every started query of a database is held by one of the database's pool
 * workers: its row in streaming.queries names the worker (worker_pid).  A
 * worker scans the catalog every second and whenever its latch is set
 * (start() sets it): it lets go of the queries that were stopped, dropped
 * or failed, gives up what it holds beyond its fair share (the started
 * queries divided by the live pool workers of the database, rounded up),
 * and takes, up to that share, queries that no live worker holds: new
 * ones, and those of a worker that exited or died.  A query stays with its
 * worker while the balance holds, so that what its sources keep (a Kafka
 * consumer, a slot) and its prepared statements are used again.
 *
 * A query whose worker died holding it (the catalog still says 'running')
 * is counted as a restart: taken again at once the first time, then after
 * a backoff that doubles from one second up to a minute while it keeps
 * failing before it gets going (streaming.queries.restarts, restart_at);
 * a query that crashes its worker thus cannot keep taking the others down
 * with it.  The worker resets restarts after the query's first batch.
 *
 * A worker whose batch has run for more than ten seconds keeps that query,
 * but the others take the rest of what it holds, so that one long batch
 * (a backlog, a slow function) does not hold up the queries beside it.
 *
 * Every claim and release is a conditional UPDATE that skips rows locked
 * by a batch in progress elsewhere (a run() in a session), and a claim
 * also needs, in share mode, the lock that stop() and drop_query() hold
 * (streaming.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "scheduler.h"
#include "slices.h"
#include "source.h"
#include "streaming.h"

/* a live pool worker's pid (expr) */
#define LIVE_WORKER(expr) \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a " \
	"WHERE a.pid OPERATOR(pg_catalog.=) " expr " " \
	"AND a.backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "')"

/*
 * A live pool worker (pid expr) whose batch has run for more than
 * STUCK_BATCH_SECONDS: the other queries it holds are taken by the other
 * workers meanwhile (the one whose batch runs stays locked to it).
 */
#define STUCK_BATCH_SECONDS "10"
#define STUCK_WORKER(expr) \
	"EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a " \
	"WHERE a.pid OPERATOR(pg_catalog.=) " expr " " \
	"AND a.backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "' " \
	"AND a.state OPERATOR(pg_catalog.=) 'active' " \
	"AND a.query_start OPERATOR(pg_catalog.<) (pg_catalog.now() " \
	"OPERATOR(pg_catalog.-) '" STUCK_BATCH_SECONDS " seconds'::pg_catalog.interval))"

/*
 * The row that says who holds a unit - query $1's row for the whole query
 * or its slice 0, the row of slice $2 in streaming.query_slices for the
 * others - unless a batch in progress has it locked: a batch of the whole
 * query holds the query's row FOR UPDATE, a slice's batch its slice's row
 * FOR UPDATE (and the query's FOR KEY SHARE, which an update of
 * worker_pid does not wait for).
 */
#define UNLOCKED_QUERY_ROW \
	"q.id OPERATOR(pg_catalog.=) (SELECT l.id FROM streaming.queries l " \
	"WHERE l.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE SKIP LOCKED)"
#define UNLOCKED_SLICE_ROW(t) \
	t ".query OPERATOR(pg_catalog.=) $1 AND " t ".slice OPERATOR(pg_catalog.=) " \
	"(SELECT l.slice FROM streaming.query_slices l WHERE l.query OPERATOR(pg_catalog.=) $1 " \
	"AND l.slice OPERATOR(pg_catalog.=) $2 FOR UPDATE SKIP LOCKED)"

/*
 * unit_update updates the row that says who holds a unit, unless a batch
 * has it locked: set and where ($1 the query's id, $2 the slice, $3 this
 * worker's pid, $4 .. $6 args[3] ..) apply to it as q; for a slice > 0 of
 * the query, where may read the query's row as e.  Returns the rows
 * updated (0 or 1).
 */
static uint64
unit_update(int32 id, int slice, const char *set, const char *where,
			Datum *more, int nmore)
{
	Oid			argtypes[6] = {INT4OID, INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID, INT4OID};
	Datum		args[6];
	char	   *sql;

	args[0] = Int32GetDatum(id);
	args[1] = Int32GetDatum(slice);
	args[2] = Int32GetDatum(MyProcPid);
	for (int i = 0; i < nmore; i++)
		args[3 + i] = more[i];
	if (slice <= 0)
		sql = psprintf("UPDATE streaming.queries q SET %s WHERE " UNLOCKED_QUERY_ROW "%s AND %s",
					   set,
					   slice == 0 ? " AND EXISTS (SELECT 1 FROM streaming.query_slices l "
					   "WHERE l.query OPERATOR(pg_catalog.=) $1 AND l.slice OPERATOR(pg_catalog.=) 0 "
					   "FOR UPDATE SKIP LOCKED)" : "",
					   where);
	else
		sql = psprintf("UPDATE streaming.query_slices q SET %s FROM streaming.queries e "
					   "WHERE e.id OPERATOR(pg_catalog.=) $1 AND " UNLOCKED_SLICE_ROW("q") " AND %s",
					   set, where);
	if (CatalogExecute(sql, 3 + nmore, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the worker of query %d", id);
	return SPI_processed;
}

/*
 * restart_delay is the backoff before a query whose worker died `restarts`
 * times in a row without getting going is taken again: at once the first
 * time, then 1, 2, 4, ... seconds, at most a minute.
 */
static TimestampTz
restart_delay(int restarts)
{
	int			seconds = restarts <= 0 ? 0 : restarts > 7 ? 60 : Min(60, 1 << (restarts - 1));

	return (TimestampTz) seconds * USECS_PER_SEC;
}

/*
 * TriggerIntervalMs reads a trigger interval, in milliseconds.
 */
int64
TriggerIntervalMs(const char *trigger)
{
	Interval   *iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
														   CStringGetDatum(trigger),
														   ObjectIdGetDatum(InvalidOid),
														   Int32GetDatum(-1)));

	return (iv->time + (int64) iv->day * USECS_PER_DAY) / 1000;
}

/* sets the schedule of a query from its trigger */
static void
set_trigger(PoolQuery *pq, const char *trigger)
{
	if (pq->trigger)
		pfree(pq->trigger);
	pq->trigger = MemoryContextStrdup(TopMemoryContext, trigger);
	pq->once = strcmp(trigger, "once") == 0;
	pq->available_now = strcmp(trigger, "available_now") == 0;
	pq->interval_ms = pq->once || pq->available_now ? 0 : TriggerIntervalMs(trigger);
	/* available_now: the input present now, however many batches it takes */
	pq->available_now_at = pq->available_now ? GetCurrentTimestamp() : 0;
	pq->due = 0;
	pq->wait_input = false;
	pq->woken = false;
}

static PoolQuery *
pool_query_new(const char *name, int32 id, int slice, Oid owner, const char *trigger)
{
	PoolQuery  *pq = MemoryContextAllocZero(TopMemoryContext, sizeof(PoolQuery));

	pq->name = MemoryContextStrdup(TopMemoryContext, name);
	pq->id = id;
	pq->slice = slice;
	pq->owner = owner;
	pq->wake_fd = PGINVALID_SOCKET;
	pq->retry_ms = 1000;
	pq->first = true;
	pq->seen = true;
	set_trigger(pq, trigger);
	return pq;
}

/* the list of held queries lives as long as the worker */
static List *
hold(List *held, PoolQuery *pq)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	held = lappend(held, pq);
	MemoryContextSwitchTo(old);
	return held;
}

/*
 * SchedulerForget lets go of a query, or of a slice of it: what its
 * sources keep in this process for it is closed.
 */
void
SchedulerForget(PoolQuery *pq)
{
	SourceForgetQuery(pq->name, pq->slice);
	pfree(pq->name);
	pfree(pq->trigger);
	if (pq->condition)
		pfree(pq->condition);
	pfree(pq);
}

static uint64
exec_update(const char *sql, int nargs, Oid *argtypes, Datum *args)
{
	if (CatalogExecute(sql, nargs, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");
	return SPI_processed;
}

/*
 * busiest_other: the most queries that another worker holds, in the rows
 * of SchedulerScan's catalog query (worker_pid in column 10).
 */
static int
busiest_other(SPITupleTable *tab, uint64 nrows)
{
	List	   *pids = NIL;
	List	   *counts = NIL;
	int			most = 0;

	for (uint64 i = 0; i < nrows; i++)
	{
		bool		isnull;
		int			pid = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 10, &isnull));
		ListCell   *lp;
		ListCell   *lc;
		bool		found = false;

		if (isnull || pid == MyProcPid)
			continue;
		forboth(lp, pids, lc, counts)
		{
			if (lfirst_int(lp) == pid)
			{
				lfirst_int(lc)++;
				most = Max(most, lfirst_int(lc));
				found = true;
			}
		}
		if (!found)
		{
			pids = lappend_int(pids, pid);
			counts = lappend_int(counts, 1);
			most = Max(most, 1);
		}
	}
	return most;
}

/*
 * SchedulerScan brings the queries a worker holds up to date with the
 * catalog, in a transaction of its own; it returns the new list, and the
 * number of started queries of the database in *nqueries (-1 when the
 * extension is not installed: the list is returned as it was).
 */
List *
SchedulerScan(List *held, int *nqueries)
{
	Oid			argtypes[4] = {INT4OID, INT4OID, TIMESTAMPTZOID, INT4OID};
	Datum		args[4];
	SPITupleTable *tab;
	uint64		nrows;
	int64		nworkers;
	int			share;
	int			nheld;
	bool		released = false;
	bool		isnull;
	TimestampTz now;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "streaming worker: scanning for queries");
	now = GetCurrentTransactionStartTimestamp();
	if (!LockStreamingExtension())
	{
		*nqueries = -1;
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);
		return held;
	}

	args[0] = ObjectIdGetDatum(MyDatabaseId);
	/* the workers that share the queries: those not stuck in a long batch */
	if (CatalogExecute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity s "
					   "WHERE s.datid OPERATOR(pg_catalog.=) $1 "
					   "AND s.backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "' "
					   "AND (s.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() "
					   "OR NOT " STUCK_WORKER("s.pid") ")",
					   1, (Oid[]) {OIDOID}, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	nworkers = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	nworkers = Max(nworkers, 1);

	/* the slices' rows, where a restore left them out (slices.c) */
	if (CatalogHasSlices() &&
		CatalogExecute("INSERT INTO streaming.query_slices (query, slice) "
					   "SELECT q.id, s FROM streaming.queries q, "
					   "pg_catalog.generate_series(0, q.parallelism OPERATOR(pg_catalog.-) 1) s "
					   "WHERE q.parallelism OPERATOR(pg_catalog.>) 1 AND q.enabled AND NOT EXISTS "
					   "(SELECT 1 FROM streaming.query_slices x WHERE x.query OPERATOR(pg_catalog.=) q.id "
					   "AND x.slice OPERATOR(pg_catalog.=) s) ON CONFLICT DO NOTHING",
					   0, NULL, NULL, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not update streaming.query_slices");

	/*
	 * The units to run: every started query, or with parallelism each of
	 * its slices; the query's row says who holds the whole query or its
	 * slice 0, streaming.query_slices who holds its other slices.
	 */
	args[0] = Int32GetDatum(MyProcPid);
#define UNIT_COLUMNS(t) \
	"q.name, q.id, q.owner::pg_catalog.oid, q.trigger, " \
	t ".worker_pid OPERATOR(pg_catalog.=) $1, " \
	t ".worker_pid IS NOT NULL AND " t ".worker_pid OPERATOR(pg_catalog.<>) $1 " \
	"AND NOT " LIVE_WORKER(t ".worker_pid") ", " \
	t ".worker_pid IS NULL OR (" t ".worker_pid OPERATOR(pg_catalog.<>) $1 " \
	"AND NOT " LIVE_WORKER(t ".worker_pid") "), " \
	t ".restarts, " t ".restart_at, " t ".worker_pid, " \
	t ".worker_pid OPERATOR(pg_catalog.<>) $1 AND " STUCK_WORKER(t ".worker_pid") ", "
	if (CatalogExecute(CatalogHasSlices() ?
					   "SELECT " UNIT_COLUMNS("q") "CASE WHEN q.parallelism OPERATOR(pg_catalog.>) 1 THEN 0 ELSE -1 END "
					   "FROM streaming.queries q "
					   "WHERE q.enabled AND q.status OPERATOR(pg_catalog.<>) 'failed' "
					   "UNION ALL "
					   "SELECT " UNIT_COLUMNS("s") "s.slice "
					   "FROM streaming.queries q JOIN streaming.query_slices s ON s.query OPERATOR(pg_catalog.=) q.id "
					   "WHERE q.enabled AND q.status OPERATOR(pg_catalog.<>) 'failed' "
					   "AND s.slice OPERATOR(pg_catalog.>) 0 AND s.slice OPERATOR(pg_catalog.<) q.parallelism "
					   "ORDER BY 2, 12" :
					   "SELECT " UNIT_COLUMNS("q") "-1 "
					   "FROM streaming.queries q "
					   "WHERE q.enabled AND q.status OPERATOR(pg_catalog.<>) 'failed' ORDER BY q.id",
					   1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	tab = SPI_tuptable;
	nrows = SPI_processed;
	*nqueries = (int) nrows;

	/* what this worker holds, as the catalog says */
	foreach(lc, held)
		((PoolQuery *) lfirst(lc))->seen = false;
	for (uint64 i = 0; i < nrows; i++)
	{
		char	   *name = SPI_getvalue(tab->vals[i], tab->tupdesc, 1);
		int32		id = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 2, &isnull));
		char	   *trigger = SPI_getvalue(tab->vals[i], tab->tupdesc, 4);
		int			slice = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 12, &isnull));
		PoolQuery  *found = NULL;

		if (!DatumGetBool(SPI_getbinval(tab->vals[i], tab->tupdesc, 5, &isnull)) || isnull)
			continue;
		foreach(lc, held)
		{
			PoolQuery  *pq = lfirst(lc);

			if (pq->id == id && pq->slice == slice && strcmp(pq->name, name) == 0)
				found = pq;
		}
		if (found == NULL)
			held = hold(held, pool_query_new(name, id, slice,
											 DatumGetObjectId(SPI_getbinval(tab->vals[i], tab->tupdesc, 3, &isnull)),
											 trigger));
		else
		{
			found->seen = true;
			/* alter_query changed the trigger: the new one from now */
			if (strcmp(found->trigger, trigger) != 0)
				set_trigger(found, trigger);
		}
	}
	/* stopped, dropped, failed, or taken over: let go */
	foreach(lc, held)
	{
		PoolQuery  *pq = lfirst(lc);

		if (!pq->seen)
		{
			/*
			 * A slice > 0 of a query that failed (or whose parallelism
			 * went down) still names this worker: let go of it in the
			 * catalog too, unless a batch has it.
			 */
			if (pq->slice > 0)
				(void) unit_update(pq->id, pq->slice, "worker_pid = NULL",
								   "q.worker_pid OPERATOR(pg_catalog.=) $3", NULL, 0);
			SchedulerForget(pq);
			held = foreach_delete_current(held, lc);
		}
	}

	/* the fair share: give up what is beyond it, take up to it */
	share = (int) ((nrows + nworkers - 1) / nworkers);
	nheld = list_length(held);
	while (nheld > share)
	{
		PoolQuery  *pq = llast(held);

		if (unit_update(pq->id, pq->slice, "worker_pid = NULL",
						"q.worker_pid OPERATOR(pg_catalog.=) $3", NULL, 0) == 0)
			break;				/* a run() has it; another time */
		SchedulerForget(pq);
		held = list_delete_last(held);
		nheld--;
		released = true;
	}

	/*
	 * Up to the share; in a first pass, only units of queries this worker
	 * holds nothing of, so that the slices of a query go to different
	 * workers while there are.
	 */
	for (int pass = 0; pass < 2; pass++)
	for (uint64 i = 0; i < nrows; i++)
	{
		char	   *name = SPI_getvalue(tab->vals[i], tab->tupdesc, 1);
		int32		id = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 2, &isnull));
		bool		died = DatumGetBool(SPI_getbinval(tab->vals[i], tab->tupdesc, 6, &isnull));
		bool		unheld = DatumGetBool(SPI_getbinval(tab->vals[i], tab->tupdesc, 7, &isnull));
		int			restarts = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 8, &isnull));
		Datum		restart_at = SPI_getbinval(tab->vals[i], tab->tupdesc, 9, &isnull);
		TimestampTz due = isnull ? 0 : DatumGetTimestampTz(restart_at);
		Datum		dead_pid = SPI_getbinval(tab->vals[i], tab->tupdesc, 10, &isnull);
		bool		stuck = DatumGetBool(SPI_getbinval(tab->vals[i], tab->tupdesc, 11, &isnull)) && !isnull;
		int			slice = DatumGetInt32(SPI_getbinval(tab->vals[i], tab->tupdesc, 12, &isnull));
		Datum		more[3];

		CHECK_FOR_INTERRUPTS();
		/*
		 * Up to the share; and beyond, the queries of a worker stuck in a
		 * long batch, which would wait for it.
		 */
		if (!(unheld && nheld < share) && !stuck)
			continue;
		if (pass == 0 && slice != SLICE_WHOLE)
		{
			bool		holds_query = false;

			foreach(lc, held)
				holds_query |= ((PoolQuery *) lfirst(lc))->id == id;
			if (holds_query)
				continue;
		}

		/*
		 * Its worker died holding it, without saying so (a crash, or the
		 * server went down): a restart, counted once, by whoever sees it
		 * first.
		 */
		if (died)
		{
			more[0] = Int32GetDatum(restarts + 1);
			more[1] = TimestampTzGetDatum(now + restart_delay(restarts));
			more[2] = dead_pid;
			if (unit_update(id, slice, "restarts = $4, restart_at = $5, worker_pid = NULL",
							"q.worker_pid OPERATOR(pg_catalog.=) $6", more, 3) == 0)
				continue;
			due = DatumGetTimestampTz(more[1]);
		}
		if (due > now)
			continue;
		/*
		 * Not while stop() or drop_query() is at it (they hold this lock in
		 * STREAMING_STOP_LOCKMODE); a share lock, so that two workers taking
		 * two slices of one query at once do not turn each other away.
		 */
		if (!ConditionalLockDatabaseObject(StreamingStopLockClass(), (Oid) id, 0, ShareLock))
			continue;
		if (unit_update(id, slice,
						slice <= 0 ? "worker_pid = $3, status = 'running', "
						"last_error = NULL, condition = NULL, restart_at = NULL" :
						"worker_pid = $3, restart_at = NULL",
						slice <= 0 ? "q.enabled AND q.status OPERATOR(pg_catalog.<>) 'failed' "
						"AND (q.worker_pid IS NULL OR NOT " LIVE_WORKER("q.worker_pid") " "
						"OR " STUCK_WORKER("q.worker_pid") ")" :
						"e.enabled AND e.status OPERATOR(pg_catalog.<>) 'failed' "
						"AND (q.worker_pid IS NULL OR NOT " LIVE_WORKER("q.worker_pid") " "
						"OR " STUCK_WORKER("q.worker_pid") ")",
						NULL, 0) != 1)
			continue;
		held = hold(held, pool_query_new(name, id, slice,
										 DatumGetObjectId(SPI_getbinval(tab->vals[i], tab->tupdesc, 3, &isnull)),
										 SPI_getvalue(tab->vals[i], tab->tupdesc, 4)));
		nheld++;
	}

	/*
	 * Given up queries are for the others to take now; short of its share,
	 * the worker has the others give up what they hold beyond theirs (a
	 * worker that has just started).
	 */
	if (released || (nheld < share && busiest_other(tab, nrows) > share))
		SchedulerWakeAtCommit(MyDatabaseId);

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return held;
}

/*
 * StreamingStopLockClass is the class of the lock that stop() and
 * drop_query() hold on a query: streaming.queries.
 */
Oid
StreamingStopLockClass(void)
{
	Oid			relid = get_relname_relid("queries", get_namespace_oid(STREAMING_SCHEMA, false));

	if (!OidIsValid(relid))
		elog(ERROR, "streaming.queries does not exist");
	return relid;
}

/* pool workers to wake when the transaction that started a query commits */
static List *wake_at_commit = NIL;
static bool wake_callback_registered = false;

static void
wake_at_commit_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	if (event == XACT_EVENT_COMMIT)
		foreach(lc, wake_at_commit)
		{
			PGPROC	   *proc = BackendPidGetProc(lfirst_int(lc));

			if (proc != NULL)
				SetLatch(&proc->procLatch);
		}
	list_free(wake_at_commit);
	wake_at_commit = NIL;
}

/*
 * SchedulerWakeAtCommit has the latches of a database's pool workers set when
 * the transaction commits: they look at the catalog at once, and see what
 * start() or stop() changed.
 */
void
SchedulerWakeAtCommit(Oid dboid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(dboid)};

	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_at_commit_callback, NULL);
		wake_callback_registered = true;
	}
	SPI_connect();
	if (CatalogExecute("SELECT pid FROM pg_catalog.pg_stat_activity "
					   "WHERE backend_type OPERATOR(pg_catalog.=) '" STREAMING_WORKER_TYPE "' "
					   "AND datid OPERATOR(pg_catalog.=) $1 AND pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()",
					   1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_stat_activity");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		wake_at_commit = lappend_int(wake_at_commit,
									 DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
																 SPI_tuptable->tupdesc, 1, &isnull)));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/*
 * SchedulerReleaseAll gives up every query a worker holds as it exits, so
 * that the other workers take them at once, without counting a restart.
 * Called outside a transaction; an error here is only logged.
 */
void
SchedulerReleaseAll(List *held)
{
	if (held == NIL)
		return;
	PG_TRY();
	{
		Oid			argtypes[1] = {INT4OID};
		Datum		args[1] = {Int32GetDatum(MyProcPid)};

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		(void) exec_update("UPDATE streaming.queries SET worker_pid = NULL "
						   "WHERE worker_pid OPERATOR(pg_catalog.=) $1", 1, argtypes, args);
		if (CatalogHasSlices())
			(void) exec_update("UPDATE streaming.query_slices SET worker_pid = NULL "
							   "WHERE worker_pid OPERATOR(pg_catalog.=) $1", 1, argtypes, args);
		/* the other workers take them at once, when this commits */
		SchedulerWakeAtCommit(MyDatabaseId);
		PopActiveSnapshot();
		SPI_finish();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

/*
 * PoolQueryReady tells whether a held query may run a batch now: its
 * trigger is due and, if its last look found nothing, its source may have
 * something (its descriptor became readable, or its time came).
 */
bool
PoolQueryReady(PoolQuery *pq, TimestampTz now)
{
	if (now < pq->due)
		return false;
	if (!pq->wait_input)
		return true;
	return pq->woken || (pq->wake_at != 0 && now >= pq->wake_at);
}

/*
 * PoolQueryWakeTime is the time at which a query becomes ready unless its
 * descriptor wakes it first; 0 when only its descriptor can.
 */
TimestampTz
PoolQueryWakeTime(PoolQuery *pq)
{
	if (!pq->wait_input)
		return pq->due;
	if (pq->wake_at == 0)
		return 0;
	return Max(pq->due, pq->wake_at);
}
