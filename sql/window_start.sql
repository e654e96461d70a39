-- streaming.window_start: the key of a windowed aggregate's state, computed
-- without building the window, gives the answers of what it replaces
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SELECT setseed(0.25);

-- window_start(ts, size) is lower(window(ts, size)) for timestamps before
-- and after the epoch and sizes of microseconds to weeks
CREATE TEMP TABLE wts AS
  SELECT timestamptz '1970-01-01 00:00:00+00' + (random() - 0.5) * interval '200 years' AS ts
    FROM generate_series(1, 2000)
  UNION ALL
  SELECT timestamptz '1970-01-01 00:00:00+00' + i * interval '1 microsecond'
    FROM generate_series(-3, 3) i;
CREATE TEMP TABLE wsizes AS
  SELECT s::interval AS size
    FROM unnest(ARRAY['1 microsecond', '7 microseconds', '1 second', '10 seconds', '1 minute',
                      '90 minutes', '1 day', '1 day 1 second', '7 days', '365 days']) s
  UNION ALL
  SELECT (1 + floor(random() * 1e9)) * interval '1 microsecond' FROM generate_series(1, 20);
SELECT count(*) AS compared,
       count(*) FILTER (WHERE streaming.window_start(ts, size) IS DISTINCT FROM
                              lower(streaming.window(ts, size))) AS differ
  FROM wts, wsizes;
SELECT streaming.window_start(NULL, '1 minute'), streaming.window_start(now(), NULL);

-- and fails where window() fails, with its error
CREATE FUNCTION wo_try(f text, ts timestamptz, size interval) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF f = 'window' THEN
    RETURN lower(streaming.window(ts, size))::text;
  END IF;
  RETURN streaming.window_start(ts, size)::text;
EXCEPTION WHEN others THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT ts, size, wo_try('window_start', ts, size) AS window_start,
       wo_try('window_start', ts, size) IS NOT DISTINCT FROM wo_try('window', ts, size) AS same
  FROM (VALUES (timestamptz '4714-11-24 00:00:00+00 BC', interval '1 day'),
               ('4714-11-24 00:00:01+00 BC', '1 day'),
               ('294276-12-31 23:59:59+00', '1 day'),
               ('294276-12-31 23:59:59+00', '1 second'),
               ('infinity', '1 day'),
               ('-infinity', '1 day'),
               ('2024-01-01', '1 month'),
               ('2024-01-01', '0 seconds'),
               ('2024-01-01', '-1 second')) v(ts, size)
 ORDER BY 1, 2;

-- a windowed aggregate's input view keys the state by window_start; its
-- result equals plain SQL
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/window_start && mkdir -p /tmp/streaming_regress/window_start';
SELECT streaming.create_source('wo_bids', 'file', 'ts timestamptz, item int, price int',
         '{"path": "/tmp/streaming_regress/window_start", "format": "csv"}');
SELECT streaming.create_query('wo_agg',
         $$SELECT streaming.window(ts, '10 seconds') AS w, item, count(*) AS n, max(price) AS top
             FROM wo_bids GROUP BY 1, 2$$,
         event_time => 'ts', watermark => '5 seconds', output_mode => 'update');
SELECT statement FROM streaming.explain('wo_agg') WHERE step = 'input view';
CREATE TEMP TABLE wo_fed AS
  SELECT timestamptz '2024-01-01' + i * interval '173 milliseconds' AS ts, i % 7 AS item, (i * 7919) % 1000 AS price
    FROM generate_series(1, 3000) i;
COPY (SELECT * FROM wo_fed WHERE ts < '2024-01-01 00:04:00') TO '/tmp/streaming_regress/window_start/1.csv' WITH (FORMAT csv);
SELECT streaming.run('wo_agg');
COPY (SELECT * FROM wo_fed WHERE ts >= '2024-01-01 00:04:00') TO '/tmp/streaming_regress/window_start/2.csv' WITH (FORMAT csv);
SELECT streaming.run('wo_agg');
SELECT count(*) AS groups FROM wo_agg;
SELECT count(*) AS differ FROM (
  (SELECT w, item, n, top FROM wo_agg EXCEPT
   SELECT streaming.window(ts, '10 seconds'), item, count(*), max(price) FROM wo_fed GROUP BY 1, 2)
  UNION ALL
  (SELECT streaming.window(ts, '10 seconds'), item, count(*), max(price) FROM wo_fed GROUP BY 1, 2
   EXCEPT SELECT w, item, n, top FROM wo_agg)) d;
SELECT streaming.drop_query('wo_agg');
SELECT streaming.drop_source('wo_bids');
DROP FUNCTION wo_try;
DROP EXTENSION streaming;
