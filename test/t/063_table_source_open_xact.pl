# A table source's worker reads what is committed while another
# transaction stays open.  The WAL flushed so far may end inside a record
# of that transaction (here a logical message of 20 kB, which spans pages:
# the WAL writer flushes the pages it fills), and nothing flushes the rest
# before it commits.  A worker that waited for the rest held back the rows
# committed before it until something else flushed the WAL: another commit,
# or here the bgwriter's next snapshot of running transactions, 13-14 s
# later.  Each round commits a row and, at once, opens such a transaction,
# and waits 5 s for the row to reach the query while it is open.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = StreamingTest::logical_node('open_xact', qq{
streaming.launcher_naptime = 1
streaming.idle_poll = 100
# the WAL writer flushes the filled pages of the open transaction's record
# before the worker's next look at the table
wal_writer_delay = 10ms
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{
	CREATE EXTENSION streaming;
	CREATE TABLE events (id int);
	SELECT streaming.create_source('events_s', 'table', options => '{"table": "public.events"}');
	SELECT streaming.create_query('copied', $$SELECT id FROM events_s$$);
});
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'}, '1',
	'the worker made the slot');

# commit_then_hold: a row committed, then, in the transaction that follows
# at once, the message written and the transaction held open
sql(q{
	CREATE PROCEDURE commit_then_hold(v int) LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO events VALUES (v);
		COMMIT;
		PERFORM pg_logical_emit_message(true, 'open', repeat('x', 20000));
		PERFORM pg_sleep(120);
	END $$;
});
for my $round (1 .. 3)
{
	# the worker looks at the table every 100 ms by now
	sleep 1;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', "CALL commit_then_hold($round)" ],
		'>', \$out, '2>', \$err);
	# within 5 s: without its rest, the WAL writer flushes the message at
	# the bgwriter's next snapshot of running transactions (15 s)
	my $got = '';
	for (1 .. 50)
	{
		$got = sql(q{SELECT count(*) FROM copied});
		last if $got eq $round;
		usleep(100_000);
	}
	is($got, $round, "round $round: the row committed before the open transaction reaches the query within 5 s");
	my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL commit_then_hold%' AND state = 'active'});
	ok($pid =~ /^\d+$/, "round $round: ... while that transaction is open");
	sql(qq{SELECT pg_cancel_backend($pid)}) if $pid =~ /^\d+$/;
	$h->finish;
}

is(sql(q{SELECT string_agg(id::text, ',' ORDER BY id) FROM copied}), '1,2,3', 'each row once');
is(sql(q{SELECT count(*) FROM streaming.queries WHERE status = 'failed'}), '0', 'no failure');

$node->stop;
done_testing();
