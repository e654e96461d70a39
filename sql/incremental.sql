-- Incrementality: a batch touches only the groups of its own input, and no
-- table grows with the number of input rows
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/incremental && mkdir -p /tmp/streaming_regress/incremental';

SELECT streaming.create_source('readings', 'file',
         schema  => 'sensor int, value int',
         options => '{"path": "/tmp/streaming_regress/incremental", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_query('per_sensor',
         $$SELECT sensor, count(*) AS n, sum(value) AS total FROM readings GROUP BY sensor$$,
         output_mode => 'update');

-- five files of 1000 rows each; file i covers sensors [lo_i, hi_i]
CREATE TABLE plan (file int, lo int, hi int);
INSERT INTO plan VALUES (1, 0, 9), (2, 5, 24), (3, 0, 4), (4, 100, 100), (5, 20, 39);
DO $$
DECLARE p record;
BEGIN
  FOR p IN SELECT * FROM plan ORDER BY file LOOP
    EXECUTE format($f$COPY (SELECT %s + g %% %s, g FROM generate_series(1, 1000) g)
                      TO '/tmp/streaming_regress/incremental/f%s.csv' WITH (FORMAT csv)$f$,
                   p.lo, p.hi - p.lo + 1, p.file);
  END LOOP;
END $$;

SELECT streaming.run('per_sensor');

-- each batch read one file and updated exactly the sensors of that file;
-- the state grows by the sensors not seen before
SELECT pr.batch_id, pr.input_rows, pr.state_rows_updated, pl.hi - pl.lo + 1 AS sensors_in_file,
       pr.state_rows_total, pr.sink_rows
  FROM streaming.progress pr JOIN plan pl ON pl.file = pr.batch_id + 1
 ORDER BY pr.batch_id;

SELECT count(*) AS state_rows FROM streaming.state_1;
SELECT count(*) AS result_rows, sum(n) AS rows_counted FROM per_sensor;

-- five more files of 1000 rows over sensors already known: the state and
-- the result keep their size; offsets and progress grow by one per file
DO $$
BEGIN
  FOR i IN 6..10 LOOP
    EXECUTE format($f$COPY (SELECT g %% 40, 1 FROM generate_series(1, 1000) g)
                      TO '/tmp/streaming_regress/incremental/f%s.csv' WITH (FORMAT csv)$f$, i);
  END LOOP;
END $$;
SELECT streaming.run('per_sensor');
SELECT batch_id, input_rows, state_rows_updated, state_rows_total
  FROM streaming.progress WHERE batch_id >= 5 ORDER BY batch_id;
SELECT (SELECT count(*) FROM streaming.state_1) AS state_rows,
       (SELECT count(*) FROM per_sensor) AS result_rows,
       (SELECT sum(n) FROM per_sensor) AS rows_counted,
       (SELECT count(*) FROM streaming.offsets) AS offsets,
       (SELECT count(*) FROM streaming.progress) AS progress;
SELECT * FROM per_sensor WHERE sensor IN (0, 24, 39, 100) ORDER BY sensor;

-- progress history is bounded by streaming.progress_retention (batches per query)
SET streaming.progress_retention = 3;
COPY (SELECT 1, 1) TO '/tmp/streaming_regress/incremental/f11.csv' WITH (FORMAT csv);
SELECT streaming.run('per_sensor');
SELECT count(*), min(batch_id), max(batch_id) FROM streaming.progress;
RESET streaming.progress_retention;

DROP TABLE plan;
SELECT streaming.drop_query('per_sensor');
SELECT streaming.drop_source('readings');
DROP EXTENSION streaming;
