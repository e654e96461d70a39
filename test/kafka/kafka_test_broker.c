/*
 * kafka_test_broker: a Kafka cluster for the tests, on loopback.
 *
 * Starts librdkafka's mock cluster (rdkafka_mock.h), which speaks the real
 * Kafka protocol, prints "bootstrap <host:port,...>" and then reads
 * commands from stdin, one per line, answering each with one line that
 * starts with "ok" or "error":
 *
 *   topic NAME PARTITIONS              create a topic
 *   produce TOPIC PARTITION VALUE...   one message (the rest of the line)
 *   producek TOPIC PARTITION KEY VALUE...    with a key
 *   producets TOPIC PARTITION MILLIS VALUE... with a timestamp (Unix ms)
 *   producefile TOPIC PARTITION PATH   every line of a file, one message each
 *   producefilek TOPIC PARTITION PATH  the same, each line KEY<TAB>VALUE
 *   offsetfortime TOPIC PARTITION MILLIS   the broker's answer to a lookup
 *                                      by time (ListOffsets): "ok <offset>",
 *                                      -1 for none; librdkafka 2.0's mock
 *                                      answers -1 to every time
 *   down BROKER / up BROKER            take a broker (1..N) down or up
 *   quit                               (or end of input) stop
 *
 * PARTITION -1 spreads the messages round-robin over the topic's
 * partitions.  produce* answer "ok <partition> <offset>" once delivered;
 * producefile answers "ok <count>".
 *
 * Usage: kafka_test_broker [--brokers N] [--topic NAME:PARTITIONS]...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static rd_kafka_t *producer;
static rd_kafka_mock_cluster_t *cluster;

/* the last delivery report */
static int	delivered_partition;
static long long delivered_offset;
static rd_kafka_resp_err_t delivered_err;
static long long delivery_errors;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void) rk;
	(void) opaque;
	delivered_err = msg->err;
	if (msg->err)
		delivery_errors++;
	delivered_partition = msg->partition;
	delivered_offset = msg->offset;
}

static void
quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void) rk;
	if (level <= 3)
		fprintf(stderr, "kafka_test_broker: %s: %s\n", fac, buf);
}

static int
partition_count(const char *topic)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(producer, topic, NULL);
	int			n = -1;

	if (rd_kafka_metadata(producer, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			n = md->topics[0].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	rd_kafka_topic_destroy(rkt);
	return n;
}

/* send one message; on a full queue, serve delivery reports and retry */
static int
send_message(const char *topic, int partition, const char *key, size_t keylen,
	 const char *value, size_t len, long long ts)
{
	for (;;)
	{
		rd_kafka_resp_err_t err;

		err = rd_kafka_producev(producer,
								RD_KAFKA_V_TOPIC(topic),
								RD_KAFKA_V_PARTITION(partition),
								RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
								RD_KAFKA_V_KEY(key, keylen),
								RD_KAFKA_V_VALUE((void *) value, len),
								RD_KAFKA_V_TIMESTAMP(ts),
								RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		{
			rd_kafka_poll(producer, 50);
			continue;
		}
		if (err)
		{
			printf("error %s\n", rd_kafka_err2str(err));
			return -1;
		}
		return 0;
	}
}

static void
produce_one(char *args, int with_key, int with_ts)
{
	char	   *topic = strtok(args, " ");
	char	   *part = strtok(NULL, " ");
	char	   *key = NULL;
	char	   *rest;
	long long	ts = 0;
	int			p;
	int			n;

	if (topic == NULL || part == NULL)
	{
		printf("error usage\n");
		return;
	}
	rest = part + strlen(part) + 1;
	if (with_key || with_ts)
	{
		char	   *sp = strchr(rest, ' ');
		char	   *field = rest;

		if (sp)
		{
			*sp = '\0';
			rest = sp + 1;
		}
		else
			rest = field + strlen(field);
		if (with_key)
			key = field;
		else
			ts = atoll(field);
	}
	p = atoi(part);
	if (p < 0)
	{
		static unsigned long rr = 0;

		n = partition_count(topic);
		p = n > 0 ? (int) (rr++ % n) : RD_KAFKA_PARTITION_UA;
	}
	delivered_err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
	if (send_message(topic, p, key, key ? strlen(key) : 0, rest, strlen(rest), ts) < 0)
		return;
	rd_kafka_flush(producer, 30000);
	if (delivered_err)
		printf("error %s\n", rd_kafka_err2str(delivered_err));
	else
		printf("ok %d %lld\n", delivered_partition, delivered_offset);
}

static void
produce_file(char *args, int keyed)
{
	char	   *topic = strtok(args, " ");
	char	   *part = strtok(NULL, " ");
	char	   *path = strtok(NULL, "");
	FILE	   *f;
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	long long	count = 0;
	int			p;
	int			n = 1;

	if (topic == NULL || part == NULL || path == NULL)
	{
		printf("error usage\n");
		return;
	}
	f = fopen(path, "r");
	if (f == NULL)
	{
		printf("error %s: %s\n", path, strerror(errno));
		return;
	}
	p = atoi(part);
	if (p < 0 && (n = partition_count(topic)) <= 0)
	{
		printf("error unknown topic %s\n", topic);
		fclose(f);
		return;
	}
	delivery_errors = 0;
	while ((len = getline(&line, &cap, f)) >= 0)
	{
		char	   *value = line;
		char	   *key = NULL;
		size_t		keylen = 0;

		if (len > 0 && line[len - 1] == '\n')
			len--;
		if (keyed)
		{
			char	   *tab = memchr(line, '\t', len);

			if (tab)
			{
				key = line;
				keylen = tab - line;
				value = tab + 1;
				len -= keylen + 1;
			}
		}
		if (send_message(topic, p < 0 ? (int) (count % n) : p, key, keylen, value, len, 0) < 0)
			break;
		count++;
		if (count % 10000 == 0)
			rd_kafka_poll(producer, 0);
	}
	free(line);
	fclose(f);
	rd_kafka_flush(producer, 120000);
	if (delivery_errors)
		printf("error %lld messages not delivered\n", delivery_errors);
	else
		printf("ok %lld\n", count);
}

static int
create_topic(const char *name, int partitions)
{
	rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, name, partitions, 1);

	if (err)
	{
		printf("error %s\n", rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	char		brokers[16] = "1";
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
			snprintf(brokers, sizeof(brokers), "%s", argv[++i]);

	if (rd_kafka_conf_set(conf, "test.mock.num.brokers", brokers, errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "batch.num.messages", "10000", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", errstr, sizeof(errstr)))
	{
		fprintf(stderr, "kafka_test_broker: %s\n", errstr);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_log_cb(conf, quiet_log);
	producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (producer == NULL)
	{
		fprintf(stderr, "kafka_test_broker: %s\n", errstr);
		return 1;
	}
	cluster = rd_kafka_handle_mock_cluster(producer);
	if (cluster == NULL)
	{
		fprintf(stderr, "kafka_test_broker: no mock cluster\n");
		return 1;
	}
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
		{
			char	   *spec = argv[++i];
			char	   *colon = strchr(spec, ':');

			if (colon)
				*colon = '\0';
			if (create_topic(spec, colon ? atoi(colon + 1) : 1) < 0)
				return 1;
		}

	printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(cluster));
	fflush(stdout);

	while ((len = getline(&line, &cap, stdin)) >= 0)
	{
		char	   *cmd;
		char	   *args;

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		cmd = line;
		args = strchr(line, ' ');
		if (args)
			*args++ = '\0';
		else
			args = line + len;

		if (strcmp(cmd, "quit") == 0)
			break;
		else if (strcmp(cmd, "topic") == 0)
		{
			char	   *name = strtok(args, " ");
			char	   *n = strtok(NULL, " ");

			if (name && create_topic(name, n ? atoi(n) : 1) == 0)
				printf("ok\n");
			else if (!name)
				printf("error usage\n");
		}
		else if (strcmp(cmd, "produce") == 0)
			produce_one(args, 0, 0);
		else if (strcmp(cmd, "producek") == 0)
			produce_one(args, 1, 0);
		else if (strcmp(cmd, "producets") == 0)
			produce_one(args, 0, 1);
		else if (strcmp(cmd, "producefile") == 0)
			produce_file(args, 0);
		else if (strcmp(cmd, "producefilek") == 0)
			produce_file(args, 1);
		else if (strcmp(cmd, "offsetfortime") == 0)
		{
			char	   *topic = strtok(args, " ");
			char	   *part = strtok(NULL, " ");
			char	   *ms = strtok(NULL, " ");
			rd_kafka_topic_partition_list_t *l;
			rd_kafka_resp_err_t err;

			if (!topic || !part || !ms)
				printf("error usage\n");
			else
			{
				l = rd_kafka_topic_partition_list_new(1);
				rd_kafka_topic_partition_list_add(l, topic, atoi(part))->offset = atoll(ms);
				err = rd_kafka_offsets_for_times(producer, l, 5000);
				if (!err)
					err = l->elems[0].err;
				if (err)
					printf("error %s\n", rd_kafka_err2str(err));
				else
					printf("ok %lld\n", (long long) l->elems[0].offset);
				rd_kafka_topic_partition_list_destroy(l);
			}
		}
		else if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0)
		{
			rd_kafka_resp_err_t err = cmd[0] == 'd' ?
				rd_kafka_mock_broker_set_down(cluster, atoi(args)) :
				rd_kafka_mock_broker_set_up(cluster, atoi(args));

			if (err)
				printf("error %s\n", rd_kafka_err2str(err));
			else
				printf("ok\n");
		}
		else if (cmd[0] != '\0')
			printf("error unknown command %s\n", cmd);
		fflush(stdout);
	}
	free(line);
	rd_kafka_destroy(producer);
	return 0;
}
