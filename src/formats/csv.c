/*-------------------------------------------------------------------------
 *
 * csv.c
 *	  The csv format, parsed by PostgreSQL's own COPY parser.
 *
 * The file is fed to BeginCopyFrom's data-source callback one physical line
 * per call, so that the bytes of the record being parsed (one line, or
 * several for a quoted field that spans lines) and its line number are
 * known when a record must go to the dead letters.
 *
 * Two things in a file would stop COPY for the rest of it, so the feed
 * keeps them from COPY: bytes that are not valid in the server encoding
 * (COPY reports the error again on every later call) are passed as '?' and
 * their record goes to the dead letters with the encoding error; and a
 * line "\." (COPY's end-of-data marker) is passed quoted, as the one-field
 * record it is in a file.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/copy.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "formats/decoder.h"
#include "formats/format.h"

/*
 * COPY reads ahead of the record it returns, so the feed finds record
 * boundaries itself: a record ends at a newline outside quotes.  Each
 * NextCopyFrom call consumes exactly one record, the oldest queued.
 */
typedef struct CsvRawRecord
{
	int64		line;			/* where the record starts */
	char	   *data;			/* its raw bytes */
	int			len;
	char	   *bad_encoding;	/* why its bytes are invalid, or NULL */
} CsvRawRecord;

typedef struct CsvFeed
{
	LineReader	reader;
	char		quote;
	char		escape;
	bool		in_quotes;		/* the record being fed is inside quotes */
	StringInfoData record;		/* raw bytes of the record being fed */
	int64		record_line;
	char	   *record_bad_encoding;	/* of the record being fed, or NULL */
	StringInfoData fed;			/* the line as COPY gets it */
	List	   *records;		/* complete records not yet returned */
	MemoryContext cxt;			/* for the queue */
	int			pending_off;	/* bytes of reader.line already fed */
	bool		pending;		/* reader.line has bytes left to feed */
	FormatErrorCallback err_cb;
	void	   *err_arg;
	const char *path;
} CsvFeed;

/* the feed of the COPY in progress: the callback has no argument */
static CsvFeed *current_feed = NULL;

/*
 * csv_track_line follows quoting through a fed line and queues the record
 * when the line ends it.
 */
static void
csv_track_line(CsvFeed *feed, const char *line, int len)
{
	MemoryContext old;

	if (feed->record.len == 0)
		feed->record_line = feed->reader.line_number;
	appendBinaryStringInfo(&feed->record, line, len);
	for (int i = 0; i < len; i++)
	{
		char		c = line[i];

		if (feed->in_quotes && c == feed->escape && feed->escape != feed->quote &&
			i + 1 < len && (line[i + 1] == feed->quote || line[i + 1] == feed->escape))
			i++;
		else if (c == feed->quote)
			feed->in_quotes = !feed->in_quotes;
	}
	if (feed->in_quotes && !feed->reader.eof)
		return;
	if (feed->in_quotes && feed->reader.buf_pos < feed->reader.buf_len)
		return;

	old = MemoryContextSwitchTo(feed->cxt);
	{
		CsvRawRecord *r = palloc(sizeof(CsvRawRecord));

		r->line = feed->record_line;
		r->len = LineContentLength(feed->record.data, feed->record.len);
		/* raw bytes, NULs included: not pnstrdup, which stops at a NUL */
		r->data = palloc(r->len + 1);
		memcpy(r->data, feed->record.data, r->len);
		r->data[r->len] = '\0';
		r->bad_encoding = feed->record_bad_encoding ? pstrdup(feed->record_bad_encoding) : NULL;
		feed->records = lappend(feed->records, r);
	}
	MemoryContextSwitchTo(old);
	resetStringInfo(&feed->record);
	feed->record_bad_encoding = NULL;
}

/*
 * csv_prepare_line makes feed->fed, what COPY gets of the line just read:
 * invalid bytes become '?' (the record is marked), and a "\." line that
 * starts a record is quoted.
 */
static void
csv_prepare_line(CsvFeed *feed, bool record_start)
{
	const char *line = feed->reader.line.data;
	int			len = feed->reader.line.len;
	int			content = LineContentLength(line, len);
	int			encoding = GetDatabaseEncoding();

	resetStringInfo(&feed->fed);
	if (record_start && content == 2 && line[0] == '\\' && line[1] == '.')
	{
		appendStringInfo(&feed->fed, "%c\\.%c", feed->quote, feed->quote);
		appendBinaryStringInfo(&feed->fed, line + content, len - content);
		return;
	}
	/* the common case: the whole line is valid, checked at once */
	if (pg_verify_mbstr(encoding, line, len, true))
	{
		appendBinaryStringInfo(&feed->fed, line, len);
		return;
	}
	for (int i = 0; i < len;)
	{
		int			n = line[i] == '\0' ? -1 : pg_encoding_verifymbchar(encoding, line + i, len - i);

		if (n > 0)
		{
			appendBinaryStringInfo(&feed->fed, line + i, n);
			i += n;
			continue;
		}
		if (feed->record_bad_encoding == NULL)
			feed->record_bad_encoding =
				MemoryContextStrdup(feed->cxt,
									psprintf("invalid byte sequence for encoding \"%s\": 0x%02x",
											 GetDatabaseEncodingName(), (unsigned char) line[i]));
		appendStringInfoChar(&feed->fed, '?');
		i++;
	}
}

/*
 * csv_feed_lines is COPY's data source: at most one line per call.
 */
static int
csv_feed_lines(void *outbuf, int minread, int maxread)
{
	CsvFeed    *feed = current_feed;
	int			n;

	if (!feed->pending)
	{
		if (!LineReaderNext(&feed->reader))
		{
			/* an unterminated quoted field still makes a record */
			if (feed->record.len > 0)
			{
				feed->in_quotes = false;
				csv_track_line(feed, "", 0);
			}
			return 0;
		}
		csv_prepare_line(feed, feed->record.len == 0);
		csv_track_line(feed, feed->reader.line.data, feed->reader.line.len);
		feed->pending = true;
		feed->pending_off = 0;
	}
	n = Min(maxread, feed->fed.len - feed->pending_off);
	memcpy(outbuf, feed->fed.data + feed->pending_off, n);
	feed->pending_off += n;
	if (feed->pending_off >= feed->fed.len)
		feed->pending = false;
	return n;
}

/* csv_pop_record: the record the last NextCopyFrom call consumed */
static CsvRawRecord *
csv_pop_record(CsvFeed *feed)
{
	CsvRawRecord *r;

	if (feed->records == NIL)
		return NULL;
	r = linitial(feed->records);
	feed->records = list_delete_first(feed->records);
	return r;
}

/*
 * csv_error reports a record that COPY could not convert, with its own
 * position and bytes.
 */
static void
csv_error(void *arg, const char *position, const char *payload, int payload_len,
		  const char *message)
{
	CsvFeed    *feed = arg;
	CsvRawRecord *r = csv_pop_record(feed);

	if (r == NULL)
		feed->err_cb(feed->err_arg, psprintf("%s:" INT64_FORMAT, feed->path, feed->reader.line_number),
					 NULL, 0, message);
	else
		feed->err_cb(feed->err_arg, psprintf("%s:" INT64_FORMAT, feed->path, r->line),
					 r->data, r->len, r->bad_encoding ? r->bad_encoding : message);
}

typedef struct CsvRecord
{
	CopyFromState cstate;
	TupleDesc	desc;
	ColumnInputs inputs;
	Datum	   *values;
	bool	   *nulls;
	bool		got_row;
} CsvRecord;

/*
 * csv_next_row reads the next record with COPY's parser and converts its
 * fields as NextCopyFrom does (same checks, same messages), but through
 * ColumnInput, so that timestamptz columns are read by the source's
 * event-time grammar.
 */
static void
csv_next_row(void *arg)
{
	CsvRecord  *rec = arg;
	char	  **fields;
	int			nfields;
	int			ncols = 0;
	int			fieldno = 0;

	rec->got_row = NextCopyFromRawFields(rec->cstate, &fields, &nfields);
	if (!rec->got_row)
		return;
	for (int i = 0; i < rec->desc->natts; i++)
		ncols += !rec->inputs.dropped[i];
	if (ncols > 0 && nfields > ncols)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("extra data after last expected column")));
	for (int i = 0; i < rec->desc->natts; i++)
	{
		rec->values[i] = (Datum) 0;
		rec->nulls[i] = true;
		if (rec->inputs.dropped[i])
			continue;
		if (fieldno >= nfields)
			ereport(ERROR,
					(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
					 errmsg("missing data for column \"%s\"", rec->inputs.names[i])));
		rec->values[i] = ColumnInput(&rec->inputs, i, fields[fieldno]);
		rec->nulls[i] = fields[fieldno] == NULL;
		fieldno++;
	}
}

static List *
copy_options(const FormatOptions *opts)
{
	List	   *options = NIL;

	options = lappend(options, makeDefElem("format", (Node *) makeString("csv"), -1));
	options = lappend(options, makeDefElem("delimiter", (Node *) makeString(opts->delimiter), -1));
	options = lappend(options, makeDefElem("quote", (Node *) makeString(opts->quote), -1));
	options = lappend(options, makeDefElem("escape", (Node *) makeString(opts->escape), -1));
	options = lappend(options, makeDefElem("null", (Node *) makeString(opts->null_string), -1));
	/* files are read in the server's encoding, whatever the session's */
	options = lappend(options, makeDefElem("encoding",
										   (Node *) makeString((char *) GetDatabaseEncodingName()), -1));
	return options;
}

/*
 * CsvDecodeFile decodes a csv file with COPY's parser.
 */
int64
CsvDecodeFile(const FormatOptions *opts, Relation rel, const char *path,
			  bool careful, FormatRowCallback row_cb,
			  FormatErrorCallback err_cb, void *arg, int64 max_rows)
{
	CsvFeed		feed;
	CsvFeed    *saved = current_feed;
	CsvRecord	rec;
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext rowcxt;
	MemoryContext old;
	volatile int64 nrows = 0;

	memset(&feed, 0, sizeof(feed));
	LineReaderOpen(&feed.reader, path);
	initStringInfo(&feed.record);
	initStringInfo(&feed.fed);
	feed.quote = opts->quote[0];
	feed.escape = opts->escape[0];
	feed.err_cb = err_cb;
	feed.err_arg = arg;
	feed.path = path;
	feed.cxt = CurrentMemoryContext;
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming csv row",
								   ALLOCSET_DEFAULT_SIZES);

	memset(&rec, 0, sizeof(rec));
	rec.desc = desc;
	ColumnInputsInit(&rec.inputs, desc, opts);
	rec.values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	rec.nulls = palloc(sizeof(bool) * Max(desc->natts, 1));

	current_feed = &feed;
	PG_TRY();
	{
		/* the header is skipped here, so that COPY sees only records */
		if (opts->header)
			(void) LineReaderNext(&feed.reader);
		rec.cstate = BeginCopyFrom(NULL, rel, NULL, NULL, false, csv_feed_lines,
								   NIL, copy_options(opts));
		for (;;)
		{
			bool		ok;
			int64		fed = feed.reader.line_number;

			CHECK_FOR_INTERRUPTS();
			if (max_rows >= 0 && nrows >= max_rows)
				break;
			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			ok = RunRecord(careful, csv_next_row, &rec, csv_error, &feed, NULL, NULL, 0);
			/* done, or a failure that consumed no input and would repeat */
			if ((ok && !rec.got_row) || (!ok && feed.reader.line_number == fed && feed.records == NIL))
			{
				MemoryContextSwitchTo(old);
				break;
			}
			if (ok)
			{
				CsvRawRecord *r = csv_pop_record(&feed);

				if (r != NULL && r->bad_encoding != NULL)
					err_cb(arg, psprintf("%s:" INT64_FORMAT, path, r->line), r->data, r->len,
						   r->bad_encoding);
				else
				{
					FormatEmitRow(row_cb, err_cb, arg, rec.values, rec.nulls,
								  psprintf("%s:" INT64_FORMAT, path,
										   r ? r->line : feed.reader.line_number),
								  r ? r->data : NULL, r ? r->len : 0);
					nrows++;
				}
			}
			MemoryContextSwitchTo(old);
		}
		EndCopyFrom(rec.cstate);
	}
	PG_FINALLY();
	{
		current_feed = saved;
		LineReaderClose(&feed.reader);
	}
	PG_END_TRY();

	MemoryContextDelete(rowcxt);
	return nrows;
}
