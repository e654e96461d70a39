-- The seed example: a complete-mode aggregate over CSV files, batch by batch
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/complete && mkdir -p /tmp/streaming_regress/complete';

SELECT streaming.create_source('orders', 'file',
         schema  => 'id int, name text, value float8',
         options => '{"path": "/tmp/streaming_regress/complete", "format": "csv", "header": true}');
SELECT streaming.create_query('sales_by_name',
         $$SELECT name, sum(value) AS total FROM orders GROUP BY name$$,
         output_mode => 'complete');
\d sales_by_name
SELECT name, output_mode, shape, sources, result_table, last_batch_id FROM streaming.queries;

-- no input yet: nothing runs
SELECT streaming.run('sales_by_name');
SELECT count(*) FROM streaming.progress;

-- file 1
COPY (VALUES (1, 'apple', 1.5), (2, 'pear', 2.0), (3, 'apple', 3.25), (4, 'fig', NULL))
  TO '/tmp/streaming_regress/complete/f1.csv' WITH (FORMAT csv, HEADER);
SELECT streaming.run('sales_by_name');
SELECT * FROM sales_by_name ORDER BY name;

-- file 2: new sums
COPY (VALUES (5, 'pear', 10.0), (6, 'kiwi', 0.5), (7, 'fig', 4.0), (8, 'apple', -0.75))
  TO '/tmp/streaming_regress/complete/f2.csv' WITH (FORMAT csv, HEADER);
SELECT streaming.run('sales_by_name');
SELECT * FROM sales_by_name ORDER BY name;

-- a third run with no new file changes nothing and reads nothing twice
SELECT streaming.run('sales_by_name');
SELECT * FROM sales_by_name ORDER BY name;

-- what each batch did
SELECT batch_id, input_rows, state_rows_total, state_rows_updated, sink_rows,
       sources->0->'start_offset' AS start_offset, sources->0->'end_offset' AS end_offset
  FROM streaming.progress ORDER BY batch_id;
SELECT regexp_replace(partition, '.*/', '') AS file, "offset" > 0 AS has_size, batch_id
  FROM streaming.offsets ORDER BY batch_id;
SELECT last_batch_id, state_rows FROM streaming.queries;

-- max_batches bounds a run; each file is one batch with max_files_per_trigger = 1
SELECT streaming.create_source('orders2', 'file',
         schema  => 'id int, name text, value float8',
         options => '{"path": "/tmp/streaming_regress/complete", "format": "csv", "header": true, "max_files_per_trigger": 1}');
SELECT streaming.create_query('counts', $$SELECT count(*) AS n, sum(value) AS total, min(id), max(id) FROM orders2$$,
                              output_mode => 'complete');
SELECT streaming.run('counts', max_batches => 1);
SELECT * FROM counts;
SELECT streaming.run('counts');
SELECT * FROM counts;
SELECT query, batch_id, input_rows, state_rows_total, state_rows_updated, sink_rows
  FROM streaming.progress WHERE query = 'counts' ORDER BY batch_id;

-- the query owns its tables: a source it reads cannot be dropped
SELECT streaming.drop_source('orders');
DROP FOREIGN TABLE orders;
SELECT streaming.drop_query('sales_by_name');
SELECT to_regclass('sales_by_name');
SELECT streaming.drop_query('counts', keep_result => true);
SELECT * FROM counts;
SELECT count(*) FROM streaming.offsets;
SELECT count(*) FROM streaming.progress;
SELECT streaming.drop_query('counts');
SELECT streaming.drop_query('counts', if_exists => true);
DROP TABLE counts;
DROP EXTENSION streaming CASCADE;
