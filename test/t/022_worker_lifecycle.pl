# The life of a query in the pool, beyond 020: its batches run as the
# query's owner, a role without superuser who may run, stop and drop only
# their own queries; stop() in the middle of a batch waits for it and
# start() reads the rest, nothing lost or doubled; 'once' runs one batch over all the
# input there is; an idle query waits on its latch instead of spinning;
# SIGHUP reloads the settings of a running worker; a query whose batch
# fails resumes, once fixed, with nothing lost; DROP DATABASE ends the
# workers of the database it drops.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('lifecycle');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 200
});
$node->start;

my $base = $node->basedir;
sub put { my ($dir, @lines) = @_; return put_file("$base/$dir", @lines); }
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub as
{
	my ($role, $query) = @_;
	return $node->safe_psql('postgres', $query, extra_params => ['-U', $role]);
}
# runs a statement as a role that is expected to fail; returns stderr
sub fails_as
{
	my ($role, $query) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $query, extra_params => ['-U', $role],
		stdout => \$out, stderr => \$err);
	return $rc == 0 ? "succeeded: $out" : $err;
}
sub wait_for { return StreamingTest::wait_for($node, @_); }

# a role without superuser, allowed what a user of the extension needs
sql(q{
	CREATE EXTENSION streaming;
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	CREATE SCHEMA alice AUTHORIZATION alice;
	GRANT USAGE ON FOREIGN SERVER streaming TO alice, bob;
	GRANT pg_read_server_files TO alice;
});

# --- the worker runs as the query's owner
mkdir "$base/a";
for my $f (1 .. 4)
{
	put('a', map { 'k' . ($_ % 3) . ",$_" } 1 .. 150);
}
as('alice', qq{
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.004) IS NOT NULL\$\$;
	CREATE FUNCTION slower(int) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.01) IS NOT NULL\$\$;
	SELECT streaming.create_source('src_a', 'file', 'k text, v int',
		'{"path": "$base/a", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('totals',
		'SELECT k, count(*) AS n, sum(v) AS total FROM src_a WHERE slower(v) GROUP BY k', output_mode => 'update');
	SELECT streaming.create_query('whoami',
		'SELECT k, current_user AS u, session_user AS s FROM src_a', trigger => 'once');
});
wait_for(q{SELECT last_batch_id >= 0 FROM streaming.queries WHERE name = 'totals'}, 't',
	'a query of a role without superuser runs');
is(sql(q{SELECT owner, c.relowner::regrole FROM streaming.queries q JOIN pg_class c ON c.oid = q.state_table
	WHERE name = 'totals'}), 'alice|alice', 'the owner owns the state table in the streaming schema');

# --- stop() in the middle of a batch: it cancels the batch, start() reads the rest
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE query = 'streaming micro-batch: totals'
	AND state = 'active' AND wait_event = 'PgSleep'}, '1', 'a batch of the query is in progress');
as('alice', q{SELECT streaming.stop('totals')});
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE query = 'streaming micro-batch: totals' AND state = 'active'})
	. '|' . sql(q{SELECT worker_pid IS NULL FROM streaming.queries WHERE name = 'totals'}), '0|t',
	'stop() in a batch returns once the batch has ended and no worker holds the query');
my $stopped_at = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'totals'});
usleep(1_500_000);
is(sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'totals'}), $stopped_at,
	'and no batch runs after it');
my $done = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'totals'}) + 1;
ok($done >= 1 && $done < 4, "stopped after $done of 4 batches");
is(sql(q{SELECT sum(n) || '/' || (SELECT count(*) FROM streaming.offsets WHERE query = 'totals')
	|| '/' || (SELECT count(*) FROM streaming.progress WHERE query = 'totals') FROM alice.totals}),
	150 * $done . "/$done/$done", 'results, offsets and progress hold exactly the committed batches');
as('alice', q{SELECT streaming.start('totals')});
wait_for(q{SELECT sum(n) FROM alice.totals}, '600', 'start() reads the rest');
is(sql(q{SELECT string_agg(k || '=' || n || '/' || total, ',' ORDER BY k) FROM alice.totals}),
	'k0=200/15300,k1=200/14900,k2=200/15100', 'every row counted once');
is(sql(q{SELECT count(*), min(batch_id), max(batch_id) FROM streaming.progress WHERE query = 'totals'}),
	'4|0|3', 'four batches, one per file, none doubled');

wait_for(q{SELECT status FROM streaming.queries WHERE name = 'whoami'}, 'finished', 'another query of hers runs');
is(sql(q{SELECT string_agg(DISTINCT u || '|' || s, ',') FROM alice.whoami}), 'alice|alice',
	'their batches run as the query\'s owner, current_user and session_user alike');

# --- only the owner (or a member of the owner's role) manages a query
like(fails_as('bob', q{SELECT streaming.stop('totals')}), qr/must be owner of continuous query "totals"/,
	'another role cannot stop the query');
like(fails_as('bob', q{SELECT streaming.run('totals')}), qr/must be owner of continuous query "totals"/,
	'nor run it');
like(fails_as('bob', q{SELECT streaming.drop_query('totals')}), qr/must be owner of continuous query "totals"/,
	'nor drop it');
like(fails_as('bob', q{UPDATE streaming.queries SET enabled = false}), qr/permission denied for table queries/,
	'nor write the catalog directly');
like(fails_as('alice', q{DELETE FROM streaming.offsets}), qr/permission denied for table offsets/,
	'not even the owner writes the catalog but through the functions');
is(sql(q{SELECT status FROM streaming.queries WHERE name = 'totals'}), 'running', 'the query still runs');
sql(q{GRANT alice TO bob});
as('bob', q{SELECT streaming.stop('totals')});
is(sql(q{SELECT status FROM streaming.queries WHERE name = 'totals'}), 'stopped',
	'a member of the owner\'s role may stop it');

# --- 'once': one batch over all the input there is, limits notwithstanding
put('b', 'x,1', 'y,2');
put('b', 'x,3');
put('b', 'z,4');
as('alice', qq{
	SELECT streaming.create_source('src_b', 'file', 'k text, v int',
		'{"path": "$base/b", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('once_only', 'SELECT k, sum(v) AS total FROM src_b GROUP BY k',
		output_mode => 'complete', trigger => 'once');
});
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'once_only'}, 'finished', "'once' finishes");
is(sql(q{SELECT string_agg(k || '=' || total, ',' ORDER BY k) FROM alice.once_only}), 'x=4,y=2,z=4',
	'its one batch read every file present');
is(sql(q{SELECT count(*) || '/' || max(input_rows) FROM streaming.progress WHERE query = 'once_only'}), '1/4',
	'in one batch of four rows');
put('b', 'x,100');
sleep 1;
is(sql(q{SELECT total FROM alice.once_only WHERE k = 'x'}), '4', 'and nothing after it');

# --- 'available_now': the input present when the run began, in as many
# batches as the limits require; what comes later waits for the next run
for my $f (1 .. 3)
{
	put('d', map { "d$f,$_" } 1 .. 100);
}
as('alice', qq{
	SELECT streaming.create_source('src_d', 'file', 'k text, v int',
		'{"path": "$base/d", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('now_only', 'SELECT k, count(*) AS n FROM src_d WHERE slow(v) GROUP BY k',
		output_mode => 'complete', trigger => 'available_now');
});
wait_for(q{SELECT last_batch_id >= 0 FROM streaming.queries WHERE name = 'now_only'}, 't',
	"'available_now' runs");
put('d', map { "late,$_" } 1 .. 100);
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'now_only'}, 'finished', "'available_now' finishes");
is(sql(q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM alice.now_only}), 'd1=100,d2=100,d3=100',
	'with the files present when it began, not the one that came during the run');
is(sql(q{SELECT count(*) FROM streaming.progress WHERE query = 'now_only'}), '3', 'in three batches');
as('alice', q{SELECT streaming.start('now_only')});
wait_for(q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM alice.now_only}, 'd1=100,d2=100,d3=100,late=100',
	'the next run reads the rest');
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'now_only'}, 'finished', 'and finishes again');

# --- a failing batch fails its query alone; fix the cause, start() resumes
# with nothing lost: the failed batch rolled back whole
mkdir "$base/e";
as('alice', qq{
	SELECT streaming.create_source('src_e', 'file', 'k text, v int', '{"path": "$base/e", "format": "csv"}');
	SELECT streaming.create_query('capped', 'SELECT k, count(*) AS n FROM src_e GROUP BY k', output_mode => 'update');
});
put('e', 'a,1');
wait_for(q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM alice.capped}, 'a=1', 'a query to break');
as('alice', q{ALTER TABLE alice.capped ADD CONSTRAINT small CHECK (n < 3)});
put('e', 'a,2', 'b,1', 'a,3');
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'capped'}, 'failed', 'a batch the result table refuses fails the query');
like(sql(q{SELECT last_error FROM streaming.status WHERE name = 'capped'}), qr/violates check constraint "small"/,
	'last_error says why');
is(sql(q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM alice.capped}) . '|'
	. sql(q{SELECT count(*) FROM streaming.offsets WHERE query = 'capped'}), 'a=1|1',
	'nothing of the failed batch was kept, its file not marked read');
as('alice', q{ALTER TABLE alice.capped DROP CONSTRAINT small; SELECT streaming.start('capped')});
wait_for(q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM alice.capped}, 'a=3,b=1',
	'once fixed, start() reads the batch again, every row once');
is(sql(q{SELECT status, last_error IS NULL FROM streaming.queries WHERE name = 'capped'}), 'running|t',
	'and the query runs again');

# --- an idle query waits on its latch: no batches, next to no CPU
mkdir "$base/c";
as('alice', qq{
	SELECT streaming.create_source('src_c', 'file', 'k text, v int', '{"path": "$base/c", "format": "csv"}');
	SELECT streaming.create_query('idle', 'SELECT k, count(*) AS n FROM src_c GROUP BY k', output_mode => 'update');
});
my $pid = '';
for (1 .. 100)
{
	$pid = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'idle'});
	last if $pid ne '';
	usleep(100_000);
}
ok($pid ne '', 'a pool worker holds the idle query');
sub cpu_ticks
{
	open my $fh, '<', "/proc/$_[0]/stat" or return -1;
	my @f = split ' ', (split /\) /, <$fh>)[1];
	close $fh;
	return $f[11] + $f[12];	# utime + stime
}
my $ticks = cpu_ticks($pid);
sleep 3;
my $used = cpu_ticks($pid) - $ticks;
ok($used >= 0 && $used < 30, "a worker of idle queries used $used CPU ticks in 3 seconds (a busy loop takes about 300)");
is(sql(q{SELECT last_batch_id || '/' || (SELECT count(*) FROM streaming.progress WHERE query = 'idle')
	FROM streaming.queries WHERE name = 'idle'}), '-1/0', 'and recorded no batch');
put('c', 'p,1');
wait_for(q{SELECT n FROM alice.idle WHERE k = 'p'}, '1', 'input wakes it within a poll');

# --- SIGHUP: a running worker takes new settings
as('alice', q{
	SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_batch": 5}');
	SELECT streaming.create_query('tick_count', 'SELECT count(*) AS n FROM ticks', output_mode => 'complete',
		trigger => '100 ms');
});
wait_for(q{SELECT count(*) >= 8 FROM streaming.progress WHERE query = 'tick_count'}, 't', 'the rate query runs');
my $worker = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'tick_count'});
sql(q{ALTER SYSTEM SET streaming.progress_retention = 3; SELECT pg_reload_conf()});
wait_for(q{SELECT count(*) FROM streaming.progress WHERE query = 'tick_count'}, '3',
	'after a reload the worker keeps only streaming.progress_retention progress rows');
is(sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'tick_count'}), $worker,
	'without a restart');
is(sql(q{SELECT max(batch_id) - min(batch_id) FROM streaming.progress WHERE query = 'tick_count'}), '2',
	'the three latest');

# --- streaming.max_workers: the pool workers of all databases; a database
# that gets none waits, enabled, and starts when the limit allows
my $running = sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'});
sql(qq{ALTER SYSTEM SET streaming.max_workers = $running; SELECT pg_reload_conf()});
usleep(300_000);
sql(q{CREATE DATABASE second_db});
my ($ok_rc, $ok_out, $notice) = $node->psql('second_db', q{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('ticks2', 'rate', options => '{"rows_per_batch": 5}');
	SELECT streaming.create_query('waiter', 'SELECT count(*) AS n FROM ticks2', output_mode => 'complete');
});
like($notice, qr/continuous query "waiter" waits for a worker/, 'create_query over the limit says the query waits');
sub sql2 { return $node->safe_psql('second_db', $_[0]); }
is(sql2(q{SELECT state, condition FROM streaming.status WHERE name = 'waiter'}),
	"starting|waiting for a worker: streaming.max_workers ($running) pool workers run in other databases",
	'and the status shows why');
sleep 2;
is(sql2(q{SELECT state, restarts FROM streaming.status WHERE name = 'waiter'}), 'starting|0',
	'it stays waiting, not counted as a crash');
sql(q{ALTER SYSTEM RESET streaming.max_workers; SELECT pg_reload_conf()});
wait_for(sub { sql2(q{SELECT state || '|' || coalesce(condition, '') FROM streaming.status WHERE name = 'waiter'}) },
	'running|', 'when the limit allows, the launcher starts a worker for it');
wait_for(sub { sql2(q{SELECT n > 0 FROM waiter}) }, 't', 'and it runs');
sql2(q{SELECT streaming.stop('waiter')});

# --- DROP DATABASE ends the workers of the database it drops
sql(q{CREATE DATABASE doomed_db});
$node->safe_psql('doomed_db', q{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('t', 'rate', options => '{"rows_per_batch": 5}');
	SELECT streaming.create_query('tq', 'SELECT count(*) AS n FROM t', output_mode => 'complete', trigger => '100 ms');
});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'doomed_db' AND backend_type = 'streaming query'}, '1',
	'a query runs in a database');

# --- DROP EXTENSION: the worker sees the extension gone and leaves quietly
my $log_offset = -s $node->logfile;
$node->safe_psql('doomed_db', q{DROP EXTENSION streaming CASCADE});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'doomed_db' AND backend_type = 'streaming query'}, '0',
	'DROP EXTENSION ends the worker');
unlike(slurp_file($node->logfile, $log_offset), qr/ERROR|exit code 1/, 'without an error');
$node->safe_psql('doomed_db', q{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('t', 'rate', options => '{"rows_per_batch": 5}');
	SELECT streaming.create_query('tq', 'SELECT count(*) AS n FROM t', output_mode => 'complete', trigger => '100 ms');
});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE datname = 'doomed_db' AND backend_type = 'streaming query'}, '1',
	'a new query runs');

my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE doomed_db');
is($rc . $err, '0', 'DROP DATABASE succeeds while the query runs');
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query' AND datid NOT IN
	(SELECT oid FROM pg_database)}), '0', 'and its worker is gone');

$node->stop;
done_testing();
