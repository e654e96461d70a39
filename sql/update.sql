-- Update mode: the result holds each group's latest value; progress counts
-- exactly the groups a batch changed
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/update && mkdir -p /tmp/streaming_regress/update';

SELECT streaming.create_source('events', 'file',
         schema  => 'device text, reading int, ok boolean',
         options => '{"path": "/tmp/streaming_regress/update", "format": "csv"}');
SELECT streaming.create_query('device_stats',
         $$SELECT device, count(*) AS n, count(reading) AS readings, sum(reading) AS total,
                  avg(reading) AS mean, min(reading) AS low, max(reading) AS high
             FROM events GROUP BY device$$,
         output_mode => 'update');
\d device_stats

-- batch 0 touches a and b
COPY (VALUES ('a', 1, true), ('a', 2, true), ('b', 10, false)) TO '/tmp/streaming_regress/update/1.csv' WITH (FORMAT csv);
SELECT streaming.run('device_stats');
SELECT * FROM device_stats ORDER BY device;
-- batch 1 touches b and c only; a keeps its value
COPY (VALUES ('b', NULL, true), ('c', 7, true), ('b', 4, true)) TO '/tmp/streaming_regress/update/2.csv' WITH (FORMAT csv);
SELECT streaming.run('device_stats');
SELECT * FROM device_stats ORDER BY device;
-- batch 2 touches a only, with a NULL key group as well
COPY (VALUES ('a', 100, true), (NULL, 5, true), (NULL, 6, false)) TO '/tmp/streaming_regress/update/3.csv' WITH (FORMAT csv);
SELECT streaming.run('device_stats');
SELECT * FROM device_stats ORDER BY device NULLS FIRST;
-- batch 3: the NULL group merges with the NULL group
COPY (VALUES (NULL, 1, true)) TO '/tmp/streaming_regress/update/4.csv' WITH (FORMAT csv);
SELECT streaming.run('device_stats');
SELECT * FROM device_stats ORDER BY device NULLS FIRST;

SELECT batch_id, input_rows, state_rows_updated, state_rows_total, sink_rows
  FROM streaming.progress ORDER BY batch_id;

-- the incremental result equals the same query over all the input at once
CREATE TABLE all_events (device text, reading int, ok boolean);
COPY all_events FROM PROGRAM 'cat /tmp/streaming_regress/update/*.csv' WITH (FORMAT csv);
(SELECT device, count(*) AS n, count(reading) AS readings, sum(reading) AS total,
        avg(reading) AS mean, min(reading) AS low, max(reading) AS high
   FROM all_events GROUP BY device
 EXCEPT ALL SELECT * FROM device_stats)
UNION ALL
(SELECT * FROM device_stats
 EXCEPT ALL SELECT device, count(*), count(reading), sum(reading), avg(reading), min(reading), max(reading)
   FROM all_events GROUP BY device);

-- FILTER and several aggregate types
SELECT streaming.create_query('filtered',
         $$SELECT ok, count(*) FILTER (WHERE reading > 3) AS big, sum(reading::numeric) AS total,
                  avg(reading::float4) AS mean4, avg(reading::int8) AS mean8, sum(reading::float8) AS total8
             FROM events GROUP BY ok$$,
         output_mode => 'update');
SELECT streaming.run('filtered');
SELECT * FROM filtered ORDER BY ok;
(SELECT ok, count(*) FILTER (WHERE reading > 3) AS big, sum(reading::numeric) AS total,
        avg(reading::float4) AS mean4, avg(reading::int8) AS mean8, sum(reading::float8) AS total8
   FROM all_events GROUP BY ok
 EXCEPT ALL SELECT * FROM filtered);
DROP TABLE all_events;
SELECT streaming.drop_query('device_stats');
SELECT streaming.drop_query('filtered');
SELECT streaming.drop_source('events');
DROP EXTENSION streaming;
