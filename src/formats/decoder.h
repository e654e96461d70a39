/*-------------------------------------------------------------------------
 *
 * decoder.h
 *	  Machinery shared by the record decoders (private to src/formats):
 *	  reading a file line by line, converting column text into Datums, and
 *	  running one record in a subtransaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_DECODER_H
#define STREAMING_DECODER_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"

#include "formats/format.h"

/* a file read one physical line at a time */
typedef struct LineReader
{
	FILE	   *file;
	const char *path;
	int64		line_number;	/* of the line last read, 1-based */
	StringInfoData line;		/* the line last read, with its newline */
	bool		eof;			/* nothing more to read into buf */
	char	   *buf;			/* read-ahead buffer */
	size_t		buf_len;
	size_t		buf_pos;
	int64		limit;			/* read no further than this, or -1 */
	int64		consumed;		/* bytes read from the file */
	StringInfoData position;	/* "path:" and the last LineReaderPosition */
	int			position_prefix;	/* the length of "path:" */
} LineReader;

extern void LineReaderOpen(LineReader *reader, const char *path);
extern bool LineReaderFill(LineReader *reader);
extern bool LineReaderNext(LineReader *reader);
extern void LineReaderClose(LineReader *reader);
extern const char *LineReaderPosition(LineReader *reader, int64 line_number);
extern int	LineContentLength(const char *line, int len);

/* a column type that column_input.c writes without its input function */
typedef enum FastInputKind
{
	FAST_INPUT_NONE,
	FAST_INPUT_INT2,
	FAST_INPUT_INT4,
	FAST_INPUT_INT8,
	FAST_INPUT_FLOAT8,
	FAST_INPUT_BOOL,
	FAST_INPUT_TEXT,
	FAST_INPUT_VARCHAR,
	FAST_INPUT_TIMESTAMP
} FastInputKind;

/* how to turn text into each column's type (column_input.c) */
typedef struct ColumnInputs
{
	int			natts;
	FmgrInfo   *infuncs;
	Oid		   *ioparams;
	int32	   *typmods;
	bool	   *dropped;
	/* timestamptz columns (and domains over it) are read by event_time.c */
	bool	   *event_time;
	FastInputKind *fast;		/* the column's fast path, if any */
	const char **names;
	void	  **domain_info;	/* domain_check's cache, per domain column */
	Oid		   *types;
	EventTimeOptions event_time_opts;
	MemoryContext mcxt;
} ColumnInputs;

extern void ColumnInputsInit(ColumnInputs *ci, TupleDesc tupdesc, const FormatOptions *opts);
extern Datum ColumnInput(ColumnInputs *ci, int attno, char *text);
extern Datum ColumnInputLen(ColumnInputs *ci, int attno, char *text, int len);

/* a row to the row callback, with its record named for FormatRejectRow */
extern void FormatEmitRow(FormatRowCallback row_cb, FormatErrorCallback err_cb, void *arg,
						  Datum *values, bool *nulls, const char *position,
						  const char *payload, int payload_len);
extern void FormatNameRecord(FormatErrorCallback err_cb, void *arg, const char *position,
							 const char *payload, int payload_len);

/*
 * A record decoded by a callback; in careful mode the callback runs in a
 * subtransaction and an error becomes a dead letter.  Returns false if the
 * record failed (and was reported).
 */
typedef void (*RecordWork) (void *arg);
extern bool RunRecord(bool careful, RecordWork work, void *arg,
					  FormatErrorCallback err_cb, void *err_arg,
					  const char *position, const char *payload, int payload_len);

/* the decoders */
typedef struct JsonLine JsonLine;
extern JsonLine *JsonLineCreate(TupleDesc desc, ColumnInputs *inputs, const bool *skip,
								Datum *values, bool *nulls);
extern bool JsonLineDecode(JsonLine *jl, char *text, int len, bool careful,
						   const char *position, const char *payload, int payload_len,
						   FormatErrorCallback err_cb, void *arg);

extern int64 CsvDecodeFile(const FormatOptions *opts, Relation rel, const char *path,
						   bool careful, FormatRowCallback row_cb,
						   FormatErrorCallback err_cb, void *arg, int64 max_rows);
extern int64 TextDecodeFile(const FormatOptions *opts, Relation rel, const char *path,
							bool careful, FormatRowCallback row_cb,
							FormatErrorCallback err_cb, void *arg, int64 max_rows);
extern int64 JsonDecodeFile(const FormatOptions *opts, Relation rel, const char *path,
							bool careful, FormatRowCallback row_cb,
							FormatErrorCallback err_cb, void *arg, int64 max_rows);

#endif							/* STREAMING_DECODER_H */
