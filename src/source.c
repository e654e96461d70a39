/*-------------------------------------------------------------------------
 *
 * source.c
 *	  Sources: the registry of source kinds, streaming.create_source() and
 *	  streaming.drop_source(), and the helpers sources use to hand rows and
 *	  dead letters to a micro-batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "common/int.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "formats/format.h"
#include "source.h"
#include "streaming.h"

PG_FUNCTION_INFO_V1(streaming_create_source);
PG_FUNCTION_INFO_V1(streaming_drop_source);


static const SourceRoutine *const source_routines[] = {
	&FileSourceRoutine,
	&KafkaSourceRoutine,
	&SocketSourceRoutine,
	&RateSourceRoutine,
	&TableSourceRoutine,
};

/*
 * What the running query's source waits for, if anything ("waiting for the
 * broker ..."); a worker shows it in streaming.queries.condition.
 */
char	   *SourceCondition = NULL;

/* how many times a source said it waits (SourceSetCondition, SourceWaiting) */
uint64		SourceWaits = 0;

/*
 * SourceWaiting: a source that still waits for what it said (a backoff
 * before asking a broker again) found nothing because of it.
 */
void
SourceWaiting(void)
{
	SourceWaits++;
}

void
SourceSetCondition(const char *fmt,...)
{
	char		buf[512];
	va_list		ap;

	SourceWaits++;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (SourceCondition != NULL && strcmp(SourceCondition, buf) == 0)
		return;
	SourceClearCondition();
	SourceCondition = MemoryContextStrdup(TopMemoryContext, buf);
}

void
SourceClearCondition(void)
{
	if (SourceCondition != NULL)
		pfree(SourceCondition);
	SourceCondition = NULL;
}

/*
 * SourceKeepCondition keeps in *kept (TopMemoryContext) the condition the
 * source has just set, or none once it has cleared it, and
 * SourceRepeatCondition says it again: a source that waits out a backoff
 * without trying does so at the turns in between.  Each query's turn
 * begins without a condition (worker.c), so what the status shows is what
 * that query's sources said during its turn.
 */
void
SourceKeepCondition(char **kept)
{
	if (*kept != NULL)
		pfree(*kept);
	*kept = SourceCondition != NULL ? MemoryContextStrdup(TopMemoryContext, SourceCondition) : NULL;
}

void
SourceRepeatCondition(const char *kept)
{
	if (kept == NULL || (SourceCondition != NULL && strcmp(SourceCondition, kept) == 0))
		return;
	SourceClearCondition();
	SourceCondition = MemoryContextStrdup(TopMemoryContext, kept);
}

/*
 * SourceFindColumn returns the attribute number of the live column of that
 * name and type, or InvalidAttrNumber.
 */
AttrNumber
SourceFindColumn(TupleDesc desc, const char *name, Oid type)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0 &&
			(type == InvalidOid || att->atttypid == type))
			return i + 1;
	}
	return InvalidAttrNumber;
}

/*
 * SourceCommittedOffset reads one committed offset of the batch's query and
 * source from streaming.offsets; dflt (and *found = false) if there is none.
 */
int64
SourceCommittedOffset(SourceBatch *batch, const char *partition, int64 dflt, bool *found)
{
	Oid			argtypes[3] = {TEXTOID, OIDOID, TEXTOID};
	Datum		args[3];
	int64		result = dflt;

	args[0] = CStringGetTextDatum(batch->query);
	args[1] = ObjectIdGetDatum(batch->relid);
	args[2] = CStringGetTextDatum(partition);
	*found = false;
	SPI_connect();
	/* not read-only: a runner that waited for the query's lock must see the latest */
	if (CatalogExecute("SELECT \"offset\" FROM streaming.offsets "
							  "WHERE query OPERATOR(pg_catalog.=) $1 AND source OPERATOR(pg_catalog.=) $2 "
					   "AND partition OPERATOR(pg_catalog.=) $3",
							  3, argtypes, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.offsets");
	if (SPI_processed == 1)
	{
		bool		isnull;

		result = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*found = true;
	}
	SPI_finish();
	return result;
}

/*
 * SourceBatchAddOffset records a position to commit with the batch.
 */
void
SourceBatchAddOffset(SourceBatch *batch, const char *partition, int64 offset)
{
	MemoryContext old = MemoryContextSwitchTo(batch->mcxt);
	SourceOffset *off = palloc(sizeof(SourceOffset));

	off->partition = pstrdup(partition);
	off->offset = offset;
	batch->offsets = lappend(batch->offsets, off);
	MemoryContextSwitchTo(old);
}

/*
 * source_routine_of returns the routine of a source's kind, or NULL if it
 * is not a source (any more).  The kind first: the full look-up of some
 * kinds is not free.
 */
static const SourceRoutine *
source_routine_of(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	const SourceRoutine *routine = NULL;

	SPI_connect();
	if (CatalogExecute("SELECT kind FROM streaming.sources WHERE relid OPERATOR(pg_catalog.=) $1",
					   1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.sources");
	if (SPI_processed == 1)
		routine = SourceRoutineByKind(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	return routine;
}

/* remember a source whose kind has no use for a hook, for this process */
static void
remember_source(List **list, Oid relid)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	*list = lappend_oid(*list, relid);
	MemoryContextSwitchTo(old);
}

/*
 * SourcePrepareQuery lets the sources of a query prepare a batch (see
 * SourceRoutine.prepare): called before the batch's transaction writes or
 * locks anything.
 */
void
SourcePrepareQuery(const char *query, int32 query_id, List *sources)
{
	/* sources of kinds with nothing to prepare, looked up once a process */
	static List *unprepared = NIL;
	ListCell   *lc;

	foreach(lc, sources)
	{
		const SourceRoutine *routine;
		Jsonb	   *options;

		if (list_member_oid(unprepared, lfirst_oid(lc)))
			continue;
		routine = source_routine_of(lfirst_oid(lc));
		if (routine != NULL && routine->prepare == NULL)
			remember_source(&unprepared, lfirst_oid(lc));
		if (routine == NULL || routine->prepare == NULL ||
			!SourceLookup(lfirst_oid(lc), NULL, NULL, &options))
			continue;
		routine->prepare(query, query_id, lfirst_oid(lc), options);
	}
}

/*
 * SourcesQuiet asks the source of a query with one source whether a batch
 * now would find no input (SourceRoutine.quiet), before the batch locks
 * the query's row; *wake_at is then when to ask again.  False for a query
 * whose sources cannot tell: its batch runs.
 */
bool
SourcesQuiet(const char *query, int32 query_id, List *sources, TimestampTz *wake_at)
{
	/* sources of kinds that cannot tell, looked up once a process */
	static List *unquiet = NIL;
	const SourceRoutine *routine;
	Oid			relid;

	if (list_length(sources) != 1)
		return false;
	relid = linitial_oid(sources);
	if (list_member_oid(unquiet, relid))
		return false;
	routine = source_routine_of(relid);
	if (routine != NULL && routine->quiet == NULL)
		remember_source(&unquiet, relid);
	if (routine == NULL || routine->quiet == NULL)
		return false;
	return routine->quiet(query, query_id, relid, wake_at);
}

/*
 * SourceForgetQuery closes what the sources keep in this process for a
 * query, from batch to batch: a pool worker lets go of the query, or of
 * one slice of it (SLICE_WHOLE: all of it).
 */
void
SourceForgetQuery(const char *query, int slice)
{
	for (int i = 0; i < lengthof(source_routines); i++)
		if (source_routines[i]->forget != NULL)
			source_routines[i]->forget(query, slice);
}

/*
 * SourceRoutineByKind returns the routine of a kind, or NULL if unknown.
 */
const SourceRoutine *
SourceRoutineByKind(const char *kind)
{
	for (int i = 0; i < lengthof(source_routines); i++)
		if (strcmp(source_routines[i]->kind, kind) == 0)
			return source_routines[i];
	return NULL;
}

/*
 * IsStreamingSource tells whether a relation is a foreign table of the
 * streaming FDW.
 */
bool
IsStreamingSource(Oid relid)
{
	ForeignTable *ft;
	ForeignServer *server;
	ForeignDataWrapper *fdw;

	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		return false;
	ft = GetForeignTable(relid);
	server = GetForeignServer(ft->serverid);
	fdw = GetForeignDataWrapper(server->fdwid);
	return strcmp(fdw->fdwname, "streaming") == 0;
}

/*
 * SourcesInNamespace lists the sources of a schema.
 */
List *
SourcesInNamespace(Oid nspid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(nspid)};
	MemoryContext caller = CurrentMemoryContext;
	List	   *relids = NIL;

	SPI_connect();
	if (CatalogExecute("SELECT s.relid::pg_catalog.oid FROM streaming.sources s "
					   "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid "
					   "WHERE c.relnamespace OPERATOR(pg_catalog.=) $1 ORDER BY 1",
					   1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.sources");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(caller);

		relids = lappend_oid(relids, relid);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return relids;
}

/*
 * SourceOptionsFromDefElems turns the options of a foreign server or user
 * mapping into a jsonb object of strings.
 */
Jsonb *
SourceOptionsFromDefElems(List *options)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, def->defname);
		appendStringInfoString(&buf, ": ");
		escape_json(&buf, defGetString(def));
	}
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* names the server or user mapping whose options failed a check */
static void
server_options_context(void *arg)
{
	errcontext("%s", *(char **) arg);
}

/*
 * SourceMergeServerOptions completes the own options of a Kafka source or
 * sink with those of its foreign server and of role's user mapping for it
 * (or the PUBLIC one): the own options win over the mapping's, which win
 * over the server's.  role is the owner of the source (the foreign
 * table's owner) or of the query whose sink it is, whoever runs the batch,
 * peeks or asks for the lag: a role's credentials reach only the brokers
 * of its own sources and sinks.  Own options may not redirect credentials
 * that the server or the mapping supply (KafkaCheckInherited).
 */
Jsonb *
SourceMergeServerOptions(Oid serverid, Jsonb *options, Oid role)
{
	ForeignServer *server = GetForeignServer(serverid);
	List	   *from_server = list_copy(server->options);
	HeapTuple	tup;
	Jsonb	   *inherited;
	ErrorContextCallback errcallback;
	char	   *place;

	/*
	 * Each place's options take effect only as far as the role they speak
	 * for may set them now: the server's with its owner's rights, a user
	 * mapping's with its role's (a PUBLIC mapping's with the server
	 * owner's).  The validator checked them when they were set, but a
	 * version before 0.2 checked less, and rights change.
	 */
	errcallback.callback = server_options_context;
	errcallback.arg = &place;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	place = psprintf("options of server \"%s\"", server->servername);
	if (server->options != NIL)
		KafkaCheckOptions(SourceOptionsFromDefElems(server->options), KAFKA_IN_SERVER,
						  server->owner);

	tup = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(role),
						  ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tup))
		tup = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							  ObjectIdGetDatum(serverid));
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(USERMAPPINGUSERSERVER, tup, Anum_pg_user_mapping_umoptions, &isnull);
		Oid			umuser = ((Form_pg_user_mapping) GETSTRUCT(tup))->umuser;

		if (!isnull)
		{
			List	   *mapped = untransformRelOptions(d);

			place = psprintf("options of the user mapping for %s on server \"%s\"",
							 OidIsValid(umuser) ? GetUserNameFromId(umuser, false) : "PUBLIC",
							 server->servername);
			KafkaCheckOptions(SourceOptionsFromDefElems(mapped), KAFKA_IN_USER_MAPPING,
							  OidIsValid(umuser) ? umuser : server->owner);
			from_server = list_concat(from_server, mapped);
		}
		ReleaseSysCache(tup);
	}
	error_context_stack = errcallback.previous;
	if (from_server == NIL)
		return options;
	inherited = SourceOptionsFromDefElems(from_server);
	KafkaCheckInherited(options, inherited, server->servername);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(inherited),
											  JsonbPGetDatum(options)));
}

/* a source's own options, without the name of its server */
static Jsonb *
source_own_options(Jsonb *options)
{
	if (JsonbGetKey(options, "server") == NULL)
		return options;
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(options),
											  CStringGetTextDatum("server")));
}

/*
 * source_server returns the foreign server of a source's table.
 */
static Oid
source_server(Oid relid)
{
	return GetForeignTable(relid)->serverid;
}

/* the owner of a source's table, whose user mapping supplies credentials */
static Oid
source_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * SourceCheckRename refuses, before PostgreSQL runs it, to rename the
 * foreign table of a source or move it to another schema (ALTER FOREIGN
 * TABLE, or any ALTER ... RENAME that renames a relation): a source is
 * known by its name, in streaming.sources, in drop_source() and in the
 * event_time objects of its queries.
 */
void
SourceCheckRename(Node *stmt)
{
	RangeVar   *rv = NULL;
	Oid			relid;

	if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->subname == NULL &&
		((RenameStmt *) stmt)->renameType != OBJECT_COLUMN &&
		((RenameStmt *) stmt)->renameType != OBJECT_ATTRIBUTE)
		rv = ((RenameStmt *) stmt)->relation;
	else if (IsA(stmt, AlterObjectSchemaStmt))
		rv = ((AlterObjectSchemaStmt *) stmt)->relation;
	if (rv == NULL)
		return;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (OidIsValid(relid) && IsStreamingSource(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot rename source %s or move it to another schema", RelationQualifiedName(relid)),
				 errdetail("A source is known by its name: in streaming.sources, to drop_source() and in the event_time of its queries."),
				 errhint("Create a source of the new name with the same options, and the queries over it.")));
}

/*
 * SourceLookup reads a source's catalog row; false if there is none.
 * The results are allocated in the caller's memory context.
 */
bool
SourceLookup(Oid relid, char **name, char **kind, Jsonb **options)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	bool		found = false;
	bool		kafka = false;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	if (CatalogExecute("SELECT name, kind, options FROM streaming.sources "
					   "WHERE relid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.sources");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(caller);

		if (name)
			*name = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		if (kind)
			*kind = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		kafka = strcmp(TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull)), "kafka") == 0;
		if (options)
			*options = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 3, &isnull));
		MemoryContextSwitchTo(old);
		found = true;
	}
	SPI_finish();
	/*
	 * A Kafka source connects with the settings of its server and its
	 * owner's user mapping; its own options are checked with its owner's
	 * rights each time, as they were at create_source.
	 */
	if (found && options && kafka)
	{
		Oid			owner = source_owner(relid);
		Jsonb	   *own = source_own_options(*options);

		KafkaCheckOptions(own, KAFKA_IN_SOURCE, owner);
		*options = SourceMergeServerOptions(source_server(relid), own, owner);
	}
	return found;
}

/*
 * SourceCheckOptionKeys rejects any key of options that is neither in the
 * NULL-terminated list valid nor starts with prefix (NULL: none), e.g.
 * "kafka." for the properties passed to librdkafka; what names the thing
 * the options are for, e.g. 'source kind "file"'.  The one list both
 * validates and makes the hint, so that the hint names every option the
 * thing accepts.
 */
void
SourceCheckOptionKeys(Jsonb *options, const char *what,
					  const char *const *valid, const char *prefix)
{
	ListCell   *lc;

	foreach(lc, JsonbObjectKeys(options))
	{
		char	   *key = lfirst(lc);
		bool		ok = prefix != NULL && strncmp(key, prefix, strlen(prefix)) == 0;

		for (int i = 0; !ok && valid[i] != NULL; i++)
			ok = strcmp(valid[i], key) == 0;
		if (!ok)
		{
			StringInfoData names;

			initStringInfo(&names);
			for (int i = 0; valid[i] != NULL; i++)
				appendStringInfo(&names, "%s%s", i > 0 ? ", " : "", valid[i]);
			if (prefix != NULL)
				appendStringInfo(&names, ", %s*", prefix);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown option \"%s\" for %s", key, what),
					 errhint("Valid options are: %s.", names.data)));
		}
	}
}

/*
 * SourceGetIntOption reads an integer option (a JSON number or a numeric
 * string) of a source or a sink and checks it against its range.  Options
 * that size a batch or a buffer have an upper bound, so that a mistyped
 * value fails at creation instead of making a batch loop or allocate
 * without end.
 */
int64
SourceGetIntOption(Jsonb *options, const char *key, int64 dflt, int64 min, int64 max)
{
	JsonbValue *v = JsonbGetKey(options, key);
	char	   *text;
	char	   *end = NULL;
	long long	result = 0;
	bool		ok = false;

	if (v == NULL || v->type == jbvNull)
		return dflt;
	text = JsonbValueAsText(v);
	if (v->type == jbvNumeric || v->type == jbvString)
	{
		errno = 0;
		result = strtoll(text, &end, 10);
		ok = errno == 0 && end != text && *end == '\0' && result >= min && result <= max;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", key, text),
				 errhint("Use an integer from " INT64_FORMAT " to " INT64_FORMAT ".", min, max)));
	return (int64) result;
}

/*
 * event_time_problem says why a row's event time is unusable, or NULL: a
 * row without one would be state in a NULL window for good, an infinite
 * one would fail every batch that reads it (it has no window) or move the
 * watermark out of the range of timestamptz, and one too far ahead of the
 * clock would move the watermark past the valid rows that follow.
 */
static char *
event_time_problem(SourceBatch *batch, Datum *values, bool *nulls)
{
	AttrNumber	attno = batch->event_time_attno;
	const char *column = NameStr(TupleDescAttr(RelationGetDescr(batch->rel), attno - 1)->attname);
	TimestampTz ts;
	int64		ahead;
	char	   *ahead_text = NULL;

	if (nulls[attno - 1])
		return psprintf("event time column \"%s\" is null or missing", column);
	ts = DatumGetTimestampTz(values[attno - 1]);
	/* no window holds it, and no delay can be taken from it */
	if (TIMESTAMP_NOT_FINITE(ts))
		return psprintf("event time %s in column \"%s\" is not finite", EventTimeToString(ts), column);
	if (ts > batch->event_time_limit)
	{
		(void) EventTimeMaxAhead(batch->options, &ahead, &ahead_text);
		return psprintf("event time %s in column \"%s\" is more than %s ahead of the current time (max_event_time_ahead)",
						EventTimeToString(ts), column, ahead_text ? ahead_text : "?");
	}
	return NULL;
}

/*
 * SourceBatchAddRow appends one decoded row to the batch input.  With an
 * event time, a row without one, or with one too far ahead, is a dead
 * letter of its record instead.
 */
void
SourceBatchAddRow(SourceBatch *batch, Datum *values, bool *nulls)
{
	MemoryContext old;

	if (batch->event_time_attno > 0)
	{
		char	   *problem = event_time_problem(batch, values, nulls);

		if (problem != NULL)
		{
			/* rows that no decoder made (rate, socket, raw kafka) have no record */
			if (!FormatRejectRow(problem))
				SourceBatchAddDeadLetter(batch, psprintf("%s:row " INT64_FORMAT, batch->name,
														 batch->input_rows + batch->n_dead_letters + 1),
										 NULL, 0, problem);
			return;
		}
	}
	FormatForgetRow();

	if (batch->event_time_attno > 0)
	{
		TimestampTz ts = DatumGetTimestampTz(values[batch->event_time_attno - 1]);

		/* a row at or before the watermark is late */
		if (batch->has_watermark && ts <= batch->watermark)
		{
			batch->late_rows++;
			if (batch->drop_late)
			{
				batch->input_rows++;	/* read, counted, not passed on */
				return;
			}
		}
		if (!batch->has_max_event_time || ts > batch->max_event_time)
		{
			batch->max_event_time = ts;
			batch->has_max_event_time = true;
		}
	}

	if (batch->consume != NULL)
	{
		batch->consume(batch, values, nulls, batch->flush_arg);
		batch->input_rows++;
		return;
	}

	old = MemoryContextSwitchTo(batch->mcxt);
	tuplestore_putvalues(batch->rows, RelationGetDescr(batch->rel), values, nulls);
	MemoryContextSwitchTo(old);
	batch->input_rows++;
	if (batch->flush != NULL && tuplestore_tuple_count(batch->rows) >= batch->flush_rows)
		batch->flush(batch, batch->flush_arg);
}

/*
 * SourceRetractionDesc is desc with one more column, the mark of a
 * retracted row in a batch's input.
 */
TupleDesc
SourceRetractionDesc(TupleDesc desc)
{
	TupleDesc	wide = CreateTemplateTupleDesc(desc->natts + 1);

	for (int i = 0; i < desc->natts; i++)
		TupleDescCopyEntry(wide, i + 1, desc, i + 1);
	TupleDescInitEntry(wide, desc->natts + 1, "streaming_retracted", BOOLOID, -1, 0);
	return wide;
}

/*
 * SourceBatchAddRetraction appends one row that the batch takes back: the
 * old values of a row deleted (or updated) in the table that a table
 * source with changes 'all' follows.  It is stored with one more column,
 * true, which the scan of the source turns into the row's ctid (see
 * SOURCE_RETRACTED_BLOCK); a query over such a source has no event time,
 * so there is nothing late to drop.
 */
void
SourceBatchAddRetraction(SourceBatch *batch, Datum *values, bool *nulls)
{
	int			natts = RelationGetDescr(batch->rel)->natts;
	MemoryContext old = MemoryContextSwitchTo(batch->mcxt);
	Datum	   *wvalues = palloc(sizeof(Datum) * (natts + 1));
	bool	   *wnulls = palloc(sizeof(bool) * (natts + 1));

	Assert(batch->event_time_attno == 0);
	if (batch->retract_desc == NULL)
		batch->retract_desc = SourceRetractionDesc(RelationGetDescr(batch->rel));
	memcpy(wvalues, values, sizeof(Datum) * natts);
	memcpy(wnulls, nulls, sizeof(bool) * natts);
	wvalues[natts] = BoolGetDatum(true);
	wnulls[natts] = false;
	tuplestore_putvalues(batch->rows, batch->retract_desc, wvalues, wnulls);
	pfree(wvalues);
	pfree(wnulls);
	MemoryContextSwitchTo(old);
	batch->input_rows++;
}

/*
 * SourceBatchAddDeadLetter records a record that could not be decoded.
 */
void
SourceBatchAddDeadLetter(SourceBatch *batch, const char *position,
						 const char *payload, int payload_len,
						 const char *error)
{
	MemoryContext old;
	DeadLetter *dl;

	batch->n_dead_letters++;
	if (!batch->keep_dead_letters)
		return;

	old = MemoryContextSwitchTo(batch->mcxt);
	dl = palloc(sizeof(DeadLetter));
	dl->position = pstrdup(position);
	dl->payload = NULL;
	if (payload != NULL)
	{
		dl->payload = palloc(VARHDRSZ + payload_len);
		SET_VARSIZE(dl->payload, VARHDRSZ + payload_len);
		memcpy(VARDATA(dl->payload), payload, payload_len);
	}
	dl->error = pstrdup(error ? error : "unknown error");
	batch->dead_letters = lappend(batch->dead_letters, dl);
	MemoryContextSwitchTo(old);
}

/*
 * SourceBatchReset forgets what read_batch produced, before a retry.  The
 * rows of the failed attempt are freed here: a tuplestore that spilled
 * holds a temporary file, which the transaction would otherwise report as
 * leaked when it commits.
 */
void
SourceBatchReset(SourceBatch *batch)
{
	MemoryContext old = MemoryContextSwitchTo(batch->mcxt);

	if (batch->rows != NULL)
		tuplestore_end(batch->rows);
	batch->rows = tuplestore_begin_heap(true, false, work_mem);
	batch->input_rows = 0;
	batch->dead_letters = NIL;
	batch->n_dead_letters = 0;
	batch->has_max_event_time = false;
	batch->late_rows = 0;
	batch->flushed_rows = 0;
	batch->flushed_out = 0;
	batch->flushes = 0;
	batch->flush_ms = 0;
	MemoryContextSwitchTo(old);
	FormatForgetRow();

	/* the bound of event times, from the time the batch started */
	if (batch->event_time_attno > 0 && batch->event_time_limit == 0)
	{
		int64		ahead;

		if (!EventTimeMaxAhead(batch->options, &ahead, NULL) ||
			pg_add_s64_overflow(GetCurrentTimestamp(), ahead, &batch->event_time_limit))
			batch->event_time_limit = DT_NOEND;
	}
}

/*
 * add_hint_and_rethrow re-raises the error being handled with a hint; a
 * missing privilege keeps its own message, whose hint would mislead.
 */
static void
add_hint_and_rethrow(MemoryContext ctx, const char *hint)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(ctx);
	edata = CopyErrorData();
	FlushErrorState();
	if (edata->hint == NULL && edata->sqlerrcode != ERRCODE_INSUFFICIENT_PRIVILEGE)
		edata->hint = pstrdup(hint);
	ReThrowError(edata);
}

/*
 * parse_schema turns a column list such as "id int, name text" into the
 * ColumnDefs of a CREATE FOREIGN TABLE.  The text is parsed, never pasted
 * into a statement: anything but plain column definitions is rejected.
 */
static List *
parse_schema(const char *schema)
{
	StringInfoData sql;
	List	   *raw = NIL;
	MemoryContext ctx = CurrentMemoryContext;
	CreateForeignTableStmt *stmt;
	ListCell   *lc;
	const char *hint = "A schema is a column list such as 'id int, name text, value float8'.";

	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE FOREIGN TABLE s (%s) SERVER streaming", schema);

	PG_TRY();
	{
		raw = raw_parser(sql.data, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		add_hint_and_rethrow(ctx, hint);
	}
	PG_END_TRY();

	if (list_length(raw) != 1 ||
		!IsA(linitial_node(RawStmt, raw)->stmt, CreateForeignTableStmt))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("malformed source schema: \"%s\"", schema),
				 errhint("%s", hint)));
	stmt = (CreateForeignTableStmt *) linitial_node(RawStmt, raw)->stmt;

	if (stmt->base.tableElts == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("source schema has no columns"),
				 errhint("%s", hint)));
	foreach(lc, stmt->base.tableElts)
	{
		Node	   *elt = lfirst(lc);

		if (!IsA(elt, ColumnDef) || ((ColumnDef *) elt)->constraints != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("malformed source schema: \"%s\"", schema),
					 errdetail("A source schema holds only column names and types, without constraints or defaults."),
					 errhint("%s", hint)));
	}
	return stmt->base.tableElts;
}

/*
 * check_event_time_options validates the event-time options of any kind of
 * source: max_event_time_ahead bounds every source's event time;
 * event_time_format and timezone say how record text is read, so they
 * apply only to sources that decode records (a file source, a kafka source
 * in the json, csv or text format).
 */
static void
check_event_time_options(const char *kind, Jsonb *options)
{
	char	   *format = JsonbGetString(options, "format");
	bool		decodes = strcmp(kind, "file") == 0 ||
		(strcmp(kind, "kafka") == 0 && format != NULL && strcmp(format, "raw") != 0);
	EventTimeOptions opts;
	int64		ahead;
	ListCell   *lc;

	foreach(lc, JsonbObjectKeys(options))
	{
		char	   *key = lfirst(lc);

		if (!decodes && EventTimeIsDecodingOption(key))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" applies only to sources that decode records", key),
					 errhint("File sources and kafka sources in the json, csv and text formats decode records.")));
	}
	EventTimeParseOptions(options, &opts);
	(void) EventTimeMaxAhead(options, &ahead, NULL);
}

/*
 * run_utility executes a utility statement built as a parse tree.
 */
static void
run_utility(Node *stmt, const char *source_text)
{
	PlannedStmt *pstmt = makeNode(PlannedStmt);

	pstmt->commandType = CMD_UTILITY;
	pstmt->canSetTag = false;
	pstmt->utilityStmt = stmt;
	pstmt->stmt_location = -1;
	pstmt->stmt_len = 0;

	ProcessUtility(pstmt, source_text, false, PROCESS_UTILITY_SUBCOMMAND,
				   NULL, NULL, None_Receiver, NULL);
	CommandCounterIncrement();
}

/*
 * streaming_create_source implements
 *	 streaming.create_source(name, kind, schema, options) RETURNS regclass:
 * validates kind, options and schema, creates the foreign table and
 * records the source.
 */
Datum
streaming_create_source(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *kind;
	char	   *schema;
	Jsonb	   *options;
	Jsonb	   *merged;
	char	   *servername;
	const SourceRoutine *routine;
	CreateForeignTableStmt *stmt;
	RangeVar   *rv;
	Oid			relid;
	Relation	rel;
	MemoryContext ctx = CurrentMemoryContext;
	Oid			argtypes[4] = {OIDOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		args[4];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source name and kind must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	schema = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	options = PG_ARGISNULL(3) ? DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))
		: PG_GETARG_JSONB_P(3);

	routine = SourceRoutineByKind(kind);
	if (routine == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown source kind \"%s\"", kind),
				 errhint("Valid kinds are file, kafka, socket, rate and table.")));
	if (!JB_ROOT_IS_OBJECT(options))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));

	/*
	 * A Kafka source may take its connection settings from a foreign server
	 * of the streaming wrapper (and its owner's user mapping for it); its
	 * foreign table then belongs to that server, which cannot be dropped
	 * while the source exists.
	 */
	servername = JsonbGetString(options, "server");
	if (servername != NULL)
	{
		ForeignServer *server = GetForeignServerByName(servername, false);

		if (strcmp(GetForeignDataWrapper(server->fdwid)->fdwname, "streaming") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("server \"%s\" is not a server of the streaming foreign-data wrapper", servername),
					 errhint("CREATE SERVER %s FOREIGN DATA WRAPPER streaming OPTIONS (bootstrap_servers '…').",
							 quote_identifier(servername))));
		if (strcmp(kind, "kafka") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"server\" applies only to kafka sources")));
	}
	if (strcmp(kind, "kafka") == 0)
	{
		/* the creating role owns the source: its rights, its user mapping */
		Jsonb	   *own = source_own_options(options);
		Oid			serverid = GetForeignServerByName(servername ? servername : "streaming",
													  false)->serverid;

		KafkaCheckOptions(own, KAFKA_IN_SOURCE, GetUserId());
		merged = SourceMergeServerOptions(serverid, own, GetUserId());
	}
	else
		merged = options;
	/* first: a reading option on a rate or socket source has its own error */
	check_event_time_options(kind, merged);
	routine->validate(merged);

	if (schema == NULL)
	{
		const char *dflt = routine->default_schema ? routine->default_schema(merged) : NULL;

		if (dflt == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source kind \"%s\" needs a schema", kind),
					 errhint("Pass the columns to read, e.g. schema => 'id int, name text'.")));
		schema = pstrdup(dflt);
	}

	/* CREATE FOREIGN TABLE name (schema) SERVER streaming */
	rv = makeRangeVarFromNameList(ParseQualifiedName(name, "source"));
	stmt = makeNode(CreateForeignTableStmt);
	stmt->base.relation = rv;
	stmt->base.tableElts = parse_schema(schema);
	stmt->base.oncommit = ONCOMMIT_NOOP;
	stmt->servername = servername ? servername : "streaming";
	stmt->options = NIL;

	PG_TRY();
	{
		run_utility((Node *) stmt, "streaming.create_source()");
	}
	PG_CATCH();
	{
		add_hint_and_rethrow(ctx, "Check the column types of the schema and the source name.");
	}
	PG_END_TRY();

	relid = RangeVarGetRelid(rv, AccessExclusiveLock, false);
	rel = table_open(relid, AccessShareLock);
	routine->check_schema(merged, RelationGetDescr(rel));
	table_close(rel, AccessShareLock);
	if (routine->created != NULL)
		routine->created(relid, merged);

	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(name);
	args[2] = CStringGetTextDatum(kind);
	args[3] = JsonbPGetDatum(options);
	SPI_connect();
	if (CatalogExecute("INSERT INTO streaming.sources (relid, name, kind, options) "
							  "VALUES ($1, $2, $3, $4)",
							  4, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not insert into streaming.sources");
	SPI_finish();

	PG_RETURN_OID(relid);
}

/*
 * streaming_drop_source implements streaming.drop_source(name, if_exists):
 * refuses while a query reads the source, else drops the foreign table
 * (the catalog row goes with it, see the sql_drop event trigger).
 */
Datum
streaming_drop_source(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		if_exists = PG_GETARG_BOOL(1);
	RangeVar   *rv = makeRangeVarFromNameList(ParseQualifiedName(name, "source"));
	Oid			relid;
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	ObjectAddress obj;

	relid = RangeVarGetRelid(rv, AccessExclusiveLock, true);
	if (!OidIsValid(relid) || !IsStreamingSource(relid))
	{
		if (if_exists)
		{
			ereport(NOTICE,
					(errmsg("source \"%s\" does not exist, skipping", name)));
			PG_RETURN_VOID();
		}
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("source \"%s\" does not exist", name)));
	}

#if PG_VERSION_NUM >= 160000
	if (!object_ownercheck(RelationRelationId, relid, GetUserId()))
#else
	if (!pg_class_ownercheck(relid, GetUserId()))
#endif
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_FOREIGN_TABLE, name);

	args[0] = ObjectIdGetDatum(relid);
	SPI_connect();
	/* every role's queries, not only those the caller may see */
	if (CatalogExecute("SELECT name FROM streaming.queries "
					   "WHERE $1::pg_catalog.regclass OPERATOR(pg_catalog.=) ANY (sources) "
					   "ORDER BY name LIMIT 1",
					   1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.queries");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop source \"%s\" because query \"%s\" reads it",
						name, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errhint("Drop the query first with streaming.drop_query().")));

	if (CatalogExecute("DELETE FROM streaming.sources WHERE relid OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from streaming.sources");
	SPI_finish();

	ObjectAddressSet(obj, RelationRelationId, relid);
	performDeletion(&obj, DROP_RESTRICT, 0);

	PG_RETURN_VOID();
}
