# A worker running two table-source queries parks the reader of the one
# it left (its decoding context kept, its slot released).  A session's
# run() of that query between the worker's batches (the README allows it)
# moves the slot on, though it finds nothing; checkpoints then remove the
# WAL segment where the parked reader stood.  The worker must see the
# slot moved and decode from the slot again, not go on from the parked
# reader (which failed the query: "requested WAL segment ... has already
# been removed").  The check compares the slot's restart point, confirmed
# position and catalog xmin with those the reader left, so it covers as
# well the catalog rows that VACUUM removes once catalog_xmin moved on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use StreamingTest;

my $node = StreamingTest::logical_node('parkmoved', qq{
streaming.launcher_naptime = 1
streaming.workers_per_database = 1
autovacuum = off
wal_keep_size = 0
min_wal_size = 32MB
max_wal_size = 64MB
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{CREATE EXTENSION streaming});
sql(q{
	CREATE TABLE t1 (id int);
	CREATE TABLE t2 (id int);
	SELECT streaming.create_source('s1', 'table', options => '{"table": "public.t1"}');
	SELECT streaming.create_source('s2', 'table', options => '{"table": "public.t2"}');
	SELECT streaming.create_query('q1', 'SELECT id FROM s1', trigger => '25 seconds');
	SELECT streaming.create_query('q2', 'SELECT id FROM s2');
});
wait_for(q{SELECT count(*) || ' ' || count(DISTINCT worker_pid) FROM streaming.queries WHERE status = 'running'},
	'2 1', 'two queries on one worker');
# both slots exist
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming%'}, '2', 'slots made');
sleep 1;
sql(q{INSERT INTO t1 VALUES (1)});
wait_for(q{SELECT count(*) FROM q1}, '1', 'q1 took its first row');
my $t0 = time;
# q2 runs after it: q1's reader is parked (its batch's WAL is not harmless to q2)
sql(q{INSERT INTO t2 VALUES (1)});
wait_for(q{SELECT count(*) FROM q2}, '1', 'q2 ran after q1: q1 parked');

my $seg = sql(q{SELECT pg_walfile_name(pg_current_wal_lsn())});
note "q1 parked in WAL segment $seg";
# the WAL moves on by several segments; q2 follows it
for my $i (1 .. 4)
{
	sql(qq{INSERT INTO t2 VALUES (10 + $i); SELECT pg_switch_wal(); CHECKPOINT});
	wait_for(qq{SELECT count(*) FROM q2}, 1 + $i, 'q2 read on');
}
# a session's run() of q1 between the worker's batches: nothing new, the slot moves on
for (1 .. 3)
{
	sql(q{CHECKPOINT});
	my $ran = $node->psql('postgres', q{SELECT streaming.run('q1')}, stdout => \my $o, stderr => \my $e);
	note "run(q1): rc=$ran out=$o err=$e";
}
sql(q{INSERT INTO t2 VALUES (100)});
wait_for(q{SELECT count(*) FROM q2}, 6, 'q2 read on');
sql(q{INSERT INTO t2 VALUES (101)});
wait_for(q{SELECT count(*) FROM q2}, 7, 'q2 read on');
sql(q{SELECT pg_switch_wal(); CHECKPOINT; CHECKPOINT});
note sql(q{SELECT slot_name, restart_lsn, pg_walfile_name(restart_lsn), confirmed_flush_lsn, active_pid FROM pg_replication_slots});
is(sql(qq{SELECT count(*) FROM pg_ls_waldir() WHERE name = '$seg'}), '0', "segment $seg is gone");
my $elapsed = time - $t0;
note "window used: $elapsed s";
ok($elapsed < 24, 'all that within q1\'s trigger interval');

# q1's next batch (at its trigger) goes on from the parked reader
sql(q{INSERT INTO t1 VALUES (2)});
# (stops waiting once q1 failed)
my $got;
for (1 .. 400)
{
	$got = sql(q{SELECT (SELECT count(*) FROM q1) || ' ' || status || ' ' || coalesce(last_error, '') FROM streaming.queries WHERE name = 'q1'});
	last if $got eq '2 running ' || $got =~ /failed/;
	usleep(100_000);
}
is($got, '2 running ', 'q1 reads its next row and does not fail');
note sql(q{SELECT name, status, last_error, condition FROM streaming.queries});
is(sql(q{SELECT count(*) FROM ((SELECT id FROM q1 EXCEPT ALL SELECT id FROM t1) UNION ALL (SELECT id FROM t1 EXCEPT ALL SELECT id FROM q1)) d}),
	'0', 'q1 each row once');

$node->stop;
my $log = slurp_file($node->logfile);
my @errs = $log =~ /^.*(?:ERROR|PANIC|TRAP|server process).*$/mg;
note "log: $_" for @errs;
done_testing();
