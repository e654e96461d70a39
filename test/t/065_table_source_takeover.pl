# A pool worker keeps the replication slot of the last table-source query
# it ran while it runs its other queries.  When one of those batches runs
# for more than ten seconds, another worker takes the rest of what it
# holds, the table-source query included, and finds the slot held until
# the first worker's batch ends and it lets go of the query.  That is a
# wait, not a failure: before, the query failed ("is being run by
# process ...") and stayed failed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

my $node = StreamingTest::logical_node('takeover', qq{
streaming.launcher_naptime = 1
streaming.idle_poll = 100
# one worker holds both queries
streaming.workers_per_database = 1
});

my $base = $node->basedir;
my $dir = "$base/in";
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

StreamingTest::put_file($dir, '1,10');
sql(qq{
	CREATE EXTENSION streaming;
	CREATE TABLE ev (id int);
	SELECT streaming.create_source('ev_s', 'table', options => '{"table": "public.ev"}');
	SELECT streaming.create_query('copied', 'SELECT id FROM ev_s');
	SELECT streaming.create_source('kv', 'file', 'k int, v int', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('per_k', 'SELECT k, count(*) AS n FROM kv GROUP BY k', output_mode => 'update');
});
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'}, '1',
	'the worker made the slot');
sql(q{INSERT INTO ev VALUES (1)});
wait_for(q{SELECT (SELECT count(*) FROM copied) || ' ' || (SELECT count(*) FROM per_k)}, '1 1',
	'both queries ran a batch');
my $first = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'copied'});
is(sql(q{SELECT count(DISTINCT worker_pid) FROM streaming.queries}), '1', 'on one worker');
is(sql(qq{SELECT active_pid FROM pg_replication_slots WHERE slot_name LIKE 'streaming\\_%'}), $first,
	'which holds the table source\'s slot');

# per_k's next batch waits for a lock on its result table
my $locker = $node->background_psql('postgres');
$locker->query_safe(q{BEGIN; LOCK TABLE per_k IN SHARE MODE});
StreamingTest::put_file($dir, '2,20');
wait_for(qq{SELECT wait_event_type FROM pg_stat_activity WHERE pid = $first}, 'Lock',
	'the worker\'s batch of per_k waits');

# a second worker; after ten seconds it takes what the first holds but runs
sql(q{ALTER SYSTEM SET streaming.workers_per_database = 2; SELECT pg_reload_conf()});
wait_for(qq{SELECT count(*) FROM streaming.queries WHERE name = 'copied' AND worker_pid <> $first}, '1',
	'another worker takes the table-source query from the one whose batch runs');
sql(q{INSERT INTO ev VALUES (2)});
# its batches meet the slot that the first worker still holds, a few times
sleep 3;
is(sql(q{SELECT status FROM streaming.queries WHERE name = 'copied'}), 'running',
	'the query waits for the slot, it does not fail')
  or diag(sql(q{SELECT last_error FROM streaming.queries WHERE name = 'copied'}));
like(sql(q{SELECT condition FROM streaming.queries WHERE name = 'copied'}),
	qr/replication slot "streaming_\d+_\d+_\d+" of continuous query "copied" is held by process $first/,
	'its condition says which process holds the slot');

# the first worker's batch ends; it lets go of the query and of the slot
$locker->query_safe(q{COMMIT});
$locker->quit;
wait_for(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM copied}, '1,2',
	'the new worker reads the table once the slot is free, each row once');
wait_for(q{SELECT string_agg(k || ':' || n, ',' ORDER BY k) FROM per_k}, '1:1,2:1', 'and per_k goes on');
wait_for(q{SELECT count(*) FROM streaming.queries WHERE status = 'running' AND condition IS NULL}, '2',
	'both run, with no condition');

$node->stop;
done_testing();
