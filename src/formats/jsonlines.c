/*-------------------------------------------------------------------------
 *
 * jsonlines.c
 *	  The json format: one JSON object per line, its top-level keys mapped
 *	  to the columns of the same name.
 *
 * A line is first read by a scanner of flat objects (json_scan_flat): an
 * object whose values are numbers, true, false, null or strings without
 * escapes, the common shape of event records.  It finds each value's bytes
 * in the line, where the columns' fast paths convert them (column_input.c)
 * without a copy.  It only ever accepts lines that are valid JSON, and
 * gives the values PostgreSQL's JSON parser gives; a line it does not
 * fully recognize, valid or not, is parsed again by that parser
 * (common/jsonapi.h), which reports malformed input without raising an
 * error, so a bad line costs no subtransaction.  Scalars go through the
 * column type's input function; nested objects and arrays are passed as
 * their JSON text (to json, jsonb or text columns).  No jsonb value is
 * built for a line.
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
	int		   *lens;			/* per column: its length */
	int		   *name_lens;		/* per column: strlen of its name, or -1 */
	int			last_field;		/* column of the flat scan's last key, or -1 */
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
	{
		jl->lens[jl->field] = jl->lex->prev_token_terminator - jl->value_start;
		jl->texts[jl->field] = pnstrdup(jl->value_start, jl->lens[jl->field]);
	}
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
	{
		jl->texts[jl->field] = token;
		jl->lens[jl->field] = strlen(token);
	}
	JSON_ACTION_OK;
}

/*
 * json_convert converts the values found into the columns.  A value of the
 * flat scan is a piece of the line: it is NUL-terminated in place, which
 * overwrites the quote or delimiter after it, read already.
 */
static void
json_convert(void *arg)
{
	JsonLine   *jl = arg;

	for (int i = 0; i < jl->desc->natts; i++)
	{
		if (jl->skip && jl->skip[i])
			continue;
		jl->nulls[i] = jl->texts[i] == NULL;
		if (jl->nulls[i])
		{
			jl->values[i] = (Datum) 0;
			continue;
		}
		jl->texts[i][jl->lens[i]] = '\0';
		jl->values[i] = ColumnInputLen(jl->inputs, i, jl->texts[i], jl->lens[i]);
	}
}

/* ------------------------------------------------------------------------
 * The scanner of flat objects
 * ------------------------------------------------------------------------ */

/* JSON's whitespace, as json_lex skips it */
#define JSON_SPACE(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')

/* a decimal digit */
#define JSON_DIGIT(c) ((unsigned char) ((c) - '0') <= 9)

static inline const char *
skip_space(const char *p)
{
	while (JSON_SPACE(*p))
		p++;
	return p;
}

/*
 * scan_string reads a string without escapes or control characters (p at
 * its opening quote): its bytes are its value.  NULL for any other string,
 * and at the end of the line (the NUL that ends it is a control character).
 */
static inline const char *
scan_string(const char *p, const char **start, int *len)
{
	const char *s = ++p;

	for (;;)
	{
		unsigned char c = (unsigned char) *p;

		if (c == '"')
			break;
		if (c == '\\' || c < 0x20)
			return NULL;
		p++;
	}
	*start = s;
	*len = p - s;
	return p + 1;
}

/*
 * scan_number reads a number of JSON's grammar (p at its first byte):
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?; NULL if the text
 * is not one.
 */
static inline const char *
scan_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (JSON_DIGIT(*p))
	{
		while (JSON_DIGIT(*p))
			p++;
	}
	else
		return NULL;
	if (*p == '.')
	{
		p++;
		if (!JSON_DIGIT(*p))
			return NULL;
		while (JSON_DIGIT(*p))
			p++;
	}
	if (*p == 'e' || *p == 'E')
	{
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!JSON_DIGIT(*p))
			return NULL;
		while (JSON_DIGIT(*p))
			p++;
	}
	return p;
}

/*
 * flat_column: the column of a key (as column_of finds it), trying first
 * the column after the last key's, as records usually list their keys in
 * the order of the columns.
 */
static inline int
flat_column(JsonLine *jl, const char *name, int len)
{
	int			natts = jl->desc->natts;
	int			guess = jl->last_field + 1;

	if (guess < natts && jl->name_lens[guess] == len &&
		memcmp(NameStr(TupleDescAttr(jl->desc, guess)->attname), name, len) == 0)
		return guess;
	for (int i = 0; i < natts; i++)
	{
		if (jl->name_lens[i] == len &&
			memcmp(NameStr(TupleDescAttr(jl->desc, i)->attname), name, len) == 0)
			return i;
	}
	return -1;
}

/*
 * json_scan_flat reads a line that is one flat object: whitespace, "{",
 * members "key": value separated by commas, "}", whitespace, where keys are
 * strings without escapes and values numbers, true, false, null or strings
 * without escapes.  It sets texts and lens of the columns named, the last
 * of duplicate keys winning, as the parser's callbacks do.  False for any
 * other line, valid or not: the parser then reads it.  text is
 * NUL-terminated at len and holds no NUL before (it is verified text).
 */
static bool
json_scan_flat(JsonLine *jl, const char *text, int len)
{
	const char *p = skip_space(text);

	jl->last_field = -1;
	if (*p != '{')
		return false;
	p = skip_space(p + 1);
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			const char *key;
			int			key_len;
			const char *value;
			int			value_len;
			int			col;

			if (*p != '"' || (p = scan_string(p, &key, &key_len)) == NULL)
				return false;
			p = skip_space(p);
			if (*p != ':')
				return false;
			p = skip_space(p + 1);
			value = p;
			if (*p == '"')
			{
				if ((p = scan_string(p, &value, &value_len)) == NULL)
					return false;
			}
			else
			{
				if (*p == '-' || JSON_DIGIT(*p))
					p = scan_number(p);
				else if (strncmp(p, "true", 4) == 0)
					p += 4;
				else if (strncmp(p, "false", 5) == 0)
					p += 5;
				else if (strncmp(p, "null", 4) == 0)
				{
					p += 4;
					value = NULL;
				}
				else
					return false;	/* a nested value, or not JSON */
				/* a token ends at a delimiter: "12abc" or "nullx" is not JSON */
				if (p == NULL || !(JSON_SPACE(*p) || *p == ',' || *p == '}'))
					return false;
				value_len = value != NULL ? p - value : 0;
			}
			col = flat_column(jl, key, key_len);
			if (col >= 0)
			{
				jl->last_field = col;
				jl->texts[col] = (char *) value;
				jl->lens[col] = value_len;
			}
			p = skip_space(p);
			if (*p == '}')
			{
				p++;
				break;
			}
			if (*p != ',')
				return false;
			p = skip_space(p + 1);
		}
	}
	p = skip_space(p);
	return p == text + len;
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
	jl->lens = palloc0(sizeof(int) * Max(desc->natts, 1));
	jl->name_lens = palloc(sizeof(int) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		jl->name_lens[i] = (att->attisdropped || (skip && skip[i])) ? -1 :
			(int) strlen(NameStr(att->attname));
	}
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
 * already verified, NUL-terminated at len; the decoding writes into it).
 * On failure it reports to err_cb, with payload as the record's bytes, and
 * returns false.
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
	/* a flat object: no parser, and only one level deep */
	if (json_scan_flat(jl, text, len))
		return RunRecord(careful, json_convert, jl, err_cb, arg, position, payload, payload_len);
	for (int i = 0; i < jl->desc->natts; i++)
		jl->texts[i] = NULL;
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
			const char *position;
			char	   *line;
			bool		blank = true;

			CHECK_FOR_INTERRUPTS();
			for (int i = 0; i < len && blank; i++)
				blank = reader.line.data[i] == ' ' || reader.line.data[i] == '\t';
			if (blank)
				continue;

			MemoryContextReset(rowcxt);
			old = MemoryContextSwitchTo(rowcxt);
			position = LineReaderPosition(&reader, reader.line_number);
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
