# The console sink writes each batch's rows to the server log as a table;
# the notify sink sends one NOTIFY per committed batch with a JSON payload.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sinks');
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
	open my $fh, '>', "$dir/.tmp" or die;
	print $fh "$_\n" for @lines;
	close $fh;
	rename "$dir/.tmp", "$dir/$name" or die;
}

$node->safe_psql('postgres', qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('src', 'file', 'k text, v int', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('by_k_console', 'SELECT k, sum(v) AS total FROM src GROUP BY k',
		output_mode => 'update', sink => 'console', sink_options => '{"num_rows": 2}');
	SELECT streaming.create_query('all_console', 'SELECT k, count(*) AS n FROM src GROUP BY k',
		output_mode => 'complete', sink => 'console');
	SELECT streaming.create_query('rows_notify', 'SELECT k, v FROM src', sink => 'notify',
		sink_options => '{"channel": "new_rows"}');
});

put('1.csv', 'a,1', 'b,2', 'c,3', 'a,4');
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT streaming.run('by_k_console'), streaming.run('all_console')");
my $log = slurp_file($node->logfile, $log_offset);

like($log, qr/streaming query "by_k_console", batch 0:\n\t\+-\+-----\+\n\t\|k\|total\|\n/,
	'console sink prints a header for the batch');
like($log, qr/only showing top 2 rows/, 'num_rows limits the rows shown');
like($log, qr/streaming query "all_console", batch 0:\n\t\+-\+-\+\n\t\|k\|n\|\n\t\+-\+-\+\n\t\|a\|2\|\n\t\|b\|1\|\n\t\|c\|1\|\n\t\+-\+-\+\n/,
	'complete mode shows the whole result, ordered by key');
is($node->safe_psql('postgres', 'SELECT k, total FROM by_k_console ORDER BY k'),
	"a|5\nb|2\nc|3", 'the console sink keeps the result table too');

# notify: delivered on commit, one per batch, with query, batch id and rows
my ($stdout, $stderr) = ('', '');
$node->psql('postgres', "LISTEN new_rows; SELECT streaming.run('rows_notify');",
	stdout => \$stdout, stderr => \$stderr);
like($stdout, qr/Asynchronous notification "new_rows" with payload "\{"query": "rows_notify", "batch_id": 0, "rows": 4\}" received/,
	'notify sink sends the batch summary');

put('2.csv', 'd,5');
$stdout = '';
$node->psql('postgres', "LISTEN new_rows; BEGIN; SELECT streaming.run('rows_notify'); ROLLBACK; SELECT 1;",
	stdout => \$stdout, stderr => \$stderr);
unlike($stdout, qr/Asynchronous notification/, 'a batch that rolls back notifies nobody');
$stdout = '';
$node->psql('postgres', "LISTEN new_rows; SELECT streaming.run('rows_notify');",
	stdout => \$stdout, stderr => \$stderr);
like($stdout, qr/"batch_id": 1, "rows": 1\}/, 'the replayed batch notifies once committed');

is($node->psql('postgres', q{SELECT streaming.create_query('bad', 'SELECT k FROM src', sink => 'console', sink_options => '{"rows": 3}')}),
	3, 'unknown sink option is an error');

$node->stop;
done_testing();
