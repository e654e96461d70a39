-- The aggregation query surface: several aggregates with FILTER side by
-- side, expressions over aggregates, HAVING.  After every batch each
-- query's result table is compared, both ways and with counts, with the
-- same SELECT run by plain PostgreSQL over a table holding the same rows.
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/agg_expressions && mkdir -p /tmp/streaming_regress/agg_expressions';
SELECT streaming.create_source('ev', 'file', 'a text, p int, x int, f float8, ts timestamptz',
         '{"path": "/tmp/streaming_regress/agg_expressions", "format": "csv", "max_files_per_trigger": 1}');
-- the same rows, for plain PostgreSQL
CREATE TABLE all_ev (a text, p int, x int, f float8, ts timestamptz);

-- the queries under test: $src is the source for the query, the plain table
-- for the reference
CREATE TABLE cases (name text PRIMARY KEY, sql text, cols text);
CREATE FUNCTION add_case(name text, sql text, mode text, cols text DEFAULT '*',
                         event_time text DEFAULT NULL, watermark interval DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(sql, '$src', 'ev'), output_mode => mode,
                                   event_time => event_time, watermark => watermark);
    INSERT INTO cases VALUES (name, sql, cols);
END $$;

-- rows of the result table and of the reference, both projected to cols:
-- how many each holds and how many of each are missing from the other
CREATE FUNCTION compare(q text, reference_having text DEFAULT NULL)
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c cases;
    ref text;
    res text;
BEGIN
    SELECT * INTO c FROM cases WHERE name = q;
    ref := format('SELECT %s FROM (%s) r', c.cols, replace(c.sql, '$src', 'all_ev'));
    IF reference_having IS NOT NULL THEN
        ref := format('SELECT %s FROM (%s) r WHERE %s', c.cols, replace(c.sql, '$src', 'all_ev'), reference_having);
    END IF;
    res := format('SELECT %s FROM %I r', c.cols, q);
    query := q;
    EXECUTE format('SELECT count(*) FROM (%s) x', res) INTO result_rows;
    EXECUTE format('SELECT count(*) FROM (%s) x', ref) INTO reference_rows;
    EXECUTE format('SELECT count(*) FROM (%s EXCEPT ALL %s) x', ref, res) INTO missing;
    EXECUTE format('SELECT count(*) FROM (%s EXCEPT ALL %s) x', res, ref) INTO extra;
    RETURN NEXT;
END $$;

-- batch n: 60 rows over groups a..e and NULL, unevenly; p in [0, 20000), x small,
-- f exact in binary, ts one second apart from minute n on
-- (written in ISO 8601: a source reads event times in no other way)
CREATE FUNCTION feed(n int) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
DECLARE
    file text := format('/tmp/streaming_regress/agg_expressions/%s.csv', n);
BEGIN
    EXECUTE format($f$COPY (SELECT CASE WHEN g %% 11 = 0 THEN NULL ELSE chr(97 + ((g * g + %s * g) / 3 + %s) %% 5) END,
                                  (g * 7919 + %s * 104729) %% 20000,
                                  CASE WHEN g %% 13 = 0 THEN NULL ELSE (g * 31 + %s) %% 17 - 4 END,
                                  ((g * 37 + %s) %% 64) / 4.0,
                                  timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => %s * 60 + g)
                             FROM generate_series(1, 60) g) TO %L WITH (FORMAT csv)$f$,
                   n, n, n, n, n, n, file);
    EXECUTE format('COPY all_ev FROM %L WITH (FORMAT csv)', file);
END $$;

-- runs one batch of every query
CREATE FUNCTION run_all() RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT streaming.run(name, 1) FROM cases ORDER BY name
$$;

-- 1. several aggregates with FILTER side by side
SELECT add_case('filter_counts',
  $$SELECT a, count(*) FILTER (WHERE p < 10000) AS r1, count(*) FILTER (WHERE p >= 10000) AS r2
      FROM $src GROUP BY a$$, 'update');
SELECT add_case('filter_mixed',
  $$SELECT a, sum(x) FILTER (WHERE p < 10000) AS s, count(*) FILTER (WHERE p >= 10000) AS n,
           avg(x) FILTER (WHERE p % 2 = 0) AS av, variance(x) FILTER (WHERE p % 3 = 0) AS var,
           stddev_pop(f) FILTER (WHERE x > 0) AS sd, bit_or(p) FILTER (WHERE x < 3) AS bits,
           min(f) FILTER (WHERE p > 5000) AS lo, bool_or(x > 10) FILTER (WHERE p < 15000) AS big,
           count(x) FILTER (WHERE f > 4) AS nx
      FROM $src GROUP BY a$$, 'complete',
  'a, s, n, av, round(var, 12) AS var, round(sd::numeric, 9) AS sd, bits, lo, big, nx');
SELECT add_case('filter_global',
  $$SELECT count(*) FILTER (WHERE a IS NULL) AS no_a, sum(p) FILTER (WHERE a = 'b') AS pb,
           count(*) FILTER (WHERE a = 'c') AS nc
      FROM $src$$, 'update');
SELECT step, statement FROM streaming.explain('filter_counts') WHERE step IN ('batch plan', 'aggregate');

-- 2. expressions over aggregates and group keys
SELECT add_case('expr_update',
  $$SELECT a, sum(x) / count(*) AS ratio, round(avg(x)::numeric, 2) AS avg2, max(p) - min(p) AS spread,
           CASE WHEN count(*) > 30 THEN 'many' WHEN count(*) > 15 THEN 'some' ELSE 'few' END AS size,
           count(*)::int AS n_int, (sum(x) + count(*) * 2)::text AS mix, upper(a) || ':' || count(*) AS label,
           greatest(max(x), length(a)) AS g, coalesce(sum(x), 0) + length(coalesce(a, '')) AS keyed,
           count(*) AS n, 7 AS seven
      FROM $src GROUP BY a$$, 'update');
SELECT add_case('expr_complete',
  $$SELECT count(*) AS n, sum(p)::float8 / count(*) AS mean, max(f) - min(f) AS range_f,
           stddev(x) * 2 AS sd2, variance(f) FILTER (WHERE p > 100) / 2 AS hv, bit_and(p) | 1 AS bits,
           avg(f) * count(*) = sum(f) AS consistent
      FROM $src$$, 'complete',
  'n, round(mean::numeric, 9) AS mean, range_f, round(sd2, 12) AS sd2, round(hv::numeric, 9) AS hv, bits, consistent');
SELECT add_case('expr_generic',
  $$SELECT a, round((corr(f, x) * 100)::numeric, 6) AS corr100, regr_count(f, x) + count(*) AS cnt,
           bit_or(p) & 255 AS low_bits, bit_or(p) AS all_bits
      FROM $src GROUP BY a$$, 'update');
SELECT add_case('expr_keys',
  $$SELECT a, p % 3 AS r, a || (p % 3)::text AS ak, count(*) * (p % 3) AS w, min(x) + p % 3 AS mx,
           sum(x) AS s, sum(x) AS s_again, sum(x) * 10 AS s10
      FROM $src GROUP BY a, p % 3$$, 'complete');
-- the user's own functions and operators, named with their schema in the finalizers
CREATE FUNCTION half(bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 / 2.0';
CREATE FUNCTION plus_one(bigint, bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT $1 + $2 + 1';
CREATE OPERATOR <+> (leftarg = bigint, rightarg = bigint, function = plus_one);
SELECT add_case('expr_user',
  $$SELECT a, half(count(*)) AS h, count(*) <+> sum(x) AS pp FROM $src GROUP BY a HAVING half(sum(x)) > 2$$,
  'update');
SELECT step, statement FROM streaming.explain('expr_user') WHERE step IN ('finalizer', 'having');
-- the same aggregate twice, each a column as it is: one state
SELECT add_case('expr_same',
  $$SELECT a, sum(x) AS s, count(*) AS n, sum(x) AS s_again FROM $src GROUP BY a$$, 'update');
SELECT step, statement FROM streaming.explain('expr_same') WHERE step IN ('aggregate', 'finalizer');
-- result columns are typed as plain PostgreSQL types them
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'expr_update'::regclass AND attnum > 0 ORDER BY attnum;
SELECT step, statement FROM streaming.explain('expr_keys') WHERE step IN ('aggregate', 'finalizer');

-- 3. HAVING: groups enter and leave the result as they start and stop satisfying it
SELECT add_case('having_update',
  $$SELECT a, count(*) AS n, sum(x) AS s FROM $src GROUP BY a HAVING count(*) % 2 = 0$$, 'update');
SELECT add_case('having_complete',
  $$SELECT a, p % 4 AS q, avg(f) AS af, count(*) AS n FROM $src GROUP BY a, p % 4
    HAVING min(x) < -2 OR count(*) % 3 = 0$$, 'complete');
SELECT add_case('having_keys',
  $$SELECT a, max(x) AS top FROM $src GROUP BY a HAVING a <> 'b' AND a IS NOT NULL$$, 'update');
SELECT add_case('having_global',
  $$SELECT count(*) AS n, sum(x) AS s FROM $src HAVING sum(x) % 2 = 0$$, 'update');
-- HAVING without aggregates: one group, as in plain SQL
SELECT add_case('having_only',
  $$SELECT 'seen' AS tag, 2 + 2 AS four FROM $src HAVING 1 > 0$$, 'update');
SELECT add_case('having_expr',
  $$SELECT a, sum(x) * 100 / count(*) AS pct FROM $src GROUP BY a HAVING sum(x) * 100 / count(*) > 300$$,
  'complete');
SELECT step, statement FROM streaming.explain('having_update') WHERE step IN ('finalizer', 'having', 'emit', 'statement');
-- append: a window's row is written when it closes, if it satisfies HAVING
SELECT add_case('having_append',
  $$SELECT streaming.window(ts, '1 minute') AS w, a, count(*) AS n, max(x) - min(x) AS spread
      FROM $src GROUP BY 1, 2 HAVING count(*) > 10$$, 'append', event_time => 'ts', watermark => '0 seconds');
SELECT step, statement FROM streaming.explain('having_append') WHERE step IN ('having', 'emit');
-- session windows, against the same sessions kept without HAVING or expressions
SELECT add_case('sess_plain',
  $$SELECT a, streaming.session_window(ts, '4 seconds') AS s, count(*) AS n, max(x) AS hi, min(x) AS lo
      FROM $src GROUP BY a, s$$, 'complete');
SELECT add_case('sess_having',
  $$SELECT a, streaming.session_window(ts, '4 seconds') AS s, count(*) AS n, max(x) - min(x) AS spread,
           upper(streaming.session_window(ts, '4 seconds')) - lower(streaming.session_window(ts, '4 seconds')) AS span
      FROM $src GROUP BY a, s HAVING count(*) > 1$$, 'complete');

-- every query after each of four batches
SELECT feed(1);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'having_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''having_append'')' END) c
 WHERE name NOT LIKE 'sess%' ORDER BY 1;
SELECT * FROM having_update ORDER BY a;
SELECT feed(2);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'having_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''having_append'')' END) c
 WHERE name NOT LIKE 'sess%' ORDER BY 1;
SELECT * FROM having_update ORDER BY a;
SELECT feed(3);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'having_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''having_append'')' END) c
 WHERE name NOT LIKE 'sess%' ORDER BY 1;
SELECT * FROM having_update ORDER BY a;
SELECT feed(4);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'having_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''having_append'')' END) c
 WHERE name NOT LIKE 'sess%' ORDER BY 1;
SELECT * FROM having_update ORDER BY a;
SELECT * FROM filter_counts ORDER BY a;
SELECT count(*) AS dead_letters FROM streaming.dead_letters;

-- sessions: the HAVING query holds exactly the plain query's sessions of more than one row
SELECT count(*) AS sessions, count(*) FILTER (WHERE n > 1) AS of_several FROM sess_plain;
SELECT count(*) AS differing FROM (
  (SELECT a, s, n, hi - lo AS spread, upper(s) - lower(s) AS span FROM sess_plain WHERE n > 1
   EXCEPT ALL SELECT * FROM sess_having)
  UNION ALL
  (SELECT * FROM sess_having
   EXCEPT ALL SELECT a, s, n, hi - lo, upper(s) - lower(s) FROM sess_plain WHERE n > 1)) d;

-- the progress rows count what was written to the result table
SELECT batch_id, state_rows_updated, sink_rows FROM streaming.progress
 WHERE query = 'having_update' ORDER BY batch_id;
SELECT batch_id, sink_rows FROM streaming.progress WHERE query = 'having_append' ORDER BY batch_id;

-- 4. what has no incremental form is refused at create_query
SELECT streaming.create_query('pct', $$SELECT a, percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM ev GROUP BY a$$,
         output_mode => 'update');
SELECT streaming.create_query('pct', $$SELECT a, percentile_disc(0.9) WITHIN GROUP (ORDER BY f) AS p90 FROM ev GROUP BY a$$,
         output_mode => 'complete');
SELECT streaming.create_query('pct', $$SELECT a, count(*) - mode() WITHIN GROUP (ORDER BY x) FROM ev GROUP BY a$$,
         output_mode => 'update');
SELECT streaming.create_query('pct', $$SELECT a, count(*) FROM ev GROUP BY a HAVING sum(x) > (SELECT 1)$$,
         output_mode => 'update');
SELECT streaming.create_query('pct', $$SELECT a, count(*), GROUPING(a) FROM ev GROUP BY a$$,
         output_mode => 'update');
-- a column that is functionally dependent on a grouped primary key
CREATE TABLE kinds (id text PRIMARY KEY, label text);
SELECT streaming.create_query('pct', $$SELECT k.id, k.label, count(*) FROM ev JOIN kinds k ON k.id = ev.a GROUP BY k.id$$,
         output_mode => 'update');
DROP TABLE kinds;

SELECT streaming.drop_query(name) FROM cases ORDER BY name;
SELECT streaming.drop_source('ev');
DROP TABLE all_ev, cases;
DROP OPERATOR <+> (bigint, bigint);
DROP FUNCTION add_case(text, text, text, text, text, interval), compare(text, text), feed(int), run_all(),
              half(bigint), plus_one(bigint, bigint);
DROP EXTENSION streaming;
