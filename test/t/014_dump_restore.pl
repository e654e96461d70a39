# pg_dump carries a continuous query whole: its source, definition, result
# and state tables, and its offsets.  After a restore into another database
# the query goes on where it stopped: nothing is read twice.  A query over
# a table source, whose position is an LSN of the old database's slot,
# starts at a new slot and says so.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

# batches are driven by run() here, not by background workers
my $node = StreamingTest::logical_node('dump', "streaming.autostart = off\n");

my $dir = $node->basedir . '/incoming';
mkdir $dir or die;
sub put
{
	my ($name, @lines) = @_;
	open my $fh, '>', "$dir/$name" or die;
	print $fh "$_\n" for @lines;
	close $fh;
}

put('1.csv', 'a,1', 'b,2', 'a,3');
# a windowed aggregate, whose state is keyed by the window's start
my $timed = $node->basedir . '/timed';
mkdir $timed or die;
sub put_timed
{
	my ($name, @lines) = @_;
	open my $fh, '>', "$timed/$name" or die;
	print $fh "$_\n" for @lines;
	close $fh;
}
put_timed('1.csv', '2024-01-01T00:00:01Z,a,1', '2024-01-01T00:00:12Z,a,2', '2024-01-01T00:00:17Z,b,3');
$node->safe_psql('postgres', qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('src', 'file', 'k text, v int', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('totals', 'SELECT k, count(*) AS n, sum(v) AS total FROM src GROUP BY k',
		output_mode => 'update');
	SELECT streaming.run('totals');
	SELECT streaming.create_source('timed', 'file', 'ts timestamptz, k text, v int', '{"path": "$timed", "format": "csv"}');
	SELECT streaming.create_query('windowed',
		\$\$SELECT streaming.window(ts, '10 seconds') AS w, k, count(*) AS n, sum(v) AS total FROM timed GROUP BY 1, 2\$\$,
		event_time => 'ts', watermark => '5 seconds', output_mode => 'update');
	SELECT streaming.run('windowed');
});
# a window as seconds after 2024-01-01 00:00 UTC, whatever the time zone
my $windowed = q{SELECT extract(epoch FROM lower(w))::int - 1704067200 || '-' ||
	extract(epoch FROM upper(w))::int - 1704067200, k, n, total FROM windowed ORDER BY 1, 2};

# a table source: 3 rows read, 1 inserted after the last batch
$node->safe_psql('postgres', q{
	CREATE TABLE orders (id int, v int);
	SELECT streaming.create_source('orders_s', 'table', options => '{"table": "public.orders"}');
	SELECT streaming.create_query('orders_copy', $$SELECT id, v FROM orders_s$$);
	SELECT streaming.run('orders_copy');
	INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);
	SELECT streaming.run('orders_copy');
	INSERT INTO orders VALUES (4, 40);
});
my $old_lsn = $node->safe_psql('postgres',
	q{SELECT '0/0'::pg_lsn + "offset" FROM streaming.offsets WHERE query = 'orders_copy' AND partition = 'lsn'});

my $dump = $node->basedir . '/db.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

is($node->safe_psql('restored', 'SELECT k, n, total FROM totals ORDER BY k'), "a|2|4\nb|1|2",
	'the result table is restored');
is($node->safe_psql('restored', q{SELECT name, output_mode, last_batch_id, state_rows FROM streaming.queries ORDER BY 1}),
	"orders_copy|append|0|0\ntotals|update|0|2\nwindowed|update|0|2", 'the query definitions and their progress are restored');
is($node->safe_psql('restored', q{SELECT count(*) FROM streaming.offsets WHERE query <> 'orders_copy'}), '2',
	'the offsets are restored');
is($node->safe_psql('restored', $windowed), "0-10|a|1|1\n10-20|a|1|2\n10-20|b|1|3",
	'the windowed result table is restored');

put('2.csv', 'b,10', 'c,5');
is($node->safe_psql('restored', "SELECT streaming.run('totals')"), '1', 'the restored query runs one batch');
is($node->safe_psql('restored', 'SELECT k, n, total FROM totals ORDER BY k'), "a|2|4\nb|2|12\nc|1|5",
	'only the new file is read after the restore');
is($node->safe_psql('restored', 'SELECT string_agg(batch_id::text, \',\' ORDER BY batch_id) FROM streaming.progress WHERE query = \'totals\''),
	'0,1', 'batch ids continue');

# the restored windowed query merges into the restored state and closes
# windows by the restored state's key (the 0-10 window closed before the dump)
put_timed('2.csv', '2024-01-01T00:00:19Z,a,5', '2024-01-01T00:00:31Z,b,1', '2024-01-01T00:00:03Z,a,100');
is($node->safe_psql('restored', "SELECT streaming.run('windowed')"), '1', 'the restored windowed query runs one batch');
is($node->safe_psql('restored', $windowed), "0-10|a|1|1\n10-20|a|2|7\n10-20|b|1|3\n30-40|b|1|1",
	'it merges into the restored state and drops the late row');
is($node->safe_psql('restored', q{SELECT state_rows, (SELECT count(*) FROM streaming.state_2) FROM streaming.queries WHERE name = 'windowed'}),
	'1|1', 'the windows the watermark closed left the state');

# the table source: no slot came along; the restored offsets hold a
# position in the WAL of the old database's slot, which means nothing in
# the restored database.  Its first run makes a slot and says where it
# starts and what it does not read
is($node->safe_psql('restored', q{SELECT count(*) FROM streaming.offsets WHERE query = 'orders_copy'}),
	'5', 'the table source\'s position and its origin are restored');
is($node->safe_psql('restored', q{SELECT count(*) FROM pg_replication_slots WHERE database = 'restored'}),
	'0', 'no slot is restored');
$node->safe_psql('restored', q{INSERT INTO orders VALUES (5, 50)});
my ($ret, $out, $err) = $node->psql('restored', q{SELECT streaming.run('orders_copy')});
is($out, '0', 'the first run after the restore reads nothing');
like($err, qr/WARNING:  continuous query "orders_copy" reads table public.orders from its new replication slot "streaming_\d+_\d+_\d+", at [0-9A-F]+\/[0-9A-F]+
DETAIL:  The query's position was recorded in another database or server \(system identifier \d+, database OID \d+\), where it had read the table up to \Q$old_lsn\E, a position that means nothing here. Changes committed to the table before the new slot was created are not read.
HINT:  After a restore, start or run the restored queries before writing to the tables they follow./,
	'it warns that it starts at the new slot, naming the old position and what it does not read');
$node->safe_psql('restored', q{INSERT INTO orders VALUES (6, 60), (7, 70)});
is($node->safe_psql('restored', "SELECT streaming.run('orders_copy')"), '1', 'the next run reads one batch');
is($node->safe_psql('restored', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM orders_copy}), '1,2,3,6,7',
	'what was read before the dump, and what was inserted after the new slot: each once');
is($node->safe_psql('restored', q{SELECT "offset" = (SELECT oid FROM pg_database WHERE datname = 'restored')
	FROM streaming.offsets WHERE query = 'orders_copy' AND partition = 'database_oid'}), 't',
	'the batch recorded where its position was taken');
$node->safe_psql('restored', q{INSERT INTO orders VALUES (8, 80)});
($ret, $out, $err) = $node->psql('restored', q{SELECT streaming.run('orders_copy')});
is("$out|$err", '1|', 'and goes on from there without a warning');
# the restored source depends on its table again, and on its columns
($ret, $out, $err) = $node->psql('restored', q{ALTER TABLE orders DROP COLUMN v});
like($err, qr/cannot drop column v of table orders because other objects depend on it/,
	'the restored source depends on its table\'s columns again');
# the original database reads on through its own slot
$node->safe_psql('postgres', q{INSERT INTO orders VALUES (9, 90)});
is($node->safe_psql('postgres', "SELECT streaming.run('orders_copy')"), '1', 'the original query reads on');
is($node->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM orders_copy}), '1,2,3,4,9',
	'... from its own position');
# a slot of this database dropped under a query that has read through it
# is not a restore: an error
$node->safe_psql('postgres', q{SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
	WHERE database = 'postgres'});
($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.run('orders_copy')});
like($err, qr/ERROR:  replication slot "streaming_\d+_\d+_\d+" of continuous query "orders_copy" does not exist/,
	'a slot dropped by hand fails the query');

$node->stop;
done_testing();
