# Two sessions running the same query at once never process the same input:
# the query's catalog row is locked for the length of a batch.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
# batches are driven by run() here, not by background workers
$node->append_conf('postgresql.conf', "streaming.autostart = off");
$node->start;

my $dir = $node->basedir . '/incoming';
mkdir $dir or die;
for my $f (1 .. 8)
{
	open my $fh, '>', sprintf("%s/f%02d.csv", $dir, $f) or die;
	print $fh "$f$_,k" . ($_ % 5) . "\n" for 1 .. 100;
	close $fh;
}

$node->safe_psql('postgres', qq{
	CREATE EXTENSION streaming;
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql AS \$\$SELECT pg_sleep(0.001) IS NOT NULL\$\$;
	SELECT streaming.create_source('src', 'file', 'id int, k text',
		'{"path": "$dir", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('q', \$\$SELECT k, count(*) AS n FROM src WHERE slow(id) GROUP BY k\$\$,
		output_mode => 'update');
});

# two runners, each committing one batch per statement, racing for the files
my @handles;
my @outs = ('', '');
for my $i (0 .. 1)
{
	my $script = "SELECT streaming.run('q', 1);\n" x 8;
	push @handles, IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', $node->connstr('postgres') ],
		'<', \$script, '>', \$outs[$i], '2>&1');
}
$_->finish for @handles;

my @ran = map { my $s = 0; $s += $_ for grep { /^\d+$/ } split /\n/, $_; $s } @outs;
is($ran[0] + $ran[1], 8, 'the two runners ran eight batches between them');
is($node->safe_psql('postgres', 'SELECT sum(n) FROM q'), '800', 'each of the 800 rows counted once');
is($node->safe_psql('postgres', q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM q}),
	'k0=160,k1=160,k2=160,k3=160,k4=160', 'exact counts per key');
is($node->safe_psql('postgres', q{SELECT count(*), count(DISTINCT partition) FROM streaming.offsets}),
	'8|8', 'each file consumed by exactly one batch');
is($node->safe_psql('postgres',
	"SELECT string_agg(batch_id::text, ',' ORDER BY batch_id) FROM streaming.progress"),
	'0,1,2,3,4,5,6,7', 'batch ids are contiguous');

$node->stop;
done_testing();
