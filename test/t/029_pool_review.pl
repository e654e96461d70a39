# Review of the pool workers as a tenant would attack them: alice's code
# runs in the same pool worker as bob's query, and mallory, a role with no
# rights at all but LOGIN, shares the database.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('poolreview');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 100
streaming.workers_per_database = 1
max_worker_processes = 16
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub as
{
	my ($role, $query) = @_;
	return $node->safe_psql('postgres', $query, extra_params => ['-U', $role]);
}
sub wait_for { return StreamingTest::wait_for($node, @_); }

sql(q{
	CREATE EXTENSION streaming;
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE SCHEMA alice_s AUTHORIZATION alice;
	CREATE SCHEMA bob_s AUTHORIZATION bob;
	GRANT USAGE ON FOREIGN SERVER streaming TO alice, bob;
});

as('bob', q{
	CREATE FUNCTION bob_s.f(bigint) RETURNS bigint LANGUAGE sql AS 'SELECT $1';
	SET search_path = bob_s;
	SELECT streaming.create_source('bticks', 'rate', options => '{"rows_per_second": 20}');
	SELECT streaming.create_query('bq', 'SELECT value, f(value) AS v FROM bticks', trigger => '100 milliseconds');
});
wait_for(q{SELECT last_batch_id >= 3 FROM streaming.queries WHERE name = 'bq'}, 't', 'bob\'s query runs');

# 1. a batch that fails leaves no session-level advisory lock in the worker:
# alice's code takes one, then fails
as('alice', q{
	CREATE FUNCTION alice_s.leak(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN
	    PERFORM pg_advisory_lock(4242);
	    RAISE EXCEPTION 'alice fails on purpose';
	END $$;
	SET search_path = alice_s;
	SELECT streaming.create_source('aticks', 'rate', options => '{"rows_per_second": 20}');
	SELECT streaming.create_query('aq', 'SELECT value, leak(value) AS v FROM aticks', trigger => '100 milliseconds');
});
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'aq'}, 'failed', 'alice\'s query fails');
my $b0 = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'bq'});
wait_for(qq{SELECT last_batch_id >= $b0 + 5 OR status = 'failed' FROM streaming.queries WHERE name = 'bq'}, 't',
	'bob\'s query goes on');
is(sql(q{SELECT status || ' ' || coalesce(last_error, '') FROM streaming.queries WHERE name = 'bq'}), 'running ',
	'bob\'s query runs on');
is(sql(q{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	WHERE l.locktype = 'advisory' AND a.backend_type = 'streaming query'}), '0',
	'the pool worker holds no advisory lock of alice\'s failed batch');

# 2. alice's stop() cancels bob's batch: stop() finds the batch to cancel
# in pg_stat_activity, which a transaction reads once; alice reads it
# while her batch runs, lets her batch end, and calls stop() once the
# worker has gone on to bob's
as('bob', q{
	SELECT streaming.stop('bq');
	CREATE FUNCTION bob_s.slow(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN
	    PERFORM pg_sleep(0.4);
	    RETURN $1;
	END $$;
	SET search_path = bob_s;
	SELECT streaming.create_source('slowticks', 'rate', options => '{"rows_per_second": 2}');
	SELECT streaming.create_query('bslow', 'SELECT value, slow(value) AS v FROM slowticks');
});
wait_for(q{SELECT last_batch_id >= 1 FROM streaming.queries WHERE name = 'bslow'}, 't', 'bob\'s slow query runs');
my $alice = $node->background_psql('postgres', extra_params => ['-U', 'alice']);
$alice->query_safe(q{SELECT pg_advisory_lock(777)});
as('alice', q{
	CREATE FUNCTION alice_s.gate(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN
	    PERFORM pg_advisory_xact_lock(777);
	    RETURN $1;
	END $$;
	SET search_path = alice_s;
	SELECT streaming.create_query('gated', 'SELECT value, gate(value) AS v FROM aticks');
});
wait_for(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 777 AND NOT granted}, '1',
	'alice\'s batch waits for her lock');
$alice->query_safe(q{BEGIN});
$alice->query_safe(q{SELECT count(*) FROM pg_stat_activity});
$alice->query_safe(q{SELECT pg_advisory_unlock(777)});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE query = 'streaming micro-batch: bslow'}, '1',
	'the worker runs bob\'s batch');
$alice->query_safe(q{SELECT streaming.stop('gated')});
$alice->query_safe(q{COMMIT});
$alice->quit;
my $b1 = sql(q{SELECT last_batch_id FROM streaming.queries WHERE name = 'bslow'});
wait_for(qq{SELECT last_batch_id > $b1 FROM streaming.queries WHERE name = 'bslow'}, 't', 'bob\'s next batch ends');
unlike(slurp_file($node->logfile), qr/streaming query "bslow": the batch in progress was cancelled/,
	'alice\'s stop() of her query did not cancel bob\'s batch');
sql(q{SELECT streaming.start('bq')});

# 3. mallory, with no right on anything, holds the advisory lock that
# stop() and every claim of a worker need, for bob's query
my $bq_id = sql(q{SELECT id FROM streaming.queries WHERE name = 'bq'});
my $mallory = $node->background_psql('postgres', extra_params => ['-U', 'mallory']);
$mallory->query_safe("SELECT pg_advisory_lock(1937011297, $bq_id)");
my ($ret, $out, $err) = $node->psql('postgres', q{SET statement_timeout = '5s'; SELECT streaming.stop('bq')},
	extra_params => ['-U', 'bob']);
is($ret, 0, 'bob\'s stop() does not wait for a lock that mallory holds') or diag($err);
$mallory->quit;

# 4. a deferred constraint trigger on alice's result table never fires
# at commit as the worker's superuser (it would record who ran it)
as('alice', q{
	CREATE TABLE alice_s.seen (who text, restricted text);
	CREATE FUNCTION alice_s.note() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	    BEGIN
	        EXECUTE 'SET ROLE alice';
	        INSERT INTO alice_s.seen VALUES (current_user, 'no');
	    EXCEPTION WHEN OTHERS THEN
	        INSERT INTO alice_s.seen VALUES (current_user, 'yes');
	    END;
	    RETURN NULL;
	END $$;
	SET search_path = alice_s;
	SELECT streaming.create_query('deferring', 'SELECT value FROM aticks', trigger => '100 milliseconds', start => false);
	CREATE CONSTRAINT TRIGGER note AFTER INSERT ON alice_s.deferring DEFERRABLE INITIALLY DEFERRED
	    FOR EACH ROW EXECUTE FUNCTION alice_s.note();
	SELECT streaming.start('deferring');
});
wait_for(q{SELECT (SELECT count(*) > 0 FROM alice_s.seen) OR (SELECT status = 'failed' FROM streaming.queries WHERE name = 'deferring')},
	't', 'alice\'s deferred trigger fired, or her query failed');
is(sql(q{SELECT coalesce(string_agg(DISTINCT who || ' ' || restricted, ','), 'none') FROM alice_s.seen}), 'none',
	'a deferred trigger of alice\'s never runs, not as another role either');
# README: "A deferred trigger on a result table ... fails the batch instead"
is(sql(q{SELECT status FROM streaming.queries WHERE name = 'deferring'}), 'failed',
	'a batch that queued a deferred trigger fails, as the README says');
as('alice', q{SELECT streaming.drop_query('deferring')});

# 5. alice's code seeds random(): bob's next batch on the worker must not
# draw the numbers she chose
my $first = (split /\n/, sql(q{SELECT setseed(0.5); SELECT random()}))[-1];
as('alice', q{
	CREATE FUNCTION alice_s.seed(bigint) RETURNS bigint LANGUAGE sql AS 'SELECT setseed(0.5); SELECT $1';
	SET search_path = alice_s;
	SELECT streaming.create_query('seeder', 'SELECT value, seed(value) AS v FROM aticks', trigger => '100 milliseconds');
});
as('bob', q{
	CREATE FUNCTION bob_s.roll(bigint) RETURNS float8 LANGUAGE sql VOLATILE AS 'SELECT random()';
	SET search_path = bob_s;
	SELECT streaming.create_query('dice', 'SELECT value, roll(value) AS r FROM bticks', trigger => '100 milliseconds');
});
wait_for(q{SELECT count(*) >= 100 FROM bob_s.dice}, 't', 'bob\'s dice roll');
wait_for(q{SELECT count(*) >= 50 FROM alice_s.seeder}, 't', 'alice seeds');
is(sql(qq{SELECT count(*) FROM bob_s.dice WHERE r = '$first'::float8}), '0',
	'bob\'s random() never draws what alice\'s setseed() chose');
as('alice', q{SELECT streaming.drop_query('seeder')});
as('bob', q{SELECT streaming.drop_query('dice')});

$node->stop;
done_testing();
