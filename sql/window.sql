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
DROP EXTENSION streaming;
