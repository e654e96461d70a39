/*-------------------------------------------------------------------------
 *
 * jsonlines.c
 *	  The json format: one JSON object per line, its top-level keys mapped
 *	  to the columns of the same name.
 *
 * Lines are parsed with PostgreSQL's JSON parser (common/jsonapi.h), which
 * reports malformed input without raising an error, so a bad line costs no
 * subtransaction.  Scalars go through the column type's input function;
 * nested objects and arrays are passed as their JSON text (to json, jsonb
 * or text columns).  No jsonb value is built for a line.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "formats/decoder.h"
#include "formats/format.h"

#if PG_VERSION_NUM >= 160000
#define JSON_ACTION_RETURN JsonParseErrorType
#define JSON_ACTION_OK return JSON_SUCCESS
#else
#define JSON_ACTION_RETURN void
#define JSON_ACTION_OK return
#endif

struct JsonLine
{
	TupleDesc	desc;
	const bool *skip;			/* columns not filled from JSON, or NULL */
	JsonSemAction sem;
	ColumnInputs *inputs;
	JsonLexContext *lex;
	char	  **texts;			/* per column: text of the value, or NULL */
	int			field;			/* column of the current top-level field, or -1 */
	char	   *value_start;	/* where a nested value starts */
	bool		not_object;
	Datum	   *values;
	bool	   *nulls;
};

static int
column_of(JsonLine *jl, const char *name)
{
	for (int i = 0; i < jl->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(jl->desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return (jl->skip && jl->skip[i]) ? -1 : i;
	}
	return -1;
}

static JSON_ACTION_RETURN
jl_object_start(void *state)
{
	JsonLine   *jl = state;

	if (jl->lex->lex_level == 0)
		jl->not_object = false;
	JSON_ACTION_OK;
}

static JSON_ACTION_RETURN
jl_array_start(void *state)
{
	JsonLine   *jl = state;

	if (jl->lex->lex_level == 0)
		jl->not_object = true;
	JSON_ACTION_OK;
}

static JSON_ACTION_RETURN
jl_field_start(void *state, char *fname, bool isnull)
{
	JsonLine   *jl = state;

	if (jl->lex->lex_level != 1)
		JSON_ACTION_OK;
	jl->field = column_of(jl, fname);
	jl->value_start = jl->lex->token_start;
	if (jl->field >= 0)
		jl->texts[jl->field] = NULL;	/* the last duplicate key wins */
	JSON_ACTION_OK;
}

static JSON_ACTION_RETURN
jl_field_end(void *state, char *fname, bool isnull)
{
	JsonLine   *jl = state;
	JsonTokenType first;

	if (jl->lex->lex_level != 1 || jl->field < 0 || isnull)
		JSON_ACTION_OK;
	/* a nested object or array: its JSON text */
	first = *jl->value_start == '{' ? JSON_TOKEN_OBJECT_START :
		*jl->value_start == '[' ? JSON_TOKEN_ARRAY_START : JSON_TOKEN_INVALID;
	if (first != JSON_TOKEN_INVALID)
		jl->texts[jl->field] = pnstrdup(jl->value_start,
										jl->lex->prev_token_terminator - jl->value_start);
	jl->field = -1;
	JSON_ACTION_OK;
}

static JSON_ACTION_RETURN
jl_scalar(void *state, char *token, JsonTokenType tokentype)
{
	JsonLine   *jl = state;

	if (jl->lex->lex_level == 0)
		jl->not_object = true;
	else if (jl->lex->lex_level == 1 && jl->field >= 0 && tokentype != JSON_TOKEN_NULL)
		jl->texts[jl->field] = token;
	JSON_ACTION_OK;
}

static void
json_convert(void *arg)
{
	JsonLine   *jl = arg;

	for (int i = 0; i < jl->desc->natts; i++)
	{
		if (jl->skip && jl->skip[i])
			continue;
		jl->nulls[i] = jl->texts[i] == NULL;
		jl->values[i] = jl->nulls[i] ? (Datum) 0 : ColumnInput(jl->inputs, i, jl->texts[i]);
	}
}

/*
 * JsonLineCreate prepares the decoding of JSON objects into the columns of
 * desc, except those marked in skip; values and nulls receive each row.
 */
JsonLine *
JsonLineCreate(TupleDesc desc, ColumnInputs *inputs, const bool *skip,
			   Datum *values, bool *nulls)
{
	JsonLine   *jl = palloc0(sizeof(JsonLine));

	jl->desc = desc;
	jl->skip = skip;
	jl->inputs = inputs;
	jl->texts = palloc0(sizeof(char *) * Max(desc->natts, 1));
	jl->values = values;
	jl->nulls = nulls;
	jl->sem.semstate = jl;
	jl->sem.object_start = jl_object_start;
	jl->sem.array_start = jl_array_start;
	jl->sem.object_field_start = jl_field_start;
	jl->sem.object_field_end = jl_field_end;
	jl->sem.scalar = jl_scalar;
	return jl;
}

/*
 * The parser recurses once per level of nesting and stops the whole batch
 * when it runs out of stack; a record nested deeper than this is a dead
 * letter instead.  Only a line longer than the limit can be that deep, so
 * ordinary lines are not scanned.
 */
#define JSON_MAX_DEPTH 1000

static bool
json_too_deep(const char *text, int len)
{
	int			depth = 0;
	bool		in_string = false;

	if (len <= JSON_MAX_DEPTH)
		return false;
	for (int i = 0; i < len; i++)
	{
		char		c = text[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > JSON_MAX_DEPTH)
				return true;
		}
		else if (c == ']' || c == '}')
			depth--;
	}
	return false;
}

/*
 * JsonLineDecode decodes one JSON object (text in the server encoding,
 * already verified, NUL-terminated at len).  On failure it reports to
 * err_cb, with payload as the record's bytes, and returns false.
 */
bool
JsonLineDecode(JsonLine *jl, char *text, int len, bool careful, const char *position,
			   const char *payload, int payload_len, FormatErrorCallback err_cb, void *arg)
{
	JsonParseErrorType rc;

	for (int i = 0; i < jl->desc->natts; i++)
		jl->texts[i] = NULL;
	jl->field = -1;
	jl->not_object = true;
	if (json_too_deep(text, len))
	{
		err_cb(arg, position, payload, payload_len,
			   psprintf("the record is nested more than %d levels deep", JSON_MAX_DEPTH));
		return false;
	}
#if PG_VERSION_NUM >= 170000
	jl->lex = makeJsonLexContextCstringLen(NULL, text, len, GetDatabaseEncoding(), true);
#else
	jl->lex = makeJsonLexContextCstringLen(text, len, GetDatabaseEncoding(), true);
#endif
	rc = pg_parse_json(jl->lex, &jl->sem);
	if (rc != JSON_SUCCESS)
		err_cb(arg, position, payload, payload_len, json_errdetail(rc, jl->lex));
	else if (jl->not_object)
		err_cb(arg, position, payload, payload_len, "the record is not a JSON object");
	else if (RunRecord(careful, json_convert, jl, err_cb, arg, position, payload, payload_len))
		return true;
	return false;
}

/*
 * JsonDecodeFile decodes JSON lines; empty lines are skipped.
 */
int64
JsonDecodeFile(const FormatOptions *opts, Relation rel, const char *path,
			   bool careful, FormatRowCallback row_cb,
			   FormatErrorCallback err_cb, void *arg, int64 max_rows)
{
	TupleDesc	desc = RelationGetDescr(rel);
	LineReader	reader;
	ColumnInputs inputs;
	JsonLine   *jl;
	Datum	   *values = palloc0(sizeof(Datum) * Max(desc->natts, 1));
	bool	   *nulls = palloc0(sizeof(bool) * Max(desc->natts, 1));
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming json row",
												 ALLOCSET_DEFAULT_SIZES);
	int64		nrows = 0;

	ColumnInputsInit(&inputs, desc, opts);
	jl = JsonLineCreate(desc, &inputs, NULL, values, nulls);

	LineReaderOpen(&reader, path);
	PG_TRY();
	{
		while ((max_rows < 0 || nrows < max_rows) && LineReaderNext(&reader))
		{
			MemoryContext old;
			int			len = LineContentLength(reader.line.data, reader.line.len);
			char	   *position;
			char	   *line;
			bool		blank = true;

			CHECK_FOR_INTERRUPTS();
			for (int i = 0; i < len && blank; i++)
				blank = reader.line.data[i] == ' ' || reader.line.data[i] == '\t';
			if (blank)
				continue;

			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			position = psprintf("%s:" INT64_FORMAT, path, reader.line_number);
			if (!pg_verify_mbstr(GetDatabaseEncoding(), reader.line.data, len, true))
			{
				err_cb(arg, position, reader.line.data, len,
					   "invalid byte sequence for the server encoding");
				MemoryContextSwitchTo(old);
				continue;
			}
			line = pnstrdup(reader.line.data, len);
			if (JsonLineDecode(jl, line, len, careful, position, reader.line.data, len, err_cb, arg))
			{
				FormatEmitRow(row_cb, err_cb, arg, values, nulls, position, reader.line.data, len);
				nrows++;
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
