# A random crash campaign.  Six continuous queries run in background
# workers — a file source and a Kafka source, each read by an append query
# (event-time window + watermark), an update query and a complete query —
# while input keeps arriving and at least 20 faults strike at random
# moments, in random order:
#   worker    SIGKILL of a query worker while it is in a batch
#   run       SIGKILL of a backend inside streaming.run() of a query
#   immediate pg_ctl stop -m immediate, then start
#   broker    the Kafka test broker down, then up (sometimes with a worker
#             kill while it is down)
# Every SIGKILL makes the postmaster reinitialize; after each fault the
# campaign waits until every query has a worker again that has got going.
# Then the queries catch up and every result table must equal, row for row,
# plain SQL (GROUP BY, date_bin) over the same input loaded into an ordinary
# table: no row lost, none doubled; the dead letters (a few malformed records
# are mixed in) must be exactly the malformed records, once each.
#
# Exactly once with replays: a batch replayed after a crash may end at other
# offsets than the lost one, so the input is built so that no batching can
# make a row late:
#   - file source: event times strictly increase from row to row and from
#     file to file (files are read in order), so every row is newer than
#     the watermark of any earlier batch, whatever the batch boundaries; its
#     append query (watermark 2 seconds) closes windows all along;
#   - Kafka source: 4 partitions read at uneven speeds, so event times are
#     not monotone as read; the watermark delay (1 day) is larger than the
#     whole input's time span (minutes), and one final message two days on,
#     produced once everything else is committed, closes the windows of the
#     append query.
# The test also checks that no batch dropped a row as late.
#
# The seed is fixed so that make test is repeatable; CRASH_SEED=n replays a
# run (same input, same faults in the same order with the same delays;
# the timing of the server itself still varies), CRASH_SEED=random draws
# one.  It is printed as "# seed: N".  CRASH_FAULTS=n changes the number of
# faults (default 24).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use POSIX qw(strftime);
use IPC::Run;

use StreamingTest;

my $seed = $ENV{CRASH_SEED} // 50050;
$seed = int(rand(1_000_000_000)) if $seed eq 'random';
my $nfaults = $ENV{CRASH_FAULTS} // 24;
diag("seed: $seed");
srand($seed);

my $kafka = StreamingTest::Broker->start('crash_k:4');
my $bootstrap = $kafka->bootstrap;
my $broker_up = 1;

my $node = PostgreSQL::Test::Cluster->new('campaign');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
streaming.progress_retention = 0
restart_after_crash = on
max_worker_processes = 16
});
$node->start;

my $base = $node->basedir;
my $fdir = "$base/files";
mkdir $fdir or die "mkdir $fdir: $!";

sub sql { return $node->safe_psql('postgres', $_[0]); }

# try_sql(SQL): the result, or undef while the server cannot answer
# (crash recovery, restart).  The SQL goes on psql's command line: a psql
# fed on stdin may die of a broken pipe when the server goes away
sub try_sql
{
	my ($query) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $query ],
			'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	};
	return undef unless $ok;
	chomp $out;
	return $out;
}

# poll_until(WHAT, SECONDS, CODE): calls CODE until it returns true; dies
# with WHAT (and the queries' state) if that takes longer than SECONDS
sub poll_until
{
	my ($what, $secs, $code) = @_;
	my $deadline = time + $secs;
	while (time < $deadline)
	{
		return 1 if $code->();
		usleep(50_000);
	}
	diag(try_sql(q{SELECT name, state, worker_pid, last_batch_id, restarts, restart_at, condition, last_error
	                 FROM streaming.status ORDER BY name}) // 'the server does not answer');
	diag(try_sql(q{SELECT pid, application_name, state, wait_event_type, wait_event, now() - xact_start, query
	                 FROM pg_stat_activity WHERE backend_type = 'streaming query' ORDER BY 2}) // '');
	die "timed out after $secs s: $what";
}

# --- input: rows (k, v, ts); every source's good rows also go to a csv
# file that is loaded into an ordinary table at the end
my @keys = map { "k$_" } 1 .. 5;
my %good = (file => 0, kafka => 0);
my %bad = (file => 0, kafka => 0);
my %all;
for my $s (qw(file kafka))
{
	open $all{$s}, '>', "$base/$s.all.csv" or die;
	$all{$s}->autoflush(1);
}
# event times: the file source from 2024-01-01, the Kafka source from
# 2024-02-01, 100 ms apart, strictly increasing in production order
my %clock = (file => 1704067200_000, kafka => 1706745600_000);

sub ts_text
{
	my ($ms) = @_;
	return strftime('%Y-%m-%d %H:%M:%S', gmtime(int($ms / 1000))) . sprintf('.%03d+00', $ms % 1000);
}

# chunk(SOURCE, N): N good rows and, one time in two, a malformed one among them
sub chunk
{
	my ($s, $n) = @_;
	my @lines;
	for (1 .. $n)
	{
		$clock{$s} += 100;
		my $line = join(',', $keys[int(rand(@keys))], int(rand(1000)), ts_text($clock{$s}));
		print { $all{$s} } "$line\n";
		push @lines, $line;
		$good{$s}++;
	}
	if (rand() < 0.5)
	{
		my $badline = rand() < 0.5 ? "k1,not-a-number,2024-01-01 00:00:00+00" : "k2,7,not-a-time";
		splice(@lines, int(rand(@lines + 1)), 0, $badline);
		$bad{$s}++;
	}
	return @lines;
}

my $nfiles = 0;
my $kafka_messages = 0;

sub feed_file
{
	my @lines = @_;
	put_file($fdir, @lines);
	$nfiles++;
	return;
}

sub feed_kafka
{
	my @lines = @_;
	open my $fh, '>', "$base/chunk.csv" or die;
	print $fh "$_\n" for @lines;
	close $fh;
	$kafka->cmd("producefile crash_k -1 $base/chunk.csv");
	$kafka_messages += @lines;
	return;
}

# one round of input: a file of 60..140 rows and as many Kafka messages
# (the broker takes messages only while it is up)
sub feed
{
	feed_file(chunk('file', 60 + int(rand(81))));
	feed_kafka(chunk('kafka', 60 + int(rand(81)))) if $broker_up;
	return;
}

# --- the queries
sql(qq{
	CREATE EXTENSION streaming;
	-- about a millisecond per row, so that a batch lasts long enough to be hit
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql
		AS \$\$SELECT pg_sleep(0.001) IS NOT NULL\$\$;
	SELECT streaming.create_source('fsrc', 'file', 'k text, v int, ts timestamptz',
		'{"path": "$fdir", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_source('ksrc', 'kafka', 'k text, v int, ts timestamptz',
		'{"bootstrap_servers": "$bootstrap", "topic": "crash_k", "format": "csv",
		  "starting_offsets": "earliest", "max_offsets_per_trigger": 100}');
});
my %query_sql = (
	f_append => [
		q{SELECT streaming.window(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total
		    FROM fsrc WHERE slow(v) GROUP BY 1, 2},
		q{output_mode => 'append', event_time => 'ts', watermark => '2 seconds'} ],
	f_update => [
		q{SELECT streaming.window(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total, max(v) AS top
		    FROM fsrc WHERE slow(v) GROUP BY 1, 2},
		q{output_mode => 'update', event_time => 'ts', watermark => '2 seconds'} ],
	f_complete => [
		q{SELECT k, count(*) AS n, sum(v) AS total, min(ts) AS first, max(ts) AS last
		    FROM fsrc WHERE slow(v) GROUP BY k},
		q{output_mode => 'complete'} ],
	k_append => [
		q{SELECT streaming.window(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total
		    FROM ksrc WHERE slow(v) GROUP BY 1, 2},
		q{output_mode => 'append', event_time => 'ts', watermark => '1 day'} ],
	k_update => [
		q{SELECT k, count(*) AS n, sum(v) AS total, max(ts) AS last
		    FROM ksrc WHERE slow(v) GROUP BY k},
		q{output_mode => 'update'} ],
	k_complete => [
		q{SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n, sum(v) AS total, min(v) AS low
		    FROM ksrc WHERE slow(v) GROUP BY 1},
		q{output_mode => 'complete'} ],
);
my @queries = sort keys %query_sql;
my @kafka_queries = grep { /^k_/ } @queries;
for my $q (@queries)
{
	sql(qq{SELECT streaming.create_query('$q', \$\$$query_sql{$q}[0]\$\$, $query_sql{$q}[1])});
}

# every query has a live worker that got going (restarts = 0: it ran a
# batch loop since its last crash) and waits for nothing; after a crash, a
# worker that is not one of those that ran before (OLD_PIDS), so that the
# crash is sure to have been noticed
sub all_running
{
	my ($old_pids) = @_;
	my $n = try_sql(qq{SELECT count(*) FROM streaming.status
	                   WHERE state = 'running' AND worker_pid IS NOT NULL AND restarts = 0
	                     AND condition IS NULL AND last_error IS NULL
	                     AND worker_pid <> ALL ('{$old_pids}'::int[])});
	return defined $n && $n == @queries;
}

sub worker_pids
{
	return try_sql(q{SELECT string_agg(worker_pid::text, ',') FROM streaming.status}) // '';
}

sub wait_recovered
{
	my ($what, $old_pids) = @_;
	poll_until("every query running again after $what", 120, sub { all_running($old_pids // '') });
	return;
}

feed() for 1 .. 2;
wait_recovered('start');

# --- the faults
sub active_worker
{
	my ($q) = @_;
	return try_sql(qq{SELECT pid FROM pg_stat_activity
	                   WHERE query = 'streaming micro-batch: $q' AND state = 'active'}) // '';
}

# kill a query's worker once it is in a batch (or, if it stays idle for
# 5 s, wherever it is)
sub kill_worker
{
	my ($q) = @_;
	my $pid = '';
	my $deadline = time + 5;
	while (time < $deadline)
	{
		$pid = active_worker($q);
		last if $pid ne '';
		usleep(10_000);
	}
	my $where = 'in a batch';
	if ($pid eq '')
	{
		$where = 'idle';
		$pid = try_sql(qq{SELECT worker_pid FROM streaming.queries WHERE name = '$q'}) // '';
	}
	die "no worker of $q to kill" if $pid eq '';
	usleep(int(rand(200_000)));
	kill 'KILL', $pid;
	return "SIGKILL worker of $q ($where)";
}

# streaming.run() in a session of its own, with a backlog of a few batches
# waiting, its backend killed after a random delay; returns whether it was
# killed (run() may have returned by then)
sub kill_run
{
	my ($q) = @_;
	if ($q =~ /^f_/)
	{
		feed_file(chunk('file', 60 + int(rand(81)))) for 1 .. 3;
	}
	else
	{
		feed_kafka(chunk('kafka', 250 + int(rand(100))));
	}
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', $node->connstr('postgres'),
		  '-c', 'SELECT pg_backend_pid()', '-c', "SELECT streaming.run('$q')" ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	$h->pump until $out =~ /^(\d+)\n/;
	my $pid = $1;
	usleep(int(rand(500_000)));
	$h->pump_nb;
	if ($out =~ /^\d+\n(\d+)\n/)
	{
		$h->finish;
		return ("run('$q') returned $1 before the kill", 0);
	}
	kill 'KILL', $pid;
	$h->finish;
	return ("SIGKILL backend in run('$q')", 1);
}

sub immediate_restart
{
	$node->stop('immediate');
	usleep(int(rand(500_000)));
	feed_file(chunk('file', 30)) if rand() < 0.5;
	$node->start;
	return ('pg_ctl stop -m immediate, start', 1);
}

# the broker down until a Kafka query notices (its batch fails, it says
# what it waits for), then a little longer; one time in two a Kafka
# query's worker is killed meanwhile, before or after that.
#
# Known bug, reported: the Kafka source asks the broker for each
# partition's offsets with rd_kafka_query_watermark_offsets(), whose timeout
# librdkafka before 2.3.0 ignores while the partition's broker is down
# (librdkafka #2588, fixed by #4460); Debian 12 has 2.0.2.  A batch that is
# in that call when the broker goes down hangs until it is back: no
# condition, no error, no interrupt.  That is a TODO below; the outage then
# ends after 15 s and the campaign goes on (nothing is lost by it).
my $hangs = 0;
sub broker_outage
{
	my @what = ('broker down');
	my $kill = rand() < 0.5 ? (rand() < 0.5 ? 'early' : 'late') : '';
	my $t = time;
	$kafka->cmd('down 1');
	$broker_up = 0;
	usleep(int(rand(500_000)));
	my $kill_one = sub {
		push @what, kill_worker($kafka_queries[int(rand(@kafka_queries))]);
		poll_until('the server to recover', 60, sub { defined try_sql('SELECT 1') });
	};
	$kill_one->() if $kill eq 'early';
	my $noticed = 0;
	while (!$noticed && time < $t + 15)
	{
		$noticed = (try_sql(q{SELECT count(*) FROM streaming.status WHERE condition LIKE '%Kafka%'}) // 0) > 0;
		usleep(50_000) unless $noticed;
	}
	if (!$noticed)
	{
		$hangs++;
		TODO:
		{
			local $TODO = 'librdkafka < 2.3.0: rd_kafka_query_watermark_offsets() ignores its timeout while the broker is down';
			ok(0, 'a Kafka query notices within 15 s that the broker is down');
		}
	}
	push @what, $noticed ? sprintf('noticed after %.1f s', time - $t) : 'not noticed in 15 s';
	$kill_one->() if $kill eq 'late';
	usleep(int(rand(1_000_000)));
	$kafka->cmd('up 1');
	$broker_up = 1;
	return (join(', ', @what, 'broker up'), $kill ne '');
}

# at least three of each kind, the rest drawn at random, in random order
my @kinds = qw(worker run immediate broker);
my @plan = map { ($_) x 3 } @kinds;
push @plan, $kinds[int(rand(@kinds))] while @plan < $nfaults;
for my $i (reverse 1 .. $#plan)
{
	my $j = int(rand($i + 1));
	@plan[ $i, $j ] = @plan[ $j, $i ];
}

my $t0 = time;
my $fault = 0;
for my $kind (@plan)
{
	$fault++;
	feed();
	usleep(int(rand(400_000)));
	my $q = $queries[int(rand(@queries))];
	my $pids = worker_pids();
	my ($what, $crashed) =
		  $kind eq 'worker' ? (kill_worker($q), 1)
		: $kind eq 'run' ? kill_run($q)
		: $kind eq 'immediate' ? immediate_restart()
		: broker_outage();
	my $t = time;
	wait_recovered("fault $fault", $crashed ? $pids : '');
	pass(sprintf('fault %d: %s; recovered in %.1f s', $fault, $what, time - $t));
}
note(sprintf('%d faults in %.0f s; Kafka batches hung during %d outages', $fault, time - $t0, $hangs));

# --- catch up: every file read, every Kafka offset committed; then the
# closing Kafka message (two days on), which nothing may precede
sub caught_up
{
	my $files = try_sql(q{SELECT string_agg(n::text, ',' ORDER BY q) FROM
		(SELECT q, (SELECT count(*) FROM streaming.offsets o WHERE o.query = q) AS n
		   FROM unnest(ARRAY['f_append', 'f_complete', 'f_update']) q) s});
	my $kafka = try_sql(q{SELECT string_agg(n::text, ',' ORDER BY q) FROM
		(SELECT q, (SELECT coalesce(sum("offset"), 0) FROM streaming.offsets o WHERE o.query = q) AS n
		   FROM unnest(ARRAY['k_append', 'k_complete', 'k_update']) q) s});
	return defined $files && defined $kafka
		&& $files eq join(',', ($nfiles) x 3) && $kafka eq join(',', ($kafka_messages) x 3);
}
poll_until('the queries to catch up', 120, \&caught_up);
$clock{kafka} += 2 * 86400 * 1000;
my $closer = "k3,1," . ts_text($clock{kafka});
print { $all{kafka} } "$closer\n";
$good{kafka}++;
$kafka->cmd("produce crash_k 0 $closer");
$kafka_messages++;
poll_until('the queries to read the closing message', 120, \&caught_up);
close $all{$_} for keys %all;

# --- compare with plain SQL over the same input
sql(qq{
	CREATE TABLE file_input (k text, v int, ts timestamptz);
	CREATE TABLE kafka_input (k text, v int, ts timestamptz);
	COPY file_input FROM '$base/file.all.csv' WITH (FORMAT csv);
	COPY kafka_input FROM '$base/kafka.all.csv' WITH (FORMAT csv);
	CREATE FUNCTION win(ts timestamptz, size interval) RETURNS tstzrange LANGUAGE sql IMMUTABLE
		AS \$\$SELECT tstzrange(date_bin(size, ts, '1970-01-01 00:00:00+00'),
		                         date_bin(size, ts, '1970-01-01 00:00:00+00') + size)\$\$;
});
is(sql(q{SELECT count(*) FROM file_input}) . '/' . sql(q{SELECT count(*) FROM kafka_input}),
	"$good{file}/$good{kafka}", 'the reference tables hold every good input row');

# the append queries hold the windows that the final watermark closed
my %expected = (
	f_append => q{SELECT win(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total FROM file_input GROUP BY 1, 2
	              HAVING upper(win(ts, '10 seconds')) <= (SELECT max(ts) - interval '2 seconds' FROM file_input)},
	f_update => q{SELECT win(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total, max(v) AS top FROM file_input GROUP BY 1, 2},
	f_complete => q{SELECT k, count(*) AS n, sum(v) AS total, min(ts) AS first, max(ts) AS last FROM file_input GROUP BY k},
	k_append => q{SELECT win(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total FROM kafka_input GROUP BY 1, 2
	              HAVING upper(win(ts, '10 seconds')) <= (SELECT max(ts) - interval '1 day' FROM kafka_input)},
	k_update => q{SELECT k, count(*) AS n, sum(v) AS total, max(ts) AS last FROM kafka_input GROUP BY k},
	k_complete => q{SELECT win(ts, '1 minute') AS w, count(*) AS n, sum(v) AS total, min(v) AS low FROM kafka_input GROUP BY 1},
);
my %columns = (
	f_append => 'w, k, n, total', f_update => 'w, k, n, total, top', f_complete => 'k, n, total, first, last',
	k_append => 'w, k, n, total', k_update => 'k, n, total, last', k_complete => 'w, n, total, low');
for my $q (@queries)
{
	my $s = $q =~ /^f_/ ? 'file' : 'kafka';
	my $exp = $expected{$q};
	my $res = "SELECT $columns{$q} FROM $q";
	my ($lost, $extra, $rows) = split /\|/, sql(qq{
		SELECT (SELECT count(*) FROM (($exp) EXCEPT ALL ($res)) d),
		       (SELECT count(*) FROM (($res) EXCEPT ALL ($exp)) d),
		       (SELECT count(*) FROM ($exp) e)});
	ok($rows > 0, "$q: the reference result is not empty ($rows rows)");
	is("lost $lost, extra $extra", 'lost 0, extra 0', "$q: row for row the plain SQL result");
	if ($q !~ /append/)
	{
		is(sql(qq{SELECT sum(n) FROM $q}), $good{$s}, "$q: every good input row counted once");
	}
	is(sql(qq{SELECT count(*) || '/' || count(DISTINCT position) FROM streaming.dead_letters WHERE query = '$q'}),
		"$bad{$s}/$bad{$s}", "$q: each malformed record is one dead letter, once");
	is(sql(qq{SELECT count(*) = max(batch_id) + 1, sum(state_rows_dropped_by_watermark) FROM streaming.progress WHERE query = '$q'}),
		't|0', "$q: batch ids without gaps, no row dropped as late");
}
ok(sql(q{SELECT count(*) FROM f_append}) > 10 && sql(q{SELECT count(*) FROM k_append}) > 10,
	'the append queries emitted windows');
is(sql(q{SELECT count(*) FROM streaming.status WHERE state = 'running' AND last_error IS NULL}), scalar(@queries),
	'every query is still running, none failed');
note("file rows $good{file} ($bad{file} malformed) in $nfiles files; Kafka messages $kafka_messages ($bad{kafka} malformed)");

sql(q{SELECT streaming.stop(name) FROM streaming.queries});
$node->stop;
$kafka->quit;
done_testing();
