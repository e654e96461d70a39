/*-------------------------------------------------------------------------
 *
 * streaming.c
 *	  Module entry point of the streaming extension: GUCs and start-up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "postmaster/postmaster.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#include "source.h"
#include "streaming.h"
#include "worker.h"

PG_MODULE_MAGIC;

int			streaming_peek_rows = 100;
int			streaming_progress_retention = 1000;
bool		streaming_autostart = true;

/*
 * read by the streaming.status view only (current_setting), never in C:
 * the floor of how long a batch may run, or input wait without progress,
 * before the view calls the query stuck
 */
static int	streaming_stuck_after = 60000;
bool		streaming_preloaded = false;

void		_PG_init(void);

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/*
 * renames_table tells whether a utility statement may change the
 * schema-qualified name of a table: ALTER TABLE ... RENAME, ALTER INDEX
 * ... RENAME (which PostgreSQL lets rename any relation), ALTER TABLE ...
 * SET SCHEMA, ALTER SCHEMA ... RENAME, and ALTER EXTENSION ... SET SCHEMA
 * (which moves the extension's tables).
 */
static bool
renames_table(Node *stmt)
{
	if (IsA(stmt, RenameStmt))
		return ((RenameStmt *) stmt)->renameType == OBJECT_TABLE ||
			((RenameStmt *) stmt)->renameType == OBJECT_INDEX ||
			((RenameStmt *) stmt)->renameType == OBJECT_SCHEMA;
	if (IsA(stmt, AlterObjectSchemaStmt))
		return ((AlterObjectSchemaStmt *) stmt)->objectType == OBJECT_TABLE ||
			((AlterObjectSchemaStmt *) stmt)->objectType == OBJECT_EXTENSION;
	return false;
}

/*
 * streaming_ProcessUtility: before DROP DATABASE, end the query workers
 * connected to that database, which would otherwise make it fail; before
 * DROP FOREIGN TABLE or DROP SCHEMA, deal with the queries that read a
 * source that goes (StreamingBeforeDrop); before ALTER TABLE, refuse what
 * a table source could not follow (TableSourceCheckAlter, TableSourceCheck
 * Rename), and renaming a source or moving it (SourceCheckRename); after a
 * table's name changed, keep the table sources that follow it in step
 * (TableSourceFollowRenames).
 */
static void
streaming_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (IsA(pstmt->utilityStmt, DropdbStmt))
		StopDatabaseWorkers(((DropdbStmt *) pstmt->utilityStmt)->dbname);
	else if (IsA(pstmt->utilityStmt, DropStmt) && IsTransactionState())
		StreamingBeforeDrop((DropStmt *) pstmt->utilityStmt);
	else if (IsA(pstmt->utilityStmt, AlterTableStmt) && IsTransactionState())
		TableSourceCheckAlter((AlterTableStmt *) pstmt->utilityStmt);
	else if (IsA(pstmt->utilityStmt, RenameStmt) && IsTransactionState())
	{
		SourceCheckRename(pstmt->utilityStmt);
		TableSourceCheckRename((RenameStmt *) pstmt->utilityStmt);
	}
	else if (IsA(pstmt->utilityStmt, AlterObjectSchemaStmt) && IsTransactionState())
		SourceCheckRename(pstmt->utilityStmt);
	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	if (renames_table(pstmt->utilityStmt) && IsTransactionState())
		TableSourceFollowRenames();
}

/*
 * _PG_init declares the GUCs, and registers the launcher when the library
 * is in shared_preload_libraries.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("streaming.peek_rows",
							"Rows a plain SELECT on a source returns outside a micro-batch.",
							"A SELECT on a source outside streaming.run() or a query worker "
							"shows up to this many rows of the input that is present now.",
							&streaming_peek_rows,
							100, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streaming.progress_retention",
							"Progress rows kept per query in streaming.progress.",
							"Each batch deletes the progress rows of its query that are more "
							"than this many batches old; 0 keeps them all.",
							&streaming_progress_retention,
							1000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("streaming.autostart",
							 "Whether create_query() starts the query's worker.",
							 "When off, create_query() leaves new queries stopped whatever its "
							 "start argument says; run() or start() drives them.",
							 &streaming_autostart,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("streaming.launcher_naptime",
							"Seconds between the launcher's rounds.",
							"Each round starts the pool workers that a database with started "
							"queries lacks, in every database with the extension.",
							&streaming_launcher_naptime,
							5, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streaming.idle_poll",
							"Milliseconds a query with trigger '0' waits before it looks again when its source has no input and cannot tell when it will.",
							NULL,
							&streaming_idle_poll,
							200, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streaming.max_workers",
							"Most pool workers that run at once, in all databases.",
							"Pool workers run the batches of every started query of their "
							"database; each takes a slot of max_worker_processes.",
							&streaming_max_workers,
							4, 1, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streaming.workers_per_database",
							"Most pool workers of one database.",
							"A database with started queries gets as many pool workers as it "
							"has queries, up to this many, within streaming.max_workers.",
							&streaming_workers_per_database,
							2, 1, MAX_BACKENDS,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streaming.stuck_after",
							"Least time after which streaming.status calls a query stuck.",
							"A query is stuck when its batch has run, or its input has waited "
							"without progress, for longer than ten trigger intervals and at "
							"least this long.",
							&streaming_stuck_after,
							60000, 1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("streaming");

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = streaming_ProcessUtility;

	if (process_shared_preload_libraries_in_progress)
	{
		streaming_preloaded = true;
		StreamingRegisterLauncher();
	}
}
