/*-------------------------------------------------------------------------
 *
 * commands.c
 *	  streaming.create_query() and drop_query(): a query's definition
 *	  (query.c) together with its worker (worker.c), so that the definition
 *	  module starts nothing and the batch, query and worker modules depend
 *	  on each other in one direction only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "query.h"
#include "source.h"
#include "streaming.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(streaming_create_query);
PG_FUNCTION_INFO_V1(streaming_drop_query);

/*
 * streaming_create_query implements streaming.create_query(): creates the
 * query and, unless start => false or streaming.autostart is off, starts
 * its worker.
 */
Datum
streaming_create_query(PG_FUNCTION_ARGS)
{
	QueryCreateArgs args;
	bool		start;
	Oid			result;

	for (int i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("name, query, output_mode and trigger must not be null")));
	args.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	args.sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	args.mode = OutputModeFromString(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	args.trigger = text_to_cstring(PG_GETARG_TEXT_PP(3));
	args.event_time = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	args.watermark = PG_ARGISNULL(5) ? NULL : PG_GETARG_INTERVAL_P(5);
	args.sink = PG_ARGISNULL(6) ? "table" : text_to_cstring(PG_GETARG_TEXT_PP(6));
	args.sink_options = PG_ARGISNULL(7) ? NULL : PG_GETARG_JSONB_P(7);
	args.on_error = PG_ARGISNULL(8) ? "dead_letter" : text_to_cstring(PG_GETARG_TEXT_PP(8));
	start = (PG_ARGISNULL(9) ? true : PG_GETARG_BOOL(9)) && streaming_autostart;
	args.enabled = start;

	result = QueryCreate(&args);
	if (start)
		StartQuery(args.name);
	PG_RETURN_OID(result);
}

/*
 * streaming_drop_query implements streaming.drop_query(name, if_exists,
 * keep_result): ends the query's worker (it may hold the query's row lock
 * in a batch), then drops the query.
 */
Datum
streaming_drop_query(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		if_exists = PG_GETARG_BOOL(1);
	bool		keep_result = PG_GETARG_BOOL(2);
	QueryDef   *q = QueryDefLoad(name, false, if_exists);

	if (q == NULL)
	{
		ereport(NOTICE,
				(errmsg("continuous query \"%s\" does not exist, skipping", name)));
		PG_RETURN_VOID();
	}
	QueryCheckOwner(q);
	StopQuery(name, false);
	QueryDrop(q, keep_result);
	/* its table sources' replication slots, when this transaction commits */
	TableSourceDropSlots(q->id, q->plan->sources);
	PG_RETURN_VOID();
}
