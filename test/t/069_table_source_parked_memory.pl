# 18 table-source queries on one worker (beyond the 16 readers it parks),
# while a transaction left open elsewhere holds 150k changes of an
# unrelated table (under logical_decoding_work_mem, so not spilled).
# Every slot decodes every table's changes, so each reader queues that
# transaction in its own reorder buffer.  A parked reader holding more
# than 1 MB of them is not kept: the worker's memory stays that of one
# reader (before: 545 MB at its peak, here 59 MB).  Rows arrive each once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

use StreamingTest;

my $n = 18;
my $node = StreamingTest::logical_node('many', qq{
streaming.launcher_naptime = 1
streaming.workers_per_database = 1
max_replication_slots = 30
autovacuum = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

my @q = map { sprintf 'q%02d', $_ } 1 .. $n;
sql(q{CREATE EXTENSION streaming; CREATE TABLE big (id int, pad text)});
for my $t (@q)
{
	sql(qq{
		CREATE TABLE t_$t (id int);
		SELECT streaming.create_source('s_$t', 'table', options => '{"table": "public.t_$t"}');
		SELECT streaming.create_query('$t', 'SELECT id FROM s_$t');
	});
}
wait_for(q{SELECT count(*) || ' ' || count(DISTINCT worker_pid) FROM streaming.queries WHERE status = 'running'},
	"$n 1", "$n queries on one worker");
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'}, $n, 'slots');
my $pid = sql(q{SELECT worker_pid FROM streaming.queries LIMIT 1});
my $all = join ' + ', map { "(SELECT count(*) FROM $_)" } @q;
sub touch_all { my ($v) = @_; sql(join '; ', map { "INSERT INTO t_$_ VALUES ($v)" } @q); }
touch_all(1);
wait_for("SELECT $all", $n, 'a row reaches each query');
touch_all(2);
wait_for("SELECT $all", 2 * $n, 'again');

sub rss
{
	my ($kb) = slurp_file("/proc/$pid/status") =~ /VmRSS:\s+(\d+)/;
	my ($hwm) = slurp_file("/proc/$pid/status") =~ /VmHWM:\s+(\d+)/;
	return sprintf '%d MB (peak %d MB)', $kb / 1024, $hwm / 1024;
}
note 'worker before: ' . rss();

# an open transaction with 150k changes of an unrelated table
my ($o, $e) = ('', '');
my $open = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
	q{BEGIN; INSERT INTO big SELECT g, 'x' FROM generate_series(1, 150000) g; SELECT pg_sleep(25); ROLLBACK;} ],
	'>', \$o, '2>', \$e);
sleep 3;
sql(q{SELECT pg_switch_wal()});    # flushed for sure
for my $round (3 .. 5)
{
	touch_all($round);
	wait_for("SELECT $all", $round * $n, "round $round: a row reaches each query");
	note "worker after round $round: " . rss();
}
my ($kb) = slurp_file("/proc/$pid/status") =~ /VmHWM:\s+(\d+)/;
cmp_ok($kb / 1024, '<', 150, 'worker peak memory stays under 150 MB');
$open->finish;
touch_all(6);
wait_for("SELECT $all", 6 * $n, 'after the rollback');
note 'worker at the end: ' . rss();
is(sql(join ' UNION ALL ', map {
	qq{SELECT count(*) FROM ((SELECT id FROM $_ EXCEPT ALL SELECT id FROM t_$_)
		UNION ALL (SELECT id FROM t_$_ EXCEPT ALL SELECT id FROM $_)) d}
} @q) =~ s/\n/ /gr, join(' ', ('0') x $n), 'each row once in every query');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE status <> 'running' OR last_error IS NOT NULL}), '0', 'no failure');
$node->stop;
done_testing();
