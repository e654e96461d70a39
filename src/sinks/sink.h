/*-------------------------------------------------------------------------
 *
 * sink.h
 *	  Sinks besides the result table: the console sink (each batch's rows
 *	  in the server log) and the notify sink (a NOTIFY per batch).  Both
 *	  act inside the batch's transaction: a NOTIFY is delivered on commit,
 *	  and a batch that rolls back notifies nobody.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_SINK_H
#define STREAMING_SINK_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/jsonb.h"

typedef enum SinkKind
{
	SINK_TABLE,
	SINK_CONSOLE,
	SINK_NOTIFY
} SinkKind;

typedef struct SinkOptions
{
	SinkKind	kind;
	int			num_rows;		/* console: rows shown per batch */
	bool		truncate;		/* console: cut values longer than 20 characters */
	char	   *channel;		/* notify: the channel */
} SinkOptions;

extern void SinkParseOptions(const char *sink, Jsonb *options, const char *query,
							 SinkOptions *out);

/* console_sink.c */
extern void ConsoleSinkShow(const char *query, int64 batch_id, SPITupleTable *tuptable,
							uint64 ntuples, int first_column, const SinkOptions *opts);

/* notify_sink.c */
extern void NotifySinkSend(const SinkOptions *opts, const char *query, int64 batch_id,
						   int64 rows);

#endif							/* STREAMING_SINK_H */
