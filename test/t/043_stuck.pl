# The activity 'stuck' of streaming.status, with streaming.stuck_after (the
# floor of how long a batch may run, or input wait without progress, before
# a query is called stuck) at 2 seconds: a worker whose batch waits for a
# lock another session holds on the result table is stuck, then idle or
# waiting once the lock goes; a query whose Kafka input waits while every
# batch fails (and is retried) is stuck, then goes on when batches succeed.
# Also: a running worker takes alter_query's output_mode and sink_options
# at its next batch.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $kafka = StreamingTest::Broker->start('stuck_in:1');
my $bootstrap = $kafka->bootstrap;

my $node = PostgreSQL::Test::Cluster->new('stuck');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 100
});
$node->start;

my $base = $node->basedir;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{CREATE EXTENSION streaming});
is(sql(q{SHOW streaming.stuck_after}), '1min', 'streaming.stuck_after is one minute by default');
sql(q{ALTER SYSTEM SET streaming.stuck_after = '2s'; SELECT pg_reload_conf()});
wait_for(q{SHOW streaming.stuck_after}, '2s', 'set to 2 seconds');

# ------------------------------------------------------------------------
# A batch that waits for a lock on the result table
# ------------------------------------------------------------------------
my $dir = "$base/in";
mkdir $dir;
put_file($dir, '1,10', '2,20');
sql(qq{
	SELECT streaming.create_source('ev', 'file', 'k int, v int', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('per_k', 'SELECT k, count(*) AS n FROM ev GROUP BY k', output_mode => 'update');
});
wait_for(q{SELECT string_agg(k || ':' || n, ' ' ORDER BY k) FROM per_k}, '1:1 2:1', 'the worker runs the first batch');
wait_for(q{SELECT activity FROM streaming.status WHERE name = 'per_k'}, 'idle',
	'with nothing to read, the query is idle');

my $locker = $node->background_psql('postgres');
$locker->query_safe(q{BEGIN; LOCK TABLE per_k IN SHARE MODE});
put_file($dir, '1,1', '3,3');
wait_for(q{SELECT wait_event_type FROM pg_stat_activity WHERE backend_type = 'streaming query' AND state = 'active'},
	'Lock', 'the worker\'s batch waits for the lock');
wait_for(q{SELECT activity FROM streaming.status WHERE name = 'per_k'}, 'stuck',
	'after 2 seconds, a batch that waits is stuck');
is(sql(q{SELECT batch_running_for > interval '2 seconds' AND state = 'running' FROM streaming.status WHERE name = 'per_k'}),
	't', 'its batch has run for more than 2 seconds, and the query is running');
# a session may set its own floor: at 10 minutes the same batch is processing
is(sql(q{SET streaming.stuck_after = '10min'; SELECT activity FROM streaming.status WHERE name = 'per_k'}),
	'processing', 'the view reads streaming.stuck_after of the session that reads it');
is(sql(q{SELECT string_agg(k || ':' || n, ' ' ORDER BY k) FROM per_k}), '1:1 2:1',
	'the waiting batch has written nothing');

$locker->query_safe(q{COMMIT});
wait_for(q{SELECT string_agg(k || ':' || n, ' ' ORDER BY k) FROM per_k}, '1:2 2:1 3:1',
	'once the lock goes, the batch commits');
wait_for(q{SELECT activity IN ('idle', 'waiting') FROM streaming.status WHERE name = 'per_k'}, 't',
	'and the query is no longer stuck');
wait_for(q{SELECT activity FROM streaming.status WHERE name = 'per_k'}, 'idle', 'then idle');
$locker->quit;
sql(q{SELECT streaming.drop_query('per_k'); SELECT streaming.drop_source('ev')});

# ------------------------------------------------------------------------
# alter_query's output_mode and sink_options reach a running worker at its
# next batch: a console sink showing 1 row per batch in update mode, then 2
# rows of the whole result in complete mode
# ------------------------------------------------------------------------
my $dir2 = "$base/in2";
mkdir $dir2;
sql(qq{
	SELECT streaming.create_source('ev2', 'file', 'k int, v int', '{"path": "$dir2", "format": "csv"}');
	SELECT streaming.create_query('shown', 'SELECT k, count(*) AS n FROM ev2 GROUP BY k', output_mode => 'update',
		sink => 'console', sink_options => '{"num_rows": 1}');
});
my $log_at = -s $node->logfile;
put_file($dir2, '1,1', '2,2', '3,3');
wait_for(sub { slurp_file($node->logfile, $log_at) =~ /streaming query "shown", batch \d+:.*?only showing top 1 rows/s ? 1 : 0 },
	1, 'update mode, num_rows 1: the worker shows 1 of the 3 rows its batch changed');
sql(q{SELECT streaming.alter_query('shown', output_mode => 'complete', sink_options => '{"num_rows": 2}')});
$log_at = -s $node->logfile;
put_file($dir2, '4,4');
wait_for(sub { slurp_file($node->logfile, $log_at) =~ /streaming query "shown", batch \d+:.*?only showing top 2 rows/s ? 1 : 0 },
	1, 'after alter_query, complete mode and num_rows 2: the next batch shows 2 rows of the whole result');
is(sql(q{SELECT string_agg(k || ':' || n, ' ' ORDER BY k) FROM shown}), '1:1 2:1 3:1 4:1',
	'and the result table holds every group');
sql(q{SELECT streaming.drop_query('shown'); SELECT streaming.drop_source('ev2')});

# ------------------------------------------------------------------------
# Input that waits while every batch fails: ten messages, five per batch,
# and a trigger on the result table that fails batches (as a serialization
# failure, which the worker retries) while fail_batches says so
# ------------------------------------------------------------------------
$kafka->cmd("produce stuck_in 0 $_") for 1 .. 10;
sql(qq{
	CREATE TABLE fail_batches (on_ boolean);
	INSERT INTO fail_batches VALUES (false);
	SELECT streaming.create_source('kin', 'kafka', 'value text',
		'{"bootstrap_servers": "$bootstrap", "topic": "stuck_in", "format": "text",
		  "starting_offsets": "earliest", "max_offsets_per_trigger": 5}');
	SELECT streaming.create_query('kcount', 'SELECT count(*) AS n FROM kin', output_mode => 'complete',
		start => false);
	CREATE FUNCTION fail_batch() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF (SELECT on_ FROM fail_batches) THEN
			RAISE EXCEPTION 'batches fail for now' USING ERRCODE = 'serialization_failure';
		END IF;
		RETURN NEW;
	END \$\$;
	CREATE TRIGGER fail_batch BEFORE INSERT OR UPDATE ON kcount FOR EACH ROW EXECUTE FUNCTION fail_batch();
});
is(sql(q{SELECT streaming.run('kcount', 1)}), '1', 'one batch of five messages, in this session');
is(sql(q{SELECT n || ' ' || backlog FROM kcount, streaming.status WHERE name = 'kcount'}), '5 5',
	'five messages counted, five waiting');
sql(q{UPDATE fail_batches SET on_ = true; SELECT streaming.start('kcount')});
wait_for(q{SELECT condition FROM streaming.queries WHERE name = 'kcount'}, 'batches fail for now',
	'the worker\'s batches fail, and are retried');
wait_for(q{SELECT activity FROM streaming.status WHERE name = 'kcount'}, 'stuck',
	'with input waiting and no progress for 2 seconds, the query is stuck');
is(sql(q{SELECT state || ' ' || backlog || ' ' || (since_last_progress > interval '2 seconds') FROM streaming.status WHERE name = 'kcount'}),
	'running 5 true', 'running, five messages waiting, no progress for more than 2 seconds');
sql(q{UPDATE fail_batches SET on_ = false});
wait_for(q{SELECT n FROM kcount}, '10', 'once batches succeed, the waiting input is counted');
wait_for(q{SELECT activity IN ('idle', 'waiting') FROM streaming.status WHERE name = 'kcount'}, 't',
	'and the query is no longer stuck');
is(sql(q{SELECT backlog FROM streaming.status WHERE name = 'kcount'}), '0', 'nothing waits');

sql(q{SELECT streaming.drop_query('kcount'); SELECT streaming.drop_source('kin')});
$kafka->quit;
$node->stop;
done_testing();
