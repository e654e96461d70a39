# The health of a table source's replication slot: a slot that holds more
# WAL than max_wal_size shows as behind in streaming.status.condition, one
# whose WAL the server removed (max_slot_wal_keep_size) as lost, and a
# batch of its query fails with an error that says what happened and what
# to do.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use StreamingTest;

# segments of 1 MB: a few MB of WAL cross the limits below
my $node = StreamingTest::logical_node('slots', qq{
streaming.autostart = off
min_wal_size = 2MB
max_wal_size = 4MB
max_slot_wal_keep_size = 10MB
}, extra => ['--wal-segsize=1']);

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{
	CREATE EXTENSION streaming;
	CREATE TABLE events (id int, v int);
	CREATE TABLE filler (id int, pad text);
	SELECT streaming.create_source('events_s', 'table', options => '{"table": "public.events"}');
	SELECT streaming.create_query('copied', $$SELECT id, v FROM events_s$$);
	SELECT streaming.run('copied');
	INSERT INTO events SELECT g, g FROM generate_series(1, 10) g;
	SELECT streaming.run('copied');
});
is(sql(q{SELECT count(*) FROM copied}), '10', 'the query has read the table');
my $slot = sql(q{SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'});
is(sql(q{SELECT wal_status FROM pg_replication_slots}), 'reserved', 'its slot is healthy');
is(sql(q{SELECT condition FROM streaming.status WHERE name = 'copied'}), '', '... and there is no condition');

# write_wal(MB): about that much WAL, none of it for the query's table
sub write_wal
{
	my ($mb) = @_;
	sql(qq{INSERT INTO filler SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, $mb * 900) g;
	       SELECT pg_switch_wal(); CHECKPOINT;});
}

# 1. behind: more than max_wal_size (4 MB) kept for the slot
write_wal(6);
is(sql(q{SELECT wal_status FROM pg_replication_slots}), 'extended', 'the stopped query\'s slot falls behind');
is(sql(q{SELECT condition FROM streaming.status WHERE name = 'copied'}),
	qq{replication slot $slot of table source events_s is behind: it holds more WAL than max_wal_size},
	'the status view says so');

# 2. lost: more than max_slot_wal_keep_size (10 MB), removed at a checkpoint
write_wal(8);
is(sql(q{SELECT wal_status FROM pg_replication_slots}), 'lost', 'the slot is lost');
is(sql(q{SELECT condition FROM streaming.status WHERE name = 'copied'}),
	qq{replication slot $slot of table source events_s is lost: the server removed WAL it still needed (max_slot_wal_keep_size); the query cannot read the table any more},
	'the status view says so');
sql(q{INSERT INTO events VALUES (11, 11)});
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT streaming.run('copied')});
like($err, qr/ERROR:  replication slot "$slot" of continuous query "copied" is lost
DETAIL:  The server removed WAL that the slot still needed, from [0-9A-F]+\/[0-9A-F]+ on, because the slot held back more than max_slot_wal_keep_size; the query has read the table up to [0-9A-F]+\/[0-9A-F]+, and the changes committed after that can no longer be read.
HINT:  Drop the query and create it again; it starts from the changes committed after that. Keep the query running, or raise max_slot_wal_keep_size, so that its slot does not fall so far behind./,
	'a batch fails with an error that says what happened and what to do');
is(sql(q{SELECT count(*) FROM copied}), '10', 'the result is left as it was');

# a started query fails the same way: its worker says so in last_error
$node->append_conf('postgresql.conf', "streaming.launcher_naptime = 1\n");
$node->reload;
sql(q{SELECT streaming.start('copied')});
$node->poll_query_until('postgres', q{SELECT state = 'failed' FROM streaming.status WHERE name = 'copied'})
	or die 'the query did not fail';
like(sql(q{SELECT last_error FROM streaming.status WHERE name = 'copied'}),
	qr/^replication slot "$slot" of continuous query "copied" is lost/, 'a worker fails the query with it');

# dropping the query drops its lost slot; a new query starts afresh
sql(q{SELECT streaming.drop_query('copied')});
is(sql(q{SELECT count(*) FROM pg_replication_slots}), '0', 'drop_query drops the lost slot');
sql(q{SELECT streaming.create_query('copied', $$SELECT id, v FROM events_s$$);
      SELECT streaming.run('copied');
      INSERT INTO events VALUES (12, 12);
      SELECT streaming.run('copied');});
is(sql(q{SELECT string_agg(id::text, ',') FROM copied}), '12', 'a query created again reads what follows');

$node->stop;
done_testing();
