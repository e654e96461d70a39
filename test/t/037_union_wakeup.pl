# A pool worker running a query over sources that wait on different things
# looks at them again within streaming.idle_poll.  A file source waits on
# the directory watch (and asks again only after a minute), a table source
# can tell nothing: a UNION ALL of the two, idle, must still see a row
# inserted into the table within the idle poll, not at the file source's
# minute; and a file, too.  Each arrival is timed from the insert (or the
# file) to the row in the result table, against a bound far below the
# minute (the machine is shared and noisy) and above the idle poll.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

use StreamingTest;

my $node = StreamingTest::logical_node('union_wakeup', qq{
streaming.launcher_naptime = 1
});

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $dir = $node->basedir . '/files';
mkdir $dir or die;

sql(qq{
	CREATE EXTENSION streaming;
	CREATE TABLE orders (id int, note text);
	SELECT streaming.create_source('orders_s', 'table', options => '{"table": "public.orders"}');
	SELECT streaming.create_source('files_s', 'file', 'id int, note text', '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('mixed', \$\$SELECT id, note FROM orders_s UNION ALL SELECT id, note FROM files_s\$\$);
});
# the worker's first batch creates the table source's slot; the stream starts there
StreamingTest::wait_for($node, q{SELECT count(*) FROM pg_replication_slots WHERE plugin = 'streaming'},
	'1', 'the query has its slot');
StreamingTest::wait_for($node, q{SELECT status FROM streaming.queries WHERE name = 'mixed'},
	'running', 'the query runs on the pool');
# idle for a while: the worker waits between looks at the sources
sleep 2;

# time from an arrival to its row in the result table, in seconds
sub seconds_until_row
{
	my ($id, $arrive) = @_;
	my $t0 = time;
	$arrive->();
	for (1 .. 1200)
	{
		return time - $t0 if sql("SELECT count(*) FROM mixed WHERE id = $id") eq '1';
		usleep(50_000);
	}
	return 60;
}

for my $round (1 .. 3)
{
	my $id = 100 + $round;
	my $s = seconds_until_row($id, sub { sql("INSERT INTO orders VALUES ($id, 'table')") });
	cmp_ok($s, '<', 10, sprintf("round %d: a row of the table source comes through in %.1fs, not at the file source's next look", $round, $s));
	sleep 1;
	$id = 200 + $round;
	$s = seconds_until_row($id, sub { put_file($dir, "$id,file") });
	cmp_ok($s, '<', 10, sprintf('round %d: a file comes through in %.1fs', $round, $s));
	sleep 1;
}
is(sql(q{SELECT string_agg(id || ':' || note, ',' ORDER BY id) FROM mixed}),
	'101:table,102:table,103:table,201:file,202:file,203:file', 'each row once');

$node->stop;
done_testing();
