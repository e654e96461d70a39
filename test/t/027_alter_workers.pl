# alter_query() and reset_query() on queries that background workers run:
# a new trigger restarts the worker, which goes on without losing or
# repeating input; reset rebuilds the result from the source's files while
# the worker runs; a worker's failure enters streaming.errors and the
# status view (failed_at, totals, activity); a new SELECT that keeps the
# state, taken while the worker runs.  And the README's walk-through
# of repairing a watermark, run block by block as written.
use strict;
use warnings;
use IPC::Run;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('alter_workers');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 100
});
$node->start;

my $dir = $node->basedir . '/in';
mkdir $dir or die "$dir: $!";
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql('CREATE EXTENSION streaming');
sql(qq{SELECT streaming.create_source('ev', 'file', 'k int, v int',
          '{"path": "$dir", "format": "csv"}')});
sql(q{SELECT streaming.create_query('per_k', $$SELECT k, count(*) AS n, sum(v) AS total FROM ev GROUP BY k$$,
          output_mode => 'complete')});

# the expected result: plain SQL over every line written so far
my @lines;
sub put
{
	push @lines, @_;
	StreamingTest::put_file($dir, @_);
}
sub expected
{
	my %n;
	my %t;
	for (@lines)
	{
		my ($k, $v) = split /,/;
		$n{$k}++;
		$t{$k} += $v;
	}
	return join("\n", map { "$_|$n{$_}|$t{$_}" } sort { $a <=> $b } keys %n);
}
my $result = 'SELECT k, n, total FROM per_k ORDER BY k';

put(map { ($_ % 3) . ",$_" } 1 .. 30);
wait_for($result, expected(), 'the worker processes the first file');
wait_for(q{SELECT activity FROM streaming.status}, 'idle', 'with nothing to read, the status says idle');

# a new trigger: the pool lets go of the query and takes it afresh with it
my $pid;
sql(q{SELECT streaming.alter_query('per_k', trigger => '300 milliseconds')});
is(sql(q{SELECT trigger FROM streaming.queries}), '300 milliseconds', 'the trigger is changed');
wait_for(q{SELECT worker_pid IS NOT NULL FROM streaming.status}, 't',
	'a pool worker takes the query again');
put(map { ($_ % 3) . ",$_" } 31 .. 50);
wait_for($result, expected(), 'it goes on after the restart: every row once');
is(sql(q{SELECT input_rows_total FROM streaming.queries}), scalar(@lines), 'the total of input rows counts each row once');

# the same trigger again changes nothing and keeps the worker
$pid = sql(q{SELECT worker_pid FROM streaming.status});
sql(q{SELECT streaming.alter_query('per_k', trigger => '300 milliseconds', on_error => 'skip')});
is(sql(q{SELECT s.worker_pid, q.on_error FROM streaming.status s JOIN streaming.queries q USING (name)}), "$pid|skip",
	'without a new trigger the worker stays');

# reset while the worker runs: the result is rebuilt from the files
sql(q{SELECT streaming.reset_query('per_k')});
wait_for($result, expected(), 'after reset_query the result is rebuilt from every file');
wait_for(q{SELECT input_rows_total FROM streaming.queries}, scalar(@lines),
	'and the totals count the files read again once');
is(sql(q{SELECT state FROM streaming.status}), 'running', 'the query still runs');

# a failing batch: the query fails, and streaming.errors says when and why
sql(q{SELECT streaming.alter_query('per_k', on_error => 'fail')});
put('1,1', 'x,2');
wait_for(q{SELECT state FROM streaming.status}, 'failed', 'a bad record fails the query with on_error fail');
is(sql(q{SELECT kind, message LIKE 'could not decode record at %', batch_id FROM streaming.errors}),
	'failed|t|' . sql(q{SELECT last_batch_id + 1 FROM streaming.queries}),
	'streaming.errors has the failure, with the batch that failed');
is(sql(q{SELECT failed_at = (SELECT occurred_at FROM streaming.errors) FROM streaming.status}), 't',
	'the status shows when it failed');
# the bad file removed, start() resumes
unlink "$dir/f0003.csv" or die "unlink: $!";
pop @lines;
pop @lines;
sql(q{SELECT streaming.alter_query('per_k', on_error => 'dead_letter')});
sql(q{SELECT streaming.start('per_k')});
put('2,7');
wait_for($result, expected(), 'after start() the query goes on');

# a new SELECT that keeps the state, while the worker runs: the pool lets
# go of the query, its result is computed again from the state (a new
# column list: the table is created again), and it goes on with the worker
sub expected_doubled
{
	return join("\n", map { my ($k, $n, $t) = split /\|/; "$k|" . (2 * $n) . "|$t" } split /\n/, expected());
}
sql(q{SELECT streaming.alter_query('per_k', query => $$SELECT k, count(*) * 2 AS n2, sum(v) AS total FROM ev GROUP BY k$$)});
is(sql('SELECT k, n2, total FROM per_k ORDER BY k'), expected_doubled(),
	'alter_query(query => ...) computes the result again from the state at once');
wait_for(q{SELECT worker_pid IS NOT NULL FROM streaming.status}, 't',
	'a pool worker takes the query with its new SELECT');
put('1,100', '5,5');
wait_for('SELECT k, n2, total FROM per_k ORDER BY k', expected_doubled(),
	'the worker goes on with the new SELECT over the kept state: every row once');

# ------------------------------------------------------------------------
# "Repairing a watermark" in README.md: every block, in order, as written;
# a block whose comment shows rows must return them
# ------------------------------------------------------------------------
my $readme = slurp_file("$ENV{REPO_ROOT}/README.md");
my ($section) = $readme =~ /^### Repairing a watermark\n(.*?)^### /ms;
ok(defined $section, 'the README has its walk-through of repairing a watermark');
my @blocks;
while ($section =~ /^```(sh|sql)\n(.*?)^```$/gms)
{
	push @blocks, [ $1, $2 ];
}
is(scalar(@blocks), 11, 'the walk-through has eleven blocks');
my $shown = 0;
for my $i (0 .. $#blocks)
{
	my ($lang, $text) = @{ $blocks[$i] };
	if ($lang eq 'sh')
	{
		my ($stdout, $stderr);
		my $ok = IPC::Run::run([ 'bash', '-e', '-c', $text ], '>', \$stdout, '2>', \$stderr);
		ok($ok, "walk-through block $i (sh) runs") or diag($stderr);
		next;
	}
	my @rows;
	for my $line (split /\n/, $text)
	{
		next unless $line =~ /^--\s+(\S+)\s+\|\s+(\S+)\s+\|\s+(\S+)\s*$/;
		next if $1 eq 'w';
		push @rows, "$1|$2|$3";
	}
	my ($rc, $stdout, $stderr) = $node->psql('postgres', $text,
		on_error_stop => 1, extra_params => [ '-A', '-t' ]);
	is($rc, 0, "walk-through block $i (sql) runs without an error") or diag($stderr);
	next unless @rows;
	my @out = split /\n/, $stdout;
	is(join("\n", @out[ -@rows .. -1 ]), join("\n", @rows), "block $i returns the rows the README shows");
	$shown++;
}
is($shown, 4, 'four blocks show their result');
system('rm', '-rf', '/tmp/readings');

$node->stop;
done_testing();
