# The rate and socket sources under background workers: a query over the
# rate source has results within seconds of create_query and counts every
# generated value once; an interval trigger spaces its batches; the socket
# source reads lines from a server on loopback, reconnects after the server
# closes the connection, and sends undecodable lines to the dead letters.
use strict;
use warnings;

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;
use Time::HiRes qw(usleep time);

my $node = PostgreSQL::Test::Cluster->new('rate_socket');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{CREATE EXTENSION streaming});

# --- rate: results within seconds of create_query
my $t0 = time;
sql(q{
	SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_second": 50}');
	SELECT streaming.create_query('tick_count',
		'SELECT count(*) AS n, min(value) AS lo, max(value) AS hi FROM ticks', output_mode => 'complete');
});
my $n = 0;
for (1 .. 100)
{
	$n = sql(q{SELECT coalesce(max(n), 0) FROM tick_count});
	last if $n > 0;
	usleep(100_000);
}
my $elapsed = time - $t0;
ok($n > 0, 'a rate query has results');
ok($elapsed < 5, sprintf('within seconds of create_query (%.1f s)', $elapsed));

# every generated value is counted once: count = hi - lo + 1, lo = 0
usleep(1_500_000);
sql(q{SELECT streaming.stop('tick_count')});
my ($cnt, $lo, $hi) = split /\|/, sql(q{SELECT n, lo, hi FROM tick_count});
is($lo, '0', 'the rate source starts at value 0');
is($cnt, $hi + 1, "the values 0..$hi are each counted once ($cnt rows)");
is(sql(q{SELECT "offset" FROM streaming.offsets WHERE query = 'tick_count' AND partition = 'value'}),
	$hi + 1, 'the committed offset is the next value');
ok($cnt >= 50, "about 50 rows per second ($cnt rows)");

# --- an interval trigger: batches one interval apart, no catch-up burst
sql(q{
	SELECT streaming.create_source('ticks2', 'rate', options => '{"rows_per_second": 100}');
	SELECT streaming.create_query('every_700ms', 'SELECT count(*) AS n FROM ticks2',
		output_mode => 'complete', trigger => '700 milliseconds');
});
wait_for(q{SELECT count(*) >= 5 FROM streaming.progress WHERE query = 'every_700ms'}, 't',
	'the interval trigger runs batches');
sql(q{SELECT streaming.stop('every_700ms')});
my $gaps = sql(q{
	SELECT min(gap), max(gap) FROM (
		SELECT extract(epoch FROM "timestamp" - lag("timestamp") OVER (ORDER BY batch_id)) AS gap
		  FROM streaming.progress WHERE query = 'every_700ms') g WHERE gap IS NOT NULL AND gap > 0});
my ($min_gap, $max_gap) = split /\|/, $gaps;
ok($min_gap >= 0.65 && $max_gap < 1.5, "batches are one interval apart (gaps $min_gap .. $max_gap s)");

# --- socket: a line server on loopback
my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5, ReuseAddr => 1, Proto => 'tcp')
  or die "cannot listen: $!";
my $port = $listener->sockport;
my $go = $node->basedir . '/second_connection';

my $server = fork;
die "fork: $!" unless defined $server;
if ($server == 0)
{
	# first connection: some lines, then the server hangs up
	my $c = $listener->accept or exit 1;
	print $c "apple\nbanana\napple\n";
	print $c "cherry\r\nban";
	usleep(200_000);
	print $c "ana\n";
	close $c;
	# second connection, once the test says so: more lines, one not UTF-8,
	# one of 20 MB (more than a line may be)
	usleep(50_000) until -e $go;
	$c = $listener->accept or exit 1;
	print $c "apple\n\xff\xfe broken\n";
	print $c 'x' x 1_000_000 for 1 .. 20;
	print $c "tail\ndate\n";
	sleep 600;
	exit 0;
}
close $listener;

sql(qq{
	SELECT streaming.create_source('words', 'socket',
		options => '{"host": "127.0.0.1", "port": $port, "include_timestamp": true}');
	SELECT streaming.create_query('word_counts',
		'SELECT value AS word, count(*) AS n FROM words GROUP BY value', output_mode => 'update');
});
is(sql(q{SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
           FROM pg_attribute WHERE attrelid = 'words'::regclass AND attnum > 0}),
	'value text, timestamp timestamp with time zone', 'include_timestamp adds the timestamp column');
wait_for(q{SELECT string_agg(word || '=' || n, ',' ORDER BY word) FROM word_counts},
	'apple=2,banana=2,cherry=1', 'lines from the first connection, split across packets');
open my $fh, '>', $go or die;
close $fh;
wait_for(q{SELECT string_agg(word || '=' || n, ',' ORDER BY word) FROM word_counts},
	'apple=3,banana=2,cherry=1,date=1', 'the source reconnects and reads the next connection');
is(sql(q{SELECT position, encode(payload, 'escape') FROM streaming.dead_letters WHERE query = 'word_counts' AND position = 'line 7'}),
	"line 7|\\377\\376 broken", 'a line that is not UTF-8 is a dead letter');
is(sql(q{SELECT position, length(payload), payload = convert_to(repeat('x', 1024), 'UTF8'), error
	FROM streaming.dead_letters WHERE query = 'word_counts' AND position = 'line 8'}),
	'line 8|1024|t|the line is longer than 16 MB; its first 1024 bytes are kept',
	'a line longer than 16 MB is a dead letter, kept by its start, and the lines after it are read');
is(sql(q{SELECT "offset" FROM streaming.offsets WHERE query = 'word_counts' AND partition = 'lines'}),
	'9', 'the offset counts the lines consumed');
is(sql(q{SELECT sum(input_rows) || '+' || sum(dead_letters) FROM streaming.progress WHERE query = 'word_counts'}),
	'7+2', 'progress counts every line once: 7 rows and 2 dead letters');
is(sql(q{SELECT count(*) FROM words}), '0', 'a plain SELECT does not take lines from the query');

kill 'KILL', $server;
waitpid $server, 0;
sql(q{SELECT streaming.stop('word_counts')});

# --- a server that is not there yet: the query waits, says so, and connects later
my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, ReuseAddr => 1)
  or die;
my $late_port = $probe->sockport;
close $probe;
sql(qq{
	SELECT streaming.create_source('late', 'socket', options => '{"host": "127.0.0.1", "port": $late_port}');
	SELECT streaming.create_query('late_count', 'SELECT count(*) AS n FROM late', output_mode => 'complete');
});
wait_for(q{SELECT state, condition LIKE 'connecting to the socket source at 127.0.0.1:%: Connection refused'
             FROM streaming.status WHERE name = 'late_count'}, 'running|t',
	'a query whose server is down keeps running and shows the condition');
$listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1', LocalPort => $late_port, Listen => 5, ReuseAddr => 1, Proto => 'tcp')
  or die "cannot listen on $late_port: $!";
$server = fork;
die "fork: $!" unless defined $server;
if ($server == 0)
{
	my $c = $listener->accept or exit 1;
	print $c "$_\n" for 1 .. 5;
	sleep 600;
	exit 0;
}
close $listener;
wait_for(q{SELECT n FROM late_count}, '5', 'it connects once the server is up, with backoff');
wait_for(q{SELECT condition IS NULL FROM streaming.queries WHERE name = 'late_count'}, 't',
	'and the condition clears');
kill 'KILL', $server;
waitpid $server, 0;
sql(q{SELECT streaming.stop('late_count')});

# --- restart backoff: a query that keeps dying waits 2^(restarts - 1) s
# (here: a stopped query made to look as if a worker had died holding it,
# for the 3rd time: a pid no process has)
sql(q{UPDATE streaming.queries SET enabled = true, status = 'running', restarts = 3, worker_pid = 2147483646
      WHERE name = 'tick_count'});
wait_for(q{SELECT state, restarts, restart_at - now() > interval '1 second'
             FROM streaming.status WHERE name = 'tick_count'}, 'restarting|4|t',
	'a query that died again is restarted after a backoff');
wait_for(q{SELECT state, restarts FROM streaming.status WHERE name = 'tick_count'}, 'running|0',
	'then it runs, and the count resets once it got going');
sql(q{SELECT streaming.stop('tick_count')});
$node->stop;

done_testing();
