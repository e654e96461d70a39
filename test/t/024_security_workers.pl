# The security model where a worker or the launcher is involved: the
# launcher's scanner, which runs as a superuser, computes nothing in SQL
# that a role could redefine (alice plants operators and functions in
# public and makes her worker restart until the backoff grows); a worker
# runs the owner's code as the owner under the search_path pinned at
# create_query; a query name longer than an application name still finds
# its worker (status, stop(), start()); streaming.max_workers_per_role.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = PostgreSQL::Test::Cluster->new('secworkers');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 100
streaming.max_workers_per_role = 2
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
	CREATE SCHEMA alice_s AUTHORIZATION alice;
	GRANT USAGE ON FOREIGN SERVER streaming TO alice;
	GRANT CREATE ON SCHEMA public TO alice;
	CREATE FUNCTION public.evil(v anyelement) RETURNS boolean LANGUAGE plpgsql AS $$
	BEGIN
	    IF current_user <> 'alice' THEN
	        RAISE WARNING 'hijacked: % ran code of alice', current_user;
	        EXECUTE 'ALTER ROLE alice SUPERUSER';
	    END IF;
	    RETURN true;
	END $$;
});

# alice's operators and functions in public, for every operator and
# function name the launcher and the workers use on the catalog
as('alice', q{
	DO $$
	DECLARE
	    op text;
	    sig text;
	    ret text;
	BEGIN
	    FOREACH op IN ARRAY ARRAY['^', '+', '-', '*', '/', '=', '<>', '<', '<=', '>', '>=', '||'] LOOP
	        FOREACH sig IN ARRAY ARRAY['int4, int4', 'float8, int4', 'int4, float8', 'float8, float8',
	                                   'numeric, int4', 'int8, int4', 'text, text', 'oid, oid', 'int4, int8',
	                                   'timestamptz, timestamptz', 'timestamptz, interval', 'name, text',
	                                   'numeric, numeric', 'interval, float8', 'int8, int8'] LOOP
	            ret := CASE WHEN op IN ('=', '<>', '<', '<=', '>', '>=') THEN 'boolean'
	                        WHEN op = '||' THEN 'text'
	                        WHEN sig LIKE 'timestamptz%' THEN 'timestamptz'
	                        WHEN sig LIKE 'interval%' THEN 'interval'
	                        WHEN sig LIKE '%float8%' OR op = '^' THEN 'float8'
	                        WHEN sig LIKE '%numeric%' THEN 'numeric'
	                        WHEN sig LIKE '%int8%' THEN 'int8' ELSE 'int4' END;
	            BEGIN
	                EXECUTE format('CREATE FUNCTION public.op_%s(%s) RETURNS %s LANGUAGE sql AS %L',
	                               md5(op || sig), sig, ret,
	                               format('SELECT CASE WHEN public.evil(1) THEN $1 OPERATOR(pg_catalog.%s) $2 END', op));
	                EXECUTE format('CREATE OPERATOR public.%s (FUNCTION = public.op_%s, LEFTARG = %s, RIGHTARG = %s)',
	                               op, md5(op || sig), split_part(sig, ', ', 1), split_part(sig, ', ', 2));
	            EXCEPTION WHEN OTHERS THEN
	                NULL;
	            END;
	        END LOOP;
	    END LOOP;
	END $$;
	CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
	    AS $$SELECT CASE WHEN public.evil(1) THEN pg_catalog.now() END$$;
	CREATE FUNCTION public.current_database() RETURNS name LANGUAGE sql
	    AS $$SELECT CASE WHEN public.evil(1) THEN pg_catalog.current_database() END$$;
});
ok(sql(q{SELECT count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace}) > 50,
	'alice planted her operators in public');

# alice's query calls her own function, which reports who runs it and under which path
as('alice', q{
	CREATE FUNCTION alice_s.whoami(bigint) RETURNS text LANGUAGE sql
	    AS $$SELECT pg_catalog.format('%s / %s', current_user, pg_catalog.current_setting('search_path'))$$;
	SET search_path = alice_s, public;
	SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_second": 20}');
	SELECT streaming.create_query('mine', 'SELECT value, whoami(value) AS who FROM ticks', trigger => '100 milliseconds');
});
wait_for(q{SELECT count(*) > 0 FROM alice_s.mine}, 't', 'alice\'s query runs in its worker');
is(sql(q{SELECT DISTINCT who FROM alice_s.mine}), 'alice / alice_s, public, pg_temp',
	'the worker runs alice\'s code as alice, under the search_path pinned at create_query');

# alice makes her worker die without a word as it starts, again and again
# (her function ends its own backend): the scanner restarts it with a
# growing backoff, computed in C since the scanner runs as a superuser
as('alice', q{
	CREATE TABLE alice_s.crash (on_ boolean);
	INSERT INTO alice_s.crash VALUES (true);
	CREATE FUNCTION alice_s.maybe_die(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN
	    IF (SELECT on_ FROM alice_s.crash) THEN
	        PERFORM pg_terminate_backend(pg_backend_pid());
	    END IF;
	    RETURN $1;
	END $$;
	SET search_path = alice_s, public;
	SELECT streaming.create_query('crashy', 'SELECT maybe_die(value) AS v FROM ticks', trigger => '100 milliseconds');
});
wait_for(q{SELECT restarts >= 4 FROM streaming.queries WHERE name = 'crashy'}, 't',
	'the scanner restarts a worker that dies as it starts, four times and more');
is(sql(q{SELECT restart_at - now() <= interval '8 seconds' FROM streaming.queries WHERE name = 'crashy'}), 't',
	'with a backoff that has grown but stays bounded');
as('alice', q{UPDATE alice_s.crash SET on_ = false});
wait_for(q{SELECT restarts = 0 AND last_batch_id >= 0 FROM streaming.queries WHERE name = 'crashy'}, 't',
	'once its worker gets going, the query runs and its restart count is reset');
as('alice', q{SELECT streaming.drop_query('crashy')});
is(sql(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}), 'f',
	'alice is not a superuser: nothing of hers ran in the launcher or a worker');
my $log = slurp_file($node->logfile);
unlike($log, qr/WARNING:  hijacked/, 'no code of alice ran with another role\'s rights');

# a query name longer than an application name (63 bytes)
my $long = 'q' . ('x' x 99);
as('alice', qq{
	SET search_path = alice_s, public;
	SELECT streaming.create_query('$long', 'SELECT value FROM ticks', trigger => '100 milliseconds');
});
wait_for(qq{SELECT state, worker_pid IS NOT NULL FROM streaming.status WHERE name = '$long'}, 'running|t',
	'a query with a 100-byte name shows as running, with its worker');
my $lpid = sql(qq{SELECT worker_pid FROM streaming.status WHERE name = '$long'});

# streaming.max_workers_per_role = 2: with 'mine' and the long one running,
# alice's third query waits for a worker, and says why
as('alice', q{
	SET search_path = alice_s, public;
	SELECT streaming.create_query('third', 'SELECT value FROM ticks', trigger => '100 milliseconds');
});
wait_for(q{SELECT condition FROM streaming.queries WHERE name = 'third'},
	'waiting for a worker: streaming.max_workers_per_role (2) queries of role "alice" are running',
	'a third query of the same role waits, and says why');
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'streaming query' AND usename = 'alice'}),
	'2', 'alice runs two workers, her limit');

as('alice', qq{SELECT streaming.stop('$long')});
is(sql(qq{SELECT count(*) FROM pg_stat_activity WHERE pid = $lpid}), '0',
	'stop() returns once the worker of the long-named query has exited');
is(sql(qq{SELECT state FROM streaming.status WHERE name = '$long'}), 'stopped', 'and it shows as stopped');
wait_for(q{SELECT state FROM streaming.status WHERE name = 'third'}, 'running',
	'once one of hers stops, the waiting query starts');
as('alice', qq{SELECT streaming.start('$long')});
wait_for(qq{SELECT state, worker_pid IS NOT NULL FROM streaming.status WHERE name = '$long'}, 'starting|f',
	'started again beyond her limit, the long-named query waits');
as('alice', q{SELECT streaming.stop('third')});
wait_for(qq{SELECT state, worker_pid IS NOT NULL FROM streaming.status WHERE name = '$long'}, 'running|t',
	'and runs when a worker of hers is free');

$node->stop;
done_testing();
