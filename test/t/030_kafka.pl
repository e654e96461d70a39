# The Kafka source against librdkafka's mock cluster (test/kafka/kafka_test_broker):
# formats and metadata columns, starting offsets, max_offsets_per_trigger,
# topic patterns, data loss, peeking and lag, driven by run(); then under
# background workers: exactly-once through worker kills and an immediate
# server stop mid-stream, and a broker that goes away and comes back.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

# --- the broker, driven over its stdin
my $kafka = StreamingTest::Broker->start('fmt_json:2', 'fmt_csv:1', 'fmt_text:1', 'fmt_raw:1');
my $bootstrap = $kafka->bootstrap;

sub broker { return $kafka->cmd($_[0]); }

my $node = PostgreSQL::Test::Cluster->new('kafka');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
restart_after_crash = on
# a worker per running query (until the worker pool): room for all of them,
# and for a restarted one whose predecessor has not yet given its slot back
max_worker_processes = 24
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }
sub source_opts
{
	my (%o) = @_;
	return join(', ', qq{"bootstrap_servers": "$bootstrap"},
		map { qq{"$_": $o{$_}} } sort keys %o);
}

sql(q{CREATE EXTENSION streaming; ALTER DATABASE postgres SET streaming.autostart = off});

# --- json: keys to columns, metadata columns, type errors to dead letters
broker('producek fmt_json 0 ka {"device": "a", "v": 1}');
broker('producek fmt_json 0 kb {"device": "b", "v": 2, "extra": {"x": 1}}');
broker('producek fmt_json 1 ka {"device": "a", "v": "oops"}');
broker('producek fmt_json 1 ka {"device": "a", "v": 4}');
broker('produce fmt_json 1 not json');
sql(qq{
	SELECT streaming.create_source('j', 'kafka',
		'device text, v int, kafka_key text, kafka_topic text, kafka_partition int, kafka_offset bigint',
		'{${\ source_opts(topic => '"fmt_json"', format => '"json"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_query('j_rows', 'SELECT * FROM j', output_mode => 'append');
});
is(sql(q{SELECT streaming.run('j_rows')}), '1', 'one batch reads the json topic');
is(sql(q{SELECT string_agg(concat_ws(',', device, v, kafka_key, kafka_topic, kafka_partition, kafka_offset), ' ' ORDER BY kafka_partition, kafka_offset) FROM j_rows}),
	'a,1,ka,fmt_json,0,0 b,2,kb,fmt_json,0,1 a,4,ka,fmt_json,1,1',
	'json keys map to columns and metadata columns are filled');
is(sql(q{SELECT string_agg(position || ' ' || encode(payload, 'escape'), ' | ' ORDER BY position) FROM streaming.dead_letters WHERE query = 'j_rows'}),
	'fmt_json:1:0 {"device": "a", "v": "oops"} | fmt_json:1:2 not json',
	'undecodable messages go to the dead letters with topic:partition:offset');
is(sql(q{SELECT partition || '=' || "offset" FROM streaming.offsets WHERE query = 'j_rows' ORDER BY 1}),
	"fmt_json:0=2\nfmt_json:1=3", 'the offsets are the next offset of each partition');
is(sql(q{SELECT streaming.run('j_rows')}), '0', 'nothing new, no batch');

# --- csv, text, raw
broker('produce fmt_csv 0 x,1');
broker('produce fmt_csv 0 "q,uoted",2');
broker('produce fmt_csv 0 ,3');
broker('produce fmt_csv 0 bad,notint');
sql(qq{
	SELECT streaming.create_source('c', 'kafka', 'name text, n int, kafka_offset bigint',
		'{${\ source_opts(topic => '"fmt_csv"', format => '"csv"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_query('c_rows', 'SELECT * FROM c', output_mode => 'append');
	SELECT streaming.run('c_rows');
});
is(sql(q{SELECT string_agg(coalesce(name, 'NULL') || '/' || n || '@' || kafka_offset, ' ' ORDER BY kafka_offset) FROM c_rows}),
	'x/1@0 q,uoted/2@1 NULL/3@2', 'csv messages: quoting and NULL as COPY does');
is(sql(q{SELECT position FROM streaming.dead_letters WHERE query = 'c_rows'}), 'fmt_csv:0:3', 'a bad csv row is a dead letter');

broker('produce fmt_text 0 hello world');
broker('produce fmt_text 0 second line');
sql(qq{
	SELECT streaming.create_source('t', 'kafka', NULL,
		'{${\ source_opts(topic => '"fmt_text"', format => '"text"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_query('t_rows', 'SELECT value FROM t', output_mode => 'append');
	SELECT streaming.run('t_rows');
});
is(sql(q{SELECT string_agg(value, '|' ORDER BY value) FROM t_rows}), 'hello world|second line', 'text messages: one value column');

broker('producets fmt_raw 0 1700000000123 payload-1');
broker('producek fmt_raw 0 the-key payload-2');
sql(qq{
	SELECT streaming.create_source('r', 'kafka', NULL,
		'{${\ source_opts(topic => '"fmt_raw"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_query('r_rows', 'SELECT * FROM r', output_mode => 'append');
	SELECT streaming.run('r_rows');
});
is(sql(q{SELECT coalesce(convert_from(key, 'UTF8'), 'NULL'), convert_from(value, 'UTF8'), topic, partition, "offset", timestamp_type
           FROM r_rows ORDER BY "offset"}),
	"NULL|payload-1|fmt_raw|0|0|0\nthe-key|payload-2|fmt_raw|0|1|0", 'raw: Spark\'s schema');
is(sql(q{SELECT extract(epoch FROM "timestamp") FROM r_rows WHERE "offset" = 0}), '1700000000.123000',
	'raw: the message timestamp');

# --- connection settings from a foreign server and a user mapping
sql(qq{
	CREATE SERVER test_kafka FOREIGN DATA WRAPPER streaming OPTIONS (bootstrap_servers '$bootstrap');
	CREATE USER MAPPING FOR CURRENT_USER SERVER test_kafka OPTIONS ("kafka.socket.timeout.ms" '5000');
	SELECT streaming.create_source('via_server', 'kafka', NULL,
		'{"server": "test_kafka", "topic": "fmt_text", "format": "text", "starting_offsets": "earliest"}');
	SELECT streaming.create_query('via_server_rows', 'SELECT value FROM via_server', output_mode => 'append');
	SELECT streaming.run('via_server_rows');
});
is(sql(q{SELECT string_agg(value, '|' ORDER BY value) FROM via_server_rows}), 'hello world|second line',
	'a source that takes its broker from a foreign server reads the topic');

# --- the Kafka timestamp as event time
broker('topic clicks 1');
for my $ms (0, 1000, 2500, 9000, 12000)
{
	broker('producets clicks 0 ' . (1700000000000 + $ms) . qq{ {"page": "p"}});
}
sql(qq{
	SELECT streaming.create_source('clicks', 'kafka', 'page text, kafka_timestamp timestamptz',
		'{${\ source_opts(topic => '"clicks"', format => '"json"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_query('clicks_per_5s',
		\$\$SELECT streaming.window(kafka_timestamp, '5 seconds') AS w, count(*) AS n FROM clicks GROUP BY 1\$\$,
		output_mode => 'update', event_time => 'kafka_timestamp', watermark => '1 second');
	SELECT streaming.run('clicks_per_5s');
});
is(sql(q{SELECT string_agg((extract(epoch FROM lower(w))::bigint - 1700000000) || ':' || n, ' ' ORDER BY w) FROM clicks_per_5s}),
	'0:3 5:1 10:1', 'windows over the Kafka timestamp');

# --- starting_offsets: latest, and per partition
broker('topic late 2');
broker("produce late 0 m$_") for 1 .. 3;
broker("produce late 1 m$_") for 1 .. 3;
sql(qq{
	SELECT streaming.create_source('late_latest', 'kafka', NULL,
		'{${\ source_opts(topic => '"late"', format => '"text"', starting_offsets => '"latest"')}}');
	SELECT streaming.create_source('late_json', 'kafka', NULL,
		'{${\ source_opts(topic => '"late"', format => '"text"', starting_offsets => '{"late": {"0": 2}}')}}');
	SELECT streaming.create_query('latest_rows', 'SELECT value FROM late_latest', output_mode => 'append');
	SELECT streaming.create_query('json_rows', 'SELECT value FROM late_json', output_mode => 'append');
});
is(sql(q{SELECT streaming.run('latest_rows')}), '1', 'latest: the first batch records where the topic ends');
is(sql(q{SELECT count(*) FROM latest_rows}), '0', 'and reads nothing that was there before');
broker('produce late 0 new-0');
broker('produce late 1 new-1');
sql(q{SELECT streaming.run('latest_rows'); SELECT streaming.run('json_rows')});
is(sql(q{SELECT string_agg(value, ',' ORDER BY value) FROM latest_rows}), 'new-0,new-1', 'latest: only what came after the start');
is(sql(q{SELECT string_agg(value, ',' ORDER BY value) FROM json_rows}), 'm1,m2,m3,m3,new-0,new-1',
	'per-partition starting offsets: partition 0 from offset 2, partition 1 (unlisted) from the earliest');

# --- max_offsets_per_trigger: split in proportion to the backlog
broker('topic backlog 3');
open my $fh, '>', $node->basedir . '/lines' or die;
print $fh "x$_\n" for 1 .. 10;
close $fh;
my $lines = $node->basedir . '/lines';
broker("producefile backlog 0 $lines") for 1 .. 6;
broker("producefile backlog 1 $lines") for 1 .. 3;
broker("producefile backlog 2 $lines");
sql(qq{
	SELECT streaming.create_source('backlog', 'kafka', NULL,
		'{${\ source_opts(topic => '"backlog"', format => '"text"', starting_offsets => '"earliest"', max_offsets_per_trigger => 10)}}');
	SELECT streaming.create_query('backlog_count', 'SELECT count(*) AS n FROM backlog', output_mode => 'complete');
});
is(sql(q{SELECT streaming.run('backlog_count', max_batches => 1)}), '1', 'one batch');
is(sql(q{SELECT sources->0->>'end_offset' FROM streaming.progress WHERE query = 'backlog_count'}),
	'{"backlog:0": 6, "backlog:1": 3, "backlog:2": 1}', 'the first 10 offsets split 6/3/1 like the backlogs 60/30/10');
is(sql(q{SELECT streaming.run('backlog_count')}), '9', 'the rest in nine more batches of ten');
is(sql(q{SELECT n FROM backlog_count}), '100', 'every message counted once');

# --- topic_pattern: new matching topics are picked up while running
broker('topic pat-a 1');
broker('topic other 1');
broker('produce pat-a 0 a1');
broker('produce other 0 o1');
sql(qq{
	SELECT streaming.create_source('pat', 'kafka', NULL,
		'{${\ source_opts(topic_pattern => '"^pat-"', format => '"text"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_query('pat_rows', 'SELECT value FROM pat', output_mode => 'append');
	SELECT streaming.run('pat_rows');
});
broker('topic pat-b 2');
broker('produce pat-b 1 b1');
broker('produce pat-a 0 a2');
sql(q{SELECT streaming.run('pat_rows')});
is(sql(q{SELECT string_agg(value, ',' ORDER BY value) FROM pat_rows}), 'a1,a2,b1',
	'a topic created later that matches the pattern is read from its beginning; others are not');

# --- peek and lag
is(sql(q{SELECT string_agg(value, ',') FROM (SELECT value FROM pat ORDER BY value LIMIT 2) s}), 'a1,a2',
	'a SELECT on a kafka source peeks at the earliest messages');
broker('produce pat-a 0 a3');
broker('produce pat-a 0 a4');
is(sql(q{SELECT string_agg(topic || ':' || partition || ' ' || committed_offset || '/' || high_watermark || ' lag ' || lag, ', ' ORDER BY topic, partition)
           FROM streaming.kafka_lag WHERE query = 'pat_rows'}),
	'pat-a:0 2/4 lag 2, pat-b:0 0/0 lag 0, pat-b:1 1/1 lag 0', 'kafka_lag: committed offset, high watermark and lag per partition');

# --- data loss: offsets the broker no longer has
sql(q{UPDATE streaming.offsets SET "offset" = 1000 WHERE query = 'pat_rows' AND partition = 'pat-a:0'});
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.run('pat_rows')});
like($err, qr/Kafka partition pat-a:0 no longer has offset 1000/, 'fail_on_data_loss (default): a clear error');
sql(qq{
	SELECT streaming.create_source('lossy', 'kafka', NULL,
		'{${\ source_opts(topic => '"pat-a"', format => '"text"', starting_offsets => '{"pat-a": {"0": 1000}}', fail_on_data_loss => 'false')}}');
	SELECT streaming.create_query('lossy_rows', 'SELECT value FROM lossy', output_mode => 'append');
});
($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.run('lossy_rows')});
like($err, qr/WARNING:  Kafka partition pat-a:0: skipping from offset 1000 to 0/, 'fail_on_data_loss false: a warning');
is(sql(q{SELECT count(*) FROM lossy_rows}), '4', 'and the query goes on from what the broker has');

# --- real data loss: the mock cluster drops the oldest segments of a partition
# that outgrows its retention (a few MB), as a broker does
broker('topic ret 1');
broker('produce ret 0 first');
sql(qq{
	SELECT streaming.create_source('ret_strict', 'kafka', NULL,
		'{${\ source_opts(topic => '"ret"', format => '"text"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_source('ret_lossy', 'kafka', NULL,
		'{${\ source_opts(topic => '"ret"', format => '"text"', starting_offsets => '"earliest"', fail_on_data_loss => 'false')}}');
	SELECT streaming.create_query('ret_strict_n', 'SELECT count(*) AS n FROM ret_strict', output_mode => 'complete');
	SELECT streaming.create_query('ret_lossy_n', 'SELECT count(*) AS n FROM ret_lossy', output_mode => 'complete');
	SELECT streaming.run('ret_strict_n');
	SELECT streaming.run('ret_lossy_n');
});
open $fh, '>', "$lines.ret" or die;
printf $fh "message number %07d of the retention test\n", $_ for 1 .. 300000;
close $fh;
broker("producefile ret 0 $lines.ret");
($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.run('ret_strict_n')});
like($err, qr/Kafka partition ret:0 no longer has offset 1\b/, 'retention deleted unread messages: a clear error');
($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.run('ret_lossy_n')});
like($err, qr/WARNING:  Kafka partition ret:0: skipping from offset 1 to \d+/, 'or, with fail_on_data_loss false, a warning');
is(sql(q{SELECT (SELECT n FROM ret_lossy_n) + (SELECT sum((sources->0->>'lost_records')::bigint) FROM streaming.progress WHERE query = 'ret_lossy_n')}),
	'300001', 'the messages read plus those counted lost are exactly the messages produced');

# --- under background workers: exactly once through kills and an immediate stop
sql(q{ALTER DATABASE postgres RESET streaming.autostart});
broker('topic eo 4');
my $total = 0;
my %expect;
my $seq = 0;
sub produce_chunk
{
	my ($n) = @_;
	open my $f, '>', "$lines.eo" or die;
	for (1 .. $n)
	{
		$seq++;
		my $k = 'k' . ($seq % 7);
		print $f "$k,$seq\n";
		$expect{$k}{n}++;
		$expect{$k}{sum} += $seq;
	}
	close $f;
	broker("producefile eo -1 $lines.eo");
	$total += $n;
}
sub expected_rows
{
	return join("\n", map { "$_|$expect{$_}{n}|$expect{$_}{sum}" } sort keys %expect);
}
produce_chunk(2000);
sql(qq{
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.0005) IS NOT NULL\$\$;
	SELECT streaming.create_source('eo', 'kafka', 'k text, v int',
		'{${\ source_opts(topic => '"eo"', format => '"csv"', starting_offsets => '"earliest"', max_offsets_per_trigger => 300)}}');
	SELECT streaming.create_query('eo_totals',
		'SELECT k, count(*) AS n, sum(v) AS total FROM eo WHERE slow(v) GROUP BY k', output_mode => 'update');
});
for my $round (1 .. 3)
{
	my $pid = '';
	for (1 .. 300)
	{
		$pid = sql(q{SELECT pid FROM pg_stat_activity WHERE query = 'streaming micro-batch: eo_totals' AND state = 'active'});
		last if $pid ne '';
		usleep(20_000);
	}
	ok($pid ne '', "worker busy in a batch before kill $round");
	usleep(100_000);
	kill 'KILL', $pid if $pid ne '';
	$node->poll_query_until('postgres', 'SELECT true') or die;
	produce_chunk(500);
}
usleep(300_000);
$node->stop('immediate');
produce_chunk(500);
$node->start;
wait_for(q{SELECT sum(n) FROM eo_totals}, $total, "after 3 kills and an immediate stop all $total messages are counted");
is(sql(q{SELECT k, n, total FROM eo_totals ORDER BY k}), expected_rows(), 'row for row the expected aggregate');
my $batches = sql(q{SELECT count(*) FROM streaming.progress WHERE query = 'eo_totals' AND input_rows > 0});
is(sql(q{SELECT sum(input_rows), count(*), max(batch_id) + 1 FROM streaming.progress WHERE query = 'eo_totals'}),
	"$total|$batches|$batches", 'progress: every message in exactly one committed batch, batch ids without gaps');
is(sql(q{SELECT sum(lag) FROM streaming.kafka_lag WHERE query = 'eo_totals'}), '0', 'no lag left');

# --- the broker goes away and comes back
broker('down 1');
wait_for(q{SELECT state, condition IS NOT NULL FROM streaming.status WHERE name = 'eo_totals'}, 'running|t',
	'while the broker is down the query keeps running and says what it waits for');
like(sql(q{SELECT condition FROM streaming.status WHERE name = 'eo_totals'}), qr/Kafka/, 'the condition names Kafka');
broker('up 1');
produce_chunk(300);
wait_for(q{SELECT sum(n) FROM eo_totals}, $total, 'when the broker is back the query resumes');
is(sql(q{SELECT k, n, total FROM eo_totals ORDER BY k}), expected_rows(), 'and nothing was lost or doubled');
wait_for(q{SELECT condition IS NULL FROM streaming.queries WHERE name = 'eo_totals'}, 't', 'the condition clears');

# --- a broker that is down when the query starts
broker('topic cold 1');
broker("produce cold 0 c$_") for 1 .. 3;
broker('down 1');
sql(qq{
	SELECT streaming.create_source('cold', 'kafka', NULL,
		'{${\ source_opts(topic => '"cold"', format => '"text"', starting_offsets => '"earliest"')}}');
	SELECT streaming.create_query('cold_n', 'SELECT count(*) AS n FROM cold', output_mode => 'complete');
});
wait_for(q{SELECT state, condition LIKE 'waiting for Kafka%' FROM streaming.status WHERE name = 'cold_n'}, 'running|t',
	'a query created while the broker is down waits for it');
broker('up 1');
wait_for(q{SELECT n FROM cold_n}, '3', 'and reads the topic once the broker is up');

# --- 'available_now': the end offsets its first batch saw bound the run;
# 'once': one batch over everything, limits notwithstanding
broker('topic bounded 2');
broker("producefile bounded 0 $lines") for 1 .. 3;
broker("producefile bounded 1 $lines") for 1 .. 3;
sql(qq{
	CREATE FUNCTION slower(text) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.05) IS NOT NULL\$\$;
	SELECT streaming.create_source('bounded', 'kafka', NULL,
		'{${\ source_opts(topic => '"bounded"', format => '"text"', starting_offsets => '"earliest"', max_offsets_per_trigger => 10)}}');
	SELECT streaming.create_query('bounded_now', 'SELECT count(*) AS n FROM bounded WHERE slower(value)',
		output_mode => 'complete', trigger => 'available_now');
});
wait_for(q{SELECT last_batch_id >= 0 FROM streaming.queries WHERE name = 'bounded_now'}, 't', "'available_now' runs");
broker("producefile bounded 0 $lines");
broker("producefile bounded 1 $lines");
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'bounded_now'}, 'finished', "'available_now' finishes");
is(sql(q{SELECT n FROM bounded_now}) . '/' . sql(q{SELECT count(*) FROM streaming.progress WHERE query = 'bounded_now'}),
	'60/6', 'the 60 messages there when it began, in six batches of ten; not the 20 produced during the run');
sql(q{SELECT streaming.start('bounded_now')});
wait_for(q{SELECT n FROM bounded_now}, '80', 'the next run reads them');
sql(q{
	SELECT streaming.create_query('bounded_once', 'SELECT count(*) AS n FROM bounded',
		output_mode => 'complete', trigger => 'once');
});
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'bounded_once'}, 'finished', "'once' finishes");
is(sql(q{SELECT n FROM bounded_once}) . '/' . sql(q{SELECT count(*) || '/' || max(input_rows) FROM streaming.progress WHERE query = 'bounded_once'}),
	'80/1/80', "'once' reads all 80 messages in one batch, max_offsets_per_trigger notwithstanding");

sql(q{SELECT streaming.stop('eo_totals'); SELECT streaming.stop('cold_n')});
$node->stop;
$kafka->quit;
done_testing();
