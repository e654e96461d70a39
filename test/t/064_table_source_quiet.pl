# A worker's look at a quiet table takes no transaction id and writes no
# WAL.  A batch locks its query's row, which takes a transaction id and
# writes a lock and a commit record: before, a query over a quiet table
# did that at every look (here 10 a second), and two such queries woke
# each other's with those records.  Now the worker reads the headers of
# the WAL flushed since its last batch found nothing, and runs the batch
# only when a record may give a row: a change to a table of the database,
# or the commit of a transaction whose changes decoding holds.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep time);

use StreamingTest;

my $node = StreamingTest::logical_node('quiet', qq{
streaming.launcher_naptime = 1
streaming.idle_poll = 100
# nothing else takes transaction ids
autovacuum = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{
	CREATE EXTENSION streaming;
	CREATE TABLE ev1 (id int);
	CREATE TABLE ev2 (k int);
	SELECT streaming.create_source('s1', 'table', options => '{"table": "public.ev1"}');
	SELECT streaming.create_source('s2', 'table', options => '{"table": "public.ev2"}');
	SELECT streaming.create_query('copied', $$SELECT id FROM s1$$);
	SELECT streaming.create_query('counted', $$SELECT k, count(*) AS n FROM s2 GROUP BY k$$,
		output_mode => 'complete');
	SELECT streaming.start('copied');
	SELECT streaming.start('counted');
});
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%' AND active},
	'2', 'each query has its worker and its slot');
sql(q{INSERT INTO ev1 VALUES (1); INSERT INTO ev2 VALUES (1)});
wait_for(q{SELECT (SELECT count(*) FROM copied) || ',' || (SELECT coalesce(sum(n), 0) FROM counted)},
	'1,1', 'the first rows reach both queries');

# idle: transaction ids assigned and WAL written over 3 s
sub idle_cost
{
	my $before = sql(q{SELECT pg_snapshot_xmax(pg_current_snapshot()) || ' ' || pg_current_wal_insert_lsn()});
	sleep 3;
	my $after = sql(q{SELECT pg_snapshot_xmax(pg_current_snapshot()) || ' ' || pg_current_wal_insert_lsn()});
	my ($x0, $l0) = split / /, $before;
	my ($x1, $l1) = split / /, $after;
	return ($x1 - $x0, sql(qq{SELECT pg_wal_lsn_diff('$l1', '$l0')}));
}

# the looks after the rows settle (each query's next batch finds nothing)
sleep 1;
my ($xids, $wal) = idle_cost();
is($xids, 0, 'two queries over quiet tables take no transaction id in 3 s (were 60)');
# the bgwriter's snapshot of running transactions may come (15 s apart)
cmp_ok($wal, '<', 500, "... and write no WAL of their own ($wal bytes in all)");

# a row still arrives at once
my $t0 = time;
sql(q{INSERT INTO ev1 VALUES (2)});
wait_for(q{SELECT count(*) FROM copied}, '2', 'a row inserted into the quiet table is read');
cmp_ok(time - $t0, '<', 2, '... within 2 s');

# a transaction whose change was decoded before its commit: its commit,
# which changes no table, gives the row
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		'BEGIN; INSERT INTO ev2 VALUES (2); SELECT pg_sleep(2); COMMIT;' ],
	'>', \$out, '2>', \$err);
# the insert is flushed, decoded by a batch that finds no row yet, and
# the looks that follow find only harmless records
sleep 1;
is(sql(q{SELECT coalesce(sum(n), 0) FROM counted}), '1', 'the open transaction\'s row is not read yet');
$h->finish;
$t0 = time;
wait_for(q{SELECT coalesce(sum(n), 0) FROM counted}, '2', 'its row is read once it commits');
cmp_ok(time - $t0, '<', 2, '... within 2 s');

# a transaction that changed the table but aborted gives nothing, and the
# queries are quiet again
sql(q{BEGIN; INSERT INTO ev1 VALUES (99); ROLLBACK});
sleep 1;
($xids, $wal) = idle_cost();
is($xids, 0, 'quiet again after the rows and a rollback');

# work in another database does not wake them; its rows are not read
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE TABLE ev1 (id int); INSERT INTO ev1 SELECT generate_series(1, 100)');
sql(q{INSERT INTO ev1 VALUES (3); INSERT INTO ev2 VALUES (2)});
wait_for(q{SELECT (SELECT string_agg(id::text, ',' ORDER BY id) FROM copied) || ' ' || (SELECT string_agg(k || ':' || n, ',' ORDER BY k) FROM counted)},
	'1,2,3 1:1,2:2', 'each row once, in both queries');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE status <> 'running'}), '0', 'no failure');

$node->stop;
done_testing();
