/*-------------------------------------------------------------------------
 *
 * sink.h
 *	  Sinks besides the result table: the console sink (each batch's rows
 *	  in the server log), the notify sink (a NOTIFY per batch), the file
 *	  sink (a csv or JSON-lines file per batch, exactly once) and the Kafka
 *	  sink (a message per row, at least once).  All act inside the batch's
 *	  transaction: a NOTIFY is delivered on commit, a file is listed in the
 *	  manifest by the commit, Kafka has acknowledged every message before
 *	  it, and a batch that rolls back notifies nobody and leaves no file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_SINK_H
#define STREAMING_SINK_H

#include "postgres.h"

#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "tcop/dest.h"
#include "utils/jsonb.h"

typedef enum SinkKind
{
	SINK_TABLE,
	SINK_CONSOLE,
	SINK_NOTIFY,
	SINK_FILE,
	SINK_KAFKA
} SinkKind;

typedef struct SinkOptions
{
	SinkKind	kind;
	int			num_rows;		/* console: rows shown per batch */
	bool		truncate;		/* console: cut values longer than 20 characters */
	char	   *channel;		/* notify: the channel */
	char	   *table;			/* table: an existing table to write, or NULL */
	char	   *path;			/* file: the directory */
	bool		json;			/* file, kafka: JSON rather than csv */
	bool		header;			/* file, csv: a header line */
	char	   *topic;			/* kafka: the topic */
	char	   *key;			/* kafka: the column that keys messages, or NULL */
	Jsonb	   *kafka_options;	/* kafka: all sink options (kafka.* included) */
} SinkOptions;

extern void SinkParseOptions(const char *sink, Jsonb *options, const char *query,
							 SinkOptions *out);

/* console_sink.c */
extern void ConsoleSinkShow(const char *query, int64 batch_id, SPITupleTable *tuptable,
							uint64 ntuples, int first_column, const SinkOptions *opts);

/* notify_sink.c */
extern void NotifySinkSend(const SinkOptions *opts, const char *query, int64 batch_id,
						   int64 rows);

/* rows.c: a row as csv or JSON; the receiver of a batch's written rows */
typedef struct RowFormat
{
	bool		json;
	int			first;			/* 0-based first column of the row */
	int			ncolumns;
	TupleDesc	desc;
	FmgrInfo   *out;			/* output function per column */
	char	   *category;		/* 'n'umber, 'b'ool, 'j'son, 't'ime, 'w'indow, 's'tring */
} RowFormat;

typedef void (*SinkRowCallback) (void *arg, TupleTableSlot *slot, int first);

extern void RowFormatInit(RowFormat *rf, TupleDesc desc, int first, bool json);
extern void RowFormatHeader(RowFormat *rf, StringInfo buf);
extern void RowFormatRow(RowFormat *rf, TupleTableSlot *slot, StringInfo buf);
extern int	RowFormatColumnIndex(RowFormat *rf, const char *name);
extern char *RowFormatColumnText(RowFormat *rf, TupleTableSlot *slot, int i);
extern DestReceiver *SinkReceiverCreate(int ncounts, int count_column, SinkRowCallback emit, void *arg);
extern int64 SinkReceiverCount(DestReceiver *self, int column);

/* file_sink.c */
typedef struct FileSink FileSink;
extern void FileSinkCheckPath(const char *path);
extern FileSink *FileSinkBegin(const SinkOptions *opts, int64 batch_id);
extern void FileSinkWrite(void *arg, TupleTableSlot *slot, int first);
extern int64 FileSinkFinish(FileSink *fs, char **path, int64 *bytes);

/* kafka_sink.c */
typedef struct KafkaSink KafkaSink;
extern void KafkaSinkParseOptions(Jsonb *options, SinkOptions *out);
extern void KafkaSinkValidate(const SinkOptions *opts, Oid owner);
extern KafkaSink *KafkaSinkBegin(const SinkOptions *opts, const char *query, Oid owner);
extern void KafkaSinkProduce(void *arg, TupleTableSlot *slot, int first);
extern int64 KafkaSinkFinish(KafkaSink *ks);

#endif							/* STREAMING_SINK_H */
