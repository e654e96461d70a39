-- Aggregates over DISTINCT values: count(DISTINCT x) with and without
-- FILTER, sum/avg/variance/bit_or(DISTINCT ...), which merge the new
-- distinct values of each batch, and array_agg/string_agg(DISTINCT ...),
-- computed from the kept set.  After every batch each query's result table
-- is compared, both ways and with counts, with the same SELECT run by plain
-- PostgreSQL over a table holding the same rows.
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/distinct_agg && mkdir -p /tmp/streaming_regress/distinct_agg';
SELECT streaming.create_source('ev', 'file', 'a text, p int, x int, f float8, ts timestamptz',
         '{"path": "/tmp/streaming_regress/distinct_agg", "format": "csv", "max_files_per_trigger": 1}');
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
    file text := format('/tmp/streaming_regress/distinct_agg/%s.csv', n);
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

-- 1. per group, in each mode that allows it
SELECT add_case('d_update',
  $$SELECT a, count(DISTINCT x) AS nx, count(DISTINCT x) FILTER (WHERE p < 10000) AS nx_low,
           count(DISTINCT p % 50) AS np, sum(DISTINCT x) AS sx, avg(DISTINCT x) AS ax,
           count(*) AS n, sum(x) AS s, max(DISTINCT x) AS hi
      FROM $src GROUP BY a$$, 'update');
SELECT add_case('d_sets',
  $$SELECT a, array_agg(DISTINCT x) AS xs, string_agg(DISTINCT (p % 40)::text, ',') AS ps,
           string_agg(DISTINCT (x % 3)::text, '|') FILTER (WHERE f > 8) AS fs,
           json_agg(DISTINCT x) FILTER (WHERE x > 5) AS js
      FROM $src GROUP BY a$$, 'complete', 'a, xs, ps, fs, js::text AS js');
-- expressions over them, HAVING on them, beside ordinary aggregates
SELECT add_case('d_expr',
  $$SELECT a, p % 3 AS r, count(DISTINCT x) * 100 / count(*) AS pct,
           coalesce(array_length(array_agg(DISTINCT x), 1), 0) - count(DISTINCT x) AS nulls_kept,
           round(variance(DISTINCT x), 10) AS vx, bit_or(DISTINCT p) AS bits
      FROM $src GROUP BY a, p % 3 HAVING count(DISTINCT x) > 4$$, 'update');
SELECT add_case('d_global',
  $$SELECT count(DISTINCT a) AS na, array_agg(DISTINCT a) AS as_, count(DISTINCT x) FILTER (WHERE a IS NULL) AS nx_null,
           sum(DISTINCT p) AS sp, count(*) AS n
      FROM $src$$, 'complete');
-- windows: the distinct values of a window go when the watermark closes it
SELECT add_case('d_append',
  $$SELECT streaming.window(ts, '1 minute') AS w, a, count(DISTINCT x) AS nx,
           string_agg(DISTINCT x::text, ',') AS xs, count(*) AS n
      FROM $src GROUP BY 1, 2$$, 'append', event_time => 'ts', watermark => '0 seconds');
SELECT add_case('d_window_update',
  $$SELECT a, streaming.window(ts, '2 minutes') AS w, count(DISTINCT p % 10) AS np, sum(DISTINCT x) AS sx
      FROM $src GROUP BY 1, 2$$, 'update', event_time => 'ts', watermark => '30 seconds');
-- arguments of other types: a case-insensitive collation of the owner's
-- schema (the distinct table keeps it, so 'a' and 'A' are one value), an
-- ICU collation's order, a composite type (kept whole, not as its fields),
-- and a domain passed to the owner's aggregate without a combine function
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TYPE pair AS (a text, x int);
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE SCHEMA dist_ns;
CREATE FUNCTION dist_ns.cat_step(text, posint) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE WHEN $2 IS NULL THEN $1 ELSE coalesce($1 || '/', '') || $2::text END $$;
CREATE AGGREGATE dist_ns.dcat(posint) (sfunc = dist_ns.cat_step, stype = text);
SELECT add_case('d_types',
  $$SELECT p % 3 AS r, count(DISTINCT CASE WHEN p % 2 = 0 THEN upper(a) ELSE a END COLLATE ci) AS n_ci,
           string_agg(DISTINCT CASE WHEN p % 2 = 0 THEN upper(a) ELSE a END COLLATE "en-x-icu", ',') AS s_en,
           count(DISTINCT (a, x % 3)::pair) AS n_pair, array_agg(DISTINCT (a, x % 3)::pair) AS pairs,
           dist_ns.dcat(DISTINCT (x + 5)::posint) AS dc
      FROM $src GROUP BY p % 3$$, 'update', 'r, n_ci, s_en, n_pair, pairs::text AS pairs, dc');
SELECT step, statement FROM streaming.explain('d_types') WHERE step = 'finalizer' ORDER BY statement;
SELECT step, statement FROM streaming.explain('d_update')
 WHERE step IN ('distinct table', 'aggregate', 'batch plan') ORDER BY step, statement;
SELECT step, statement FROM streaming.explain('d_sets') WHERE step IN ('aggregate', 'finalizer') ORDER BY step, statement;
SELECT step, statement FROM streaming.explain('d_append') WHERE step IN ('distinct table', 'close');

-- distinct values kept per query, and of closed windows none
CREATE FUNCTION kept(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', (SELECT plan->>'distinct_table' FROM streaming.queries WHERE name = q)) INTO n;
    RETURN n;
END $$;
CREATE FUNCTION kept_closed(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s d WHERE d.%I + %L::interval <= $1',
                   (SELECT plan->>'distinct_table' FROM streaming.queries WHERE name = q),
                   (SELECT plan->>'window_key' FROM streaming.queries WHERE name = q),
                   CASE q WHEN 'd_append' THEN '1 minute' ELSE '2 minutes' END)
      INTO n USING (SELECT watermark FROM streaming.queries WHERE name = q);
    RETURN n;
END $$;

-- every query after each of four batches
SELECT feed(1);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'd_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''d_append'')' END) c ORDER BY 1;
SELECT feed(2);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'd_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''d_append'')' END) c ORDER BY 1;
SELECT * FROM d_global;
SELECT feed(3);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'd_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''d_append'')' END) c ORDER BY 1;
SELECT feed(4);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name, CASE name WHEN 'd_append' THEN
    'upper(r.w) <= (SELECT watermark FROM streaming.queries WHERE name = ''d_append'')' END) c ORDER BY 1;
SELECT * FROM d_update ORDER BY a;
SELECT * FROM d_types ORDER BY r;
SELECT name, kept(name) > 0 AS keeps_values FROM cases ORDER BY 1;
SELECT kept_closed('d_append') AS append_closed_kept, kept_closed('d_window_update') AS update_closed_kept,
       (SELECT count(*) FROM d_append) > 0 AS append_emitted;
SELECT count(*) AS dead_letters FROM streaming.dead_letters;

-- reset_query empties the distinct values with the state; the files are read again
SELECT streaming.reset_query('d_update');
SELECT kept('d_update') AS kept_after_reset;
SELECT streaming.run('d_update');
SELECT * FROM compare('d_update');

-- 2. what cannot be kept is refused at create_query
SELECT streaming.create_query('bad', $$SELECT a, streaming.session_window(ts, '5 seconds') AS s, count(DISTINCT x)
                                       FROM ev GROUP BY a, s$$, output_mode => 'complete');
SELECT streaming.create_query('bad', $$SELECT a, array_agg(DISTINCT ARRAY[x]) FROM ev GROUP BY a$$,
         output_mode => 'complete');
SELECT streaming.create_query('bad', $$SELECT a, string_agg(DISTINCT a, ',' ORDER BY a) FROM ev GROUP BY a$$,
         output_mode => 'complete');
SELECT streaming.create_query('bad', $$SELECT a, array_agg(x) FROM ev GROUP BY a$$, output_mode => 'complete');
SELECT streaming.create_query('bad', $$SELECT a, count(DISTINCT (a, x)) FROM ev GROUP BY a$$, output_mode => 'complete');

-- drop_query drops the distinct table with the state table
SELECT streaming.drop_query(name) FROM cases ORDER BY name;
SELECT count(*) AS distinct_tables_left FROM pg_class
 WHERE relnamespace = 'streaming'::regnamespace AND relname LIKE 'state%distinct';
SELECT streaming.drop_source('ev');
DROP TABLE all_ev, cases;
DROP FUNCTION add_case(text, text, text, text, text, interval), compare(text, text), feed(int), run_all(),
              kept(text), kept_closed(text);
DROP SCHEMA dist_ns CASCADE;
DROP DOMAIN posint;
DROP TYPE pair;
DROP COLLATION ci;
DROP EXTENSION streaming;
