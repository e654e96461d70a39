/*-------------------------------------------------------------------------
 *
 * format.h
 *	  Record formats of the streaming extension: csv, text and json lines,
 *	  decoded into tuples of a source's relation.
 *
 * A source names its format in its options ("format": "csv" | "text" |
 * "json").  The decoders are independent of where the bytes come from: the
 * file source hands them whole files; the Kafka source will hand them one
 * message at a time.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_FORMAT_H
#define STREAMING_FORMAT_H

#include "access/tupdesc.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"

#include "formats/event_time.h"

typedef enum StreamingFormatKind
{
	STREAMING_FORMAT_CSV,
	STREAMING_FORMAT_TEXT,
	STREAMING_FORMAT_JSON
} StreamingFormatKind;

typedef struct FormatOptions
{
	StreamingFormatKind kind;
	bool		header;			/* csv: first line of each file is a header */
	char	   *delimiter;		/* csv: one character, default "," */
	char	   *quote;			/* csv: one character, default '"' */
	char	   *escape;			/* csv: one character, default = quote */
	char	   *null_string;	/* csv: text that means NULL, default "" */
	EventTimeOptions event_time;	/* how timestamptz columns are read */
} FormatOptions;

/*
 * Called once per decoded row.  values/nulls have tupdesc->natts entries
 * (dropped columns are NULL) and are only valid during the call.
 */
typedef void (*FormatRowCallback) (void *arg, Datum *values, bool *nulls);

/*
 * Called once per record that could not be decoded: position is
 * "<path>:<line>", payload the record's raw bytes, message the error.
 */
typedef void (*FormatErrorCallback) (void *arg, const char *position,
									 const char *payload, int payload_len,
									 const char *message);

/* true if key is a format option ("format", "header", "delimiter", ...) */

/*
 * A row callback may find a decoded row unusable (a source's event time
 * missing or too far ahead).  While a decoder hands a row over, it names
 * the row's record, and FormatRejectRow reports that record to the
 * decoder's error callback, as a dead letter with its position and bytes;
 * false if no record is being handed over (rows that no decoder made).
 */
extern bool FormatRejectRow(const char *message);
extern void FormatForgetRow(void);

/*
 * FormatParseOptions reads the format options out of a source's options
 * object and validates them; bad values raise an ERROR that names the
 * option and the valid choices.  Keys that are not format options are
 * ignored (the caller validates those).
 */
extern void FormatParseOptions(Jsonb *options, FormatOptions *out);

/* FormatCheckSchema rejects a relation whose columns the format cannot fill */
extern void FormatCheckSchema(const FormatOptions *opts, TupleDesc tupdesc);

/*
 * FormatDecodeFile decodes one file, calling row_cb per row, in file order.
 *
 * careful = false: the fast path.  A record that fails to convert raises an
 * ERROR; the caller runs the batch's decoding in a subtransaction and, on
 * error, decodes again with careful = true.
 * careful = true: each record is converted inside its own subtransaction; a
 * record that fails goes to err_cb and decoding goes on.
 * Errors that need no subtransaction to catch (malformed JSON, invalid
 * encoding) go to err_cb in both modes.
 * max_rows < 0 means no limit; otherwise decoding stops after that many rows.
 * max_bytes < 0 reads the whole file; otherwise the file is read up to that
 * size (the size the batch planned) and never beyond, and a file shorter
 * than that is an ERROR (it shrank after it was planned).
 * Returns the number of rows passed to row_cb.
 */
extern int64 FormatDecodeFile(const FormatOptions *opts, Relation rel,
							  const char *path, bool careful,
							  FormatRowCallback row_cb,
							  FormatErrorCallback err_cb, void *arg,
							  int64 max_rows, int64 max_bytes);

/* record.c: self-contained records, such as Kafka messages */
typedef struct RecordDecoder RecordDecoder;
extern RecordDecoder *RecordDecoderCreate(const FormatOptions *opts, TupleDesc desc,
										  const bool *skip, Datum *values, bool *nulls);
extern bool RecordDecode(RecordDecoder *dec, const char *data, int len, bool careful,
						 const char *position, FormatErrorCallback err_cb, void *arg);

#endif							/* STREAMING_FORMAT_H */
