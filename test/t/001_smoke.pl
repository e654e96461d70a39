# Smoke test: the library preloads, the extension installs at its default
# version (0.5, through 0.1 and the update scripts) with its catalog; and a
# database at version 0.1, with a query that has run, updates with ALTER
# EXTENSION to 0.2, 0.3, 0.4 and then 0.5, and the query goes on where it
# stopped.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('smoke');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION streaming');

is( $node->safe_psql(
		'postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'streaming'"),
	'0.5',
	'extension version is 0.5');

is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'streaming' AND c.relkind = 'r'
		   AND c.relname IN ('sources', 'queries', 'offsets', 'progress', 'dead_letters')}),
	'5',
	'catalog tables sources, queries, offsets, progress and dead_letters exist');

# ---- ALTER EXTENSION streaming UPDATE from 0.1, with a query that ran
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
my $sql = sub { $node->safe_psql('upgraded', $_[0]) };
$sql->(q{CREATE EXTENSION streaming VERSION '0.1'});
$sql->(q{
	SELECT streaming.create_source('ticks', 'rate',
	         options => '{"rows_per_batch": 10, "start_timestamp": "2024-01-01 00:00:00+00",
	                      "advance_millis_per_batch": 1000}');
	SELECT streaming.create_query('per_parity',
	         $$SELECT value % 2 AS parity, count(*) AS n, sum(value) AS total, avg(value) AS mean
	             FROM ticks GROUP BY 1$$, output_mode => 'complete', start => false);
});

# the library serves the old catalog until it is updated
is($sql->(q{SELECT streaming.run('per_parity', 2)}), '2', 'before the update, the query runs');

$sql->(q{ALTER EXTENSION streaming UPDATE TO '0.2'});
is($sql->(q{SELECT extversion FROM pg_extension WHERE extname = 'streaming'}), '0.2',
	'ALTER EXTENSION streaming UPDATE TO 0.2 reaches 0.2');
is($sql->(q{SELECT search_path FROM streaming.queries}), 'pg_catalog, pg_temp',
	'a query created before the update runs under the catalog search_path');
is($sql->(q{SELECT streaming.run('per_parity', 3)}), '3', 'the query runs after the update');

# 0.2 -> 0.3: the catalog gains the totals, closed_until and streaming.errors
$sql->(q{ALTER EXTENSION streaming UPDATE TO '0.3'});
is($sql->(q{SELECT extversion FROM pg_extension WHERE extname = 'streaming'}), '0.3',
	'ALTER EXTENSION streaming UPDATE TO 0.3 reaches 0.3');
is($sql->(q{SELECT streaming.run('per_parity', 2)}), '2', 'the query runs after the update to 0.3');
is($sql->(q{SELECT input_rows_total, last_batch_id FROM streaming.queries}), '20|6',
	'the totals count from the update on (2 batches of 10 rows)');
$sql->(q{SELECT streaming.alter_query('per_parity', trigger => '1 second')});
is($sql->(q{SELECT trigger FROM streaming.queries}), '1 second',
	'alter_query works on a query created at 0.1');
is($sql->(q{SELECT state, input_rows_total FROM streaming.status}), 'stopped|20',
	'the status view has the columns of 0.3');
# 7 batches of 10 values: 0 .. 69
is($sql->(q{SELECT string_agg(format('%s:%s:%s:%s', parity, n, total, mean), ' ' ORDER BY parity) FROM per_parity}),
	$sql->(q{SELECT string_agg(format('%s:%s:%s:%s', parity, n, total, mean), ' ' ORDER BY parity)
	           FROM (SELECT v % 2 AS parity, count(*) AS n, sum(v) AS total, avg(v) AS mean
	                   FROM generate_series(0::bigint, 69) v GROUP BY 1) s}),
	'the result equals plain SQL over the 70 rows of 7 batches: every row once, before and after the update');

# 0.3 -> 0.4: reset_query() gains start_from; reset_query(name) still works
$sql->(q{ALTER EXTENSION streaming UPDATE TO '0.4'});
is($sql->(q{SELECT extversion FROM pg_extension WHERE extname = 'streaming'}), '0.4',
	'ALTER EXTENSION streaming UPDATE TO 0.4 reaches 0.4');
is($sql->(q{SELECT streaming.run('per_parity', 1)}), '1', 'the query runs after the update to 0.4');
# 8 batches of 10 values: 0 .. 79
is($sql->(q{SELECT string_agg(format('%s:%s:%s', parity, n, total), ' ' ORDER BY parity) FROM per_parity}),
	$sql->(q{SELECT string_agg(format('%s:%s:%s', parity, n, total), ' ' ORDER BY parity)
	           FROM (SELECT v % 2 AS parity, count(*) AS n, sum(v) AS total
	                   FROM generate_series(0::bigint, 79) v GROUP BY 1) s}),
	'after the update to 0.4 the result equals plain SQL over the 80 rows of 8 batches');
$sql->(q{SELECT streaming.reset_query('per_parity')});
is($sql->(q{SELECT streaming.run('per_parity', 1)}), '1', 'reset_query(name) resets, as at 0.3');
$sql->(q{SELECT streaming.reset_query('per_parity', start_from => 'earliest')});
is($sql->(q{SELECT streaming.run('per_parity', 2)}), '2', 'reset_query(name, start_from) of 0.4');
# the rate source starts again from its first row: 2 batches, 0 .. 19
is($sql->(q{SELECT string_agg(format('%s:%s:%s', parity, n, total), ' ' ORDER BY parity) FROM per_parity}),
	$sql->(q{SELECT string_agg(format('%s:%s:%s', parity, n, total), ' ' ORDER BY parity)
	           FROM (SELECT v % 2 AS parity, count(*) AS n, sum(v) AS total
	                   FROM generate_series(0::bigint, 19) v GROUP BY 1) s}),
	'after a reset from the earliest the result is rebuilt from the first row');

# 0.4 -> 0.5: the status view's condition says how the query's replication
# slots (table sources) fare; with none, nothing changes
my $status_columns = q{SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
                        WHERE attrelid = 'streaming.status'::regclass};
my $columns_04 = $sql->($status_columns);
# 0.4 -> 0.5: the sources' watermarks are kept in streaming.source_watermarks;
# before the update, event_time over several sources is refused
$sql->(q{
	SELECT streaming.create_source('ticks2', 'rate',
	         options => '{"rows_per_batch": 5, "start_timestamp": "2024-01-01 00:00:00+00",
	                      "advance_millis_per_batch": 1000}');
});
my $both_ticks = q{SELECT streaming.create_query('both_ticks',
	         $$SELECT streaming.window(timestamp, '1 second') AS w, count(*) AS n
	             FROM (SELECT timestamp FROM ticks UNION ALL SELECT timestamp FROM ticks2) u GROUP BY 1$$,
	         output_mode => 'append', event_time => 'timestamp', watermark => '0 seconds', start => false)};
my ($rc, $out, $err) = $node->psql('upgraded', $both_ticks);
like($err, qr/needs version 0.5 of the extension's catalog/, 'before the update to 0.5, event_time over several sources is refused');
$sql->('ALTER EXTENSION streaming UPDATE');
is($sql->(q{SELECT extversion FROM pg_extension WHERE extname = 'streaming'}), '0.5',
	'ALTER EXTENSION streaming UPDATE reaches 0.5');
$sql->($both_ticks);
is($sql->(q{SELECT streaming.run('both_ticks', 3)}), '3', 'a query over two sources with event time runs at 0.5');
is($sql->(q{SELECT string_agg(format('%s:%s', source, max_event_time = watermark), ' ' ORDER BY source::text)
              FROM streaming.source_watermarks WHERE query = 'both_ticks'}),
	'ticks:t ticks2:t', 'each source has its watermark in streaming.source_watermarks');
is($sql->(q{SELECT q.watermark = (SELECT min(w.watermark) FROM streaming.source_watermarks w WHERE w.query = q.name)
              FROM streaming.queries q WHERE q.name = 'both_ticks'}),
	't', "the query's watermark is the least of its sources'");
$sql->(q{SELECT streaming.drop_query('both_ticks')});
is($sql->($status_columns), $columns_04, 'the status view keeps the columns of 0.4');
like($sql->(q{SELECT pg_get_viewdef('streaming.status'::regclass)}), qr/pg_replication_slots/,
	'the status view of 0.5 reads the replication slots');
is($sql->(q{SELECT streaming.run('per_parity', 1)}), '1', 'the query runs after the update to 0.5');
# 0.4 -> 0.5: parallelism; a query from before has one slice
is($sql->(q{SELECT parallelism FROM streaming.queries WHERE name = 'per_parity'}), '1',
	'a query created before 0.5 has parallelism 1');
($rc, $out, $err) = $node->psql('upgraded', q{SELECT streaming.run('per_parity', 1, slice => 0)});
like($err, qr/has no slice 0/, 'run() of a slice of a query with parallelism 1 is refused');
# 0.4 -> 0.5: window_start, the state key of windowed aggregates created from now on
is($sql->(q{SELECT streaming.window_start('2024-01-01 00:00:07+00', '5 seconds') = '2024-01-01 00:00:05+00'}), 't',
	'streaming.window_start() of 0.5');
is($sql->(q{SELECT state, condition IS NULL, input_rows_total FROM streaming.status}), 'stopped|t|30',
	'its status, without a condition (30 rows since the reset)');

# the updated catalog is the one a fresh install has (but for the state
# tables and input views of queries)
my $catalog = q{
	SELECT string_agg(d, E'\n' ORDER BY d) FROM (
	  SELECT format('%s.%s %s', c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)) AS d
	    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
	   WHERE c.relnamespace = 'streaming'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	         AND c.relname NOT LIKE 'state\_%' AND c.relname NOT LIKE 'input\_%'
	  UNION ALL
	  SELECT format('policy %s on %s: %s', polname, polrelid::regclass, pg_catalog.pg_get_expr(polqual, polrelid))
	    FROM pg_catalog.pg_policy
	  UNION ALL
	  SELECT format('view %s %s: %s', c.relname, c.reloptions, pg_catalog.pg_get_viewdef(c.oid))
	    FROM pg_catalog.pg_class c WHERE c.relnamespace = 'streaming'::regnamespace AND c.relkind = 'v'
	         AND c.relname NOT LIKE 'input\_%'
	  UNION ALL
	  SELECT format('function %s %s %s', p.oid::regprocedure, p.proconfig, p.prosecdef)
	    FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'streaming'::regnamespace
	  UNION ALL
	  SELECT format('rls %s %s', relname, relrowsecurity) FROM pg_catalog.pg_class
	   WHERE relnamespace = 'streaming'::regnamespace AND relkind = 'r' AND relname NOT LIKE 'state\_%'
	  UNION ALL
	  SELECT format('index %s', pg_catalog.pg_get_indexdef(i.indexrelid))
	    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
	   WHERE c.relnamespace = 'streaming'::regnamespace AND c.relname NOT LIKE 'state\_%'
	  UNION ALL
	  SELECT format('trigger %s', pg_catalog.pg_get_triggerdef(t.oid))
	    FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
	   WHERE c.relnamespace = 'streaming'::regnamespace AND NOT t.tgisinternal
	  UNION ALL
	  SELECT format('dumped %s', x::regclass)
	    FROM pg_catalog.pg_extension e, unnest(e.extconfig) x WHERE e.extname = 'streaming'
	  UNION ALL
	  SELECT format('grant %s %s', c.relname, c.relacl)
	    FROM pg_catalog.pg_class c WHERE c.relnamespace = 'streaming'::regnamespace
	         AND c.relname NOT LIKE 'state\_%' AND c.relname NOT LIKE 'input\_%') s};
is($sql->($catalog), $node->safe_psql('postgres', $catalog),
	'the updated catalog equals a fresh install\'s');

$node->stop;
done_testing();
