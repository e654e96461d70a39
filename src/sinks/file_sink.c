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
 * Rows reach the file as the batch statement produces them (rows.c's
 * DestReceiver in place of SPI's tuple table), so a large batch is never
 * held in memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "sinks/sink.h"

struct FileSink
{
	const SinkOptions *opts;
	char	   *tmp_path;
	char	   *final_path;
	FILE	   *file;
	StringInfoData line;
	bool		started;		/* the format is set up (by the first row) */
	RowFormat	format;
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
 * The files a file sink writes are for other programs to read, unlike the
 * server's own files (umask 0077): readable by all, as files that COPY TO
 * writes are, and so are the directories it creates.
 */
#define FILE_SINK_FILE_MODE	0644
#define FILE_SINK_DIR_MODE	0755

/*
 * FileSinkCheckPath validates the directory at create_query, creating it
 * (mode 0755, with any missing parent) if it is missing.
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
		mode_t		saved_umask;
		int			rc = -1;

		if (errno == ENOENT)
		{
			saved_umask = umask(022);
			rc = pg_mkdir_p(pstrdup(path), FILE_SINK_DIR_MODE);
			umask(saved_umask);
		}
		if (rc != 0)
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
	if (fchmod(fileno(fs->file), FILE_SINK_FILE_MODE) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set permissions of file \"%s\": %m", fs->tmp_path)));
	initStringInfo(&fs->line);
	return fs;
}

/*
 * FileSinkWrite adds one row: columns first (0-based) onwards of the slot.
 */
void
FileSinkWrite(void *arg, TupleTableSlot *slot, int first)
{
	FileSink   *fs = arg;

	/*
	 * The format is set up by the first row and lives as long as the sink:
	 * the receiver resets a context after each row, and deletes it after
	 * its statement.
	 */
	if (!fs->started)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(fs));

		RowFormatInit(&fs->format, slot->tts_tupleDescriptor, first, fs->opts->json);
		MemoryContextSwitchTo(old);
		if (fs->opts->header && !fs->opts->json)
		{
			RowFormatHeader(&fs->format, &fs->line);
			appendStringInfoChar(&fs->line, '\n');
		}
		fs->started = true;
	}
	RowFormatRow(&fs->format, slot, &fs->line);
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
