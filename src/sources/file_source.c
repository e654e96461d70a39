/*-------------------------------------------------------------------------
 *
 * file_source.c
 *	  The file source: new files in a directory, each processed once, in
 *	  modification-time order, decoded by the csv, text or json format.
 *
 * The offsets of a file source are the files themselves: each processed
 * file is a row of streaming.offsets (partition = path, offset = size),
 * committed in the batch's transaction.  A file is expected to be complete
 * when it appears: writers create it under a name starting with "." or "_"
 * (which the source ignores) and rename it into place.
 *
 * A file that changes anyway is handled by one rule: a batch reads a file
 * up to the size it had when the batch was planned, never further.  A file
 * found shorter than that fails the batch (nothing is recorded as processed
 * that was not read).  A processed file that later grows is reported once
 * per process: a WARNING and the query's condition; its new bytes are not
 * read.
 *
 * A directory that is missing or unreadable, or a next file that the
 * server cannot read (permissions), is a condition to wait out, as a
 * broker that is down is for a Kafka source: a worker logs it once, shows
 * it as the query's condition and tries again with a backoff (doubling
 * from 100 ms up to 30 s), and goes on by itself once it can read.  The
 * files keep their order: the unreadable file and those after it wait.
 * run() in a session raises the error instead, as there is nobody to
 * retry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "access/xact.h"
#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "formats/format.h"
#include "slices.h"
#include "source.h"
#include "streaming.h"

typedef struct FileEntry
{
	char	   *path;
	off_t		size;
	struct timespec mtime;
} FileEntry;

typedef struct FilePlan
{
	FormatOptions format;
	List	   *files;			/* FileEntry of this batch */
	int64		processed_before;
} FilePlan;

/* retrying an unreadable directory or file: the backoff, doubling */
#define FILE_RETRY_MIN_MS	100
#define FILE_RETRY_MAX_MS	30000

/* a query's wait for its directory or next file, per worker */
typedef struct FileRetry
{
	Oid			relid;
	char	   *query;
	bool		failing;		/* logged, and the condition set */
	char	   *condition;		/* what it waits for, while failing */
	int			backoff_ms;
	TimestampTz next_attempt;
} FileRetry;

static List *file_retries = NIL;

/* the most files a batch may take (max_files_per_trigger) */
#define FILE_MAX_FILES_PER_TRIGGER 100000

/* every option of a file source: checked, and listed by the hint */
static const char *const file_options[] = {
	"path", "format", "header", "delimiter", "quote", "escape", "null",
	"max_files_per_trigger", "latest_first", "clean_source", "source_archive_dir",
	"event_time_format", "timezone", "max_event_time_ahead", NULL
};

typedef enum CleanSource
{
	CLEAN_OFF,
	CLEAN_ARCHIVE,
	CLEAN_DELETE
} CleanSource;

static CleanSource
clean_source(Jsonb *options)
{
	char	   *v = JsonbGetString(options, "clean_source");

	if (v == NULL || strcmp(v, "off") == 0)
		return CLEAN_OFF;
	if (strcmp(v, "archive") == 0)
		return CLEAN_ARCHIVE;
	if (strcmp(v, "delete") == 0)
		return CLEAN_DELETE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"clean_source\": \"%s\"", v),
			 errhint("Valid values are off, archive and delete.")));
	return CLEAN_OFF;			/* keep the compiler quiet */
}

/* max_files_per_trigger: 0 (no option) takes every new file */
static int64
max_files_per_trigger(Jsonb *options)
{
	return SourceGetIntOption(options, "max_files_per_trigger", 0, 1, FILE_MAX_FILES_PER_TRIGGER);
}

/*
 * file_validate checks the options of a file source: a readable absolute
 * directory, the format options, the batch limits.  Reading server files
 * is a privilege, as for COPY FROM a file.
 */
static void
file_validate(Jsonb *options)
{
	char	   *path;
	struct stat st;
	FormatOptions fmt;

	SourceCheckOptionKeys(options, "source kind \"file\"", file_options, NULL);

	if (!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create a file source"),
				 errdetail("Only roles with privileges of the \"pg_read_server_files\" role may read server files.")));

	path = JsonbGetString(options, "path");
	if (path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("file source needs option \"path\""),
				 errhint("Name the directory to read, e.g. options => '{\"path\": \"/data/in\"}'.")));
	if (!is_absolute_path(path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"path\": \"%s\"", path),
				 errhint("Use an absolute path of a directory.")));
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"path\": \"%s\" is not a directory", path),
				 errhint("Create the directory first; the server must be able to read it.")));

	(void) max_files_per_trigger(options);
	(void) JsonbGetBool(options, "latest_first", false);
	FormatParseOptions(options, &fmt);

	/* cleaning processed files up writes the directory */
	if (clean_source(options) != CLEAN_OFF &&
		!has_privs_of_role(GetUserId(), ROLE_PG_WRITE_SERVER_FILES))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set option \"clean_source\""),
				 errdetail("Only roles with privileges of the \"pg_write_server_files\" role may move or delete server files.")));
	if (clean_source(options) == CLEAN_ARCHIVE)
	{
		char	   *archive = JsonbGetString(options, "source_archive_dir");
		size_t		len = strlen(path);

		if (archive == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("clean_source \"archive\" needs option \"source_archive_dir\"")));
		if (!is_absolute_path(archive) || stat(archive, &st) != 0 || !S_ISDIR(st.st_mode))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"source_archive_dir\": \"%s\" is not a directory", archive),
					 errhint("Name an existing directory by its absolute path, on the file system of the source.")));
		if (strncmp(archive, path, len) == 0 && (archive[len] == '\0' || archive[len] == '/'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the source_archive_dir may not be inside the source's path")));
	}
	else if (JsonbGetKey(options, "source_archive_dir") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"source_archive_dir\" applies only to clean_source \"archive\"")));
}

/*
 * clean_file moves or deletes a file that a committed batch processed.  A
 * failure only warns: the file stays, recorded as processed.
 */
static void
clean_file(Jsonb *options, CleanSource how, const char *path)
{
	if (how == CLEAN_DELETE)
	{
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not delete processed file \"%s\": %m", path)));
	}
	else
	{
		const char *base = strrchr(path, '/');
		char	   *target = psprintf("%s/%s", JsonbGetString(options, "source_archive_dir"),
									  base ? base + 1 : path);

		if (rename(path, target) != 0 && errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not move processed file \"%s\" to \"%s\": %m", path, target)));
	}
}

static void
file_check_schema(Jsonb *options, TupleDesc tupdesc)
{
	FormatOptions fmt;

	FormatParseOptions(options, &fmt);
	FormatCheckSchema(&fmt, tupdesc);
}

static int
file_entry_cmp(const ListCell *a, const ListCell *b)
{
	FileEntry  *fa = lfirst(a);
	FileEntry  *fb = lfirst(b);

	if (fa->mtime.tv_sec != fb->mtime.tv_sec)
		return fa->mtime.tv_sec < fb->mtime.tv_sec ? -1 : 1;
	if (fa->mtime.tv_nsec != fb->mtime.tv_nsec)
		return fa->mtime.tv_nsec < fb->mtime.tv_nsec ? -1 : 1;
	return strcmp(fa->path, fb->path);
}

static int
file_entry_cmp_desc(const ListCell *a, const ListCell *b)
{
	return file_entry_cmp(b, a);
}

/*
 * list_files returns the regular files of the directory, oldest first
 * (newest first with latest_first), skipping names that start with "." or
 * "_", as files being written are expected to carry such names.  If the
 * directory cannot be opened, it raises the error, or with dir_errno sets
 * *dir_errno and returns NIL.
 */
static List *
list_files(const char *dirpath, bool latest_first, int *dir_errno)
{
	DIR		   *dir;
	struct dirent *de;
	List	   *files = NIL;

	dir = AllocateDir(dirpath);
	if (dir == NULL && dir_errno != NULL)
	{
		*dir_errno = errno;
		return NIL;
	}
	while ((de = ReadDir(dir, dirpath)) != NULL)
	{
		char	   *path;
		struct stat st;
		FileEntry  *fe;

		CHECK_FOR_INTERRUPTS();
		if (de->d_name[0] == '.' || de->d_name[0] == '_')
			continue;
		path = psprintf("%s/%s", dirpath, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		{
			pfree(path);
			continue;
		}
		fe = palloc(sizeof(FileEntry));
		fe->path = path;
		fe->size = st.st_size;
		fe->mtime = st.st_mtim;
		files = lappend(files, fe);
	}
	FreeDir(dir);

	list_sort(files, latest_first ? file_entry_cmp_desc : file_entry_cmp);
	return files;
}

/* a processed file; mine: recorded by the current transaction, uncommitted */
typedef struct ProcessedFile
{
	char		path[MAXPGPATH];
	bool		mine;
	int64		size;			/* the bytes that were read */
} ProcessedFile;

/*
 * processed_files reads the paths this query has already consumed from
 * this source into a hash set.
 */
static HTAB *
processed_files(SourceBatch *batch)
{
	HASHCTL		ctl;
	HTAB	   *seen;
	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		args[2];

	ctl.keysize = MAXPGPATH;
	ctl.entrysize = sizeof(ProcessedFile);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("streaming processed files", 256, &ctl,
					   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/*
	 * Not read-only: after waiting for the query's row lock, this must see
	 * the offsets that the runner we waited for committed.
	 */
	args[0] = CStringGetTextDatum(batch->query);
	args[1] = ObjectIdGetDatum(batch->relid);
	SPI_connect();
	if (CatalogExecute("SELECT partition, xmin, \"offset\" FROM streaming.offsets "
					   "WHERE query OPERATOR(pg_catalog.=) $1 AND source OPERATOR(pg_catalog.=) $2",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.offsets");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *p = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		bool		isnull;
		TransactionId xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[i],
																 SPI_tuptable->tupdesc, 2, &isnull));
		char		key[MAXPGPATH];
		ProcessedFile *pf;

		strlcpy(key, p, MAXPGPATH);
		CHECK_FOR_INTERRUPTS();
		pf = hash_search(seen, key, HASH_ENTER, NULL);
		pf->mine = TransactionIdIsCurrentTransactionId(xmin);
		pf->size = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
	}
	SPI_finish();
	return seen;
}

/*
 * Processed files that grew, already reported by this process ("relid/query/
 * path"); pending: reported by the transaction in progress, forgotten if it
 * aborts, as the condition it set is.
 */
typedef struct GrowthReport
{
	char		key[MAXPGPATH + 2 * NAMEDATALEN];
	bool		pending;
} GrowthReport;

static HTAB *growth_reports = NULL;
static bool growth_pending = false;

static void
growth_xact_callback(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS status;
	GrowthReport *r;
	bool		commit = event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT;

	if (!growth_pending ||
		(!commit && event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT))
		return;
	hash_seq_init(&status, growth_reports);
	while ((r = hash_seq_search(&status)) != NULL)
	{
		if (!r->pending)
			continue;
		if (commit)
			r->pending = false;
		else
			(void) hash_search(growth_reports, r->key, HASH_REMOVE, NULL);
	}
	growth_pending = false;
}

/*
 * report_growth reports, once, a processed file that has grown since: its
 * new bytes will not be read, which must not go unnoticed.  A WARNING names
 * the file and the query, and the query's condition (streaming.status) says
 * so until the query's worker restarts.
 */
static void
report_growth(SourceBatch *batch, const char *path, int64 read, int64 size)
{
	char		key[MAXPGPATH + 2 * NAMEDATALEN];
	GrowthReport *r;
	bool		found;
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	char	   *condition;

	if (growth_reports == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(GrowthReport);
		ctl.hcxt = TopMemoryContext;
		growth_reports = hash_create("streaming grown files", 16, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		RegisterXactCallback(growth_xact_callback, NULL);
	}
	snprintf(key, sizeof(key), "%u/%s/%s", batch->relid, batch->query, path);
	if (hash_search(growth_reports, key, HASH_FIND, NULL) != NULL)
		return;

	ereport(WARNING,
			(errmsg("file \"%s\" of source \"%s\" grew after query \"%s\" processed it",
					path, batch->name, batch->query),
			 errdetail(INT64_FORMAT " bytes were read; it has " INT64_FORMAT " now. A file is read once, "
					   "up to its size when the batch was planned: the bytes added later are not read.",
					   read, size),
			 errhint("Write each file under a name starting with \".\" or \"_\" and rename it into place "
					 "once complete; put more data in new files.")));
	condition = psprintf("file \"%s\" grew after it was processed (" INT64_FORMAT " bytes read, "
						 INT64_FORMAT " now); the added bytes are not read", path, read, size);
	args[0] = CStringGetTextDatum(batch->query);
	args[1] = CStringGetTextDatum(condition);
	SPI_connect();
	if (CatalogExecute("UPDATE streaming.queries SET condition = $2 WHERE name OPERATOR(pg_catalog.=) $1",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");
	SPI_finish();

	r = hash_search(growth_reports, key, HASH_ENTER, &found);
	r->pending = true;
	growth_pending = true;
}

static Jsonb *
files_offset_jsonb(int64 nfiles)
{
	char	   *s = psprintf("{\"files\": " INT64_FORMAT "}", nfiles);

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s)));
}

static TimestampTz
timespec_to_timestamptz(const struct timespec *ts)
{
	return (TimestampTz) ts->tv_sec * USECS_PER_SEC + ts->tv_nsec / 1000 -
		((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC);
}

/*
 * check_owner_file_rights checks, at every batch, that the source's owner
 * still has the rights that creating it took (pg_read_server_files, and
 * pg_write_server_files to clean files up): a revoked role stops reading
 * and deleting server files at once, not only for new sources.
 */
static void
check_owner_file_rights(Oid relid, CleanSource clean)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);

	if (!has_privs_of_role(owner, ROLE_PG_READ_SERVER_FILES) ||
		(clean != CLEAN_OFF && !has_privs_of_role(owner, ROLE_PG_WRITE_SERVER_FILES)))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read file source \"%s\"", get_rel_name(relid)),
				 errdetail("Its owner \"%s\" no longer has the privileges of the \"%s\" role.",
						   GetUserNameFromId(owner, false),
						   has_privs_of_role(owner, ROLE_PG_READ_SERVER_FILES)
						   ? "pg_write_server_files" : "pg_read_server_files")));
}

/* file_retry_state: this worker's retry state of the batch's query */
static FileRetry *
file_retry_state(SourceBatch *batch)
{
	ListCell   *lc;
	FileRetry  *r;

	foreach(lc, file_retries)
	{
		r = lfirst(lc);
		if (r->relid == batch->relid && strcmp(r->query, batch->query) == 0)
			return r;
	}
	r = MemoryContextAllocZero(TopMemoryContext, sizeof(FileRetry));
	r->relid = batch->relid;
	r->query = MemoryContextStrdup(TopMemoryContext, batch->query);
	r->backoff_ms = FILE_RETRY_MIN_MS;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		file_retries = lappend(file_retries, r);
		MemoryContextSwitchTo(old);
	}
	return r;
}

/*
 * file_unavailable reports a directory or file that cannot be read now
 * (what, errno err): in a session, as the error; in a worker, by a LOG line
 * the first time, the query's condition, and a next attempt after the
 * backoff.
 */
static void
file_unavailable(SourceBatch *batch, FileRetry *retry, const char *what, int err)
{
	char	   *why = pstrdup(strerror(err));

	if (retry == NULL)
	{
		errno = err;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read %s of file source \"%s\": %m", what, batch->name),
				 errhint("A query's worker waits for it and goes on once the server can read it.")));
	}
	if (!retry->failing)
		ereport(LOG,
				(errmsg("streaming query \"%s\": could not read %s of file source \"%s\": %s",
						batch->query, what, batch->name, why),
				 errdetail("Retrying with backoff up to %d seconds.", FILE_RETRY_MAX_MS / 1000)));
	retry->failing = true;
	SourceSetCondition("waiting for %s of file source \"%s\": %s", what, batch->name, why);
	SourceKeepCondition(&retry->condition);
	retry->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), retry->backoff_ms);
	retry->backoff_ms = Min(retry->backoff_ms * 2, FILE_RETRY_MAX_MS);
	/* a watched directory may wake the worker sooner; the retry is due then */
	if (batch->wake_at == 0 || batch->wake_at > retry->next_attempt)
		batch->wake_at = retry->next_attempt;
}

/* file_available: the source can be read again (after file_unavailable) */
static void
file_available(SourceBatch *batch, FileRetry *retry)
{
	if (retry == NULL || !retry->failing)
		return;
	ereport(LOG,
			(errmsg("streaming query \"%s\": file source \"%s\" can be read again",
					batch->query, batch->name)));
	retry->failing = false;
	retry->backoff_ms = FILE_RETRY_MIN_MS;
	retry->next_attempt = 0;
	SourceClearCondition();
	SourceKeepCondition(&retry->condition);
}

/*
 * The directories of the file sources that a pool worker's queries wait
 * on are watched with one inotify instance per process (instances are few:
 * 128 per OS user by default), so that a new or grown file wakes the
 * worker at once and an idle query costs nothing.  The worker reads the
 * instance empty when it wakes (SourceBatch.wake_drain).  Filesystems that
 * report no changes (NFS) are looked at every FILE_WATCH_POLL_MS anyway.
 */
#define FILE_WATCH_POLL_MS 60000

static int	watch_fd = -1;

/* watch a directory; returns the descriptor to wait on, or -1 */
static int
watch_directory(const char *dirpath)
{
	if (watch_fd < 0)
	{
		watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (watch_fd < 0)
			return -1;
	}
	/* again each time: a directory that went and came back is a new one */
	if (inotify_add_watch(watch_fd, dirpath,
						  IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY |
						  IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) < 0)
		return -1;
	return watch_fd;
}

/*
 * file_readable tells whether the server can open a file now; errno says
 * why not.
 */
static bool
file_readable(const char *path)
{
	int			fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);

	if (fd < 0)
		return false;
	CloseTransientFile(fd);
	return true;
}

/*
 * file_plan_batch chooses the files of the next batch: those not yet
 * processed, in order, up to max_files_per_trigger; with 'available_now',
 * only those modified before the run began.
 */
static bool
file_plan_batch(SourceBatch *batch)
{
	MemoryContext old = MemoryContextSwitchTo(batch->mcxt);
	FilePlan   *plan = palloc0(sizeof(FilePlan));
	char	   *dirpath = JsonbGetString(batch->options, "path");
	int64		max_files = batch->read_all ? 0 : max_files_per_trigger(batch->options);
	bool		latest_first = JsonbGetBool(batch->options, "latest_first", false);
	CleanSource clean = clean_source(batch->options);
	FileRetry  *retry = IsBackgroundWorker ? file_retry_state(batch) : NULL;
	HTAB	   *seen;
	List	   *files;
	int			dir_errno = 0;
	ListCell   *lc;

	check_owner_file_rights(batch->relid, clean);

	/* waiting for the directory or a file: not before the next attempt */
	if (retry != NULL && retry->failing && GetCurrentTimestamp() < retry->next_attempt)
	{
		SourceRepeatCondition(retry->condition);
		batch->wake_at = retry->next_attempt;
		MemoryContextSwitchTo(old);
		return false;
	}
	/* watched before it is listed: nothing that comes after goes unseen */
	if (batch->live && IsBackgroundWorker)
	{
		int			fd = watch_directory(dirpath);

		if (fd >= 0)
		{
			batch->wake_fd = fd;
			batch->wake_drain = true;
			batch->wake_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), FILE_WATCH_POLL_MS);
		}
	}
	files = list_files(dirpath, latest_first, &dir_errno);
	if (dir_errno != 0)
	{
		file_unavailable(batch, retry, psprintf("directory \"%s\"", dirpath), dir_errno);
		MemoryContextSwitchTo(old);
		return false;
	}

	seen = processed_files(batch);
	FormatParseOptions(batch->options, &plan->format);
	plan->processed_before = hash_get_num_entries(seen);

	foreach(lc, files)
	{
		FileEntry  *fe = lfirst(lc);
		char		key[MAXPGPATH];
		SourceOffset *off;
		ProcessedFile *pf;

		CHECK_FOR_INTERRUPTS();
		/* another slice's file (slices.c) */
		if (batch->nslices > 1 && SliceOfFile(fe->path, batch->nslices) != batch->slice)
			continue;
		strlcpy(key, fe->path, MAXPGPATH);
		if ((pf = hash_search(seen, key, HASH_FIND, NULL)) != NULL)
		{
			if (fe->size > pf->size)
				report_growth(batch, fe->path, pf->size, fe->size);

			/*
			 * Processed by a committed batch: clean it up, if asked to.  Not
			 * one that an earlier batch of this transaction (run() runs
			 * several in one) recorded: that may still roll back.
			 */
			if (clean != CLEAN_OFF && !pf->mine)
				clean_file(batch->options, clean, fe->path);
			continue;
		}
		/* 'available_now': files that came after the run began wait */
		if (batch->available_now != 0 &&
			timespec_to_timestamptz(&fe->mtime) > batch->available_now)
			continue;
		/* a file for the next batch: this one has all it may take */
		if (max_files > 0 && list_length(plan->files) >= max_files)
			break;
		/* an unreadable file waits, and so do those after it */
		if (!file_readable(fe->path))
		{
			int			err = errno;

			if (err == ENOENT)
				continue;		/* gone since it was listed */
			if (plan->files == NIL)
			{
				hash_destroy(seen);
				file_unavailable(batch, retry, psprintf("file \"%s\"", fe->path), err);
				MemoryContextSwitchTo(old);
				return false;
			}
			break;
		}
		plan->files = lappend(plan->files, fe);
		off = palloc(sizeof(SourceOffset));
		off->partition = fe->path;
		off->offset = fe->size;
		batch->offsets = lappend(batch->offsets, off);
	}
	/* every file listed taken (none left by the limit, nor one that waits) */
	batch->drained = lc == NULL;
	hash_destroy(seen);
	file_available(batch, retry);

	batch->private = plan;
	batch->start_offset = files_offset_jsonb(plan->processed_before);
	batch->end_offset = files_offset_jsonb(plan->processed_before + list_length(plan->files));
	MemoryContextSwitchTo(old);

	return plan->files != NIL;
}

static void
file_row(void *arg, Datum *values, bool *nulls)
{
	SourceBatchAddRow((SourceBatch *) arg, values, nulls);
}

static void
file_error(void *arg, const char *position, const char *payload, int len,
		   const char *message)
{
	SourceBatchAddDeadLetter((SourceBatch *) arg, position, payload, len, message);
}

/*
 * file_read_batch decodes the planned files, in order, each up to the size
 * it had when the batch was planned.
 */
static void
file_read_batch(SourceBatch *batch, bool careful)
{
	FilePlan   *plan = batch->private;
	ListCell   *lc;

	foreach(lc, plan->files)
	{
		FileEntry  *fe = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		FormatDecodeFile(&plan->format, batch->rel, fe->path, careful,
						 file_row, file_error, batch, -1, (int64) fe->size);
	}
}

/*
 * file_peek returns the first rows of the files present now, oldest first.
 */
static void
file_peek(SourceBatch *batch, int64 max_rows)
{
	FormatOptions fmt;
	ListCell   *lc;

	check_owner_file_rights(batch->relid, CLEAN_OFF);
	FormatParseOptions(batch->options, &fmt);
	foreach(lc, list_files(JsonbGetString(batch->options, "path"), false, NULL))
	{
		FileEntry  *fe = lfirst(lc);

		CHECK_FOR_INTERRUPTS();
		if (batch->input_rows >= max_rows)
			break;
		FormatDecodeFile(&fmt, batch->rel, fe->path, true,
						 file_row, file_error, batch, max_rows - batch->input_rows, -1);
	}
}

/*
 * file_default_schema: a text file source has Spark's default schema, one
 * value column; the other formats need their columns declared.
 */
static const char *
file_default_schema(Jsonb *options)
{
	FormatOptions fmt;

	FormatParseOptions(options, &fmt);
	return fmt.kind == STREAMING_FORMAT_TEXT ? "value text" : NULL;
}

/*
 * file_start_offsets gives the files that reset_query() records as
 * processed, so that the next batch reads the others: from a time, the
 * files modified before it; from offsets, the files named there, each of
 * which must be a file of the directory now, its offset the bytes read (at
 * most its size).  From the earliest, none: every file present is read.
 */
static List *
file_start_offsets(Oid relid, const char *source, Jsonb *options, const SourceStart *start)
{
	char	   *dirpath = JsonbGetString(options, "path");
	List	   *result = NIL;
	List	   *files;
	int			dir_errno = 0;
	ListCell   *lc;

	if (start->kind == SOURCE_START_EARLIEST)
		return NIL;
	/* the directory is listed with the rights a batch reads it with */
	check_owner_file_rights(relid, CLEAN_OFF);
	files = list_files(dirpath, false, &dir_errno);
	if (dir_errno != 0)
	{
		errno = dir_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read directory \"%s\" of source \"%s\": %m", dirpath, source)));
	}
	if (start->kind == SOURCE_START_TIME)
	{
		foreach(lc, files)
		{
			FileEntry  *fe = lfirst(lc);
			SourceOffset *off;

			CHECK_FOR_INTERRUPTS();
			if (timespec_to_timestamptz(&fe->mtime) >= start->time)
				continue;
			off = palloc(sizeof(SourceOffset));
			off->partition = fe->path;
			off->offset = fe->size;
			result = lappend(result, off);
		}
		return result;
	}
	foreach(lc, start->offsets)
	{
		SourceOffset *off = lfirst(lc);
		FileEntry  *found = NULL;
		ListCell   *fc;

		foreach(fc, files)
		{
			FileEntry  *fe = lfirst(fc);

			CHECK_FOR_INTERRUPTS();
			if (strcmp(fe->path, off->partition) == 0)
			{
				found = fe;
				break;
			}
		}
		if (found == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is not a file of the directory of source \"%s\"", off->partition, source),
					 errdetail("The partitions of a file source are the paths of its files, as streaming.offsets records them: the directory \"%s\", a slash and the file's name.",
							   dirpath),
					 errhint("Name files that are in the directory now.")));
		if (off->offset > (int64) found->size)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("offset " INT64_FORMAT " of file \"%s\" is beyond its size, " INT64_FORMAT " bytes",
							off->offset, off->partition, (int64) found->size),
					 errdetail("The offset of a file is the number of its bytes that were read; a file named there counts as read.")));
		result = lappend(result, off);
	}
	return result;
}

const SourceRoutine FileSourceRoutine = {
	.kind = "file",
	.default_schema = file_default_schema,
	.validate = file_validate,
	.check_schema = file_check_schema,
	.plan_batch = file_plan_batch,
	.read_batch = file_read_batch,
	.peek = file_peek,
	.start_offsets = file_start_offsets,
};
