-- A grouped query's large batch is aggregated in parts while it is decoded
-- (every 40 000 rows), and the batch statement combines the parts' partial
-- states: every aggregate kind it keeps must give what plain SQL gives over
-- the same rows.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET DateStyle = 'ISO';
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/partial_agg && mkdir -p /tmp/streaming_regress/partial_agg/in /tmp/streaming_regress/partial_agg/bad';
SELECT streaming.create_source('pa', 'file',
         'id int, k int, grp text, v int, n numeric, flag boolean, ts timestamptz',
         '{"path": "/tmp/streaming_regress/partial_agg/in", "format": "csv"}');
-- rows of the same group come spread over the parts
CREATE TABLE pa_rows AS
  SELECT i AS id, CASE WHEN i % 97 = 0 THEN NULL ELSE (i * 7919) % 101 END AS k,
         (ARRAY['a', 'B', 'b', 'C', 'é'])[1 + i % 5] AS grp,
         CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 31) % 1000 - 300 END AS v,
         ((i * 17) % 10000) / 100.0 AS n, i % 7 <> 0 AS flag,
         timestamptz '2024-01-01' + i * interval '10 milliseconds' AS ts
    FROM generate_series(1, 180000) i;
COPY (SELECT * FROM pa_rows WHERE id <= 120000) TO '/tmp/streaming_regress/partial_agg/in/1.csv' WITH (FORMAT csv);

SELECT streaming.create_query('pa_multi',
  $$SELECT k, count(*) AS c, count(v) AS cv, sum(v) AS sv, sum(v::bigint) AS sb, sum(n) AS sn,
           min(v) AS mn, max(v) AS mx, max(v::float8) AS mf, bool_and(flag) AS ba, bool_or(flag) AS bo,
           avg(v) AS av, avg(n) AS an
      FROM pa GROUP BY k$$, output_mode => 'update');
SELECT streaming.create_query('pa_text',
  $$SELECT grp, min(grp COLLATE "C") AS lo, max(grp) AS hi, count(*) AS c FROM pa GROUP BY grp$$,
  output_mode => 'update');
SELECT streaming.create_query('pa_global', $$SELECT count(*) AS c, sum(v) AS s, max(ts) AS last FROM pa$$,
  output_mode => 'update');
SELECT streaming.create_query('pa_where',
  $$SELECT k, count(*) AS c, sum(n) AS s FROM pa WHERE v % 3 = 0 GROUP BY k HAVING count(*) > 370$$,
  output_mode => 'update');
SELECT streaming.create_query('pa_window',
  $$SELECT streaming.window(ts, '1 minute') AS w, k, count(*) AS c, max(v) AS mx FROM pa GROUP BY 1, 2$$,
  event_time => 'ts', watermark => '10 seconds', output_mode => 'update');
SELECT streaming.create_query('pa_sliding',
  $$SELECT streaming.window(ts, '2 minutes', '1 minute') AS w, count(*) AS c, sum(v) AS s FROM pa GROUP BY 1$$,
  event_time => 'ts', watermark => '10 seconds', output_mode => 'append');
-- a floating-point sum adds in input order: aggregated whole, as before
SELECT streaming.create_query('pa_float', $$SELECT k, sum(v::float8) AS f FROM pa GROUP BY k$$,
  output_mode => 'update');
-- a large batch writes the groups new to the state with a plain INSERT; a
-- row of such a group already in the result table (written there by
-- someone else) makes the batch upsert every group instead
SELECT streaming.create_query('pa_conflict', $$SELECT id % 2000 AS k, count(*) AS c FROM pa GROUP BY 1$$,
  output_mode => 'update');
INSERT INTO pa_conflict VALUES (5, -1);
SELECT name, plan ? 'combine' AS in_parts FROM streaming.queries ORDER BY name;
-- a part aggregates without sorting its groups: the combined groups are
-- sorted, the batch plan of a windowed query too
SELECT name, plan->>'batch' LIKE '%ORDER BY%' AS batch_sorted, plan->>'partial' LIKE '%ORDER BY%' AS part_sorted,
       plan->>'partial' = plan->>'batch' AS part_is_batch
  FROM streaming.queries WHERE plan ? 'combine' ORDER BY name;

-- the same as plain SQL over the rows read so far
CREATE FUNCTION pa_differ(upto int) RETURNS TABLE (query text, rows bigint, differ bigint)
LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE seen ON COMMIT DROP AS SELECT * FROM pa_rows WHERE id <= upto;
  RETURN QUERY
  SELECT 'pa_multi', (SELECT count(*) FROM pa_multi), (SELECT count(*) FROM (
    (SELECT * FROM pa_multi EXCEPT
     SELECT k, count(*), count(v), sum(v), sum(v::bigint), sum(n), min(v), max(v), max(v::float8),
            bool_and(flag), bool_or(flag), avg(v), avg(n) FROM seen GROUP BY k)
    UNION ALL
    (SELECT k, count(*), count(v), sum(v), sum(v::bigint), sum(n), min(v), max(v), max(v::float8),
            bool_and(flag), bool_or(flag), avg(v), avg(n) FROM seen GROUP BY k
     EXCEPT SELECT * FROM pa_multi)) d)
  UNION ALL
  SELECT 'pa_text', (SELECT count(*) FROM pa_text), (SELECT count(*) FROM (
    (SELECT * FROM pa_text EXCEPT SELECT grp, min(grp COLLATE "C"), max(grp), count(*) FROM seen GROUP BY grp)
    UNION ALL
    (SELECT grp, min(grp COLLATE "C"), max(grp), count(*) FROM seen GROUP BY grp EXCEPT SELECT * FROM pa_text)) d)
  UNION ALL
  SELECT 'pa_global', (SELECT count(*) FROM pa_global), (SELECT count(*) FROM (
    (SELECT * FROM pa_global EXCEPT SELECT count(*), sum(v), max(ts) FROM seen)
    UNION ALL
    (SELECT count(*), sum(v), max(ts) FROM seen EXCEPT SELECT * FROM pa_global)) d)
  UNION ALL
  SELECT 'pa_where', (SELECT count(*) FROM pa_where), (SELECT count(*) FROM (
    (SELECT * FROM pa_where EXCEPT
     SELECT k, count(*), sum(n) FROM seen WHERE v % 3 = 0 GROUP BY k HAVING count(*) > 370)
    UNION ALL
    (SELECT k, count(*), sum(n) FROM seen WHERE v % 3 = 0 GROUP BY k HAVING count(*) > 370
     EXCEPT SELECT * FROM pa_where)) d)
  UNION ALL
  SELECT 'pa_window', (SELECT count(*) FROM pa_window), (SELECT count(*) FROM (
    (SELECT * FROM pa_window EXCEPT
     SELECT streaming.window(ts, '1 minute'), k, count(*), max(v) FROM seen GROUP BY 1, 2)
    UNION ALL
    (SELECT streaming.window(ts, '1 minute'), k, count(*), max(v) FROM seen GROUP BY 1, 2
     EXCEPT SELECT * FROM pa_window)) d)
  UNION ALL
  -- append mode: the windows the watermark (10 s behind the latest row) closed
  SELECT 'pa_sliding', (SELECT count(*) FROM pa_sliding), (SELECT count(*) FROM (
    (SELECT * FROM pa_sliding EXCEPT
     SELECT w, count(*), sum(v) FROM seen, streaming.window(ts, '2 minutes', '1 minute') w GROUP BY 1
     HAVING upper(w) <= (SELECT max(ts) FROM seen) - interval '10 seconds')
    UNION ALL
    (SELECT w, count(*), sum(v) FROM seen, streaming.window(ts, '2 minutes', '1 minute') w GROUP BY 1
     HAVING upper(w) <= (SELECT max(ts) FROM seen) - interval '10 seconds'
     EXCEPT SELECT * FROM pa_sliding)) d)
  UNION ALL
  SELECT 'pa_conflict', (SELECT count(*) FROM pa_conflict), (SELECT count(*) FROM (
    (SELECT * FROM pa_conflict EXCEPT SELECT id % 2000, count(*) FROM seen GROUP BY 1)
    UNION ALL
    (SELECT id % 2000, count(*) FROM seen GROUP BY 1 EXCEPT SELECT * FROM pa_conflict)) d)
  UNION ALL
  SELECT 'pa_float', (SELECT count(*) FROM pa_float), (SELECT count(*) FROM (
    (SELECT * FROM pa_float EXCEPT SELECT k, sum(v::float8) FROM seen GROUP BY k)
    UNION ALL
    (SELECT k, sum(v::float8) FROM seen GROUP BY k EXCEPT SELECT * FROM pa_float)) d);
END $$;

SELECT streaming.run(name) FROM streaming.queries WHERE name <> 'pa_conflict' ORDER BY name;
-- the fallback says so at DEBUG1
SET client_min_messages = debug1;
SELECT streaming.run('pa_conflict');
RESET client_min_messages;
BEGIN;
SELECT * FROM pa_differ(120000);
COMMIT;
-- the batches that were aggregated in parts say so
SELECT query, input_rows, duration_ms ? 'add_batch_while_reading' AS in_parts
  FROM streaming.progress ORDER BY query;

-- a second batch merges into the state as any batch does
COPY (SELECT * FROM pa_rows WHERE id > 120000) TO '/tmp/streaming_regress/partial_agg/in/2.csv' WITH (FORMAT csv);
SELECT streaming.run(name) FROM streaming.queries ORDER BY name;
BEGIN;
SELECT * FROM pa_differ(180000);
COMMIT;

-- a query given the other output mode goes on aggregating in parts
SELECT streaming.alter_query('pa_multi', output_mode => 'complete');
SELECT plan ? 'combine' AS in_parts FROM streaming.queries WHERE name = 'pa_multi';
INSERT INTO pa_rows
  SELECT i, CASE WHEN i % 97 = 0 THEN NULL ELSE (i * 7919) % 101 END,
         (ARRAY['a', 'B', 'b', 'C', 'é'])[1 + i % 5],
         CASE WHEN i % 13 = 0 THEN NULL ELSE (i * 31) % 1000 - 300 END,
         ((i * 17) % 10000) / 100.0, i % 7 <> 0,
         timestamptz '2024-01-01' + i * interval '10 milliseconds'
    FROM generate_series(180001, 230000) i;
COPY (SELECT * FROM pa_rows WHERE id > 180000) TO '/tmp/streaming_regress/partial_agg/in/3.csv' WITH (FORMAT csv);
SELECT streaming.run('pa_multi');
SELECT input_rows, duration_ms ? 'add_batch_while_reading' AS in_parts
  FROM streaming.progress WHERE query = 'pa_multi' AND batch_id = 2;
BEGIN;
SELECT * FROM pa_differ(230000) WHERE query = 'pa_multi';
COMMIT;

-- a record that cannot be decoded after a part: decoded again record by
-- record, aggregated whole; the first attempt's parts are let go
SELECT streaming.create_source('pa_bad', 'file', 'id int, k int',
         '{"path": "/tmp/streaming_regress/partial_agg/bad", "format": "csv"}');
SELECT streaming.create_query('pa_letters', $$SELECT k, count(*) AS c, sum(id) AS s FROM pa_bad GROUP BY k$$,
  output_mode => 'update', on_error => 'dead_letter');
COPY (SELECT CASE WHEN i = 50001 THEN 'x' ELSE i::text END, i % 10 FROM generate_series(1, 90000) i)
  TO '/tmp/streaming_regress/partial_agg/bad/1.csv' WITH (FORMAT csv);
SELECT streaming.run('pa_letters');
SELECT count(*) AS differ FROM (
  (SELECT * FROM pa_letters EXCEPT
   SELECT i % 10, count(*), sum(i) FROM generate_series(1, 90000) i WHERE i <> 50001 GROUP BY 1)
  UNION ALL
  (SELECT i % 10, count(*), sum(i) FROM generate_series(1, 90000) i WHERE i <> 50001 GROUP BY 1
   EXCEPT SELECT * FROM pa_letters)) d;
SELECT input_rows, dead_letters, duration_ms ? 'add_batch_while_reading' AS in_parts
  FROM streaming.progress WHERE query = 'pa_letters';

-- outside a batch there are no partial states
SELECT * FROM streaming.batch_partials() AS u(k int);

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source('pa');
SELECT streaming.drop_source('pa_bad');
DROP FUNCTION pa_differ;
DROP TABLE pa_rows;
DROP EXTENSION streaming;
