# The pool: more started queries than max_worker_processes all run, on the
# pool workers of their database; a flooded query does not starve the
# others (the latency of a trickle of input stays bounded), nor does a
# batch that runs for long (the other worker takes the rest); a pool worker
# that is terminated hands its queries on at once, without counting a
# restart; after a crash (SIGKILL) the queries resume within about a second
# of the server accepting connections, each counted as a restart once; a
# pool too large for max_worker_processes is reported at start.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('pool');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
streaming.workers_per_database = 1
max_worker_processes = 8
restart_after_crash = on
});
$node->start;

my $base = $node->basedir;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

# --- twelve queries, more than max_worker_processes, on one pool worker
sql(q{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_second": 20}');
});
for my $i (1 .. 12)
{
	sql(qq{SELECT streaming.create_query('q$i', 'SELECT count(*) AS n, max(value) AS hi FROM ticks',
		output_mode => 'complete')});
}
wait_for(q{SELECT count(*) FROM streaming.queries WHERE last_batch_id >= 2}, '12',
	'12 started queries all run, with max_worker_processes = 8');
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}), '1',
	'on the one pool worker of the database (streaming.workers_per_database = 1)');
is(sql(q{SELECT count(DISTINCT worker_pid) FROM streaming.queries}), '1', 'which holds them all');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE status <> 'running' OR condition IS NOT NULL}), '0',
	'none waits or fails');

# --- fairness: a flooded query beside queries with a trickle of input
sql(q{
	SELECT streaming.create_source('flood', 'rate', options => '{"rows_per_second": 200000}');
	SELECT streaming.create_query('flooded', 'SELECT count(*) AS n, sum(value) AS s FROM flood', output_mode => 'complete');
});
for my $i (1 .. 3)
{
	mkdir "$base/in$i";
	sql(qq{
		SELECT streaming.create_source('trickle$i', 'file', 'k text, v int', '{"path": "$base/in$i", "format": "csv"}');
		SELECT streaming.create_query('t$i', 'SELECT k, sum(v) AS total FROM trickle$i GROUP BY k', output_mode => 'update');
	});
}
wait_for(q{SELECT n > 100000 FROM flooded}, 't', 'the flooded query runs');
my @took;
for my $round (1 .. 3)
{
	for my $i (1 .. 3)
	{
		my $t0 = time;
		put_file("$base/in$i", "r$round,$i");
		my $got = '';
		for (1 .. 1000)
		{
			$got = sql(qq{SELECT total FROM t$i WHERE k = 'r$round'});
			last if $got eq $i;
			usleep(10_000);
		}
		is($got, $i, "trickle $i, round $round: its row arrives");
		push @took, time - $t0;
	}
}
my $batches_before = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'flooded'});
@took = sort { $a <=> $b } @took;
ok($took[-1] < 3, sprintf('with a flooded query on the same worker, a trickle is read within %.2f s at worst (median %.2f s)',
	$took[-1], $took[int(@took / 2)]));
usleep(500_000);
ok(sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'flooded'}) > $batches_before,
	'while the flooded query goes on');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE last_batch_id < 2}), '0', 'and so does every other query');

# --- a pool worker terminated: its queries go on, no restart counted
my $pid = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'q1'});
my %last = map { split /\|/ } split /\n/, sql(q{SELECT name || '|' || last_batch_id FROM streaming.queries WHERE name NOT LIKE 't%'});
sql(qq{SELECT pg_terminate_backend($pid)});
wait_for(q{SELECT count(*) FROM streaming.queries WHERE worker_pid IS NOT NULL AND worker_pid <> } . $pid,
	'16', 'a terminated pool worker\'s queries are taken again');
wait_for(sub {
		my %now = map { split /\|/ } split /\n/, sql(q{SELECT name || '|' || last_batch_id FROM streaming.queries WHERE name NOT LIKE 't%'});
		return join(',', grep { $now{$_} <= $last{$_} } sort keys %last) || 'all';
	}, 'all', 'and every query with input runs batches again');
is(sql(q{SELECT max(restarts) FROM streaming.queries}), '0', 'without counting a restart');

# --- a batch that runs long: the other worker takes the rest of its queries
sql(q{ALTER SYSTEM SET streaming.workers_per_database = 2; SELECT pg_reload_conf()});
sql(q{
	CREATE FUNCTION nap(v bigint) RETURNS bigint LANGUAGE sql AS
		$$SELECT CASE WHEN v = 0 THEN (SELECT 0 FROM pg_sleep(40)) ELSE v END$$;
	SELECT streaming.create_source('once_slow', 'rate', options => '{"rows_per_second": 1}');
	SELECT streaming.create_query('sleeper', 'SELECT nap(value) AS v FROM once_slow');
});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}, '2', 'a second pool worker');
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE query = 'streaming micro-batch: sleeper' AND state = 'active'},
	'1', 'a batch that takes 40 s is in progress');
my $slow_pid = sql(q{SELECT pid FROM pg_stat_activity WHERE query = 'streaming micro-batch: sleeper' AND state = 'active'});
%last = map { split /\|/ } split /\n/, sql(q{SELECT name || '|' || last_batch_id FROM streaming.queries WHERE name NOT LIKE 't%' AND name <> 'sleeper'});
my $t_slow = time;
wait_for(sub {
		my %now = map { split /\|/ } split /\n/, sql(q{SELECT name || '|' || last_batch_id FROM streaming.queries WHERE name NOT LIKE 't%' AND name <> 'sleeper'});
		return join(',', grep { $now{$_} <= $last{$_} } sort keys %last) || 'all';
	}, 'all', 'meanwhile every other query with input runs batches');
ok(time - $t_slow < 30, sprintf('within %.1f s, while the long batch goes on', time - $t_slow));
is(sql(qq{SELECT count(*) FROM streaming.queries WHERE worker_pid = $slow_pid}), '1',
	'its worker keeps only the query whose batch it runs');
sql(q{SELECT streaming.drop_query('sleeper')});

# --- a crash: every backend is reset; the queries resume by themselves
$pid = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'q1'});
%last = map { split /\|/ } split /\n/, sql(q{SELECT name || '|' || last_batch_id FROM streaming.queries WHERE name NOT LIKE 't%'});
my $log = -s $node->logfile;
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true') or die;
my $up = time;
wait_for(q{SELECT count(*) FROM streaming.queries WHERE worker_pid IS NOT NULL}, '16',
	'after a crash, the queries are taken again');
my $resumed = time - $up;
ok($resumed < 2, sprintf('within %.2f s of the server accepting connections', $resumed));
wait_for(sub {
		my %now = map { split /\|/ } split /\n/, sql(q{SELECT name || '|' || last_batch_id FROM streaming.queries WHERE name NOT LIKE 't%'});
		return join(',', grep { $now{$_} <= $last{$_} } sort keys %last) || 'all';
	}, 'all', 'and every query with input runs batches again');
like(slurp_file($node->logfile, $log), qr/was terminated by signal 9/, 'it was a crash');
wait_for(q{SELECT max(restarts) FROM streaming.queries}, '0',
	'the restart each query counted is reset once it gets going');

# --- a worker that holds nothing while the database has fewer started
# queries than workers leaves (two starters may each have started one)
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}), '2', 'two pool workers');
sql(q{SELECT streaming.stop(name) FROM streaming.queries WHERE name <> 'q1'});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}, '1',
	'with one query started, the worker that holds nothing leaves');
is(sql(q{SELECT a.backend_type FROM streaming.queries q JOIN pg_stat_activity a ON a.pid = q.worker_pid
          WHERE q.name = 'q1'}), 'streaming query', 'the other keeps the query');

sql(q{SELECT streaming.stop(name) FROM streaming.queries});

# --- a pool too large for max_worker_processes is reported at start
$node->append_conf('postgresql.conf', qq{
max_worker_processes = 4
streaming.max_workers = 4
});
$log = -s $node->logfile;
$node->restart;
wait_for(sub { slurp_file($node->logfile, $log) =~ /WARNING:  streaming.max_workers \(4\) is too high for max_worker_processes \(4\)/ ? 'warned' : 'not yet' },
	'warned', 'streaming.max_workers above max_worker_processes less two is a WARNING at start');

$node->stop;
done_testing();
