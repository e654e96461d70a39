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
# a windowed aggregate, whose state is keyed by the window's start
my $timed = $node->basedir . '/timed';
mkdir $timed or die;
sub put_timed
{
	my ($name, @lines) = @_;
	open my $fh, '>', "$timed/$name" or die;
	print $fh "$_\n" for @lines;
	close $fh;
}
put_timed('1.csv', '2024-01-01T00:00:01Z,a,1', '2024-01-01T00:00:12Z,a,2', '2024-01-01T00:00:17Z,b,3');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('src', 'file', 'k text, v int', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('totals', 'SELECT k, count(*) AS n, sum(v) AS total FROM src GROUP BY k',
		output_mode => 'update');
	SELECT streaming.run('totals');
	SELECT streaming.create_source('timed', 'file', 'ts timestamptz, k text, v int', '{"path": "$timed", "format": "csv"}');
	SELECT streaming.create_query('windowed',
		\$\$SELECT streaming.window(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total FROM timed GROUP BY 1, 2\$\$,
		event_time => 'ts', watermark => '5 seconds', output_mode => 'update');
	SELECT streaming.run('windowed');
});
# a window as seconds after 2024-01-01 00:00 UTC, whatever the time zone
my $windowed = q{SELECT extract(epoch FROM lower(w))::int - 1704067200 || '-' ||
	extract(epoch FROM upper(w))::int - 1704067200, k, n, total FROM windowed ORDER BY 1, 2};

my $dump = $node->basedir . '/db.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

is($node->safe_psql('restored', 'SELECT k, n, total FROM totals ORDER BY k'), "a|2|4\nb|1|2",
	'the result table is restored');
is($node->safe_psql('restored', q{SELECT name, output_mode, last_batch_id, state_rows FROM streaming.queries ORDER BY 1}),
	"totals|update|0|2\nwindowed|update|0|2", 'the query definitions and their progress are restored');
is($node->safe_psql('restored', 'SELECT count(*) FROM streaming.offsets'), '2', 'the offsets are restored');
is($node->safe_psql('restored', $windowed), "0-10|a|1|1\n10-20|a|1|2\n10-20|b|1|3",
	'the windowed result table is restored');

put('2.csv', 'b,10', 'c,5');
is($node->safe_psql('restored', "SELECT streaming.run('totals')"), '1', 'the restored query runs one batch');
is($node->safe_psql('restored', 'SELECT k, n, total FROM totals ORDER BY k'), "a|2|4\nb|2|12\nc|1|5",
	'only the new file is read after the restore');
is($node->safe_psql('restored', 'SELECT string_agg(batch_id::text, \',\' ORDER BY batch_id) FROM streaming.progress WHERE query = \'totals\''),
	'0,1', 'batch ids continue');

# the restored windowed query merges into the restored state and closes
# windows by the restored state's key (the 0-10 window closed before the dump)
put_timed('2.csv', '2024-01-01T00:00:19Z,a,5', '2024-01-01T00:00:31Z,b,1', '2024-01-01T00:00:03Z,a,100');
is($node->safe_psql('restored', "SELECT streaming.run('windowed')"), '1', 'the restored windowed query runs one batch');
is($node->safe_psql('restored', $windowed), "0-10|a|1|1\n10-20|a|2|7\n10-20|b|1|3\n30-40|b|1|1",
	'it merges into the restored state and drops the late row');
is($node->safe_psql('restored', q{SELECT state_rows, (SELECT count(*) FROM streaming.state_2) FROM streaming.queries WHERE name = 'windowed'}),
	'1|1', 'the windows the watermark closed left the state');

$node->stop;
done_testing();
