/*-------------------------------------------------------------------------
 *
 * file_sink.c
 *	  The file sink: the rows each batch writes, as one csv or JSON-lines
 *	  file per batch in a directory, exactly once.
 *
 * A batch writes its rows to a hidden temporary file, flushes it to disk,
 * and renames it to part-<batch id>.<csv|json> before its transaction
 * commits; the same transaction records the file in streaming.sink_files,
 * the manifest.  So a committed batch always has its file, and a batch
 * that rolls back removes its file again (a transaction callback).  After a
 * crash between the rename and the commit, the batch is run again under
 * the same batch id over the same input and replaces the file: a file of
 * the directory is either listed in the manifest or about to be replaced.
 *
 * Rows reach the file as the batch statement produces them (a DestReceiver
 * in place of SPI's tuple table), so a large batch is never held in memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/file_perm.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "sinks/sink.h"

struct FileSink
{
	const SinkOptions *opts;
	char	   *tmp_path;
	char	   *final_path;
	FILE	   *file;
	StringInfoData line;
	TupleDesc	desc;			/* of the rows written, set by the first */
	FmgrInfo   *out;			/* output function per column */
	char	   *category;		/* per column: 'n'umber, 'b'ool, 'j'son, 't'ime, 's'tring */
	int64		rows;
	int64		bytes;
};

/* files a transaction in progress has written: removed if it aborts */
static List *pending_files = NIL;
static bool callback_registered = false;

static void
file_sink_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		foreach(lc, pending_files)
			(void) unlink((char *) lfirst(lc));
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		list_free_deep(pending_files);
		pending_files = NIL;
	}
}

static void
remember_file(const char *path)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (!callback_registered)
	{
		RegisterXactCallback(file_sink_xact_callback, NULL);
		callback_registered = true;
	}
	pending_files = lappend(pending_files, pstrdup(path));
	MemoryContextSwitchTo(old);
}

/*
 * FileSinkCheckPath validates the directory at create_query, creating it
 * if it is missing.
 */
void
FileSinkCheckPath(const char *path)
{
	struct stat st;

	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"path\": \"%s\" is not an absolute path", path)));
	if (stat(path, &st) != 0)
	{
		if (errno != ENOENT || pg_mkdir_p(pstrdup(path), pg_dir_create_mode) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", path),
					 errhint("The server must be able to write the directory.")));
	}
	else if (!S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"path\": \"%s\" is not a directory", path)));
	if (access(path, W_OK | X_OK) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write to directory \"%s\": %m", path),
				 errhint("The server must be able to write the directory.")));
}

/*
 * FileSinkBegin opens the file of a batch.  A file of the same batch id
 * can only be left from a try of the batch that did not commit: it goes.
 */
FileSink *
FileSinkBegin(const SinkOptions *opts, int64 batch_id)
{
	FileSink   *fs = palloc0(sizeof(FileSink));
	const char *ext = opts->json ? "json" : "csv";

	fs->opts = opts;
	fs->final_path = psprintf("%s/part-%010lld.%s", opts->path, (long long) batch_id, ext);
	fs->tmp_path = psprintf("%s/.part-%010lld.%s.tmp", opts->path, (long long) batch_id, ext);
	(void) unlink(fs->final_path);
	remember_file(fs->tmp_path);
	fs->file = AllocateFile(fs->tmp_path, PG_BINARY_W);
	if (fs->file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", fs->tmp_path)));
	initStringInfo(&fs->line);
	return fs;
}

static void
setup_columns(FileSink *fs, TupleDesc desc, int first)
{
	int			n = desc->natts - first;

	fs->desc = CreateTupleDescCopy(desc);
	fs->out = palloc0(sizeof(FmgrInfo) * Max(n, 1));
	fs->category = palloc0(Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		Oid			typid = TupleDescAttr(desc, first + i)->atttypid;
		Oid			outfn;
		bool		varlena;

		getTypeOutputInfo(typid, &outfn, &varlena);
		fmgr_info(outfn, &fs->out[i]);
		switch (getBaseType(typid))
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
				fs->category[i] = 'n';
				break;
			case BOOLOID:
				fs->category[i] = 'b';
				break;
			case JSONOID:
			case JSONBOID:
				fs->category[i] = 'j';
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				fs->category[i] = 't';
				break;
			case TSTZRANGEOID:
				fs->category[i] = 'w';
				break;
			default:
				fs->category[i] = 's';
		}
	}
	if (fs->opts->header && !fs->opts->json)
	{
		for (int i = 0; i < n; i++)
		{
			if (i > 0)
				appendStringInfoChar(&fs->line, ',');
			appendStringInfoString(&fs->line, NameStr(TupleDescAttr(desc, first + i)->attname));
		}
		appendStringInfoChar(&fs->line, '\n');
	}
}

static void
append_csv_value(StringInfo buf, const char *v)
{
	bool		quote = v[0] == '\0' || strpbrk(v, ",\"\n\r") != NULL;

	if (!quote)
	{
		appendStringInfoString(buf, v);
		return;
	}
	appendStringInfoChar(buf, '"');
	for (const char *p = v; *p; p++)
	{
		if (*p == '"')
			appendStringInfoChar(buf, '"');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '"');
}

static void
append_json_value(FileSink *fs, int i, Datum value, Oid typid)
{
	StringInfo	buf = &fs->line;
	char		tbuf[MAXDATELEN + 1];
	char	   *v;

	switch (fs->category[i])
	{
		case 't':
			appendStringInfoChar(buf, '"');
			appendStringInfoString(buf, JsonEncodeDateTime(tbuf, value, getBaseType(typid), NULL));
			appendStringInfoChar(buf, '"');
			return;
		case 'n':
			v = OutputFunctionCall(&fs->out[i], value);
			/* NaN and the infinities are no JSON numbers */
			if (strspn(v, "0123456789+-.eE") == strlen(v) && strpbrk(v, "0123456789") != NULL)
				appendStringInfoString(buf, v);
			else
				escape_json(buf, v);
			return;
		case 'b':
		case 'j':
			appendStringInfoString(buf, OutputFunctionCall(&fs->out[i], value));
			return;
		case 'w':
			{
				/* a window as Spark writes one: {"start": …, "end": …} */
				RangeType  *range = DatumGetRangeTypeP(value);
				TypeCacheEntry *tc = lookup_type_cache(getBaseType(typid), TYPECACHE_RANGE_INFO);
				RangeBound	lower;
				RangeBound	upper;
				bool		empty;

				range_deserialize(tc, range, &lower, &upper, &empty);
				appendStringInfoString(buf, "{\"start\": ");
				if (empty || lower.infinite)
					appendStringInfoString(buf, "null");
				else
					appendStringInfo(buf, "\"%s\"", JsonEncodeDateTime(tbuf, lower.val, TIMESTAMPTZOID, NULL));
				appendStringInfoString(buf, ", \"end\": ");
				if (empty || upper.infinite)
					appendStringInfoString(buf, "null");
				else
					appendStringInfo(buf, "\"%s\"", JsonEncodeDateTime(tbuf, upper.val, TIMESTAMPTZOID, NULL));
				appendStringInfoChar(buf, '}');
				return;
			}
		default:
			escape_json(buf, OutputFunctionCall(&fs->out[i], value));
	}
}

/*
 * file_sink_write adds one row: columns first (0-based) onwards of the slot.
 */
static void
file_sink_write(FileSink *fs, TupleTableSlot *slot, int first)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;
	int			n = desc->natts - first;

	if (fs->desc == NULL)
		setup_columns(fs, desc, first);
	slot_getallattrs(slot);
	if (fs->opts->json)
		appendStringInfoChar(&fs->line, '{');
	for (int i = 0; i < n; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, first + i);
		bool		isnull = slot->tts_isnull[first + i];
		Datum		value = slot->tts_values[first + i];

		if (fs->opts->json)
		{
			if (i > 0)
				appendStringInfoString(&fs->line, ", ");
			escape_json(&fs->line, NameStr(att->attname));
			appendStringInfoString(&fs->line, ": ");
			if (isnull)
				appendStringInfoString(&fs->line, "null");
			else
				append_json_value(fs, i, value, att->atttypid);
		}
		else
		{
			if (i > 0)
				appendStringInfoChar(&fs->line, ',');
			if (isnull)
				continue;
			/* times in ISO 8601 whatever the DateStyle of who runs the batch */
			if (fs->category[i] == 't')
			{
				char		tbuf[MAXDATELEN + 1];

				append_csv_value(&fs->line, JsonEncodeDateTime(tbuf, value, getBaseType(att->atttypid), NULL));
			}
			else
				append_csv_value(&fs->line, OutputFunctionCall(&fs->out[i], value));
		}
	}
	if (fs->opts->json)
		appendStringInfoChar(&fs->line, '}');
	appendStringInfoChar(&fs->line, '\n');
	if (fwrite(fs->line.data, 1, fs->line.len, fs->file) != (size_t) fs->line.len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", fs->tmp_path)));
	fs->bytes += fs->line.len;
	fs->rows++;
	resetStringInfo(&fs->line);
}

/*
 * The receiver of a batch or close statement: its rows are the counts
 * (columns 1 .. first) followed by a written row, or by NULLs when the
 * count at count_column (1-based) is zero.
 */
typedef struct FileSinkReceiver
{
	DestReceiver pub;
	FileSink   *fs;
	int			first;
	int			count_column;
	int			ncounts;
	int64		counts[4];
	bool		got_counts;
	MemoryContext rowcxt;
} FileSinkReceiver;

static bool
receive_slot(TupleTableSlot *slot, DestReceiver *self)
{
	FileSinkReceiver *r = (FileSinkReceiver *) self;
	MemoryContext old;

	slot_getallattrs(slot);
	if (!r->got_counts)
	{
		for (int i = 0; i < r->ncounts; i++)
			r->counts[i] = slot->tts_isnull[i] ? 0 : DatumGetInt64(slot->tts_values[i]);
		r->got_counts = true;
	}
	if (r->counts[r->count_column - 1] == 0)
		return true;
	old = MemoryContextSwitchTo(r->rowcxt);
	file_sink_write(r->fs, slot, r->first);
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->rowcxt);
	return true;
}

static void
receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
receiver_shutdown(DestReceiver *self)
{
}

static void
receiver_destroy(DestReceiver *self)
{
	MemoryContextDelete(((FileSinkReceiver *) self)->rowcxt);
	pfree(self);
}

/*
 * FileSinkReceiverCreate makes the receiver for a statement whose first
 * ncounts columns are counts; written rows start at column first + 1, and
 * there are none when the count at count_column is zero.
 */
DestReceiver *
FileSinkReceiverCreate(FileSink *fs, int ncounts, int count_column)
{
	FileSinkReceiver *r = palloc0(sizeof(FileSinkReceiver));

	Assert(ncounts <= lengthof(r->counts));
	r->pub.receiveSlot = receive_slot;
	r->pub.rStartup = receiver_startup;
	r->pub.rShutdown = receiver_shutdown;
	r->pub.rDestroy = receiver_destroy;
	/* not DestNone: SPI reports a discarded SELECT as a utility statement */
	r->pub.mydest = DestTuplestore;
	r->fs = fs;
	r->first = ncounts;
	r->ncounts = ncounts;
	r->count_column = count_column;
	r->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming file sink row",
									  ALLOCSET_DEFAULT_SIZES);
	return (DestReceiver *) r;
}

/* the counts the receiver saw (zeros when the statement returned no row) */
int64
FileSinkReceiverCount(DestReceiver *self, int column)
{
	return ((FileSinkReceiver *) self)->counts[column - 1];
}

/*
 * FileSinkFinish makes the batch's file durable under its final name, or
 * removes it when the batch wrote no row.  Returns the rows written; *path
 * and *bytes describe the file.
 */
int64
FileSinkFinish(FileSink *fs, char **path, int64 *bytes)
{
	if (fflush(fs->file) != 0 || pg_fsync(fileno(fs->file)) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", fs->tmp_path)));
	if (FreeFile(fs->file) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", fs->tmp_path)));
	fs->file = NULL;
	if (fs->rows == 0)
	{
		(void) unlink(fs->tmp_path);
		*path = NULL;
		*bytes = 0;
		return 0;
	}
	remember_file(fs->final_path);
	if (rename(fs->tmp_path, fs->final_path) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m", fs->tmp_path, fs->final_path)));
	/* an error, not the PANIC that a data directory's fsync failure takes */
	(void) fsync_fname_ext(fs->opts->path, true, false, ERROR);
	*path = fs->final_path;
	*bytes = fs->bytes;
	return fs->rows;
}
