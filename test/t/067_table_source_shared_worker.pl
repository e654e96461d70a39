# One pool worker running three queries over three tables.  A process
# holds one replication slot at a time: before, each batch of a query
# whose slot was not the one held released it, made a new decoding context
# on its own slot and decoded the WAL again from the slot's restart point,
# so three queries over quiet tables kept the worker busy all its time
# (a core, thousands of transaction ids a second).  Now the worker keeps
# the decoding contexts of its other queries with their slots released,
# and an idle worker costs what its queries' looks do: no transaction
# id, no WAL, under 1 % of a CPU per query.  Rows still arrive at once, each once,
# including transactions that decoding spills to disk, and a run() of a
# query in a session between the worker's batches takes rows the worker
# then does not read again.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

use StreamingTest;

my $node = StreamingTest::logical_node('shared', qq{
streaming.launcher_naptime = 1
streaming.workers_per_database = 1
# transactions of more than 64 kB of changes spill to disk
logical_decoding_work_mem = '64kB'
autovacuum = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

my @q = qw(qa qb qc);
sql(q{CREATE EXTENSION streaming});
for my $t (@q)
{
	sql(qq{
		CREATE TABLE t_$t (id int);
		SELECT streaming.create_source('s_$t', 'table', options => '{"table": "public.t_$t"}');
		SELECT streaming.create_query('$t', 'SELECT id FROM s_$t');
		SELECT streaming.start('$t');
	});
}
wait_for(q{SELECT count(*) || ' ' || count(DISTINCT worker_pid) FROM streaming.queries WHERE status = 'running'},
	'3 1', 'three queries on one worker');
my $pid = sql(q{SELECT worker_pid FROM streaming.queries LIMIT 1});
sql(q{INSERT INTO t_qa VALUES (1); INSERT INTO t_qb VALUES (1); INSERT INTO t_qc VALUES (1)});

# each result holds exactly what its table holds, each row once
sub same_rows
{
	return sql(join ' UNION ALL ', map {
		qq{SELECT count(*) FROM ((SELECT id FROM $_ EXCEPT ALL SELECT id FROM t_$_)
			UNION ALL (SELECT id FROM t_$_ EXCEPT ALL SELECT id FROM $_)) d}
	} @q);
}
wait_for(q{SELECT (SELECT count(*) FROM qa) + (SELECT count(*) FROM qb) + (SELECT count(*) FROM qc)},
	'3', 'the first rows reach the three queries');

# idle: transaction ids assigned, WAL written and the worker's CPU time
# over 10 s, once the batches after the rows have found nothing
sleep 2;
my $ticks = sub { my @f = split / /, slurp_file("/proc/$pid/stat") =~ s/^.*\) //sr; return $f[11] + $f[12]; };
my $before = sql(q{SELECT pg_snapshot_xmax(pg_current_snapshot()) || ' ' || pg_current_wal_insert_lsn()});
my $c0 = $ticks->();
sleep 10;
my $c1 = $ticks->();
my $after = sql(q{SELECT pg_snapshot_xmax(pg_current_snapshot()) || ' ' || pg_current_wal_insert_lsn()});
my ($x0, $l0) = split / /, $before;
my ($x1, $l1) = split / /, $after;
my $hz = `getconf CLK_TCK` + 0 || 100;
is($x1 - $x0, 0, 'three queries over quiet tables on one worker take no transaction id in 10 s');
# the bgwriter's snapshot of running transactions may come (15 s apart)
cmp_ok(sql(qq{SELECT pg_wal_lsn_diff('$l1', '$l0')}), '<', 500, '... and write no WAL of their own');
# each query looks at its table every streaming.idle_poll (200 ms)
cmp_ok(($c1 - $c0) / $hz, '<', 0.3, '... and the worker uses under 1 % of a CPU per query ('
	  . ($c1 - $c0) / $hz . ' s in 10 s; it was all of it)');

# a row in each table arrives at once
my $t0 = time;
sql(q{INSERT INTO t_qa VALUES (2); INSERT INTO t_qb VALUES (2); INSERT INTO t_qc VALUES (2)});
wait_for(q{SELECT (SELECT count(*) FROM qa) + (SELECT count(*) FROM qb) + (SELECT count(*) FROM qc)},
	'6', 'a row inserted into each quiet table is read');
cmp_ok(time - $t0, '<', 2, '... within 2 s');

# big transactions, spilled to disk while decoding, into all three, two
# of them at once
my @h = map {
	my $t = $_;
	IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres'), '-c',
		"BEGIN; INSERT INTO t_$t SELECT g FROM generate_series(1, 20000) g; SELECT pg_sleep(0.5); "
		  . "INSERT INTO t_$t SELECT g FROM generate_series(1, 20000) g; COMMIT;" ], '>', \my $o, '2>', \my $e)
} qw(qa qb);
$_->finish for @h;
sql(q{INSERT INTO t_qc SELECT g FROM generate_series(1, 30000) g});
wait_for(q{SELECT (SELECT count(*) FROM qa) + (SELECT count(*) FROM qb) + (SELECT count(*) FROM qc)},
	'110006', 'spilled transactions are read');
is(same_rows(), "0\n0\n0", '... each row once');

# run() in a session between the worker's batches: refused while the
# worker holds the query's slot, or it takes the rows itself
sql(q{INSERT INTO t_qa VALUES (3); INSERT INTO t_qb VALUES (3); INSERT INTO t_qc VALUES (3)});
sql(q{
	DO $$
	DECLARE
		n int := 0;
		q text;
	BEGIN
		FOREACH q IN ARRAY ARRAY['qa', 'qb', 'qc'] LOOP
			BEGIN
				PERFORM streaming.run(q);
				n := n + 1;
			EXCEPTION WHEN object_in_use THEN
				NULL;
			END;
		END LOOP;
		RAISE NOTICE 'ran %', n;
	END
	$$;
	SELECT 1;
});
wait_for(q{SELECT (SELECT count(*) FROM qa) + (SELECT count(*) FROM qb) + (SELECT count(*) FROM qc)},
	'110009', 'rows read by run() or by the worker');
sql(q{INSERT INTO t_qa VALUES (4); INSERT INTO t_qb VALUES (4); INSERT INTO t_qc VALUES (4)});
wait_for(q{SELECT (SELECT count(*) FROM qa) + (SELECT count(*) FROM qb) + (SELECT count(*) FROM qc)},
	'110012', 'and the worker goes on after it');
is(same_rows(), "0\n0\n0", '... each row once');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE status <> 'running' OR last_error IS NOT NULL OR worker_pid <> } . $pid),
	'0', 'no failure, all still on the one worker');

$node->stop;
done_testing();
