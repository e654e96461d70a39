# The security model where a pool worker or the launcher is involved: the
# launcher's scanner and the pool workers, which run as a superuser,
# compute nothing in SQL that a role could redefine (alice plants operators
# and functions in public); a pool worker runs the owner's code as the
# owner under the search_path pinned at create_query, security-restricted:
# her code cannot end the worker that runs other roles' queries too, change
# its role or leave settings behind for the next query's batch; a query
# name longer than an application name is held and stopped like any other.
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

# alice's code tries to end the pool worker, to become another role, and
# to leave a setting behind for the next batch (of another role's query):
# none of it works, and her query fails alone
as('alice', q{
	CREATE FUNCTION alice_s.try_die(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN
	    PERFORM pg_terminate_backend(pg_backend_pid());
	    RETURN $1;
	END $$;
	CREATE FUNCTION alice_s.try_role(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN
	    EXECUTE 'SET ROLE postgres';
	    RETURN $1;
	END $$;
	CREATE FUNCTION alice_s.try_setting(bigint) RETURNS bigint LANGUAGE plpgsql AS $$
	BEGIN
	    PERFORM set_config('timezone', 'Pacific/Kiritimati', false);
	    PERFORM set_config('work_mem', '64kB', false);
	    RETURN $1;
	END $$;
	SET search_path = alice_s, public;
	SELECT streaming.create_query('crashy', 'SELECT try_die(value) AS v FROM ticks', trigger => '100 milliseconds');
	SELECT streaming.create_query('climber', 'SELECT try_role(value) AS v FROM ticks', trigger => '100 milliseconds');
	SELECT streaming.create_query('setter', 'SELECT try_setting(value) AS v FROM ticks', trigger => '100 milliseconds');
});
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'crashy'}, 'failed', 'a query that tries to end its worker fails');
like(sql(q{SELECT last_error FROM streaming.queries WHERE name = 'crashy'}), qr/must be a superuser to terminate superuser process/,
	'as her code may not end a process of another role');
wait_for(q{SELECT status FROM streaming.queries WHERE name = 'climber'}, 'failed', 'a query that tries SET ROLE fails');
like(sql(q{SELECT last_error FROM streaming.queries WHERE name = 'climber'}), qr/cannot set parameter "role" within security-(restricted operation|definer function)/,
	'as the batch is security-restricted');
wait_for(q{SELECT last_batch_id >= 3 FROM streaming.queries WHERE name = 'setter'}, 't', 'a query that sets settings runs');
sql(q{CREATE FUNCTION public.settings(bigint) RETURNS text LANGUAGE sql AS
	$$SELECT current_setting('timezone') || ' ' || current_setting('work_mem')$$});
my $default_tz = sql(q{SHOW timezone});
sql(q{SELECT streaming.create_query('observer', 'SELECT public.settings(value) AS s FROM alice_s.ticks', trigger => '100 milliseconds')});
wait_for(q{SELECT count(*) >= 10 FROM observer}, 't', 'a superuser\'s query runs in the same pool');
is(sql(q{SELECT string_agg(DISTINCT s, ',') FROM observer}), "$default_tz 4MB",
	'and never sees a setting of alice\'s batches');
is(sql(q{SELECT count(DISTINCT worker_pid) FROM streaming.queries WHERE name IN ('mine', 'setter', 'observer')}), '1',
	'all three in the one pool worker of the database');
as('alice', q{SELECT streaming.drop_query('crashy'); SELECT streaming.drop_query('climber'); SELECT streaming.drop_query('setter')});
sql(q{SELECT streaming.drop_query('observer')});
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
wait_for(qq{SELECT count(*) > 0 FROM alice_s."$long"}, 't', 'and runs');

as('alice', qq{SELECT streaming.stop('$long')});
is(sql(qq{SELECT state, worker_pid IS NULL FROM streaming.status WHERE name = '$long'}), 'stopped|t',
	'stop() returns once no worker holds it');
as('alice', qq{SELECT streaming.start('$long')});
wait_for(qq{SELECT state, worker_pid IS NOT NULL FROM streaming.status WHERE name = '$long'}, 'running|t',
	'start() has a worker take it again');

$node->stop;
done_testing();
