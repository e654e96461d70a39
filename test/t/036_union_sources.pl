# A query over two sources: each micro-batch reads both sources' new input
# and commits both sources' offsets in its one transaction.  Pool workers
# run an aggregation over a UNION ALL of two file sources, a UNION ALL
# projection and an aggregation over a join of the two streams (whose
# batches also keep each source's rows) while files arrive in both
# directories; the worker is killed
# with SIGKILL mid-batch (twice) and the server is stopped with -m
# immediate once.  At the end every result must equal, row for row, plain
# SQL over the same files: nothing lost, nothing counted twice.  The input
# has no event time, so no batching of it can make a row late.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('union');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
$node->append_conf('postgresql.conf', "restart_after_crash = on");
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub wait_for
{
	my ($query, $expected, $what) = @_;
	ok($node->poll_query_until('postgres', $query, $expected), $what);
}

my $dir_a = $node->basedir . '/a';
my $dir_b = $node->basedir . '/b';
mkdir $dir_a or die;
mkdir $dir_b or die;

# file n of a source: 40 rows; deterministic keys and amounts
my $seed = 11;
sub write_file
{
	my ($dir, $n, $tag) = @_;
	open my $fh, '>', "$dir/.tmp" or die;
	for my $i (1 .. 40)
	{
		$seed = ($seed * 1103515245 + 12345) % 2147483648;
		my $key = ('k' . ($seed % 7));
		my $amount = $seed % 1000;
		print $fh "$tag$n-$i,$key,$amount\n";
	}
	close $fh;
	rename "$dir/.tmp", sprintf("%s/f%03d.csv", $dir, $n) or die;
}

sql(qq{
	CREATE EXTENSION streaming;
	-- a slow predicate, so that a batch takes long enough to be killed in
	CREATE FUNCTION slow(bigint) RETURNS boolean LANGUAGE sql
		AS \$\$SELECT pg_sleep(0.004) IS NOT NULL\$\$;
	SELECT streaming.create_source('web', 'file', schema => 'id text, customer text, cents bigint',
		options => '{"path": "$dir_a", "format": "csv", "max_files_per_trigger": 2}');
	SELECT streaming.create_source('shop', 'file', schema => 'ref text, who text, amount int',
		options => '{"path": "$dir_b", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('totals',
		\$\$SELECT customer, count(*) AS n, sum(cents) AS cents, count(DISTINCT channel) AS channels
		      FROM (SELECT customer, cents, 'web' AS channel FROM web WHERE slow(cents)
		            UNION ALL
		            SELECT who, amount::bigint, 'shop' FROM shop WHERE slow(amount)) o
		     GROUP BY customer\$\$, output_mode => 'update');
	SELECT streaming.create_query('all_orders',
		\$\$SELECT id, customer, cents FROM web UNION ALL SELECT ref, who, amount FROM shop\$\$);
	SELECT streaming.create_query('matched',
		\$\$SELECT w.customer, count(*) AS pairs, sum(s.amount) AS shop_amount
		      FROM web w JOIN shop s ON w.customer = s.who AND w.cents % 50 = s.amount % 50
		     GROUP BY w.customer\$\$, output_mode => 'update');
});

# files arrive in both directories while the workers run
my $files = 0;
for my $round (1 .. 3)
{
	for my $n (1 .. 4)
	{
		$files++;
		write_file($dir_a, $files, 'w');
		write_file($dir_b, $files, 's');
	}
	# kill the worker running a batch of totals, mid-batch
	if ($round < 3)
	{
		wait_for(q{SELECT count(*) > 0 FROM pg_stat_activity
		            WHERE query = 'streaming micro-batch: totals' AND state = 'active' AND wait_event = 'PgSleep'},
			't', "round $round: a batch of totals is running");
		my $pid = sql(q{SELECT pid FROM pg_stat_activity
		                 WHERE query = 'streaming micro-batch: totals' AND state = 'active' LIMIT 1});
		kill 'KILL', $pid if $pid ne '';
		$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
	}
	else
	{
		wait_for(q{SELECT count(*) > 0 FROM pg_stat_activity
		            WHERE query = 'streaming micro-batch: totals' AND state = 'active'},
			't', "round $round: a batch of totals is running");
		$node->stop('immediate');
		$node->start;
	}
}

# everything consumed: 12 files of each source, once
wait_for(q{SELECT count(*) FROM streaming.offsets WHERE query = 'totals'}, '24',
	'totals consumed every file of both sources');
wait_for(q{SELECT count(*) FROM streaming.offsets WHERE query = 'all_orders'}, '24',
	'all_orders consumed every file of both sources');
wait_for(q{SELECT count(*) FROM pg_stat_activity
            WHERE query LIKE 'streaming micro-batch:%' AND state = 'active'}, '0', 'no batch running');

sql(qq{
	CREATE TABLE web_in (id text, customer text, cents bigint);
	CREATE TABLE shop_in (ref text, who text, amount int);
	COPY web_in FROM PROGRAM 'cat $dir_a/f*.csv' WITH (FORMAT csv);
	COPY shop_in FROM PROGRAM 'cat $dir_b/f*.csv' WITH (FORMAT csv);
});
is(sql('SELECT (SELECT count(*) FROM web_in) + (SELECT count(*) FROM shop_in)'), 40 * 24, 'the input has 960 rows');

my $reference = q{
	SELECT customer, count(*) AS n, sum(cents) AS cents, count(DISTINCT channel) AS channels
	  FROM (SELECT customer, cents, 'web' AS channel FROM web_in
	        UNION ALL SELECT who, amount::bigint, 'shop' FROM shop_in) o GROUP BY customer};
is(sql("SELECT count(*) FROM ($reference) r"), sql('SELECT count(*) FROM totals'), 'totals: as many groups as plain SQL');
is(sql("SELECT count(*) FROM (($reference) EXCEPT ALL SELECT * FROM totals) d"), '0', 'totals: no group missing or different');
is(sql("SELECT count(*) FROM (SELECT * FROM totals EXCEPT ALL ($reference)) d"), '0', 'totals: no group extra');
is(sql('SELECT sum(n) FROM totals'), 40 * 24, 'totals: every input row counted once');

my $rows = q{SELECT id, customer, cents FROM web_in UNION ALL SELECT ref, who, amount FROM shop_in};
is(sql('SELECT count(*) FROM all_orders'), 40 * 24, 'all_orders: every row once');
is(sql("SELECT count(*) FROM (($rows) EXCEPT ALL SELECT * FROM all_orders) d"), '0', 'all_orders: no row missing');
is(sql("SELECT count(*) FROM (SELECT * FROM all_orders EXCEPT ALL ($rows)) d"), '0', 'all_orders: no row twice');

wait_for(q{SELECT count(*) FROM streaming.offsets WHERE query = 'matched'}, '24',
	'matched consumed every file of both sources');
my $joined = q{SELECT w.customer, count(*) AS pairs, sum(s.amount) AS shop_amount
                 FROM web_in w JOIN shop_in s ON w.customer = s.who AND w.cents % 50 = s.amount % 50
                GROUP BY w.customer};
is(sql("SELECT count(*) FROM (($joined) EXCEPT ALL SELECT * FROM matched) d"), '0', 'matched: no group missing or different');
is(sql("SELECT count(*) FROM (SELECT * FROM matched EXCEPT ALL ($joined)) d"), '0', 'matched: no group extra');
is(sql('SELECT sum(pairs) FROM matched'), sql("SELECT count(*) FROM web_in w JOIN shop_in s ON w.customer = s.who AND w.cents % 50 = s.amount % 50"),
	'matched: every pair of the join once');

# each batch recorded both sources
is(sql(q{SELECT count(*) FROM streaming.progress WHERE query = 'totals'
          AND jsonb_array_length(sources) <> 2}), '0', 'every progress row lists both sources');
is(sql(q{SELECT sum((s->>'input_rows')::bigint) FROM streaming.progress p, jsonb_array_elements(p.sources) s
          WHERE p.query = 'totals' AND s->>'source' = 'shop'}), 40 * 12,
	'the progress rows count each shop row once');
is(sql(q{SELECT string_agg(DISTINCT status, ',') FROM streaming.queries}), 'running', 'both queries still run');
my @killed = (slurp_file($node->logfile) =~ /streaming query.*terminated by signal 9/g);
is(scalar(@killed), 2, 'two batches were killed by SIGKILL');

$node->stop;
done_testing();
