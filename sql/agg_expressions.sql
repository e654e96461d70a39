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

-- batch n: 60 rows over groups a..e; p in [0, 20000), x small, f exact in binary
-- (written in ISO 8601: a source reads event times in no other way)
CREATE FUNCTION feed(n int) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
DECLARE
    file text := format('/tmp/streaming_regress/agg_expressions/%s.csv', n);
BEGIN
    EXECUTE format($f$COPY (SELECT CASE WHEN g %% 11 = 0 THEN NULL ELSE chr(97 + (g * %s) %% 5) END,
                                  (g * 7919 + %s * 104729) %% 20000,
                                  CASE WHEN g %% 13 = 0 THEN NULL ELSE (g * 31 + %s) %% 17 - 4 END,
                                  ((g * 37 + %s) %% 64) / 4.0,
                                  timestamptz '2024-01-01 00:00:00+00' + make_interval(secs => %s * 60 + g)
                             FROM generate_series(1, 60) g) TO %L WITH (FORMAT csv)$f$,
                   n + 1, n, n, n, n, file);
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

SELECT feed(1);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed(2);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed(3);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT * FROM filter_counts ORDER BY a;
SELECT count(*) AS dead_letters FROM streaming.dead_letters;

SELECT streaming.drop_query(name) FROM cases ORDER BY name;
SELECT streaming.drop_source('ev');
DROP TABLE all_ev, cases;
DROP FUNCTION add_case(text, text, text, text, text, interval), compare(text, text), feed(int), run_all();
DROP EXTENSION streaming;
