/*-------------------------------------------------------------------------
 *
 * kafka_source.c
 *	  The Kafka source: librdkafka, partitions assigned explicitly, offsets
 *	  kept in streaming.offsets and committed with the batch's results.
 *
 * Nothing is committed to Kafka and no consumer group is joined.  To plan
 * a batch the source lists the partitions of its topics (a fixed list or
 * a pattern, so new topics and partitions are picked up while running),
 * asks the broker for each partition's low and high watermark, and takes
 * the range from the committed offset (partition "<topic>:<n>" in
 * streaming.offsets) to the high watermark, cut down to
 * max_offsets_per_trigger in proportion to each partition's backlog.
 * Reading assigns exactly those ranges and stops at their ends, so a
 * batch that is retried, or replayed after a crash, reads the very same
 * messages; the new offsets commit in the batch's transaction, so every
 * message is counted once.
 *
 * Broker trouble is never a reason to fail a query: planning that cannot
 * reach the broker reports a condition and returns no batch; reading that
 * stalls raises an error of class 08 (connection exception), which the
 * worker answers by rolling back, waiting and retrying.
 *
 * The consumer handle is kept by the process running the query from batch
 * to batch.  librdkafka logs on its own threads, so its log callback only
 * discards; errors reach us as events on the consumer queue.
 *
 * A worker with trigger '0' or an interval ("live", SourceBatch.live) also
 * keeps its assignment: the partitions are listed again every few seconds,
 * not every batch; each stays assigned where the last batch ended and the
 * consumer fetches ahead.  A batch takes what the consumer has read by then
 * (with max_offsets_per_trigger, the same split of the backlog as above,
 * over the high watermarks librdkafka reports with the messages it
 * fetches), so it starts as soon as messages are there and is small when
 * the query is caught up.  The committed offsets still decide: whenever a
 * partition's committed offset is not where the consumer's last batch
 * ended (a batch rolled back, another runner went ahead, a new worker),
 * the partitions are assigned again at the committed offsets and what was
 * read ahead is dropped.  With nothing to read, the worker sleeps on a
 * pipe that librdkafka writes to when the consumer queue gets something
 * (rd_kafka_queue_io_event_enable).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <regex.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "formats/format.h"
#include "query.h"
#include "slices.h"
#include "source.h"
#include "streaming.h"

#define KAFKA_METADATA_TIMEOUT_MS	3000
#define KAFKA_WATERMARK_TIMEOUT_MS	3000
#define KAFKA_POLL_MS				100
#define KAFKA_CHUNK					1024
#define KAFKA_STALL_MS				10000
#define KAFKA_BACKOFF_MIN_MS		200
#define KAFKA_BACKOFF_MAX_MS		30000
/* live: how often the partitions are listed again (new topics, partitions) */
#define KAFKA_RELIST_MS				5000
/* live: with nothing read, look again at the latest after this long */
#define KAFKA_IDLE_CHECK_MS			5000

PG_FUNCTION_INFO_V1(streaming_kafka_lag);

/* every option of a kafka source (and kafka.*): checked, and listed by the hint */
static const char *const kafka_options[] = {
	"bootstrap_servers", "server", "topic", "topics", "topic_pattern", "assign", "starting_offsets",
	"max_offsets_per_trigger", "fail_on_data_loss", "format", "delimiter", "quote", "escape", "null",
	"event_time_format", "timezone", "max_event_time_ahead", NULL
};

/* the metadata columns of the json, csv and text formats */
enum
{
	META_KEY, META_TOPIC, META_PARTITION, META_OFFSET, META_TIMESTAMP, META_COUNT
};
static const char *const meta_names[] = {
	"kafka_key", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp"
};

/* the columns of the raw format, Spark's schema */
enum
{
	RAW_KEY, RAW_VALUE, RAW_TOPIC, RAW_PARTITION, RAW_OFFSET, RAW_TIMESTAMP,
	RAW_TIMESTAMP_TYPE, RAW_COUNT
};
static const char *const raw_names[] = {
	"key", "value", "topic", "partition", "offset", "timestamp", "timestamp_type"
};
static const Oid raw_types[] = {
	BYTEAOID, BYTEAOID, TEXTOID, INT4OID, INT8OID, TIMESTAMPTZOID, INT4OID
};

#define RAW_SCHEMA "key bytea, value bytea, topic text, partition int, \"offset\" bigint, " \
	"\"timestamp\" timestamptz, timestamp_type int"

typedef struct KafkaConn
{
	char	   *query;
	Oid			relid;
	int			slice;			/* the query's slice it reads (slices.c) */
	char	   *options;		/* the options it was made with, as text */
	rd_kafka_t *rk;
	TimestampTz next_attempt;
	int			backoff_ms;
	char	   *condition;		/* what it waits for, until it reaches the
								 * broker again */
	/* 'available_now': the end offsets when the run began bound the run */
	TimestampTz run_began;
	HTAB	   *run_ends;		/* OffsetEntry per partition key */

	/* live: the assignment, kept from batch to batch (TopMemoryContext) */
	bool		live;
	rd_kafka_queue_t *queue;	/* the consumer queue */
	int			wake[2];		/* a pipe librdkafka writes to when the
								 * queue gets something */
	int			nlisted;
	struct KafkaPartition *listed;	/* the partitions, as last listed */
	TimestampTz listed_at;
	bool		assigned;		/* listed[] is assigned, each at .next */
	bool		ask_broker;		/* the cached watermarks are not to be
								 * trusted: ask the broker */
	rd_kafka_message_t **held;	/* read from the queue, in no batch yet */
	int			nheld;
	int			held_cap;
} KafkaConn;

typedef struct KafkaPartition
{
	char	   *topic;
	int32		partition;
	int64		low;
	int64		high;
	int64		start;			/* first offset of the batch */
	int64		end;			/* first offset after the batch */
	/* while reading; live: where the next batch starts */
	int64		next;
	bool		done;
	/* live: the offset after the last message (or end) the consumer read */
	int64		fetched;
} KafkaPartition;

typedef struct KafkaPlan
{
	KafkaConn  *conn;
	int			nparts;
	KafkaPartition *parts;
	bool		raw;
	FormatOptions format;
	/* live: the batch's messages, in the order read */
	rd_kafka_message_t **msgs;
	int			nmsgs;
} KafkaPlan;

static List *connections = NIL;

static KafkaPartition *find_partition(KafkaPlan *plan, const char *topic, int32 partition);

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

/* bootstrap_servers, or its librdkafka spelling kafka.bootstrap.servers */
static char *
bootstrap_servers(Jsonb *options)
{
	char	   *s = JsonbGetString(options, "bootstrap_servers");

	return s ? s : JsonbGetString(options, "kafka.bootstrap.servers");
}

static bool
is_raw(Jsonb *options)
{
	char	   *format = JsonbGetString(options, "format");

	return format == NULL || strcmp(format, "raw") == 0;
}

/* a jsonb value of any scalar kind as text */
static char *
option_text(JsonbValue *v)
{
	return JsonbValueAsText(v);
}

/*
 * topic_list returns the topics named by "topic" or "topics" (an array, or
 * a comma-separated string), or NIL for a pattern.
 */
static List *
topic_list(Jsonb *options)
{
	JsonbValue *v;
	List	   *topics = NIL;

	if ((v = JsonbGetKey(options, "topic")) != NULL)
		return list_make1(option_text(v));
	if ((v = JsonbGetKey(options, "topics")) == NULL)
		return NIL;
	if (v->type == jbvString)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
		char	   *tok;
		char	   *save;

		for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		{
			while (*tok == ' ')
				tok++;
			if (*tok)
				topics = lappend(topics, pstrdup(tok));
		}
	}
	else if (v->type == jbvBinary)
	{
		JsonbIterator *it = JsonbIteratorInit(v->val.binary.data);
		JsonbValue	elem;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
		{
			if (tok != WJB_ELEM)
				continue;
			if (elem.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"topics\""),
						 errhint("Use an array of topic names, or a comma-separated string.")));
			topics = lappend(topics, pnstrdup(elem.val.string.val, elem.val.string.len));
		}
	}
	return topics;
}

static void
compile_pattern(const char *pattern, regex_t *re)
{
	int			rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);

	if (rc != 0)
	{
		char		msg[256];

		regerror(rc, re, msg, sizeof(msg));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_REGULAR_EXPRESSION),
				 errmsg("invalid value for option \"topic_pattern\": %s", msg)));
	}
}

static pg_attribute_noreturn() void
bad_assign(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"assign\""),
			 errdetail("%s", detail),
			 errhint("Use an object of topic names and partition numbers, such as {\"events\": [0, 1, 2]}.")));
}

/*
 * assigned_partitions returns the partitions that the option "assign"
 * names, as KafkaPartitions with topic and partition set, in the order
 * given; NIL without the option.  As in Spark, the value is an object
 * {"topic": [partition, ...], ...}, or that object as a JSON string.
 */
static List *
assigned_partitions(Jsonb *options)
{
	JsonbValue *v = JsonbGetKey(options, "assign");
	Jsonb	   *obj;
	JsonbIterator *it;
	JsonbValue	x;
	JsonbIteratorToken tok;
	List	   *parts = NIL;
	char	   *topic = NULL;

	if (v == NULL)
		return NIL;
	if (v->type == jbvString)
	{
		char	   *text = pnstrdup(v->val.string.val, v->val.string.len);

		obj = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
	}
	else if (v->type == jbvBinary)
		obj = JsonbValueToJsonb(v);
	else
		bad_assign("The value is neither an object nor a string.");
	if (!JB_ROOT_IS_OBJECT(obj))
		bad_assign("The value is not an object.");

	it = JsonbIteratorInit(&obj->root);
	while ((tok = JsonbIteratorNext(&it, &x, true)) != WJB_DONE)
	{
		JsonbIterator *pit;
		JsonbValue	p;
		JsonbIteratorToken ptok;
		int			n = 0;

		if (tok == WJB_KEY)
		{
			topic = pnstrdup(x.val.string.val, x.val.string.len);
			if (topic[0] == '\0')
				bad_assign("A topic name is empty.");
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (x.type != jbvBinary || !JsonContainerIsArray(x.val.binary.data))
			bad_assign(psprintf("The partitions of topic \"%s\" are not an array.", topic));
		pit = JsonbIteratorInit(x.val.binary.data);
		while ((ptok = JsonbIteratorNext(&pit, &p, true)) != WJB_DONE)
		{
			char	   *num;
			char	   *end;
			long		id;
			ListCell   *lc;
			KafkaPartition *kp;

			if (ptok != WJB_ELEM)
				continue;
			CHECK_FOR_INTERRUPTS();
			if (p.type != jbvNumeric)
				bad_assign(psprintf("A partition of topic \"%s\" is not a number.", topic));
			num = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(p.val.numeric)));
			errno = 0;
			id = strtol(num, &end, 10);
			if (*end != '\0' || errno != 0 || id < 0 || id > PG_INT32_MAX)
				bad_assign(psprintf("Partition %s of topic \"%s\" is not a partition number (0 or more).",
									num, topic));
			foreach(lc, parts)
			{
				KafkaPartition *other = lfirst(lc);

				if (other->partition == id && strcmp(other->topic, topic) == 0)
					bad_assign(psprintf("Partition %ld of topic \"%s\" is named twice.", id, topic));
			}
			kp = palloc0(sizeof(KafkaPartition));
			kp->topic = topic;
			kp->partition = (int32) id;
			parts = lappend(parts, kp);
			n++;
		}
		if (n == 0)
			bad_assign(psprintf("Topic \"%s\" has no partitions listed.", topic));
	}
	if (parts == NIL)
		bad_assign("No topic is named.");
	return parts;
}

/*
 * build_conf turns the kafka.* options into a librdkafka configuration;
 * librdkafka's own message says what is wrong with a setting.
 */
static rd_kafka_conf_t *
build_conf(Jsonb *options, const char *client_id, bool live)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	List	   *keys = JsonbObjectKeys(options);
	ListCell   *lc;
	char		errstr[512];
	static const char *const fixed[][2] = {
		{"enable.auto.commit", "false"},
		{"enable.auto.offset.store", "false"},
		{"enable.partition.eof", "true"},
		{"log_level", "3"},
	};

	/* assign() needs a group id; no group is joined and nothing committed */
	if (rd_kafka_conf_set(conf, "group.id", "streaming", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		elog(ERROR, "could not set Kafka option group.id: %s", errstr);

	/*
	 * Prefetching stops when the consumer queue holds queued.min.messages
	 * messages of a partition or queued.max.messages.kbytes in all, and
	 * then waits a second (fetch.queue.backoff.ms from librdkafka 2.1 on,
	 * fixed before) even once the batch has drained the queue: a large
	 * batch stalled for a second every 100,000 messages a partition.  So a
	 * source without max_offsets_per_trigger lifts the message count, and
	 * only the memory bound applies; one with a limit prefetches at most a
	 * batch of a partition, since each batch assigns its partitions anew
	 * and what was fetched beyond its end is fetched again.  The wait is
	 * shortened where librdkafka allows it.  The source's kafka.* options
	 * may set both.
	 */
	{
		int64		max = JsonbGetInt64(options, "max_offsets_per_trigger", 0, 1);
		char	   *count = max > 0 ? psprintf(INT64_FORMAT, Min(Max(max, 1000), 10000000)) : "10000000";

		if (rd_kafka_conf_set(conf, "queued.min.messages", count, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
			elog(ERROR, "could not set Kafka option queued.min.messages: %s", errstr);
		(void) rd_kafka_conf_set(conf, "fetch.queue.backoff.ms", "50", errstr, sizeof(errstr));
	}

	/*
	 * A live consumer fetches while the query waits: a broker holds an empty
	 * fetch up to fetch.wait.max.ms, and some (librdkafka's mock cluster)
	 * answer only then, even when messages came in meanwhile, so keep it
	 * short.  Offsets it cannot fetch are an error to report, not a reason
	 * to jump to the end of the partition.  The source's kafka.* options may
	 * set both.
	 */
	if (live)
	{
		if (rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
			rd_kafka_conf_set(conf, "auto.offset.reset", "error", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
			elog(ERROR, "could not set a Kafka option: %s", errstr);
	}
	foreach(lc, keys)
	{
		char	   *key = lfirst(lc);
		char	   *value;

		if (!KafkaIsPassthroughKey(key))
			continue;
		value = option_text(JsonbGetKey(options, key));
		if (rd_kafka_conf_set(conf, key + 6, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		{
			rd_kafka_conf_destroy(conf);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"%s\": %s", key, errstr)));
		}
	}
	if (JsonbGetString(options, "bootstrap_servers") != NULL &&
		rd_kafka_conf_set(conf, "bootstrap.servers", JsonbGetString(options, "bootstrap_servers"),
						  errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"bootstrap_servers\": %s", errstr)));
	}
	if (client_id && rd_kafka_conf_set(conf, "client.id", client_id, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		elog(LOG, "could not set client.id: %s", errstr);
	for (int i = 0; i < lengthof(fixed); i++)
		if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		{
			rd_kafka_conf_destroy(conf);
			elog(ERROR, "could not set Kafka option %s: %s", fixed[i][0], errstr);
		}
	return conf;
}

static pg_attribute_noreturn() void
bad_starting_offsets(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"starting_offsets\""),
			 errhint("Use \"earliest\", \"latest\", or an object such as {\"topic\": {\"0\": 42, \"1\": -2}} (-2 earliest, -1 latest).")));
}

/*
 * starting_offset_for returns the starting_offsets setting of a partition
 * on the query's first run: -2 earliest, -1 latest, or an offset.
 */
static int64
starting_offset_for(Jsonb *options, const char *topic, int32 partition)
{
	JsonbValue *v = JsonbGetKey(options, "starting_offsets");
	char	   *s;
	Jsonb	   *obj;
	JsonbValue *t;
	JsonbValue	pkey;
	JsonbValue *pv;
	char		pname[16];

	if (v == NULL)
		return -1;
	if (v->type == jbvString)
	{
		s = pnstrdup(v->val.string.val, v->val.string.len);
		if (strcmp(s, "earliest") == 0)
			return -2;
		if (strcmp(s, "latest") == 0)
			return -1;
		goto bad;
	}
	if (v->type != jbvBinary)
		goto bad;
	obj = JsonbValueToJsonb(v);
	if (!JB_ROOT_IS_OBJECT(obj))
		goto bad;
	t = JsonbGetKey(obj, topic);
	if (t == NULL)
		return -2;
	if (t->type != jbvBinary)
		goto bad;
	obj = JsonbValueToJsonb(t);
	if (!JB_ROOT_IS_OBJECT(obj))
		goto bad;
	snprintf(pname, sizeof(pname), "%d", partition);
	pkey.type = jbvString;
	pkey.val.string.val = pname;
	pkey.val.string.len = strlen(pname);
	pv = findJsonbValueFromContainer(&obj->root, JB_FOBJECT, &pkey);
	if (pv == NULL)
		return -2;
	if (pv->type != jbvNumeric)
		goto bad;
	{
		int64		off = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(pv->val.numeric)));

		if (off < -2)
			goto bad;
		return off;
	}
bad:
	bad_starting_offsets();
	return -1;
}

/*
 * validate_starting_offsets: "earliest", "latest", or {topic: {partition:
 * offset}} with partitions as digit strings and offsets of at least -2.
 */
static void
validate_starting_offsets(Jsonb *options)
{
	JsonbValue *v = JsonbGetKey(options, "starting_offsets");
	JsonbIterator *it;
	JsonbValue	x;
	JsonbIteratorToken tok;
	int			level = 0;

	if (v == NULL)
		return;
	if (v->type == jbvString)
	{
		(void) starting_offset_for(options, "", 0);
		return;
	}
	if (v->type != jbvBinary)
		bad_starting_offsets();
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &x, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
				if (++level > 2)
					bad_starting_offsets();
				break;
			case WJB_END_OBJECT:
				level--;
				break;
			case WJB_KEY:
				if (level == 2)
				{
					if (x.val.string.len == 0 || x.val.string.len > 9)
						bad_starting_offsets();
					for (int i = 0; i < x.val.string.len; i++)
						if (!isdigit((unsigned char) x.val.string.val[i]))
							bad_starting_offsets();
				}
				break;
			case WJB_VALUE:
				if (level != 2 || x.type != jbvNumeric)
					bad_starting_offsets();
				{
					char	   *num = DatumGetCString(DirectFunctionCall1(numeric_out,
																		  NumericGetDatum(x.val.numeric)));
					char	   *end;
					long long	off = strtoll(num, &end, 10);

					if (*end != '\0' || off < -2)
						bad_starting_offsets();
				}
				break;
			default:
				bad_starting_offsets();
		}
	}
}

/* for the servers of the wrapper: librdkafka must take the settings */
void
KafkaCheckSettings(Jsonb *options)
{
	rd_kafka_conf_destroy(build_conf(options, NULL, false));
}

static void
kafka_validate(Jsonb *options)
{
	int			nsel = 0;
	char	   *format;
	rd_kafka_conf_t *conf;

	/* create_source checked the kafka.* options against the allow-list */
	SourceCheckOptionKeys(options, "source kind \"kafka\"", kafka_options, "kafka.");
	if (bootstrap_servers(options) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a kafka source needs the option \"bootstrap_servers\""),
				 errhint("For example: options => '{\"bootstrap_servers\": \"localhost:9092\", \"topic\": \"events\"}'.")));
	if (JsonbGetKey(options, "bootstrap_servers") != NULL &&
		JsonbGetKey(options, "kafka.bootstrap.servers") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("options \"bootstrap_servers\" and \"kafka.bootstrap.servers\" exclude each other")));
	nsel += JsonbGetKey(options, "topic") != NULL;
	nsel += JsonbGetKey(options, "topics") != NULL;
	nsel += JsonbGetKey(options, "topic_pattern") != NULL;
	nsel += JsonbGetKey(options, "assign") != NULL;
	if (nsel != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a kafka source needs exactly one of the options \"topic\", \"topics\", \"topic_pattern\" and \"assign\"")));
	if (JsonbGetKey(options, "assign") != NULL)
		(void) assigned_partitions(options);
	else if (JsonbGetKey(options, "topic_pattern") != NULL)
	{
		regex_t		re;
		char	   *pattern = JsonbGetString(options, "topic_pattern");

		if (pattern == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"topic_pattern\""),
					 errhint("Use a POSIX regular expression, as a string.")));
		compile_pattern(pattern, &re);
		regfree(&re);
	}
	else if (topic_list(options) == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no topic given")));
	KafkaCheckSasl(options);
	validate_starting_offsets(options);
	(void) JsonbGetInt64(options, "max_offsets_per_trigger", 0, 1);
	(void) JsonbGetBool(options, "fail_on_data_loss", true);

	format = JsonbGetString(options, "format");
	if (format != NULL && strcmp(format, "raw") != 0 && strcmp(format, "json") != 0 &&
		strcmp(format, "csv") != 0 && strcmp(format, "text") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"format\": \"%s\"", format),
				 errhint("Valid formats of a kafka source are raw, json, csv and text.")));
	if (is_raw(options))
	{
		static const char *const csv_keys[] = {"delimiter", "quote", "escape", "null", NULL};

		for (int i = 0; csv_keys[i]; i++)
			if (JsonbGetKey(options, csv_keys[i]) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" applies only to the csv format", csv_keys[i])));
	}
	else
	{
		FormatOptions fmt;

		FormatParseOptions(options, &fmt);
	}

	conf = build_conf(options, NULL, false);
	rd_kafka_conf_destroy(conf);
}

static const char *
kafka_default_schema(Jsonb *options)
{
	char	   *format = JsonbGetString(options, "format");

	if (is_raw(options))
		return RAW_SCHEMA;
	if (strcmp(format, "text") == 0)
		return "value text";
	return NULL;
}

static bool
meta_type_ok(int meta, Oid type)
{
	switch (meta)
	{
		case META_KEY:
			return type == BYTEAOID || type == TEXTOID;
		case META_TOPIC:
			return type == TEXTOID;
		case META_PARTITION:
			return type == INT4OID;
		case META_OFFSET:
			return type == INT8OID;
		case META_TIMESTAMP:
			return type == TIMESTAMPTZOID;
	}
	return false;
}

static int
meta_of(const char *name)
{
	for (int m = 0; m < META_COUNT; m++)
		if (strcmp(name, meta_names[m]) == 0)
			return m;
	return -1;
}

static int
raw_of(const char *name)
{
	for (int r = 0; r < RAW_COUNT; r++)
		if (strcmp(name, raw_names[r]) == 0)
			return r;
	return -1;
}

static void
kafka_check_schema(Jsonb *options, TupleDesc desc)
{
	int			payload_cols = 0;

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);

		if (att->attisdropped)
			continue;
		if (is_raw(options))
		{
			int			r = raw_of(name);

			if (r < 0 || !(att->atttypid == raw_types[r] ||
						   ((r == RAW_KEY || r == RAW_VALUE) && att->atttypid == TEXTOID)))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" is not a column of the raw format", name),
						 errdetail("The raw format has the columns %s (key and value may also be text).",
								   RAW_SCHEMA),
						 errhint("Leave out the schema to get them all, or use the json, csv or text format.")));
			continue;
		}
		if (meta_of(name) >= 0)
		{
			if (!meta_type_ok(meta_of(name), att->atttypid))
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("metadata column \"%s\" has the wrong type", name),
						 errhint("kafka_key is bytea or text, kafka_topic text, kafka_partition int, kafka_offset bigint, kafka_timestamp timestamptz.")));
			continue;
		}
		payload_cols++;
	}
	if (!is_raw(options) && strcmp(JsonbGetString(options, "format"), "text") == 0)
	{
		int			n = 0;
		Oid			type = InvalidOid;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && meta_of(NameStr(att->attname)) < 0)
			{
				n++;
				type = att->atttypid;
			}
		}
		if (n != 1 || (type != TEXTOID && type != VARCHAROID))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("a text kafka source has exactly one column of type text besides the metadata columns")));
	}
	else if (!is_raw(options) && payload_cols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("a kafka source in the %s format needs at least one column besides the metadata columns",
						JsonbGetString(options, "format"))));
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void
discard_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
}

static rd_kafka_t *
new_consumer(Jsonb *options, const char *client_id, bool live)
{
	rd_kafka_conf_t *conf;
	char		errstr[512];
	rd_kafka_t *rk;

	KafkaCheckSasl(options);
	conf = build_conf(options, client_id, live);
	rd_kafka_conf_set_log_cb(conf, discard_log);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not create a Kafka consumer: %s", errstr)));
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

/*
 * live_forget drops what a live consumer read ahead and marks its partitions
 * to be assigned again.
 */
static void
live_forget(KafkaConn *conn)
{
	for (int i = 0; i < conn->nheld; i++)
		rd_kafka_message_destroy(conn->held[i]);
	conn->nheld = 0;
	conn->assigned = false;
}

/*
 * kafka_conn_destroy ends a consumer and frees what it holds.
 */
static void
kafka_conn_destroy(KafkaConn *conn)
{
	live_forget(conn);
	if (conn->queue)
		rd_kafka_queue_destroy(conn->queue);
	rd_kafka_destroy(conn->rk);
	if (conn->wake[0] >= 0)
		close(conn->wake[0]);
	if (conn->wake[1] >= 0)
		close(conn->wake[1]);
	if (conn->run_ends)
		hash_destroy(conn->run_ends);
	if (conn->held)
		pfree(conn->held);
	for (int i = 0; i < conn->nlisted; i++)
		pfree(conn->listed[i].topic);
	if (conn->listed)
		pfree(conn->listed);
	if (conn->condition)
		pfree(conn->condition);
	pfree(conn->query);
	pfree(conn->options);
	pfree(conn);
}

/*
 * slice_partitions keeps, of a source's partitions, those of the batch's
 * slice (slices.c).
 */
static List *
slice_partitions(SourceBatch *batch, List *parts)
{
	ListCell   *lc;

	if (batch->nslices <= 1)
		return parts;
	foreach(lc, parts)
	{
		KafkaPartition *kp = lfirst(lc);

		if (SliceOfPartition(kp->partition, batch->nslices) != batch->slice)
			parts = foreach_delete_current(parts, lc);
	}
	return parts;
}

/*
 * kafka_conn returns the consumer of the batch's query and source, made
 * anew when the options changed since it was made: new credentials in the
 * owner's user mapping, a source owned by another role, new settings on
 * the server.
 */
static KafkaConn *
kafka_conn(SourceBatch *batch)
{
	char	   *text = JsonbToCString(NULL, &batch->options->root, VARSIZE(batch->options));
	ListCell   *lc;
	KafkaConn  *conn;
	rd_kafka_t *rk;
	MemoryContext old;

	foreach(lc, connections)
	{
		conn = lfirst(lc);
		if (conn->relid != batch->relid || strcmp(conn->query, batch->query) != 0 ||
			conn->slice != batch->slice)
			continue;
		if (strcmp(conn->options, text) == 0 && conn->live == batch->live)
			return conn;
		kafka_conn_destroy(conn);
		connections = foreach_delete_current(connections, lc);
	}
	rk = new_consumer(batch->options, psprintf("streaming-%s", batch->query), batch->live);
	old = MemoryContextSwitchTo(TopMemoryContext);
	conn = palloc0(sizeof(KafkaConn));
	conn->query = pstrdup(batch->query);
	conn->relid = batch->relid;
	conn->slice = batch->slice;
	conn->options = pstrdup(text);
	conn->backoff_ms = KAFKA_BACKOFF_MIN_MS;
	conn->rk = rk;
	conn->wake[0] = conn->wake[1] = -1;
	conn->live = batch->live;
	if (conn->live)
	{
		/* the queue wakes the worker through a pipe when it gets something */
		if (pipe2(conn->wake, O_NONBLOCK | O_CLOEXEC) != 0)
		{
			int			save_errno = errno;

			rd_kafka_destroy(rk);
			pfree(conn);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not create a pipe: %m")));
		}
		conn->queue = rd_kafka_queue_get_consumer(rk);
		rd_kafka_queue_io_event_enable(conn->queue, conn->wake[1], "w", 1);
	}
	connections = lappend(connections, conn);
	MemoryContextSwitchTo(old);
	return conn;
}

/* the broker could not be reached: say so, and try again after a backoff */
static void
kafka_unreachable(KafkaConn *conn, Jsonb *options, const char *what, const char *why)
{
	SourceSetCondition("waiting for Kafka (%s): %s: %s",
					   bootstrap_servers(options), what, why);
	SourceKeepCondition(&conn->condition);
	conn->next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), conn->backoff_ms);
	conn->backoff_ms = Min(conn->backoff_ms * 2, KAFKA_BACKOFF_MAX_MS);
}

/* ------------------------------------------------------------------------
 * Planning
 * ------------------------------------------------------------------------ */

static char *
partition_key(const char *topic, int32 partition)
{
	return psprintf("%s:%d", topic, partition);
}

/*
 * check_assigned fills parts with the partitions that the option "assign"
 * names, once the broker's metadata md shows that each exists.  A topic
 * the broker does not know (yet) is waited for, as with "topic"; a
 * partition number beyond the topic's partitions is a mistake in the
 * source's definition, and an error.  False (and *why) to wait.
 */
static bool
check_assigned(const struct rd_kafka_metadata *md, List *assigned, List **parts, char **why)
{
	ListCell   *lc;

	foreach(lc, assigned)
	{
		KafkaPartition *kp = lfirst(lc);
		const struct rd_kafka_metadata_topic *mt = NULL;
		bool		found = false;

		for (int t = 0; t < md->topic_cnt && mt == NULL; t++)
			if (strcmp(md->topics[t].topic, kp->topic) == 0)
				mt = &md->topics[t];
		if (mt == NULL || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			*why = mt == NULL ? psprintf("topic \"%s\" does not exist", kp->topic) :
				psprintf("topic \"%s\": %s", kp->topic, rd_kafka_err2str(mt->err));
			return false;
		}
		for (int p = 0; p < mt->partition_cnt && !found; p++)
			found = mt->partitions[p].id == kp->partition;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("Kafka topic \"%s\" has no partition %d", kp->topic, kp->partition),
					 errdetail("The source's option \"assign\" names it; the topic has %d partitions, numbered from 0.",
							   mt->partition_cnt),
					 errhint("Assign partitions that exist, or add partitions to the topic.")));
		*parts = lappend(*parts, kp);
	}
	return true;
}

/*
 * list_partitions fills parts with the partitions of the source's topics,
 * or those it is assigned; false if the broker did not answer.  The
 * metadata request is bounded by KAFKA_METADATA_TIMEOUT_MS, so a broker
 * that is down costs the backend that long, never more.
 */
static bool
list_partitions(KafkaConn *conn, Jsonb *options, List **parts, char **why)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t err;
	List	   *topics = topic_list(options);
	List	   *assigned = assigned_partitions(options);
	char	   *pattern = JsonbGetString(options, "topic_pattern");
	regex_t		re;

	err = rd_kafka_metadata(conn->rk, 1, NULL, &md, KAFKA_METADATA_TIMEOUT_MS);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		*why = pstrdup(rd_kafka_err2str(err));
		return false;
	}
	if (assigned != NIL)
	{
		volatile bool ok = false;

		/* librdkafka's metadata is freed however the check ends */
		PG_TRY();
		{
			ok = check_assigned(md, assigned, parts, why);
		}
		PG_FINALLY();
		{
			rd_kafka_metadata_destroy(md);
		}
		PG_END_TRY();
		return ok;
	}
	if (pattern)
		compile_pattern(pattern, &re);
	for (int t = 0; t < md->topic_cnt; t++)
	{
		const struct rd_kafka_metadata_topic *mt = &md->topics[t];
		bool		wanted = false;

		if (pattern)
			wanted = mt->topic[0] != '_' && regexec(&re, mt->topic, 0, NULL, 0) == 0;
		else
		{
			ListCell   *lc;

			foreach(lc, topics)
				if (strcmp(lfirst(lc), mt->topic) == 0)
					wanted = true;
		}
		if (!wanted || mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
			continue;
		for (int p = 0; p < mt->partition_cnt; p++)
		{
			KafkaPartition *kp = palloc0(sizeof(KafkaPartition));

			kp->topic = pstrdup(mt->topic);
			kp->partition = mt->partitions[p].id;
			*parts = lappend(*parts, kp);
		}
	}
	if (pattern)
		regfree(&re);
	rd_kafka_metadata_destroy(md);
	if (*parts == NIL && !pattern)
	{
		*why = psprintf("topic \"%s\" does not exist", (char *) linitial(topics));
		return false;
	}
	return true;
}

/* partition_names lists partitions as <topic>:<partition>, for a message */
static char *
partition_names(List *parts)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, parts)
	{
		KafkaPartition *kp = lfirst(lc);

		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 partition_key(kp->topic, kp->partition));
	}
	return buf.data;
}

static int
partition_cmp(const ListCell *a, const ListCell *b)
{
	KafkaPartition *pa = lfirst(a);
	KafkaPartition *pb = lfirst(b);
	int			c = strcmp(pa->topic, pb->topic);

	return c != 0 ? c : (pa->partition > pb->partition) - (pa->partition < pb->partition);
}

/*
 * committed_offsets reads this query's offsets of the source into a hash
 * table keyed by "<topic>:<partition>"; NULL if there are none yet.
 */
typedef struct OffsetEntry
{
	char		key[NAMEDATALEN * 2];
	int64		offset;
} OffsetEntry;

static HTAB *
committed_offsets(SourceBatch *batch)
{
	HASHCTL		ctl;
	HTAB	   *h;
	Oid			argtypes[2] = {TEXTOID, OIDOID};
	Datum		args[2];

	ctl.keysize = NAMEDATALEN * 2;
	ctl.entrysize = sizeof(OffsetEntry);
	ctl.hcxt = CurrentMemoryContext;
	h = hash_create("streaming kafka offsets", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	args[0] = CStringGetTextDatum(batch->query);
	args[1] = ObjectIdGetDatum(batch->relid);
	SPI_connect();
	/* not read-only: after waiting for the query's lock, see the latest */
	/* not read-only: a run() of many batches must see the last one's offsets */
	if (CatalogExecute("SELECT partition, \"offset\" FROM streaming.offsets "
					   "WHERE query OPERATOR(pg_catalog.=) $1 AND source OPERATOR(pg_catalog.=) $2",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read streaming.offsets");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *key = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		char	   *colon = strrchr(key, ':');
		bool		isnull;
		OffsetEntry *e;
		char		k[NAMEDATALEN * 2];

		/*
		 * A slice's batch sees its own partitions only: a slice that has
		 * committed none starts where starting_offsets says, whatever the
		 * others committed before it got going.
		 */
		if (batch->nslices > 1 && colon != NULL &&
			SliceOfPartition(pg_strtoint32(colon + 1), batch->nslices) != batch->slice)
			continue;
		strlcpy(k, key, sizeof(k));
		e = hash_search(h, k, HASH_ENTER, NULL);
		e->offset = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	SPI_finish();
	if (hash_get_num_entries(h) == 0)
	{
		hash_destroy(h);
		return NULL;
	}
	return h;
}

static Jsonb *
offsets_jsonb(KafkaPartition *parts, int n, int which)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < n; i++)
	{
		int64		v = which == 0 ? parts[i].start : which == 1 ? parts[i].end : parts[i].high;

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, partition_key(parts[i].topic, parts[i].partition));
		appendStringInfo(&buf, ": " INT64_FORMAT, v);
	}
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * limit_ranges cuts the ranges down to max offsets in total, in proportion
 * to each partition's backlog (largest remainders first), as Spark does.
 */
static void
limit_ranges(KafkaPartition *parts, int n, int64 max)
{
	int64		total = 0;
	int64		given = 0;

	for (int i = 0; i < n; i++)
		total += parts[i].end - parts[i].start;
	if (max <= 0 || total <= max)
		return;
	for (int i = 0; i < n; i++)
	{
		int64		backlog = parts[i].end - parts[i].start;
		int64		share = (int64) ((double) max * backlog / total);

		parts[i].end = parts[i].start + share;
		given += share;
	}
	/* the rounding remainder, one each to partitions with backlog left */
	while (given < max)
	{
		bool		any = false;

		for (int i = 0; i < n && given < max; i++)
		{
			if (parts[i].end < parts[i].high)
			{
				parts[i].end++;
				given++;
				any = true;
			}
		}
		if (!any)
			break;
	}
}

/* ------------------------------------------------------------------------
 * Live planning: a worker's consumer keeps its assignment
 * ------------------------------------------------------------------------ */

static KafkaPartition *
live_partition(KafkaConn *conn, const char *topic, int32 partition)
{
	for (int i = 0; i < conn->nlisted; i++)
		if (conn->listed[i].partition == partition && strcmp(conn->listed[i].topic, topic) == 0)
			return &conn->listed[i];
	return NULL;
}

/*
 * live_list lists the source's partitions again; if they changed, the
 * consumer is assigned anew.  False if the broker did not answer.
 */
static bool
live_list(SourceBatch *batch, KafkaConn *conn)
{
	List	   *list = NIL;
	char	   *why = NULL;
	bool		same;
	ListCell   *lc;

	if (!list_partitions(conn, batch->options, &list, &why))
	{
		kafka_unreachable(conn, batch->options, "listing partitions", why);
		return false;
	}
	list = slice_partitions(batch, list);
	list_sort(list, partition_cmp);
	same = list_length(list) == conn->nlisted;
	foreach(lc, list)
	{
		KafkaPartition *kp = lfirst(lc);

		if (same && live_partition(conn, kp->topic, kp->partition) == NULL)
			same = false;
	}
	if (!same)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		int			i = 0;

		live_forget(conn);
		for (i = 0; i < conn->nlisted; i++)
			pfree(conn->listed[i].topic);
		if (conn->listed)
			pfree(conn->listed);
		conn->nlisted = list_length(list);
		conn->listed = palloc0(sizeof(KafkaPartition) * Max(conn->nlisted, 1));
		i = 0;
		foreach(lc, list)
		{
			KafkaPartition *kp = lfirst(lc);

			conn->listed[i].topic = pstrdup(kp->topic);
			conn->listed[i].partition = kp->partition;
			i++;
		}
		MemoryContextSwitchTo(old);
	}
	conn->listed_at = GetCurrentTimestamp();
	SourceClearCondition();
	SourceKeepCondition(&conn->condition);
	conn->backoff_ms = KAFKA_BACKOFF_MIN_MS;
	return true;
}

/*
 * live_assign assigns the listed partitions at the committed offsets (or
 * where starting_offsets says, for partitions that have none), checking
 * them against the partitions' low and high watermarks as kafka_plan_batch
 * does.  The watermarks come from librdkafka's cache when it has them, so
 * that a worker that assigns again after a rolled-back batch asks the
 * broker nothing; only partitions this consumer has not fetched from yet
 * cost a round trip.  *moved is set if a partition starts elsewhere than
 * at a committed offset.  False if the broker did not answer.
 */
static bool
live_assign(SourceBatch *batch, KafkaConn *conn, HTAB *committed, bool *moved)
{
	bool		fail_on_loss = JsonbGetBool(batch->options, "fail_on_data_loss", true);
	bool		first_run = committed == NULL;
	rd_kafka_topic_partition_list_t *assignment;
	rd_kafka_resp_err_t err;

	live_forget(conn);
	for (int i = 0; i < conn->nlisted; i++)
	{
		KafkaPartition *kp = &conn->listed[i];
		OffsetEntry *e = NULL;
		char		key[NAMEDATALEN * 2];

		CHECK_FOR_INTERRUPTS();
		kp->low = kp->high = -1;
		if (conn->ask_broker ||
			rd_kafka_get_watermark_offsets(conn->rk, kp->topic, kp->partition,
										   &kp->low, &kp->high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
			kp->low < 0 || kp->high < 0)
		{
			err = rd_kafka_query_watermark_offsets(conn->rk, kp->topic, kp->partition,
												   &kp->low, &kp->high, KAFKA_WATERMARK_TIMEOUT_MS);
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			{
				kafka_unreachable(conn, batch->options,
								  psprintf("the offsets of %s:%d", kp->topic, kp->partition),
								  rd_kafka_err2str(err));
				return false;
			}
		}
		strlcpy(key, partition_key(kp->topic, kp->partition), sizeof(key));
		if (committed)
			e = hash_search(committed, key, HASH_FIND, NULL);
		if (e != NULL)
			kp->start = e->offset;
		else if (first_run)
		{
			int64		s = starting_offset_for(batch->options, kp->topic, kp->partition);

			kp->start = s == -2 ? kp->low : s == -1 ? kp->high : s;
			*moved = true;
		}
		else
		{
			kp->start = kp->low;
			*moved = true;
		}
		if (kp->start < kp->low || kp->start > kp->high)
		{
			if (fail_on_loss)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("Kafka partition %s:%d no longer has offset " INT64_FORMAT,
								kp->topic, kp->partition, kp->start),
						 errdetail("The broker has offsets " INT64_FORMAT " to " INT64_FORMAT
								   "; the messages in between were deleted (retention) or the topic was recreated.",
								   kp->low, kp->high),
						 errhint("Set the source's option fail_on_data_loss to false to skip them, with a warning.")));
			ereport(WARNING,
					(errmsg("Kafka partition %s:%d: skipping from offset " INT64_FORMAT " to " INT64_FORMAT
							", which the broker no longer has",
							kp->topic, kp->partition, kp->start, kp->low)));
			if (kp->start < kp->low)
				batch->lost_records += kp->low - kp->start;
			kp->start = kp->low;
			*moved = true;
		}
		kp->next = kp->fetched = kp->start;
	}
	conn->ask_broker = false;

	assignment = rd_kafka_topic_partition_list_new(Max(conn->nlisted, 1));
	for (int i = 0; i < conn->nlisted; i++)
		rd_kafka_topic_partition_list_add(assignment, conn->listed[i].topic,
										  conn->listed[i].partition)->offset = conn->listed[i].start;
	err = rd_kafka_assign(conn->rk, assignment);
	rd_kafka_topic_partition_list_destroy(assignment);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not assign Kafka partitions: %s", rd_kafka_err2str(err))));
	conn->assigned = true;
	return true;
}

/*
 * live_read takes what the consumer queue has, waiting up to timeout_ms
 * for the first of it: messages after the last one read of their
 * partition are held for the batches; an end-of-partition event moves the
 * partition's read position over offsets without messages (transaction
 * markers, compaction).  Broker trouble becomes the query's condition;
 * offsets the broker does not have (retention) fail the batch, and the
 * next plan asks the broker for the partitions' watermarks.  Returns the
 * number of events taken.
 */
static int
live_read(SourceBatch *batch, KafkaConn *conn, int timeout_ms)
{
	rd_kafka_message_t *msgs[KAFKA_CHUNK];
	ssize_t		n;
	char	   *fatal = NULL;

	n = rd_kafka_consume_batch_queue(conn->queue, timeout_ms, msgs, KAFKA_CHUNK);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("reading from Kafka failed: %s", rd_kafka_err2str(rd_kafka_last_error()))));
	if (conn->nheld + n > conn->held_cap)
	{
		conn->held_cap = Max(conn->held_cap * 2, conn->nheld + KAFKA_CHUNK);
		conn->held = conn->held
			? repalloc(conn->held, sizeof(rd_kafka_message_t *) * conn->held_cap)
			: MemoryContextAlloc(TopMemoryContext, sizeof(rd_kafka_message_t *) * conn->held_cap);
	}
	for (ssize_t i = 0; i < n; i++)
	{
		rd_kafka_message_t *msg = msgs[i];
		KafkaPartition *kp = msg->rkt ? live_partition(conn, rd_kafka_topic_name(msg->rkt), msg->partition) : NULL;

		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		{
			if (kp && msg->offset > kp->fetched)
				kp->fetched = msg->offset;
		}
		else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			if (msg->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
				msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
				msg->err == RD_KAFKA_RESP_ERR__FATAL)
			{
				if (fatal == NULL)
					fatal = pstrdup(rd_kafka_message_errstr(msg));
			}
			else
				SourceSetCondition("waiting for Kafka (%s): %s",
								   bootstrap_servers(batch->options), rd_kafka_message_errstr(msg));
		}
		else if (kp && conn->assigned && msg->offset >= kp->fetched)
		{
			conn->held[conn->nheld++] = msg;
			kp->fetched = msg->offset + 1;
			continue;
		}
		rd_kafka_message_destroy(msg);
	}
	if (fatal != NULL)
	{
		conn->ask_broker = true;
		live_forget(conn);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("reading from Kafka failed: %s", fatal)));
	}
	return (int) n;
}

/* the batch's messages go back to librdkafka when the batch ends, however */
static void
release_messages(void *arg)
{
	KafkaPlan  *plan = arg;

	for (int i = 0; i < plan->nmsgs; i++)
		rd_kafka_message_destroy(plan->msgs[i]);
	plan->nmsgs = 0;
}

/*
 * kafka_plan_live plans a batch of a live consumer: from where the last
 * batch ended (the committed offsets) to what the consumer has read, cut
 * down to max_offsets_per_trigger as kafka_plan_batch does.
 */
static bool
kafka_plan_live(SourceBatch *batch, KafkaConn *conn)
{
	int64		max = JsonbGetInt64(batch->options, "max_offsets_per_trigger", 0, 1);
	TimestampTz now = GetCurrentTimestamp();
	HTAB	   *committed;
	KafkaPlan  *plan;
	bool		moved = false;
	bool		just_assigned = false;
	int64		total = 0;
	int			n;
	int			kept;
	char		buf[64];
	MemoryContextCallback *cb;

	if (now < conn->next_attempt)
	{
		SourceRepeatCondition(conn->condition);
		batch->wake_at = conn->next_attempt;
		return false;
	}
	if ((conn->listed == NULL || now >= TimestampTzPlusMilliseconds(conn->listed_at, KAFKA_RELIST_MS)) &&
		!live_list(batch, conn))
	{
		batch->wake_at = conn->next_attempt;
		return false;
	}

	/* the assignment holds while every partition's batches ended where it is committed */
	committed = committed_offsets(batch);
	for (int i = 0; conn->assigned && i < conn->nlisted; i++)
	{
		OffsetEntry *e = NULL;
		char		key[NAMEDATALEN * 2];

		strlcpy(key, partition_key(conn->listed[i].topic, conn->listed[i].partition), sizeof(key));
		if (committed)
			e = hash_search(committed, key, HASH_FIND, NULL);
		if (e == NULL || e->offset != conn->listed[i].next)
			live_forget(conn);
	}
	if (!conn->assigned)
	{
		if (!live_assign(batch, conn, committed, &moved))
		{
			batch->wake_at = conn->next_attempt;
			return false;
		}
		just_assigned = true;
	}

	/* what the consumer has read by now; the pipe first, so no wake-up is lost */
	while (read(conn->wake[0], buf, sizeof(buf)) > 0)
		;
	while (live_read(batch, conn, 0) == KAFKA_CHUNK)
		CHECK_FOR_INTERRUPTS();

	plan = palloc0(sizeof(KafkaPlan));
	plan->conn = conn;
	plan->raw = is_raw(batch->options);
	if (!plan->raw)
		FormatParseOptions(batch->options, &plan->format);
	plan->nparts = conn->nlisted;
	plan->parts = palloc0(sizeof(KafkaPartition) * Max(plan->nparts, 1));
	for (int i = 0; i < plan->nparts; i++)
	{
		KafkaPartition *kp = &plan->parts[i];
		int64		low;
		int64		high;

		*kp = conn->listed[i];
		kp->start = kp->next;
		kp->end = kp->fetched;
		/* the high watermark librdkafka saw last, for the split and progress */
		if (rd_kafka_get_watermark_offsets(conn->rk, kp->topic, kp->partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR)
			high = -1;
		kp->high = Max(high, kp->fetched);

		/*
		 * Right after an assignment the consumer has read nothing yet: the
		 * batch goes up to the high watermarks the assignment saw, as a
		 * batch planned in a session does, rather than being empty.
		 */
		if (just_assigned)
			kp->high = Max(kp->high, conn->listed[i].high);
		if (max > 0 || just_assigned)
			kp->end = kp->high;
	}
	if (max > 0 || just_assigned)
	{
		TimestampTz last_progress = GetCurrentTimestamp();
		bool		waiting = true;

		limit_ranges(plan->parts, plan->nparts, max);
		/* the consumer is fetching up to the ends; wait until it has */
		while (waiting)
		{
			CHECK_FOR_INTERRUPTS();
			waiting = false;
			for (int i = 0; i < plan->nparts; i++)
				if (conn->listed[i].fetched < plan->parts[i].end)
					waiting = true;
			if (!waiting)
				break;
			if (live_read(batch, conn, KAFKA_POLL_MS) > 0)
				last_progress = GetCurrentTimestamp();
			else if (GetCurrentTimestamp() - last_progress > KAFKA_STALL_MS * 1000L)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("reading from Kafka stalled for %d seconds", KAFKA_STALL_MS / 1000),
						 errdetail("The batch is rolled back and retried from the committed offsets.")));
		}
	}
	for (int i = 0; i < plan->nparts; i++)
		total += plan->parts[i].end - plan->parts[i].start;
	if (total == 0 && !moved)
	{
		/* nothing: sleep until the consumer queue gets something */
		batch->wake_fd = conn->wake[0];
		batch->wake_at = Min(TimestampTzPlusMilliseconds(conn->listed_at, KAFKA_RELIST_MS),
							 TimestampTzPlusMilliseconds(now, KAFKA_IDLE_CHECK_MS));
		return false;
	}

	/* the batch takes the messages before the ends; the others wait */
	plan->msgs = palloc(sizeof(rd_kafka_message_t *) * Max(conn->nheld, 1));
	n = 0;
	kept = 0;
	for (int i = 0; i < conn->nheld; i++)
	{
		rd_kafka_message_t *msg = conn->held[i];
		KafkaPartition *kp = find_partition(plan, rd_kafka_topic_name(msg->rkt), msg->partition);

		if (kp != NULL && msg->offset < kp->end)
			plan->msgs[n++] = msg;
		else
			conn->held[kept++] = msg;
	}
	conn->nheld = kept;
	plan->nmsgs = n;
	cb = palloc(sizeof(MemoryContextCallback));
	cb->func = release_messages;
	cb->arg = plan;
	MemoryContextRegisterResetCallback(batch->mcxt, cb);

	batch->drained = true;
	for (int i = 0; i < plan->nparts; i++)
	{
		batch->drained &= plan->parts[i].end >= plan->parts[i].high;
		conn->listed[i].next = plan->parts[i].end;
		SourceBatchAddOffset(batch, partition_key(plan->parts[i].topic, plan->parts[i].partition),
							 plan->parts[i].end);
	}
	if (n > 0)
		SourceClearCondition();
	batch->start_offset = offsets_jsonb(plan->parts, plan->nparts, 0);
	batch->end_offset = offsets_jsonb(plan->parts, plan->nparts, 1);
	batch->latest_offset = offsets_jsonb(plan->parts, plan->nparts, 2);
	batch->private = plan;
	return true;
}

static bool
kafka_plan_batch(SourceBatch *batch)
{
	KafkaConn  *conn = kafka_conn(batch);
	MemoryContext old = MemoryContextSwitchTo(batch->mcxt);
	bool		fail_on_loss = JsonbGetBool(batch->options, "fail_on_data_loss", true);
	int64		max = batch->read_all ? 0 :
		JsonbGetInt64(batch->options, "max_offsets_per_trigger", 0, 1);
	List	   *list = NIL;
	HTAB	   *committed;
	KafkaPlan  *plan;
	char	   *why = NULL;
	bool		first_run;
	bool		recording = false;
	bool		moved = false;
	int64		total = 0;
	ListCell   *lc;
	int			i;

	if (conn->live)
	{
		bool		planned = kafka_plan_live(batch, conn);

		MemoryContextSwitchTo(old);
		return planned;
	}
	if (GetCurrentTimestamp() < conn->next_attempt)
	{
		SourceRepeatCondition(conn->condition);
		SourceWaiting();
		MemoryContextSwitchTo(old);
		return false;
	}
	if (!list_partitions(conn, batch->options, &list, &why))
	{
		kafka_unreachable(conn, batch->options, "listing partitions", why);
		MemoryContextSwitchTo(old);
		return false;
	}
	list = slice_partitions(batch, list);
	list_sort(list, partition_cmp);

	plan = palloc0(sizeof(KafkaPlan));
	plan->conn = conn;
	plan->raw = is_raw(batch->options);
	if (!plan->raw)
		FormatParseOptions(batch->options, &plan->format);
	plan->nparts = list_length(list);
	plan->parts = palloc0(sizeof(KafkaPartition) * Max(plan->nparts, 1));
	i = 0;
	foreach(lc, list)
		plan->parts[i++] = *(KafkaPartition *) lfirst(lc);

	committed = committed_offsets(batch);
	first_run = committed == NULL;
	if (batch->available_now != 0 && conn->run_began != batch->available_now)
	{
		HASHCTL		ctl;

		if (conn->run_ends)
			hash_destroy(conn->run_ends);
		ctl.keysize = NAMEDATALEN * 2;
		ctl.entrysize = sizeof(OffsetEntry);
		ctl.hcxt = TopMemoryContext;
		conn->run_ends = hash_create("kafka available_now ends", 64, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		conn->run_began = batch->available_now;
		recording = true;
	}
	for (i = 0; i < plan->nparts; i++)
	{
		KafkaPartition *kp = &plan->parts[i];
		rd_kafka_resp_err_t err;
		OffsetEntry *e = NULL;
		char		key[NAMEDATALEN * 2];

		CHECK_FOR_INTERRUPTS();
		err = rd_kafka_query_watermark_offsets(conn->rk, kp->topic, kp->partition,
											   &kp->low, &kp->high, KAFKA_WATERMARK_TIMEOUT_MS);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		{
			kafka_unreachable(conn, batch->options,
							  psprintf("the offsets of %s:%d", kp->topic, kp->partition),
							  rd_kafka_err2str(err));
			MemoryContextSwitchTo(old);
			return false;
		}
		strlcpy(key, partition_key(kp->topic, kp->partition), sizeof(key));
		if (committed)
			e = hash_search(committed, key, HASH_FIND, NULL);
		if (e != NULL)
			kp->start = e->offset;
		else if (first_run)
		{
			int64		s = starting_offset_for(batch->options, kp->topic, kp->partition);

			kp->start = s == -2 ? kp->low : s == -1 ? kp->high : s;
			moved = true;
		}
		else
		{
			/* a partition that appeared while running starts at its beginning */
			kp->start = kp->low;
			moved = true;
		}

		/* offsets that are gone from the broker */
		if (kp->start < kp->low || kp->start > kp->high)
		{
			int64		lost = kp->start < kp->low ? kp->low - kp->start : 0;

			if (fail_on_loss)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("Kafka partition %s:%d no longer has offset " INT64_FORMAT,
								kp->topic, kp->partition, kp->start),
						 errdetail("The broker has offsets " INT64_FORMAT " to " INT64_FORMAT
								   "; the messages in between were deleted (retention) or the topic was recreated.",
								   kp->low, kp->high),
						 errhint("Set the source's option fail_on_data_loss to false to skip them, with a warning.")));
			ereport(WARNING,
					(errmsg("Kafka partition %s:%d: skipping from offset " INT64_FORMAT " to " INT64_FORMAT
							", which the broker no longer has",
							kp->topic, kp->partition, kp->start, kp->low)));
			batch->lost_records += lost;
			kp->start = kp->low;
			moved = true;
		}
		kp->end = kp->high;
		if (batch->available_now != 0)
		{
			/* the run's first batch records the ends; the others stop there */
			bool		found;
			OffsetEntry *end = hash_search(conn->run_ends, key, HASH_ENTER, &found);

			if (!found)
				end->offset = recording ? kp->high : kp->start;
			kp->end = Max(kp->start, Min(kp->high, end->offset));
		}
	}
	limit_ranges(plan->parts, plan->nparts, max);
	for (i = 0; i < plan->nparts; i++)
		total += plan->parts[i].end - plan->parts[i].start;

	SourceClearCondition();
	SourceKeepCondition(&conn->condition);
	conn->backoff_ms = KAFKA_BACKOFF_MIN_MS;
	if (total == 0 && !moved)
	{
		MemoryContextSwitchTo(old);
		return false;
	}
	batch->drained = true;
	for (i = 0; i < plan->nparts; i++)
	{
		batch->drained &= plan->parts[i].end >= plan->parts[i].high;
		SourceBatchAddOffset(batch, partition_key(plan->parts[i].topic, plan->parts[i].partition),
							 plan->parts[i].end);
	}
	batch->start_offset = offsets_jsonb(plan->parts, plan->nparts, 0);
	batch->end_offset = offsets_jsonb(plan->parts, plan->nparts, 1);
	batch->latest_offset = offsets_jsonb(plan->parts, plan->nparts, 2);
	batch->private = plan;
	MemoryContextSwitchTo(old);
	return true;
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

typedef struct KafkaReader
{
	SourceBatch *batch;
	KafkaPlan  *plan;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	bool	   *skip;			/* metadata columns */
	AttrNumber	meta_att[META_COUNT];	/* 0-based, or -1 */
	AttrNumber	raw_att[RAW_COUNT];
	RecordDecoder *decoder;
	rd_kafka_message_t *msg;	/* the message being decoded */
} KafkaReader;

static void
kafka_error(void *arg, const char *position, const char *payload, int len, const char *message)
{
	KafkaReader *r = arg;
	char	   *pos = psprintf("%s:%d:" INT64_FORMAT, rd_kafka_topic_name(r->msg->rkt),
							   r->msg->partition, r->msg->offset);

	SourceBatchAddDeadLetter(r->batch, pos, payload, len, message);
}

static Datum
bytes_datum(const void *data, size_t len, Oid type)
{
	if (type == TEXTOID)
		return PointerGetDatum(cstring_to_text_with_len(data, len));
	else
	{
		bytea	   *b = palloc(VARHDRSZ + len);

		SET_VARSIZE(b, VARHDRSZ + len);
		memcpy(VARDATA(b), data, len);
		return PointerGetDatum(b);
	}
}

static TimestampTz
message_timestamp(rd_kafka_message_t *msg, int *type)
{
	rd_kafka_timestamp_type_t tstype;
	int64		ms = rd_kafka_message_timestamp(msg, &tstype);

	*type = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME ? 0 :
		tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? 1 : -1;
	/* Unix milliseconds to PostgreSQL microseconds */
	return ms * 1000 - ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
}

/*
 * decode_message turns one message into a row: the raw columns, or the
 * decoded value plus the metadata columns.
 */
static void
decode_message(KafkaReader *r, rd_kafka_message_t *msg, bool careful)
{
	TupleDesc	desc = r->desc;
	int			tstype;
	TimestampTz ts = message_timestamp(msg, &tstype);

	r->msg = msg;
	if (r->plan->raw)
	{
		for (int c = 0; c < RAW_COUNT; c++)
		{
			int			att = r->raw_att[c];
			Oid			type;

			if (att < 0)
				continue;
			type = TupleDescAttr(desc, att)->atttypid;
			r->nulls[att] = false;
			switch (c)
			{
				case RAW_KEY:
				case RAW_VALUE:
					{
						const void *p = c == RAW_KEY ? msg->key : msg->payload;
						size_t		len = c == RAW_KEY ? msg->key_len : msg->len;

						if (p == NULL)
							r->nulls[att] = true;
						else if (type == TEXTOID && !pg_verify_mbstr(GetDatabaseEncoding(), p, len, true))
						{
							kafka_error(r, NULL, p, len, "invalid byte sequence for the server encoding");
							return;
						}
						else
							r->values[att] = bytes_datum(p, len, type);
						break;
					}
				case RAW_TOPIC:
					r->values[att] = CStringGetTextDatum(rd_kafka_topic_name(msg->rkt));
					break;
				case RAW_PARTITION:
					r->values[att] = Int32GetDatum(msg->partition);
					break;
				case RAW_OFFSET:
					r->values[att] = Int64GetDatum(msg->offset);
					break;
				case RAW_TIMESTAMP:
					r->nulls[att] = tstype < 0;
					r->values[att] = TimestampTzGetDatum(ts);
					break;
				case RAW_TIMESTAMP_TYPE:
					r->values[att] = Int32GetDatum(tstype);
					break;
			}
		}
		SourceBatchAddRow(r->batch, r->values, r->nulls);
		return;
	}

	if (!RecordDecode(r->decoder, msg->payload, (int) msg->len, careful, NULL, kafka_error, r))
		return;
	for (int m = 0; m < META_COUNT; m++)
	{
		int			att = r->meta_att[m];

		if (att < 0)
			continue;
		r->nulls[att] = false;
		switch (m)
		{
			case META_KEY:
				if (msg->key == NULL)
					r->nulls[att] = true;
				else
				{
					Oid			type = TupleDescAttr(desc, att)->atttypid;

					if (type == TEXTOID && !pg_verify_mbstr(GetDatabaseEncoding(), msg->key, msg->key_len, true))
					{
						kafka_error(r, NULL, msg->key, msg->key_len, "the key is not valid in the server encoding");
						return;
					}
					r->values[att] = bytes_datum(msg->key, msg->key_len, type);
				}
				break;
			case META_TOPIC:
				r->values[att] = CStringGetTextDatum(rd_kafka_topic_name(msg->rkt));
				break;
			case META_PARTITION:
				r->values[att] = Int32GetDatum(msg->partition);
				break;
			case META_OFFSET:
				r->values[att] = Int64GetDatum(msg->offset);
				break;
			case META_TIMESTAMP:
				r->nulls[att] = tstype < 0;
				r->values[att] = TimestampTzGetDatum(ts);
				break;
		}
	}
	SourceBatchAddRow(r->batch, r->values, r->nulls);
}

static KafkaPartition *
find_partition(KafkaPlan *plan, const char *topic, int32 partition)
{
	for (int i = 0; i < plan->nparts; i++)
		if (plan->parts[i].partition == partition && strcmp(plan->parts[i].topic, topic) == 0)
			return &plan->parts[i];
	return NULL;
}

static void
kafka_read_batch(SourceBatch *batch, bool careful)
{
	KafkaPlan  *plan = batch->private;
	rd_kafka_t *rk = plan->conn->rk;
	rd_kafka_topic_partition_list_t *assignment;
	KafkaReader r;
	volatile int remaining = 0;
	rd_kafka_queue_t *queue;
	rd_kafka_message_t **msgs;
	volatile ssize_t nmsgs = 0;
	volatile ssize_t destroyed = 0;
	TimestampTz last_progress = GetCurrentTimestamp();
	char	   *last_error = NULL;
	MemoryContext rowcxt;
	rd_kafka_resp_err_t err;

	memset(&r, 0, sizeof(r));
	r.batch = batch;
	r.plan = plan;
	r.desc = RelationGetDescr(batch->rel);
	r.values = palloc0(sizeof(Datum) * Max(r.desc->natts, 1));
	r.nulls = palloc(sizeof(bool) * Max(r.desc->natts, 1));
	r.skip = palloc0(sizeof(bool) * Max(r.desc->natts, 1));
	for (int m = 0; m < META_COUNT; m++)
		r.meta_att[m] = -1;
	for (int c = 0; c < RAW_COUNT; c++)
		r.raw_att[c] = -1;
	for (int i = 0; i < r.desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(r.desc, i);

		r.nulls[i] = true;
		if (att->attisdropped)
			continue;
		if (plan->raw)
		{
			if (raw_of(NameStr(att->attname)) >= 0)
				r.raw_att[raw_of(NameStr(att->attname))] = i;
		}
		else if (meta_of(NameStr(att->attname)) >= 0)
		{
			r.meta_att[meta_of(NameStr(att->attname))] = i;
			r.skip[i] = true;
		}
	}
	if (!plan->raw)
		r.decoder = RecordDecoderCreate(&plan->format, r.desc, r.skip, r.values, r.nulls);

	/* live: the messages the plan took from the consumer */
	if (plan->msgs != NULL)
	{
		rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming kafka row", ALLOCSET_DEFAULT_SIZES);
		for (int i = 0; i < plan->nmsgs; i++)
		{
			MemoryContext old;

			CHECK_FOR_INTERRUPTS();
			old = MemoryContextSwitchTo(rowcxt);
			decode_message(&r, plan->msgs[i], careful);
			MemoryContextSwitchTo(old);
			MemoryContextReset(rowcxt);
		}
		MemoryContextDelete(rowcxt);
		return;
	}

	assignment = rd_kafka_topic_partition_list_new(Max(plan->nparts, 1));
	for (int i = 0; i < plan->nparts; i++)
	{
		KafkaPartition *kp = &plan->parts[i];

		kp->next = kp->start;
		kp->done = kp->end <= kp->start;
		if (kp->done)
			continue;
		rd_kafka_topic_partition_list_add(assignment, kp->topic, kp->partition)->offset = kp->start;
		remaining++;
	}
	if (remaining == 0)
	{
		rd_kafka_topic_partition_list_destroy(assignment);
		return;
	}
	err = rd_kafka_assign(rk, assignment);
	rd_kafka_topic_partition_list_destroy(assignment);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not assign Kafka partitions: %s", rd_kafka_err2str(err))));

	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "streaming kafka row", ALLOCSET_DEFAULT_SIZES);
	queue = rd_kafka_queue_get_consumer(rk);
	msgs = palloc(sizeof(rd_kafka_message_t *) * KAFKA_CHUNK);
	PG_TRY();
	{
		while (remaining > 0)
		{
			bool		progressed = false;

			CHECK_FOR_INTERRUPTS();
			/* many messages per call: one hand-off from librdkafka, not one each */
			nmsgs = rd_kafka_consume_batch_queue(queue, KAFKA_POLL_MS, msgs, KAFKA_CHUNK);
			destroyed = 0;
			if (nmsgs < 0)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("reading from Kafka failed: %s",
								rd_kafka_err2str(rd_kafka_last_error()))));
			for (ssize_t i = 0; i < nmsgs; i++)
			{
				rd_kafka_message_t *msg = msgs[i];
				KafkaPartition *kp;

				kp = msg->rkt ? find_partition(plan, rd_kafka_topic_name(msg->rkt), msg->partition) : NULL;
				if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
				{
					/* the end of the partition: done if the range ends there */
					if (kp && !kp->done && msg->offset >= kp->end)
					{
						kp->done = true;
						remaining--;
					}
				}
				else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
				{
					if (last_error)
						pfree(last_error);
					last_error = pstrdup(rd_kafka_message_errstr(msg));
					if (msg->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
						msg->err == RD_KAFKA_RESP_ERR__FATAL)
						ereport(ERROR,
								(errcode(ERRCODE_CONNECTION_FAILURE),
								 errmsg("reading from Kafka failed: %s", last_error)));
				}
				else if (kp && !kp->done && msg->offset >= kp->next)
				{
					if (msg->offset < kp->end)
					{
						MemoryContext old = MemoryContextSwitchTo(rowcxt);

						decode_message(&r, msg, careful);
						MemoryContextSwitchTo(old);
						MemoryContextReset(rowcxt);
						kp->next = msg->offset + 1;
					}
					if (msg->offset + 1 >= kp->end)
					{
						kp->done = true;
						remaining--;
					}
					progressed = true;
				}
				rd_kafka_message_destroy(msg);
				destroyed = i + 1;
			}
			if (progressed)
				last_progress = GetCurrentTimestamp();
			else if (GetCurrentTimestamp() - last_progress > KAFKA_STALL_MS * 1000L)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("reading from Kafka stalled for %d seconds%s%s",
								KAFKA_STALL_MS / 1000, last_error ? ": " : "",
								last_error ? last_error : ""),
						 errdetail("The batch is rolled back and retried from the committed offsets.")));
		}
	}
	PG_FINALLY();
	{
		for (ssize_t i = destroyed; i < nmsgs; i++)
			rd_kafka_message_destroy(msgs[i]);
		rd_kafka_queue_destroy(queue);
		/* stop fetching; the next batch assigns its own ranges */
		rd_kafka_assign(rk, NULL);
	}
	PG_END_TRY();
	MemoryContextDelete(rowcxt);
}

/*
 * kafka_peek: the first messages present now, from the earliest offsets
 * (read with a consumer of its own, so nothing is taken from a query).
 */
static void
kafka_peek(SourceBatch *batch, int64 max_rows)
{
	KafkaConn	tmp;
	List	   *list = NIL;
	char	   *why = NULL;

	memset(&tmp, 0, sizeof(tmp));
	tmp.rk = new_consumer(batch->options, "streaming-peek", false);
	PG_TRY();
	{
		KafkaPlan  *plan = palloc0(sizeof(KafkaPlan));
		int64		left = max_rows;
		int			i = 0;
		ListCell   *lc;

		if (!list_partitions(&tmp, batch->options, &list, &why))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not reach Kafka (%s): %s",
							bootstrap_servers(batch->options), why)));
		list_sort(list, partition_cmp);
		plan->conn = &tmp;
		plan->raw = is_raw(batch->options);
		if (!plan->raw)
			FormatParseOptions(batch->options, &plan->format);
		plan->nparts = list_length(list);
		plan->parts = palloc0(sizeof(KafkaPartition) * Max(plan->nparts, 1));
		foreach(lc, list)
		{
			KafkaPartition *kp = &plan->parts[i++];
			rd_kafka_resp_err_t err;

			*kp = *(KafkaPartition *) lfirst(lc);
			err = rd_kafka_query_watermark_offsets(tmp.rk, kp->topic, kp->partition,
												   &kp->low, &kp->high, KAFKA_WATERMARK_TIMEOUT_MS);
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not read the offsets of %s:%d: %s", kp->topic, kp->partition,
								rd_kafka_err2str(err))));
			kp->start = kp->low;
			kp->end = kp->low + Min(kp->high - kp->low, left);
			left -= kp->end - kp->start;
		}
		batch->private = plan;
		kafka_read_batch(batch, true);
		batch->private = NULL;
	}
	PG_FINALLY();
	{
		rd_kafka_destroy(tmp.rk);
	}
	PG_END_TRY();
}

/*
 * kafka_lag_source adds the lag of each partition of one Kafka source of a
 * query to rsinfo's result.
 */
static void
kafka_lag_source(ReturnSetInfo *rsinfo, const char *query, Oid relid, Jsonb *options)
{
	SourceBatch sb;
	List	   *parts = NIL;
	char	   *why = NULL;
	HTAB	   *committed;
	KafkaConn	tmp;
	ListCell   *lc;

	memset(&sb, 0, sizeof(sb));
	sb.query = query;
	sb.relid = relid;
	committed = committed_offsets(&sb);

	memset(&tmp, 0, sizeof(tmp));
	tmp.rk = new_consumer(options, "streaming-lag", false);
	PG_TRY();
	{
		if (!list_partitions(&tmp, options, &parts, &why))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not reach Kafka (%s): %s",
							bootstrap_servers(options), why)));
		foreach(lc, parts)
		{
			KafkaPartition *kp = lfirst(lc);
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};
			OffsetEntry *e = NULL;
			char		key[NAMEDATALEN * 2];
			rd_kafka_resp_err_t err;

			err = rd_kafka_query_watermark_offsets(tmp.rk, kp->topic, kp->partition,
												   &kp->low, &kp->high, KAFKA_WATERMARK_TIMEOUT_MS);
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not read the offsets of %s:%d: %s", kp->topic, kp->partition,
								rd_kafka_err2str(err))));
			strlcpy(key, partition_key(kp->topic, kp->partition), sizeof(key));
			if (committed)
				e = hash_search(committed, key, HASH_FIND, NULL);
			values[0] = CStringGetTextDatum(kp->topic);
			values[1] = Int32GetDatum(kp->partition);
			values[2] = Int64GetDatum(e ? e->offset : 0);
			nulls[2] = e == NULL;
			values[3] = Int64GetDatum(kp->high);
			/* a partition never read is behind by all it holds */
			values[4] = Int64GetDatum(e ? Max(kp->high - e->offset, 0) : kp->high - kp->low);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_FINALLY();
	{
		rd_kafka_destroy(tmp.rk);
	}
	PG_END_TRY();
}

/* ------------------------------------------------------------------------
 * streaming.kafka_lag(query): per partition, the committed offset, the
 * broker's high watermark and the lag, asked of the broker now.
 * ------------------------------------------------------------------------ */

Datum
streaming_kafka_lag(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	QueryDef   *q;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);

	/*
	 * Asking the brokers connects with the credentials of the source's
	 * owner: only the query's owner (or a member of its role) may.
	 */
	q = QueryDefLoad(query, QUERY_LOCK_NONE, false);
	QueryCheckOwner(q);
	/* every Kafka source of the query */
	foreach(lc, q->plan->sources)
	{
		Oid			relid = lfirst_oid(lc);
		Jsonb	   *options;
		char	   *name;
		char	   *kind;

		if (SourceLookup(relid, &name, &kind, &options) && strcmp(kind, "kafka") == 0)
			kafka_lag_source(rsinfo, query, relid, options);
	}
	PG_RETURN_VOID();
}

/*
 * kafka_forget closes the consumers this process keeps for a query, or
 * for one slice of it (a pool worker lets go of it): not those of the
 * query's other slices that the worker still runs, whose sockets it waits
 * on.
 */
static void
kafka_forget(const char *query, int slice)
{
	ListCell   *lc;

	foreach(lc, connections)
	{
		KafkaConn  *conn = lfirst(lc);

		if (strcmp(conn->query, query) != 0 ||
			(slice != SLICE_WHOLE && conn->slice != slice))
			continue;
		kafka_conn_destroy(conn);
		connections = foreach_delete_current(connections, lc);
	}
}

/*
 * kafka_start_offsets gives the offsets that reset_query() records, asked
 * of the broker now with a consumer of its own: from the earliest, each
 * partition's low watermark; from a time, the first offset whose message
 * timestamp is at or after it (rd_kafka_offsets_for_times; the high
 * watermark when there is none); given offsets, each checked against the
 * partitions that exist and what the broker still has.  A partition not
 * named among given offsets starts at its earliest, as one that appears
 * while a query runs.
 */
static List *
kafka_start_offsets(Oid relid, const char *source, Jsonb *options, const SourceStart *start)
{
	KafkaConn	tmp;
	List	   *parts = NIL;
	List	   *volatile result = NIL;
	char	   *why = NULL;

	memset(&tmp, 0, sizeof(tmp));
	tmp.rk = new_consumer(options, "streaming-reset", false);
	PG_TRY();
	{
		ListCell   *lc;
		rd_kafka_topic_partition_list_t *times = NULL;

		if (!list_partitions(&tmp, options, &parts, &why))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not reach Kafka (%s): %s", bootstrap_servers(options), why)));
		list_sort(parts, partition_cmp);
		foreach(lc, parts)
		{
			KafkaPartition *kp = lfirst(lc);
			rd_kafka_resp_err_t err;

			CHECK_FOR_INTERRUPTS();
			err = rd_kafka_query_watermark_offsets(tmp.rk, kp->topic, kp->partition,
												   &kp->low, &kp->high, KAFKA_WATERMARK_TIMEOUT_MS);
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not read the offsets of %s:%d: %s", kp->topic, kp->partition,
								rd_kafka_err2str(err))));
		}
		if (start->kind == SOURCE_START_TIME)
		{
			/* milliseconds since the Unix epoch, rounded up: at or after */
			int64		ms = (start->time + 999) / 1000 +
				(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
			rd_kafka_resp_err_t err;

			/* -1 and -2 would mean the latest and the earliest */
			ms = Max(ms, 0);
			times = rd_kafka_topic_partition_list_new(Max(list_length(parts), 1));
			foreach(lc, parts)
			{
				KafkaPartition *kp = lfirst(lc);

				rd_kafka_topic_partition_list_add(times, kp->topic, kp->partition)->offset = ms;
			}
			err = rd_kafka_offsets_for_times(tmp.rk, times, KAFKA_WATERMARK_TIMEOUT_MS);
			if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
			{
				rd_kafka_topic_partition_list_destroy(times);
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not find the offsets of source \"%s\" by time: %s",
								source, rd_kafka_err2str(err))));
			}
		}
		foreach(lc, parts)
		{
			KafkaPartition *kp = lfirst(lc);
			SourceOffset *off = palloc(sizeof(SourceOffset));

			off->partition = partition_key(kp->topic, kp->partition);
			if (start->kind == SOURCE_START_EARLIEST)
				off->offset = kp->low;
			else if (start->kind == SOURCE_START_TIME)
			{
				rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(times, kp->topic,
																					kp->partition);
				rd_kafka_resp_err_t err = tp ? tp->err : RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;

				if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
				{
					rd_kafka_topic_partition_list_destroy(times);
					ereport(ERROR,
							(errcode(ERRCODE_CONNECTION_FAILURE),
							 errmsg("could not find the offset of %s by time: %s", off->partition,
									rd_kafka_err2str(err))));
				}
				/* no message at or after the time: from what comes next */
				off->offset = tp->offset < 0 ? kp->high : Max(tp->offset, kp->low);
			}
			else
				continue;
			result = lappend(result, off);
		}
		if (times != NULL)
			rd_kafka_topic_partition_list_destroy(times);

		/* given offsets: of partitions that exist, within what the broker has */
		foreach(lc, start->kind == SOURCE_START_OFFSETS ? start->offsets : NIL)
		{
			SourceOffset *off = lfirst(lc);
			KafkaPartition *found = NULL;
			ListCell   *pc;

			foreach(pc, parts)
			{
				KafkaPartition *kp = lfirst(pc);

				if (strcmp(partition_key(kp->topic, kp->partition), off->partition) == 0)
				{
					found = kp;
					break;
				}
			}
			if (found == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("\"%s\" is not a partition of source \"%s\"", off->partition, source),
						 errdetail("The partitions of a Kafka source are named <topic>:<partition>, as streaming.offsets records them, among: %s.",
								   partition_names(parts))));
			if (off->offset < found->low || off->offset > found->high)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("offset " INT64_FORMAT " of partition %s is not one the broker has", off->offset,
								off->partition),
						 errdetail("Its offsets now go from " INT64_FORMAT " to " INT64_FORMAT " (the next message's).",
								   found->low, found->high)));
			result = lappend(result, off);
		}
	}
	PG_FINALLY();
	{
		rd_kafka_destroy(tmp.rk);
	}
	PG_END_TRY();
	return result;
}

const SourceRoutine KafkaSourceRoutine = {
	.kind = "kafka",
	.default_schema = kafka_default_schema,
	.validate = kafka_validate,
	.check_schema = kafka_check_schema,
	.plan_batch = kafka_plan_batch,
	.read_batch = kafka_read_batch,
	.peek = kafka_peek,
	.forget = kafka_forget,
	.start_offsets = kafka_start_offsets,
};
