-- The rate source: the deterministic variant gives identical batches on
-- every run (value = row index, timestamp = start + batch * advance)
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';

SELECT streaming.create_source('ticks', 'rate',
         options => '{"rows_per_batch": 3, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 4000}');
\d ticks
-- outside a batch: a peek at the first batch
SELECT * FROM ticks;

SELECT streaming.create_query('per_10s',
         $$SELECT streaming.window("timestamp", '10 seconds') AS w, count(*) AS n,
                  sum(value) AS total, min(value) AS first, max(value) AS last
             FROM ticks GROUP BY 1$$, output_mode => 'complete');
-- an endless source has one batch available now
SELECT streaming.run('per_10s');
SELECT streaming.run('per_10s', max_batches => 4);
SELECT extract(epoch FROM lower(w))::int - 1704067200 AS start, n, total, first, last FROM per_10s ORDER BY w;
SELECT batch_id, input_rows, sources->0->'start_offset' AS start_offset, sources->0->'end_offset' AS end_offset
  FROM streaming.progress ORDER BY batch_id;
SELECT partition, "offset" FROM streaming.offsets ORDER BY partition;

-- bad options
SELECT streaming.create_source('bad', 'rate', options => '{"rows_per_second": 5, "rows_per_batch": 5}');
SELECT streaming.create_source('bad', 'rate', options => '{"start_timestamp": "2024-01-01"}');
SELECT streaming.create_source('bad', 'rate', options => '{"rows_per_second": -1}');
SELECT streaming.create_source('bad', 'rate', options => '{"ramp_up_time": "1 month"}');
SELECT streaming.create_source('bad', 'rate', 'ts timestamptz, v int', '{}');

SELECT streaming.drop_query('per_10s');
SELECT streaming.drop_source('ticks');
DROP EXTENSION streaming;
