/*-------------------------------------------------------------------------
 *
 * csv.c
 *	  The csv format, parsed by PostgreSQL's own COPY parser.
 *
 * The file is split into records here, the way COPY splits it: a record
 * ends at a line ending (\n, \r\n or \r) outside quotes, with COPY's rules
 * for quote and escape characters.  Each record is then handed alone to
 * BeginCopyFrom's data-source callback, ending in \n, so that each
 * NextCopyFrom call parses exactly one record, and the record's raw bytes
 * and line number are known when it must go to the dead letters.
 *
 * Some records would stop COPY for the rest of the file, so they are found
 * first and never given to COPY; each is one dead letter, with COPY's
 * message, and reading goes on with the next record:
 *	- a record that ends otherwise than the file's first record (COPY takes
 *	  the line ending of the first line as the file's): "unquoted carriage
 *	  return found in data" or "unquoted newline found in data";
 *	- a record with bytes that are not valid in the server encoding (a NUL
 *	  included).
 * A record "\." (COPY's end-of-data marker) is given quoted, as the
 * one-field record it is in a file.  So every record of a file is either a
 * row or a dead letter.
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

/* how a record ends */
typedef enum CsvEnding
{
	CSV_END_EOF,				/* the file ends without a line ending */
	CSV_END_NL,					/* \n */
	CSV_END_CR,					/* \r */
	CSV_END_CRNL				/* \r\n */
} CsvEnding;

typedef struct CsvFeed
{
	LineReader	reader;			/* the file, read through its buffer */
	char		quote;
	char		escape;
	bool		has_escape;		/* escape differs from quote */
	bool		have_style;
	CsvEnding	style;			/* the file's line ending: its first record's */
	int64		line;			/* the physical line the next record starts on */
	StringInfoData record;		/* raw bytes of the record, without its ending */
	int64		record_line;
	CsvEnding	record_ending;
	StringInfoData fed;			/* what COPY gets of the record */
	int			fed_off;		/* bytes of fed already given to COPY */
	bool		copy_eof;		/* the callback told COPY the data ended */
} CsvFeed;

/* the feed of the COPY in progress: the callback has no argument */
static CsvFeed *current_feed = NULL;

/*
 * csv_next_record reads the next record of the file into feed->record;
 * false when the file has no more.  Quotes are followed as COPY's
 * CopyReadLineText follows them, so that records end where COPY would end
 * its lines.  Physical lines (\n, \r\n or \r, quoted or not) are counted
 * for the records' positions.
 */
static bool
csv_next_record(CsvFeed *feed)
{
	LineReader *reader = &feed->reader;
	bool		in_quote = false;
	bool		last_was_esc = false;
	bool		prev_cr = false;
	bool		any = false;

	resetStringInfo(&feed->record);
	feed->record_line = feed->line;
	for (;;)
	{
		char	   *buf;
		size_t		start;
		size_t		i;

		if (reader->buf_pos >= reader->buf_len && !LineReaderFill(reader))
		{
			feed->record_ending = CSV_END_EOF;
			return any;
		}
		any = true;
		buf = reader->buf;
		start = reader->buf_pos;
		for (i = start; i < reader->buf_len; i++)
		{
			char		c = buf[i];
			bool		is_escape = feed->has_escape && c == feed->escape;

			if (c != '\r' && c != '\n' && c != feed->quote && !is_escape)
			{
				last_was_esc = false;
				prev_cr = false;
				continue;
			}
			/* COPY's rules: an escape counts inside quotes, before a quote */
			if (in_quote && is_escape)
				last_was_esc = !last_was_esc;
			if (c == feed->quote && !last_was_esc)
				in_quote = !in_quote;
			if (!is_escape)
				last_was_esc = false;
			if (c != '\r' && c != '\n')
			{
				prev_cr = false;
				continue;
			}
			if (in_quote)
			{
				/* a line ending inside a quoted field is data */
				if (c == '\r' || !prev_cr)
					feed->line++;
				prev_cr = c == '\r';
				continue;
			}

			/* the end of the record */
			appendBinaryStringInfo(&feed->record, buf + start, i - start);
			reader->buf_pos = i + 1;
			feed->line++;
			if (c == '\n')
				feed->record_ending = CSV_END_NL;
			else
			{
				/* \r, or \r\n: look at the next byte, perhaps in the next block */
				if (reader->buf_pos >= reader->buf_len)
					(void) LineReaderFill(reader);
				if (reader->buf_pos < reader->buf_len && reader->buf[reader->buf_pos] == '\n')
				{
					reader->buf_pos++;
					feed->record_ending = CSV_END_CRNL;
				}
				else
					feed->record_ending = CSV_END_CR;
			}
			return true;
		}
		appendBinaryStringInfo(&feed->record, buf + start, i - start);
		reader->buf_pos = i;
	}
}

/*
 * csv_record_error tells why COPY would stop at the record, or NULL: a line
 * ending other than the file's, or bytes not valid in the server encoding.
 */
static char *
csv_record_error(CsvFeed *feed)
{
	const char *data = feed->record.data;
	int			len = feed->record.len;
	int			encoding = GetDatabaseEncoding();

	if (feed->record_ending != CSV_END_EOF && feed->have_style &&
		feed->record_ending != feed->style)
	{
		/* the character COPY would stop at */
		if (feed->style == CSV_END_NL ||
			(feed->style == CSV_END_CRNL && feed->record_ending == CSV_END_CR))
			return pstrdup("unquoted carriage return found in data");
		return pstrdup("unquoted newline found in data");
	}
	/* the common case: the whole record is valid, checked at once */
	if (pg_verify_mbstr(encoding, data, len, true))
		return NULL;
	for (int i = 0; i < len;)
	{
		int			n = data[i] == '\0' ? -1 : pg_encoding_verifymbchar(encoding, data + i, len - i);

		if (n <= 0)
			return psprintf("invalid byte sequence for encoding \"%s\": 0x%02x",
							GetDatabaseEncodingName(), (unsigned char) data[i]);
		i += n;
	}
	return NULL;
}

/*
 * csv_feed_record is COPY's data source: the bytes of the one record that
 * the current NextCopyFrom call is to parse.  Nothing is left when COPY
 * asks again, which only a record with an unterminated quoted field does:
 * COPY then gets the end of the data, and reports that field.
 */
static int
csv_feed_record(void *outbuf, int minread, int maxread)
{
	CsvFeed    *feed = current_feed;
	int			n = Min(maxread, feed->fed.len - feed->fed_off);

	if (n <= 0)
	{
		feed->copy_eof = true;
		return 0;
	}
	memcpy(outbuf, feed->fed.data + feed->fed_off, n);
	feed->fed_off += n;
	return n;
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

static CopyFromState
csv_begin_copy(Relation rel, const FormatOptions *opts)
{
	return BeginCopyFrom(NULL, rel, NULL, NULL, false, csv_feed_record, NIL, copy_options(opts));
}

/*
 * CsvDecodeFile decodes a csv file with COPY's parser, one record at a
 * time; every record becomes a row or a dead letter.
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
	volatile int64 nrows = 0;

	memset(&feed, 0, sizeof(feed));
	LineReaderOpen(&feed.reader, path);
	initStringInfo(&feed.record);
	initStringInfo(&feed.fed);
	feed.quote = opts->quote[0];
	feed.escape = opts->escape[0];
	feed.has_escape = feed.escape != feed.quote;
	feed.line = 1;
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
		bool		first = true;

		rec.cstate = csv_begin_copy(rel, opts);
		while (max_rows < 0 || nrows < max_rows)
		{
			MemoryContext old;
			const char *position;
			char	   *error;

			CHECK_FOR_INTERRUPTS();
			if (!csv_next_record(&feed))
				break;
			if (first)
			{
				/* the first line's ending is the file's, as for COPY */
				first = false;
				feed.have_style = feed.record_ending != CSV_END_EOF;
				feed.style = feed.record_ending;
				/* the header is skipped here, so that COPY sees only records */
				if (opts->header)
					continue;
			}
			/* a COPY that was told the data ended starts again */
			if (feed.copy_eof)
			{
				EndCopyFrom(rec.cstate);
				rec.cstate = NULL;
				feed.copy_eof = false;
				rec.cstate = csv_begin_copy(rel, opts);
			}

			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			position = LineReaderPosition(&feed.reader, feed.record_line);
			error = csv_record_error(&feed);
			if (error != NULL)
				err_cb(arg, position, feed.record.data, feed.record.len, error);
			else
			{
				resetStringInfo(&feed.fed);
				if (feed.record.len == 2 && feed.record.data[0] == '\\' && feed.record.data[1] == '.')
					appendStringInfo(&feed.fed, "%c\\.%c", feed.quote, feed.quote);
				else
					appendBinaryStringInfo(&feed.fed, feed.record.data, feed.record.len);
				appendStringInfoChar(&feed.fed, '\n');
				feed.fed_off = 0;
				if (RunRecord(careful, csv_next_row, &rec, err_cb, arg, position,
							  feed.record.data, feed.record.len))
				{
					if (!rec.got_row)
						elog(ERROR, "COPY found no row in a record of \"%s\"", path);
					FormatEmitRow(row_cb, err_cb, arg, rec.values, rec.nulls, position,
								  feed.record.data, feed.record.len);
					nrows++;
				}
				/* COPY must start the next record afresh, at its first byte */
				if (feed.fed_off < feed.fed.len)
					feed.copy_eof = true;
			}
			MemoryContextSwitchTo(old);
		}
		if (rec.cstate != NULL)
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
