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

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* GUCs, declared together in streaming.c */
extern int	streaming_peek_rows;
extern int	streaming_progress_retention;
extern bool streaming_autostart;

/* schema of the catalog */
#define STREAMING_SCHEMA "streaming"

/* jsonb helpers (util.c) */
extern JsonbValue *JsonbGetKey(Jsonb *obj, const char *key);
extern char *JsonbValueAsText(JsonbValue *v);
extern bool JsonbGetBool(Jsonb *obj, const char *key, bool dflt);
extern int64 JsonbGetInt64(Jsonb *obj, const char *key, int64 dflt, int64 min);
extern char *JsonbGetString(Jsonb *obj, const char *key);
extern List *JsonbObjectKeys(Jsonb *obj);

/* run a statement in a scope where search_path is only pg_catalog */
extern int	PushCatalogSearchPath(void);
extern void PopCatalogSearchPath(int nestlevel);

extern char *RelationQualifiedName(Oid relid);
extern List *ParseQualifiedName(const char *name, const char *what);

/* statements on the catalog, run as its owner (util.c) */
extern Oid	CatalogOwner(void);
extern int	CatalogExecute(const char *sql, int nargs, Oid *argtypes, Datum *values,
						   const char *nulls, bool read_only, long count);

#endif							/* STREAMING_H */
