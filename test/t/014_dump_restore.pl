# pg_dump carries a continuous query whole: its source, definition, result
# and state tables, and its offsets.  After a restore into another database
# the query goes on where it stopped: nothing is read twice.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
# batches are driven by run() here, not by background workers
$node->append_conf('postgresql.conf', "streaming.autostart = off");
$node->start;

my $dir = $node->basedir . '/incoming';
mkdir $dir or die;
sub put
{
	my ($name, @lines) = @_;
	open my $fh, '>', "$dir/$name" or die;
	print $fh "$_\n" for @lines;
	close $fh;
}

put('1.csv', 'a,1', 'b,2', 'a,3');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('src', 'file', 'k text, v int', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('totals', 'SELECT k, count(*) AS n, sum(v) AS total FROM src GROUP BY k',
		output_mode => 'update');
	SELECT streaming.run('totals');
});

my $dump = $node->basedir . '/db.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

is($node->safe_psql('restored', 'SELECT k, n, total FROM totals ORDER BY k'), "a|2|4\nb|1|2",
	'the result table is restored');
is($node->safe_psql('restored', q{SELECT name, output_mode, last_batch_id, state_rows FROM streaming.queries}),
	'totals|update|0|2', 'the query definition and its progress are restored');
is($node->safe_psql('restored', 'SELECT count(*) FROM streaming.offsets'), '1', 'the offsets are restored');

put('2.csv', 'b,10', 'c,5');
is($node->safe_psql('restored', "SELECT streaming.run('totals')"), '1', 'the restored query runs one batch');
is($node->safe_psql('restored', 'SELECT k, n, total FROM totals ORDER BY k'), "a|2|4\nb|2|12\nc|1|5",
	'only the new file is read after the restore');
is($node->safe_psql('restored', 'SELECT string_agg(batch_id::text, \',\' ORDER BY batch_id) FROM streaming.progress'),
	'0,1', 'batch ids continue');

$node->stop;
done_testing();
