# Exactly-once across crashes: the backend running a micro-batch is killed
# with SIGKILL mid-batch (the server goes through crash recovery), the query
# is run again, and the result must equal, row for row, both the aggregate
# computed directly over the input files and a query that never crashed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
# batches are driven by run() here, not by background workers
$node->append_conf('postgresql.conf', "streaming.autostart = off");
$node->append_conf('postgresql.conf', "restart_after_crash = on");
$node->start;

my $dir = $node->basedir . '/incoming';
mkdir $dir or die "mkdir $dir: $!";

# six files of 150 rows; deterministic values
my @names = qw(apple pear fig kiwi plum lime lemon);
my $seed = 7;
my $total_rows = 0;
for my $f (1 .. 6)
{
	open my $fh, '>', "$dir/.tmp" or die;
	print $fh "id,name,value\n";
	for my $i (1 .. 150)
	{
		$seed = ($seed * 1103515245 + 12345) % 2147483648;
		my $name = $names[$seed % @names];
		my $value = ($seed % 10000) / 100;
		print $fh "$f$i,$name,$value\n";
		$total_rows++;
	}
	close $fh;
	rename "$dir/.tmp", sprintf("%s/f%02d.csv", $dir, $f) or die;
	usleep(20_000);    # distinct modification times
}

$node->safe_psql('postgres', qq{
	CREATE EXTENSION streaming;
	-- a deliberately slow predicate, so that a batch takes about a second
	CREATE FUNCTION slow(float8) RETURNS boolean LANGUAGE sql
		AS \$\$SELECT pg_sleep(0.006) IS NOT NULL\$\$;
	SELECT streaming.create_source('orders', 'file',
		schema  => 'id int, name text, value float8',
		options => '{"path": "$dir", "format": "csv", "header": true, "max_files_per_trigger": 1}');
	SELECT streaming.create_query('crashy',
		\$\$SELECT name, count(*) AS n, sum(value::numeric) AS total, avg(value) AS mean
		      FROM orders WHERE slow(value) GROUP BY name\$\$, output_mode => 'complete');
	SELECT streaming.create_query('calm',
		\$\$SELECT name, count(*) AS n, sum(value::numeric) AS total, avg(value) AS mean
		      FROM orders GROUP BY name\$\$, output_mode => 'complete');
});

# start one batch in a separate session, kill its backend after $delay_ms
sub crash_one_batch
{
	my ($delay_ms) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		  "SELECT streaming.run('crashy', 1)" ],
		'>', \$out, '2>', \$err);

	my $pid = '';
	for (1 .. 200)
	{
		$pid = $node->safe_psql('postgres', q{
			SELECT pid FROM pg_stat_activity
			 WHERE query LIKE 'SELECT streaming.run(''crashy''%' AND state = 'active'});
		last if $pid ne '';
		usleep(10_000);
	}
	die "batch did not start" if $pid eq '';
	usleep($delay_ms * 1000);
	kill 'KILL', $pid;
	$h->finish;

	# the postmaster reinitializes after the crash
	$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
	return $out;
}

my $before = $node->safe_psql('postgres',
	"SELECT last_batch_id FROM streaming.queries WHERE name = 'crashy'");
is($before, '-1', 'no batch before the first crash');

# crash three batches at different points; one good batch in between
crash_one_batch(150);
is($node->safe_psql('postgres', "SELECT last_batch_id FROM streaming.queries WHERE name = 'crashy'"),
	'-1', 'a batch killed mid-way commits nothing');
is($node->safe_psql('postgres', "SELECT count(*) FROM crashy"), '0', 'result table untouched by the killed batch');
is($node->safe_psql('postgres', "SELECT count(*) FROM streaming.offsets WHERE query = 'crashy'"),
	'0', 'offsets untouched by the killed batch');

is($node->safe_psql('postgres', "SELECT streaming.run('crashy', 1)"), '1', 'a batch after recovery runs');
crash_one_batch(500);
crash_one_batch(850);
is($node->safe_psql('postgres', "SELECT last_batch_id FROM streaming.queries WHERE name = 'crashy'"),
	'0', 'only the uncrashed batch is committed');

# now run to the end, crash-free, and compare
is($node->safe_psql('postgres', "SELECT streaming.run('crashy')"), '5', 'the remaining five batches run');
is($node->safe_psql('postgres', "SELECT streaming.run('calm')"), '6', 'the crash-free query runs six batches');

is($node->safe_psql('postgres', "SELECT sum(n) FROM crashy"), $total_rows,
	'every input row counted exactly once');
is($node->safe_psql('postgres', "SELECT count(*) FROM streaming.offsets WHERE query = 'crashy'"),
	'6', 'every file recorded once');
is($node->safe_psql('postgres',
	"SELECT string_agg(batch_id::text, ',' ORDER BY batch_id) FROM streaming.progress WHERE query = 'crashy'"),
	'0,1,2,3,4,5', 'batch ids are contiguous');

# the expected aggregate, straight from the files
$node->safe_psql('postgres', qq{
	CREATE TABLE expected_input (id int, name text, value float8);
	COPY expected_input FROM PROGRAM 'cat $dir/f*.csv | grep -v ^id,' WITH (FORMAT csv);
});
my $diff = q{
	SELECT count(*) FROM (
		(SELECT name, count(*) AS n, sum(value::numeric) AS total FROM expected_input GROUP BY name
		 EXCEPT SELECT name, n, total FROM crashy)
		UNION ALL
		(SELECT name, n, total FROM crashy
		 EXCEPT SELECT name, count(*), sum(value::numeric) FROM expected_input GROUP BY name)) d};
is($node->safe_psql('postgres', $diff), '0', 'result equals the aggregate over the input files');
is($node->safe_psql('postgres', 'SELECT count(*) FROM crashy'),
	$node->safe_psql('postgres', 'SELECT count(DISTINCT name) FROM expected_input'), 'one row per name');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
		(SELECT name, n, total, round(mean::numeric, 9) FROM crashy
		 EXCEPT SELECT name, n, total, round(mean::numeric, 9) FROM calm)
		UNION ALL
		(SELECT name, n, total, round(mean::numeric, 9) FROM calm
		 EXCEPT SELECT name, n, total, round(mean::numeric, 9) FROM crashy)) d}),
	'0', 'result equals the crash-free query, row for row');

$node->stop;
done_testing();
