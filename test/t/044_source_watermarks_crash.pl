# Per-source watermarks survive crashes.  A query over two sources keeps
# each source's max event time and watermark in streaming.source_watermarks,
# written in the batch's transaction; its watermark is the least of them.
# Pool workers run an append-mode windowed count over a UNION ALL of two
# file sources with different delays, a windowed count over a join of
# them bounded in event time, and a LEFT JOIN of them whose unmatched rows
# come out as the watermark passes them, while files arrive in both
# directories.  A
# batch is killed with SIGKILL right after it wrote its source_watermarks
# rows (a trigger there waits for a lock the test holds), once in the
# middle of its statement, and the server is stopped with -m immediate
# while a batch waits in the trigger.  At the end:
#   - each source's max_event_time is the max over its files, its
#     watermark that minus its delay, the query's watermark the least;
#   - the windows written are exactly those that end at or before the
#     watermark (over the join, the watermark less the join's lag), each
#     once, equal to plain SQL over the same files;
#   - the outer join wrote every pair once, and every unmatched row whose
#     bound the watermark passed once.
# Every file of a source starts after the previous one ends, so no batching
# makes a row late: a replayed batch may end at other files than the lost
# one and the result is still the same.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('source_wm');
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

# File n of a source: 30 rows with event times in [20 n, 20 n + 20)
# seconds after midnight (b's from 20 n + 3), in no particular order.
my $seed = 7;
sub write_file
{
	my ($dir, $n, $shift) = @_;
	open my $fh, '>', "$dir/.tmp" or die;
	for my $i (1 .. 30)
	{
		$seed = ($seed * 1103515245 + 12345) % 2147483648;
		my $sec = 20 * $n + $shift + $seed % (20 - $shift);
		printf $fh "2026-01-01 00:%02d:%02d.%03d+00,k%d,%d\n",
		  int($sec / 60), $sec % 60, $seed % 1000, $seed % 5, $seed % 100;
	}
	close $fh;
	rename "$dir/.tmp", sprintf("%s/f%03d.csv", $dir, $n) or die;
}

my $event_time = '{"a": {"column": "t", "watermark": "10 seconds"}, "b": {"column": "t", "watermark": "30 seconds"}}';
sql(qq{
	CREATE EXTENSION streaming;
	-- a slow predicate, so that a batch takes long enough to be killed in
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql
		AS \$\$SELECT pg_sleep(0.01) IS NOT NULL\$\$;
	SELECT streaming.create_source('a', 'file', schema => 't timestamptz, k text, v int',
		options => '{"path": "$dir_a", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_source('b', 'file', schema => 't timestamptz, k text, v int',
		options => '{"path": "$dir_b", "format": "csv", "max_files_per_trigger": 2}');
	SELECT streaming.create_query('wins',
		\$\$SELECT streaming.window(t, '10 seconds') AS w, count(*) AS n, sum(v) AS v
		      FROM (SELECT t, v FROM a WHERE slow(v) UNION ALL SELECT t, v FROM b) u
		     GROUP BY 1\$\$,
		output_mode => 'append', event_time => '$event_time');
	SELECT streaming.create_query('pairs',
		\$\$SELECT streaming.window(a.t, '10 seconds') AS w, count(*) AS n, sum(b.v) AS v
		      FROM a JOIN b ON a.k = b.k AND b.t BETWEEN a.t - interval '4 seconds' AND a.t + interval '4 seconds'
		     GROUP BY 1\$\$,
		output_mode => 'append', event_time => '$event_time');
	SELECT streaming.create_query('lefts',
		\$\$SELECT a.k, a.t AS at, b.t AS bt, b.v
		      FROM a LEFT JOIN b ON a.k = b.k AND b.t BETWEEN a.t - interval '4 seconds' AND a.t + interval '4 seconds'\$\$,
		output_mode => 'append', event_time => '$event_time');
	-- hold a batch of wins right after it wrote its per-source watermarks,
	-- while the test holds advisory lock 4242 (only wins: held batches of
	-- the other queries could take both pool workers before wins gets one)
	CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql
		AS \$\$BEGIN
			IF NEW.query = 'wins' THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
			RETURN NULL;
		END\$\$;
	CREATE TRIGGER hold AFTER INSERT OR UPDATE ON streaming.source_watermarks
		FOR EACH ROW EXECUTE FUNCTION hold();
});

my $files = 0;
sub write_round
{
	for (1 .. 3)
	{
		$files++;
		write_file($dir_a, $files, 0);
		write_file($dir_b, $files, 3);
	}
}

my $held = q{SELECT count(*) > 0 FROM pg_stat_activity
              WHERE query = 'streaming micro-batch: wins' AND wait_event_type = 'Lock'
                AND wait_event = 'advisory'};
my $wins_pid = q{SELECT pid FROM pg_stat_activity WHERE query = 'streaming micro-batch: wins' LIMIT 1};

# a first round runs freely, so that both sources have watermarks
write_round();
wait_for(q{SELECT count(*) FROM streaming.offsets WHERE query = 'wins'}, '6', 'round 1 consumed');

# round 2: SIGKILL a batch that wrote its source_watermarks rows
my $lock = $node->background_psql('postgres');
$lock->query_safe('SELECT pg_advisory_lock(4242)');
write_round();
wait_for($held, 't', 'round 2: a batch of wins waits after writing its source_watermarks rows');
kill 'KILL', sql($wins_pid);
$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
eval { $lock->quit; };
is(sql(q{SELECT count(*) FROM streaming.source_watermarks s JOIN streaming.queries q ON q.name = s.query
          WHERE s.batch_id > q.last_batch_id}), '0',
	'after the crash no source_watermarks row is ahead of its query\'s last batch');

# round 3: SIGKILL in the middle of a batch's statement (the pid of a
# batch seen sleeping in slow(), in one query: a batch lasts 0.3 s)
write_round();
my $sleeping = '';
for (1 .. 3000)
{
	$sleeping = sql(q{SELECT pid FROM pg_stat_activity
	                   WHERE query = 'streaming micro-batch: wins' AND state = 'active' AND wait_event = 'PgSleep'
	                   LIMIT 1});
	last if $sleeping ne '';
	usleep(10_000);
}
ok($sleeping ne '', 'round 3: a batch of wins is running');
kill 'KILL', $sleeping;
$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";

# round 4: immediate shutdown while a batch waits after writing its rows
$lock = $node->background_psql('postgres');
$lock->query_safe('SELECT pg_advisory_lock(4242)');
write_round();
wait_for($held, 't', 'round 4: a batch of wins waits after writing its source_watermarks rows');
$node->stop('immediate');
eval { $lock->quit; };
$node->start;

# round 5 runs freely to the end
write_round();
wait_for(q{SELECT count(*) FROM streaming.offsets WHERE query = 'wins'}, 2 * $files,
	'wins consumed every file of both sources');
wait_for(q{SELECT count(*) FROM streaming.offsets WHERE query = 'pairs'}, 2 * $files,
	'pairs consumed every file of both sources');
wait_for(q{SELECT count(*) FROM streaming.offsets WHERE query = 'lefts'}, 2 * $files,
	'lefts consumed every file of both sources');
wait_for(q{SELECT count(*) FROM pg_stat_activity
            WHERE query LIKE 'streaming micro-batch:%' AND state = 'active'}, '0', 'no batch running');
my @killed = (slurp_file($node->logfile) =~ /streaming query.*terminated by signal 9/g);
is(scalar(@killed), 2, 'two batches were killed by SIGKILL');

sql(qq{
	CREATE TABLE a_in (t timestamptz, k text, v int);
	CREATE TABLE b_in (t timestamptz, k text, v int);
	COPY a_in FROM PROGRAM 'cat $dir_a/f*.csv' WITH (FORMAT csv);
	COPY b_in FROM PROGRAM 'cat $dir_b/f*.csv' WITH (FORMAT csv);
});
is(sql('SELECT (SELECT count(*) FROM a_in) + (SELECT count(*) FROM b_in)'), 60 * $files, 'the input has all rows');

# each source's watermark, and the query's, recomputed from the files
for my $q ('wins', 'pairs', 'lefts')
{
	is(sql(qq{SELECT string_agg(source::text || ' ' || max_event_time || ' ' || watermark, ', ' ORDER BY source::text)
	            FROM streaming.source_watermarks WHERE query = '$q'}),
		sql(q{SELECT 'a ' || max(t) || ' ' || (max(t) - interval '10 seconds') FROM a_in}) . ', '
		. sql(q{SELECT 'b ' || max(t) || ' ' || (max(t) - interval '30 seconds') FROM b_in}),
		"$q: each source's max event time and watermark are those of its files");
	is(sql(qq{SELECT watermark FROM streaming.queries WHERE name = '$q'}),
		sql(q{SELECT least((SELECT max(t) FROM a_in) - interval '10 seconds', (SELECT max(t) FROM b_in) - interval '30 seconds')}),
		"$q: the query's watermark is the least of its sources'");
	is(sql(qq{SELECT count(*) FROM streaming.source_watermarks s JOIN streaming.queries q ON q.name = s.query
	           WHERE q.name = '$q' AND s.batch_id > q.last_batch_id}), '0',
		"$q: no row is ahead of the query's last batch");
}

# the windows closed by the watermark, each once, as plain SQL counts them
my $wm = "(SELECT watermark FROM streaming.queries WHERE name = 'wins')";
my $reference = qq{
	SELECT streaming.window(t, '10 seconds') AS w, count(*) AS n, sum(v) AS v
	  FROM (SELECT t, v FROM a_in UNION ALL SELECT t, v FROM b_in) u
	 GROUP BY 1 HAVING upper(streaming.window(t, '10 seconds')) <= $wm};
ok(sql("SELECT count(*) FROM ($reference) r") > 10, 'wins: more than ten windows are closed');
is(sql('SELECT count(*) FROM wins'), sql("SELECT count(*) FROM ($reference) r"), 'wins: as many windows as plain SQL');
is(sql("SELECT count(*) FROM (($reference) EXCEPT ALL SELECT * FROM wins) d"), '0', 'wins: no window missing or different');
is(sql("SELECT count(*) FROM (SELECT * FROM wins EXCEPT ALL ($reference)) d"), '0', 'wins: no window twice');

# over the join a window closes 4 seconds (the bound) behind the watermark
$wm = "(SELECT watermark - interval '4 seconds' FROM streaming.queries WHERE name = 'pairs')";
my $joined = qq{
	SELECT streaming.window(a.t, '10 seconds') AS w, count(*) AS n, sum(b.v) AS v
	  FROM a_in a JOIN b_in b ON a.k = b.k AND b.t BETWEEN a.t - interval '4 seconds' AND a.t + interval '4 seconds'
	 GROUP BY 1 HAVING upper(streaming.window(a.t, '10 seconds')) <= $wm};
ok(sql("SELECT count(*) FROM ($joined) r") > 10, 'pairs: more than ten windows are closed');
is(sql('SELECT count(*) FROM pairs'), sql("SELECT count(*) FROM ($joined) r"), 'pairs: as many windows as plain SQL');
is(sql("SELECT count(*) FROM (($joined) EXCEPT ALL SELECT * FROM pairs) d"), '0', 'pairs: no window missing or different');
is(sql("SELECT count(*) FROM (SELECT * FROM pairs EXCEPT ALL ($joined)) d"), '0', 'pairs: no window twice');
# the outer join: every pair once, and each row of a that matched nothing
# once, padded with NULLs, when the watermark passed 4 s after its time
$wm = "(SELECT watermark FROM streaming.queries WHERE name = 'lefts')";
my $outer = qq{
	SELECT a.k, a.t AS at, b.t AS bt, b.v
	  FROM a_in a JOIN b_in b ON a.k = b.k AND b.t BETWEEN a.t - interval '4 seconds' AND a.t + interval '4 seconds'
	UNION ALL
	SELECT a.k, a.t, NULL, NULL FROM a_in a
	 WHERE a.t + interval '4 seconds' <= $wm
	   AND NOT EXISTS (SELECT FROM b_in b WHERE a.k = b.k AND b.t BETWEEN a.t - interval '4 seconds' AND a.t + interval '4 seconds')};
ok(sql("SELECT count(*) FROM ($outer) r WHERE bt IS NULL") > 0, 'lefts: some rows of a match nothing');
is(sql('SELECT count(*) FROM lefts'), sql("SELECT count(*) FROM ($outer) r"), 'lefts: as many rows as plain SQL');
is(sql("SELECT count(*) FROM (($outer) EXCEPT ALL SELECT * FROM lefts) d"), '0', 'lefts: no pair or unmatched row missing');
is(sql("SELECT count(*) FROM (SELECT * FROM lefts EXCEPT ALL ($outer)) d"), '0', 'lefts: none twice');
is(sql(q{SELECT string_agg(DISTINCT status, ',') FROM streaming.queries}), 'running', 'the queries still run');

$node->stop;
done_testing();
