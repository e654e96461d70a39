/*-------------------------------------------------------------------------
 *
 * formats.c
 *	  Format options, schema checks and dispatch of the record decoders,
 *	  and the machinery they share: line reading, and the per-record
 *	  subtransaction that turns a bad record into a dead letter (column
 *	  input is in column_input.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "formats/decoder.h"
#include "formats/format.h"
#include "streaming.h"

#define LINE_READER_BUFSIZE 65536

/*
 * The size up to which LineReaderOpen reads a file, or -1: FormatDecodeFile
 * sets it for the length of one call, so that every decoder reads a file of
 * the file source only as far as the batch planned.
 */
static int64 decode_read_limit = -1;

static const char *const format_keys[] = {
	"format", "header", "delimiter", "quote", "escape", "null", NULL
};

static char *
single_char_option(Jsonb *options, const char *key, const char *dflt)
{
	char	   *v = JsonbGetString(options, key);

	if (v == NULL)
		return pstrdup(dflt);
	if (strlen(v) != 1 || IS_HIGHBIT_SET(v[0]) || v[0] == '\n' || v[0] == '\r')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", key, v),
				 errhint("Use one single-byte character other than a newline.")));
	return v;
}

/*
 * FormatParseOptions reads and validates the format options.
 */
void
FormatParseOptions(Jsonb *options, FormatOptions *out)
{
	char	   *format = JsonbGetString(options, "format");

	memset(out, 0, sizeof(*out));
	EventTimeParseOptions(options, &out->event_time);
	if (format == NULL || strcmp(format, "csv") == 0)
		out->kind = STREAMING_FORMAT_CSV;
	else if (strcmp(format, "text") == 0)
		out->kind = STREAMING_FORMAT_TEXT;
	else if (strcmp(format, "json") == 0)
		out->kind = STREAMING_FORMAT_JSON;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"format\": \"%s\"", format),
				 errhint("Valid formats are csv, text and json.")));

	if (out->kind != STREAMING_FORMAT_CSV)
	{
		for (int i = 1; format_keys[i] != NULL; i++)
			if (JsonbGetKey(options, format_keys[i]) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" applies only to the csv format", format_keys[i])));
		return;
	}

	out->header = JsonbGetBool(options, "header", false);
	out->delimiter = single_char_option(options, "delimiter", ",");
	out->quote = single_char_option(options, "quote", "\"");
	out->escape = single_char_option(options, "escape", out->quote);
	out->null_string = JsonbGetString(options, "null");
	if (out->null_string == NULL)
		out->null_string = pstrdup("");
	if (out->delimiter[0] == out->quote[0])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"delimiter\" and \"quote\" must differ")));
}

/*
 * FormatCheckSchema: a text source has exactly one column, of type text
 * or varchar; csv and json fill any columns.
 */
void
FormatCheckSchema(const FormatOptions *opts, TupleDesc tupdesc)
{
	int			ncols = 0;
	Oid			type = InvalidOid;

	if (opts->kind != STREAMING_FORMAT_TEXT)
		return;
	for (int i = 0; i < tupdesc->natts; i++)
	{
		if (TupleDescAttr(tupdesc, i)->attisdropped)
			continue;
		ncols++;
		type = TupleDescAttr(tupdesc, i)->atttypid;
	}
	if (ncols != 1 || (type != TEXTOID && type != VARCHAROID))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a text source has exactly one column, of type text"),
				 errdetail("Each line of the input becomes the value of that column."),
				 errhint("Use schema => 'value text', or the csv or json format for several columns.")));
}

int64
FormatDecodeFile(const FormatOptions *opts, Relation rel, const char *path,
				 bool careful, FormatRowCallback row_cb,
				 FormatErrorCallback err_cb, void *arg, int64 max_rows,
				 int64 max_bytes)
{
	int64		saved = decode_read_limit;
	volatile int64 nrows = 0;

	decode_read_limit = max_bytes;
	PG_TRY();
	{
		switch (opts->kind)
		{
			case STREAMING_FORMAT_CSV:
				nrows = CsvDecodeFile(opts, rel, path, careful, row_cb, err_cb, arg, max_rows);
				break;
			case STREAMING_FORMAT_TEXT:
				nrows = TextDecodeFile(opts, rel, path, careful, row_cb, err_cb, arg, max_rows);
				break;
			case STREAMING_FORMAT_JSON:
				nrows = JsonDecodeFile(opts, rel, path, careful, row_cb, err_cb, arg, max_rows);
				break;
		}
	}
	PG_FINALLY();
	{
		decode_read_limit = saved;
	}
	PG_END_TRY();
	return nrows;
}

/* ------------------------------------------------------------------------
 * Line reading
 * ------------------------------------------------------------------------ */

/*
 * file_shrank reports a file that ended before the size the batch planned
 * to read: it was truncated or rewritten after it appeared.  The batch
 * fails, so nothing is recorded as processed that was not read.
 */
static void
file_shrank(const char *path, int64 planned, int64 found)
{
	/* a serialization failure: the input changed under the batch; retry it */
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("file \"%s\" shrank after the batch was planned", path),
			 errdetail("It had " INT64_FORMAT " bytes when the batch was planned and has " INT64_FORMAT " now.",
					   planned, found),
			 errhint("A file must be complete when it appears in the directory and must not change afterwards. "
					 "The batch was not committed; running it again reads the file as it is then.")));
}

/*
 * LineReaderOpen opens a file for reading; with a read limit set (see
 * decode_read_limit), the file must have at least that many bytes.
 */
void
LineReaderOpen(LineReader *reader, const char *path)
{
	memset(reader, 0, sizeof(*reader));
	reader->path = path;
	reader->limit = decode_read_limit;
	initStringInfo(&reader->position);
	appendStringInfo(&reader->position, "%s:", path);
	reader->position_prefix = reader->position.len;
	reader->file = AllocateFile(path, PG_BINARY_R);
	/* a planned file, readable then: it changed under the batch; retry */
	if (reader->file == NULL && reader->limit >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not open file \"%s\" for reading: %m", path),
				 errdetail("The file could be read when the batch was planned."),
				 errhint("The batch was not committed; running it again plans the files as they are then.")));
	if (reader->file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\" for reading: %m", path)));
	if (reader->limit >= 0)
	{
		struct stat st;

		if (fstat(fileno(reader->file), &st) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", path)));
		if (st.st_size < reader->limit)
		{
			FreeFile(reader->file);
			reader->file = NULL;
			file_shrank(path, reader->limit, st.st_size);
		}
	}
	initStringInfo(&reader->line);
	reader->buf = palloc(LINE_READER_BUFSIZE);
}

/*
 * LineReaderFill reads the next block of the file into the buffer, never
 * beyond the read limit; false at the end of the file (or of the limit).
 */
bool
LineReaderFill(LineReader *reader)
{
	size_t		want = LINE_READER_BUFSIZE;

	reader->buf_pos = 0;
	reader->buf_len = 0;
	if (reader->eof)
		return false;
	CHECK_FOR_INTERRUPTS();
	if (reader->limit >= 0 && (int64) want > reader->limit - reader->consumed)
		want = (size_t) (reader->limit - reader->consumed);
	if (want > 0)
		reader->buf_len = fread(reader->buf, 1, want, reader->file);
	reader->consumed += reader->buf_len;
	if (reader->buf_len < want)
	{
		if (ferror(reader->file))
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", reader->path)));
		reader->eof = true;
		if (reader->limit >= 0 && reader->consumed < reader->limit)
			file_shrank(reader->path, reader->limit, reader->consumed);
	}
	if (reader->limit >= 0 && reader->consumed >= reader->limit)
		reader->eof = true;
	return reader->buf_len > 0;
}

/*
 * LineReaderNext reads the next physical line, newline included (the last
 * line of a file may have none); false at end of file.  Any bytes, NUL
 * included, are part of a line.
 */
bool
LineReaderNext(LineReader *reader)
{
	resetStringInfo(&reader->line);
	for (;;)
	{
		char	   *start;
		char	   *nl;
		size_t		avail;

		if (reader->buf_pos >= reader->buf_len && !LineReaderFill(reader))
			break;
		start = reader->buf + reader->buf_pos;
		avail = reader->buf_len - reader->buf_pos;
		nl = memchr(start, '\n', avail);
		if (nl != NULL)
		{
			appendBinaryStringInfo(&reader->line, start, nl - start + 1);
			reader->buf_pos += nl - start + 1;
			break;
		}
		appendBinaryStringInfo(&reader->line, start, avail);
		reader->buf_pos = reader->buf_len;
	}
	if (reader->line.len == 0)
		return false;
	reader->line_number++;
	return true;
}

void
LineReaderClose(LineReader *reader)
{
	if (reader->file != NULL)
		FreeFile(reader->file);
	reader->file = NULL;
}

/*
 * LineReaderPosition names a line of the file, "path:line_number", for
 * dead letters and errors: a string valid until the next call, made
 * without formatting the path again at every line.
 */
const char *
LineReaderPosition(LineReader *reader, int64 line_number)
{
	reader->position.len = reader->position_prefix;
	enlargeStringInfo(&reader->position, MAXINT8LEN + 1);
	reader->position.len += pg_lltoa(line_number, reader->position.data + reader->position.len);
	return reader->position.data;
}

/* LineContentLength: the length of a line without its \n or \r\n */
int
LineContentLength(const char *line, int len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

/* ------------------------------------------------------------------------
 * Rows a row callback rejects
 * ------------------------------------------------------------------------ */

/*
 * The record whose row is being handed to a row callback.  Row callbacks
 * have no way to return an error, and the Kafka source fills metadata
 * columns after the decoder is done, so the record is named here and
 * forgotten once the row is taken (FormatForgetRow, which SourceBatchAddRow
 * and SourceBatchReset call).
 */
typedef struct CurrentRecord
{
	FormatErrorCallback err_cb;
	void	   *arg;
	const char *position;
	const char *payload;
	int			payload_len;
} CurrentRecord;

static CurrentRecord current_record;
static bool has_current_record = false;

/*
 * FormatNameRecord names the record whose row comes next; its strings must
 * live until the row is taken.
 */
void
FormatNameRecord(FormatErrorCallback err_cb, void *arg, const char *position,
				 const char *payload, int payload_len)
{
	current_record.err_cb = err_cb;
	current_record.arg = arg;
	current_record.position = position;
	current_record.payload = payload;
	current_record.payload_len = payload_len;
	has_current_record = true;
}

void
FormatForgetRow(void)
{
	has_current_record = false;
}

/*
 * FormatEmitRow hands a decoded row to the row callback, naming its record
 * for the while.
 */
void
FormatEmitRow(FormatRowCallback row_cb, FormatErrorCallback err_cb, void *arg,
			  Datum *values, bool *nulls, const char *position,
			  const char *payload, int payload_len)
{
	FormatNameRecord(err_cb, arg, position, payload, payload_len);
	row_cb(arg, values, nulls);
	FormatForgetRow();
}

bool
FormatRejectRow(const char *message)
{
	CurrentRecord rec = current_record;

	if (!has_current_record)
		return false;
	has_current_record = false;
	rec.err_cb(rec.arg, rec.position, rec.payload, rec.payload_len, message);
	return true;
}

/*
 * RunRecord runs the decoding of one record.  In careful mode it runs in a
 * subtransaction, as a PL/pgSQL exception block does, and an error is
 * reported to err_cb instead of aborting the batch.
 */
bool
RunRecord(bool careful, RecordWork work, void *arg,
		  FormatErrorCallback err_cb, void *err_arg,
		  const char *position, const char *payload, int payload_len)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	if (!careful)
	{
		work(arg);
		return true;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		work(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
			edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY)
			ReThrowError(edata);
		err_cb(err_arg, position, payload, payload_len, edata->message);
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}
