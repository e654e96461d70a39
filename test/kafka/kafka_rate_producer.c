/*
 * kafka_rate_producer: writes messages at a fixed rate, for the latency
 * benchmark (test/bench/latency.sh).
 *
 * Each message is one csv line "SEQ,MICROS": a sequence number from 1 and
 * the time it was handed to librdkafka, in microseconds since the Unix
 * epoch, so that the table a query writes can tell how long each row took
 * from the producer to a committed batch.  Messages go round-robin over the
 * topic's partitions; the rate is kept by the clock (messages due by now
 * are sent, then the program sleeps a millisecond), not by a fixed sleep
 * per message.  At the end it waits for every delivery report and prints
 * "sent N failed F" on stdout.
 *
 * LINGER_MS (default 20) is librdkafka's linger.ms: how long a partition's
 * messages gather into one record batch.  librdkafka's mock cluster answers
 * a fetch with at most one record batch per partition, so the batches'
 * size bounds what a consumer can read per round trip: with 1 ms, batches
 * of one or two messages at 10,000 msg/s over 8 partitions asked for about
 * a thousand fetch round trips a second, more than a busy 2-core machine
 * gives, and the consumer fell seconds behind before the query saw a
 * message.  A real broker returns every batch up to the fetch's byte
 * limits.
 *
 * Usage: kafka_rate_producer BOOTSTRAP TOPIC PARTITIONS RATE SECONDS [LINGER_MS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static long long failed;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	(void) rk;
	(void) opaque;
	if (msg->err)
		failed++;
}

static long long
now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long) tv.tv_sec * 1000000 + tv.tv_usec;
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	char		errstr[512];
	const char *topic;
	int			partitions;
	double		rate;
	double		seconds;
	long long	start;
	long long	sent = 0;

	if (argc != 6 && argc != 7)
	{
		fprintf(stderr, "usage: %s BOOTSTRAP TOPIC PARTITIONS RATE SECONDS [LINGER_MS]\n", argv[0]);
		return 2;
	}
	topic = argv[2];
	partitions = atoi(argv[3]);
	rate = atof(argv[4]);
	seconds = atof(argv[5]);
	if (partitions < 1 || rate <= 0 || seconds <= 0)
	{
		fprintf(stderr, "%s: PARTITIONS, RATE and SECONDS must be positive\n", argv[0]);
		return 2;
	}

	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "linger.ms", argc == 7 ? argv[6] : "20", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
		rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		fprintf(stderr, "%s: %s\n", argv[0], errstr);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL)
	{
		fprintf(stderr, "%s: %s\n", argv[0], errstr);
		return 1;
	}

	start = now_us();
	for (;;)
	{
		long long	now = now_us();
		long long	due = (long long) ((now - start) / 1e6 * rate);
		struct timespec ms = {0, 1000000};

		if (now - start >= seconds * 1e6)
			break;
		while (sent < due)
		{
			char		buf[64];
			int			len = snprintf(buf, sizeof(buf), "%lld,%lld", sent + 1, now_us());
			rd_kafka_resp_err_t err;

			err = rd_kafka_producev(rk,
									RD_KAFKA_V_TOPIC(topic),
									RD_KAFKA_V_PARTITION((int32_t) (sent % partitions)),
									RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
									RD_KAFKA_V_VALUE(buf, (size_t) len),
									RD_KAFKA_V_END);
			if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			{
				rd_kafka_poll(rk, 1);
				continue;
			}
			if (err)
			{
				fprintf(stderr, "%s: %s\n", argv[0], rd_kafka_err2str(err));
				return 1;
			}
			sent++;
		}
		rd_kafka_poll(rk, 0);
		nanosleep(&ms, NULL);
	}
	rd_kafka_flush(rk, 60000);
	printf("sent %lld failed %lld\n", sent, failed);
	rd_kafka_destroy(rk);
	return failed > 0;
}
