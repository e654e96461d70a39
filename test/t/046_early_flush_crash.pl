# Exactly-once for a stateless query whose large batches write their rows
# while they decode them (batch.c, flush_rows): the process running such a
# batch is killed with SIGKILL after it has written some of its rows and
# before it commits - a session's run() and a pool worker - and after crash
# recovery every input row is in the result table exactly once.  The kill
# is proven to land mid-batch: the result table has grown (rows written by
# the batch) while the query has no committed batch, and after recovery it
# still has none.  Batches are whole files (max_files_per_trigger 1), so a
# replayed batch reads the same rows as the lost one.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('early_flush');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
$node->append_conf('postgresql.conf', "streaming.autostart = off");
$node->append_conf('postgresql.conf', "restart_after_crash = on");
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $rows_per_file = 400_000;
my $files = 3;
my $total = $rows_per_file * $files;
for my $source (qw(session pooled))
{
	my $dir = $node->basedir . "/$source";
	mkdir $dir or die "mkdir $dir: $!";
	for my $f (1 .. $files)
	{
		open my $fh, '>', "$dir/.tmp" or die;
		for my $i (1 .. $rows_per_file)
		{
			my $id = ($f - 1) * $rows_per_file + $i;
			print $fh "$id,name $id\n";
		}
		close $fh;
		rename "$dir/.tmp", "$dir/f$f.csv" or die;
		usleep(20_000);    # distinct modification times
	}
}

my $base = $node->basedir;
sql(qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('session_src', 'file', 'id int, name text',
		'{"path": "$base/session", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('session_copy', \$\$SELECT id, upper(name) AS name FROM session_src\$\$);
	SELECT streaming.create_source('pooled_src', 'file', 'id int, name text',
		'{"path": "$base/pooled", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('pooled_copy', \$\$SELECT id, upper(name) AS name FROM pooled_src\$\$);
});
# the rows of a killed batch stay in the tables, dead: a vacuum (which the
# crash's restart invites) would let the next batch write into their pages,
# without the table growing as kill_mid_batch watches it do
sql(q{ALTER TABLE session_copy SET (autovacuum_enabled = off);
	ALTER TABLE pooled_copy SET (autovacuum_enabled = off)});

# hold_commits: a session that keeps every batch from committing (it
# locks streaming.progress, which a batch writes last) until it is gone:
# a batch that has written its rows waits, and the kill lands before its
# commit however fast it writes them
sub hold_commits
{
	my $h = $node->background_psql('postgres');
	$h->query_safe('BEGIN');
	$h->query_safe('LOCK TABLE streaming.progress IN EXCLUSIVE MODE');
	return $h;
}

# wait until the batch running in process $pid has written rows of its own
# into $table (the table grows) while the query has committed $committed
# rows; then kill the process
sub kill_mid_batch
{
	my ($pid, $table, $committed) = @_;
	my $size0 = sql("SELECT pg_relation_size('$table')");
	my $grown = 0;
	for (1 .. 3000)
	{
		my ($size, $rows) = split /\|/, sql("SELECT pg_relation_size('$table'), count(*) FROM $table");
		if ($size > $size0 && $rows == $committed)
		{
			$grown = 1;
			last;
		}
		usleep(2_000);
	}
	ok($grown, "$table grew with rows of an uncommitted batch");
	kill 'KILL', $pid;
	$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
}

sub session_batch_killed
{
	my ($committed) = @_;
	my ($out, $err) = ('', '');
	my $hold = hold_commits();
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', "SELECT streaming.run('session_copy', 1)" ],
		'>', \$out, '2>', \$err);
	my $pid = '';
	for (1 .. 500)
	{
		$pid = sql(q{SELECT pid FROM pg_stat_activity
		              WHERE query LIKE 'SELECT streaming.run(''session_copy''%' AND state = 'active'});
		last if $pid ne '';
		usleep(5_000);
	}
	die "batch did not start" if $pid eq '';
	kill_mid_batch($pid, 'session_copy', $committed);
	$h->finish;
	eval { $hold->quit; };
}

# run() in a session: killed in its first batch, then in its second
session_batch_killed(0);
is(sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'session_copy'}), '-1',
	'the killed first batch committed nothing');
is(sql('SELECT count(*) FROM session_copy'), '0', 'none of its written rows stayed');
is(sql(q{SELECT count(*) FROM streaming.offsets WHERE query = 'session_copy'}), '0', 'nor its offsets');
is(sql(q{SELECT streaming.run('session_copy', 1)}), '1', 'the first batch runs again');
is(sql('SELECT count(*) FROM session_copy'), $rows_per_file, 'it wrote its file');
is(sql(q{SELECT (duration_ms ? 'add_batch_while_reading')::text FROM streaming.progress
          WHERE query = 'session_copy'}), 'true', 'it wrote while it read');
session_batch_killed($rows_per_file);
is(sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'session_copy'}), '0',
	'the killed second batch committed nothing');
is(sql('SELECT count(*) FROM session_copy'), $rows_per_file, 'the first batch\'s rows only');
is(sql(q{SELECT streaming.run('session_copy')}), '2', 'the other two batches run');

# a grouped query over the same files aggregates each batch in parts of
# 40 000 rows as it decodes them (partial_agg.c).  A sequence, which no
# rollback takes back, counts the rows it has aggregated: it is killed
# once its first batch (of 400 000 rows) has made a part, and before it has
# aggregated them all; then it runs to the end
sql(q{CREATE SEQUENCE sums_ticks;
	SELECT streaming.create_query('session_sums',
	$$SELECT id % 100 AS k, count(*) AS c, sum(id + 0 * nextval('sums_ticks')) AS s, max(name) AS top
	    FROM session_src GROUP BY 1$$,
	output_mode => 'update')});
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', "SELECT streaming.run('session_sums', 1)" ],
		'>', \$out, '2>', \$err);
	my $pid = '';
	for (1 .. 500)
	{
		$pid = sql(q{SELECT pid FROM pg_stat_activity
		              WHERE query LIKE 'SELECT streaming.run(''session_sums''%' AND state = 'active'});
		last if $pid ne '';
		usleep(5_000);
	}
	die "batch did not start" if $pid eq '';
	my $ticks = 0;
	for (1 .. 5000)
	{
		$ticks = sql('SELECT last_value FROM sums_ticks');
		last if $ticks >= 40_000;
		usleep(1_000);
	}
	kill 'KILL', $pid;
	$h->finish;
	ok($ticks >= 40_000 && $ticks < 400_000, "killed after a part ($ticks rows aggregated)");
	$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
}
is(sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'session_sums'}), '-1',
	'the killed grouped batch committed nothing');
is(sql('SELECT count(*) FROM session_sums'), '0', 'nor any group');
is(sql(q{SELECT streaming.run('session_sums')}), '3', 'the grouped query runs its three batches');
is(sql(q{SELECT count(*) FROM streaming.progress WHERE query = 'session_sums'
           AND duration_ms ? 'add_batch_while_reading'}), '3', 'each aggregated in parts');
is(sql(q{SELECT count(*) FROM (
	(SELECT k, c, s, top FROM session_sums
	 EXCEPT SELECT i % 100, count(*), sum(i), max('name ' || i) FROM generate_series(1, } . $total . q{) i GROUP BY 1)
	UNION ALL
	(SELECT i % 100, count(*), sum(i), max('name ' || i) FROM generate_series(1, } . $total . q{) i GROUP BY 1
	 EXCEPT SELECT k, c, s, top FROM session_sums)) d}), '0',
	'the groups equal plain SQL over every row: each counted exactly once');

# a pool worker, killed in its first batch; the pool starts it again
my $hold = hold_commits();
sql(q{SELECT streaming.start('pooled_copy')});
my $worker = '';
for (1 .. 1000)
{
	$worker = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'pooled_copy'});
	last if $worker ne '';
	usleep(10_000);
}
die "no worker took the query" if $worker eq '';
kill_mid_batch($worker, 'pooled_copy', 0);
eval { $hold->quit; };
ok($node->poll_query_until('postgres',
		q{SELECT count(*) FROM streaming.progress WHERE query = 'pooled_copy'}, '3'),
	'after recovery, a worker runs the three batches');

for my $q (qw(session_copy pooled_copy))
{
	is(sql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM $q"), "$total|$total|1|$total",
		"$q: every row exactly once");
	is(sql(qq{SELECT count(*) FROM $q WHERE name <> upper('name ' || id)}), '0', "$q: every row as the query makes it");
	is(sql(qq{SELECT string_agg(batch_id::text, ',' ORDER BY batch_id) FROM streaming.progress WHERE query = '$q'}),
		'0,1,2', "$q: batch ids are contiguous");
	is(sql(qq{SELECT sum(input_rows) || '|' || sum(sink_rows) FROM streaming.progress WHERE query = '$q'}),
		"$total|$total", "$q: progress counts every row once");
}

sql(q{SELECT streaming.stop('pooled_copy')});
$node->stop;
done_testing();
