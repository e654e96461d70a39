/*-------------------------------------------------------------------------
 *
 * kafka_sink.c
 *	  The Kafka sink: the rows each batch writes, one message each, to a
 *	  Kafka topic, at least once.
 *
 * A batch produces its rows as the batch statement returns them and waits,
 * before it commits, until the broker has acknowledged every message; a
 * message that cannot be delivered fails the batch (as a lost connection:
 * the worker retries it).  So every committed row is in Kafka.  A batch
 * that fails after some of its messages were delivered, or a crash between
 * the acknowledgement and the commit, runs again and produces them again:
 * at least once, as Spark's Kafka sink.  The producer is idempotent, so
 * librdkafka's own retries add no duplicates.
 *
 * The producer connects through a foreign server of the streaming wrapper
 * (sink option "server", by default "streaming") with the query owner's
 * user mapping for it, where the credentials are: sink options, kept in
 * streaming.queries, are readable by every role and hold no secrets.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "catalog/pg_foreign_server.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "sinks/sink.h"
#include "source.h"
#include "streaming.h"

/* how long a batch waits for the broker to acknowledge its messages */
#define KAFKA_SINK_DELIVERY_MS	"30000"

/* one producer per query in this process */
typedef struct KafkaProducer
{
	char	   *query;
	char	   *options;		/* the options it was made with, as text */
	rd_kafka_t *rk;
	int64		failed;			/* delivery reports of this batch */
	char		last_error[256];
} KafkaProducer;

struct KafkaSink
{
	const SinkOptions *opts;
	KafkaProducer *producer;
	bool		started;
	RowFormat	format;
	int			key_index;		/* of the key column among the row's, or -1 */
	StringInfoData value;
	int64		produced;
};

static List *producers = NIL;

static const char *const kafka_sink_options[] = {
	"bootstrap_servers", "server", "topic", "format", "key", NULL
};

/*
 * KafkaSinkParseOptions reads the options of the Kafka sink: a topic, a
 * broker or a foreign server, the format (json or csv) and the column
 * that keys the messages.  The connection settings are completed and
 * checked by sink_connection_options.
 */
void
KafkaSinkParseOptions(Jsonb *options, SinkOptions *out)
{
	char	   *format = JsonbGetString(options, "format");

	SourceCheckOptionKeys(options, "sink \"kafka\"", kafka_sink_options, "kafka.");
	out->topic = JsonbGetString(options, "topic");
	if (out->topic == NULL || out->topic[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the kafka sink needs the option \"topic\""),
				 errhint("For example: sink_options => '{\"bootstrap_servers\": \"localhost:9092\", \"topic\": \"results\"}'.")));
	/* a server is named by a string; it is looked up when connecting */
	(void) JsonbGetString(options, "server");
	if (format != NULL && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"format\": \"%s\"", format),
				 errhint("Valid formats of the kafka sink are json and csv.")));
	out->json = format == NULL || strcmp(format, "json") == 0;
	out->key = JsonbGetString(options, "key");
	out->kafka_options = options;
}

static rd_kafka_conf_t *
producer_conf(Jsonb *options, const char *query)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	ListCell   *lc;
	char	   *servers = JsonbGetString(options, "bootstrap_servers");

#define SET(k, v) \
	do { \
		if (rd_kafka_conf_set(conf, (k), (v), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) \
		{ \
			rd_kafka_conf_destroy(conf); \
			ereport(ERROR, \
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE), \
					 errmsg("invalid value for Kafka option \"%s\": %s", (k), errstr))); \
		} \
	} while (0)

	/* defaults the source's kafka.* options may change */
	SET("enable.idempotence", "true");
	SET("message.timeout.ms", KAFKA_SINK_DELIVERY_MS);
	SET("log_level", "3");
	if (query)
		SET("client.id", psprintf("streaming-%s", query));
	foreach(lc, JsonbObjectKeys(options))
	{
		char	   *key = lfirst(lc);

		if (KafkaIsPassthroughKey(key))
			SET(key + 6, JsonbValueAsText(JsonbGetKey(options, key)));
	}
	if (servers)
		SET("bootstrap.servers", servers);
#undef SET
	return conf;
}

/*
 * sink_connection_options returns what the producer of a query owned by
 * owner connects with: the sink's own options completed by its foreign
 * server (option "server", by default the wrapper's server "streaming")
 * and the owner's user mapping for it, which holds the credentials.  The
 * owner needs USAGE on the server, and its rights decide which kafka.*
 * options the sink's own options may set; both are checked at
 * create_query and again before each batch connects.
 */
static Jsonb *
sink_connection_options(Jsonb *options, Oid owner)
{
	char	   *servername = JsonbGetString(options, "server");
	ForeignServer *server = GetForeignServerByName(servername ? servername : "streaming", false);
	AclResult	aclresult;
	Jsonb	   *own = options;
	Jsonb	   *merged;

	if (strcmp(GetForeignDataWrapper(server->fdwid)->fdwname, "streaming") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("server \"%s\" is not a server of the streaming foreign-data wrapper",
						server->servername),
				 errhint("CREATE SERVER %s FOREIGN DATA WRAPPER streaming OPTIONS (bootstrap_servers '...').",
						 quote_identifier(server->servername))));
#if PG_VERSION_NUM >= 160000
	aclresult = object_aclcheck(ForeignServerRelationId, server->serverid, owner, ACL_USAGE);
#else
	aclresult = pg_foreign_server_aclcheck(server->serverid, owner, ACL_USAGE);
#endif
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);

	if (servername != NULL)
		own = DatumGetJsonbP(DirectFunctionCall2(jsonb_delete, JsonbPGetDatum(options),
												 CStringGetTextDatum("server")));
	KafkaCheckOptions(own, KAFKA_IN_SINK, owner);
	merged = SourceMergeServerOptions(server->serverid, own, owner);
	if (JsonbGetString(merged, "bootstrap_servers") == NULL &&
		JsonbGetString(merged, "kafka.bootstrap.servers") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the kafka sink needs the option \"bootstrap_servers\""),
				 errhint("Give it in sink_options or on the server named by the option \"server\".")));
	KafkaCheckSasl(merged);
	return merged;
}

/*
 * KafkaSinkValidate checks at create_query and alter_query, as the
 * query's owner, what it may set and that librdkafka takes the options.
 */
void
KafkaSinkValidate(const SinkOptions *opts, Oid owner)
{
	Jsonb	   *merged = sink_connection_options(opts->kafka_options, owner);

	rd_kafka_conf_destroy(producer_conf(merged, NULL));
}

static void
delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	KafkaProducer *p = opaque;

	if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		p->failed++;
		strlcpy(p->last_error, rd_kafka_err2str(msg->err), sizeof(p->last_error));
	}
}

/*
 * get_producer returns the producer of a query, made anew when the options
 * it connects with changed (new credentials in the owner's user mapping,
 * new settings on the server, a query made again).
 */
static KafkaProducer *
get_producer(Jsonb *options, const char *query)
{
	char	   *text = JsonbToCString(NULL, &options->root, VARSIZE(options));
	KafkaProducer *p = NULL;
	ListCell   *lc;
	rd_kafka_conf_t *conf;
	char		errstr[512];
	MemoryContext old;

	foreach(lc, producers)
	{
		KafkaProducer *candidate = lfirst(lc);

		if (strcmp(candidate->query, query) != 0)
			continue;
		if (strcmp(candidate->options, text) == 0)
			return candidate;
		/* the query was dropped and made again with other options */
		rd_kafka_destroy(candidate->rk);
		producers = foreach_delete_current(producers, lc);
	}

	old = MemoryContextSwitchTo(TopMemoryContext);
	p = palloc0(sizeof(KafkaProducer));
	p->query = pstrdup(query);
	p->options = pstrdup(text);
	MemoryContextSwitchTo(old);

	conf = producer_conf(options, query);
	rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
	rd_kafka_conf_set_opaque(conf, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (p->rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not create a Kafka producer: %s", errstr)));
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	producers = lappend(producers, p);
	MemoryContextSwitchTo(old);
	return p;
}

/*
 * KafkaSinkBegin prepares a batch's messages.  The producer connects with
 * the credentials of the query's owner, whoever runs the batch.
 */
KafkaSink *
KafkaSinkBegin(const SinkOptions *opts, const char *query, Oid owner)
{
	KafkaSink  *ks = palloc0(sizeof(KafkaSink));

	ks->opts = opts;
	ks->producer = get_producer(sink_connection_options(opts->kafka_options, owner), query);
	ks->producer->failed = 0;
	ks->producer->last_error[0] = '\0';
	initStringInfo(&ks->value);
	return ks;
}

/*
 * KafkaSinkProduce sends one row: columns first (0-based) onwards of the
 * slot, keyed by the key column if there is one.
 */
void
KafkaSinkProduce(void *arg, TupleTableSlot *slot, int first)
{
	KafkaSink  *ks = arg;
	char	   *key = NULL;
	rd_kafka_resp_err_t err;

	/* as the file sink's (FileSinkWrite): for the whole batch */
	if (!ks->started)
	{
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(ks));

		RowFormatInit(&ks->format, slot->tts_tupleDescriptor, first, ks->opts->json);
		MemoryContextSwitchTo(old);
		ks->key_index = ks->opts->key ? RowFormatColumnIndex(&ks->format, ks->opts->key) : -1;
		if (ks->opts->key && ks->key_index < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("the key column \"%s\" of the kafka sink is not a column of the result",
							ks->opts->key)));
		ks->started = true;
	}
	resetStringInfo(&ks->value);
	RowFormatRow(&ks->format, slot, &ks->value);
	if (ks->key_index >= 0)
		key = RowFormatColumnText(&ks->format, slot, ks->key_index);
	for (;;)
	{
		err = rd_kafka_producev(ks->producer->rk,
								RD_KAFKA_V_TOPIC(ks->opts->topic),
								RD_KAFKA_V_VALUE(ks->value.data, ks->value.len),
								RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		/* the local queue is full: let deliveries drain it */
		CHECK_FOR_INTERRUPTS();
		rd_kafka_poll(ks->producer->rk, 100);
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not produce to Kafka topic \"%s\": %s", ks->opts->topic, rd_kafka_err2str(err))));
	ks->produced++;
	rd_kafka_poll(ks->producer->rk, 0);
}

/*
 * KafkaSinkFinish waits until the broker has acknowledged every message of
 * the batch; a message that was not delivered fails the batch.  Returns
 * the messages produced.
 */
int64
KafkaSinkFinish(KafkaSink *ks)
{
	rd_kafka_t *rk = ks->producer->rk;

	while (rd_kafka_outq_len(rk) > 0)
	{
		CHECK_FOR_INTERRUPTS();
		rd_kafka_poll(rk, 100);
	}
	if (ks->producer->failed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not deliver " INT64_FORMAT " of " INT64_FORMAT " messages to Kafka topic \"%s\": %s",
						ks->producer->failed, ks->produced, ks->opts->topic, ks->producer->last_error),
				 errdetail("The batch rolls back and is run again; messages already delivered are sent again (at least once).")));
	return ks->produced;
}
