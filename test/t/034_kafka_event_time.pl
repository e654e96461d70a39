# Event times read from Kafka messages (librdkafka's mock cluster): the
# json and csv formats read timestamptz columns with the event-time grammar,
# not DateStyle; with a query's event time, a message whose row has none,
# or one too far ahead of the clock (the Kafka timestamp included, when it
# is the event time), is a dead letter at <topic>:<partition>:<offset>.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

my $kafka = StreamingTest::Broker->start('ev_json:1', 'ev_csv:1', 'ev_meta:1', 'ev_raw:1');
my $bootstrap = $kafka->bootstrap;
sub broker { return $kafka->cmd($_[0]); }

my $node = PostgreSQL::Test::Cluster->new('kafka_event_time');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.autostart = off
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub dead_letters
{
	my ($query) = @_;
	return sql(qq{SELECT string_agg(position || ' ' || error, E'\\n' ORDER BY id)
	                FROM streaming.dead_letters WHERE query = '$query'});
}
sub opts
{
	my ($topic, $more) = @_;
	return qq{{"bootstrap_servers": "$bootstrap", "topic": "$topic", "starting_offsets": "earliest"$more}};
}
sql(q{CREATE EXTENSION streaming});

# --- json: ISO 8601 only; a missing or null time, or one a day ahead, is a dead letter
broker('produce ev_json 0 {"id": 1, "ts": "2024-01-01T10:00:00Z"}');
broker('produce ev_json 0 {"id": 2, "ts": "01/02/2024 10:09:03"}');
broker('produce ev_json 0 {"id": 3}');
broker('produce ev_json 0 {"id": 4, "ts": "2024-01-01 11:00:05+01:00"}');
broker('produce ev_json 0 {"id": 5, "ts": "2999-01-01T00:00:00Z"}');
broker('produce ev_json 0 {"id": 6, "ts": null}');
sql(q{SET DateStyle = 'ISO, MDY'; SET TimeZone = 'UTC';
	SELECT streaming.create_source('j', 'kafka', 'id int, ts timestamptz', '} . opts('ev_json', ', "format": "json"') . q{');
	SELECT streaming.create_query('j_count',
		$$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n, sum(id) AS ids FROM j GROUP BY 1$$,
		output_mode => 'update', event_time => 'ts', watermark => '10 seconds');
	SELECT streaming.run('j_count');});
is(sql(q{SET TimeZone = 'UTC'; SELECT lower(w) || ' ' || n || ' ' || ids FROM j_count}),
	'2024-01-01 10:00:00+00 2 5', 'json: the two valid rows are counted');
is(dead_letters('j_count'), join("\n",
		'ev_json:0:1 invalid event time "01/02/2024 10:09:03" in column "ts": expected ISO 8601 such as 2024-01-02T10:09:03Z',
		'ev_json:0:2 event time column "ts" is null or missing',
		'ev_json:0:4 event time 2999-01-01T00:00:00Z in column "ts" is more than 1 day ahead of the current time (max_event_time_ahead)',
		'ev_json:0:5 event time column "ts" is null or missing'),
	'json: each bad message is a dead letter at its offset, with what was expected');
is(sql(q{SET TimeZone = 'UTC'; SELECT watermark FROM streaming.queries WHERE name = 'j_count'}),
	'2024-01-01 09:59:55+00', 'json: the watermark follows the valid rows only');

# --- csv with epoch milliseconds
broker('produce ev_csv 0 1,1704103200000');
broker('produce ev_csv 0 2,1704103200.5');
broker('produce ev_csv 0 3,2024-01-01T10:00:00Z');
sql(q{SELECT streaming.create_source('c', 'kafka', 'id int, ts timestamptz', '}
	  . opts('ev_csv', ', "format": "csv", "event_time_format": "epoch_ms"') . q{');
	SELECT streaming.create_query('c_rows', 'SELECT id, ts FROM c');
	SELECT streaming.run('c_rows');});
is(sql(q{SET TimeZone = 'UTC'; SELECT string_agg(id || ' ' || ts, ', ' ORDER BY id) FROM c_rows}),
	'1 2024-01-01 10:00:00+00, 2 1970-01-20 17:21:43.2005+00', 'csv: epoch milliseconds');
is(dead_letters('c_rows'),
	'ev_csv:0:2 invalid event time "2024-01-01T10:00:00Z" in column "ts": expected epoch milliseconds such as 1704190143000',
	'csv: an ISO time is not epoch milliseconds');

# --- the Kafka timestamp as event time: a producer's clock far ahead is a dead letter
broker('producets ev_meta 0 1704103200000 {"page": "a"}');
broker('producets ev_meta 0 32503680000000 {"page": "b"}');
broker('producets ev_meta 0 1704103201000 {"page": "c"}');
sql(q{SELECT streaming.create_source('m', 'kafka', 'page text, kafka_timestamp timestamptz', '}
	  . opts('ev_meta', ', "format": "json"') . q{');
	SELECT streaming.create_query('m_count',
		$$SELECT streaming.window(kafka_timestamp, '1 minute') AS w, count(*) AS n FROM m GROUP BY 1$$,
		output_mode => 'update', event_time => 'kafka_timestamp', watermark => '10 seconds');
	SELECT streaming.run('m_count');});
is(sql(q{SELECT n FROM m_count}), '2', 'kafka timestamp: the two messages of 2024 are counted');
is(sql(q{SELECT position || ' ' || convert_from(payload, 'UTF8') || ' ' || error FROM streaming.dead_letters WHERE query = 'm_count'}),
	'ev_meta:0:1 {"page": "b"} event time 3000-01-01T00:00:00Z in column "kafka_timestamp" is more than 1 day ahead of the current time (max_event_time_ahead)',
	'kafka timestamp: the message of the year 3000 is a dead letter with its offset and payload');

# --- raw: the row has no decoded record; the dead letter names the row of the batch
broker('producets ev_raw 0 1704103200000 x');
broker('producets ev_raw 0 32503680000000 y');
sql(q{SELECT streaming.create_source('r', 'kafka', NULL, '} . opts('ev_raw', ', "max_event_time_ahead": "1 hour"') . q{');
	SELECT streaming.create_query('r_count',
		$$SELECT streaming.window("timestamp", '1 minute') AS w, count(*) AS n FROM r GROUP BY 1$$,
		output_mode => 'update', event_time => 'timestamp', watermark => '10 seconds');
	SELECT streaming.run('r_count');});
is(sql(q{SELECT n FROM r_count}), '1', 'raw: the message of 2024 is counted');
is(dead_letters('r_count'),
	'r:row 2 event time 3000-01-01T00:00:00Z in column "timestamp" is more than 1 hour ahead of the current time (max_event_time_ahead)',
	'raw: the message of the year 3000 is a dead letter');

$kafka->quit;
$node->stop;
done_testing();
