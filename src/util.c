/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers shared across the extension: reading option objects
 *	  (jsonb) and deparsing under a fixed search_path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "streaming.h"

/*
 * JsonbGetKey returns the value of a top-level key of an object, or NULL.
 */
JsonbValue *
JsonbGetKey(Jsonb *obj, const char *key)
{
	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj))
		return NULL;
	return getKeyJsonValueFromContainer(&obj->root, key, strlen(key), NULL);
}

/*
 * JsonbValueAsText renders a scalar as text (strings unquoted).
 */
char *
JsonbValueAsText(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvNull:
			return NULL;
		default:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	}
}

/*
 * JsonbGetBool reads a boolean option; "true"/"false" strings are accepted.
 */
bool
JsonbGetBool(Jsonb *obj, const char *key, bool dflt)
{
	JsonbValue *v = JsonbGetKey(obj, key);

	if (v == NULL || v->type == jbvNull)
		return dflt;
	if (v->type == jbvBool)
		return v->val.boolean;
	if (v->type == jbvString)
	{
		bool		result;
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);

		if (parse_bool(s, &result))
			return result;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\"", key),
			 errhint("Use true or false.")));
	return dflt;				/* keep compiler quiet */
}

/*
 * JsonbGetInt64 reads an integer option (a JSON number or a numeric string)
 * and checks that it is at least min.
 */
int64
JsonbGetInt64(Jsonb *obj, const char *key, int64 dflt, int64 min)
{
	JsonbValue *v = JsonbGetKey(obj, key);
	char	   *s;
	char	   *end;
	long long	result;

	if (v == NULL || v->type == jbvNull)
		return dflt;
	if (v->type != jbvNumeric && v->type != jbvString)
		goto bad;
	s = JsonbValueAsText(v);
	errno = 0;
	result = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || result < min)
		goto bad;
	return (int64) result;

bad:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"%s\"", key),
			 errhint("Use an integer of at least " INT64_FORMAT ".", min)));
	return dflt;				/* keep compiler quiet */
}

/*
 * JsonbGetString reads a string option, or NULL when absent.
 */
char *
JsonbGetString(Jsonb *obj, const char *key)
{
	JsonbValue *v = JsonbGetKey(obj, key);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\"", key),
				 errhint("Use a JSON string.")));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * JsonbObjectKeys lists the top-level keys of an object; anything but an
 * object is an error, as an options argument must be one.
 */
List *
JsonbObjectKeys(Jsonb *obj)
{
	List	   *keys = NIL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			level = 0;

	if (obj == NULL)
		return NIL;
	if (!JB_ROOT_IS_OBJECT(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options must be a JSON object")));

	it = JsonbIteratorInit(&obj->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			level++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			level--;
		else if (tok == WJB_KEY && level == 1)
			keys = lappend(keys, pnstrdup(v.val.string.val, v.val.string.len));
	}
	return keys;
}

/*
 * PushCatalogSearchPath sets search_path to pg_catalog until the matching
 * PopCatalogSearchPath, so that deparsed SQL qualifies every name and means
 * the same thing in any session.
 */
int
PushCatalogSearchPath(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
PopCatalogSearchPath(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

/*
 * RelationQualifiedName returns "schema"."name" of a relation, quoted.
 */
char *
RelationQualifiedName(Oid relid)
{
	char	   *relname = get_rel_name(relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  relname);
}
