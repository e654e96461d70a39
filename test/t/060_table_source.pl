# Table sources under load and crashes: two started queries follow a table
# while pgbench clients insert into it (single rows and transactions of
# many rows, which a small max_rows_per_trigger splits over several
# batches); a query worker is killed with SIGKILL, the server is stopped
# with -m immediate mid-stream; afterwards both results equal plain SQL
# over the table, row for row (nothing lost, nothing twice).  Meanwhile the
# clients also update and delete rows of a second table, which a source
# with changes 'all' follows: its aggregate (a DISTINCT one too), which
# takes those rows back, equals plain SQL over that table too.  drop_query drops the query's slot,
# the launcher drops an orphaned one, and a server without wal_level =
# logical says what to set.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;

use StreamingTest;

my $node = StreamingTest::logical_node('table_source', qq{
streaming.launcher_naptime = 1
streaming.idle_poll = 50
# a worker per query: a query's slot and decoding context stay with it
streaming.workers_per_database = 3
restart_after_crash = on
max_connections = 40
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{
	CREATE EXTENSION streaming;
	CREATE TABLE events (id bigserial PRIMARY KEY, client int NOT NULL, n int NOT NULL,
	                     note text);
	SELECT streaming.create_source('events_s', 'table',
		options => '{"table": "public.events", "max_rows_per_trigger": 300}');
	SELECT streaming.create_query('copied', $$SELECT id, client, n, note FROM events_s$$);
	SELECT streaming.create_query('per_client',
		$$SELECT client, count(*) AS rows, sum(n) AS total FROM events_s GROUP BY client$$,
		output_mode => 'complete');
	CREATE TABLE ledger (id bigserial PRIMARY KEY, branch int NOT NULL, amount int);
	ALTER TABLE ledger REPLICA IDENTITY FULL;
	SELECT streaming.create_source('ledger_s', 'table',
		options => '{"table": "public.ledger", "changes": "all", "max_rows_per_trigger": 300}');
	SELECT streaming.create_query('per_branch',
		$$SELECT branch, count(*) AS rows, sum(amount) AS total, avg(amount) AS mean,
		         count(DISTINCT amount) AS amounts
		    FROM ledger_s GROUP BY branch$$,
		output_mode => 'update');
});
# the workers create the slots; the streams start there
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%' AND plugin = 'streaming'},
	'3', 'each query has its slot');

# pgbench: single rows, and transactions of up to 1000 rows; in the
# ledger, an insert, an update (of the group key too, to NULL at times) and
# a delete of one row each
my $script = $node->basedir . '/insert.sql';
open my $fh, '>', $script or die "$script: $!";
print $fh <<'EOF';
\set k random(1, 1000)
\set big random(1, 20)
\set r random(1, 3000)
INSERT INTO events (client, n) VALUES (:client_id, 1);
INSERT INTO events (client, n, note) SELECT :client_id, g, CASE WHEN g % 97 = 0 THEN repeat(md5(g::text), 100) END
  FROM generate_series(1, CASE WHEN :big = 1 THEN :k ELSE 2 END) g;
INSERT INTO ledger (branch, amount) VALUES (:k % 7, :k);
UPDATE ledger SET branch = (branch + 1) % 7, amount = CASE WHEN amount % 5 = 0 THEN NULL ELSE amount + 1 END
  WHERE id = :r;
DELETE FROM ledger WHERE id = :r + 1;
EOF
close $fh;

# start_clients(SECONDS): pgbench in the background, 4 clients
sub start_clients
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	return IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-T', $seconds, '-f', $script, $node->connstr('postgres') ],
		'>', \$out, '2>', \$err);
}

sub rows { return sql('SELECT count(*) FROM events'); }

# 1. a worker killed with SIGKILL mid-stream (the server restarts its backends)
my $clients = start_clients(6);
sleep 2;
# a transaction of 5000 rows: 17 batches of 300; one that updates a third
# of the ledger
sql(q{INSERT INTO events (client, n) SELECT 99, g FROM generate_series(1, 5000) g});
sql(q{UPDATE ledger SET amount = amount + 1, branch = (branch + 3) % 7 WHERE id % 3 = 0});
usleep(300_000);
my $pid = sql(q{SELECT worker_pid FROM streaming.queries WHERE name = 'copied'});
ok($pid =~ /^\d+$/, 'the worker of "copied" runs');
my $before = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'copied'});
kill 'KILL', $pid;
$clients->finish;    # its connections went with the crash
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';

# 2. an immediate stop mid-stream
$clients = start_clients(6);
sleep 2;
sql(q{INSERT INTO events (client, n) SELECT 98, g FROM generate_series(1, 3000) g});
usleep(200_000);
$node->stop('immediate');
$clients->finish;
$node->start;

# 3. more clients after the restart, then let the queries catch up
$clients = start_clients(3);
$clients->finish;
my $total = rows();
ok($total > 8000, "clients inserted rows ($total)");

wait_for(q{SELECT count(*) FROM copied}, $total, 'every row reached the stateless query');
is(sql(q{SELECT count(*) FROM (SELECT id, client, n, note FROM events EXCEPT ALL
                               SELECT id, client, n, note FROM copied) x}), '0', '... none lost');
is(sql(q{SELECT count(*) FROM (SELECT id, client, n, note FROM copied EXCEPT ALL
                               SELECT id, client, n, note FROM events) x}), '0', '... none twice');
is(sql(q{SELECT count(*) FROM copied WHERE note IS NOT NULL}),
	sql(q{SELECT count(*) FROM events WHERE note IS NOT NULL}), '... toasted values too');
wait_for(q{SELECT sum(rows) FROM per_client}, $total, 'every row reached the aggregating query');
is(sql(q{SELECT count(*) FROM (
		(SELECT client, count(*) AS rows, sum(n) AS total FROM events GROUP BY client
		 EXCEPT ALL SELECT client, rows, total FROM per_client)
		UNION ALL
		(SELECT client, rows, total FROM per_client
		 EXCEPT ALL SELECT client, count(*), sum(n) FROM events GROUP BY client)) x}),
	'0', 'the aggregate equals plain SQL over the table, group for group');
# the ledger: a row committed after every other change of it, once in the
# result, says that they all reached the query
sql(q{INSERT INTO ledger (branch, amount) VALUES (100, 1)});
wait_for(q{SELECT count(*) FROM per_branch WHERE branch = 100}, '1', 'every change reached the retracting query');
is(sql(q{SELECT count(*) FROM (
		(SELECT branch, count(*) AS rows, sum(amount) AS total, avg(amount) AS mean,
		        count(DISTINCT amount) AS amounts FROM ledger GROUP BY branch
		 EXCEPT ALL SELECT branch, rows, total, mean, amounts FROM per_branch)
		UNION ALL
		(SELECT branch, rows, total, mean, amounts FROM per_branch
		 EXCEPT ALL SELECT branch, count(*), sum(amount), avg(amount), count(DISTINCT amount)
		              FROM ledger GROUP BY branch)) x}),
	'0', 'with deletes and updates taken back, the aggregate equals plain SQL over the table, group for group');
ok(sql(q{SELECT sum((sources->0->>'deletes')::int) > 100 AND sum((sources->0->>'updates')::int) > 1000
           FROM streaming.progress WHERE query = 'per_branch'}),
	'... after many deletes and updates');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE name = 'per_branch' AND status = 'failed'}), '0',
	'... and no failure');
sql(q{SELECT streaming.drop_query('per_branch')});
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'}, '2',
	'drop_query drops the slot of the retracting query');

ok(sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'copied'}) > $before + 15,
	'large transactions were read in several batches');
is(sql(q{SELECT count(*) FROM streaming.progress
          WHERE query = 'copied' AND input_rows > 300}), '0', 'no batch took more than max_rows_per_trigger');

# the slot follows what committed batches recorded
wait_for(q{SELECT s.confirmed_flush_lsn >= '0/0'::pg_lsn + o."offset"
		FROM streaming.queries q
		JOIN streaming.offsets o ON o.query = q.name AND o.partition = 'lsn'
		JOIN pg_replication_slots s ON s.slot_name = pg_catalog.format('streaming_%s_%s_%s',
			(SELECT oid FROM pg_database WHERE datname = current_database()), q.id, o.source::oid)
		WHERE q.name = 'copied'}, 't', 'the slot is confirmed up to what the committed batches recorded');

# drop_query drops the query's slot
# (a worker that the launcher restarted meanwhile may still hold it: then
# the launcher drops it once that worker is gone)
sql(q{SELECT streaming.drop_query('per_client')});
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'}, '1',
	'drop_query drops its slot');

# the launcher drops a slot whose query is gone - one of its own plugin:
# a slot someone else made under a name like its own is left alone
sql(q{SELECT pg_create_logical_replication_slot(
		pg_catalog.format('streaming_%s_%s_%s', (SELECT oid FROM pg_database WHERE datname = current_database()),
		                  99999, 'events_s'::regclass::oid), 'streaming')});
sql(q{SELECT pg_create_logical_replication_slot(
		pg_catalog.format('streaming_%s_%s_%s', (SELECT oid FROM pg_database WHERE datname = current_database()),
		                  99998, 'events_s'::regclass::oid), 'test_decoding')});
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%\_99999\_%'}, '0',
	'the launcher drops the orphaned slot');
is(sql(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'}), '2',
	'and only it');
ok($node->log_contains(qr/dropped replication slot "streaming_\d+_99999_\d+": its continuous query no longer exists/),
	'... and says so');
is(sql(q{SELECT plugin FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%\_99998\_%'}), 'test_decoding',
	'a slot of another plugin is not its own');
sql(q{SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE plugin = 'test_decoding'});

sql(q{SELECT streaming.drop_query('copied')});
wait_for(q{SELECT count(*) FROM pg_replication_slots}, '0', 'no slot is left');
$node->stop;

# without wal_level = logical, create_source says what to set
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'\nwal_level = replica\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION streaming; CREATE TABLE t (id int)');
my ($ret, $out, $err) = $plain->psql('postgres',
	q{SELECT streaming.create_source('t_s', 'table', options => '{"table": "public.t"}')});
like($err, qr/table sources need wal_level = logical.*HINT:  Set wal_level = logical in postgresql.conf and restart the server/s,
	'without wal_level = logical: an error that says what to set');
$plain->append_conf('postgresql.conf', "wal_level = logical\n");
$plain->restart;
($ret, $out, $err) = $plain->psql('postgres',
	q{SELECT streaming.create_source('t_s', 'table', options => '{"table": "public.t"}')});
like($err, qr/table sources need "streaming" in output_plugin_libraries.*HINT:  Add streaming to output_plugin_libraries/s,
	'without the plugin allowed: an error that says what to set');
$plain->stop;

done_testing();
