# One topic across servers: the Kafka source's "assign" option gives each
# server its share of a topic's partitions.  Two consumer clusters split a
# 16-partition topic of librdkafka's mock cluster (0-7 and 8-15) and run
# the same windowed count / max / sum query into their result tables; a
# third cluster reads both result tables through postgres_fdw under a
# UNION ALL view and combines them (sum of counts, max of maxes, avg from
# the kept sums and counts).  The merged rows must equal, row for row, the
# single-server answer: plain SQL over the very messages produced.  The
# first round is read by run(), the second by the queries' workers.  Also:
# the option's validation at create_source, and a partition the topic does
# not have, which fails the batch with an error naming it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

my $pg_config = $ENV{PG_CONFIG} // 'pg_config';
my $sharedir = `$pg_config --sharedir`;
chomp $sharedir;
plan skip_all => "postgres_fdw is not installed ($sharedir/extension)"
  unless -e "$sharedir/extension/postgres_fdw.control";

my $kafka = StreamingTest::Broker->start('events:16');
my $bootstrap = $kafka->bootstrap;
sub broker { return $kafka->cmd($_[0]); }

my %consumer;
for my $name ('c1', 'c2')
{
	my $node = PostgreSQL::Test::Cluster->new("assign_$name");
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.autostart = off
streaming.launcher_naptime = 1
});
	$node->start;
	$consumer{$name} = $node;
}
my $reader = PostgreSQL::Test::Cluster->new('assign_reader');
$reader->init;
$reader->start;

sub on { my ($node, $sql) = @_; return $node->safe_psql('postgres', $sql); }

# the messages, the same formula as the plain SQL below: message i goes to
# partition i % 16 (the broker's producefile spreads them so)
my $data = $reader->basedir . '/events.csv';
my @produced;
sub produce
{
	my ($from, $to) = @_;
	open my $f, '>', $data or die "$data: $!";
	for my $i ($from .. $to)
	{
		my $line = sprintf('d%d,2024-01-01T00:%02d:%02dZ,%d', $i % 7, int(($i * 37 % 600) / 60), ($i * 37 % 600) % 60,
			$i * 7919 % 1000);
		print $f "$line\n";
		push @produced, $line;
	}
	close $f;
	broker("producefile events -1 $data");
}

# --- the option: exactly one way to name the input, and a well-formed map
my $c1 = $consumer{c1};
on($c1, q{CREATE EXTENSION streaming});
for my $case (
	[ q{"topic": "events", "assign": {"events": [0]}},
	  qr/a kafka source needs exactly one of the options "topic", "topics", "topic_pattern" and "assign"/ ],
	[ q{"assign": {}}, qr/invalid value for option "assign".*No topic is named/s ],
	[ q{"assign": {"events": []}}, qr/Topic "events" has no partitions listed/ ],
	[ q{"assign": {"events": [0, -1]}}, qr/Partition -1 of topic "events" is not a partition number/ ],
	[ q{"assign": {"events": [1.5]}}, qr/Partition 1.5 of topic "events" is not a partition number/ ],
	[ q{"assign": {"events": [2, 2]}}, qr/Partition 2 of topic "events" is named twice/ ],
	[ q{"assign": {"events": 3}}, qr/The partitions of topic "events" are not an array/ ],
	[ q{"assign": [0, 1]}, qr/The value is not an object/ ])
{
	my ($opts, $re) = @$case;
	my ($rc, $out, $err) = $c1->psql('postgres',
		qq{SELECT streaming.create_source('bad', 'kafka', 'v text', '{"bootstrap_servers": "$bootstrap", "format": "text", $opts}')});
	like($err, $re, "create_source refuses $opts");
}
# Spark's spelling, the map as a JSON string, is taken too
on($c1, qq{SELECT streaming.create_source('spark_style', 'kafka', 'v text',
	'{"bootstrap_servers": "$bootstrap", "format": "text", "assign": "{\\"events\\": [0, 1]}"}');
	SELECT streaming.drop_source('spark_style')});
pass('create_source takes the map as a JSON string, as Spark does');

# --- a partition the topic does not have: the batch fails, naming it
on($c1, qq{SELECT streaming.create_source('beyond', 'kafka', 'v text',
	'{"bootstrap_servers": "$bootstrap", "format": "text", "assign": {"events": [3, 16]}}');
	SELECT streaming.create_query('beyond_rows', 'SELECT v FROM beyond')});
my ($rc, $out, $err) = $c1->psql('postgres', q{SELECT streaming.run('beyond_rows')});
like($err, qr/Kafka topic "events" has no partition 16.*the topic has 16 partitions/s,
	'run(): an assigned partition the topic lacks is an error naming it');
on($c1, q{SELECT streaming.start('beyond_rows')});
StreamingTest::wait_for($c1, q{SELECT status || ': ' || last_error FROM streaming.queries WHERE name = 'beyond_rows'},
	'failed: Kafka topic "events" has no partition 16', 'a worker: the query fails, with the error as last_error');
on($c1, q{SELECT streaming.drop_query('beyond_rows'); SELECT streaming.drop_source('beyond')});

# --- two servers, one topic: each takes its half
my %share = (c1 => '[0, 1, 2, 3, 4, 5, 6, 7]', c2 => '[8, 9, 10, 11, 12, 13, 14, 15]');
on($consumer{c2}, q{CREATE EXTENSION streaming});
for my $name ('c1', 'c2')
{
	on($consumer{$name}, qq{
		SELECT streaming.create_source('events', 'kafka', 'device text, ts timestamptz, value int',
			'{"bootstrap_servers": "$bootstrap", "assign": {"events": $share{$name}},
			  "format": "csv", "starting_offsets": "earliest"}');
		SELECT streaming.create_query('events_agg',
			\$\$SELECT streaming.window(ts, '1 minute') AS w, device,
			          count(*) AS n, max(value) AS top, sum(value) AS total
			     FROM events GROUP BY 1, 2\$\$,
			output_mode => 'complete');
	});
}

# the reader: both result tables as foreign tables, one view over them
my $user = on($reader, q{SELECT current_user});
on($reader, q{CREATE EXTENSION postgres_fdw});
for my $name ('c1', 'c2')
{
	my $node = $consumer{$name};
	on($reader, qq{
		CREATE SERVER $name FOREIGN DATA WRAPPER postgres_fdw
			OPTIONS (host '${\ $node->host}', port '${\ $node->port}', dbname 'postgres');
		CREATE USER MAPPING FOR CURRENT_USER SERVER $name OPTIONS (user '$user');
		CREATE SCHEMA $name;
		IMPORT FOREIGN SCHEMA public LIMIT TO (events_agg) FROM SERVER $name INTO $name;
	});
}
on($reader, q{
	CREATE VIEW events_agg_all AS
		SELECT * FROM c1.events_agg UNION ALL SELECT * FROM c2.events_agg;
	CREATE VIEW events_merged AS
		SELECT w, device, sum(n) AS n, max(top) AS top, sum(total) / sum(n) AS avg_value
		  FROM events_agg_all GROUP BY w, device;
	CREATE TABLE produced (device text, ts timestamptz, value int);
});

# compare: the merged result and plain SQL over the produced messages
sub compare
{
	my ($what, $count) = @_;
	on($reader, 'TRUNCATE produced');
	my ($rc, $out, $err) = $reader->psql('postgres',
		"COPY produced FROM STDIN (FORMAT csv);\n" . join("\n", @produced) . "\n\\.\n");
	die "COPY: $err" if $rc != 0;
	is(on($reader, 'SELECT count(*) FROM produced'), $count, "$what: the reader has the $count messages produced");
	my $rows = q{SET TimeZone = 'UTC'; SELECT w, device, n, top, round(avg_value, 6) FROM %s ORDER BY w, device};
	my $merged = on($reader, sprintf($rows, 'events_merged'));
	my $plain = on($reader, sprintf($rows, q{(
		SELECT tstzrange(date_bin('1 minute', ts, '1970-01-01 00:00:00+00'),
		                 date_bin('1 minute', ts, '1970-01-01 00:00:00+00') + interval '1 minute') AS w,
		       device, count(*) AS n, max(value) AS top, avg(value) AS avg_value
		  FROM produced GROUP BY 1, 2) AS plain}));
	ok($merged ne '', "$what: the merged result has rows");
	is($merged, $plain, "$what: the merged result equals the single-server answer, row for row");
	is(on($reader, 'SELECT sum(n) FROM events_agg_all'), $count, "$what: every message counted once, on one server");
	return;
}

# round 1: run() on each server
produce(0, 3999);
for my $name ('c1', 'c2')
{
	on($consumer{$name}, q{SELECT streaming.run('events_agg')});
	is(on($consumer{$name}, q{SELECT sum(n) FROM events_agg}), '2000', "$name: run() read its 8 partitions' 2000 messages");
}
is(on($c1, q{SELECT string_agg(partition || '=' || "offset", ' ' ORDER BY split_part(partition, ':', 2)::int) FROM streaming.offsets}),
	join(' ', map { "events:$_=250" } 0 .. 7), 'c1: offsets of partitions 0-7 only');
is(on($consumer{c2}, q{SELECT string_agg(partition || '=' || "offset", ' ' ORDER BY split_part(partition, ':', 2)::int) FROM streaming.offsets}),
	join(' ', map { "events:$_=250" } 8 .. 15), 'c2: offsets of partitions 8-15 only');
compare('round 1 (run)', 4000);

# round 2: the queries' workers keep going
produce(4000, 5599);
for my $name ('c1', 'c2')
{
	on($consumer{$name}, q{SELECT streaming.start('events_agg')});
	StreamingTest::wait_for($consumer{$name}, q{SELECT sum(n) FROM events_agg}, '2800',
		"$name: its worker read the next 800 messages of its partitions");
	is(on($consumer{$name}, q{SELECT sum(lag) FROM streaming.kafka_lag WHERE query = 'events_agg'}), '0',
		"$name: kafka_lag lists its partitions, none behind");
}
compare('round 2 (workers)', 5600);

$kafka->quit;
done_testing();
