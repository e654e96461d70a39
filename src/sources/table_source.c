/*-------------------------------------------------------------------------
 *
 * table_source.c
 *	  The table source: the committed inserts into an ordinary table, in
 *	  commit order, read in-process through logical decoding, with one
 *	  replication slot per (query, source); optionally the rows it holds
 *	  first.
 *
 * The extension's own library is the output plugin of those slots
 * (_PG_output_plugin_init below, plugin name "streaming"): its change
 * callback keeps the changes of the followed table, as typed Datums taken
 * from the decoded tuple, in a tuplestore of the reader ("pending").  A
 * batch takes changes from there up to max_rows_per_trigger of them.
 *
 * Option "changes" says which.  With "insert" (the default) a batch takes
 * the inserted rows; updates, deletes and truncations are counted and
 * skipped.  With "all" a delete is the deleted row taken back - a
 * retracted row of the batch (SourceBatchAddRetraction), which the
 * queries over the source subtract from their aggregates (planner.c) -
 * and an update is the old row taken back and the new one added: two
 * pending changes, with consecutive positions, that a batch takes
 * together.  The old row's values are in the WAL only when the table has
 * REPLICA IDENTITY FULL, which create_source and every batch check, and
 * the change callback too, with the catalog as it was when the change
 * was made.  A change without its old row, and a TRUNCATE (which logs no
 * rows), cannot be taken back: the batch stops before it, and the next
 * batch fails on it, so that the results stay those of every change
 * before.
 *
 * Positions.  A change is identified by the start LSN of its transaction's
 * commit record and its sequence number among that transaction's changes
 * of the table (1, 2, ...).  Decoding yields transactions in commit order,
 * so (lsn, seq) grows strictly.  A batch records the position of the last
 * change it took in streaming.offsets (partitions "lsn" and "seq"), in its
 * own transaction; a new decoding context skips every change at or before
 * the recorded position.  That is what makes a crash at any point resume
 * exactly after the last committed batch, even inside a large transaction
 * split over several batches.  Beside the position, a batch records where
 * it was taken (PositionOrigin: server, database, source): a position
 * restored by pg_restore elsewhere means nothing there, and the query
 * starts at its new slot, with a warning (table_prepare).
 *
 * The slot.  Its confirmed position is only ever moved to what committed
 * batches recorded: to the commit LSN of the last change taken (so that
 * its transaction, maybe only partly taken, is decoded again after a
 * restart), or, when every change of the table decoded so far has been
 * taken and committed, to the end of what was decoded.  A worker commits
 * with synchronous_commit = off, so the move waits until the WAL is
 * flushed past the point where the batch was seen committed; a lost
 * commit can therefore never leave the slot ahead of streaming.offsets.
 *
 * Processes.  Creating a slot waits for running transactions and cannot
 * happen in a transaction that has written: table_prepare creates it
 * before the batch's transaction takes the query's row lock (a worker, or
 * run() in a transaction of its own); run() in a transaction that has
 * written, before the slot exists, is refused with a hint.  A worker keeps
 * its slot and decoding context from batch to batch (a process can hold
 * one slot); a session releases them when its transaction ends, so that
 * a worker started later can take the slot.
 *
 * drop_query drops the query's slots when its transaction commits; the
 * launcher drops the slots whose query no longer exists (named
 * streaming_<database oid>_<query id>_<source oid>).  A slot whose WAL
 * the server removed (max_slot_wal_keep_size) fails every batch of its
 * query; the status view shows slots that fall behind
 * (pg_replication_slots.wal_status).
 *
 * Snapshot.  With option "snapshot", a query's first batch is the rows the
 * table holds, read under a snapshot taken after its slot exists, and the
 * stream skips the transactions that snapshot saw (snapshot_batch).
 *
 * Polling.  Nothing wakes a worker when the table receives rows; after a
 * batch that found nothing, it looks again soon, then less and less often
 * (next_poll).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xlogutils.h"
#include "access/heapam_xlog.h"
#include "access/rmgr.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "commands/extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_control.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/reorderbuffer.h"
#include "replication/slot.h"
#include "storage/lmgr.h"
#include "storage/standbydefs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "source.h"
#include "streaming.h"
#include "worker.h"

/* the most inserts one batch takes by default, and at most */
#define TABLE_DEFAULT_MAX_ROWS	100000
#define TABLE_MAX_ROWS			100000000

/* the first wait for input after a batch that found none (next_poll) */
#define TABLE_FIRST_POLL_MS		1

/*
 * How much WAL a worker's quiet look (table_quiet) lets stand unread past
 * the reader: beyond it the batch runs, decodes it and moves the slot on.
 */
#define TABLE_QUIET_BYTES		(64 * 1024)

/*
 * How many readers a worker keeps parked (reader_park) beside the one
 * whose slot it holds: the table-source queries it runs beyond one; and
 * the most memory a parked reader's decoding may hold (transactions in
 * progress), so that parked readers together hold no more than one
 * reader may (logical_decoding_work_mem, 64 MB by default).
 */
#define TABLE_MAX_PARKED		16
#define TABLE_PARKED_BYTES		(1024 * 1024)

/* the plugin name of the slots: this library */
#define TABLE_PLUGIN			"streaming"

/* kinds of changes in the pending store */
#define CHANGE_INSERT			'i'
#define CHANGE_UPDATE			'u'		/* changes "all": the new row */
#define CHANGE_UPDATE_OLD		'o'		/* changes "all": the old row, before 'u' */
#define CHANGE_DELETE			'd'		/* changes "all": with the old row */
#define CHANGE_TRUNCATE			't'
#define CHANGE_NO_OLD_ROW		'x'		/* changes "all": a delete or update
										 * without REPLICA IDENTITY FULL */

static const char *const table_options[] = {
	"table", "changes", "max_rows_per_trigger", "snapshot", NULL
};

/*
 * The snapshot a query's first batch read the table under (option
 * "snapshot"): a transaction whose commit the slot decodes is in it, and
 * skipped, if it committed before the snapshot was taken - its commit LSN
 * is before lsn, the insert position read just after the snapshot, and
 * its xid is before xmin, or before xmax and not among the running xip.
 */
typedef struct TableSnapshot
{
	XLogRecPtr	lsn;			/* InvalidXLogRecPtr: none */
	TransactionId xmin;
	TransactionId xmax;
	int			nxip;
	TransactionId *xip;
} TableSnapshot;

void		_PG_output_plugin_init(OutputPluginCallbacks *cb);

/*
 * What a parked reader needs its slot to still be: another process that
 * acquires the slot meanwhile (a run(), another worker) may move these on,
 * and then the WAL and the catalog rows the reader would decode next are
 * no longer kept for it.
 */
typedef struct SlotMark
{
	XLogRecPtr	restart_lsn;
	XLogRecPtr	confirmed_flush;
	TransactionId catalog_xmin;
} SlotMark;

/*
 * The reader of one slot, kept by the process from batch to batch.  Its
 * pending store holds the source's columns, then the change's kind, lsn
 * and seq.
 */
typedef struct TableReader
{
	char		slot[NAMEDATALEN];
	char	   *query;			/* the query it reads for */
	Oid			source;			/* the source's foreign table */
	Oid			table;			/* the table it follows */
	bool		all_changes;	/* option changes "all" */
	MemoryContext cxt;			/* everything of the reader, under Top */
	MemoryContext rowcxt;		/* reset after each decoded change */
	LogicalDecodingContext *ctx;
	TupleDesc	desc;			/* of the pending store */
	int			ncols;			/* the source's columns */
	AttrNumber *map;			/* the table's attnum of each column, cached */
	Tuplestorestate *pending;	/* decoded, not yet taken by a batch */
	int64		npending;
	int64		npending_rows;	/* what max_rows_per_trigger counts */
	XLogRecPtr	skip_lsn;		/* changes up to (skip_lsn, skip_seq) were */
	int64		skip_seq;		/* taken before this context was made */
	XLogRecPtr	done_lsn;		/* the last change taken by a batch */
	int64		done_seq;
	XLogRecPtr	txn_lsn;		/* the transaction being decoded */
	int64		txn_seq;
	bool		txn_skip;		/* it is in the snapshot: skip its changes */
	TableSnapshot snapshot;		/* what the first batch read, if anything */
	bool		busy;			/* decoding or taking; an error leaves it set */
	XLogRecPtr	confirm_lsn;	/* the slot may be confirmed to this ... */
	XLogRecPtr	confirm_after;	/* ... once the WAL is flushed this far */
	int			poll_ms;		/* the last wait for input (next_poll) */
	bool		settled;		/* its last batch found nothing: it stands
								 * where the committed batches stopped */
	SlotMark	parked_at;		/* its slot when parked (reader_park) */
	XLogRecPtr	quiet_upto;		/* quiet looks found the WAL from the
								 * reader up to here harmless */
} TableReader;

/* what plan_batch chose for read_batch */
typedef struct TablePlan
{
	Tuplestorestate *rows;		/* the source's columns and whether the row
								 * is retracted */
	TupleDesc	desc;			/* of rows */
} TablePlan;

/* a slot to drop when the transaction commits (drop_query) */
typedef struct SlotDrop
{
	char		name[NAMEDATALEN];
	int			nestlevel;
} SlotDrop;

/*
 * The reader whose slot this process holds, and a pool worker's parked
 * readers, of its other table-source queries (reader_park).
 */
static TableReader *reader = NULL;
static List *parked = NIL;
static List *slot_drops = NIL;
static bool callbacks_registered = false;

/*
 * snapshot_sees tells whether a transaction that committed (top-level xid)
 * is in the snapshot: it had ended when the snapshot was taken.
 */
static bool
snapshot_sees(const TableSnapshot *snap, TransactionId xid)
{
	if (TransactionIdPrecedes(xid, snap->xmin))
		return true;
	if (!TransactionIdPrecedes(xid, snap->xmax))
		return false;
	for (int i = 0; i < snap->nxip; i++)
		if (TransactionIdEquals(snap->xip[i], xid))
			return false;
	return true;
}

static bool
same_snapshot(const TableSnapshot *a, const TableSnapshot *b)
{
	if (a->lsn != b->lsn || a->xmin != b->xmin || a->xmax != b->xmax || a->nxip != b->nxip)
		return false;
	for (int i = 0; i < a->nxip; i++)
		if (a->xip[i] != b->xip[i])
			return false;
	return true;
}

/* 'available_now': the WAL present when the run began bounds the run */
static TimestampTz run_began = 0;
static XLogRecPtr run_end = InvalidXLogRecPtr;

static void reader_free(void);
static void discard_parked(const char *name, const char *query);
static TableReader *parked_reader(const char *name);
static void reader_confirm(TableReader *r, XLogRecPtr target);

/* ------------------------------------------------------------------------
 * Options and checks
 * ------------------------------------------------------------------------ */

static int64
max_rows_per_trigger(Jsonb *options)
{
	return SourceGetIntOption(options, "max_rows_per_trigger", TABLE_DEFAULT_MAX_ROWS,
							  1, TABLE_MAX_ROWS);
}

/*
 * all_changes reads option "changes": true for "all", false for "insert"
 * (the default).
 */
static bool
all_changes(Jsonb *options)
{
	char	   *changes = JsonbGetString(options, "changes");

	if (changes == NULL || strcmp(changes, "insert") == 0)
		return false;
	if (strcmp(changes, "all") == 0)
		return true;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"changes\": \"%s\"", changes),
			 errhint("Valid values are \"insert\" (inserts only; updates and deletes are skipped) and \"all\" (deletes and updates are taken back from the results).")));
	return false;				/* keep compiler quiet */
}

/*
 * check_replica_identity refuses to follow every change of a table whose
 * deletes and updates do not log the old row whole.
 */
static void
check_replica_identity(Oid relid, char replident)
{
	if (replident != REPLICA_IDENTITY_FULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s does not have REPLICA IDENTITY FULL", RelationQualifiedName(relid)),
				 errdetail("A table source with changes \"all\" takes deleted and updated rows back from the results, which needs their old values in the WAL."),
				 errhint("Run ALTER TABLE %s REPLICA IDENTITY FULL.", RelationQualifiedName(relid))));
}

/*
 * TableSourceRetracts tells whether relid is a table source that follows
 * deletes and updates (changes "all"): the queries over it must take rows
 * back from their results.
 */
bool
TableSourceRetracts(Oid relid)
{
	char	   *kind;
	Jsonb	   *options;

	return SourceLookup(relid, NULL, &kind, &options) && strcmp(kind, "table") == 0 &&
		all_changes(options);
}

/*
 * plugin_allowed tells whether the server lets this library serve as an
 * output plugin: since 15.19, only the libraries that
 * output_plugin_libraries names may (before, the setting does not exist).
 */
static bool
plugin_allowed(void)
{
	const char *setting = GetConfigOption("output_plugin_libraries", true, false);
	char	   *raw;
	List	   *names = NIL;
	ListCell   *lc;
	bool		found = false;

	if (setting == NULL)
		return true;
	raw = pstrdup(setting);
	if (!SplitGUCList(raw, ',', &names))
		return false;
	foreach(lc, names)
		if (strcmp(lfirst(lc), TABLE_PLUGIN) == 0)
			found = true;
	list_free(names);
	pfree(raw);
	return found;
}

/*
 * check_decoding_settings says what to set when logical decoding is not possible.
 */
static void
check_decoding_settings(void)
{
	if (wal_level < WAL_LEVEL_LOGICAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table sources need wal_level = logical"),
				 errdetail("The server runs with wal_level = %s.",
						   GetConfigOption("wal_level", false, false)),
				 errhint("Set wal_level = logical in postgresql.conf and restart the server.")));
	if (!plugin_allowed())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table sources need \"streaming\" in output_plugin_libraries"),
				 errdetail("The extension's library decodes the WAL of its table sources, as an output plugin; the server allows only the plugins named in output_plugin_libraries (now '%s').",
						   GetConfigOption("output_plugin_libraries", true, false)),
				 errhint("Add streaming to output_plugin_libraries in postgresql.conf, e.g. output_plugin_libraries = 'pgoutput, test_decoding, streaming', and reload the server configuration.")));
	if (max_replication_slots == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table sources need replication slots"),
				 errdetail("The server runs with max_replication_slots = 0."),
				 errhint("Set max_replication_slots in postgresql.conf (each query over a table source takes one) and restart the server.")));
}

/*
 * table_relid resolves option "table".  It must be schema-qualified:
 * batches resolve it under the catalog's search_path, not the creator's.
 */
static Oid
table_relid(Jsonb *options)
{
	char	   *name = JsonbGetString(options, "table");
	List	   *names;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source kind \"table\" needs option \"table\""),
				 errhint("Name the table to follow, schema-qualified: '{\"table\": \"public.orders\"}'.")));
	names = ParseQualifiedName(name, "table");
	if (list_length(names) < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"table\" must be schema-qualified: \"%s\"", name),
				 errhint("Write the schema too, e.g. \"public.%s\".", name)));
	return RangeVarGetRelid(makeRangeVarFromNameList(names), AccessShareLock, false);
}

/*
 * check_table refuses a table that a table source cannot follow for role:
 * not an ordinary, WAL-logged user table, row-level security (decoding
 * reads every row, bypassing the policies), or no SELECT privilege.
 * Partitioned tables are refused: their rows are decoded as rows of their
 * partitions.
 */
static void
check_table(Oid relid, Oid role, bool all)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class cls;
	char	   *name = RelationQualifiedName(relid);

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	cls = (Form_pg_class) GETSTRUCT(tup);
	if (cls->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table sources cannot follow partitioned table %s", name),
				 errdetail("Rows inserted into a partitioned table are stored, and decoded, as rows of its partitions."),
				 errhint("Follow one partition, or an ordinary table.")));
	if (cls->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an ordinary table", name),
				 errhint("A table source follows the inserts into an ordinary table.")));
	if (cls->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table sources cannot follow unlogged or temporary table %s", name),
				 errdetail("Their changes are not in the WAL that logical decoding reads.")));
	if (IsCatalogRelationOid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table sources cannot follow system catalog %s", name)));
	if (cls->relrowsecurity)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table sources cannot follow table %s: it has row-level security enabled", name),
				 errdetail("Logical decoding reads every row the table receives, which would bypass its policies."),
				 errhint("Follow a table without row-level security.")));
	if (all)
		check_replica_identity(relid, cls->relreplident);
	ReleaseSysCache(tup);
	/*
	 * A slot keeps WAL until it is read, and slots are few: PostgreSQL
	 * lets only roles with REPLICATION create them, and so does this.
	 */
	if (!has_rolreplication(role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to follow table %s", name),
				 errdetail("A table source keeps a replication slot per query, which only roles with the REPLICATION attribute may create."),
				 errhint("ALTER ROLE %s REPLICATION, as a superuser.",
						 quote_identifier(GetUserNameFromId(role, false)))));
	if (pg_class_aclcheck(relid, role, ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", name),
				 errdetail("Role \"%s\" needs SELECT on the table that its table source follows.",
						   GetUserNameFromId(role, false))));
}

static void
table_validate(Jsonb *options)
{
	bool		all;

	SourceCheckOptionKeys(options, "source kind \"table\"", table_options, NULL);
	all = all_changes(options);
	(void) max_rows_per_trigger(options);
	(void) JsonbGetBool(options, "snapshot", false);
	check_decoding_settings();
	check_table(table_relid(options), GetUserId(), all);
}

/*
 * table_default_schema is the table's live columns, with their types.
 */
static const char *
table_default_schema(Jsonb *options)
{
	Oid			relid = table_relid(options);
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		appendStringInfo(&buf, "%s%s %s", buf.len > 0 ? ", " : "",
						 quote_identifier(NameStr(att->attname)),
						 format_type_extended(att->atttypid, att->atttypmod,
											  FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
	}
	relation_close(rel, AccessShareLock);
	if (buf.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table %s has no columns", RelationQualifiedName(relid))));
	return buf.data;
}

/*
 * table_check_schema: every column of the source is a column of the table
 * with the same type (the source may leave columns of the table out).
 */
static void
table_check_schema(Jsonb *options, TupleDesc desc)
{
	Oid			relid = table_relid(options);
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	tdesc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		AttrNumber	attno;

		if (att->attisdropped)
			continue;
		attno = SourceFindColumn(tdesc, NameStr(att->attname), InvalidOid);
		if (attno == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table %s has no column \"%s\"", RelationQualifiedName(relid),
							NameStr(att->attname)),
					 errhint("Leave out the schema to take the table's columns.")));
		if (TupleDescAttr(tdesc, attno - 1)->atttypid != att->atttypid)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of the source has type %s, but in table %s it has type %s",
							NameStr(att->attname), format_type_be(att->atttypid),
							RelationQualifiedName(relid),
							format_type_be(TupleDescAttr(tdesc, attno - 1)->atttypid)),
					 errhint("Leave out the schema to take the table's columns.")));
	}
	relation_close(rel, AccessShareLock);
}

/*
 * table_created makes the source depend on its table and on each column of
 * the table that it reads, so that DROP TABLE, and ALTER TABLE ... DROP
 * COLUMN or ALTER COLUMN ... TYPE of such a column, are refused while the
 * source exists: its stream could not go on past them (the changes
 * committed after would lack the column, or carry another type).
 */
static void
table_created(Oid relid, Jsonb *options)
{
	ObjectAddress source;
	ObjectAddress table;
	Oid			tableid = table_relid(options);
	Relation	srel = relation_open(relid, AccessShareLock);
	Relation	trel = relation_open(tableid, AccessShareLock);
	TupleDesc	sdesc = RelationGetDescr(srel);

	ObjectAddressSet(source, RelationRelationId, relid);
	ObjectAddressSet(table, RelationRelationId, tableid);
	recordDependencyOn(&source, &table, DEPENDENCY_NORMAL);
	for (int i = 0; i < sdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(sdesc, i);
		AttrNumber	attno;

		if (att->attisdropped)
			continue;
		attno = SourceFindColumn(RelationGetDescr(trel), NameStr(att->attname), InvalidOid);
		/* gone since (a restored source): its batch says so when it decodes */
		if (attno == InvalidAttrNumber)
			continue;
		ObjectAddressSubSet(table, RelationRelationId, tableid, attno);
		recordDependencyOn(&source, &table, DEPENDENCY_NORMAL);
	}
	relation_close(trel, AccessShareLock);
	relation_close(srel, AccessShareLock);
}

/*
 * column_source finds a table source that reads column attno of table
 * relid, or with attno 0 one that follows the table (table_created
 * recorded their dependencies); with retracting, only one that follows
 * every change (changes "all").  InvalidOid if none.
 */
static Oid
column_source(Oid relid, AttrNumber attno, bool retracting)
{
	Relation	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *sources = NIL;
	ListCell   *lc;

	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[2], Anum_pg_depend_refobjsubid, BTEqualStrategyNumber, F_INT4EQ,
				Int32GetDatum(attno));
	scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 3, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->classid == RelationRelationId)
			sources = lappend_oid(sources, dep->objid);
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);
	/* (the catalog is read by SPI: not in the middle of the scan) */
	foreach(lc, sources)
		if (IsStreamingSource(lfirst_oid(lc)) && (!retracting || TableSourceRetracts(lfirst_oid(lc))))
			return lfirst_oid(lc);
	return InvalidOid;
}

/*
 * typed_tables lists the tables of composite type typid (CREATE TABLE ...
 * OF), with their partitions and inheritance children: ALTER TYPE ...
 * CASCADE changes their columns with the type's attributes.
 */
static List *
typed_tables(Oid typid)
{
	Relation	classRel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyData key;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *tables = NIL;

	ScanKeyInit(&key, Anum_pg_class_reloftype, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(typid));
	scan = table_beginscan_catalog(classRel, 1, &key);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
		tables = list_concat(tables,
							 find_all_inheritors(((Form_pg_class) GETSTRUCT(tup))->oid, NoLock, NULL));
	table_endscan(scan);
	table_close(classRel, AccessShareLock);
	return tables;
}

/*
 * column_reader finds a table source that reads column colname of table
 * relid or, with recurse, of one of its partitions or inheritance
 * children, whose column ALTER TABLE renames or retypes along with the
 * parent's, or, relid being a composite type, of a table of that type;
 * *table is then the table whose column it reads.  InvalidOid if none.
 */
static Oid
column_reader(Oid relid, const char *colname, bool recurse, Oid *table)
{
	List	   *tables;
	ListCell   *lc;

	/* no lock: the ALTER that follows takes them, and finds what changed */
	tables = recurse ? find_all_inheritors(relid, NoLock, NULL) : list_make1_oid(relid);
	if (get_rel_relkind(relid) == RELKIND_COMPOSITE_TYPE)
		tables = list_concat(tables, typed_tables(get_rel_type_id(relid)));
	foreach(lc, tables)
	{
		AttrNumber	attno = get_attnum(lfirst_oid(lc), colname);
		Oid			source;

		if (attno == InvalidAttrNumber)
			continue;
		source = column_source(lfirst_oid(lc), attno, false);
		if (OidIsValid(source))
		{
			*table = lfirst_oid(lc);
			return source;
		}
	}
	return InvalidOid;
}

/*
 * depended_table is the table that table source relid depends on
 * (table_created), InvalidOid if none (a restored source, until its
 * first batch: restore_dependencies).
 */
static Oid
depended_table(Oid relid)
{
	Relation	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			table = InvalidOid;

	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(RelationRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(depend, DependDependerIndexId, true, NULL, 2, key);
	while (!OidIsValid(table) && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);

		if (dep->refclassid == RelationRelationId && dep->refobjsubid == 0 &&
			dep->deptype == DEPENDENCY_NORMAL)
			table = dep->refobjid;
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);
	return table;
}

/*
 * followed_table is the table that table source relid follows: the one it
 * depends on, so that a table renamed, or moved to another schema, is
 * still followed (TableSourceFollowRenames keeps the option in step); by
 * option "table" only for a restored source whose dependencies are not
 * made yet (restore_dependencies).
 */
static Oid
followed_table(Oid relid, Jsonb *options)
{
	Oid			table = depended_table(relid);

	if (!OidIsValid(table))
		return table_relid(options);
	LockRelationOid(table, AccessShareLock);
	return table;
}

/* is_table_source tells whether relation relid is a table source */
static bool
is_table_source(Oid relid)
{
	char	   *kind;

	return get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE &&
		SourceLookup(relid, NULL, &kind, NULL) && strcmp(kind, "table") == 0;
}

/*
 * TableSourceCheckAlter refuses, before PostgreSQL runs them, the ALTER
 * TABLE commands after which a table source could not go on following
 * its table: ALTER COLUMN ... TYPE of a column that it reads (which
 * PostgreSQL refuses too, but with an internal error, "unexpected object
 * depending on column"): the rows inserted after it could not be read as
 * the source's rows; SET UNLOGGED: the changes made while the table
 * is unlogged are not in the WAL, and the source would miss them for
 * good, without a word, once the table is logged again (a batch refuses
 * an unlogged table, but cannot tell that it was one); and a replica
 * identity other than FULL under a source with changes "all", whose
 * deletes and updates would then lack the old row to take back.
 */
void
TableSourceCheckAlter(AlterTableStmt *stmt)
{
	Oid			relid;
	ListCell   *lc;

	/* ALTER TYPE ... ALTER ATTRIBUTE ... TYPE retypes typed tables' columns */
	if (stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_TYPE &&
		stmt->objtype != OBJECT_FOREIGN_TABLE)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid))
		return;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);
		Oid			source;
		Oid			table;

		if ((cmd->subtype == AT_AddColumn || cmd->subtype == AT_AlterColumnType) &&
			is_table_source(relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change the columns of table source %s", RelationQualifiedName(relid)),
					 errdetail("Each column of a table source is the column of the same name and type of the table it follows."),
					 errhint("Drop the queries over the source and the source, and create the source again with the columns wanted.")));

		if (cmd->subtype == AT_SetUnLogged &&
			OidIsValid(source = column_source(relid, 0, false)))
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot make table %s unlogged: table source %s follows it",
							RelationQualifiedName(relid), RelationQualifiedName(source)),
					 errdetail("The changes of an unlogged table are not in the WAL, from which the source reads them."),
					 errhint("Drop the queries over the source and the source first.")));
		if (cmd->subtype == AT_ReplicaIdentity &&
			((ReplicaIdentityStmt *) cmd->def)->identity_type != REPLICA_IDENTITY_FULL &&
			OidIsValid(source = column_source(relid, 0, true)))
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot change the replica identity of table %s: table source %s follows its changes",
							RelationQualifiedName(relid), RelationQualifiedName(source)),
					 errdetail("A table source with changes \"all\" takes deleted and updated rows back from the results, which needs their old values in the WAL (REPLICA IDENTITY FULL)."),
					 errhint("Drop the queries over the source and the source first.")));
		if (cmd->subtype != AT_AlterColumnType || cmd->name == NULL)
			continue;
		source = column_reader(relid, cmd->name, stmt->relation->inh, &table);
		if (OidIsValid(source))
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("cannot alter type of a column read by a table source"),
					 errdetail("Table source %s reads column \"%s\" of table %s; the rows inserted after the change could not be read as its rows.",
							   RelationQualifiedName(source), cmd->name, RelationQualifiedName(table)),
					 errhint("Drop the queries over the source and the source, alter the column, and create them again.")));
	}
}

/*
 * TableSourceCheckRename refuses, before PostgreSQL runs it, to rename a
 * column that a table source reads: the source reads its table's rows
 * by column name, so the rows inserted after it would lack the column.
 * PostgreSQL renames a table's column whichever relation kind the command
 * names (ALTER FOREIGN TABLE, VIEW, MATERIALIZED VIEW ... RENAME COLUMN,
 * ALTER TYPE ... RENAME ATTRIBUTE), and the same column of the partitions
 * and inheritance children of the table (and of the tables of a composite
 * type): so are they all checked.  Nor may a table source's own column be
 * renamed: it is read from the table's column of its name.
 */
void
TableSourceCheckRename(RenameStmt *stmt)
{
	Oid			relid;
	Oid			source;
	Oid			table;

	if ((stmt->renameType != OBJECT_COLUMN && stmt->renameType != OBJECT_ATTRIBUTE) ||
		stmt->relation == NULL || stmt->subname == NULL)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || get_attnum(relid, stmt->subname) == InvalidAttrNumber)
		return;
	if (is_table_source(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot rename a column of table source %s", RelationQualifiedName(relid)),
				 errdetail("A table source reads each of its columns from the column of the same name of the table it follows."),
				 errhint("Name it otherwise in the queries over the source instead, as in SELECT %s AS %s.",
						 quote_identifier(stmt->subname), quote_identifier(stmt->newname))));
	if (OidIsValid(source = column_reader(relid, stmt->subname, stmt->relation->inh, &table)))
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot rename a column read by a table source"),
				 errdetail("Table source %s reads column \"%s\" of table %s by its name; the rows inserted after the change would lack it.",
						   RelationQualifiedName(source), stmt->subname, RelationQualifiedName(table)),
				 errhint("Drop the queries over the source and the source, rename the column, and create them again.")));
}

/*
 * TableSourceFollowRenames runs after a table or schema was renamed, or a
 * table moved to another schema: the option "table" of each table source
 * becomes again the name of the table it follows (followed_table), which
 * is what streaming.sources shows and pg_dump restores.
 */
void
TableSourceFollowRenames(void)
{
	if (!OidIsValid(get_extension_oid("streaming", true)))
		return;
	SPI_connect();
	if (CatalogExecute("UPDATE streaming.sources s "
					   "SET options = pg_catalog.jsonb_set(s.options, '{table}', "
					   "pg_catalog.to_jsonb(pg_catalog.format('%I.%I', n.nspname, c.relname))) "
					   "FROM pg_catalog.pg_depend d, pg_catalog.pg_class c, pg_catalog.pg_namespace n "
					   "WHERE s.kind OPERATOR(pg_catalog.=) 'table' "
					   "AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
					   "AND d.objid OPERATOR(pg_catalog.=) s.relid "
					   "AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
					   "AND d.refobjsubid OPERATOR(pg_catalog.=) 0 AND d.deptype OPERATOR(pg_catalog.=) 'n' "
					   "AND c.oid OPERATOR(pg_catalog.=) d.refobjid AND n.oid OPERATOR(pg_catalog.=) c.relnamespace "
					   "AND (s.options OPERATOR(pg_catalog.->>) 'table') IS DISTINCT FROM "
					   "pg_catalog.format('%I.%I', n.nspname, c.relname)",
					   0, NULL, NULL, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.sources");
	SPI_finish();
}

/* ------------------------------------------------------------------------
 * Slots
 * ------------------------------------------------------------------------ */

static void
slot_name(char *buf, int32 query_id, Oid source)
{
	snprintf(buf, NAMEDATALEN, "streaming_%u_%d_%u", MyDatabaseId, query_id, source);
}

/* the pid of the process using a slot, 0 if none, -1 if there is no slot */
static int
slot_active_pid(const char *name)
{
	ReplicationSlot *s;
	int			pid;

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	s = SearchNamedReplicationSlot(name, false);
	if (s == NULL)
		pid = -1;
	else
	{
		SpinLockAcquire(&s->mutex);
		pid = s->active_pid;
		SpinLockRelease(&s->mutex);
	}
	LWLockRelease(ReplicationSlotControlLock);
	return pid;
}

/* releases the slot this process holds, with its reader */
static void
release_slot(void)
{
	reader_free();
	if (MyReplicationSlot != NULL)
		ReplicationSlotRelease();
}

/*
 * create_slot creates a logical slot of this library's plugin, as
 * pg_create_logical_replication_slot() does; a failure drops it again.
 */
static void
create_slot(const char *name)
{
	PG_TRY();
	{
		LogicalDecodingContext *ctx;

		ReplicationSlotCreate(name, true, RS_EPHEMERAL, false);
		ctx = CreateInitDecodingContext(TABLE_PLUGIN, NIL, false, InvalidXLogRecPtr,
										XL_ROUTINE(.page_read = read_local_xlog_page,
												   .segment_open = wal_segment_open,
												   .segment_close = wal_segment_close),
										NULL, NULL, NULL);
		DecodingContextFindStartpoint(ctx);
		FreeDecodingContext(ctx);
		ReplicationSlotPersist();
		ReplicationSlotRelease();
	}
	PG_CATCH();
	{
		/* an ephemeral slot goes when released */
		if (MyReplicationSlot != NULL)
			ReplicationSlotRelease();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Where a recorded position was recorded: the server (its system
 * identifier), the database and the source's foreign table.  A position is
 * an LSN of that server's WAL, read through a slot of that database and
 * source; anywhere else (a database restored by pg_restore) it means
 * nothing.  Batches record it beside the position (partitions
 * "system_identifier", "database_oid", "source_oid") when it is not the
 * one recorded yet.
 */
typedef struct PositionOrigin
{
	bool		known;			/* recorded (batches before 0.5 did not) */
	int64		system;
	int64		database;
	int64		source;
} PositionOrigin;

/* origin_here: a recorded position was recorded here, by this source */
static bool
origin_here(const PositionOrigin *origin, Oid source)
{
	return origin->known && origin->system == (int64) GetSystemIdentifier() &&
		origin->database == (int64) MyDatabaseId && origin->source == (int64) source;
}

/*
 * read_position reads the position the query's committed batches recorded
 * for the source, and where; false if none.  *mine tells that this
 * transaction wrote it (run() after a batch in the same transaction): not
 * committed yet.
 */
static bool
read_position(const char *query, Oid source, XLogRecPtr *lsn, int64 *seq, bool *mine,
			  PositionOrigin *origin, TableSnapshot *snap)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *xip = NIL;

	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		args[2] = {CStringGetTextDatum(query), ObjectIdGetDatum(source)};
	bool		found_lsn = false;
	int			origin_parts = 0;

	*lsn = InvalidXLogRecPtr;
	*seq = 0;
	*mine = false;
	memset(origin, 0, sizeof(PositionOrigin));
	if (snap != NULL)
		memset(snap, 0, sizeof(TableSnapshot));
	SPI_connect();
	/* not read-only: a runner that waited for the query's lock must see the latest */
	if (CatalogExecute("SELECT partition, \"offset\", xmin FROM streaming.offsets "
					   "WHERE query OPERATOR(pg_catalog.=) $1 AND source OPERATOR(pg_catalog.=) $2 "
					   "AND (partition OPERATOR(pg_catalog.=) ANY ('{lsn,seq,system_identifier,database_oid,source_oid}'::pg_catalog.text[]) "
					   "OR pg_catalog.starts_with(partition, 'snapshot_'))",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.offsets");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *partition = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		int64		value = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		TransactionId xmin = DatumGetTransactionId(SPI_getbinval(tup, desc, 3, &isnull));

		if (strcmp(partition, "lsn") == 0)
		{
			*lsn = (XLogRecPtr) value;
			found_lsn = true;
		}
		else if (strcmp(partition, "seq") == 0)
			*seq = value;
		else if (strncmp(partition, "snapshot_", 9) == 0)
		{
			if (snap == NULL)
				continue;
			if (strcmp(partition, "snapshot_lsn") == 0)
				snap->lsn = (XLogRecPtr) value;
			else if (strcmp(partition, "snapshot_xmin") == 0)
				snap->xmin = (TransactionId) value;
			else if (strcmp(partition, "snapshot_xmax") == 0)
				snap->xmax = (TransactionId) value;
			else
			{
				MemoryContext old = MemoryContextSwitchTo(caller);

				xip = lappend_oid(xip, (Oid) value);	/* (a 32-bit xid) */
				MemoryContextSwitchTo(old);
			}
		}
		else
		{
			if (strcmp(partition, "system_identifier") == 0)
				origin->system = value;
			else if (strcmp(partition, "database_oid") == 0)
				origin->database = value;
			else
				origin->source = value;
			origin_parts++;
		}
		if (TransactionIdIsCurrentTransactionId(xmin))
			*mine = true;
	}
	SPI_finish();
	origin->known = origin_parts == 3;
	/* a snapshot forgotten (snapshot_lsn 0, table_plan_batch) is none */
	if (snap != NULL && snap->lsn == InvalidXLogRecPtr)
		memset(snap, 0, sizeof(TableSnapshot));
	else if (snap != NULL && list_length(xip) > 0)
	{
		ListCell   *lc;

		snap->xip = palloc(sizeof(TransactionId) * list_length(xip));
		foreach(lc, xip)
			snap->xip[snap->nxip++] = (TransactionId) lfirst_oid(lc);
	}
	return found_lsn;
}

/*
 * record_origin records with a batch where its position was taken, unless
 * the committed batches recorded that already.
 */
static void
record_origin(SourceBatch *batch, const PositionOrigin *origin)
{
	if (origin_here(origin, batch->relid))
		return;
	SourceBatchAddOffset(batch, "system_identifier", (int64) GetSystemIdentifier());
	SourceBatchAddOffset(batch, "database_oid", (int64) MyDatabaseId);
	SourceBatchAddOffset(batch, "source_oid", (int64) batch->relid);
}

/* lost_slot: the slot of a query that has read through it is gone */
static void
lost_slot(const char *name, const char *query, XLogRecPtr lsn)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("replication slot \"%s\" of continuous query \"%s\" does not exist", name, query),
			 errdetail("The query has read the table up to %X/%X; the changes after that can no longer be read.",
					   LSN_FORMAT_ARGS(lsn)),
			 errhint("Drop the query and create it again; it starts from the changes committed after that.")));
}

/*
 * invalidated_slot: the server removed WAL that the slot still needed
 * (max_slot_wal_keep_size); the slot stays, as pg_replication_slots shows
 * it with wal_status 'lost', but nothing can be decoded from it any more.
 */
static void
invalidated_slot(const char *name, const char *query, XLogRecPtr lsn)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("replication slot \"%s\" of continuous query \"%s\" is lost", name, query),
			 errdetail("The server removed WAL that the slot still needed, from %X/%X on, because the slot held back more than max_slot_wal_keep_size; the query has read the table up to %X/%X, and the changes committed after that can no longer be read.",
					   LSN_FORMAT_ARGS(MyReplicationSlot->data.invalidated_at), LSN_FORMAT_ARGS(lsn)),
			 errhint("Drop the query and create it again; it starts from the changes committed after that. Keep the query running, or raise max_slot_wal_keep_size, so that its slot does not fall so far behind.")));
}

/* slot_start is where a slot that no process holds begins: its confirmed position */
static XLogRecPtr
slot_start(const char *name)
{
	ReplicationSlot *s;
	XLogRecPtr	lsn = InvalidXLogRecPtr;

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	s = SearchNamedReplicationSlot(name, false);
	if (s != NULL)
	{
		SpinLockAcquire(&s->mutex);
		lsn = s->data.confirmed_flush;
		SpinLockRelease(&s->mutex);
	}
	LWLockRelease(ReplicationSlotControlLock);
	return lsn;
}

/*
 * restore_dependencies makes again the dependencies of a restored source
 * on its table and columns (table_created), which pg_dump does not carry.
 * A source that depends on a table has them already: that is the table
 * it follows, whatever option "table" says by now (a rename in a session
 * without the library leaves it behind), and a table that has taken that
 * name since is not adopted.
 */
static void
restore_dependencies(Oid relid, Jsonb *options)
{
	if (OidIsValid(depended_table(relid)))
		return;
	table_created(relid, options);
	CommandCounterIncrement();
}

/*
 * table_prepare creates the slot of a query's table source if it does
 * not exist yet.  It runs before the batch's transaction writes anything
 * (creating a slot is not possible after that) and before it takes the
 * query's row lock (creation waits for the transactions running then).
 *
 * A query that has read through a slot of this database that is gone has
 * lost changes: an error.  A query whose position was recorded elsewhere
 * (restored by pg_restore, into another database or server) starts at its
 * new slot, with a warning that says what it does not read.
 */
static void
table_prepare(const char *query, int32 query_id, Oid relid, Jsonb *options)
{
	char		name[NAMEDATALEN];
	XLogRecPtr	lsn;
	int64		seq;
	bool		mine;
	bool		recorded;
	PositionOrigin origin;

	check_decoding_settings();
	slot_name(name, query_id, relid);
	if (MyReplicationSlot != NULL && strcmp(NameStr(MyReplicationSlot->data.name), name) == 0)
		return;
	if (slot_active_pid(name) >= 0)
		return;

	if (GetTopTransactionIdIfAny() != InvalidTransactionId)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("continuous query \"%s\" has no replication slot yet", query),
				 errdetail("A table source reads through a replication slot, which cannot be created in a transaction that has written."),
				 errhint("Call streaming.run() in a transaction of its own once, or start the query: that creates the slot.")));

	/* one creator at a time; the loser finds the slot made */
	LockDatabaseObject(RelationRelationId, relid, (uint16) query_id, ExclusiveLock);
	if (slot_active_pid(name) >= 0)
		return;
	recorded = read_position(query, relid, &lsn, &seq, &mine, &origin, NULL);
	if (recorded && (!origin.known || origin_here(&origin, relid)))
		lost_slot(name, query, lsn);
	release_slot();
	discard_parked(name, NULL);
	create_slot(name);
	if (!recorded)
		return;
	ereport(WARNING,
			(errmsg("continuous query \"%s\" reads table %s from its new replication slot \"%s\", at %X/%X",
					query, RelationQualifiedName(table_relid(options)), name,
					LSN_FORMAT_ARGS(slot_start(name))),
			 errdetail("The query's position was recorded in another database or server (system identifier " INT64_FORMAT ", database OID " INT64_FORMAT "), where it had read the table up to %X/%X, a position that means nothing here. Changes committed to the table before the new slot was created are not read.",
					   origin.system, origin.database, LSN_FORMAT_ARGS(lsn)),
			 errhint("After a restore, start or run the restored queries before writing to the tables they follow.")));
}

/* ------------------------------------------------------------------------
 * Commit and abort: a session's reader, slots dropped by drop_query
 * ------------------------------------------------------------------------ */

/*
 * drop_slots drops the slots of the queries this transaction dropped, just
 * before it commits: dropping is not transactional.  A slot that another
 * process still holds (a worker that the launcher started again between
 * drop_query's stop and its delete, now waiting for the query's row) is
 * left to the launcher, which drops it once that worker has exited.
 */
static void
drop_slots(void)
{
	ListCell   *lc;

	foreach(lc, slot_drops)
	{
		SlotDrop   *d = lfirst(lc);

		if (MyReplicationSlot != NULL && strcmp(NameStr(MyReplicationSlot->data.name), d->name) == 0)
			release_slot();
		discard_parked(d->name, NULL);
		if (slot_active_pid(d->name) == 0)
			ReplicationSlotDrop(d->name, true);
	}
	list_free_deep(slot_drops);
	slot_drops = NIL;
}

static void
table_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			/* a worker keeps its slot and decoding context; a session not */
			if (!IsBackgroundWorker)
				release_slot();
			drop_slots();
			break;
		case XACT_EVENT_ABORT:
			if (!IsBackgroundWorker)
				release_slot();
			list_free_deep(slot_drops);
			slot_drops = NIL;
			break;
		default:
			break;
	}
}

static void
table_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, slot_drops)
	{
		SlotDrop   *d = lfirst(lc);

		if (event == SUBXACT_EVENT_ABORT_SUB && d->nestlevel >= level)
		{
			pfree(d);
			slot_drops = foreach_delete_current(slot_drops, lc);
		}
		else if (event == SUBXACT_EVENT_COMMIT_SUB && d->nestlevel >= level)
			d->nestlevel = level - 1;
	}
}

static void
register_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(table_xact_callback, NULL);
	RegisterSubXactCallback(table_subxact_callback, NULL);
	callbacks_registered = true;
}

/*
 * TableSourceDropSlots drops the slots of a query that is being dropped,
 * when the transaction commits.  Sources of other kinds have none.
 */
void
TableSourceDropSlots(int32 query_id, List *sources)
{
	ListCell   *lc;

	register_callbacks();
	foreach(lc, sources)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		SlotDrop   *d = palloc(sizeof(SlotDrop));

		slot_name(d->name, query_id, lfirst_oid(lc));
		d->nestlevel = GetCurrentTransactionNestLevel();
		slot_drops = lappend(slot_drops, d);
		MemoryContextSwitchTo(old);
	}
}

/*
 * TableSourceDropOrphanSlots drops this database's slots of table sources
 * whose query no longer exists (or, after DROP EXTENSION, all of them):
 * nothing reads them, and they keep the server's WAL.  The launcher's
 * scanner calls it outside any transaction, as a superuser.  The slots are
 * listed first and the queries read after, so that a query committed
 * before its slot was made is always seen.
 */
void
TableSourceDropOrphanSlots(void)
{
	char		prefix[NAMEDATALEN];
	List	   *names = NIL;
	ListCell   *lc;

	if (max_replication_slots == 0)
		return;
	snprintf(prefix, sizeof(prefix), "streaming_%u_", MyDatabaseId);
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots; i++)
	{
		ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];

		/* ours: logical, of this database, our plugin and our names */
		if (s->in_use && s->data.database == MyDatabaseId &&
			SlotIsLogical(s) && strcmp(NameStr(s->data.plugin), "streaming") == 0 &&
			strncmp(NameStr(s->data.name), prefix, strlen(prefix)) == 0)
			names = lappend(names, pstrdup(NameStr(s->data.name)));
	}
	LWLockRelease(ReplicationSlotControlLock);
	if (names == NIL)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	{
		bool		installed;

		if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension "
						"WHERE extname OPERATOR(pg_catalog.=) 'streaming'",
						true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read pg_extension");
		installed = SPI_processed == 1;
		foreach(lc, names)
		{
			char	   *name = lfirst(lc);
			int32		query_id;
			Oid			source;
			bool		orphan = true;

			CHECK_FOR_INTERRUPTS();
			if (sscanf(name + strlen(prefix), "%d_%u", &query_id, &source) != 2)
				continue;
			if (installed)
			{
				Oid			argtypes[1] = {INT4OID};
				Datum		args[1] = {Int32GetDatum(query_id)};

				if (SPI_execute_with_args("SELECT 1 FROM streaming.queries "
										  "WHERE id OPERATOR(pg_catalog.=) $1",
										  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
					elog(ERROR, "could not read streaming.queries");
				orphan = SPI_processed == 0;
			}
			if (!orphan || slot_active_pid(name) != 0)
				continue;
			ReplicationSlotDrop(name, true);
			ereport(LOG,
					(errmsg("dropped replication slot \"%s\": its continuous query no longer exists", name)));
		}
	}
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/* ------------------------------------------------------------------------
 * The reader
 * ------------------------------------------------------------------------ */

static bool
position_after(XLogRecPtr lsn, int64 seq, XLogRecPtr lsn2, int64 seq2)
{
	return lsn > lsn2 || (lsn == lsn2 && seq > seq2);
}

/*
 * reader_free ends the reader: its decoding context (unless an error left
 * it mid-way, then only its memory and WAL file) and its pending changes.
 * The slot stays acquired.
 */
static void
reader_free(void)
{
	TableReader *r = reader;

	if (r == NULL)
		return;
	reader = NULL;
	if (r->ctx != NULL)
	{
		if (!r->busy)
			FreeDecodingContext(r->ctx);
		else if (r->ctx->reader->seg.ws_file >= 0)
			close(r->ctx->reader->seg.ws_file);
	}
	if (r->pending != NULL)
		tuplestore_end(r->pending);
	MemoryContextDelete(r->cxt);
}

/*
 * acquire_slot acquires a slot that slot_active_pid found free.  Another
 * process may take it first: in a pool worker that is a lock not
 * available, as when the slot was seen held (reader_create), and the
 * batch is tried again rather than failing the query.
 */
static void
acquire_slot(const char *name, const char *query)
{
	MemoryContext old = CurrentMemoryContext;

	PG_TRY();
	{
		ReplicationSlotAcquire(name, true);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		if (!IsBackgroundWorker)
			PG_RE_THROW();
		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_OBJECT_IN_USE)
		{
			FreeErrorData(edata);
			PG_RE_THROW();
		}
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("replication slot \"%s\" of continuous query \"%s\" is held by another process",
						name, query),
				 errdetail("%s", edata->message),
				 errhint("The batch is tried again.")));
	}
	PG_END_TRY();
}

/* the slot's mark; the caller holds the slot, or its control lock */
static SlotMark
slot_mark(ReplicationSlot *s)
{
	SlotMark	m;

	SpinLockAcquire(&s->mutex);
	m.restart_lsn = s->data.restart_lsn;
	m.confirmed_flush = s->data.confirmed_flush;
	m.catalog_xmin = s->data.catalog_xmin;
	SpinLockRelease(&s->mutex);
	return m;
}

static bool
same_mark(const SlotMark *a, const SlotMark *b)
{
	return a->restart_lsn == b->restart_lsn && a->confirmed_flush == b->confirmed_flush &&
		a->catalog_xmin == b->catalog_xmin;
}

/*
 * reader_discard ends a parked reader: its memory and its WAL file.  What
 * FreeDecodingContext does beyond that needs the slot acquired, and is
 * not needed: a parked reader spilled nothing to the slot's directory
 * (reader_park), and the plugin has no shutdown callback.
 */
static void
reader_discard(TableReader *r)
{
	parked = list_delete_ptr(parked, r);
	if (r->ctx != NULL && r->ctx->reader->seg.ws_file >= 0)
		wal_segment_close(r->ctx->reader);
	if (r->pending != NULL)
		tuplestore_end(r->pending);
	MemoryContextDelete(r->cxt);
}

/* ends the parked reader of a slot, or those of a query (one per table) */
static void
discard_parked(const char *name, const char *query)
{
	ListCell   *lc;

	foreach(lc, parked)
	{
		TableReader *r = lfirst(lc);

		if (name != NULL ? strcmp(r->slot, name) == 0 : strcmp(r->query, query) == 0)
		{
			parked = foreach_delete_current(parked, lc);
			reader_discard(r);
		}
	}
}

/* the parked reader of a slot, or NULL */
static TableReader *
parked_reader(const char *name)
{
	ListCell   *lc;

	foreach(lc, parked)
	{
		TableReader *r = lfirst(lc);

		if (strcmp(r->slot, name) == 0)
			return r;
	}
	return NULL;
}

/*
 * reader_spilled: decoding wrote a transaction of the reader to files in
 * the slot's directory, which the next process to acquire the slot
 * deletes.
 */
static bool
reader_spilled(TableReader *r)
{
	dlist_iter	iter;

	dlist_foreach(iter, &r->ctx->reorder->toplevel_by_lsn)
	{
		ReorderBufferTXN *txn = dlist_container(ReorderBufferTXN, node, iter.cur);
		dlist_iter	sub;

		if (rbtxn_is_serialized(txn) || rbtxn_is_serialized_clear(txn))
			return true;
		dlist_foreach(sub, &txn->subtxns)
		{
			ReorderBufferTXN *subtxn = dlist_container(ReorderBufferTXN, node, sub.cur);

			if (rbtxn_is_serialized(subtxn) || rbtxn_is_serialized_clear(subtxn))
				return true;
		}
	}
	return false;
}

/*
 * reader_park sets the reader aside with its slot released, when a pool
 * worker runs a batch of another of its table-source queries: a process
 * holds one slot at a time, and a reader made again decodes the WAL from
 * its slot's restart point, which a worker running two queries over quiet
 * tables would otherwise do at every look of each, all its time.  The
 * parked reader goes on where it stopped once the worker holds its slot
 * again (reader_unpark), if the committed batches stopped there too
 * (table_plan_batch): another process may run the query meanwhile.  Not
 * so a reader that is mid-way, or whose decoding spilled transactions to
 * the slot's directory (the next process to acquire the slot deletes the
 * files) or that holds more than TABLE_PARKED_BYTES of transactions in
 * progress, nor in a session, nor beyond TABLE_MAX_PARKED: those end.
 * The slot's mark (restart point, confirmed position, catalog xmin) is
 * kept with it: a process that moves the slot on meanwhile ends it.
 */
static void
reader_park(void)
{
	TableReader *r = reader;
	MemoryContext old;

	if (r == NULL || !IsBackgroundWorker || r->busy || r->ctx == NULL ||
		MyReplicationSlot == NULL || strcmp(NameStr(MyReplicationSlot->data.name), r->slot) != 0 ||
		list_length(parked) >= TABLE_MAX_PARKED || r->ctx->reorder->size > TABLE_PARKED_BYTES ||
		reader_spilled(r))
	{
		release_slot();
		return;
	}
	/* a confirmation that waited for the WAL writer, while the slot is ours */
	reader_confirm(r, InvalidXLogRecPtr);
	r->parked_at = slot_mark(MyReplicationSlot);
	if (r->ctx->reader->seg.ws_file >= 0)
		wal_segment_close(r->ctx->reader);
	reader = NULL;
	ReplicationSlotRelease();
	old = MemoryContextSwitchTo(TopMemoryContext);
	parked = lappend(parked, r);
	MemoryContextSwitchTo(old);
}

/*
 * reader_unpark makes the parked reader of a slot the reader again, its
 * slot acquired; it ends it instead when the slot is gone, another
 * process holds it, or it is not the slot the reader was made on (dropped
 * and made again): reader_create then says why, or starts afresh.
 */
static void
reader_unpark(const char *name)
{
	TableReader *r = parked_reader(name);
	SlotMark	mark;

	if (r == NULL)
		return;
	if (MyReplicationSlot != NULL || slot_active_pid(name) != 0)
	{
		reader_discard(r);
		return;
	}
	PG_TRY();
	{
		acquire_slot(name, r->query);
	}
	PG_CATCH();
	{
		reader_discard(r);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (MyReplicationSlot != r->ctx->slot ||
		MyReplicationSlot->data.invalidated_at != InvalidXLogRecPtr)
	{
		reader_discard(r);
		return;
	}
	/* moved on by another process: the reader's WAL and catalog rows may be gone */
	mark = slot_mark(MyReplicationSlot);
	if (!same_mark(&mark, &r->parked_at))
	{
		reader_discard(r);
		return;
	}
	parked = list_delete_ptr(parked, r);
	reader = r;
}

/* read_flushed_page declined to wait (a record not flushed whole) */
static bool wal_would_block = false;

/*
 * read_flushed_page reads a page of WAL for decoding as read_local_xlog_page
 * does, but never waits for WAL that is not flushed yet: it says that it
 * would block, the record is not read, and the next attempt (the next
 * batch's) reads it again from its start (XLogDecodeNextRecord leaves its
 * position as it was).  The end of the flushed WAL may cut a record of a
 * transaction still open, this worker's own included (the lock that its
 * batch takes on the query's row): nothing flushes the rest until that
 * transaction commits, and waiting for it would hold back the rows decoded
 * before it, for as long as the server stays otherwise quiet.
 */
static int
read_flushed_page(XLogReaderState *state, XLogRecPtr targetPagePtr, int reqLen,
				  XLogRecPtr targetRecPtr, char *cur_page)
{
	if (!RecoveryInProgress() && targetPagePtr + reqLen > GetFlushRecPtr(NULL))
	{
		wal_would_block = true;
		return XLREAD_WOULDBLOCK;
	}
	return read_local_xlog_page(state, targetPagePtr, reqLen, targetRecPtr, cur_page);
}

/*
 * reader_create acquires the slot and starts decoding at its restart
 * point, skipping what committed batches took.
 */
static TableReader *
reader_create(SourceBatch *batch, const char *name, Oid table, XLogRecPtr lsn, int64 seq,
			  bool recorded, const TableSnapshot *snap)
{
	TableReader *r;
	TupleDesc	sdesc = RelationGetDescr(batch->rel);
	MemoryContext cxt;
	MemoryContext old;
	int			pid;

	if (MyReplicationSlot != NULL && strcmp(NameStr(MyReplicationSlot->data.name), name) != 0)
		release_slot();
	pid = slot_active_pid(name);
	if (pid < 0)
	{
		if (recorded)
			lost_slot(name, batch->query, lsn);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replication slot \"%s\" of continuous query \"%s\" does not exist", name, batch->query),
				 errhint("Call streaming.run() in a transaction of its own once, or start the query: that creates the slot.")));
	}
	/*
	 * In a pool worker, the holder is the worker that ran the query before:
	 * it keeps the slot while it runs its other queries, and lets go of it
	 * once it sees the query taken, after its batch in progress, which may
	 * be long (the reason the query was taken).  The batch waits for it as
	 * for a lock, and is tried again (a failure would stop the query).
	 */
	if (pid != 0 && pid != MyProcPid && IsBackgroundWorker)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("replication slot \"%s\" of continuous query \"%s\" is held by process %d",
						name, batch->query, pid),
				 errdetail("The pool worker that ran the query before keeps the slot until it sees the query taken, after its batch in progress."),
				 errhint("The batch is tried again.")));
	if (pid != 0 && pid != MyProcPid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("continuous query \"%s\" is being run by process %d", batch->query, pid),
				 errdetail("That process holds replication slot \"%s\" of the query's table source.", name),
				 errhint("Stop the query with streaming.stop() before running it with streaming.run().")));
	/* a source restored by pg_restore depends on its table again */
	restore_dependencies(batch->relid, batch->options);
	if (MyReplicationSlot == NULL)
		acquire_slot(name, batch->query);
	if (MyReplicationSlot->data.invalidated_at != InvalidXLogRecPtr)
		invalidated_slot(name, batch->query, lsn);

	cxt = AllocSetContextCreate(TopMemoryContext, "streaming table source", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	r = palloc0(sizeof(TableReader));
	r->cxt = cxt;
	r->rowcxt = AllocSetContextCreate(cxt, "streaming table source row", ALLOCSET_DEFAULT_SIZES);
	strlcpy(r->slot, name, NAMEDATALEN);
	r->query = pstrdup(batch->query);
	r->source = batch->relid;
	r->table = table;
	r->all_changes = all_changes(batch->options);
	r->ncols = sdesc->natts;
	r->desc = CreateTemplateTupleDesc(r->ncols + 3);
	for (int i = 0; i < r->ncols; i++)
		TupleDescCopyEntry(r->desc, i + 1, sdesc, i + 1);
	TupleDescInitEntry(r->desc, r->ncols + 1, "kind", CHAROID, -1, 0);
	TupleDescInitEntry(r->desc, r->ncols + 2, "lsn", INT8OID, -1, 0);
	TupleDescInitEntry(r->desc, r->ncols + 3, "seq", INT8OID, -1, 0);
	r->map = palloc0(sizeof(AttrNumber) * Max(r->ncols, 1));
	/* it outlives transactions: an inter-transaction store */
	r->pending = tuplestore_begin_heap(false, true, work_mem);
	r->skip_lsn = r->done_lsn = lsn;
	r->skip_seq = r->done_seq = seq;
	r->snapshot = *snap;
	if (snap->nxip > 0)
	{
		r->snapshot.xip = palloc(sizeof(TransactionId) * snap->nxip);
		memcpy(r->snapshot.xip, snap->xip, sizeof(TransactionId) * snap->nxip);
	}
	r->busy = true;
	reader = r;

	r->ctx = CreateDecodingContext(InvalidXLogRecPtr, NIL, false,
								   XL_ROUTINE(.page_read = read_flushed_page,
											  .segment_open = wal_segment_open,
											  .segment_close = wal_segment_close),
								   NULL, NULL, NULL);
	r->ctx->output_plugin_private = r;
	/* the whole of every transaction committed after confirmed_flush */
	XLogBeginRead(r->ctx->reader, MyReplicationSlot->data.restart_lsn);
	r->busy = false;
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * reader_decode decodes the WAL flushed so far (or up to the end of an
 * 'available_now' run) until want rows are pending (see add_pending).
 */
static void
reader_decode(TableReader *r, int64 want, XLogRecPtr end)
{
	MemoryContext old;
	ResourceOwner owner = CurrentResourceOwner;

	if (r->ctx->reader->EndRecPtr >= end || r->npending_rows >= want)
		return;
	r->busy = true;
	/* the WAL reader allocates its decode buffers where it runs */
	old = MemoryContextSwitchTo(r->ctx->context);
	/* no cache entry made with a normal snapshot may serve decoding, and back */
	InvalidateSystemCaches();
	PG_TRY();
	{
		while (r->ctx->reader->EndRecPtr < end && r->npending_rows < want)
		{
			XLogRecord *record;
			char	   *errm = NULL;

			wal_would_block = false;
			record = XLogReadRecord(r->ctx->reader, &errm);
			if (errm)
				elog(ERROR, "could not find record for logical decoding: %s", errm);
			if (record == NULL)
			{
				/* the next record is not flushed whole yet (read_flushed_page) */
				if (wal_would_block)
					break;
				elog(ERROR, "could not read WAL at %X/%X for logical decoding",
					 LSN_FORMAT_ARGS(r->ctx->reader->EndRecPtr));
			}
			/* replaying a transaction ends a subtransaction of ours */
			LogicalDecodingProcessRecord(r->ctx, r->ctx->reader);
			CurrentResourceOwner = owner;
			MemoryContextSwitchTo(r->ctx->context);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
		InvalidateSystemCaches();
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	InvalidateSystemCaches();
	r->busy = false;
}

/*
 * insert_end is where the WAL inserted so far ends, to flush up to: the
 * insert position, but at a page boundary the page's start rather than
 * the position after the header of a page not written yet, which XLogFlush
 * refuses ("xlog flush request ... is not satisfied").
 */
static XLogRecPtr
insert_end(void)
{
	XLogRecPtr	ptr = GetXLogInsertRecPtr();

	if (XLogSegmentOffset(ptr, wal_segment_size) == SizeOfXLogLongPHD)
		return ptr - SizeOfXLogLongPHD;
	if (ptr % XLOG_BLCKSZ == SizeOfXLogShortPHD)
		return ptr - SizeOfXLogShortPHD;
	return ptr;
}

/*
 * reader_confirm moves the slot to what the last committed batch recorded
 * once the WAL holding that commit is flushed, and notes the next point.
 * A session flushes at once; a worker (synchronous_commit = off) leaves
 * it to the WAL writer and confirms at a later batch.
 */
static void
reader_confirm(TableReader *r, XLogRecPtr target)
{
	if (r->confirm_after != InvalidXLogRecPtr && GetFlushRecPtr(NULL) >= r->confirm_after)
	{
		LogicalConfirmReceivedLocation(r->confirm_lsn);
		ReplicationSlotMarkDirty();
		r->confirm_after = InvalidXLogRecPtr;
	}
	if (target == InvalidXLogRecPtr || target <= MyReplicationSlot->data.confirmed_flush ||
		(r->confirm_after != InvalidXLogRecPtr && target <= r->confirm_lsn))
		return;
	r->confirm_lsn = target;
	r->confirm_after = insert_end();
	if (!IsBackgroundWorker)
	{
		XLogFlush(r->confirm_after);
		LogicalConfirmReceivedLocation(r->confirm_lsn);
		ReplicationSlotMarkDirty();
		r->confirm_after = InvalidXLogRecPtr;
	}
}

/*
 * next_poll says when a worker should look at the table again after a
 * batch found nothing new.  Nothing wakes a worker when the table receives
 * rows, so it polls: soon after the last input, so that a steady stream of
 * inserts is read within milliseconds of its commits, and less and less
 * often as the table stays quiet, up to streaming.idle_poll, the idle cost
 * of any source that cannot tell when input comes.
 */
static TimestampTz
next_poll(TableReader *r)
{
	r->poll_ms = Min(r->poll_ms == 0 ? TABLE_FIRST_POLL_MS : r->poll_ms * 2, streaming_idle_poll);
	return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), r->poll_ms);
}

/* ------------------------------------------------------------------------
 * The output plugin
 * ------------------------------------------------------------------------ */

static TableReader *
plugin_reader(LogicalDecodingContext *ctx)
{
	TableReader *r = ctx->output_plugin_private;

	if (r == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("output plugin \"streaming\" serves only the table sources of the streaming extension"),
				 errhint("Read the extension's replication slots only through its queries: other readers would make them lose changes.")));
	return r;
}

static void
plugin_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	opt->output_type = OUTPUT_PLUGIN_BINARY_OUTPUT;
	opt->receive_rewrites = false;
}

static void
plugin_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	TableReader *r = plugin_reader(ctx);

	r->txn_lsn = txn->final_lsn;
	r->txn_seq = 0;
	/* its rows were read by the first batch (snapshot_batch) */
	r->txn_skip = r->snapshot.lsn != InvalidXLogRecPtr && txn->final_lsn < r->snapshot.lsn &&
		snapshot_sees(&r->snapshot, txn->xid);
}

static void
plugin_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
}

/*
 * map_column finds the column of the decoded tuple's descriptor that feeds
 * column i of the source: by name, cached by attnum while it still fits.
 * A column that is gone, or has another type, fails the batch: the
 * source's dependencies on the table's columns refuse such changes, but a
 * source restored by pg_restore has lost them until its slot is made.
 */
static AttrNumber
map_column(TableReader *r, TupleDesc tdesc, int i, Relation relation)
{
	Form_pg_attribute att = TupleDescAttr(r->desc, i);
	AttrNumber	attno = r->map[i];
	Form_pg_attribute tatt;

	if (attno <= 0 || attno > tdesc->natts ||
		TupleDescAttr(tdesc, attno - 1)->attisdropped ||
		strcmp(NameStr(TupleDescAttr(tdesc, attno - 1)->attname), NameStr(att->attname)) != 0)
	{
		attno = SourceFindColumn(tdesc, NameStr(att->attname), InvalidOid);
		r->map[i] = attno;
		if (attno == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table %s has no column \"%s\" any more, which its table source reads",
							RelationGetRelationName(relation), NameStr(att->attname)),
					 errdetail("The column was dropped or renamed; the changes committed after that lack it."),
					 errhint("Drop the query and the source, and create them again over the changed table.")));
	}
	tatt = TupleDescAttr(tdesc, attno - 1);
	if (tatt->atttypid != att->atttypid)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of table %s has type %s, but the source has type %s",
						NameStr(att->attname), RelationGetRelationName(relation),
						format_type_be(tatt->atttypid), format_type_be(att->atttypid)),
				 errhint("Drop the query and the source, and create them again over the changed table.")));
	return attno;
}

/*
 * add_pending stores one change of the table, after the skipped ones.  A
 * row keeps its values as they were decoded; toasted values, which the
 * decoder hands over as pointers to memory it frees, are copied in.  The
 * new row of an update points to the stored value of a toasted column
 * that the update left as it was: that value is the old row's (oldtuple,
 * which REPLICA IDENTITY FULL logs whole).  What max_rows_per_trigger
 * counts is an insert, and with changes "all" a delete or an update too.
 */
static void
add_pending(TableReader *r, char kind, Relation relation, HeapTuple tuple, HeapTuple oldtuple)
{
	MemoryContext old;
	Datum	   *values;
	bool	   *nulls;
	Datum	   *ovalues = NULL;
	bool	   *onulls = NULL;

	r->txn_seq++;
	if (r->txn_skip || !position_after(r->txn_lsn, r->txn_seq, r->skip_lsn, r->skip_seq))
		return;

	old = MemoryContextSwitchTo(r->rowcxt);
	values = palloc0(sizeof(Datum) * (r->ncols + 3));
	nulls = palloc(sizeof(bool) * (r->ncols + 3));
	for (int i = 0; i < r->ncols; i++)
		nulls[i] = true;
	if (tuple != NULL)
	{
		TupleDesc	tdesc = RelationGetDescr(relation);
		Datum	   *tvalues = palloc(sizeof(Datum) * tdesc->natts);
		bool	   *tnulls = palloc(sizeof(bool) * tdesc->natts);

		heap_deform_tuple(tuple, tdesc, tvalues, tnulls);
		if (oldtuple != NULL)
		{
			ovalues = palloc(sizeof(Datum) * tdesc->natts);
			onulls = palloc(sizeof(bool) * tdesc->natts);
			heap_deform_tuple(oldtuple, tdesc, ovalues, onulls);
		}
		for (int i = 0; i < r->ncols; i++)
		{
			Form_pg_attribute att = TupleDescAttr(r->desc, i);
			AttrNumber	attno;
			Datum		d;

			if (att->attisdropped)
				continue;
			attno = map_column(r, tdesc, i, relation);
			if (tnulls[attno - 1])
				continue;
			d = tvalues[attno - 1];
			if (att->attlen == -1 && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d)) &&
				ovalues != NULL && !onulls[attno - 1])
				d = ovalues[attno - 1];
			if (att->attlen == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(d)))
			{
				if (VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(d)))
					elog(ERROR, "decoded change of %s holds an unresolved toast pointer",
						 RelationGetRelationName(relation));
				d = PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(d)));
			}
			values[i] = d;
			nulls[i] = false;
		}
	}
	values[r->ncols] = CharGetDatum(kind);
	values[r->ncols + 1] = Int64GetDatum((int64) r->txn_lsn);
	values[r->ncols + 2] = Int64GetDatum(r->txn_seq);
	nulls[r->ncols] = nulls[r->ncols + 1] = nulls[r->ncols + 2] = false;
	tuplestore_putvalues(r->pending, r->desc, values, nulls);
	r->npending++;
	if (kind == CHANGE_INSERT || (r->all_changes && (kind == CHANGE_DELETE || kind == CHANGE_UPDATE)))
		r->npending_rows++;
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->rowcxt);
}

/*
 * old_row is the old row of a decoded delete or update, for changes
 * "all", or NULL.  The relation is the table as the catalog had it when
 * the change was made: without REPLICA IDENTITY FULL then, the WAL holds
 * the old row's key at most, and the change cannot be taken back.
 */
static HeapTuple
old_row(Relation relation, ReorderBufferChange *change)
{
	if (relation->rd_rel->relreplident != REPLICA_IDENTITY_FULL ||
		change->data.tp.oldtuple == NULL)
		return NULL;
	return &change->data.tp.oldtuple->tuple;
}

static void
plugin_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			  Relation relation, ReorderBufferChange *change)
{
	TableReader *r = plugin_reader(ctx);
	HeapTuple	newtuple;
	HeapTuple	oldtuple;

	if (RelationGetRelid(relation) != r->table)
		return;
	newtuple = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			add_pending(r, CHANGE_INSERT, relation, newtuple, NULL);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (!r->all_changes)
				add_pending(r, CHANGE_UPDATE, relation, NULL, NULL);
			else if ((oldtuple = old_row(relation, change)) == NULL)
				add_pending(r, CHANGE_NO_OLD_ROW, relation, NULL, NULL);
			else
			{
				add_pending(r, CHANGE_UPDATE_OLD, relation, oldtuple, NULL);
				add_pending(r, CHANGE_UPDATE, relation, newtuple, oldtuple);
			}
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			if (!r->all_changes)
				add_pending(r, CHANGE_DELETE, relation, NULL, NULL);
			else if ((oldtuple = old_row(relation, change)) == NULL)
				add_pending(r, CHANGE_NO_OLD_ROW, relation, NULL, NULL);
			else
				add_pending(r, CHANGE_DELETE, relation, oldtuple, NULL);
			break;
		default:
			break;
	}
}

static void
plugin_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
				int nrelations, Relation relations[], ReorderBufferChange *change)
{
	TableReader *r = plugin_reader(ctx);

	for (int i = 0; i < nrelations; i++)
		if (RelationGetRelid(relations[i]) == r->table)
			add_pending(r, CHANGE_TRUNCATE, relations[i], NULL, NULL);
}

/*
 * _PG_output_plugin_init makes this library the output plugin "streaming"
 * of the table sources' slots.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = plugin_startup;
	cb->begin_cb = plugin_begin;
	cb->change_cb = plugin_change;
	cb->truncate_cb = plugin_truncate;
	cb->commit_cb = plugin_commit;
}

/* ------------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------------ */

/* same_columns: the source still has the columns the reader stores */
static bool
same_columns(TableReader *r, TupleDesc sdesc)
{
	if (sdesc->natts != r->ncols)
		return false;
	for (int i = 0; i < r->ncols; i++)
	{
		Form_pg_attribute a = TupleDescAttr(sdesc, i);
		Form_pg_attribute b = TupleDescAttr(r->desc, i);

		if (a->attisdropped != b->attisdropped || a->atttypid != b->atttypid ||
			strcmp(NameStr(a->attname), NameStr(b->attname)) != 0)
			return false;
	}
	return true;
}

static Jsonb *
position_jsonb(XLogRecPtr lsn, int64 seq)
{
	char	   *text = psprintf("{\"lsn\": \"%X/%X\", \"seq\": " INT64_FORMAT "}",
							   LSN_FORMAT_ARGS(lsn), seq);

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/*
 * cannot_take_back is the error of a batch over a table source with
 * changes "all" whose next change cannot be taken back from the results:
 * a TRUNCATE (it logs no rows), or a delete or update made without
 * REPLICA IDENTITY FULL, in the transaction committed at lsn.
 */
static void
cannot_take_back(SourceBatch *batch, Oid table, char kind, XLogRecPtr lsn)
{
	if (kind == CHANGE_TRUNCATE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s, which source \"%s\" follows, was truncated",
						RelationQualifiedName(table), batch->name),
				 errdetail("Continuous query \"%s\" follows every change of the table (changes \"all\"), but a TRUNCATE removes rows without logging them, so its results can no longer be kept equal to the table's; it has taken every change before the TRUNCATE.",
						   batch->query),
				 errhint("Drop the query and create it again; remove rows with DELETE rather than TRUNCATE while it runs.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("a change of table %s was made without REPLICA IDENTITY FULL", RelationQualifiedName(table)),
			 errdetail("The WAL does not hold the old values of a row deleted or updated by the transaction committed at %X/%X, which continuous query \"%s\" would take back from its results (source \"%s\" follows changes \"all\"); it has taken every change before that one.",
					   LSN_FORMAT_ARGS(lsn), batch->query, batch->name),
			 errhint("Run ALTER TABLE %s REPLICA IDENTITY FULL, then drop the query and create it again: its results cannot follow the changes made meanwhile.",
					 RelationQualifiedName(table))));
}

/*
 * snapshot_batch is the first batch of a query over a source with option
 * "snapshot": the rows the table holds, read under a snapshot taken now,
 * after the query's slot was made, all in this one batch (a snapshot does
 * not outlive its transaction).  The batch records the snapshot beside its
 * position, the start of the slot; from then on the reader skips each
 * transaction the snapshot saw (TableSnapshot), whose rows were read here,
 * and takes the others: no row is lost between the two, and none is read
 * twice.  A crash before the batch commits leaves nothing recorded, and
 * the next first batch takes a snapshot of its own.
 */
static bool
snapshot_batch(SourceBatch *batch, const char *name, Oid table, const PositionOrigin *origin)
{
	TupleDesc	sdesc = RelationGetDescr(batch->rel);
	int			natts = sdesc->natts;
	Snapshot	snapshot;
	XLogRecPtr	after;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *tslot;
	TablePlan  *plan;
	AttrNumber *map;
	Datum	   *values;
	bool	   *nulls;
	int64		rows = 0;
	MemoryContext rowcxt;
	MemoryContext old;

	if (slot_active_pid(name) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("replication slot \"%s\" of continuous query \"%s\" does not exist", name, batch->query),
				 errhint("Call streaming.run() in a transaction of its own once, or start the query: that creates the slot.")));
	/* what a reader decoded before would not be filtered by the snapshot */
	if (reader != NULL && strcmp(reader->slot, name) == 0)
		reader_free();
	discard_parked(name, NULL);

	/* the slot exists: every transaction the snapshot misses, it decodes */
	snapshot = RegisterSnapshot(GetLatestSnapshot());

	/*
	 * It sees none of this transaction's own changes, made before the batch
	 * (run() in a transaction block that wrote to the table) or after: the
	 * slot decodes the whole transaction once it commits, after the insert
	 * position read below, and the stream takes them then.  (The
	 * registered snapshot is a copy of our own.)
	 */
	snapshot->curcid = FirstCommandId;
	after = GetXLogInsertRecPtr();
	rel = table_open(table, AccessShareLock);

	old = MemoryContextSwitchTo(batch->mcxt);
	plan = palloc0(sizeof(TablePlan));
	plan->rows = tuplestore_begin_heap(false, false, work_mem);
	plan->desc = SourceRetractionDesc(sdesc);
	map = palloc0(sizeof(AttrNumber) * Max(natts, 1));
	values = palloc0(sizeof(Datum) * (natts + 1));
	nulls = palloc(sizeof(bool) * (natts + 1));
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(sdesc, i);

		if (att->attisdropped)
			continue;
		map[i] = SourceFindColumn(RelationGetDescr(rel), NameStr(att->attname), att->atttypid);
		if (map[i] == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("table %s has no column \"%s\" of type %s, which its table source reads",
							RelationQualifiedName(table), NameStr(att->attname), format_type_be(att->atttypid)),
					 errhint("Drop the query and the source, and create them again over the changed table.")));
	}
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming table snapshot row", ALLOCSET_DEFAULT_SIZES);
	tslot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, tslot))
	{
		MemoryContext rowold;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(tslot);
		rowold = MemoryContextSwitchTo(rowcxt);
		for (int i = 0; i < natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(sdesc, i);
			Datum		d;

			nulls[i] = map[i] == InvalidAttrNumber || tslot->tts_isnull[map[i] - 1];
			if (nulls[i])
				continue;
			d = tslot->tts_values[map[i] - 1];
			if (att->attlen == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(d)))
				d = PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(d)));
			values[i] = d;
		}
		values[natts] = BoolGetDatum(false);
		nulls[natts] = false;
		tuplestore_putvalues(plan->rows, plan->desc, values, nulls);
		MemoryContextSwitchTo(rowold);
		MemoryContextReset(rowcxt);
		rows++;
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(tslot);
	table_close(rel, AccessShareLock);
	MemoryContextDelete(rowcxt);

	/* the position: the start of the slot; and the snapshot */
	SourceBatchAddOffset(batch, "lsn", (int64) InvalidXLogRecPtr);
	SourceBatchAddOffset(batch, "seq", 0);
	record_origin(batch, origin);
	SourceBatchAddOffset(batch, "snapshot_lsn", (int64) after);
	SourceBatchAddOffset(batch, "snapshot_xmin", (int64) snapshot->xmin);
	SourceBatchAddOffset(batch, "snapshot_xmax", (int64) snapshot->xmax);
	for (uint32 i = 0; i < snapshot->xcnt; i++)
		SourceBatchAddOffset(batch, psprintf("snapshot_xip_%u", i + 1), (int64) snapshot->xip[i]);
	batch->start_offset = position_jsonb(InvalidXLogRecPtr, 0);
	batch->end_offset = position_jsonb(InvalidXLogRecPtr, 0);
	batch->metrics = psprintf("\"snapshot_rows\": " INT64_FORMAT, rows);
	batch->private = plan;
	MemoryContextSwitchTo(old);
	UnregisterSnapshot(snapshot);
	return true;
}

/*
 * table_plan_batch takes the next changes of the table: the committed
 * position, the reader (kept if it stopped exactly there, else made
 * again), the WAL decoded up to the flush point, then up to
 * max_rows_per_trigger changes taken from the pending ones (inserts, and
 * with changes "all" deletes and updates, an update's two rows together).
 */
static bool
table_plan_batch(SourceBatch *batch)
{
	char		name[NAMEDATALEN];
	Oid			table;
	XLogRecPtr	lsn;
	int64		seq;
	bool		mine;
	bool		recorded;
	PositionOrigin origin;
	TableSnapshot snap;
	TableReader *r;
	TablePlan  *plan;
	TupleTableSlot *slot;
	int64		want = batch->read_all ? PG_INT64_MAX : max_rows_per_trigger(batch->options);
	bool		all = all_changes(batch->options);
	bool		stopped = false;
	bool		pair = false;
	bool		forget_snapshot = false;
	int64		taken = 0;
	int64		inserts = 0;
	int64		updates = 0;
	int64		deletes = 0;
	int64		truncates = 0;
	XLogRecPtr	end;
	MemoryContext old;

	register_callbacks();
	check_decoding_settings();
	table = followed_table(batch->relid, batch->options);
	/* as the source's owner, whom batches read it as, at every batch */
	check_table(table, GetUserId(), all);
	slot_name(name, batch->query_id, batch->relid);
	recorded = read_position(batch->query, batch->relid, &lsn, &seq, &mine, &origin, &snap);
	/* recorded elsewhere (restored): from the start of the new slot */
	if (recorded && origin.known && !origin_here(&origin, batch->relid))
	{
		lsn = InvalidXLogRecPtr;
		seq = 0;

		/*
		 * Nor is its snapshot one of this server's: its xids and LSN would
		 * skip transactions of the new slot that it never saw.  The batch
		 * records it forgotten, beside the new origin.
		 */
		forget_snapshot = snap.lsn != InvalidXLogRecPtr;
		memset(&snap, 0, sizeof(TableSnapshot));
	}

	/* option "snapshot": a query's first batch is the rows the table holds */
	if (!recorded && JsonbGetBool(batch->options, "snapshot", false))
		return snapshot_batch(batch, name, table, &origin);

	/* another query's reader is set aside; this query's, if set aside, taken */
	if (reader != NULL && strcmp(reader->slot, name) != 0)
		reader_park();
	if (reader == NULL && MyReplicationSlot != NULL &&
		strcmp(NameStr(MyReplicationSlot->data.name), name) != 0)
		ReplicationSlotRelease();
	if (reader == NULL)
		reader_unpark(name);

	/* a reader goes on only from exactly where the committed batches stopped */
	r = reader;
	if (r != NULL && (strcmp(r->slot, name) != 0 || r->busy || r->table != table ||
					  r->all_changes != all || r->done_lsn != lsn || r->done_seq != seq ||
					  !same_snapshot(&r->snapshot, &snap) ||
					  !same_columns(r, RelationGetDescr(batch->rel))))
		reader_free();
	r = reader != NULL ? reader : reader_create(batch, name, table, lsn, seq, recorded, &snap);
	/* the batch may take rows: quiet looks wait for one to find none */
	r->settled = false;

	if (!mine)
		reader_confirm(r, lsn);

	/*
	 * Decoding reads flushed WAL only.  A session makes sure that what
	 * committed before run() is (with synchronous_commit = off it may not
	 * be yet); a worker leaves that to the WAL writer.
	 */
	if (!IsBackgroundWorker)
		XLogFlush(insert_end());
	end = GetFlushRecPtr(NULL);
	if (batch->available_now != 0)
	{
		if (run_began != batch->available_now)
		{
			run_began = batch->available_now;
			run_end = end;
		}
		end = Min(end, run_end);
	}
	reader_decode(r, want, end);

	/* nothing of the table since the last batch: the slot may move on */
	if (r->npending == 0)
	{
		if (!mine)
			reader_confirm(r, r->ctx->reader->EndRecPtr);
		batch->wake_at = next_poll(r);
		r->settled = true;
		r->quiet_upto = InvalidXLogRecPtr;
		return false;
	}
	r->poll_ms = 0;

	old = MemoryContextSwitchTo(batch->mcxt);
	plan = palloc0(sizeof(TablePlan));
	plan->rows = tuplestore_begin_heap(false, false, work_mem);
	plan->desc = SourceRetractionDesc(RelationGetDescr(batch->rel));
	slot = MakeSingleTupleTableSlot(r->desc, &TTSOpsMinimalTuple);
	batch->start_offset = position_jsonb(r->done_lsn, r->done_seq);
	r->busy = true;
	/* the new row of an update goes with its old row */
	while (r->npending > 0 && (taken < want || pair))
	{
		char		kind;

		CHECK_FOR_INTERRUPTS();
		if (!tuplestore_gettupleslot(r->pending, true, false, slot))
			elog(ERROR, "pending changes of table source \"%s\" ran out", batch->name);
		slot_getallattrs(slot);
		kind = DatumGetChar(slot->tts_values[r->ncols]);
		if (all && (kind == CHANGE_TRUNCATE || kind == CHANGE_NO_OLD_ROW))
		{
			/*
			 * The batch stops before it, and the next fails on it.  It was
			 * read from the pending changes, so this reader cannot go on:
			 * the next batch makes a new one, which reads it again.
			 */
			if (taken == 0)
				cannot_take_back(batch, table, kind,
								 (XLogRecPtr) DatumGetInt64(slot->tts_values[r->ncols + 1]));
			stopped = true;
			break;
		}
		r->done_lsn = (XLogRecPtr) DatumGetInt64(slot->tts_values[r->ncols + 1]);
		r->done_seq = DatumGetInt64(slot->tts_values[r->ncols + 2]);
		r->npending--;
		if (kind == CHANGE_INSERT || (all && (kind == CHANGE_DELETE || kind == CHANGE_UPDATE)))
		{
			r->npending_rows--;
			taken++;
		}
		switch (kind)
		{
			case CHANGE_INSERT:
				inserts++;
				break;
			case CHANGE_UPDATE:
				updates++;
				break;
			case CHANGE_DELETE:
				deletes++;
				break;
			case CHANGE_UPDATE_OLD:
				break;
			case CHANGE_TRUNCATE:
				truncates++;
				ereport(WARNING,
						(errmsg("table %s, which source \"%s\" follows, was truncated",
								RelationQualifiedName(table), batch->name),
						 errdetail("Continuous query \"%s\" keeps what it has read: a table source follows inserts only unless its option \"changes\" is \"all\".",
								   batch->query)));
				break;
		}
		/* a row to add or to take back: the source's columns and the mark */
		if (kind == CHANGE_INSERT || (all && kind != CHANGE_TRUNCATE))
		{
			slot->tts_values[r->ncols] = BoolGetDatum(kind == CHANGE_DELETE || kind == CHANGE_UPDATE_OLD);
			slot->tts_isnull[r->ncols] = false;
			tuplestore_putvalues(plan->rows, plan->desc, slot->tts_values, slot->tts_isnull);
		}
		pair = kind == CHANGE_UPDATE_OLD;
		ExecClearTuple(slot);
	}
	ExecDropSingleTupleTableSlot(slot);

	SourceBatchAddOffset(batch, "lsn", (int64) r->done_lsn);
	SourceBatchAddOffset(batch, "seq", r->done_seq);
	record_origin(batch, &origin);
	if (forget_snapshot)
		SourceBatchAddOffset(batch, "snapshot_lsn", (int64) InvalidXLogRecPtr);
	batch->end_offset = position_jsonb(r->done_lsn, r->done_seq);
	if (all)
		batch->metrics = psprintf("\"inserts\": " INT64_FORMAT ", \"updates\": " INT64_FORMAT
								  ", \"deletes\": " INT64_FORMAT, inserts, updates, deletes);
	else
		batch->metrics = psprintf("\"skipped_updates\": " INT64_FORMAT ", \"skipped_deletes\": " INT64_FORMAT
								  ", \"truncates\": " INT64_FORMAT, updates, deletes, truncates);
	batch->private = plan;
	MemoryContextSwitchTo(old);
	if (r->npending == 0 && !stopped)
		tuplestore_clear(r->pending);
	r->busy = false;
	if (stopped)
		reader_free();
	return true;
}

/* ------------------------------------------------------------------------
 * Quiet looks
 * ------------------------------------------------------------------------ */

/* the reader of quiet looks: headers only, nothing decoded */
static XLogReaderState *quiet_reader = NULL;

/*
 * other_database: every block the record changes is of another database's
 * relation (a record of no block, or of a shared catalog, is not).
 */
static bool
other_database(XLogReaderState *s)
{
	bool		any = false;

	for (int id = 0; id <= XLogRecMaxBlockId(s); id++)
	{
#if PG_VERSION_NUM >= 160000
		RelFileLocator rnode;
#define QUIET_DB(r) ((r).dbOid)
#else
		RelFileNode rnode;
#define QUIET_DB(r) ((r).dbNode)
#endif

		if (!XLogRecHasBlockRef(s, id))
			continue;
		XLogRecGetBlockTag(s, id, &rnode, NULL, NULL);
		if (QUIET_DB(rnode) == MyDatabaseId || QUIET_DB(rnode) == InvalidOid)
			return false;
		any = true;
	}
	return any;
}

/*
 * empty_transaction: decoding has queued no change, invalidation or
 * catalog change of the transaction (whose records before the reader's
 * position it has read), so its commit gives no row.
 */
static bool
empty_transaction(TableReader *r, TransactionId xid)
{
	dlist_iter	iter;

	dlist_foreach(iter, &r->ctx->reorder->toplevel_by_lsn)
	{
		ReorderBufferTXN *txn = dlist_container(ReorderBufferTXN, node, iter.cur);

		if (txn->xid == xid)
			return txn->nentries == 0 && txn->ninvalidations == 0 &&
				!rbtxn_has_catalog_changes(txn) && dlist_is_empty(&txn->subtxns);
	}
	return true;
}

/*
 * harmless_record tells whether a record after the reader's position can
 * give the source no row, so that a batch need not run for it: a row lock
 * (other queries' batches take them), a commit of a transaction of this
 * database that changed nothing (such a batch's), anything of another
 * database's, aborts, checkpoints, index and visibility upkeep.  Anything
 * else — a change to a table of this database, a commit that may carry
 * rows or invalidations, a kind of record not listed — is not: the batch
 * runs and decodes it.
 */
static bool
harmless_record(TableReader *r, XLogReaderState *s)
{
	uint8		info = XLogRecGetInfo(s) & ~XLR_INFO_MASK;

	switch (XLogRecGetRmid(s))
	{
		case RM_XLOG_ID:
			return info == XLOG_CHECKPOINT_SHUTDOWN || info == XLOG_CHECKPOINT_ONLINE ||
				info == XLOG_NOOP || info == XLOG_NEXTOID || info == XLOG_SWITCH ||
				info == XLOG_BACKUP_END || info == XLOG_RESTORE_POINT ||
				info == XLOG_FPI || info == XLOG_FPI_FOR_HINT;
		case RM_XACT_ID:
			switch (info & XLOG_XACT_OPMASK)
			{
				case XLOG_XACT_ABORT:
				case XLOG_XACT_ASSIGNMENT:
					return true;
				case XLOG_XACT_COMMIT:
					{
						xl_xact_parsed_commit parsed;

						ParseCommitRecord(XLogRecGetInfo(s), (xl_xact_commit *) XLogRecGetData(s), &parsed);
						if (parsed.dbId != MyDatabaseId)
							return parsed.dbId != InvalidOid;
						return parsed.nmsgs == 0 && parsed.nsubxacts == 0 && parsed.nrels == 0 &&
							(parsed.xinfo & XACT_XINFO_HAS_TWOPHASE) == 0 &&
							empty_transaction(r, XLogRecGetXid(s));
					}
				default:
					return false;
			}
		case RM_STANDBY_ID:
			return info == XLOG_RUNNING_XACTS || info == XLOG_STANDBY_LOCK;
		case RM_HEAP_ID:
			return (info & XLOG_HEAP_OPMASK) == XLOG_HEAP_LOCK || other_database(s);
		case RM_HEAP2_ID:
			switch (info & XLOG_HEAP_OPMASK)
			{
				case XLOG_HEAP2_PRUNE:
				case XLOG_HEAP2_VACUUM:
				case XLOG_HEAP2_FREEZE_PAGE:
				case XLOG_HEAP2_VISIBLE:
				case XLOG_HEAP2_LOCK_UPDATED:
					return true;
				default:
					return other_database(s);
			}
		case RM_BTREE_ID:
		case RM_HASH_ID:
		case RM_GIN_ID:
		case RM_GIST_ID:
		case RM_SPGIST_ID:
		case RM_BRIN_ID:
		case RM_SEQ_ID:
		case RM_CLOG_ID:
		case RM_MULTIXACT_ID:
		case RM_COMMIT_TS_ID:
		case RM_LOGICALMSG_ID:	/* the plugin takes no messages */
			return true;
		default:
			return false;
	}
}

/*
 * parked_slot_free: the slot of a parked reader is still the one it was
 * made on, valid, as the reader left it (no other process moved it on),
 * and no other process holds it (none runs the query).
 */
static bool
parked_slot_free(TableReader *r)
{
	ReplicationSlot *s;
	bool		usable = false;

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	s = SearchNamedReplicationSlot(r->slot, false);
	if (s != NULL && s == r->ctx->slot)
	{
		SlotMark	mark = slot_mark(s);

		SpinLockAcquire(&s->mutex);
		usable = s->active_pid == 0 && s->data.invalidated_at == InvalidXLogRecPtr;
		SpinLockRelease(&s->mutex);
		usable = usable && same_mark(&mark, &r->parked_at);
	}
	LWLockRelease(ReplicationSlotControlLock);
	return usable;
}

/*
 * offsets_at_hand locks streaming.offsets and its indexes for a quiet
 * look's read of the committed position, without waiting: false when a
 * lock is held or asked for elsewhere (a VACUUM FULL, a LOCK TABLE, a
 * REINDEX, perhaps queued behind a long pg_dump).  The batch then runs as
 * it would have without the look and waits under the query's lock, where
 * a long wait is a batch in progress, not a worker that seems stuck (and
 * whose queries another worker would take over).
 */
static bool
offsets_at_hand(void)
{
	Oid			nsp = get_namespace_oid(STREAMING_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("offsets", nsp) : InvalidOid;
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	bool		all = true;

	if (!OidIsValid(relid) || !ConditionalLockRelationOid(relid, AccessShareLock))
		return false;
	rel = relation_open(relid, NoLock);
	indexes = RelationGetIndexList(rel);
	relation_close(rel, NoLock);
	foreach(lc, indexes)
	{
		if (!ConditionalLockRelationOid(lfirst_oid(lc), AccessShareLock))
		{
			all = false;
			break;
		}
	}
	list_free(indexes);
	return all;
}

/*
 * table_quiet is a worker's look at a query before its batch locks the
 * query's row (SourceRoutine.quiet).  It can tell that the batch would
 * find nothing when the last batch found nothing, the reader this process
 * keeps (holding its slot, or parked with its slot free: reader_park)
 * stands where the committed batches stopped, and the WAL flushed
 * since holds only records that give no row (harmless_record): the row
 * locks and empty commits of other queries' looks, checkpoints, another
 * database's work.  It reads record headers, no more than
 * TABLE_QUIET_BYTES past the reader, and locks nothing but the catalog it
 * reads the committed position from, and that only if it need not wait
 * (offsets_at_hand); it neither decodes nor moves the
 * reader, so a batch that runs later reads all of that WAL as it would
 * have.  A change to any table of this database, or a commit that may
 * carry rows, makes the batch run.
 */
static bool
table_quiet(const char *query, int32 query_id, Oid relid, TimestampTz *wake_at)
{
	char		name[NAMEDATALEN];
	TableReader *r;
	bool		held;
	XLogRecPtr	lsn;
	int64		seq;
	bool		mine;
	bool		recorded;
	PositionOrigin origin;
	TableSnapshot snap;
	XLogRecPtr	end;
	bool		quiet = false;

	slot_name(name, query_id, relid);
	held = reader != NULL && strcmp(reader->slot, name) == 0;
	r = held ? reader : parked_reader(name);
	if (r == NULL || !r->settled || r->busy || r->npending > 0 || r->source != relid)
		return false;
	if (held ? (MyReplicationSlot == NULL ||
				strcmp(NameStr(MyReplicationSlot->data.name), name) != 0 ||
				MyReplicationSlot->data.invalidated_at != InvalidXLogRecPtr) :
		!parked_slot_free(r))
		return false;
	/* where the batch would go on from, as table_plan_batch decides it */
	if (!offsets_at_hand())
		return false;
	recorded = read_position(query, relid, &lsn, &seq, &mine, &origin, &snap);
	if (mine || (recorded && origin.known && !origin_here(&origin, relid)) ||
		r->done_lsn != lsn || r->done_seq != seq || !same_snapshot(&r->snapshot, &snap))
		return false;

	end = GetFlushRecPtr(NULL);
	if (end > r->ctx->reader->EndRecPtr + TABLE_QUIET_BYTES)
		return false;
	if (r->quiet_upto < r->ctx->reader->EndRecPtr)
		r->quiet_upto = r->ctx->reader->EndRecPtr;
	if (r->quiet_upto < end)
	{
		/* the WAL reader allocates its buffers where it runs */
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		if (quiet_reader == NULL)
		{
			quiet_reader = XLogReaderAllocate(wal_segment_size, NULL,
											  XL_ROUTINE(.page_read = read_flushed_page,
														 .segment_open = wal_segment_open,
														 .segment_close = wal_segment_close),
											  NULL);
			if (quiet_reader == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory"),
						 errdetail("Failed while allocating a WAL reading processor.")));
		}
		XLogBeginRead(quiet_reader, r->quiet_upto);
		for (;;)
		{
			char	   *errm = NULL;

			wal_would_block = false;
			if (XLogReadRecord(quiet_reader, &errm) == NULL)
			{
				/* at the end of what is flushed: all of it was harmless */
				quiet = errm == NULL && wal_would_block;
				break;
			}
			if (!harmless_record(r, quiet_reader))
				break;
			r->quiet_upto = quiet_reader->EndRecPtr;
		}
		/* no WAL file stays open between looks */
		if (quiet_reader->seg.ws_file >= 0)
			wal_segment_close(quiet_reader);
		MemoryContextSwitchTo(old);
	}
	else
		quiet = true;
	if (!quiet)
		return false;
	/* a confirmation that waited for the WAL writer's flush */
	if (held)
		reader_confirm(r, InvalidXLogRecPtr);
	*wake_at = next_poll(r);
	return true;
}

/*
 * table_read_batch hands the planned rows to the batch, those to take
 * back as retracted rows; it may run twice (a retry record by record), so
 * it reads the plan from the start.
 */
static void
table_read_batch(SourceBatch *batch, bool careful)
{
	TablePlan  *plan = batch->private;
	int			natts = RelationGetDescr(batch->rel)->natts;
	TupleTableSlot *slot = MakeSingleTupleTableSlot(plan->desc, &TTSOpsMinimalTuple);

	tuplestore_rescan(plan->rows);
	while (tuplestore_gettupleslot(plan->rows, true, false, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		if (DatumGetBool(slot->tts_values[natts]))
			SourceBatchAddRetraction(batch, slot->tts_values, slot->tts_isnull);
		else
			SourceBatchAddRow(batch, slot->tts_values, slot->tts_isnull);
	}
	ExecDropSingleTupleTableSlot(slot);
	/*
	 * Read through: no retry comes (that follows an error), and a store
	 * that spilled to a temporary file closes it now, not at commit.
	 */
	tuplestore_clear(plan->rows);
}

/*
 * table_forget: a pool worker lets go of a query, or starts it afresh
 * after an error: another worker may take it now.  Its reader ends and
 * its slot is released; a slot held with no reader may be the query's
 * (reader_free keeps it) and is released too.  The readers of the
 * worker's other queries stay.
 */
static void
table_forget(const char *query, int slice)
{
	if ((reader != NULL && strcmp(reader->query, query) == 0) ||
		(reader == NULL && MyReplicationSlot != NULL))
		release_slot();
	discard_parked(NULL, query);
}

const SourceRoutine TableSourceRoutine = {
	.kind = "table",
	.default_schema = table_default_schema,
	.validate = table_validate,
	.check_schema = table_check_schema,
	.created = table_created,
	.prepare = table_prepare,
	.plan_batch = table_plan_batch,
	.read_batch = table_read_batch,
	.peek = NULL,
	.quiet = table_quiet,
	.forget = table_forget,
};
