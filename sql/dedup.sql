-- Deduplication, as Spark's dropDuplicates: SELECT DISTINCT emits each row
-- once and SELECT DISTINCT ON (keys) the first row of each key, across
-- batches; with a watermark and the event time among the keys, late rows
-- are dropped and keys older than the watermark leave the state
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/dedup && mkdir -p /tmp/streaming_regress/dedup';

SELECT streaming.create_source('clicks', 'file', 'user_id int, page text, ts timestamptz',
         '{"path": "/tmp/streaming_regress/dedup", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_query('pages', 'SELECT DISTINCT user_id, page FROM clicks');
SELECT streaming.create_query('first_visit', 'SELECT DISTINCT ON (user_id) user_id, page, ts FROM clicks');
SELECT streaming.create_query('visits', 'SELECT DISTINCT ON (user_id, ts) user_id, ts, page FROM clicks',
         event_time => 'ts', watermark => '1 minute');

COPY (VALUES (1, 'a', '2024-01-01 00:00:00+00'), (1, 'a', '2024-01-01 00:00:00+00'),
             (2, 'b', '2024-01-01 00:01:00+00'), (NULL, 'c', '2024-01-01 00:02:00+00'),
             (NULL, 'c', '2024-01-01 00:02:00+00'))
  TO '/tmp/streaming_regress/dedup/1.csv' WITH (FORMAT csv);
COPY (VALUES (1, 'a', '2024-01-01 00:00:00+00'), (1, 'b', '2024-01-01 00:03:00+00'),
             (2, 'b', '2024-01-01 00:05:00+00'), (3, 'a', '2024-01-01 00:10:00+00'))
  TO '/tmp/streaming_regress/dedup/2.csv' WITH (FORMAT csv);
COPY (VALUES (1, 'a', '2024-01-01 00:00:00+00'), (4, 'd', '2024-01-01 00:12:00+00'))
  TO '/tmp/streaming_regress/dedup/3.csv' WITH (FORMAT csv);
SELECT streaming.run('pages'), streaming.run('first_visit'), streaming.run('visits');

-- each row once; each user's first row; each (user, time) once, late rows dropped
SELECT * FROM pages ORDER BY user_id NULLS FIRST, page;
SELECT * FROM first_visit ORDER BY user_id NULLS FIRST;
SELECT * FROM visits ORDER BY ts, user_id;
SELECT query, batch_id, input_rows, sink_rows, state_rows_total, state_rows_dropped_by_watermark AS late,
       state_rows_removed AS evicted
  FROM streaming.progress ORDER BY query, batch_id;
-- the state of the watermarked query keeps only keys the watermark has not passed
SELECT user_id, ts FROM streaming.state_3 ORDER BY ts;
SELECT step, statement FROM streaming.explain('visits') WHERE step IN ('shape', 'state table', 'emit');

-- what deduplication cannot do
CREATE FUNCTION try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE msg text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN msg || coalesce(' (' || nullif(hint, '') || ')', '');
END
$$;
SELECT try($q$SELECT streaming.create_query('x', 'SELECT DISTINCT ON (user_id % 2) page FROM clicks')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT DISTINCT user_id FROM clicks', output_mode => 'complete')$q$);

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source('clicks');
DROP EXTENSION streaming;
DROP FUNCTION try(text);
