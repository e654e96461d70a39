# Table sources with option "snapshot": a query's first batch is the rows
# the table holds, read under a snapshot taken after the query's slot was
# made; the stream then skips the transactions that snapshot saw.  Tables
# filled beforehand take writes from pgbench clients (inserts into one,
# inserts, updates and deletes into the other) while the queries are
# created and started, so that transactions commit between the slot and
# the snapshot, and during the first batch; the first batch of one query
# is killed with SIGKILL (it takes a new snapshot when it runs again).  At
# the end each result equals plain SQL over its whole table, row for row:
# the rows from before the query, those written around its snapshot, and
# those after, each once.  A query restored on another server reads all
# that its new slot receives: the old server's snapshot filters nothing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;

use StreamingTest;

my $node = StreamingTest::logical_node('table_snapshot', qq{
streaming.launcher_naptime = 1
streaming.idle_poll = 50
streaming.workers_per_database = 3
restart_after_crash = on
max_connections = 40
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{
	CREATE EXTENSION streaming;
	-- 10 ms every 200th row: a first batch of 100 000 rows takes five seconds
	CREATE FUNCTION slow(int) RETURNS boolean LANGUAGE sql
		AS $$SELECT CASE WHEN $1 % 200 = 0 THEN pg_sleep(0.01) IS NOT NULL ELSE true END$$;
	CREATE TABLE events (id bigserial PRIMARY KEY, client int NOT NULL, n int NOT NULL);
	INSERT INTO events (client, n) SELECT g % 10, g FROM generate_series(1, 100000) g;
	CREATE TABLE ledger (id bigserial PRIMARY KEY, branch int NOT NULL, amount int);
	ALTER TABLE ledger REPLICA IDENTITY FULL;
	INSERT INTO ledger (branch, amount) SELECT g % 7, g % 1000 FROM generate_series(1, 3000) g;
	SELECT streaming.create_source('events_s', 'table',
		options => '{"table": "public.events", "snapshot": true}');
	SELECT streaming.create_source('ledger_s', 'table',
		options => '{"table": "public.ledger", "changes": "all", "snapshot": true}');
});

my $script = $node->basedir . '/write.sql';
open my $fh, '>', $script or die "$script: $!";
print $fh <<'EOF';
\set k random(1, 1000)
\set r random(1, 6000)
INSERT INTO events (client, n) SELECT :client_id, g FROM generate_series(1, 1 + :k % 20) g;
INSERT INTO ledger (branch, amount) VALUES (:k % 7, :k);
UPDATE ledger SET branch = (branch + 1) % 7, amount = CASE WHEN amount % 5 = 0 THEN NULL ELSE amount + 1 END
  WHERE id = :r;
DELETE FROM ledger WHERE id = :r + 1;
EOF
close $fh;
my ($out, $err) = ('', '');
my $clients = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-T', '8', '-f', $script, $node->connstr('postgres') ],
	'>', \$out, '2>', \$err);
usleep(500_000);

# the queries are created and started while the clients write; the copy's
# first batch, 100 000 rows through a slow filter, is killed
sql(q{
	SELECT streaming.create_query('copied', $$SELECT id, client, n FROM events_s WHERE slow(n)$$);
	SELECT streaming.create_query('per_branch',
		$$SELECT branch, count(*) AS rows, sum(amount) AS total, count(DISTINCT amount) AS amounts
		    FROM ledger_s GROUP BY branch$$,
		output_mode => 'update');
});
wait_for(q{SELECT count(*) > 0 FROM pg_stat_activity
            WHERE query = 'streaming micro-batch: copied' AND state = 'active' AND wait_event = 'PgSleep'},
	't', 'the first batch of "copied" runs');
ok(sql(q{SELECT count(*) FROM streaming.offsets WHERE query = 'copied'}) == 0,
	'... before any batch of it committed');
kill 'KILL', sql(q{SELECT pid FROM pg_stat_activity WHERE query = 'streaming micro-batch: copied' LIMIT 1});
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
$clients->finish;

# more writes after the restart, then a last row in each table
$clients = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-T', '3', '-f', $script, $node->connstr('postgres') ],
	'>', \$out, '2>', \$err);
$clients->finish;
sql(q{INSERT INTO events (client, n) VALUES (1000, 1); INSERT INTO ledger (branch, amount) VALUES (100, 1)});
wait_for(q{SELECT count(*) FROM copied WHERE client = 1000}, '1', 'every row reached "copied"');
wait_for(q{SELECT count(*) FROM per_branch WHERE branch = 100}, '1', 'every change reached "per_branch"');
ok(sql('SELECT count(*) FROM events') > 100000, 'the clients inserted rows');
my @killed = (slurp_file($node->logfile) =~ /streaming query.*terminated by signal 9/g);
is(scalar(@killed), 1, 'the first batch was killed once');

is(sql('SELECT count(*) FROM copied'), sql('SELECT count(*) FROM events'), 'copied: as many rows as the table');
is(sql(q{SELECT count(*) FROM (SELECT id, client, n FROM events EXCEPT ALL SELECT id, client, n FROM copied) x}),
	'0', 'copied: none lost, from before the query, around its snapshot or after');
is(sql(q{SELECT count(*) FROM (SELECT id, client, n FROM copied EXCEPT ALL SELECT id, client, n FROM events) x}),
	'0', 'copied: none twice');
is(sql(q{SELECT (sources->0->>'snapshot_rows')::bigint > 100000 FROM streaming.progress
          WHERE query = 'copied' AND batch_id = 0}), 't', 'its first batch read the table\'s rows');
is(sql(q{SELECT count(*) FROM (
		(SELECT branch, count(*) AS rows, sum(amount) AS total, count(DISTINCT amount) AS amounts
		   FROM ledger GROUP BY branch
		 EXCEPT ALL SELECT branch, rows, total, amounts FROM per_branch)
		UNION ALL
		(SELECT branch, rows, total, amounts FROM per_branch
		 EXCEPT ALL SELECT branch, count(*), sum(amount), count(DISTINCT amount) FROM ledger GROUP BY branch)) x}),
	'0', 'per_branch: with the rows from before taken back when deleted, equal to plain SQL, group for group');
is(sql(q{SELECT count(*) FROM per_branch}), sql(q{SELECT count(DISTINCT branch) FROM ledger}),
	'per_branch: one row per group of the table');

# A query restored on another server starts at its new slot; the snapshot
# recorded with its position is the old server's, whose xids and LSN mean
# nothing there: the new slot's transactions are all read.  The old
# server's WAL goes well past what the new one will write, and its xids
# too, so that a snapshot applied to the new slot would skip its rows.
sql(q{CREATE DATABASE depot});
$node->safe_psql('depot', q{
	CREATE EXTENSION streaming;
	CREATE TABLE crates (id int, label text);
	INSERT INTO crates SELECT g, 'old ' || g FROM generate_series(1, 10) g;
	SELECT streaming.create_source('crates_s', 'table', options => '{"table": "public.crates", "snapshot": true}');
	SELECT streaming.create_query('crates_copy', $$SELECT id, label FROM crates_s$$, start => false);
	-- a query that has not run yet when dumped
	CREATE TABLE boxes (id int, label text);
	INSERT INTO boxes VALUES (1, 'old');
	SELECT streaming.create_source('boxes_s', 'table', options => '{"table": "public.boxes", "snapshot": true}');
	SELECT streaming.create_query('boxes_copy', $$SELECT id, label FROM boxes_s$$, start => false);
});
for (1 .. 3)
{
	$node->safe_psql('depot', q{CREATE TABLE wal_filler (x int); DROP TABLE wal_filler; SELECT pg_switch_wal()});
}
$node->safe_psql('depot', q{SELECT streaming.run('crates_copy')});
my $dump = $node->basedir . '/depot.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('depot') ], 'pg_dump of a snapshot query');

my $other = StreamingTest::logical_node('table_snapshot_restored', qq{
streaming.autostart = off
});
$other->safe_psql('postgres', 'CREATE DATABASE depot');
$other->command_ok([ 'pg_restore', '--exit-on-error', '-d', $other->connstr('depot'), $dump ],
	'pg_restore on another server');
sub restored { return $other->safe_psql('depot', $_[0]); }
my ($old_lsn, $old_xmin) = split /\|/, restored(q{
	SELECT '0/0'::pg_lsn + max("offset") FILTER (WHERE partition = 'snapshot_lsn'),
	       max("offset") FILTER (WHERE partition = 'snapshot_xmin')
	  FROM streaming.offsets WHERE query = 'crates_copy'});
my ($rc, $rout, $rerr) = $other->psql('depot', q{SELECT streaming.run('crates_copy')});
like($rerr, qr/reads table public.crates from its new replication slot/, 'the restored query starts at its new slot');
restored(q{INSERT INTO crates SELECT g, 'new ' || g FROM generate_series(11, 15) g});
restored(q{SELECT streaming.run('crates_copy')});
is(restored(qq{SELECT pg_current_wal_lsn() < '$old_lsn' AND txid_current() < $old_xmin}),
	't', 'the old snapshot\'s LSN and xmin are beyond the new server\'s');
is(restored(q{SELECT count(*) FROM crates_copy}), '15', 'the rows inserted on the new server are read');
restored(q{INSERT INTO crates VALUES (16, 'new 16')});
restored(q{SELECT streaming.run('crates_copy')});
is(restored(q{SELECT (SELECT count(*) FROM crates_copy) - (SELECT count(*) FROM crates)}), '0',
	'restored query: as many rows as the table');
is(restored(q{SELECT count(*) FROM (
		(SELECT * FROM crates EXCEPT ALL SELECT * FROM crates_copy)
		UNION ALL (SELECT * FROM crates_copy EXCEPT ALL SELECT * FROM crates)) x}),
	'0', 'restored query: row for row the table, each row once');
# the first batch of a restored query that had not run is its snapshot;
# its source depends on the table's columns again from then on
restored(q{SELECT streaming.run('boxes_copy')});
is(restored(q{SELECT count(*) FROM boxes_copy}), '1', 'a restored query that had not run reads the table');
($rc, $rout, $rerr) = $other->psql('depot', q{ALTER TABLE boxes DROP COLUMN label});
like($rerr, qr/cannot drop column label of table boxes because other objects depend on it/,
	'... and its source depends on the table\'s columns again');
$other->stop;

$node->stop;
done_testing();
