# Inputs that must neither hang a backend nor grow it without bound:
#  - window() with a slide of a microsecond under a size of 10000 days is
#    refused at once (it looped without an interrupt check: statement_timeout
#    and pg_cancel_backend did nothing);
#  - the socket source's buffer is bounded in lines and in bytes, empty lines
#    included (10 MB of bare newlines grew a worker by ~480 MB), and the lines
#    held back by TCP meanwhile all arrive later, in order, none lost.
# The pg_regress suite input_bounds covers the rest of the bounds.
use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;
use Time::HiRes qw(usleep);

# the source's limits (src/sources/socket_source.c)
my $max_lines = 1_000_000;
my $max_bytes = 64 * 1024 * 1024;

my $node = PostgreSQL::Test::Cluster->new('input_bounds');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.autostart = off
streaming.launcher_naptime = 1
streaming.idle_poll = 50
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{CREATE EXTENSION streaming});

# --- window(): refused before any loop, well within the statement timeout
my ($out, $err, $timed_out);
$node->psql('postgres',
	q{SET statement_timeout = '5s';
	  SELECT streaming.window('2024-01-01', '10000 days', '1 microsecond') LIMIT 1},
	stdout => \$out, stderr => \$err, timeout => 60, timed_out => \$timed_out);
ok(!$timed_out && $err =~ /a sliding window may put a row in at most 10000 windows/,
	'a window of 10000 days sliding by a microsecond is refused at once');

# a line server on loopback: one connection, the given bytes, then it waits
sub line_server
{
	my ($payload) = @_;
	my $listener = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, ReuseAddr => 1, Proto => 'tcp')
	  or die "cannot listen: $!";
	my $port = $listener->sockport;
	my $pid = fork;
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# _exit: the child must not run the test's END blocks, which stop
		# the node (it exits early when the query's end closes the socket)
		my $c = $listener->accept or POSIX::_exit(1);
		binmode $c;
		my $chunk = 1 << 20;
		for (my $off = 0; $off < length $$payload; $off += $chunk)
		{
			print $c substr($$payload, $off, $chunk) or POSIX::_exit(1);
		}
		sleep 600;
		POSIX::_exit(0);
	}
	close $listener;
	return ($pid, $port);
}

# --- in a session: 3,000,000 lines, empty but for every 100,000th, which is
# "\xff" and its line number (not UTF-8: a dead letter whose position must
# be that number); batches take 250,000 lines each
my $n = 3_000_000;
my $payload = '';
for my $k (1 .. $n / 100_000)
{
	$payload .= "\n" x 99_999 . "\xff" . ($k * 100_000) . "\n";
}
my ($server, $port) = line_server(\$payload);

sql(qq{
	SELECT streaming.create_source('blank', 'socket',
		options => '{"host": "127.0.0.1", "port": $port, "max_lines_per_trigger": 250000}');
	SELECT streaming.create_query('blank_count', 'SELECT count(*) AS n FROM blank', output_mode => 'complete');
});

# the buffer lives in the process that runs the batches: one session
my $session = $node->background_psql('postgres');
my ($max_buffered, $max_memory, $batches, $done) = (0, 0, 0, 0);
for my $i (1 .. 200)
{
	my $ran = $session->query_safe(q{SELECT streaming.run('blank_count', 1)});
	my ($buffered, $memory) = split /\|/, $session->query_safe(q{
		SELECT (SELECT (sources->0->'latest_offset'->>'lines')::bigint - (sources->0->'start_offset'->>'lines')::bigint
		          FROM streaming.progress WHERE query = 'blank_count' ORDER BY batch_id DESC LIMIT 1),
		       (SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts
		         WHERE name = 'streaming socket buffer')});
	$batches += $ran;
	$max_buffered = $buffered if defined $buffered && $buffered ne '' && $buffered > $max_buffered;
	$max_memory = $memory if $memory > $max_memory;
	$done = $session->query_safe(
		q{SELECT coalesce(max("offset"), 0) FROM streaming.offsets WHERE query = 'blank_count' AND partition = 'lines'});
	last if $done == $n;
	# the first batch connects: let the server fill the socket before the next
	usleep($i == 1 ? 1_000_000 : 10_000) if $ran == 0 || $i == 1;
}
$session->quit;
kill 'KILL', $server;
waitpid $server, 0;

is($max_buffered, $max_lines,
	"the buffer fills up to $max_lines lines and no further (latest_offset - start_offset)");
ok($max_memory > 0 && $max_memory < $max_bytes,
	"and its memory context stays under 64 MB ($max_memory bytes) although the lines are empty");
is($done, $n, "all $n lines are consumed, in $batches batches");
is(sql(q{SELECT sum(input_rows) || '+' || sum(dead_letters) FROM streaming.progress WHERE query = 'blank_count'}),
	($n - 30) . '+30', 'every line is counted once: rows plus dead letters');
is(sql(q{SELECT n FROM blank_count}), $n - 30, 'the count of rows is exact');
is(sql(q{SELECT count(*), count(*) FILTER (WHERE position = 'line ' || convert_from(substring(payload from 2), 'UTF8'))
           FROM streaming.dead_letters WHERE query = 'blank_count'}),
	'30|30', 'each marker line arrives at its own position: no line lost or reordered');

# --- a worker fed 10 MB of bare newlines, one line per batch: its buffer
# stops at the cap, and so does its memory
my $flood = "\n" x (10 * 1024 * 1024);
($server, $port) = line_server(\$flood);
sql(qq{
	SELECT streaming.create_source('flood', 'socket',
		options => '{"host": "127.0.0.1", "port": $port, "max_lines_per_trigger": 1}');
	SELECT streaming.create_query('flood_count', 'SELECT count(*) AS n FROM flood', output_mode => 'complete');
	SELECT streaming.start('flood_count');
});
wait_for(q{SELECT coalesce(max((sources->0->'latest_offset'->>'lines')::bigint - (sources->0->'start_offset'->>'lines')::bigint), 0)
             FROM streaming.progress WHERE query = 'flood_count'}, $max_lines,
	"the worker's buffer fills up to $max_lines lines");
my $pid = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'flood_count'});
my $log_offset = -s $node->logfile;
sql(qq{SELECT pg_log_backend_memory_contexts($pid)});
my $logged = '';
for (1 .. 100)
{
	$logged = slurp_file($node->logfile, $log_offset);
	last if $logged =~ /streaming socket buffer: \d+ total/;
	usleep(100_000);
}
my ($worker_buffer) = $logged =~ /streaming socket buffer: (\d+) total/;
ok(defined $worker_buffer && $worker_buffer < $max_bytes,
	'the worker\'s buffer stays under 64 MB (' . ($worker_buffer // 'not logged') . ' bytes)');
my $rss_kb = 0;
if (open my $status, '<', "/proc/$pid/status")
{
	while (<$status>) { $rss_kb = $1 if /^VmRSS:\s+(\d+)/; }
	close $status;
}
cmp_ok($rss_kb, '<', 200 * 1024, "the worker's resident memory stays bounded ($rss_kb kB)");
is(sql(q{SELECT max((sources->0->'latest_offset'->>'lines')::bigint - (sources->0->'start_offset'->>'lines')::bigint)
           FROM streaming.progress WHERE query = 'flood_count'}), $max_lines,
	'no batch saw more than the cap buffered');
sql(q{SELECT streaming.stop('flood_count')});
kill 'KILL', $server;
waitpid $server, 0;

# --- csv files of random fields, quotes and line endings (\n, \r\n, \r):
# every record is a row or a dead letter.  A record ends at a line ending
# outside quotes (quote = escape = '"': a quote toggles); the count here is
# made independently of the decoder, by that rule.
sub csv_records
{
	my ($bytes) = @_;
	my ($records, $in_quote, $pending) = (0, 0, 0);
	for (my $i = 0; $i < length $bytes; $i++)
	{
		my $c = substr($bytes, $i, 1);
		$pending = 1;
		if ($c eq '"') { $in_quote = !$in_quote; next; }
		next if $in_quote || ($c ne "\r" && $c ne "\n");
		$i++ if $c eq "\r" && substr($bytes, $i + 1, 1) eq "\n";
		$records++;
		$pending = 0;
	}
	return $records + $pending;
}
srand(41);
my $dir = $node->basedir . '/mixed';
mkdir $dir;
my $expected = 0;
for my $f (1 .. 20)
{
	my @tokens = ('a', 'bc', '1', ',', ',', '"', '""', "\n", "\r\n", "\r", "\n", "\n");
	my $bytes = join '', map { $tokens[int(rand(@tokens))] } 1 .. 300;
	$expected += csv_records($bytes);
	open my $fh, '>:raw', sprintf('%s/.m%02d.csv', $dir, $f) or die;
	print $fh $bytes;
	close $fh;
	rename sprintf('%s/.m%02d.csv', $dir, $f), sprintf('%s/m%02d.csv', $dir, $f) or die;
}
sql(qq{
	SELECT streaming.create_source('mixed', 'file', 'a text, b text', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('mixed_rows', 'SELECT a, b FROM mixed');
	SELECT streaming.run('mixed_rows');
});
is(sql(q{SELECT (SELECT count(*) FROM mixed_rows) + (SELECT count(*) FROM streaming.dead_letters WHERE query = 'mixed_rows')}),
	$expected, "random line endings and quotes: rows + dead letters = the $expected records");
is(sql(q{SELECT count(*) FROM streaming.offsets WHERE query = 'mixed_rows'}), '20', 'and every file is recorded once');

$node->stop;
done_testing();
