/*-------------------------------------------------------------------------
 *
 * record.c
 *	  Decoding of self-contained records (a Kafka message's value) in the
 *	  json, csv and text formats.
 *
 * Files are decoded line by line by the file decoders; a message is one
 * record on its own, so it needs no line reader: a json message is one
 * object, a csv message one row (split here, with the quoting rules of
 * COPY's csv format), a text message one value.  Record bytes are UTF-8
 * and are converted to the server encoding.  Columns marked in skip (the
 * source's metadata columns) are left for the caller to fill.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/rel.h"

#include "formats/decoder.h"
#include "formats/format.h"

struct RecordDecoder
{
	FormatOptions opts;
	TupleDesc	desc;
	const bool *skip;
	ColumnInputs inputs;
	JsonLine   *json;
	int			text_att;		/* text: the column (0-based) */
	int		   *csv_atts;		/* csv: the columns, in order */
	int			ncsv;
	Datum	   *values;
	bool	   *nulls;
};

RecordDecoder *
RecordDecoderCreate(const FormatOptions *opts, TupleDesc desc, const bool *skip,
					Datum *values, bool *nulls)
{
	RecordDecoder *dec = palloc0(sizeof(RecordDecoder));

	dec->opts = *opts;
	dec->desc = desc;
	dec->skip = skip;
	dec->values = values;
	dec->nulls = nulls;
	ColumnInputsInit(&dec->inputs, desc, opts);
	dec->text_att = -1;
	dec->csv_atts = palloc(sizeof(int) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attisdropped || (skip && skip[i]))
			continue;
		if (dec->text_att < 0)
			dec->text_att = i;
		dec->csv_atts[dec->ncsv++] = i;
	}
	if (opts->kind == STREAMING_FORMAT_JSON)
		dec->json = JsonLineCreate(desc, &dec->inputs, skip, values, nulls);
	return dec;
}

typedef struct FieldsRecord
{
	RecordDecoder *dec;
	char	  **fields;			/* NULL: SQL NULL */
	int			nfields;
} FieldsRecord;

static void
fields_convert(void *arg)
{
	FieldsRecord *rec = arg;
	RecordDecoder *dec = rec->dec;

	if (rec->nfields != dec->ncsv)
		ereport(ERROR,
				(errcode(ERRCODE_BAD_COPY_FILE_FORMAT),
				 errmsg("expected %d fields, found %d", dec->ncsv, rec->nfields)));
	for (int i = 0; i < dec->ncsv; i++)
	{
		int			att = dec->csv_atts[i];

		dec->nulls[att] = rec->fields[i] == NULL;
		dec->values[att] = dec->nulls[att] ? (Datum) 0 :
			ColumnInput(&dec->inputs, att, rec->fields[i]);
	}
}

/*
 * csv_split splits one csv row as COPY's csv format does: a field may be
 * quoted (quote and escape characters inside), an unquoted field equal to
 * the null string is NULL.
 */
static int
csv_split(RecordDecoder *dec, const char *s, int len, char **fields, int maxfields)
{
	char		delim = dec->opts.delimiter[0];
	char		quote = dec->opts.quote[0];
	char		escape = dec->opts.escape[0];
	const char *null_string = dec->opts.null_string;
	StringInfoData buf;
	int			n = 0;
	int			i = 0;

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	initStringInfo(&buf);
	for (;;)
	{
		bool		quoted = false;

		resetStringInfo(&buf);
		while (i < len && s[i] != delim)
		{
			if (s[i] == quote)
			{
				quoted = true;
				i++;
				while (i < len)
				{
					if (s[i] == escape && i + 1 < len &&
						(s[i + 1] == quote || (escape != quote && s[i + 1] == escape)))
					{
						appendStringInfoChar(&buf, s[i + 1]);
						i += 2;
					}
					else if (s[i] == quote)
					{
						i++;
						break;
					}
					else
						appendStringInfoChar(&buf, s[i++]);
				}
			}
			else
				appendStringInfoChar(&buf, s[i++]);
		}
		if (n < maxfields)
			fields[n] = (!quoted && strcmp(buf.data, null_string) == 0) ? NULL : pstrdup(buf.data);
		n++;
		if (i >= len)
			break;
		i++;					/* the delimiter */
	}
	return n;
}

static void
text_convert_record(void *arg)
{
	FieldsRecord *rec = arg;
	RecordDecoder *dec = rec->dec;

	dec->nulls[dec->text_att] = false;
	dec->values[dec->text_att] = ColumnInput(&dec->inputs, dec->text_att, rec->fields[0]);
}

typedef struct ConvertRecord
{
	const char *data;
	int			len;
	char	   *out;
} ConvertRecord;

static void
convert_to_server(void *arg)
{
	ConvertRecord *c = arg;

	c->out = pg_any_to_server(c->data, c->len, PG_UTF8);
}

/*
 * RecordDecode decodes one record into the decoder's values and nulls (the
 * skipped columns untouched).  A record that cannot be decoded is reported
 * to err_cb and false returned.  A decoded record stays named until the
 * caller adds its row (FormatNameRecord), so that a row the batch rejects
 * becomes this record's dead letter.
 */
bool
RecordDecode(RecordDecoder *dec, const char *data, int len, bool careful,
			 const char *position, FormatErrorCallback err_cb, void *arg)
{
	ConvertRecord conv;
	FieldsRecord rec;
	char	   *fields_buf[1];
	int			out_len;
	bool		ok = false;

	FormatForgetRow();
	if (data == NULL)
	{
		err_cb(arg, position, NULL, 0, "the record has no value");
		return false;
	}
	if (!pg_verify_mbstr(PG_UTF8, data, len, true))
	{
		err_cb(arg, position, data, len, "invalid byte sequence for encoding \"UTF8\"");
		return false;
	}
	conv.data = data;
	conv.len = len;
	conv.out = NULL;
	if (GetDatabaseEncoding() == PG_UTF8 || GetDatabaseEncoding() == PG_SQL_ASCII)
	{
		/* verified: no NUL inside, so the copy is len bytes */
		conv.out = palloc(len + 1);
		memcpy(conv.out, data, len);
		conv.out[len] = '\0';
		out_len = len;
	}
	else if (!RunRecord(careful, convert_to_server, &conv, err_cb, arg, position, data, len))
		return false;
	else
	{
		if (conv.out == data)
			conv.out = pnstrdup(data, len);
		out_len = strlen(conv.out);
	}

	memset(&rec, 0, sizeof(rec));
	rec.dec = dec;
	switch (dec->opts.kind)
	{
		case STREAMING_FORMAT_JSON:
			ok = JsonLineDecode(dec->json, conv.out, out_len, careful, position,
								data, len, err_cb, arg);
			break;
		case STREAMING_FORMAT_TEXT:
			if (dec->text_att < 0)
				return false;
			fields_buf[0] = conv.out;
			rec.fields = fields_buf;
			rec.nfields = 1;
			ok = RunRecord(careful, text_convert_record, &rec, err_cb, arg, position, data, len);
			break;
		case STREAMING_FORMAT_CSV:
			rec.fields = palloc(sizeof(char *) * (dec->ncsv + 1));
			rec.nfields = csv_split(dec, conv.out, out_len, rec.fields, dec->ncsv + 1);
			ok = RunRecord(careful, fields_convert, &rec, err_cb, arg, position, data, len);
			break;
	}
	/* the caller completes the row and hands it over: see FormatRejectRow */
	if (ok)
		FormatNameRecord(err_cb, arg, position, data, len);
	return ok;
}
