-- A batch larger than work_mem: the batch's rows spill to disk and are
-- read back by the scan of the source
CREATE EXTENSION streaming;
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/spill && mkdir -p /tmp/streaming_regress/spill';
SET work_mem = '64kB';
COPY (SELECT 'k' || (i % 10), i, repeat('x', 50) FROM generate_series(1, 20000) i)
  TO '/tmp/streaming_regress/spill/1.csv' WITH (FORMAT csv);
SELECT streaming.create_source('big', 'file', 'k text, v int, pad text',
         options => '{"path": "/tmp/streaming_regress/spill", "format": "csv"}');
SELECT streaming.create_query('big_totals', 'SELECT k, count(*) AS n, sum(v) AS total FROM big GROUP BY k',
         output_mode => 'update');
SELECT streaming.run('big_totals');
SELECT k, n, total FROM big_totals ORDER BY k;
SELECT input_rows FROM streaming.progress WHERE query = 'big_totals';
SELECT streaming.drop_query('big_totals');
SELECT streaming.drop_source('big');
DROP EXTENSION streaming;
