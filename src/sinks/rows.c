/*-------------------------------------------------------------------------
 *
 * rows.c
 *	  What the file and Kafka sinks share: a row as one line of csv or one
 *	  JSON object, and the DestReceiver that takes the rows a batch writes
 *	  as its statement produces them.
 *
 * JSON keeps the type of numbers, booleans and json values, writes times
 * in ISO 8601 and a window as {"start": …, "end": …}, as Spark does; csv
 * quotes as COPY does and writes times in ISO 8601 too, whatever the
 * DateStyle of the session that runs the batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "sinks/sink.h"

/*
 * RowFormatInit prepares the output of columns first (0-based) onwards of
 * rows of desc.
 */
void
RowFormatInit(RowFormat *rf, TupleDesc desc, int first, bool json)
{
	int			n = desc->natts - first;

	rf->json = json;
	rf->first = first;
	rf->ncolumns = n;
	rf->desc = CreateTupleDescCopy(desc);
	rf->out = palloc0(sizeof(FmgrInfo) * Max(n, 1));
	rf->category = palloc0(Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		Oid			typid = TupleDescAttr(desc, first + i)->atttypid;
		Oid			outfn;
		bool		varlena;

		getTypeOutputInfo(typid, &outfn, &varlena);
		fmgr_info(outfn, &rf->out[i]);
		switch (getBaseType(typid))
		{
			case INT2OID:
			case INT4OID:
			case INT8OID:
			case FLOAT4OID:
			case FLOAT8OID:
			case NUMERICOID:
				rf->category[i] = 'n';
				break;
			case BOOLOID:
				rf->category[i] = 'b';
				break;
			case JSONOID:
			case JSONBOID:
				rf->category[i] = 'j';
				break;
			case DATEOID:
			case TIMESTAMPOID:
			case TIMESTAMPTZOID:
				rf->category[i] = 't';
				break;
			case TSTZRANGEOID:
				rf->category[i] = 'w';
				break;
			default:
				rf->category[i] = 's';
		}
	}
}

/* RowFormatHeader appends the csv header line's column names */
void
RowFormatHeader(RowFormat *rf, StringInfo buf)
{
	for (int i = 0; i < rf->ncolumns; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfoString(buf, NameStr(TupleDescAttr(rf->desc, rf->first + i)->attname));
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

/* the text of a column, times in ISO 8601 */
static char *
column_text(RowFormat *rf, int i, Datum value, Oid typid)
{
	if (rf->category[i] == 't')
	{
		char		tbuf[MAXDATELEN + 1];

		return pstrdup(JsonEncodeDateTime(tbuf, value, getBaseType(typid), NULL));
	}
	return OutputFunctionCall(&rf->out[i], value);
}

static void
append_json_value(RowFormat *rf, StringInfo buf, int i, Datum value, Oid typid)
{
	char		tbuf[MAXDATELEN + 1];
	char	   *v;

	switch (rf->category[i])
	{
		case 't':
			escape_json(buf, column_text(rf, i, value, typid));
			return;
		case 'n':
			v = OutputFunctionCall(&rf->out[i], value);
			/* NaN and the infinities are no JSON numbers */
			if (strspn(v, "0123456789+-.eE") == strlen(v) && strpbrk(v, "0123456789") != NULL)
				appendStringInfoString(buf, v);
			else
				escape_json(buf, v);
			return;
		case 'b':
		case 'j':
			appendStringInfoString(buf, OutputFunctionCall(&rf->out[i], value));
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
			escape_json(buf, OutputFunctionCall(&rf->out[i], value));
	}
}

/*
 * RowFormatRow appends a row (without a line end): a csv line or a JSON
 * object.
 */
void
RowFormatRow(RowFormat *rf, TupleTableSlot *slot, StringInfo buf)
{
	slot_getallattrs(slot);
	if (rf->json)
		appendStringInfoChar(buf, '{');
	for (int i = 0; i < rf->ncolumns; i++)
	{
		Form_pg_attribute att = TupleDescAttr(rf->desc, rf->first + i);
		bool		isnull = slot->tts_isnull[rf->first + i];
		Datum		value = slot->tts_values[rf->first + i];

		if (rf->json)
		{
			if (i > 0)
				appendStringInfoString(buf, ", ");
			escape_json(buf, NameStr(att->attname));
			appendStringInfoString(buf, ": ");
			if (isnull)
				appendStringInfoString(buf, "null");
			else
				append_json_value(rf, buf, i, value, att->atttypid);
		}
		else
		{
			if (i > 0)
				appendStringInfoChar(buf, ',');
			if (!isnull)
				append_csv_value(buf, column_text(rf, i, value, att->atttypid));
		}
	}
	if (rf->json)
		appendStringInfoChar(buf, '}');
}

/* RowFormatColumnIndex: the position of a named column among the row's, or -1 */
int
RowFormatColumnIndex(RowFormat *rf, const char *name)
{
	for (int i = 0; i < rf->ncolumns; i++)
		if (strcmp(NameStr(TupleDescAttr(rf->desc, rf->first + i)->attname), name) == 0)
			return i;
	return -1;
}

/* RowFormatColumnText: the text of column i of a row, or NULL when it is NULL */
char *
RowFormatColumnText(RowFormat *rf, TupleTableSlot *slot, int i)
{
	slot_getallattrs(slot);
	if (slot->tts_isnull[rf->first + i])
		return NULL;
	return column_text(rf, i, slot->tts_values[rf->first + i],
					   TupleDescAttr(rf->desc, rf->first + i)->atttypid);
}

/*
 * The receiver of a batch or close statement: its rows are the counts
 * (columns 1 .. ncounts) followed by a written row, or by NULLs when the
 * count at count_column (1-based) is zero.  Each written row goes to emit.
 */
typedef struct SinkReceiver
{
	DestReceiver pub;
	SinkRowCallback emit;
	void	   *arg;
	int			count_column;
	int			ncounts;
	int64		counts[4];
	bool		got_counts;
	MemoryContext rowcxt;
} SinkReceiver;

static bool
receive_slot(TupleTableSlot *slot, DestReceiver *self)
{
	SinkReceiver *r = (SinkReceiver *) self;
	MemoryContext old;

	slot_getallattrs(slot);
	if (!r->got_counts)
	{
		for (int i = 0; i < r->ncounts; i++)
			r->counts[i] = slot->tts_isnull[i] ? 0 : DatumGetInt64(slot->tts_values[i]);
		r->got_counts = true;
	}
	/* nothing written, or a statement that returns only its counts */
	if (r->counts[r->count_column - 1] == 0 || slot->tts_tupleDescriptor->natts <= r->ncounts)
		return true;
	old = MemoryContextSwitchTo(r->rowcxt);
	r->emit(r->arg, slot, r->ncounts);
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
	MemoryContextDelete(((SinkReceiver *) self)->rowcxt);
	pfree(self);
}

/*
 * SinkReceiverCreate makes the receiver for a statement whose first
 * ncounts columns are counts; written rows start after them, and there
 * are none when the count at count_column is zero.
 */
DestReceiver *
SinkReceiverCreate(int ncounts, int count_column, SinkRowCallback emit, void *arg)
{
	SinkReceiver *r = palloc0(sizeof(SinkReceiver));

	Assert(ncounts <= lengthof(r->counts));
	r->pub.receiveSlot = receive_slot;
	r->pub.rStartup = receiver_startup;
	r->pub.rShutdown = receiver_shutdown;
	r->pub.rDestroy = receiver_destroy;
	/* not DestNone: SPI reports a discarded SELECT as a utility statement */
	r->pub.mydest = DestTuplestore;
	r->emit = emit;
	r->arg = arg;
	r->ncounts = ncounts;
	r->count_column = count_column;
	r->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming sink row",
									  ALLOCSET_DEFAULT_SIZES);
	return (DestReceiver *) r;
}

/* the counts the receiver saw (zeros when the statement returned no row) */
int64
SinkReceiverCount(DestReceiver *self, int column)
{
	return ((SinkReceiver *) self)->counts[column - 1];
}
