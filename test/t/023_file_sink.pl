# The file sink and deduplication, exactly once through crashes: the worker
# of a SELECT DISTINCT ON query is killed with SIGKILL in the middle of
# batches that write files (the server goes through crash recovery), and
# the server is stopped with -m immediate.  Every id comes twice, in two
# different files.  Afterwards the directory holds exactly the files of the
# manifest, no temporary file is left, and the files hold every id exactly
# once.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('file_sink');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
restart_after_crash = on
});
$node->start;

my $base = $node->basedir;
my $out = "$base/out";
mkdir "$base/in";
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

# ten files of 200 rows: ids 1..1000, each in two files, five files apart
for my $f (1 .. 10)
{
	open my $fh, '>', "$base/in/.tmp" or die;
	my $first = (($f - 1) % 5) * 200;
	print $fh $first + $_, ",name ", $first + $_, "\n" for 1 .. 200;
	close $fh;
	rename "$base/in/.tmp", sprintf("%s/in/f%02d.csv", $base, $f) or die;
}

sql(qq{
	CREATE EXTENSION streaming;
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.002) IS NOT NULL\$\$;
	SELECT streaming.create_source('src', 'file', 'id int, name text',
		'{"path": "$base/in", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('copy', 'SELECT DISTINCT ON (id) id, name FROM src WHERE slow(id)',
		sink => 'file', sink_options => '{"path": "$out", "format": "json"}');
});

for my $kill (1 .. 3)
{
	my $pid = '';
	for (1 .. 300)
	{
		$pid = sql(q{SELECT pid FROM pg_stat_activity WHERE query = 'streaming micro-batch: copy' AND state = 'active'});
		last if $pid ne '';
		usleep(20_000);
	}
	ok($pid ne '', "worker busy in a batch before kill $kill");
	usleep(150_000 + 100_000 * $kill);
	kill 'KILL', $pid if $pid ne '';
	$node->poll_query_until('postgres', 'SELECT true') or die;
}
usleep(200_000);
$node->stop('immediate');
$node->start;

wait_for(q{SELECT max(batch_id) FROM streaming.progress WHERE query = 'copy'}, '9',
	'after three SIGKILLs and an immediate stop all ten files are read');
is(sql(q{SELECT sum(rows) FROM streaming.sink_files WHERE query = 'copy'}), '1000',
	'the manifest counts 1000 rows: every id once');
is(sql(q{SELECT count(*), min(batch_id), max(batch_id) FROM streaming.sink_files WHERE query = 'copy'}),
	'5|0|4', 'five files, from the batches of the first five input files; the others held only duplicates');

opendir my $dh, $out or die;
my @names = sort grep { !/^\.\.?$/ } readdir $dh;
closedir $dh;
is(join(',', @names), join(',', map { sprintf('part-%010d.json', $_) } 0 .. 4),
	'the directory holds exactly the files of the manifest, no temporary file');

my @ids;
for my $name (@names)
{
	open my $fh, '<', "$out/$name" or die;
	while (<$fh>)
	{
		/^\{"id": (\d+), "name": "name \1"\}$/ or die "unexpected line in $name: $_";
		push @ids, $1;
	}
	close $fh;
}
is(scalar(@ids), 1000, 'the files hold 1000 rows');
my @sorted = sort { $a <=> $b } @ids;
is(join(',', @sorted), join(',', 1 .. 1000), 'every id exactly once');
is(sql(q{SELECT count(*) FROM copy}), '1000', 'and so does the result table');

$node->stop;
done_testing();
