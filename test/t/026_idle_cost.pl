# What an idle query costs: its worker sleeps until its source may have
# input.  A Kafka query with no new messages and a rate query of one row a
# second each use less than 1 % of a CPU over 10 s (utime + stime of the
# worker, threads included, from /proc/<pid>/stat); the Kafka worker runs no
# batch while idle and still reads a new message at once (it wakes on the
# consumer queue, not on a timer); the rate source with the default trigger
# runs batches on its own 100 ms clock, not as fast as the loop turns.
use strict;
use warnings;

use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time sleep);

use StreamingTest;

my $kafka = StreamingTest::Broker->start('quiet:4');
my $bootstrap = $kafka->bootstrap;

my $node = PostgreSQL::Test::Cluster->new('idle');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
# a short poll, which sources that can say when to look again do not use
streaming.idle_poll = 50
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

my $ticks = POSIX::sysconf(POSIX::_SC_CLK_TCK());

# cpu_seconds(PID): user + system time of the process and its threads
sub cpu_seconds
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or die "/proc/$pid/stat: $!";
	my $stat = <$fh>;
	close $fh;
	# the fields after the command name, which is in parentheses
	$stat =~ s/^.*\)\s+//;
	my @f = split ' ', $stat;
	return ($f[11] + $f[12]) / $ticks;    # fields 14 and 15 of proc(5)
}

sub worker_pid
{
	my ($query) = @_;
	return sql(qq{SELECT worker_pid FROM streaming.queries WHERE name = '$query'});
}

# cpu_share(PID, SECONDS): the share of one CPU the process used meanwhile
sub cpu_share
{
	my ($pid, $seconds) = @_;
	my $c0 = cpu_seconds($pid);
	my $t0 = time;
	sleep($seconds);
	return (cpu_seconds($pid) - $c0) / (time - $t0);
}

sql(q{CREATE EXTENSION streaming});

# --- Kafka: no new messages
$kafka->cmd("produce quiet -1 m$_") for 1 .. 3;
sql(qq{
	SELECT streaming.create_source('quiet', 'kafka', NULL,
		'{"bootstrap_servers": "$bootstrap", "topic": "quiet", "format": "text", "starting_offsets": "earliest"}');
	SELECT streaming.create_query('quiet_n', 'SELECT count(*) AS n FROM quiet', output_mode => 'complete');
});
wait_for(q{SELECT n FROM quiet_n}, '3', 'the Kafka query reads the topic');
my $pid = worker_pid('quiet_n');
sleep(2);
my $batches = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'quiet_n'});
my $share = cpu_share($pid, 10);
ok($share < 0.01, sprintf('an idle Kafka query\'s worker uses %.2f %% of a CPU (< 1 %%)', 100 * $share));
is(sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'quiet_n'}), $batches,
	'and runs no batch while no message comes');
is(worker_pid('quiet_n'), $pid, 'the same worker all along');

# a message wakes it: read within a fraction of the idle wake-up period (5 s)
my @took;
for my $i (1 .. 3)
{
	sleep(0.5 + rand());
	my $t0 = time;
	$kafka->cmd("produce quiet -1 late$i");
	my $n = '';
	for (1 .. 500)
	{
		$n = sql(q{SELECT n FROM quiet_n});
		last if $n eq 3 + $i;
		usleep(10_000);
	}
	is($n, 3 + $i, "message $i after the idle period is counted");
	push @took, time - $t0;
}
@took = sort { $a <=> $b } @took;
ok($took[1] < 1.5, sprintf('a message to an idle query is read at once (median %.2f s of %s)',
	$took[1], join(', ', map { sprintf '%.2f', $_ } @took)));

# --- rate: one row a second
sql(q{
	SELECT streaming.create_source('slow_ticks', 'rate', options => '{"rows_per_second": 1}');
	SELECT streaming.create_query('slow_n', 'SELECT count(*) AS n, max(value) AS hi FROM slow_ticks',
		output_mode => 'complete');
});
wait_for(q{SELECT n > 0 FROM slow_n}, 't', 'the rate query has rows');
$pid = worker_pid('slow_n');
sleep(1);
my $b0 = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'slow_n'});
$share = cpu_share($pid, 10);
my $b1 = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'slow_n'});
ok($share < 0.01, sprintf('a rate query of one row a second uses %.2f %% of a CPU (< 1 %%)', 100 * $share));
ok($b1 - $b0 >= 8 && $b1 - $b0 <= 11, 'one batch a second: ' . ($b1 - $b0) . ' batches in 10 s');
is(sql(q{SELECT n = hi + 1 FROM slow_n}), 't', 'each value counted once');

# --- rate: the README's example, 1000 rows a second, trigger '0'
sql(q{
	SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_second": 1000}');
	SELECT streaming.create_query('tick_n', 'SELECT count(*) AS n, max(value) AS hi FROM ticks',
		output_mode => 'complete');
});
wait_for(q{SELECT n > 0 FROM tick_n}, 't', 'the 1000-rows-a-second query has rows');
# counted by the batches' own timestamps over 5 s of the server's clock
my $from = sql(q{SELECT now()});
sleep(6);
my $in5 = sql(qq{SELECT count(*) FROM streaming.progress WHERE query = 'tick_n'
	AND timestamp >= '$from' AND timestamp < timestamptz '$from' + interval '5 seconds'});
ok($in5 <= 51, "at most one batch per 100 ms tick: $in5 batches in 5 s");
ok($in5 >= 25, 'and the batches keep coming');
is(sql(q{SELECT count(*) FROM streaming.progress WHERE query = 'tick_n' AND batch_id > 0 AND input_rows NOT BETWEEN 1 AND 1000}),
	'0', 'each batch after the first holds the rows of its ticks');
is(sql(q{SELECT n = hi + 1 FROM tick_n}), 't', 'each value counted once');

sql(q{SELECT streaming.stop('quiet_n'); SELECT streaming.stop('slow_n'); SELECT streaming.stop('tick_n')});
$node->stop;
$kafka->quit;
done_testing();
