/*-------------------------------------------------------------------------
 *
 * streaming.h
 *	  Declarations shared by every part of the streaming extension: the
 *	  GUCs and small helpers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_H
#define STREAMING_H

#include "postgres.h"

#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* GUCs, declared together in streaming.c */
extern int	streaming_peek_rows;
extern int	streaming_progress_retention;
extern bool streaming_autostart;

/* commands.c: before DROP FOREIGN TABLE / DROP SCHEMA (the utility hook) */
struct DropStmt;
extern void StreamingBeforeDrop(struct DropStmt *stmt);

/* commands.c: for a worker, between batches; true: exit and be restarted */
extern bool ExtensionVersionChanged(void);

/* util.c: the extension is installed, and stays so until commit */
extern bool LockStreamingExtension(void);

/* schema of the catalog */
#define STREAMING_SCHEMA "streaming"

/*
 * stop() and drop_query() hold a transaction-level lock on a query while
 * they end its worker, so that no new worker claims it meanwhile: a lock
 * on the object (streaming.queries, the query's id), which no role can
 * take from SQL as it could an advisory lock (and so hold every query of
 * the database from its workers, and stop() waiting).
 */
#define STREAMING_STOP_LOCKMODE ExclusiveLock
extern Oid	StreamingStopLockClass(void);

/* the backend_type of pool workers and of the launcher (pg_stat_activity) */
#define STREAMING_WORKER_TYPE "streaming query"
#define STREAMING_LAUNCHER_TYPE "streaming launcher"

/* jsonb helpers (util.c) */
extern JsonbValue *JsonbGetKey(Jsonb *obj, const char *key);
extern char *JsonbValueAsText(JsonbValue *v);
extern bool JsonbGetBool(Jsonb *obj, const char *key, bool dflt);
extern int64 JsonbGetInt64(Jsonb *obj, const char *key, int64 dflt, int64 min);
extern char *JsonbGetString(Jsonb *obj, const char *key);
extern List *JsonbObjectKeys(Jsonb *obj);

/*
 * The search_path of every statement the extension runs with rights the
 * caller lacks: pg_temp explicitly last, so that nothing a session creates
 * shadows a catalog type or relation.
 */
#define CATALOG_SEARCH_PATH "pg_catalog, pg_temp"

/* run statements in a scope with a given search_path (util.c) */
extern int	PushCatalogSearchPath(void);
extern int	PushSearchPath(const char *path);
extern void PopCatalogSearchPath(int nestlevel);
extern char *PinnedSearchPath(void);
extern struct _SPI_plan *PrepareResolved(const char *sql, int nargs, Oid *argtypes,
										 const char *query, const char *fingerprint);
extern char *ResolvedFingerprint(const char *sql, int nargs, Oid *argtypes);
struct RawStmt;
extern List *AnalyseResolved(const char *sql, int nargs, Oid *argtypes, const char *query,
							 const char *fingerprint, struct RawStmt **stmt);

/* run a query's code as its owner (util.c) */
typedef struct OwnerContext
{
	Oid			userid;
	int			sec_context;
	int			nestlevel;
} OwnerContext;

extern void BeginAsOwner(Oid owner, const char *search_path, OwnerContext *saved);
extern void EndAsOwner(OwnerContext *saved);

extern char *RelationQualifiedName(Oid relid);
extern List *ParseQualifiedName(const char *name, const char *what);

/* the relations a view reads, through the views it reads (util.c) */
typedef bool (*ViewReadVisit) (Oid relid, Query *view_query, void *arg);
extern bool WalkViewReads(Oid view, ViewReadVisit visit, void *arg);

/* statements on the catalog, run as its owner (util.c) */
extern Oid	CatalogOwner(void);
extern int	CatalogExecute(const char *sql, int nargs, Oid *argtypes, Datum *values,
						   const char *nulls, bool read_only, long count);

#endif							/* STREAMING_H */
