-- A grouped query's batch whose parts' plan is simple enough is aggregated
-- in C as it is decoded (preagg.c): the plan's own expressions, grouping
-- operators and transition functions, without keeping the rows.  Every
-- aggregate and key it takes must give what plain SQL gives over the same
-- rows, over two batches; the plans it does not take are aggregated by
-- the parts' statement, and say why at DEBUG1.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET DateStyle = 'ISO';
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/preagg && mkdir -p /tmp/streaming_regress/preagg/in /tmp/streaming_regress/preagg/zero';
SELECT streaming.create_source('pg', 'file',
         'id int, k int, g text, v int, b bigint, s smallint, f float8, d date, flag boolean, ts timestamptz',
         '{"path": "/tmp/streaming_regress/preagg/in", "format": "csv"}');
-- nulls in keys and arguments; the rows of a group spread over the batch
CREATE TABLE pg_rows AS
  SELECT i AS id, CASE WHEN i % 89 = 0 THEN NULL ELSE (i * 7919) % 113 END AS k,
         CASE WHEN i % 101 = 0 THEN NULL ELSE (ARRAY['a', 'B', 'b', 'C', 'é', 'ab'])[1 + i % 6] END AS g,
         CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 31) % 1000 - 300 END AS v,
         CASE WHEN i % 17 = 0 THEN NULL ELSE (i::bigint * 1000003) % 4000000000 - 2000000000 END AS b,
         CASE WHEN i % 19 = 0 THEN NULL ELSE (i % 200 - 100)::smallint END AS s,
         CASE WHEN i % 23 = 0 THEN NULL ELSE ((i * 37) % 1000) / 8.0 - 50 END AS f,
         date '2024-01-01' + (i % 40) AS d,
         CASE WHEN i % 29 = 0 THEN NULL ELSE i % 7 <> 0 END AS flag,
         timestamptz '2024-01-01' + i * interval '10 milliseconds' AS ts
    FROM generate_series(1, 60000) i;
COPY (SELECT * FROM pg_rows WHERE id <= 40000) TO '/tmp/streaming_regress/preagg/in/1.csv' WITH (FORMAT csv);

-- keys compared as Datums (integers, dates, booleans, timestamps)
SELECT streaming.create_query('pg_int',
  $$SELECT k, d, flag, count(*) AS c, count(v) AS cv, sum(v) AS sv, sum(s) AS ss, min(v) AS mn, max(b) AS mb,
           min(ts) AS first, max(f) AS mf, bool_and(flag) AS ba, bool_or(v > 600) AS bo,
           max(g) AS mg, min(g COLLATE "C") AS lg
      FROM pg GROUP BY k, d, flag$$, output_mode => 'update');
-- text keys (grouped by their equality and hash functions), expressions
-- in keys, arguments and a filter
SELECT streaming.create_query('pg_text',
  $$SELECT g, k % 5 AS m, count(*) AS c, max(v * 2 + 1) AS mx, min(upper(g)) AS up, sum(length(g)) AS len
      FROM pg WHERE v IS DISTINCT FROM 7 AND g <> 'C' GROUP BY g, k % 5$$, output_mode => 'update');
-- a window, its start kept in the state
SELECT streaming.create_query('pg_window',
  $$SELECT streaming.window(ts, '1 minute') AS w, k, count(*) AS c, max(v) AS mx FROM pg GROUP BY 1, 2$$,
  event_time => 'ts', watermark => '10 seconds', output_mode => 'update');
-- sliding windows: each row in every window that contains it, by its
-- start; with a filter and an argument's expression, and with an origin
-- and a slide that does not divide the size
SELECT streaming.create_query('pg_slide',
  $$SELECT streaming.window(ts, '1 minute', '20 seconds') AS w, k % 7 AS m, count(*) AS c, sum(v) AS sv,
           max(v * 2) AS mx
      FROM pg WHERE v IS DISTINCT FROM 5 GROUP BY 1, 2$$,
  event_time => 'ts', watermark => '10 seconds', output_mode => 'update');
SELECT streaming.create_query('pg_slide_odd',
  $$SELECT streaming.window(ts, '50 seconds', '15 seconds', '2024-01-01 00:00:07+00') AS w, count(*) AS c,
           min(id) AS first
      FROM pg GROUP BY 1$$,
  event_time => 'ts', watermark => '10 seconds', output_mode => 'update');
-- more groups than a small hash_mem holds: pg_runs's rows come eight to a
-- group, its table is written out as partial states several times;
-- pg_many's come one to a group until the table is full, and the rest of
-- its batch goes to the parts' statement (DEBUG1 shows both)
SELECT streaming.create_query('pg_runs', $$SELECT id / 8 AS k, count(*) AS c, sum(v) AS s FROM pg GROUP BY 1$$,
  output_mode => 'update');
SELECT streaming.create_query('pg_many', $$SELECT id % 5003 AS k, count(*) AS c, sum(v) AS s FROM pg GROUP BY 1$$,
  output_mode => 'update');
-- a full table writes out its groups of the lowest keys and keeps the
-- rest: pg_runs's keys rise with the rows, so its partial states end one
-- per group, in order; pg_cycle's come back to 0 every 8000 rows, below
-- those written out, and its partial states are combined
SELECT streaming.create_query('pg_cycle', $$SELECT (id / 8) % 1000 AS k, count(*) AS c, sum(v) AS s FROM pg GROUP BY 1$$,
  output_mode => 'update');
-- an average is kept as a sum and a count: aggregated in C too
SELECT streaming.create_query('pg_avg', $$SELECT k, count(*) AS c, avg(v) AS a FROM pg GROUP BY k$$,
  output_mode => 'update');
-- aggregated by the parts' statement: a function that is not built in
-- (one in SQL would be inlined), a volatile one
CREATE FUNCTION pg_twice(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN $1 * 2; END';
SELECT streaming.create_query('pg_udf', $$SELECT k, max(pg_twice(v)) AS t FROM pg GROUP BY k$$,
  output_mode => 'update');
SELECT streaming.create_query('pg_random', $$SELECT k, count(*) AS c FROM pg WHERE random() < 2 GROUP BY k$$,
  output_mode => 'update');
-- a built-in function that runs a statement
SELECT streaming.create_query('pg_xml',
  $$SELECT k, count(*) AS c FROM pg WHERE length(query_to_xml('SELECT 1', true, false, '')::text) > 0 GROUP BY k$$,
  output_mode => 'update');

CREATE FUNCTION pg_differ(upto int) RETURNS TABLE (query text, rows bigint, differ bigint)
LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE seen ON COMMIT DROP AS SELECT * FROM pg_rows WHERE id <= upto;
  RETURN QUERY
  SELECT 'pg_int', (SELECT count(*) FROM pg_int), (SELECT count(*) FROM (
    (SELECT * FROM pg_int EXCEPT
     SELECT k, d, flag, count(*), count(v), sum(v), sum(s), min(v), max(b), min(ts), max(f), bool_and(flag),
            bool_or(v > 600), max(g), min(g COLLATE "C") FROM seen GROUP BY k, d, flag)
    UNION ALL
    (SELECT k, d, flag, count(*), count(v), sum(v), sum(s), min(v), max(b), min(ts), max(f), bool_and(flag),
            bool_or(v > 600), max(g), min(g COLLATE "C") FROM seen GROUP BY k, d, flag
     EXCEPT SELECT * FROM pg_int)) x)
  UNION ALL
  SELECT 'pg_text', (SELECT count(*) FROM pg_text), (SELECT count(*) FROM (
    (SELECT * FROM pg_text EXCEPT
     SELECT g, k % 5, count(*), max(v * 2 + 1), min(upper(g)), sum(length(g))
       FROM seen WHERE v IS DISTINCT FROM 7 AND g <> 'C' GROUP BY g, k % 5)
    UNION ALL
    (SELECT g, k % 5, count(*), max(v * 2 + 1), min(upper(g)), sum(length(g))
       FROM seen WHERE v IS DISTINCT FROM 7 AND g <> 'C' GROUP BY g, k % 5
     EXCEPT SELECT * FROM pg_text)) x)
  UNION ALL
  SELECT 'pg_window', (SELECT count(*) FROM pg_window), (SELECT count(*) FROM (
    (SELECT * FROM pg_window EXCEPT
     SELECT streaming.window(ts, '1 minute'), k, count(*), max(v) FROM seen GROUP BY 1, 2)
    UNION ALL
    (SELECT streaming.window(ts, '1 minute'), k, count(*), max(v) FROM seen GROUP BY 1, 2
     EXCEPT SELECT * FROM pg_window)) x)
  UNION ALL
  SELECT 'pg_slide', (SELECT count(*) FROM pg_slide), (SELECT count(*) FROM (
    (SELECT * FROM pg_slide EXCEPT
     SELECT streaming.window(ts, '1 minute', '20 seconds'), k % 7, count(*), sum(v), max(v * 2)
       FROM seen WHERE v IS DISTINCT FROM 5 GROUP BY 1, 2)
    UNION ALL
    (SELECT streaming.window(ts, '1 minute', '20 seconds'), k % 7, count(*), sum(v), max(v * 2)
       FROM seen WHERE v IS DISTINCT FROM 5 GROUP BY 1, 2
     EXCEPT SELECT * FROM pg_slide)) x)
  UNION ALL
  SELECT 'pg_slide_odd', (SELECT count(*) FROM pg_slide_odd), (SELECT count(*) FROM (
    (SELECT * FROM pg_slide_odd EXCEPT
     SELECT streaming.window(ts, '50 seconds', '15 seconds', '2024-01-01 00:00:07+00'), count(*), min(id)
       FROM seen GROUP BY 1)
    UNION ALL
    (SELECT streaming.window(ts, '50 seconds', '15 seconds', '2024-01-01 00:00:07+00'), count(*), min(id)
       FROM seen GROUP BY 1
     EXCEPT SELECT * FROM pg_slide_odd)) x)
  UNION ALL
  SELECT 'pg_runs', (SELECT count(*) FROM pg_runs), (SELECT count(*) FROM (
    (SELECT * FROM pg_runs EXCEPT SELECT id / 8, count(*), sum(v) FROM seen GROUP BY 1)
    UNION ALL
    (SELECT id / 8, count(*), sum(v) FROM seen GROUP BY 1 EXCEPT SELECT * FROM pg_runs)) x)
  UNION ALL
  SELECT 'pg_many', (SELECT count(*) FROM pg_many), (SELECT count(*) FROM (
    (SELECT * FROM pg_many EXCEPT SELECT id % 5003, count(*), sum(v) FROM seen GROUP BY 1)
    UNION ALL
    (SELECT id % 5003, count(*), sum(v) FROM seen GROUP BY 1 EXCEPT SELECT * FROM pg_many)) x)
  UNION ALL
  SELECT 'pg_cycle', (SELECT count(*) FROM pg_cycle), (SELECT count(*) FROM (
    (SELECT * FROM pg_cycle EXCEPT SELECT (id / 8) % 1000, count(*), sum(v) FROM seen GROUP BY 1)
    UNION ALL
    (SELECT (id / 8) % 1000, count(*), sum(v) FROM seen GROUP BY 1 EXCEPT SELECT * FROM pg_cycle)) x)
  UNION ALL
  SELECT 'pg_avg', (SELECT count(*) FROM pg_avg), (SELECT count(*) FROM (
    (SELECT * FROM pg_avg EXCEPT SELECT k, count(*), avg(v) FROM seen GROUP BY k)
    UNION ALL
    (SELECT k, count(*), avg(v) FROM seen GROUP BY k EXCEPT SELECT * FROM pg_avg)) x)
  UNION ALL
  SELECT 'pg_udf', (SELECT count(*) FROM pg_udf), (SELECT count(*) FROM (
    (SELECT * FROM pg_udf EXCEPT SELECT k, max(v * 2) FROM seen GROUP BY k)
    UNION ALL
    (SELECT k, max(v * 2) FROM seen GROUP BY k EXCEPT SELECT * FROM pg_udf)) x)
  UNION ALL
  SELECT 'pg_random', (SELECT count(*) FROM pg_random), (SELECT count(*) FROM (
    (SELECT * FROM pg_random EXCEPT SELECT k, count(*) FROM seen GROUP BY k)
    UNION ALL
    (SELECT k, count(*) FROM seen GROUP BY k EXCEPT SELECT * FROM pg_random)) x)
  UNION ALL
  SELECT 'pg_xml', (SELECT count(*) FROM pg_xml), (SELECT count(*) FROM (
    (SELECT * FROM pg_xml EXCEPT SELECT k, count(*) FROM seen GROUP BY k)
    UNION ALL
    (SELECT k, count(*) FROM seen GROUP BY k EXCEPT SELECT * FROM pg_xml)) x);
END $$;

-- the order in which the rows of new groups reach pg_int and pg_window
CREATE TABLE pg_order (n bigserial, tab name, r jsonb);
CREATE FUNCTION pg_note() RETURNS trigger LANGUAGE plpgsql AS
  'BEGIN INSERT INTO pg_order (tab, r) VALUES (TG_TABLE_NAME, to_jsonb(NEW)); RETURN NULL; END';
CREATE TRIGGER pg_note AFTER INSERT ON pg_int FOR EACH ROW EXECUTE FUNCTION pg_note();
CREATE TRIGGER pg_note AFTER INSERT ON pg_window FOR EACH ROW EXECUTE FUNCTION pg_note();
-- a trigger that skips rows of new groups: the rows written are those
-- counted (a batch of 3000 groups writes its new groups plainly)
SELECT streaming.create_query('pg_skip', $$SELECT id % 3000 AS k, count(*) AS c FROM pg GROUP BY 1$$, output_mode => 'update');
CREATE FUNCTION pg_skip_even() RETURNS trigger LANGUAGE plpgsql AS
  'BEGIN IF NEW.k % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END';
CREATE TRIGGER pg_skip_even BEFORE INSERT ON pg_skip FOR EACH ROW EXECUTE FUNCTION pg_skip_even();

-- a small hash_mem for pg_runs, pg_many and pg_cycle (the others' groups fit)
SELECT streaming.run(name) FROM streaming.queries WHERE name NOT IN ('pg_runs', 'pg_many', 'pg_cycle') ORDER BY name;
SET work_mem = '64kB';
SELECT streaming.run('pg_runs');
SELECT streaming.run('pg_many');
SELECT streaming.run('pg_cycle');
RESET work_mem;
BEGIN;
SELECT * FROM pg_differ(40000);
COMMIT;
SELECT query, input_rows FROM streaming.progress ORDER BY query;
-- the groups that the table held from the first row to the last are
-- written once, in the order of their keys (nulls last), which the batch
-- statement keeps without sorting them: the rows of the new groups were
-- written in that order (pg_window's: the windows the batch closes
-- first, as the batch statement writes them)
SELECT count(*) AS rows, count(*) FILTER (WHERE by_write <> by_key) AS out_of_order
  FROM (SELECT row_number() OVER (ORDER BY n) AS by_write,
               row_number() OVER (ORDER BY (r->>'k')::int, (r->>'d')::date, (r->>'flag')::boolean) AS by_key
          FROM pg_order WHERE tab = 'pg_int') x;
SELECT count(*) AS rows, count(*) FILTER (WHERE by_write <> by_key) AS out_of_order
  FROM (SELECT row_number() OVER (ORDER BY n) AS by_write,
               row_number() OVER (ORDER BY upper((r->>'w')::tstzrange) > '2024-01-01 00:06:00+00' OR r->>'k' IS NULL,
                                           (r->>'w')::tstzrange, (r->>'k')::int) AS by_key
          FROM pg_order WHERE tab = 'pg_window') x;
DROP TRIGGER pg_note ON pg_int;
DROP TRIGGER pg_note ON pg_window;
SELECT (SELECT count(*) FROM pg_skip) AS rows,
       (SELECT sink_rows FROM streaming.progress WHERE query = 'pg_skip') AS sink_rows;

-- a second batch merges into the state as any batch does; which way each
-- is aggregated shows at DEBUG1, with the partial states it made
COPY (SELECT * FROM pg_rows WHERE id > 40000) TO '/tmp/streaming_regress/preagg/in/2.csv' WITH (FORMAT csv);
SET client_min_messages = debug1;
SELECT streaming.run('pg_int');
SELECT streaming.run('pg_text');
SELECT streaming.run('pg_window');
SELECT streaming.run('pg_slide');
SELECT streaming.run('pg_slide_odd');
SELECT streaming.run('pg_avg');
SELECT streaming.run('pg_udf');
SELECT streaming.run('pg_random');
SELECT streaming.run('pg_xml');
SET work_mem = '64kB';
SELECT streaming.run('pg_many');
SELECT streaming.run('pg_runs');
SELECT streaming.run('pg_cycle');
RESET work_mem;
RESET client_min_messages;
BEGIN;
SELECT * FROM pg_differ(60000);
COMMIT;

-- an error of the query's expressions fails the batch, as the statement's
-- would, rather than making the row a dead letter; nothing is committed
SELECT streaming.create_source('pg_zero', 'file', 'id int, v int',
         '{"path": "/tmp/streaming_regress/preagg/zero", "format": "csv"}');
SELECT streaming.create_query('pg_div', $$SELECT id % 10 AS k, max(100 / v) AS q FROM pg_zero GROUP BY 1$$,
  output_mode => 'update', on_error => 'dead_letter');
COPY (SELECT i, CASE WHEN i = 30000 THEN 0 ELSE i END FROM generate_series(1, 50000) i)
  TO '/tmp/streaming_regress/preagg/zero/1.csv' WITH (FORMAT csv);
SELECT streaming.run('pg_div');
SELECT count(*) AS batches FROM streaming.progress WHERE query = 'pg_div';
SELECT count(*) AS dead_letters FROM streaming.dead_letters WHERE query = 'pg_div';

-- a value of a type not built in is left to the parts' statement: grouping
-- by a range compares its bounds with its subtype's operator class, here
-- a PL/pgSQL function, which the executor calls and this module must not
CREATE FUNCTION pg_cmp(int, int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN btint4cmp($1, $2); END';
CREATE OPERATOR CLASS pg_int_ops FOR TYPE int USING btree AS
  OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >, FUNCTION 1 pg_cmp(int, int);
CREATE TYPE pg_ints AS RANGE (subtype = int, subtype_opclass = pg_int_ops);
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/streaming_regress/preagg/range';
SELECT streaming.create_source('pg_ranges', 'file', 'id int, r pg_ints',
         '{"path": "/tmp/streaming_regress/preagg/range", "format": "csv"}');
SELECT streaming.create_query('pg_by_range', $$SELECT r, count(*) AS c FROM pg_ranges GROUP BY r$$,
  output_mode => 'update');
COPY (SELECT i, pg_ints(i % 3, 5) FROM generate_series(1, 50) i)
  TO '/tmp/streaming_regress/preagg/range/1.csv' WITH (FORMAT csv);
SET client_min_messages = debug1;
SELECT streaming.run('pg_by_range');
RESET client_min_messages;
SELECT * FROM pg_by_range ORDER BY r;

-- what a row's windows compute is freed window by window: 10 000 windows
-- for each of 5 rows, each computing a value of 100 kB, in a new session
-- whose peak memory stays far below the 1 GB they would add up to
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/streaming_regress/preagg/wide';
SELECT streaming.create_source('pg_wide', 'file', 'k int, g text, ts timestamptz',
         '{"path": "/tmp/streaming_regress/preagg/wide", "format": "csv"}');
SELECT streaming.create_query('pg_slide_wide',
  $$SELECT streaming.window(ts, '10 seconds', '1 millisecond') AS w, k, sum(length(repeat(g, 50000))) AS m,
           count(*) AS c
      FROM pg_wide GROUP BY 1, 2$$,
  event_time => 'ts', watermark => '10 seconds', output_mode => 'update');
COPY (SELECT 1, 'ab', timestamptz '2024-01-01' + i * interval '1 second' FROM generate_series(1, 5) i)
  TO '/tmp/streaming_regress/preagg/wide/1.csv' WITH (FORMAT csv);
\c
SET streaming.autostart = off;
SET client_min_messages = debug1;
SELECT streaming.run('pg_slide_wide');
RESET client_min_messages;
SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::int < 200000 AS peak_below_200_mb;
SELECT count(*) AS windows, sum(m) AS m, sum(c) AS c FROM pg_slide_wide;

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source('pg');
SELECT streaming.drop_source('pg_zero');
SELECT streaming.drop_source('pg_ranges');
SELECT streaming.drop_source('pg_wide');
DROP TYPE pg_ints;
DROP OPERATOR CLASS pg_int_ops USING btree;
DROP FUNCTION pg_cmp;
DROP FUNCTION pg_differ;
DROP TABLE pg_order;
DROP FUNCTION pg_note;
DROP FUNCTION pg_skip_even;
DROP FUNCTION pg_twice;
DROP TABLE pg_rows;
DROP EXTENSION streaming;
