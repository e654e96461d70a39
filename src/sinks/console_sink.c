/*-------------------------------------------------------------------------
 *
 * console_sink.c
 *	  The console sink: each batch's rows, as a table, in the server log,
 *	  the way Spark's console sink prints them (num_rows, truncate).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "sinks/sink.h"
#include "source.h"
#include "streaming.h"

/* the most rows the console sink shows per batch (num_rows) */
#define CONSOLE_MAX_NUM_ROWS	100000

static const char *const sink_kinds[] = {"table", "console", "notify", "file", "kafka", NULL};

/*
 * SinkParseOptions validates sink and sink_options at create_query and
 * reads them back for a batch.
 */
void
SinkParseOptions(const char *sink, Jsonb *options, const char *query, SinkOptions *out)
{
	memset(out, 0, sizeof(*out));
	out->num_rows = 20;
	out->truncate = true;

	if (strcmp(sink, "table") == 0)
	{
		static const char *const valid[] = {"table", NULL};

		out->kind = SINK_TABLE;
		SourceCheckOptionKeys(options, "sink \"table\"", valid, NULL);
		out->table = JsonbGetString(options, "table");
	}
	else if (strcmp(sink, "console") == 0)
	{
		static const char *const valid[] = {"num_rows", "truncate", NULL};

		out->kind = SINK_CONSOLE;
		SourceCheckOptionKeys(options, "sink \"console\"", valid, NULL);
		/* shown in the log, and read with LIMIT num_rows + 1: bounded */
		out->num_rows = (int) SourceGetIntOption(options, "num_rows", 20, 1, CONSOLE_MAX_NUM_ROWS);
		out->truncate = JsonbGetBool(options, "truncate", true);
	}
	else if (strcmp(sink, "notify") == 0)
	{
		static const char *const valid[] = {"channel", NULL};

		out->kind = SINK_NOTIFY;
		SourceCheckOptionKeys(options, "sink \"notify\"", valid, NULL);
		out->channel = JsonbGetString(options, "channel");
		if (out->channel == NULL)
			out->channel = pstrdup(query);
		if (out->channel[0] == '\0' || strlen(out->channel) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"channel\": \"%s\"", out->channel),
					 errhint("A channel name is 1 to %d bytes long.", NAMEDATALEN - 1)));
	}
	else if (strcmp(sink, "file") == 0)
	{
		static const char *const valid[] = {"path", "format", "header", NULL};
		char	   *format = JsonbGetString(options, "format");

		out->kind = SINK_FILE;
		SourceCheckOptionKeys(options, "sink \"file\"", valid, NULL);
		out->path = JsonbGetString(options, "path");
		if (out->path == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the file sink needs the option \"path\""),
					 errhint("For example: sink_options => '{\"path\": \"/data/out\", \"format\": \"json\"}'.")));
		if (format != NULL && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"format\": \"%s\"", format),
					 errhint("Valid formats of the file sink are csv and json (JSON lines).")));
		out->json = format != NULL && strcmp(format, "json") == 0;
		out->header = JsonbGetBool(options, "header", false);
		if (out->json && JsonbGetKey(options, "header") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"header\" applies only to the csv format")));
	}
	else if (strcmp(sink, "kafka") == 0)
	{
		out->kind = SINK_KAFKA;
		KafkaSinkParseOptions(options, out);
	}
	else
	{
		(void) sink_kinds;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown sink \"%s\"", sink),
				 errhint("Valid sinks are table, console, notify, file and kafka.")));
	}
}

/* cell text as Spark shows it: NULL as "null", long values cut */
static char *
cell_text(SPITupleTable *tuptable, uint64 row, int col, bool truncate)
{
	char	   *v = SPI_getvalue(tuptable->vals[row], tuptable->tupdesc, col);

	if (v == NULL)
		return pstrdup("null");
	if (truncate && pg_mbstrlen(v) > 20)
	{
		int			len = pg_mbcharcliplen(v, strlen(v), 17);

		return psprintf("%.*s...", len, v);
	}
	return v;
}

static void
append_padded(StringInfo buf, const char *s, int width)
{
	int			pad = width - pg_mbstrlen(s);

	appendStringInfoChar(buf, '|');
	while (pad-- > 0)
		appendStringInfoChar(buf, ' ');
	appendStringInfoString(buf, s);
}

static void
append_rule(StringInfo buf, int *widths, int ncols)
{
	for (int c = 0; c < ncols; c++)
	{
		appendStringInfoChar(buf, '+');
		for (int i = 0; i < widths[c]; i++)
			appendStringInfoChar(buf, '-');
	}
	appendStringInfoString(buf, "+\n");
}

/*
 * ConsoleSinkShow logs up to num_rows rows of a batch, columns first_column
 * onwards of tuptable, as an aligned table.
 */
void
ConsoleSinkShow(const char *query, int64 batch_id, SPITupleTable *tuptable,
				uint64 ntuples, int first_column, const SinkOptions *opts)
{
	TupleDesc	desc = tuptable->tupdesc;
	int			ncols = desc->natts - first_column + 1;
	int		   *widths = palloc0(sizeof(int) * Max(ncols, 1));
	uint64		nrows = Min(ntuples, (uint64) opts->num_rows);
	StringInfoData buf;

	for (int c = 0; c < ncols; c++)
	{
		widths[c] = pg_mbstrlen(NameStr(TupleDescAttr(desc, first_column - 1 + c)->attname));
		for (uint64 r = 0; r < nrows; r++)
			widths[c] = Max(widths[c], pg_mbstrlen(cell_text(tuptable, r, first_column + c, opts->truncate)));
	}

	initStringInfo(&buf);
	appendStringInfo(&buf, "streaming query \"%s\", batch " INT64_FORMAT ":\n", query, batch_id);
	append_rule(&buf, widths, ncols);
	for (int c = 0; c < ncols; c++)
		append_padded(&buf, NameStr(TupleDescAttr(desc, first_column - 1 + c)->attname), widths[c]);
	appendStringInfoString(&buf, "|\n");
	append_rule(&buf, widths, ncols);
	for (uint64 r = 0; r < nrows; r++)
	{
		for (int c = 0; c < ncols; c++)
			append_padded(&buf, cell_text(tuptable, r, first_column + c, opts->truncate), widths[c]);
		appendStringInfoString(&buf, "|\n");
	}
	append_rule(&buf, widths, ncols);
	if (ntuples > nrows)
		appendStringInfo(&buf, "only showing top %d rows\n", opts->num_rows);

	ereport(LOG, (errmsg("%s", buf.data), errhidestmt(true), errhidecontext(true)));
}
