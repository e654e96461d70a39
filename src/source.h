/*-------------------------------------------------------------------------
 *
 * source.h
 *	  The source interface: what every kind of source (file, kafka, socket,
 *	  rate, table) provides to the micro-batch engine and to the FDW.
 *
 * A source is a foreign table of the extension's FDW plus a row of
 * streaming.sources naming its kind and options.  During a micro-batch the
 * engine asks the source to plan the batch (choose its input after the
 * committed offsets) and to read it into a tuplestore; the FDW scan of the
 * source relation then returns exactly those rows to the user's query.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_SOURCE_H
#define STREAMING_SOURCE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "nodes/parsenodes.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"
#include "utils/tuplestore.h"

typedef struct SourceBatch SourceBatch;

/*
 * A retracted row - the old values of a row that a table source with
 * changes 'all' saw deleted or updated - is returned by the scan of its
 * source with this ctid; every other row's ctid is invalid.  A query over
 * such a source reads the mark as a column of its input view (planner.c)
 * and takes the row back from its aggregates.
 */
#define SOURCE_RETRACTED_BLOCK		0
#define SOURCE_RETRACTED_OFFSET		1

/* a position to commit to streaming.offsets with the batch */
typedef struct SourceOffset
{
	char	   *partition;
	int64		offset;
} SourceOffset;

/* where reset_query() has a query read a source again from */
typedef enum SourceStartKind
{
	SOURCE_START_EARLIEST,		/* the earliest input the source still has */
	SOURCE_START_TIME,			/* the input from a time on */
	SOURCE_START_OFFSETS		/* after the given offsets */
} SourceStartKind;

typedef struct SourceStart
{
	SourceStartKind kind;
	TimestampTz time;			/* SOURCE_START_TIME */
	List	   *offsets;		/* SOURCE_START_OFFSETS: SourceOffset */
} SourceStart;

typedef struct SourceRoutine
{
	const char *kind;
	/* default_schema: the columns when create_source gets none, or NULL */
	const char *(*default_schema) (Jsonb *options);

	/* SourceValidate: reject unknown or ill-typed options (create_source) */
	void		(*validate) (Jsonb *options);
	/* SourceCheckSchema: reject columns the source cannot fill */
	void		(*check_schema) (Jsonb *options, TupleDesc tupdesc);
	/* created: the source's foreign table exists (create_source); or NULL */
	void		(*created) (Oid relid, Jsonb *options);
	/*
	 * prepare: before a batch's transaction writes or locks anything (a
	 * worker's batch, run()), set up what cannot be made later; or NULL
	 */
	void		(*prepare) (const char *query, int32 query_id, Oid relid, Jsonb *options);
	/* plan_batch: choose the input after the committed offsets; false if none */
	bool		(*plan_batch) (SourceBatch *batch);
	/* read_batch: decode the planned input with SourceBatchAddRow */
	void		(*read_batch) (SourceBatch *batch, bool careful);
	/* peek: add up to max_rows rows of the input present now (no offsets) */
	void		(*peek) (SourceBatch *batch, int64 max_rows);
	/*
	 * quiet: asked by a worker before a batch locks the query's row, a lock
	 * that takes a transaction id and writes WAL.  True when the source can
	 * tell, locking nothing but the extension's catalogs, that a batch now
	 * would find no input; *wake_at is then when to ask again.  Or NULL.
	 */
	bool		(*quiet) (const char *query, int32 query_id, Oid relid, TimestampTz *wake_at);
	/*
	 * forget: close what this process keeps for a query (or NULL): for one
	 * slice of it (slices.c), or for all of it with SLICE_WHOLE
	 */
	void		(*forget) (const char *query, int slice);
	/*
	 * start_offsets: the offsets to record for a query so that its next
	 * batch reads the source from start (reset_query), SourceOffset; NULL
	 * when the source can only start where a new query would
	 */
	List	   *(*start_offsets) (Oid relid, const char *source, Jsonb *options,
								  const SourceStart *start);
} SourceRoutine;


typedef struct DeadLetter
{
	char	   *position;
	bytea	   *payload;
	char	   *error;
} DeadLetter;

struct SourceBatch
{
	/* filled by the engine */
	const char *query;			/* the query's name; NULL when peeking */
	int32		query_id;		/* streaming.queries.id; 0 when peeking */
	Oid			relid;
	char	   *name;			/* the source's name */
	Relation	rel;
	Jsonb	   *options;
	const SourceRoutine *routine;
	MemoryContext mcxt;			/* lives as long as the batch */
	Tuplestorestate *rows;		/* the decoded input; a retracted row
								 * (SourceBatchAddRetraction) has one more
								 * column, true */
	TupleDesc	retract_desc;	/* the source's columns and that one, made
								 * by the first retracted row */
	int64		input_rows;
	List	   *dead_letters;	/* DeadLetter, kept when on_error = dead_letter */
	int64		n_dead_letters;
	bool		keep_dead_letters;

	/* event time: late rows are dropped, the maximum is tracked */
	AttrNumber	event_time_attno;	/* 0 if the query has no event time */
	bool		drop_late;		/* drop rows at or before the watermark */
	bool		planned;		/* plan_batch found input (set by the caller) */
	bool		has_watermark;
	TimestampTz watermark;		/* committed by the previous batch */
	bool		has_max_event_time;
	TimestampTz max_event_time;
	int64		event_time_delay;	/* its watermark's delay, microseconds */
	/* the source's watermark (batch.c: advance_watermark) */
	bool		source_seen;	/* it has read an event time, in any batch */
	bool		source_moved;	/* this batch moved them */
	TimestampTz source_max;		/* the largest event time it has read */
	TimestampTz source_watermark;	/* source_max - delay, never back */
	TimestampTz event_time_limit;	/* later event times are dead letters
									 * (max_event_time_ahead); set by
									 * SourceBatchReset, 0 until then */
	int64		late_rows;		/* dropped (or, in complete mode, kept) */
	bool		endless;		/* input never runs out (deterministic rate) */
	bool		read_all;		/* trigger 'once': no max_*_per_trigger limit */
	TimestampTz available_now;	/* trigger 'available_now': when the run
								 * started; input that came later waits for
								 * the next run (0: no bound) */
	int			slice;			/* with nslices > 1: the batch reads the
								 * partitions or files of this slice only
								 * (slices.c) */
	int			nslices;		/* 1: all of the input */
	bool		live;			/* the process goes on reading the source
								 * batch after batch (a worker with trigger
								 * '0' or an interval): the source may keep
								 * what it read ahead, e.g. a Kafka
								 * consumer's assignment */
	/*
	 * flush: when not NULL, SourceBatchAddRow calls it each time rows holds
	 * flush_rows rows; it takes them (runs the batch statement over them)
	 * and empties rows.  What it took is counted in flushed_rows (rows) and
	 * flushed_out (what it wrote); SourceBatchReset forgets both.  Set by
	 * the engine for the fast decoding pass only (batch.c).
	 */
	void		(*flush) (SourceBatch *batch, void *arg);
	void	   *flush_arg;
	int64		flush_rows;
	int64		flushed_rows;
	int64		flushed_out;
	int			flushes;
	double		flush_ms;
	bool		flush_failed;	/* an error came from flush, not the input */

	/*
	 * consume: when not NULL, SourceBatchAddRow hands each row to it
	 * (flush_arg its argument) instead of keeping it in rows; set by the
	 * engine for the fast decoding pass only, like flush (batch.c).
	 */
	void		(*consume) (SourceBatch *batch, Datum *values, bool *nulls, void *arg);

	/* filled by the source */
	void	   *private;
	bool		drained;		/* the batch takes all the input the source
								 * knew of when it was planned (Kafka, file
								 * sources; slices.c) */
	List	   *offsets;		/* SourceOffset */
	Jsonb	   *start_offset;	/* for streaming.progress */
	Jsonb	   *end_offset;
	Jsonb	   *latest_offset;	/* what the source had when planned, or NULL */
	int64		lost_records;	/* gone before they were read (Kafka retention) */
	/* when plan_batch finds nothing: what to wait for before asking again */
	pgsocket	wake_fd;		/* readable once input may be there, or
								 * PGINVALID_SOCKET */
	TimestampTz wake_at;		/* ask again at this time at the latest (0:
								 * the source cannot tell) */
	bool		wake_drain;		/* wake_fd is shared by several queries:
								 * whoever waits on it reads it empty */
	char	   *metrics;		/* more members of the source's progress
								 * object, as JSON text ("k": v, ...), or NULL */
};

/* source.c */
extern const SourceRoutine *SourceRoutineByKind(const char *kind);
extern bool SourceLookup(Oid relid, char **name, char **kind, Jsonb **options);
extern bool IsStreamingSource(Oid relid);
extern List *SourcesInNamespace(Oid nspid);
extern void SourceBatchAddRow(SourceBatch *batch, Datum *values, bool *nulls);
extern void SourceBatchAddRetraction(SourceBatch *batch, Datum *values, bool *nulls);
extern TupleDesc SourceRetractionDesc(TupleDesc desc);
extern void SourceBatchAddDeadLetter(SourceBatch *batch, const char *position,
									 const char *payload, int payload_len,
									 const char *error);
extern void SourceCheckOptionKeys(Jsonb *options, const char *what,
								  const char *const *valid, const char *prefix);
extern void SourceBatchReset(SourceBatch *batch);
extern int64 SourceCommittedOffset(SourceBatch *batch, const char *partition,
								   int64 dflt, bool *found);
extern void SourceBatchAddOffset(SourceBatch *batch, const char *partition, int64 offset);
extern char *SourceCondition;
extern void SourceSetCondition(const char *fmt,...) pg_attribute_printf(1, 2);
extern void SourceClearCondition(void);
extern void SourceKeepCondition(char **kept);
extern void SourceRepeatCondition(const char *kept);
extern uint64 SourceWaits;
extern void SourceWaiting(void);
extern AttrNumber SourceFindColumn(TupleDesc desc, const char *name, Oid type);
extern int64 SourceGetIntOption(Jsonb *options, const char *key, int64 dflt,
								int64 min, int64 max);
extern Jsonb *SourceOptionsFromDefElems(List *options);
extern Jsonb *SourceMergeServerOptions(Oid serverid, Jsonb *options, Oid role);
extern void SourcePrepareQuery(const char *query, int32 query_id, List *sources);
extern bool SourcesQuiet(const char *query, int32 query_id, List *sources, TimestampTz *wake_at);
extern void SourceForgetQuery(const char *query, int slice);

/* sources/{file,rate,socket,kafka,table}_source.c */
extern const SourceRoutine FileSourceRoutine;
extern const SourceRoutine RateSourceRoutine;
extern const SourceRoutine SocketSourceRoutine;
extern const SourceRoutine KafkaSourceRoutine;
extern const SourceRoutine TableSourceRoutine;

/* sources/table_source.c: the replication slots of table sources */
extern void TableSourceDropSlots(int32 query_id, List *sources);
extern bool TableSourceRetracts(Oid relid);
extern void TableSourceDropOrphanSlots(void);
extern void TableSourceCheckAlter(AlterTableStmt *stmt);
extern void TableSourceCheckRename(RenameStmt *stmt);
extern void SourceCheckRename(Node *stmt);
extern void TableSourceFollowRenames(void);

/* sources/kafka_source.c, shared with the Kafka sink and the FDW validator */
extern void KafkaCheckSettings(Jsonb *options);

/* sources/kafka_properties.c: which librdkafka properties, set where */
typedef enum KafkaOptionsPlace
{
	KAFKA_IN_SOURCE,			/* a source's own options (streaming.sources) */
	KAFKA_IN_SINK,				/* a query's sink_options (streaming.queries) */
	KAFKA_IN_SERVER,			/* a foreign server's options */
	KAFKA_IN_USER_MAPPING		/* a user mapping's options */
} KafkaOptionsPlace;

extern bool KafkaIsPassthroughKey(const char *key);
extern void KafkaCheckOptions(Jsonb *options, KafkaOptionsPlace place, Oid role);
extern void KafkaCheckInherited(Jsonb *own, Jsonb *inherited, const char *servername);
extern void KafkaCheckSasl(Jsonb *options);

/* fdw.c: what the FDW scan of a source returns during a batch */
extern void FdwSetBatchInput(Oid relid, Tuplestorestate *rows);
extern void FdwClearBatchInput(void);
extern Tuplestorestate *FdwGetBatchInput(Oid relid);

#endif							/* STREAMING_SOURCE_H */
