# Operating the extension as a new user does, with workers: the README's
# quick start run as written; a file source that waits for an unreadable
# file or a missing directory and goes on by itself; workers that stop
# (between batches or in one) with a LOG line naming the query, not a
# FATAL; DROP FOREIGN TABLE ... CASCADE of a source whose query is running.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('operating');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 200
});
$node->start;

my $base = $node->basedir;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }
sub log_since { return slurp_file($node->logfile, $_[0]); }

# ------------------------------------------------------------------------
# The quick start ("## A first query" of README.md): every block, in order,
# as written; sh blocks by bash, sql blocks by psql, stopping at an error.
# The last block's comment shows the result it returns: it must.
# ------------------------------------------------------------------------
my $readme = slurp_file("$ENV{REPO_ROOT}/README.md");
my ($section) = $readme =~ /^## A first query\n(.*?)^## /ms;
ok(defined $section, 'the README has its quick start section');
my @blocks;
while ($section =~ /^```(sh|sql)\n(.*?)^```$/gms)
{
	push @blocks, [ $1, $2 ];
}
is(scalar(grep { $_->[0] eq 'sql' } @blocks), 2, 'the quick start has two sql blocks');
is(scalar(grep { $_->[0] eq 'sh' } @blocks), 2, 'and two sh blocks');

# the rows the last block says it returns
my @expected;
for my $line (split /\n/, $blocks[-1][1])
{
	next unless $line =~ /^--\s+(\S+)\s+\|\s+(\S+)\s*$/;
	next if $1 eq 'name';
	push @expected, "$1|$2";
}
is(scalar(@expected), 3, 'the last block shows three rows');

system('rm', '-rf', '/tmp/orders');
ok(!-e '/tmp/orders', 'no /tmp/orders from before');
my $n = 0;
for my $block (@blocks)
{
	my ($lang, $text) = @$block;
	$n++;
	if ($lang eq 'sh')
	{
		my ($stdout, $stderr);
		my $ok = IPC::Run::run([ 'bash', '-e', '-c', $text ], '>', \$stdout, '2>', \$stderr);
		ok($ok, "quick start block $n (sh) runs") or diag($stderr);
		next;
	}
	# the last block reads the result: the worker has it a moment later
	if ($n == @blocks)
	{
		wait_for(q{SELECT string_agg(name || '|' || total, ',' ORDER BY name) FROM sales_by_name},
			join(',', @expected), 'the worker brings the result up to date');
	}
	my ($rc, $stdout, $stderr) = $node->psql('postgres', $text,
		on_error_stop => 1, extra_params => [ '-A', '-t' ]);
	is($rc, 0, "quick start block $n (sql) runs without an error") or diag($stderr);
	is($stdout, join("\n", @expected), 'and returns the rows the README shows')
	  if $n == @blocks;
}
is(sql(q{SELECT status FROM streaming.queries WHERE name = 'sales_by_name'}), 'running',
	'the quick start query runs');
sql(q{SELECT streaming.drop_query('sales_by_name'); SELECT streaming.drop_source('orders')});
system('rm', '-rf', '/tmp/orders');

# ------------------------------------------------------------------------
# A file source waits for an unreadable file, in order, and goes on
# ------------------------------------------------------------------------
mkdir "$base/inbox";
sql(qq{
	SELECT streaming.create_source('inbox', 'file', 'id int, v int', '{"path": "$base/inbox"}');
	SELECT streaming.create_query('inbox_rows', 'SELECT id, v FROM inbox');
});
put_file("$base/inbox", '1,10', '2,20');
wait_for(q{SELECT count(*) FROM inbox_rows}, '2', 'the first file is read');

# a file the server cannot read, and a readable one after it
my $log = -s $node->logfile;
open my $fh, '>', "$base/inbox/.locked" or die $!;
print $fh "3,30\n4,40\n";
close $fh;
chmod 0000, "$base/inbox/.locked";
rename "$base/inbox/.locked", "$base/inbox/g1.csv" or die $!;
sleep 1;	# later modification time than g1
put_file("$base/inbox", '5,50');
wait_for(q{SELECT condition FROM streaming.queries WHERE name = 'inbox_rows'},
	qq{waiting for file "$base/inbox/g1.csv" of file source "inbox": Permission denied},
	'an unreadable file is a condition');
is(sql(q{SELECT status || ' ' || enabled || ' ' || coalesce(last_error, '-') FROM streaming.queries WHERE name = 'inbox_rows'}),
	'running true -', 'the query keeps running');
sleep 2;
is(sql(q{SELECT count(*) FROM inbox_rows}), '2', 'the files after it wait with it (order kept)');
chmod 0644, "$base/inbox/g1.csv";
wait_for(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM inbox_rows}, '1,2,3,4,5',
	'once readable, it is read, then those after it');
wait_for(q{SELECT coalesce(condition, 'none') FROM streaming.queries WHERE name = 'inbox_rows'}, 'none',
	'and the condition is gone');
my $text = log_since($log);
my @waits = $text =~ /LOG:  streaming query "inbox_rows": could not read file "[^"]*g1.csv" of file source "inbox": Permission denied/g;
is(scalar(@waits), 1, 'the wait is logged once, naming the query');
like($text, qr/LOG:  streaming query "inbox_rows": file source "inbox" can be read again/, 'and so is the end of it');
unlike($text, qr/ERROR|FATAL/, 'without an error');

# a directory that goes away and comes back
$log = -s $node->logfile;
rename "$base/inbox", "$base/inbox_away" or die $!;
wait_for(q{SELECT condition FROM streaming.queries WHERE name = 'inbox_rows'},
	qq{waiting for directory "$base/inbox" of file source "inbox": No such file or directory},
	'a missing directory is a condition');
is(sql(q{SELECT status FROM streaming.queries WHERE name = 'inbox_rows'}), 'running',
	'the query keeps running');
rename "$base/inbox_away", "$base/inbox" or die $!;
put_file("$base/inbox", '6,60');
wait_for(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM inbox_rows}, '1,2,3,4,5,6',
	'the directory back, its new file is read (and the old ones not again)');
wait_for(q{SELECT coalesce(condition, 'none') FROM streaming.queries WHERE name = 'inbox_rows'}, 'none',
	'and the condition is gone');
unlike(log_since($log), qr/ERROR|FATAL/, 'without an error');

# ------------------------------------------------------------------------
# stop(): nothing in the log but what happened, no FATAL
# ------------------------------------------------------------------------
$log = -s $node->logfile;
sql(q{SELECT streaming.stop('inbox_rows')});
$text = log_since($log);
unlike($text, qr/FATAL|ERROR/, 'stop() between batches: nothing in the log worse than LOG');
is(sql(q{SELECT status || ' ' || (worker_pid IS NULL) FROM streaming.queries WHERE name = 'inbox_rows'}), 'stopped true',
	'the query is stopped and no worker holds it');

# in the middle of a batch: the batch is cancelled and rolled back
sql(q{
	CREATE FUNCTION slow(v int) RETURNS int LANGUAGE sql AS 'SELECT pg_sleep(2); SELECT v';
	SELECT streaming.create_query('slow_rows', 'SELECT id, slow(v) AS v FROM inbox');
});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query' AND wait_event = 'PgSleep'},
	'1', 'a batch of slow_rows is in progress');
$log = -s $node->logfile;
sql(q{SELECT streaming.stop('slow_rows')});
$text = log_since($log);
like($text, qr/LOG:  streaming query "slow_rows": the batch in progress was cancelled\n.*DETAIL:  It was rolled back/s,
	'stop() in a batch: the worker logs that the batch was cancelled and rolled back');
unlike($text, qr/FATAL|ERROR/, 'and nothing worse');
is(sql(q{SELECT count(*) || ' ' || (SELECT last_batch_id FROM streaming.queries WHERE name = 'slow_rows') FROM slow_rows}),
	'0 -1', 'nothing of the batch was committed');

# a server shutdown stops workers the same way
sql(q{SELECT streaming.drop_query('slow_rows'); SELECT streaming.start('inbox_rows')});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}, '1',
	'inbox_rows runs again');
$log = -s $node->logfile;
$node->restart;
$text = log_since($log);
like($text, qr/LOG:  streaming worker stopping on request\n/,
	'a shutdown: the worker logs that it stops');
unlike($text, qr/FATAL:  terminating background worker "streaming query"/, 'no FATAL for it');

# ------------------------------------------------------------------------
# DROP FOREIGN TABLE ... CASCADE of the source of a running query
# ------------------------------------------------------------------------
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}, '1',
	'after the restart inbox_rows runs');
$log = -s $node->logfile;
my ($rc, $stdout, $stderr) = $node->psql('postgres', 'DROP FOREIGN TABLE inbox CASCADE');
is($rc, 0, 'DROP FOREIGN TABLE ... CASCADE of a running query\'s source succeeds');
like($stderr, qr/NOTICE:  drop cascades to continuous query "inbox_rows"/, 'and says the query goes');
is(sql(q{SELECT count(*) FROM streaming.queries}) . ' ' . sql(q{SELECT to_regclass('inbox_rows') IS NULL}),
	'0 t', 'the query and its result table are gone');
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}, '0',
	'and its worker, with no query left to run, leaves');
sleep 2;	# a launcher round
$text = log_since($log);
unlike($text, qr/FATAL|ERROR/, 'nothing fails');
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query'}), '0',
	'no worker comes back');

$node->stop;
done_testing();
