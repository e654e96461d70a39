# The Kafka sink against librdkafka's mock cluster (test/kafka/kafka_test_broker),
# read back with kcat: one message per written row, keyed by a column, in
# json and csv, per output mode; a broker that goes away makes the query
# wait and deliver later; through worker kills every row arrives (at
# least once).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $kafka = StreamingTest::Broker->start('rows:1', 'counts:1', 'totals:1', 'many:1');
my $bootstrap = $kafka->bootstrap;
sub broker { return $kafka->cmd($_[0]); }
# the messages of a topic, "key|value" per line
sub topic
{
	my ($t) = @_;
	my $out = `kcat -b $bootstrap -C -t $t -e -q -o beginning -f '%k|%s\\n' 2>/dev/null`;
	chomp $out;
	return $out;
}

my $node = PostgreSQL::Test::Cluster->new('kafka_sink');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
restart_after_crash = on
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

my $base = $node->basedir;
sub put { my ($dir, @lines) = @_; return put_file("$base/$dir", @lines); }
mkdir "$base/in";

# --- driven by run(): the messages of each output mode, exactly
sql(qq{
	CREATE EXTENSION streaming;
	SET streaming.autostart = off;
	SELECT streaming.create_source('ev', 'file', 'id int, name text, ts timestamptz',
		'{"path": "$base/in", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('to_rows', 'SELECT id, name, ts FROM ev', start => false,
		sink => 'kafka', sink_options => '{"bootstrap_servers": "$bootstrap", "topic": "rows", "key": "name"}');
	SELECT streaming.create_query('to_counts', 'SELECT name, count(*) AS n FROM ev GROUP BY name',
		output_mode => 'update', start => false,
		sink => 'kafka', sink_options => '{"bootstrap_servers": "$bootstrap", "topic": "counts", "format": "csv", "key": "name"}');
	SELECT streaming.create_query('to_totals', 'SELECT name, count(*) AS n FROM ev GROUP BY name',
		output_mode => 'complete', start => false,
		sink => 'kafka', sink_options => '{"bootstrap_servers": "$bootstrap", "topic": "totals"}');
});
put('in', '1,a,2024-01-01 00:00:10+00', '2,b,2024-01-01 00:00:20+00');
put('in', '3,a,2024-01-01 00:01:30+00');
is(sql(q{SELECT streaming.run('to_rows')::text || streaming.run('to_counts') || streaming.run('to_totals')}), '222',
	'two batches each');
is(topic('rows'), join("\n",
		'a|{"id": 1, "name": "a", "ts": "2024-01-01T00:00:10+00:00"}',
		'b|{"id": 2, "name": "b", "ts": "2024-01-01T00:00:20+00:00"}',
		'a|{"id": 3, "name": "a", "ts": "2024-01-01T00:01:30+00:00"}'),
	'append: one json message per row, keyed by the key column');
is(join("\n", sort split /\n/, topic('counts')), join("\n", 'a|a,1', 'a|a,2', 'b|b,1'),
	'update: the changed rows of each batch, in csv');
my @totals = split /\n/, topic('totals');
is(scalar(@totals) . ':' . join(' ', sort @totals[0 .. 1]) . ' / ' . join(' ', sort @totals[2 .. 3]),
	'4:|{"name": "a", "n": 1} |{"name": "b", "n": 1} / |{"name": "a", "n": 2} |{"name": "b", "n": 1}',
	'complete: the whole result after each batch');
is(sql(q{SELECT sink_rows FROM streaming.progress WHERE query = 'to_rows' ORDER BY batch_id}), "2\n1",
	'progress counts the rows sent');

my ($rc, $out, $err) = $node->psql('postgres', qq{SELECT streaming.create_query('bad_key', 'SELECT id FROM ev',
	sink => 'kafka', sink_options => '{"bootstrap_servers": "$bootstrap", "topic": "rows", "key": "name"}')});
like($err, qr/the key column "name" of the kafka sink is not a column of the query/, 'a key that is not a column is refused');
($rc, $out, $err) = $node->psql('postgres', qq{SELECT streaming.create_query('bad_topic', 'SELECT id FROM ev',
	sink => 'kafka', sink_options => '{"bootstrap_servers": "$bootstrap"}')});
like($err, qr/the kafka sink needs the option "topic"/, 'a topic is required');

# --- under a worker: the broker goes away, the query waits, then delivers
mkdir "$base/many";
sql(qq{
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.003) IS NOT NULL\$\$;
	SELECT streaming.create_source('many_src', 'file', 'id int',
		'{"path": "$base/many", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('to_many', 'SELECT id FROM many_src WHERE slow(id)',
		sink => 'kafka', sink_options => '{"bootstrap_servers": "$bootstrap", "topic": "many", "kafka.message.timeout.ms": 3000}');
});
my $id = 0;
sub put_ids
{
	my ($n) = @_;
	put('many', map { ++$id } 1 .. $n);
}
put_ids(100);
my $count = sub { my @l = grep { length } split /\n/, topic('many'); return scalar(@l); };
wait_for($count, '100', 'a worker sends the rows of a file');
broker('down 1');
put_ids(100);
wait_for(q{SELECT state, condition IS NOT NULL FROM streaming.status WHERE name = 'to_many'}, 'running|t',
	'while the broker is down the query waits and says why');
like(sql(q{SELECT condition FROM streaming.status WHERE name = 'to_many'}), qr/Kafka/, 'the condition names Kafka');
broker('up 1');
wait_for(q{SELECT condition IS NULL AND last_batch_id >= 1 FROM streaming.queries WHERE name = 'to_many'}, 't',
	'when the broker is back the batch is delivered and commits');

# --- through worker kills: every row arrives, at least once
for my $f (1 .. 6)
{
	put_ids(100);
}
for my $kill (1 .. 2)
{
	my $pid = '';
	for (1 .. 300)
	{
		$pid = sql(q{SELECT pid FROM pg_stat_activity WHERE query = 'streaming micro-batch: to_many' AND state = 'active'});
		last if $pid ne '';
		usleep(20_000);
	}
	ok($pid ne '', "worker busy in a batch before kill $kill");
	usleep(150_000);
	kill 'KILL', $pid if $pid ne '';
	$node->poll_query_until('postgres', 'SELECT true') or die;
}
wait_for(q{SELECT (SELECT count(*) FROM to_many) || '/' || (SELECT max(batch_id) FROM streaming.progress WHERE query = 'to_many')},
	'800/7', 'the result table counts all 800 rows once, in 8 batches');
my %seen;
$seen{ (split /\|/)[1] }++ for grep { length } split /\n/, topic('many');
my @missing = grep { !$seen{qq({"id": $_})} } 1 .. 800;
is(scalar(@missing), 0, 'Kafka has every row, at least once');
my $extra = 0;
$extra += $seen{$_} - 1 for keys %seen;
note "messages sent twice after the kills and the outage: $extra";
is(scalar(keys %seen), 800, 'and no other message');

sql(q{SELECT streaming.stop('to_many')});
$node->stop;
$kafka->quit;
done_testing();
