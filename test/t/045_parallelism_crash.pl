# Queries with parallelism 2 over a Kafka topic of 8 partitions survive
# crashes exactly once.  Slice k reads partitions p with p % 2 = k; pool
# workers run the two slices' batches side by side, each committing its own
# partitions' offsets with its results, the merges one at a time under the
# query's row lock.  Two queries read the topic: a windowed aggregate in
# update mode with event time and a watermark, and a projection that keeps
# each message's partition and offset.  Input comes in rounds; in them:
#   - one pool worker runs the four slices, then a second one starts and
#     takes a slice of each query from it: the first goes on waiting for
#     the input of the slices it keeps (no worker exits on an error);
#   - a batch of slice 1 is held in a trigger on the aggregate's result
#     table (while it merges) until slice 0's batch waits for the merge
#     lock behind it, and slice 1's worker is killed with SIGKILL;
#   - slice 1's worker is killed in the middle of a batch;
#   - the server is stopped with -m immediate while both slices' batches
#     are in flight as above;
#   - slice 0's worker is killed in the middle of a batch of the projection;
# then streaming.run(..., slice => k) runs each slice of the stopped
# aggregate in this session.  At the end:
#   - each partition's committed offset is what was produced to it;
#   - batch ids 0 .. last_batch_id each appear once in streaming.progress
#     (progress_retention keeps 1000, more than run here), every batch
#     says its slice and read only that slice's partitions, the offset
#     ranges of a partition follow one another without gap or overlap in
#     batch order, and the input rows add up to the messages produced;
#   - the results equal plain SQL over exactly the produced messages, row
#     for row (the projection: each partition and offset once).
# A round's event times lie in a minute of their own, later than the
# previous round's, and a round is produced only once the previous one is
# consumed; the watermark delay is a minute: no batching of a round, in
# either slice, makes a row late (the test asserts none was), so a replayed
# batch that ends at other offsets than the lost one gives the same result.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

my $partitions = 8;
my $kafka = StreamingTest::Broker->start("ev:$partitions");
my $bootstrap = $kafka->bootstrap;

my $node = PostgreSQL::Test::Cluster->new('parallelism_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
streaming.max_workers = 4
# one worker for the four slices first, two later
streaming.workers_per_database = 1
restart_after_crash = on
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

# --- input: round r's messages have event times in minute r, in no order
my @produced = (0) x $partitions;
my $total = 0;
my $round = 0;
my $seed = 11;
my $input = $node->basedir . '/input.csv';
open my $all, '>', $input or die;
sub produce_round
{
	my ($per_partition) = @_;
	$round++;
	for my $p (0 .. $partitions - 1)
	{
		my $path = $node->basedir . "/round.csv";
		open my $fh, '>', $path or die;
		for (1 .. $per_partition)
		{
			$seed = ($seed * 1103515245 + 12345) % 2147483648;
			my $sec = 60 * $round + $seed % 60;
			my $line = sprintf("2026-01-01T00:%02d:%02d.%03dZ,k%d,%d",
				int($sec / 60), $sec % 60, int($seed / 60) % 1000, $seed % 5, int($seed / 7) % 1000);
			print $fh "$line\n";
			print $all "$p,$produced[$p],$line\n";
			$produced[$p]++;
		}
		close $fh;
		$kafka->cmd("producefile ev $p $path") eq "ok $per_partition" or die "produce to partition $p";
	}
	$total += $partitions * $per_partition;
	return;
}

# the committed offsets, as they are once every message produced is read
sub all_offsets
{
	return join(' ', map { "ev:$_=$produced[$_]" } 0 .. $partitions - 1);
}
sub consumed
{
	my ($query, $what) = @_;
	return wait_for(qq{SELECT string_agg(partition || '=' || "offset", ' ' ORDER BY partition)
	                     FROM streaming.offsets WHERE query = '$query'}, all_offsets(), "$query: $what");
}

# the pid of the worker that holds slice k of a query
sub slice_worker
{
	my ($query, $slice) = @_;
	return $slice == 0
	  ? "(SELECT worker_pid FROM streaming.queries WHERE name = '$query')"
	  : "(SELECT s.worker_pid FROM streaming.query_slices s JOIN streaming.queries q ON q.id = s.query
	       WHERE q.name = '$query' AND s.slice = $slice)";
}

sql(qq{
	CREATE EXTENSION streaming;
	-- a slow predicate, so that a batch takes long enough to be killed in
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql
		AS \$\$SELECT pg_sleep(0.001) IS NOT NULL\$\$;
	SELECT streaming.create_source('src', 'kafka', 'ts timestamptz, k text, v int, kafka_partition int, kafka_offset bigint',
		'{"bootstrap_servers": "$bootstrap", "topic": "ev", "format": "csv",
		  "starting_offsets": "earliest", "max_offsets_per_trigger": 20}');
	SELECT streaming.create_query('agg',
		\$\$SELECT streaming.window(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS s, max(v) AS top
		      FROM src WHERE slow(v) GROUP BY 1, 2\$\$,
		output_mode => 'update', event_time => 'ts', watermark => '60 seconds', parallelism => 2);
	SELECT streaming.create_query('proj',
		\$\$SELECT kafka_partition AS p, kafka_offset AS o, ts, k, v FROM src\$\$,
		output_mode => 'append', parallelism => 2);
	-- hold a batch of slice 1 of agg while it merges, while the test holds
	-- advisory lock 4242
	CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF pg_backend_pid() = ${\ slice_worker('agg', 1)} THEN
			PERFORM pg_advisory_xact_lock_shared(4242);
		END IF;
		RETURN NULL;
	END\$\$;
	CREATE TRIGGER hold AFTER INSERT OR UPDATE ON agg FOR EACH ROW EXECUTE FUNCTION hold();
	-- waits (up to 30 s) for a batch of query q's slice k in progress, and
	-- returns its worker's pid
	CREATE FUNCTION batch_of(q text, k int) RETURNS int LANGUAGE plpgsql AS \$\$
	DECLARE
		p int;
	BEGIN
		FOR i IN 1 .. 6000 LOOP
			-- pg_stat_activity as it is now, not as this transaction first saw it
			PERFORM pg_stat_clear_snapshot();
			SELECT a.pid INTO p FROM pg_stat_activity a
			 WHERE a.query = 'streaming micro-batch: ' || q AND a.state = 'active'
			   AND a.pid = CASE WHEN k = 0 THEN (SELECT worker_pid FROM streaming.queries WHERE name = q)
			                    ELSE (SELECT s.worker_pid FROM streaming.query_slices s
			                            JOIN streaming.queries x ON x.id = s.query
			                           WHERE x.name = q AND s.slice = k) END;
			IF p IS NOT NULL THEN
				RETURN p;
			END IF;
			PERFORM pg_sleep(0.005);
		END LOOP;
		RETURN NULL;
	END\$\$;
});

# the two slices of a query are held by two live pool workers
sub spread
{
	my ($q, $what) = @_;
	return wait_for(qq{SELECT count(DISTINCT x.pid) FROM (SELECT ${\ slice_worker($q, 0)} AS pid
	                                                      UNION ALL SELECT ${\ slice_worker($q, 1)}) x
	                     JOIN pg_stat_activity a ON a.pid = x.pid AND a.backend_type = 'streaming query'},
		'2', "$q: $what")
	  or diag(sql(q{SELECT string_agg(pid || ' ' || query, ', ') FROM pg_stat_activity WHERE backend_type = 'streaming query'}),
		"\n", sql(q{SELECT string_agg(q.name || ' ' || s.slice || ' ' || coalesce(CASE s.slice WHEN 0 THEN q.worker_pid ELSE s.worker_pid END::text, '-'), ', ')
		              FROM streaming.queries q JOIN streaming.query_slices s ON s.query = q.id}));
}

# --- round 1 runs freely on one worker, then a second one starts: the
# first gives up a slice of each query, and goes on waiting for the input
# of the others
produce_round(40);
consumed('agg', 'round 1 consumed by one worker');
consumed('proj', 'round 1 consumed by one worker');
is(sql(qq{SELECT count(DISTINCT pid) || ' ' || count(pid) FROM (VALUES (${\ slice_worker('agg', 0)}), (${\ slice_worker('agg', 1)}),
                                                    (${\ slice_worker('proj', 0)}), (${\ slice_worker('proj', 1)})) w (pid)}),
	'1 4', 'one worker holds the four slices');
sql(q{ALTER SYSTEM SET streaming.workers_per_database = 2});
$node->reload;
for my $q ('agg', 'proj')
{
	spread($q, 'a second worker took one of its slices');
	is(sql(qq{SELECT string_agg(DISTINCT duration_ms->>'slice', ',') FROM streaming.progress WHERE query = '$q'}),
		'0,1', "$q: progress has batches of slice 0 and of slice 1");
}

my $lock;
my $held = qq{SELECT count(*) FROM pg_stat_activity a
               WHERE a.query = 'streaming micro-batch: agg'
                 AND ((a.pid = ${\ slice_worker('agg', 1)} AND a.wait_event = 'advisory')
                   OR (a.pid = ${\ slice_worker('agg', 0)} AND a.wait_event_type = 'Lock'
                       AND a.wait_event <> 'advisory'))};

# --- round 2: slice 1 merging, slice 0 decoded and waiting; SIGKILL slice 1
$lock = $node->background_psql('postgres');
$lock->query_safe('SELECT pg_advisory_lock(4242)');
produce_round(40);
wait_for($held, '2', 'round 2: slice 1 of agg is held in its merge, slice 0 waits for the merge lock');
my $pid = sql(slice_worker('agg', 1));
kill 'KILL', $pid;
$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
eval { $lock->quit; };
consumed('agg', 'round 2 consumed after the kill');
consumed('proj', 'round 2 consumed after the kill');

# --- round 3: SIGKILL slice 1's worker in the middle of a batch of agg
produce_round(40);
$pid = sql(q{SELECT batch_of('agg', 1)});
ok($pid ne '', 'round 3: a batch of slice 1 of agg runs');
kill 'KILL', $pid if $pid ne '';
$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
consumed('agg', 'round 3 consumed after the kill');
consumed('proj', 'round 3 consumed after the kill');

# --- round 4: immediate shutdown with both slices' batches in flight
spread('agg', 'after the restarts its two slices are held by two live workers again');
$lock = $node->background_psql('postgres');
$lock->query_safe('SELECT pg_advisory_lock(4242)');
produce_round(40);
wait_for($held, '2', 'round 4: slice 1 of agg is held in its merge, slice 0 waits for the merge lock');
$node->stop('immediate');
eval { $lock->quit; };
$node->start;
consumed('agg', 'round 4 consumed after the immediate stop');
consumed('proj', 'round 4 consumed after the immediate stop');

# --- round 5: SIGKILL slice 0's worker in the middle of a batch of proj
produce_round(40);
$pid = sql(q{SELECT batch_of('proj', 0)});
ok($pid ne '', 'round 5: a batch of slice 0 of proj runs');
kill 'KILL', $pid if $pid ne '';
$node->poll_query_until('postgres', 'SELECT true') or die "server did not recover";
consumed('agg', 'round 5 consumed after the kill');
consumed('proj', 'round 5 consumed after the kill');
my $log = slurp_file($node->logfile);
my @killed = ($log =~ /streaming query.*terminated by signal 9/g);
is(scalar(@killed), 3, 'three workers were killed by SIGKILL');
# a worker that lets go of a slice keeps what the other slices it runs use
unlike($log, qr/"streaming query" \(PID \d+\) exited with exit code 1/, 'no worker exited on an error');

# --- round 6: agg stopped, each slice run in this session
sql(q{SELECT streaming.stop('agg')});
my @before = @produced;
produce_round(40);
# a slice's 160 messages, 20 a batch: 8 batches (bounded, should a slice
# read what it does not commit)
is(sql(q{SELECT streaming.run('agg', 100, slice => 1)}), '8', 'run(slice => 1) runs 8 batches');
is(sql(q{SELECT string_agg(partition || '=' || "offset", ' ' ORDER BY partition) FROM streaming.offsets WHERE query = 'agg'}),
	join(' ', map { "ev:$_=" . ($_ % 2 ? $produced[$_] : $before[$_]) } 0 .. $partitions - 1),
	'run(slice => 1) read the odd partitions to their end and none of the even ones');
is(sql(q{SELECT streaming.run('agg', 100, slice => 0)}), '8', 'run(slice => 0) runs 8 batches');
consumed('agg', 'round 6 consumed by run() of each slice');
consumed('proj', 'round 6 consumed');
close $all;

# --- the batches: ids without gaps, each of one slice, over its partitions
for my $q ('agg', 'proj')
{
	is(sql(qq{SELECT count(*) = count(DISTINCT batch_id) AND min(batch_id) = 0
	                 AND max(batch_id) = count(*) - 1
	                 AND max(batch_id) = (SELECT last_batch_id FROM streaming.queries WHERE name = '$q')
	            FROM streaming.progress WHERE query = '$q'}),
		't', "$q: batch ids 0 .. last_batch_id, each once in progress");
	ok(sql(qq{SELECT count(*) FROM streaming.progress WHERE query = '$q'}) >= $total / 20,
		"$q: as many batches as max_offsets_per_trigger makes at least");
	is(sql(qq{SELECT sum(input_rows) || ' ' || sum(dead_letters) FROM streaming.progress WHERE query = '$q'}),
		"$total 0", "$q: the input rows of the batches add up to the $total messages produced");
	is(sql(qq{SELECT count(*) FROM streaming.progress
	           WHERE query = '$q' AND (duration_ms->>'slice') IS DISTINCT FROM '0' AND (duration_ms->>'slice') IS DISTINCT FROM '1'}),
		'0', "$q: every batch says its slice");
	is(sql(qq{SELECT count(*) FROM streaming.progress p, jsonb_object_keys(p.sources->0->'end_offset') key
	           WHERE p.query = '$q' AND split_part(key, ':', 2)::int % 2 <> (p.duration_ms->>'slice')::int}),
		'0', "$q: every batch read only its slice's partitions");
	is(sql(qq{SELECT count(*) FROM (
	            SELECT (p.sources->0->'start_offset'->>key)::bigint AS s,
	                   lag((p.sources->0->'end_offset'->>key)::bigint, 1, 0::bigint)
	                     OVER (PARTITION BY key ORDER BY p.batch_id) AS prev
	              FROM streaming.progress p, jsonb_object_keys(p.sources->0->'end_offset') key
	             WHERE p.query = '$q') r WHERE s <> prev}),
		'0', "$q: a partition's offset ranges follow one another in batch order, from 0");
}
is(sql(q{SELECT late_rows_total FROM streaming.queries WHERE name = 'agg'}), '0', 'agg: no row was late');
is(sql(q{SELECT coalesce(sum(state_rows_dropped_by_watermark), 0) FROM streaming.progress WHERE query = 'agg'}),
	'0', 'agg: no batch dropped a late row');

# --- the results, compared with plain SQL over the messages produced
sql(qq{
	CREATE TABLE input (p int, o bigint, ts timestamptz, k text, v int);
	COPY input FROM '$input' WITH (FORMAT csv);
});
is(sql(q{SELECT count(*) || ' ' || count(DISTINCT (p, o)) FROM input}), "$total $total", 'the input has every message once');
my $reference = q{
	SELECT tstzrange(date_bin('10 seconds', ts, '2026-01-01'), date_bin('10 seconds', ts, '2026-01-01') + interval '10 seconds') AS w,
	       k, count(*) AS n, sum(v) AS s, max(v) AS top
	  FROM input GROUP BY 1, 2};
ok(sql("SELECT count(*) FROM ($reference) r") > 100, 'agg: more than a hundred groups');
is(sql('SELECT count(*) FROM agg'), sql("SELECT count(*) FROM ($reference) r"), 'agg: as many groups as plain SQL');
is(sql("SELECT count(*) FROM (($reference) EXCEPT ALL SELECT w, k, n, s, top FROM agg) d"), '0',
	'agg: no group missing or different');
is(sql("SELECT count(*) FROM (SELECT w, k, n, s, top FROM agg EXCEPT ALL ($reference)) d"), '0', 'agg: no group twice');
is(sql('SELECT count(*) FROM proj'), $total, 'proj: a row per message');
is(sql('SELECT count(*) FROM (SELECT p, o, ts, k, v FROM proj EXCEPT ALL SELECT * FROM input) d'), '0',
	'proj: no row that was not produced, none twice');
is(sql('SELECT count(*) FROM (SELECT * FROM input EXCEPT ALL SELECT p, o, ts, k, v FROM proj) d'), '0',
	'proj: no message missing');
is(sql(q{SELECT status FROM streaming.queries WHERE name = 'proj'}), 'running', 'proj still runs');

$kafka->quit;
$node->stop;
done_testing();
