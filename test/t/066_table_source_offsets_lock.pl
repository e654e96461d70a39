# A worker's quiet look at a table-source query reads where the committed
# batches stopped from streaming.offsets before the batch locks the query's
# row.  A lock on streaming.offsets held for longer than ten seconds (a
# VACUUM FULL or CLUSTER of it, a LOCK TABLE, any of those queued behind a
# long pg_dump) must not leave the worker waiting there: a worker whose
# batch has run that long is taken to be stuck, and another worker takes
# the queries whose rows are not locked, which would then find the slot
# held.  The look does not wait for the lock (the batch runs and waits
# under the query's row lock), so each query stays with its worker, and
# nothing fails.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

use StreamingTest;

my $node = StreamingTest::logical_node('offlock', qq{
streaming.launcher_naptime = 1
streaming.idle_poll = 100
streaming.workers_per_database = 3
autovacuum = off
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{
	CREATE EXTENSION streaming;
	CREATE TABLE ev (id int);
	CREATE TABLE ev2 (id int);
	SELECT streaming.create_source('s', 'table', options => '{"table": "public.ev"}');
	SELECT streaming.create_source('s2', 'table', options => '{"table": "public.ev2"}');
	SELECT streaming.create_source('tk', 'rate', options => '{"rows_per_second": 1}');
	SELECT streaming.create_query('q', $$SELECT id FROM s$$);
	SELECT streaming.create_query('q2', $$SELECT id FROM s2$$);
	-- a third worker, idle between hourly batches, free to take queries
	SELECT streaming.create_query('qr', $$SELECT count(*) AS n FROM tk$$,
		output_mode => 'complete', trigger => '1 hour');
	SELECT streaming.start('q');
	SELECT streaming.start('q2');
	SELECT streaming.start('qr');
});
wait_for(q{SELECT count(DISTINCT worker_pid) FROM streaming.queries WHERE status = 'running'},
	'3', 'three workers, one query each');
sql(q{INSERT INTO ev VALUES (1); INSERT INTO ev2 VALUES (1)});
wait_for(q{SELECT (SELECT count(*) FROM q) + (SELECT count(*) FROM q2)}, '2', 'first rows read');
# both queries quiet again: their workers look without a batch
sleep 1;
my $pids = sql(q{SELECT string_agg(name || ' ' || worker_pid, ', ' ORDER BY name) FROM streaming.queries});

# streaming.offsets locked for 15 s, past the 10 s after which a worker
# seems stuck
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
		'BEGIN; LOCK streaming.offsets IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(15); COMMIT;' ],
	'>', \$out, '2>', \$err);
$h->finish;
is($err, '', 'the lock was held and let go of');
sleep 2;
is(sql(q{SELECT string_agg(name || ' ' || worker_pid, ', ' ORDER BY name) FROM streaming.queries}),
	$pids, 'each query stays with its worker');
sql(q{INSERT INTO ev VALUES (2); INSERT INTO ev2 VALUES (2)});
wait_for(q{SELECT (SELECT count(*) FROM q) + (SELECT count(*) FROM q2)}, '4',
	'rows inserted after the lock are read');
is(sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM q}) . ' ' .
	sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM q2}),
	'1,2 1,2', 'each row once');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE status <> 'running' OR last_error IS NOT NULL}),
	'0', 'no query failed');
$node->stop;
done_testing();
