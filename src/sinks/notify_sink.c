/*-------------------------------------------------------------------------
 *
 * notify_sink.c
 *	  The notify sink: one NOTIFY per batch, delivered when the batch
 *	  commits, with a small JSON payload {query, batch_id, rows}.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/async.h"
#include "lib/stringinfo.h"
#include "utils/json.h"

#include "sinks/sink.h"

/*
 * NotifySinkSend queues the batch's notification in its transaction.
 */
void
NotifySinkSend(const SinkOptions *opts, const char *query, int64 batch_id, int64 rows)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"query\": ");
	escape_json(&payload, query);
	appendStringInfo(&payload, ", \"batch_id\": " INT64_FORMAT ", \"rows\": " INT64_FORMAT "}",
					 batch_id, rows);
	Async_Notify(opts->channel, payload.data);
}
