-- Event-time windows: tumbling, sliding and origin
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';

-- tumbling: the one window that contains ts
SELECT streaming.window('2024-01-01 10:07:27+00', '5 minutes');
SELECT streaming.window('2024-01-01 10:05:00+00', '5 minutes');
SELECT streaming.window('1969-12-31 23:59:59+00', '10 seconds');
-- sliding: 10 s windows sliding by 3 s put :27 into the windows starting :18, :21, :24, :27
SELECT streaming.window('2024-01-01 00:00:27+00', '10 seconds', '3 seconds');
-- a slide equal to the size is tumbling
SELECT streaming.window('2024-01-01 00:00:27+00', '10 seconds', '10 seconds');
-- NULL slide: tumbling; origin shifts the grid
SELECT streaming.window('2024-01-01 00:00:27+00', '10 seconds', NULL, '2024-01-01 00:00:03+00');
SELECT streaming.window('2024-01-01 00:00:27+00', '1 hour', '20 minutes', '2024-01-01 00:05:00+00');
-- NULL time: no window
SELECT streaming.window(NULL, '10 seconds');
SELECT count(*) FROM streaming.window(NULL, '10 seconds', '5 seconds');
-- bad sizes
SELECT streaming.window(now(), '1 month');
SELECT streaming.window(now(), '0 seconds');
SELECT streaming.window(now(), '5 seconds', '10 seconds');
SELECT streaming.window('infinity', '5 seconds');

-- a sliding-window count over a stream: each row counts in every window that contains it
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/window && mkdir -p /tmp/streaming_regress/window';
SELECT streaming.create_source('clicks', 'file', 'ts timestamptz, page text',
         '{"path": "/tmp/streaming_regress/window", "format": "csv"}');
SELECT streaming.create_query('sliding',
         $$SELECT streaming.window(ts, '10 seconds', '5 seconds') AS w, page, count(*) AS n
             FROM clicks GROUP BY 1, 2$$, output_mode => 'update');
COPY (VALUES ('2024-01-01 00:00:01+00', 'a'), ('2024-01-01 00:00:07+00', 'a'), ('2024-01-01 00:00:12+00', 'b'))
  TO '/tmp/streaming_regress/window/1.csv' WITH (FORMAT csv);
SELECT streaming.run('sliding');
SELECT * FROM sliding ORDER BY w, page;
COPY (VALUES ('2024-01-01 00:00:09+00', 'a'), ('2024-01-01 00:00:14+00', 'b'))
  TO '/tmp/streaming_regress/window/2.csv' WITH (FORMAT csv);
SELECT streaming.run('sliding');
SELECT * FROM sliding ORDER BY w, page;
SELECT batch_id, input_rows, state_rows_updated, state_rows_total FROM streaming.progress ORDER BY batch_id;
SELECT streaming.drop_query('sliding');
SELECT streaming.drop_source('clicks');

-- an event-time window of constant size is kept in the state by its start,
-- a timestamptz; the result table has the window as the query returns it.
-- Its end is start + size in microseconds, as window() computes it: a day
-- is 24 hours even where the session's time zone changes to daylight
-- saving time (America/New_York, 2024-03-10 07:00 UTC)
SET TimeZone = 'America/New_York';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/window_start && mkdir -p /tmp/streaming_regress/window_start';
SELECT streaming.create_source('bids', 'file', 'ts timestamptz, item int, price int',
         '{"path": "/tmp/streaming_regress/window_start", "format": "csv"}');
-- the window is the second key: the close finds windows by an index of their own
SELECT streaming.create_query('daily',
         $$SELECT item, streaming.window(ts, '1 day') AS w, count(*) AS n, max(price) AS top
             FROM bids GROUP BY 1, 2$$,
         event_time => 'ts', watermark => '1 hour', output_mode => 'update');
SELECT streaming.create_query('daily_sliding',
         $$SELECT streaming.window(ts, size => '1 day', slide => '12 hours') AS w, item,
                  sum(price) * 2 AS twice, avg(price) AS mean
             FROM bids GROUP BY 1, 2 HAVING count(*) > 1$$,
         event_time => 'ts', watermark => '1 hour', output_mode => 'update');
SELECT streaming.create_query('daily_append',
         $$SELECT streaming.window(ts, '1 day') AS w, item, count(*) AS n
             FROM bids GROUP BY 1, 2 HAVING max(price) > 10$$,
         event_time => 'ts', watermark => '1 hour', output_mode => 'append');
SELECT step, statement FROM streaming.explain('daily')
 WHERE step IN ('input view', 'state table', 'finalizer', 'close');
SELECT step, statement FROM streaming.explain('daily_sliding') WHERE step IN ('input view', 'finalizer', 'having');
SELECT q.name, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
  FROM streaming.queries q JOIN pg_attribute a ON a.attrelid = q.state_table
 WHERE a.attname IN ('k1', 'k2') ORDER BY 1, 2;
SELECT q.name, regexp_replace(pg_get_indexdef(i.indexrelid), 'state_\d+\S*', 'state') AS index
  FROM streaming.queries q JOIN pg_index i ON i.indrelid = q.state_table ORDER BY 1, 2;
CREATE TABLE bids_fed (ts timestamptz, item int, price int);
-- the first day closes at the end of this batch (watermark 03-11 02:00)
COPY (VALUES ('2024-03-10T01:00:00Z', 1, 5), ('2024-03-10T12:00:00Z', 1, 20),
             ('2024-03-10T12:00:00Z', 2, 7), ('2024-03-11T03:00:00Z', 2, 9))
  TO '/tmp/streaming_regress/window_start/1.csv' WITH (FORMAT csv);
SELECT q, streaming.run(q) FROM unnest(ARRAY['daily', 'daily_sliding', 'daily_append']) q;
-- 2024-03-10 23:00 is late; the second day closes (watermark 03-12 07:00)
COPY (VALUES ('2024-03-10T23:00:00Z', 1, 1), ('2024-03-11T05:00:00Z', 2, 30),
             ('2024-03-11T06:00:00Z', 1, 4), ('2024-03-12T08:00:00Z', 1, 2))
  TO '/tmp/streaming_regress/window_start/2.csv' WITH (FORMAT csv);
SELECT q, streaming.run(q) FROM unnest(ARRAY['daily', 'daily_sliding', 'daily_append']) q;
COPY (VALUES ('2024-03-12T09:00:00Z', 1, 50), ('2024-03-13T10:00:00Z', 3, 1))
  TO '/tmp/streaming_regress/window_start/3.csv' WITH (FORMAT csv);
SELECT q, streaming.run(q) FROM unnest(ARRAY['daily', 'daily_sliding', 'daily_append']) q;
INSERT INTO bids_fed VALUES ('2024-03-10 01:00+00', 1, 5), ('2024-03-10 12:00+00', 1, 20),
  ('2024-03-10 12:00+00', 2, 7), ('2024-03-11 03:00+00', 2, 9), ('2024-03-11 05:00+00', 2, 30),
  ('2024-03-11 06:00+00', 1, 4), ('2024-03-12 08:00+00', 1, 2), ('2024-03-12 09:00+00', 1, 50),
  ('2024-03-13 10:00+00', 3, 1);
SELECT * FROM daily ORDER BY w, item;
SELECT * FROM daily_sliding ORDER BY w, item;
SELECT * FROM daily_append ORDER BY w, item;
-- each equals plain SQL over the rows that were not late (append: the closed windows)
SELECT count(*) AS differ FROM (
  (SELECT * FROM daily EXCEPT ALL
   SELECT item, streaming.window(ts, '1 day'), count(*), max(price) FROM bids_fed GROUP BY 1, 2)
  UNION ALL
  (SELECT item, streaming.window(ts, '1 day'), count(*), max(price) FROM bids_fed GROUP BY 1, 2
   EXCEPT ALL SELECT * FROM daily)) d;
SELECT count(*) AS differ FROM (
  (SELECT * FROM daily_sliding EXCEPT ALL
   SELECT w, item, sum(price) * 2, avg(price) FROM bids_fed, streaming.window(ts, '1 day', '12 hours') w
    GROUP BY 1, 2 HAVING count(*) > 1)
  UNION ALL
  (SELECT w, item, sum(price) * 2, avg(price) FROM bids_fed, streaming.window(ts, '1 day', '12 hours') w
    GROUP BY 1, 2 HAVING count(*) > 1
   EXCEPT ALL SELECT * FROM daily_sliding)) d;
SELECT count(*) AS differ FROM (
  (SELECT * FROM daily_append EXCEPT ALL
   SELECT streaming.window(ts, '1 day') w, item, count(*) FROM bids_fed
    GROUP BY 1, 2 HAVING max(price) > 10 AND upper(streaming.window(ts, '1 day')) <= '2024-03-13 09:00+00')
  UNION ALL
  (SELECT streaming.window(ts, '1 day') w, item, count(*) FROM bids_fed
    GROUP BY 1, 2 HAVING max(price) > 10 AND upper(streaming.window(ts, '1 day')) <= '2024-03-13 09:00+00'
   EXCEPT ALL SELECT * FROM daily_append)) d;
-- closed windows leave the state
SELECT query, batch_id, input_rows, state_rows_total, state_rows_removed, state_rows_dropped_by_watermark
  FROM streaming.progress WHERE query LIKE 'daily%' ORDER BY 1, 2;
SELECT streaming.drop_query(q) FROM unnest(ARRAY['daily', 'daily_sliding', 'daily_append']) q;
-- two sliding windows, or one beside another set-returning function, run
-- in lockstep: the shorter's rows would end in a window of NULL that never
-- closes, so the query is refused; beside a tumbling window it is not
SELECT streaming.create_query('two_windows',
         $$SELECT streaming.window(ts, '10 seconds', '3 seconds') AS w,
                  streaming.window(ts, '20 seconds', '3 seconds') AS w2, item, count(*) AS n
             FROM bids GROUP BY 1, 2, 3$$,
         event_time => 'ts', watermark => '5 seconds', output_mode => 'update');
SELECT streaming.create_query('window_unnest',
         $$SELECT streaming.window(ts, '10 seconds', '3 seconds') AS w,
                  unnest(ARRAY[item, item + 1]) AS p, count(*) AS n
             FROM bids GROUP BY 1, 2$$,
         event_time => 'ts', watermark => '5 seconds', output_mode => 'update');
SELECT streaming.create_query('window_tumbling',
         $$SELECT streaming.window(ts, '10 seconds', '3 seconds') AS w,
                  streaming.window(ts, '20 seconds') AS w2, item, count(*) AS n
             FROM bids GROUP BY 1, 2, 3$$,
         event_time => 'ts', watermark => '5 seconds', output_mode => 'update');
SELECT streaming.drop_query('window_tumbling');
-- a set-returning function computed per group rather than grouped by
-- would write rows of one key twice: refused too
SELECT streaming.create_query('srf_per_group',
         $$SELECT streaming.window(ts, '10 seconds') AS w, count(*) AS n, generate_series(1, 2) AS g
             FROM bids GROUP BY 1$$,
         event_time => 'ts', watermark => '5 seconds', output_mode => 'update');
SELECT streaming.drop_source('bids');
DROP TABLE bids_fed;
SET TimeZone = 'UTC';
DROP EXTENSION streaming;
