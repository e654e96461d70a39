# reset_query(name, start_from) over Kafka (librdkafka's mock cluster):
# from a time (the first offset of each partition whose message timestamp
# is at or after it, rd_kafka_offsets_for_times), from the earliest offsets
# the broker still has (whatever starting_offsets says), and from given
# offsets, checked against the partitions and what the broker has.  The
# result is rebuilt batch by batch and compared with plain SQL over the
# messages produced.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

my $kafka = StreamingTest::Broker->start('rs_ts:2');
my $bootstrap = $kafka->bootstrap;
sub broker { return $kafka->cmd($_[0]); }

my $node = PostgreSQL::Test::Cluster->new('kafka_reset');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.autostart = off
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql(q{CREATE EXTENSION streaming});

# messages: (partition, timestamp in ms, key, value), one minute apart from
# 2024-01-01 10:00 UTC (1704103200000), the two partitions interleaved
my @msgs;
for my $i (0 .. 11)
{
	my $p = $i % 2;
	my $ms = 1704103200000 + $i * 60000;
	my $k = $i % 3;
	broker(qq{producets rs_ts $p $ms {"k": $k, "v": $i}});
	push @msgs, "($p, $ms, $k, $i)";
}
sql(q{CREATE TABLE produced (p int, ms bigint, k int, v int); INSERT INTO produced VALUES } . join(', ', @msgs));

# starting_offsets latest: a new query reads only what comes after it
sql(qq{SELECT streaming.create_source('ks', 'kafka', 'k int, v int',
	'{"bootstrap_servers": "$bootstrap", "topic": "rs_ts", "format": "json",
	  "starting_offsets": "latest", "max_offsets_per_trigger": 4}');
	SELECT streaming.create_query('kq', \$\$SELECT k, count(*) AS n, sum(v) AS total FROM ks GROUP BY k\$\$,
	  output_mode => 'complete');});
sql(q{SELECT streaming.run('kq')});
is(result() . '/' . offsets(), '/rs_ts:0=6 rs_ts:1=6', 'from latest, a new query has nothing to read');

# the result against plain SQL over the messages at or after a time
sub expected
{
	my ($from_ms) = @_;
	return sql(qq{SELECT coalesce(string_agg(format('%s:%s:%s', k, n, total), ' ' ORDER BY k), '')
	                FROM (SELECT k, count(*) AS n, sum(v) AS total FROM produced
	                       WHERE ms >= $from_ms GROUP BY k) s});
}
sub result
{
	return sql(q{SELECT coalesce(string_agg(format('%s:%s:%s', k, n, total), ' ' ORDER BY k), '') FROM kq});
}
sub offsets
{
	return sql(q{SELECT string_agg(partition || '=' || "offset", ' ' ORDER BY partition)
	               FROM streaming.offsets WHERE query = 'kq'});
}

# whatever the broker answers, each partition starts where it says, or at
# its end when it has no message at or after the time
sub broker_for_time
{
	my ($ms) = @_;
	return join(' ', map {
		my ($off) = broker("offsetfortime rs_ts $_ $ms") =~ /^ok (-?\d+)/;
		"rs_ts:$_=" . ($off < 0 ? 6 : $off) } (0, 1));
}
sql(q{SELECT streaming.reset_query('kq', start_from => '2024-01-01 10:05:00+00'::timestamptz)});
is(offsets(), broker_for_time(1704103200000 + 5 * 60000), 'from a time: each partition where the broker says');
sql(q{SELECT streaming.reset_query('kq', start_from => '2023-12-31 00:00:00+00')});
is(offsets(), broker_for_time(1703980800000), 'from a time before every message: where the broker says');

# The lookup by time is the broker's (ListOffsets).  librdkafka 2.0's mock
# cluster answers "none" to every time; a broker that looks up gives the
# first offset at or after it.  The broker itself is asked first.
my $supported = broker('offsetfortime rs_ts 1 ' . (1704103200000 + 5 * 60000)) eq 'ok 2';
SKIP:
{
	skip 'the mock cluster of this librdkafka does not look offsets up by time', 6 unless $supported;

	# --- from a time: 10:05 is message 5 (partition 1, offset 2); partition 0
	# starts at message 6 (offset 3)
	my $before = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'kq'});
	sql(q{SELECT streaming.reset_query('kq', start_from => '2024-01-01 10:05:00+00'::timestamptz)});
	is(offsets(), 'rs_ts:0=3 rs_ts:1=2', 'from a time: each partition at its first message at or after it');
	is(sql(q{SELECT streaming.run('kq')}), '2', 'seven messages, in batches of at most four');
	is(result(), expected(1704103200000 + 5 * 60000), 'from a time: the result equals plain SQL over the messages from 10:05 on');
	is(sql(q{SELECT string_agg(input_rows::text, ' ' ORDER BY batch_id) FROM streaming.progress WHERE query = 'kq' AND batch_id > $before}),
		'4 3', 'one transaction per batch, as usual');

	# between two messages (10:02:30): from the next one on, 10:03
	sql(q{SELECT streaming.reset_query('kq', '2024-01-01 10:02:30+00')});
	is(offsets(), 'rs_ts:0=2 rs_ts:1=1', 'a time between messages: from the next message on');
	sql(q{SELECT streaming.run('kq')});
	is(result(), expected(1704103200000 + 3 * 60000), 'the result equals plain SQL over the messages from 10:03 on');
}

# after the last message: nothing to read until new messages come
sql(q{SELECT streaming.reset_query('kq', '2024-01-02 00:00:00+00')});
is(offsets(), 'rs_ts:0=6 rs_ts:1=6', 'a time after every message: at the end of each partition');
sql(q{SELECT streaming.run('kq')});
is(offsets(), 'rs_ts:0=6 rs_ts:1=6', 'and nothing to read');
is(result(), '', 'with an empty result');

# --- from the earliest: every message, though starting_offsets is latest
sql(q{SELECT streaming.reset_query('kq', 'earliest')});
is(offsets(), 'rs_ts:0=0 rs_ts:1=0', 'from the earliest: the low watermarks');
sql(q{SELECT streaming.run('kq')});
is(result(), expected(0), 'from the earliest the result equals plain SQL over every message');

# --- without start_from: where a new query starts (latest here), as in 0.3
sql(q{SELECT streaming.reset_query('kq')});
sql(q{SELECT streaming.run('kq')});
is(offsets(), 'rs_ts:0=6 rs_ts:1=6', 'without start_from, from starting_offsets');
is(result(), '', 'so nothing is read again');

# --- given offsets: partition 1 from offset 4 (messages 9 and 11); partition 0
# not named starts at its earliest
sql(q{SELECT streaming.reset_query('kq', '{"rs_ts:1": 4}'::jsonb)});
sql(q{SELECT streaming.run('kq')});
is(result(), sql(q{SELECT string_agg(format('%s:%s:%s', k, n, total), ' ' ORDER BY k)
                     FROM (SELECT k, count(*) AS n, sum(v) AS total FROM produced
                            WHERE p = 0 OR v IN (9, 11) GROUP BY k) s}),
	'from given offsets the result equals plain SQL over the messages after them');

# --- mistakes: errors that leave the query as it was
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.reset_query('kq', '{"rs_ts:2": 0}')});
like($err, qr/"rs_ts:2" is not a partition of source "ks".*rs_ts:0, rs_ts:1/s, 'a partition that does not exist is an error naming those that do');
($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.reset_query('kq', '{"rs_ts:0": 7}')});
like($err, qr/offset 7 of partition rs_ts:0 is not one the broker has\nDETAIL:  Its offsets now go from 0 to 6/,
	'an offset beyond the end is an error with the range');
($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.reset_query('kq', '{"rs_ts:0": -3}')});
like($err, qr/must be a whole number at or above 0/, 'a negative offset is an error');
is(result(), sql(q{SELECT string_agg(format('%s:%s:%s', k, n, total), ' ' ORDER BY k)
                     FROM (SELECT k, count(*) AS n, sum(v) AS total FROM produced
                            WHERE p = 0 OR v IN (9, 11) GROUP BY k) s}),
	'after the errors the result is as it was');

$kafka->quit;
$node->stop;
done_testing();
