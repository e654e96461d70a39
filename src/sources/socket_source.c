/*-------------------------------------------------------------------------
 *
 * socket_source.c
 *	  The socket source: a TCP client reading newline-delimited UTF-8 lines,
 *	  as Spark's socket source.
 *
 * The process that runs the query (its worker, or the backend calling
 * streaming.run()) keeps the connection open from batch to batch and
 * buffers the lines it has received.  A batch takes the buffered lines;
 * they leave the buffer only once a later batch finds the batch's offset
 * committed in streaming.offsets, so a batch that rolls back is retried
 * with the same lines.  Lines that reach the process are therefore counted
 * once, but the source is not replayable: lines still buffered when the
 * process exits, and lines the server sends while nobody is connected, are
 * gone.  That is Spark's contract for this source too; use it for demos and
 * tests, and a file or Kafka source where nothing may be lost.
 *
 * A connection that fails or is closed by the server is retried with
 * backoff (doubling from 100 ms up to 30 s).  The offset, partition "lines"
 * in streaming.offsets, counts the lines the query has consumed.
 *
 * The buffer is bounded twice: at most SOCKET_MAX_BUFFERED_LINES lines and
 * SOCKET_MAX_BUFFERED bytes of memory, counting each line's allocation with
 * its header and the array of line slots, so that empty lines count too.
 * The lines live in a generation context, which gives memory back as the
 * oldest lines are consumed, so what is counted is what is held.  A full
 * buffer stops the reading; TCP then holds the rest at the server until
 * batches have consumed lines.  Received bytes that do not fit are kept,
 * unsplit, for later: no line is lost or reordered.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "formats/decoder.h"
#include "source.h"
#include "streaming.h"

#define SOCKET_BACKOFF_MIN_MS	100
#define SOCKET_BACKOFF_MAX_MS	30000
#define SOCKET_CONNECT_TIMEOUT_MS 2000
#define SOCKET_READ_CHUNK		65536
/* stop reading while this much is buffered; TCP holds the rest */
#define SOCKET_MAX_BUFFERED		(64 * 1024 * 1024)
#define SOCKET_MAX_BUFFERED_LINES 1000000
/* the largest block of the buffer's memory context */
#define SOCKET_BUFFER_BLOCK		(1024 * 1024)
/* the allocator's header of each line's chunk (at most, PostgreSQL 15) */
#define SOCKET_CHUNK_HEADER		24
#define SOCKET_INITIAL_CAPACITY 1024
/* the most lines a batch may take (max_lines_per_trigger) */
#define SOCKET_MAX_LINES_PER_TRIGGER 10000000
/* a longer line is a dead letter, kept by its first SOCKET_KEPT_PREFIX bytes */
#define SOCKET_MAX_LINE			(16 * 1024 * 1024)
#define SOCKET_KEPT_PREFIX		1024

/* every option of a socket source: checked, and listed by the hint */
static const char *const socket_options[] = {
	"host", "port", "include_timestamp", "max_lines_per_trigger", "max_event_time_ahead", NULL
};

typedef struct SocketLine
{
	char	   *data;
	int			len;
	bool		too_long;		/* cut at SOCKET_MAX_LINE: data is its start */
	TimestampTz received;
} SocketLine;

/* one connection per (query, source) in this process */
typedef struct SocketConn
{
	char	   *query;
	Oid			relid;
	pgsocket	fd;
	TimestampTz next_attempt;
	int			backoff_ms;
	bool		logged_failure;
	char	   *condition;		/* what it waits for, until it connects */
	StringInfoData inbuf;		/* received, not yet split into lines */
	StringInfoData partial;		/* an incomplete last line */
	bool		skipping;		/* dropping the rest of a line too long */
	MemoryContext cxt;			/* the buffered lines and their array */
	SocketLine *lines;			/* lines[head .. head + nlines) are buffered */
	int			head;
	int			nlines;
	int			capacity;
	int64		buffered_bytes; /* the lines' chunks, headers included */
	int64		base;			/* offset of lines[head] */
	int			pending;		/* lines given to the last planned batch */
} SocketConn;

typedef struct SocketPlan
{
	SocketConn *conn;
	int			first;
	int			nlines;
	AttrNumber	value_att;
	AttrNumber	ts_att;
} SocketPlan;

static List *connections = NIL;

/* max_lines_per_trigger: 0 (no option) takes every buffered line */
static int64
max_lines_per_trigger(Jsonb *options)
{
	return SourceGetIntOption(options, "max_lines_per_trigger", 0, 1, SOCKET_MAX_LINES_PER_TRIGGER);
}

static int
socket_port(Jsonb *options)
{
	JsonbValue *v = JsonbGetKey(options, "port");

	if (v == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a socket source needs the option \"port\""),
				 errhint("For example: options => '{\"host\": \"localhost\", \"port\": 9999}'.")));
	return (int) SourceGetIntOption(options, "port", 0, 1, 65535);
}

static void
socket_validate(Jsonb *options)
{
	char	   *host;

	SourceCheckOptionKeys(options, "source kind \"socket\"", socket_options, NULL);
	(void) socket_port(options);
	host = JsonbGetString(options, "host");
	if (JsonbGetKey(options, "host") != NULL && (host == NULL || host[0] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"host\""),
				 errhint("Use a host name or an IP address, as a string.")));
	(void) JsonbGetBool(options, "include_timestamp", false);
	(void) max_lines_per_trigger(options);
}

static const char *
socket_default_schema(Jsonb *options)
{
	if (JsonbGetBool(options, "include_timestamp", false))
		return "value text, \"timestamp\" timestamptz";
	return "value text";
}

static void
socket_check_schema(Jsonb *options, TupleDesc desc)
{
	bool		with_ts = JsonbGetBool(options, "include_timestamp", false);
	int			expected = with_ts ? 2 : 1;
	int			live = 0;

	for (int i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			live++;
	if (SourceFindColumn(desc, "value", TEXTOID) == InvalidAttrNumber ||
		(with_ts && SourceFindColumn(desc, "timestamp", TIMESTAMPTZOID) == InvalidAttrNumber) ||
		live != expected)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a socket source has the column \"value\" text%s",
						with_ts ? " and \"timestamp\" timestamptz" : ""),
				 errhint("Leave out the schema to get it.")));
}

static SocketConn *
socket_conn(SourceBatch *batch)
{
	ListCell   *lc;
	SocketConn *conn;
	MemoryContext old;

	foreach(lc, connections)
	{
		conn = lfirst(lc);
		if (conn->relid == batch->relid && strcmp(conn->query, batch->query) == 0)
			return conn;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	conn = palloc0(sizeof(SocketConn));
	conn->query = pstrdup(batch->query);
	conn->relid = batch->relid;
	conn->fd = PGINVALID_SOCKET;
	conn->backoff_ms = SOCKET_BACKOFF_MIN_MS;
	initStringInfo(&conn->inbuf);
	initStringInfo(&conn->partial);
	/* its own context, so that pg_backend_memory_contexts shows its size */
	/* small blocks: a block is given back once all its lines are consumed */
	conn->cxt = GenerationContextCreate(TopMemoryContext, "streaming socket buffer",
										0, SOCKET_READ_CHUNK, SOCKET_BUFFER_BLOCK);
	MemoryContextSetIdentifier(conn->cxt, conn->query);
	conn->capacity = SOCKET_INITIAL_CAPACITY;
	conn->lines = MemoryContextAlloc(conn->cxt, sizeof(SocketLine) * conn->capacity);
	connections = lappend(connections, conn);
	MemoryContextSwitchTo(old);
	return conn;
}

static void
socket_close(SocketConn *conn)
{
	if (conn->fd != PGINVALID_SOCKET)
		close(conn->fd);
	conn->fd = PGINVALID_SOCKET;
}

/* a failed attempt: try again after the backoff, which doubles */
static void
socket_retry_later(SocketConn *conn, const char *host, int port, const char *why)
{
	socket_close(conn);
	if (!conn->logged_failure)
		ereport(LOG,
				(errmsg("streaming query \"%s\": could not connect to socket source at %s:%d: %s",
						conn->query, host, port, why),
				 errdetail("Retrying with backoff up to %d seconds.", SOCKET_BACKOFF_MAX_MS / 1000)));
	conn->logged_failure = true;
	SourceSetCondition("connecting to the socket source at %s:%d: %s", host, port, why);
	SourceKeepCondition(&conn->condition);
	conn->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), conn->backoff_ms);
	conn->backoff_ms = Min(conn->backoff_ms * 2, SOCKET_BACKOFF_MAX_MS);
}

/*
 * socket_connect tries one connection to each address of host:port, with a
 * bounded wait, and leaves the socket non-blocking.
 */
static void
socket_connect(SocketConn *conn, const char *host, int port)
{
	struct addrinfo hints;
	struct addrinfo *addrs;
	struct addrinfo *ai;
	char		service[16];
	int			rc;
	const char *why = "no address";

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof(service), "%d", port);
	rc = getaddrinfo(host, service, &hints, &addrs);
	if (rc != 0)
	{
		socket_retry_later(conn, host, port, gai_strerror(rc));
		return;
	}
	for (ai = addrs; ai != NULL; ai = ai->ai_next)
	{
		int			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		struct pollfd pfd;
		int			err = 0;
		socklen_t	errlen = sizeof(err);

		if (fd < 0)
		{
			why = strerror(errno);
			continue;
		}
		if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		{
			why = strerror(errno);
			close(fd);
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		{
			if (errno != EINPROGRESS)
			{
				why = strerror(errno);
				close(fd);
				continue;
			}
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			rc = poll(&pfd, 1, SOCKET_CONNECT_TIMEOUT_MS);
			if (rc <= 0)
			{
				why = rc == 0 ? "timed out" : strerror(errno);
				close(fd);
				continue;
			}
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0 || err != 0)
			{
				why = strerror(err ? err : errno);
				close(fd);
				continue;
			}
		}
		conn->fd = fd;
		break;
	}
	freeaddrinfo(addrs);
	if (conn->fd == PGINVALID_SOCKET)
	{
		socket_retry_later(conn, host, port, why);
		return;
	}
	ereport(LOG,
			(errmsg("streaming query \"%s\": connected to socket source at %s:%d",
					conn->query, host, port)));
	conn->logged_failure = false;
	conn->backoff_ms = SOCKET_BACKOFF_MIN_MS;
	SourceClearCondition();
	SourceKeepCondition(&conn->condition);
}

/* socket_buffer_full: no more lines until a batch has consumed some */
static bool
socket_buffer_full(SocketConn *conn)
{
	return conn->nlines >= SOCKET_MAX_BUFFERED_LINES ||
		conn->buffered_bytes + (int64) conn->capacity * sizeof(SocketLine) >= SOCKET_MAX_BUFFERED;
}

/* socket_line_cost: the memory a buffered line of len bytes takes */
static int64
socket_line_cost(int len)
{
	return MAXALIGN(len + 1) + SOCKET_CHUNK_HEADER;
}

static void
socket_add_line(SocketConn *conn, const char *data, int len, bool too_long, TimestampTz now)
{
	MemoryContext old = MemoryContextSwitchTo(conn->cxt);
	SocketLine *line;

	if (len > 0 && data[len - 1] == '\r')
		len--;
	if (conn->head + conn->nlines == conn->capacity)
	{
		if (conn->head > 0)
		{
			memmove(conn->lines, conn->lines + conn->head, sizeof(SocketLine) * conn->nlines);
			conn->head = 0;
		}
		if (conn->nlines == conn->capacity)
		{
			conn->capacity *= 2;
			conn->lines = repalloc_huge(conn->lines, sizeof(SocketLine) * conn->capacity);
		}
	}
	line = &conn->lines[conn->head + conn->nlines];
	line->data = palloc(len + 1);
	memcpy(line->data, data, len);
	line->data[len] = '\0';
	line->len = len;
	line->too_long = too_long;
	line->received = now;
	conn->nlines++;
	conn->buffered_bytes += socket_line_cost(len);
	MemoryContextSwitchTo(old);
}

/*
 * socket_split moves the complete lines of conn->inbuf into the buffer
 * until it is full; the bytes after the last line taken stay in inbuf.
 */
static void
socket_split(SocketConn *conn, TimestampTz now)
{
	char	   *p = conn->inbuf.data + conn->inbuf.cursor;
	char	   *end = conn->inbuf.data + conn->inbuf.len;

	while (p < end && !socket_buffer_full(conn))
	{
		char	   *nl = memchr(p, '\n', end - p);
		int			piece = (nl ? nl : end) - p;

		if (conn->skipping)
		{
			/* the rest of a line already kept as too long */
			conn->skipping = nl == NULL;
		}
		else if ((int64) conn->partial.len + piece > SOCKET_MAX_LINE)
		{
			/* no line grows without bound in memory: keep its start */
			appendBinaryStringInfo(&conn->partial, p, Min(piece, SOCKET_KEPT_PREFIX));
			socket_add_line(conn, conn->partial.data, Min(conn->partial.len, SOCKET_KEPT_PREFIX),
							true, now);
			resetStringInfo(&conn->partial);
			conn->skipping = nl == NULL;
		}
		else if (nl == NULL)
			appendBinaryStringInfo(&conn->partial, p, piece);
		else if (conn->partial.len > 0)
		{
			appendBinaryStringInfo(&conn->partial, p, piece);
			socket_add_line(conn, conn->partial.data, conn->partial.len, false, now);
			resetStringInfo(&conn->partial);
		}
		else
			socket_add_line(conn, p, piece, false, now);
		p = nl ? nl + 1 : end;
	}
	conn->inbuf.cursor = p - conn->inbuf.data;
	if (conn->inbuf.cursor >= conn->inbuf.len)
		resetStringInfo(&conn->inbuf);
}

/*
 * socket_receive reads what the server has sent, without waiting, and
 * splits it into lines, until the buffer is full.  End of stream or an
 * error closes the connection; an unterminated last line then counts as a
 * line.
 */
static void
socket_receive(SocketConn *conn, const char *host, int port)
{
	for (;;)
	{
		ssize_t		n;
		TimestampTz now = GetCurrentTimestamp();

		CHECK_FOR_INTERRUPTS();
		/* first what was received before and did not fit */
		socket_split(conn, now);
		if (conn->fd == PGINVALID_SOCKET || socket_buffer_full(conn))
			break;

		/* inbuf is empty here: receive into it */
		enlargeStringInfo(&conn->inbuf, SOCKET_READ_CHUNK);
		n = recv(conn->fd, conn->inbuf.data, SOCKET_READ_CHUNK, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			const char *why = n == 0 ? "closed the connection" : pstrdup(strerror(errno));

			ereport(LOG,
					(errmsg("streaming query \"%s\": socket source at %s:%d: %s",
							conn->query, host, port, why)));
			if (conn->partial.len > 0 && !conn->skipping)
				socket_add_line(conn, conn->partial.data, conn->partial.len, false, now);
			resetStringInfo(&conn->partial);
			conn->skipping = false;
			socket_close(conn);
			conn->next_attempt = TimestampTzPlusMilliseconds(now, conn->backoff_ms);
			conn->backoff_ms = Min(conn->backoff_ms * 2, SOCKET_BACKOFF_MAX_MS);
			break;
		}
		conn->inbuf.len = (int) n;
		conn->inbuf.data[n] = '\0';
		conn->inbuf.cursor = 0;
	}
}

/* socket_consume drops the first n buffered lines */
static void
socket_consume(SocketConn *conn, int n)
{
	if (n == conn->nlines)
	{
		/* all of them: an empty buffer gives back what a burst made it take */
		MemoryContextReset(conn->cxt);
		conn->head = 0;
		conn->nlines = 0;
		conn->capacity = SOCKET_INITIAL_CAPACITY;
		conn->lines = MemoryContextAlloc(conn->cxt, sizeof(SocketLine) * conn->capacity);
		conn->buffered_bytes = 0;
	}
	else
	{
		/* at most SOCKET_MAX_BUFFERED_LINES frees, no interrupt in between */
		for (int i = 0; i < n; i++)
		{
			conn->buffered_bytes -= socket_line_cost(conn->lines[conn->head].len);
			pfree(conn->lines[conn->head].data);
			conn->head++;
			conn->nlines--;
		}
	}
	conn->base += n;
}

static Jsonb *
lines_jsonb(int64 n)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(psprintf("{\"lines\": " INT64_FORMAT "}", n))));
}

static bool
socket_plan_batch(SourceBatch *batch)
{
	SocketConn *conn = socket_conn(batch);
	char	   *host = JsonbGetString(batch->options, "host");
	int			port = socket_port(batch->options);
	int64		max_lines = batch->read_all ? 0 : max_lines_per_trigger(batch->options);
	bool		found;
	int64		committed = SourceCommittedOffset(batch, "lines", 0, &found);
	MemoryContext old;
	SocketPlan *plan;
	int			n;

	if (host == NULL)
		host = "localhost";

	/* the last batch's lines leave the buffer once its offset is committed */
	if (conn->pending > 0 && committed == conn->base + conn->pending)
		socket_consume(conn, conn->pending);
	else
		conn->base = committed;
	conn->pending = 0;

	if (conn->fd == PGINVALID_SOCKET && GetCurrentTimestamp() >= conn->next_attempt)
		socket_connect(conn, host, port);
	else if (conn->fd == PGINVALID_SOCKET)
		SourceRepeatCondition(conn->condition);
	if (conn->fd != PGINVALID_SOCKET)
		socket_receive(conn, host, port);

	n = conn->nlines;
	if (max_lines > 0 && n > max_lines)
		n = (int) max_lines;
	if (n == 0)
		return false;

	old = MemoryContextSwitchTo(batch->mcxt);
	plan = palloc0(sizeof(SocketPlan));
	plan->conn = conn;
	plan->first = conn->head;
	plan->nlines = n;
	plan->value_att = SourceFindColumn(RelationGetDescr(batch->rel), "value", TEXTOID);
	plan->ts_att = SourceFindColumn(RelationGetDescr(batch->rel), "timestamp", TIMESTAMPTZOID);
	batch->private = plan;
	batch->start_offset = lines_jsonb(conn->base);
	batch->end_offset = lines_jsonb(conn->base + n);
	/* what the buffer held: at most SOCKET_MAX_BUFFERED_LINES past the start */
	batch->latest_offset = lines_jsonb(conn->base + conn->nlines);
	MemoryContextSwitchTo(old);
	SourceBatchAddOffset(batch, "lines", conn->base + n);
	conn->pending = n;
	return true;
}

typedef struct SocketRecord
{
	SocketLine *line;
	Datum		value;
} SocketRecord;

static void
socket_convert(void *arg)
{
	SocketRecord *rec = arg;
	char	   *text;

	(void) pg_verify_mbstr(PG_UTF8, rec->line->data, rec->line->len, false);
	text = pg_any_to_server(rec->line->data, rec->line->len, PG_UTF8);
	rec->value = PointerGetDatum(cstring_to_text(text));
}

static void
socket_error(void *arg, const char *position, const char *payload, int len,
			 const char *message)
{
	SourceBatchAddDeadLetter((SourceBatch *) arg, position, payload, len, message);
}

static void
socket_read_batch(SourceBatch *batch, bool careful)
{
	SocketPlan *plan = batch->private;
	TupleDesc	desc = RelationGetDescr(batch->rel);
	Datum	   *values = palloc0(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	MemoryContext rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming socket row",
												 ALLOCSET_DEFAULT_SIZES);

	for (int i = 0; i < desc->natts; i++)
		nulls[i] = true;
	nulls[plan->value_att - 1] = false;
	if (plan->ts_att != InvalidAttrNumber)
		nulls[plan->ts_att - 1] = false;
	for (int i = 0; i < plan->nlines; i++)
	{
		SocketRecord rec;
		MemoryContext old;
		char	   *position;

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		rec.line = &plan->conn->lines[plan->first + i];
		position = psprintf("line " INT64_FORMAT, plan->conn->base + i + 1);
		if (rec.line->too_long)
			SourceBatchAddDeadLetter(batch, position, rec.line->data, rec.line->len,
									 psprintf("the line is longer than %d MB; its first %d bytes are kept",
											  SOCKET_MAX_LINE / (1024 * 1024), SOCKET_KEPT_PREFIX));
		else if (RunRecord(careful, socket_convert, &rec, socket_error, batch, position,
						   rec.line->data, rec.line->len))
		{
			values[plan->value_att - 1] = rec.value;
			if (plan->ts_att != InvalidAttrNumber)
				values[plan->ts_att - 1] = TimestampTzGetDatum(rec.line->received);
			SourceBatchAddRow(batch, values, nulls);
		}
		MemoryContextSwitchTo(old);
	}
	MemoryContextDelete(rowcxt);
}

/*
 * socket_peek returns nothing: reading the socket outside a query would
 * take lines from the query, and the source cannot replay them.
 */
static void
socket_peek(SourceBatch *batch, int64 max_rows)
{
}

/*
 * socket_forget closes the connections this process keeps for a query (a
 * pool worker lets go of it); the lines it buffered and gave to no
 * committed batch are read again from the server by whoever runs it next
 * only if the server sends them again: as after a restart.
 */
static void
socket_forget(const char *query, int slice)
{
	ListCell   *lc;

	foreach(lc, connections)
	{
		SocketConn *conn = lfirst(lc);

		if (strcmp(conn->query, query) != 0)
			continue;
		if (conn->fd != PGINVALID_SOCKET)
			close(conn->fd);
		MemoryContextDelete(conn->cxt);
		pfree(conn->inbuf.data);
		pfree(conn->partial.data);
		if (conn->condition)
			pfree(conn->condition);
		pfree(conn->query);
		pfree(conn);
		connections = foreach_delete_current(connections, lc);
	}
}

const SourceRoutine SocketSourceRoutine = {
	.kind = "socket",
	.default_schema = socket_default_schema,
	.validate = socket_validate,
	.check_schema = socket_check_schema,
	.plan_batch = socket_plan_batch,
	.read_batch = socket_read_batch,
	.peek = socket_peek,
	.forget = socket_forget,
};
