/*-------------------------------------------------------------------------
 *
 * text.c
 *	  The text format: each line of a file is one row of a single text
 *	  column (without its line ending).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "formats/decoder.h"
#include "formats/format.h"

typedef struct TextRecord
{
	ColumnInputs *inputs;
	int			attno;
	char	   *text;
	int			len;
	Datum	   *values;
} TextRecord;

static void
text_convert(void *arg)
{
	TextRecord *rec = arg;

	rec->values[rec->attno] = ColumnInputLen(rec->inputs, rec->attno, rec->text, rec->len);
}

/*
 * TextDecodeFile: one row per line.  A line that is not valid in the
 * server encoding (a NUL byte included) is a dead letter.
 */
int64
TextDecodeFile(const FormatOptions *opts, Relation rel, const char *path,
			   bool careful, FormatRowCallback row_cb,
			   FormatErrorCallback err_cb, void *arg, int64 max_rows)
{
	TupleDesc	desc = RelationGetDescr(rel);
	LineReader	reader;
	ColumnInputs inputs;
	TextRecord	rec;
	bool	   *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming text row",
												 ALLOCSET_DEFAULT_SIZES);
	int64		nrows = 0;

	ColumnInputsInit(&inputs, desc, opts);
	memset(&rec, 0, sizeof(rec));
	rec.inputs = &inputs;
	rec.values = palloc0(sizeof(Datum) * Max(desc->natts, 1));
	rec.attno = -1;
	for (int i = 0; i < desc->natts; i++)
	{
		nulls[i] = true;
		if (!inputs.dropped[i] && rec.attno < 0)
			rec.attno = i;
	}
	if (rec.attno < 0)
		return 0;
	nulls[rec.attno] = false;

	LineReaderOpen(&reader, path);
	PG_TRY();
	{
		while ((max_rows < 0 || nrows < max_rows) && LineReaderNext(&reader))
		{
			MemoryContext old;
			int			len = LineContentLength(reader.line.data, reader.line.len);
			const char *position;

			CHECK_FOR_INTERRUPTS();
			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			position = LineReaderPosition(&reader, reader.line_number);
			if (!pg_verify_mbstr(GetDatabaseEncoding(), reader.line.data, len, true))
				err_cb(arg, position, reader.line.data, len,
					   "invalid byte sequence for the server encoding");
			else
			{
				rec.text = pnstrdup(reader.line.data, len);
				rec.len = len;
				if (RunRecord(careful, text_convert, &rec, err_cb, arg, position,
							  reader.line.data, len))
				{
					FormatEmitRow(row_cb, err_cb, arg, rec.values, nulls, position,
								  reader.line.data, len);
					nrows++;
				}
			}
			MemoryContextSwitchTo(old);
		}
	}
	PG_FINALLY();
	{
		LineReaderClose(&reader);
	}
	PG_END_TRY();
	MemoryContextDelete(rowcxt);
	return nrows;
}
