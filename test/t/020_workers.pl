# Background workers: a created query runs by itself; stop() ends it and
# nothing more is processed; start() resumes from the committed offsets;
# a worker killed with SIGKILL mid-batch comes back and counts every row
# exactly once; an immediate server restart resumes queries by themselves;
# a failing query stops alone; 'available_now' finishes; without the
# library preloaded, start() still runs a query and says so.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('workers');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
restart_after_crash = on
});
$node->start;

my $base = $node->basedir;
sub put { my ($dir, @lines) = @_; return put_file("$base/$dir", @lines); }
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

mkdir "$base/$_" for qw(a b c d);
sql(qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('src_a', 'file', 'k text, v int', '{"path": "$base/a", "format": "csv"}');
	SELECT streaming.create_query('totals', 'SELECT k, sum(v) AS total FROM src_a GROUP BY k', output_mode => 'update');
});

# runs by itself, recognisably
put('a', 'x,1', 'y,2', 'x,3');
wait_for('SELECT string_agg(k || \'=\' || total, \',\' ORDER BY k) FROM totals', 'x=4,y=2',
	'a created query processes input by itself');
is(sql(q{SELECT backend_type, application_name FROM pg_stat_activity WHERE backend_type = 'streaming query'}),
	'streaming query|streaming worker', 'a pool worker shows up in pg_stat_activity');
is(sql(q{SELECT state, worker_pid IS NOT NULL FROM streaming.status WHERE name = 'totals'}), 'running|t',
	'streaming.status shows it running');

# stop: no worker holds the query when stop() returns, and nothing more is read
sql(q{SELECT streaming.stop('totals')});
is(sql(q{SELECT worker_pid IS NULL FROM streaming.queries WHERE name = 'totals'}), 't',
	'stop() returns once no worker holds the query');
my $batches = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'totals'});
put('a', 'x,10', 'z,5');
sleep 2;
is(sql(q{SELECT last_batch_id, status, enabled FROM streaming.queries WHERE name = 'totals'}),
	"$batches|stopped|f", 'a stopped query runs no batch');

# start: resumes exactly after the committed offsets
sql(q{SELECT streaming.start('totals')});
wait_for('SELECT string_agg(k || \'=\' || total, \',\' ORDER BY k) FROM totals', 'x=14,y=2,z=5',
	'start() resumes from the committed offsets');

# kill -9 of a worker mid-batch: it comes back, every row counted once
sql(qq{
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.004) IS NOT NULL\$\$;
	SELECT streaming.create_source('src_b', 'file', 'k text, v int',
		'{"path": "$base/b", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('slow_totals',
		'SELECT k, count(*) AS n, sum(v) AS total FROM src_b WHERE slow(v) GROUP BY k', output_mode => 'complete');
});
my $expected_rows = 0;
for my $f (1 .. 4)
{
	put('b', map { 'k' . ($_ % 3) . ",$_" } 1 .. 150);
	$expected_rows += 150;
}
for my $kill (1 .. 2)
{
	my $pid = '';
	for (1 .. 200)
	{
		$pid = sql(q{SELECT pid FROM pg_stat_activity WHERE query = 'streaming micro-batch: slow_totals' AND state = 'active'});
		last if $pid ne '';
		usleep(20_000);
	}
	ok($pid ne '', "worker busy in a batch before kill $kill");
	usleep(250_000);
	kill 'KILL', $pid if $pid ne '';
	$node->poll_query_until('postgres', 'SELECT true') or die;
}
wait_for(q{SELECT sum(n) FROM slow_totals}, $expected_rows, 'after two SIGKILLs every row is counted once');
is(sql(q{SELECT string_agg(k || '=' || n || '/' || total, ',' ORDER BY k) FROM slow_totals}),
	'k0=200/15300,k1=200/14900,k2=200/15100', 'exact result after the crashes');
is(sql(q{SELECT count(*), min(batch_id), max(batch_id) FROM streaming.progress WHERE query = 'slow_totals'}),
	'4|0|3', 'four batches, one per file, none doubled');

# an immediate stop of the server: enabled queries resume by themselves
$node->stop('immediate');
$node->start;
put('a', 'y,100');
wait_for('SELECT string_agg(k || \'=\' || total, \',\' ORDER BY k) FROM totals', 'x=14,y=102,z=5',
	'after an immediate restart the query resumes by itself');

# a failing query stops alone
sql(qq{
	SELECT streaming.create_source('src_c', 'file', 'k text, v int', '{"path": "$base/c", "format": "csv"}');
	SELECT streaming.create_query('doomed', 'SELECT k, count(*) AS n FROM src_c GROUP BY k', output_mode => 'update');
	DROP TABLE doomed;
});
put('c', 'p,1');
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'doomed'}, 'failed', 'the query whose result table is gone fails');
like(sql(q{SELECT last_error FROM streaming.status WHERE name = 'doomed'}), qr/cannot run: its result table was dropped/, 'last_error says why');
put('a', 'w,7');
wait_for('SELECT total FROM totals WHERE k = \'w\'', '7', 'the other queries keep running');

# available_now: everything present at start, in as many batches as needed, then finished
put('d', 'a,1');
put('d', 'b,2');
put('d', 'c,3');
sql(qq{
	SELECT streaming.create_source('src_d', 'file', 'k text, v int', '{"path": "$base/d", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('once_more', 'SELECT count(*) AS n FROM src_d', output_mode => 'complete',
		trigger => 'available_now');
});
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'once_more'}, 'finished', "'available_now' finishes");
is(sql(q{SELECT n FROM once_more}) . '|' . sql(q{SELECT count(*) FROM streaming.progress WHERE query = 'once_more'}),
	'3|3', 'in three batches of one file');

$node->stop;

# without shared_preload_libraries, start() still runs a query, and says so
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
mkdir "$base/e";
open my $fh, '>', "$base/e/1.csv" or die;
print $fh "a,5\n";
close $fh;
my ($out, $err) = ('', '');
$plain->psql('postgres', qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('src_e', 'file', 'k text, v int', '{"path": "$base/e", "format": "csv"}');
	SELECT streaming.create_query('e', 'SELECT k, sum(v) AS total FROM src_e GROUP BY k', output_mode => 'update');
}, stdout => \$out, stderr => \$err);
like($err, qr/NOTICE:  continuous query "e" runs until the server restarts/, 'start() without preloading says so');
my $got = '';
for (1 .. 100)
{
	$got = $plain->safe_psql('postgres', 'SELECT total FROM e');
	last if $got eq '5';
	usleep(100_000);
}
is($got, '5', 'and the query runs');
$plain->safe_psql('postgres', q{SELECT streaming.stop('e')});
$plain->stop;

done_testing();
