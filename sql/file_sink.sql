-- The file sink: each batch's rows as one csv or JSON-lines file, listed in
-- the manifest (streaming.sink_files) by the batch's commit
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/file_sink && mkdir -p /tmp/streaming_regress/file_sink/in';

SELECT streaming.create_source('ev', 'file', 'id int, name text, ts timestamptz, v numeric, tags jsonb',
         '{"path": "/tmp/streaming_regress/file_sink/in", "format": "csv"}');

-- options and output modes are checked at create_query
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
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'file')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'file', sink_options => '{"path": "out"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/o", "format": "parquet"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/o", "format": "json", "header": true}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/o", "colour": "red"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT name, count(*) FROM ev GROUP BY name', output_mode => 'update', sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/o"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'kafka')$q$);
CREATE ROLE regress_file_sink_user;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_file_sink_user;
GRANT SELECT ON ev TO regress_file_sink_user;
GRANT CREATE ON SCHEMA public TO regress_file_sink_user;
SET ROLE regress_file_sink_user;
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/o"}')$q$);
RESET ROLE;
-- the right is checked at every batch: once revoked, no more files
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && mkdir -p /tmp/streaming_regress/file_sink/in_user';
SELECT streaming.create_source('ev_user', 'file', 'id int',
         '{"path": "/tmp/streaming_regress/file_sink/in_user", "format": "csv"}');
GRANT SELECT ON ev_user TO regress_file_sink_user;
GRANT pg_write_server_files TO regress_file_sink_user;
SET ROLE regress_file_sink_user;
SELECT streaming.create_query('user_files', 'SELECT id FROM ev_user', sink => 'file',
         sink_options => '{"path": "/tmp/streaming_regress/file_sink/user"}');
RESET ROLE;
REVOKE pg_write_server_files FROM regress_file_sink_user;
COPY (VALUES (7)) TO '/tmp/streaming_regress/file_sink/in_user/0.csv' WITH (FORMAT csv);
SET ROLE regress_file_sink_user;
SELECT try($q$SELECT streaming.run('user_files')$q$);
SELECT count(*) AS files FROM streaming.sink_files WHERE query = 'user_files';
SELECT streaming.drop_query('user_files');
RESET ROLE;
SELECT streaming.drop_source('ev_user');

-- csv with a header, json lines; the directory is created
SELECT streaming.create_query('to_csv', 'SELECT id, name, ts, v, tags FROM ev',
         sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/csv", "header": true}');
SELECT streaming.create_query('to_json', 'SELECT id, name, ts, v, tags FROM ev WHERE id < 100',
         sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/json", "format": "json"}');
COPY (VALUES (1, 'plain', '2024-01-01 00:00:10+00', 1.5, '{"a": [1, 2]}'::jsonb),
             (2, 'comma, "quote"', '2024-01-01 00:00:20+00', NULL, NULL),
             (3, '', '2024-01-01 00:01:30+00', 'NaN', '[]'))
  TO '/tmp/streaming_regress/file_sink/in/a.csv' WITH (FORMAT csv);
SELECT streaming.run('to_csv'), streaming.run('to_json');
SELECT pg_read_file('/tmp/streaming_regress/file_sink/csv/part-0000000000.csv');
SELECT pg_read_file('/tmp/streaming_regress/file_sink/json/part-0000000000.json');
SELECT query, batch_id, regexp_replace(path, '.*/', '') AS file, rows, bytes FROM streaming.sink_files ORDER BY query, batch_id;

-- two queries cannot share a directory: their files would overwrite each other
SELECT try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink//csv/"}')$q$);

-- a batch that rolls back takes its file with it; run again, it is back
COPY (VALUES (4, 'four', '2024-01-01 00:02:00+00', 4, NULL::jsonb))
  TO '/tmp/streaming_regress/file_sink/in/b.csv' WITH (FORMAT csv);
BEGIN;
SELECT streaming.run('to_csv');
SELECT count(*) FROM pg_ls_dir('/tmp/streaming_regress/file_sink/csv') f WHERE f = 'part-0000000001.csv';
ROLLBACK;
SELECT count(*) FROM pg_ls_dir('/tmp/streaming_regress/file_sink/csv') f WHERE f = 'part-0000000001.csv';
SELECT streaming.run('to_csv');
SELECT pg_read_file('/tmp/streaming_regress/file_sink/csv/part-0000000001.csv');
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/file_sink/csv') f ORDER BY f;

-- a batch that writes no row writes no file
SELECT streaming.run('to_json');
COPY (VALUES (200, 'filtered out', '2024-01-01 00:03:00+00', 0, NULL::jsonb))
  TO '/tmp/streaming_regress/file_sink/in/c.csv' WITH (FORMAT csv);
SELECT streaming.run('to_json');
SELECT batch_id, input_rows, sink_rows FROM streaming.progress WHERE query = 'to_json' ORDER BY batch_id;
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/file_sink/json') f ORDER BY f;
SELECT query, batch_id, regexp_replace(path, '.*/', '') AS file, rows FROM streaming.sink_files ORDER BY query, batch_id;

-- a windowed aggregate in append mode: each window once, when the watermark
-- closes it; in JSON a window is {"start": …, "end": …}
SELECT streaming.create_query('windows',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n, sum(v) AS total FROM ev GROUP BY 1$$,
         event_time => 'ts', watermark => '0 seconds',
         sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/windows", "format": "json"}');
SELECT streaming.run('windows');
SELECT regexp_replace(path, '.*/', '') AS file, rows FROM streaming.sink_files WHERE query = 'windows';
SELECT l FROM streaming.sink_files, regexp_split_to_table(pg_read_file(path), E'\n') AS l
 WHERE query = 'windows' AND l <> '' ORDER BY l;

-- a window closes many groups at once: each row written to csv as its
-- group's final values, the same as plain SQL over the input
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && mkdir -p /tmp/streaming_regress/file_sink/in_keys';
SELECT streaming.create_source('ev_keys', 'file', 'ts timestamptz, k int, v int',
         '{"path": "/tmp/streaming_regress/file_sink/in_keys", "format": "csv"}');
SELECT streaming.create_query('keyed_windows',
         $$SELECT streaming.window(ts, '1 minute') AS w, k, count(*) AS n, sum(v) AS total FROM ev_keys GROUP BY 1, 2$$,
         event_time => 'ts', watermark => '0 seconds',
         sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/file_sink/keyed"}');
COPY (SELECT to_char(timestamp '2024-01-01' + i * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), i % 20, i
        FROM generate_series(1, 200) i)
  TO '/tmp/streaming_regress/file_sink/in_keys/1.csv' WITH (FORMAT csv);
SELECT streaming.run('keyed_windows');
CREATE TABLE keyed_out (w tstzrange, k int, n bigint, total bigint);
COPY keyed_out FROM '/tmp/streaming_regress/file_sink/keyed/part-0000000000.csv' WITH (FORMAT csv);
SELECT count(*) AS rows, (SELECT rows FROM streaming.sink_files WHERE query = 'keyed_windows') AS manifest
  FROM keyed_out;
SELECT count(*) AS differ FROM (
  (SELECT * FROM keyed_out EXCEPT
   SELECT streaming.window(t, '1 minute'), i % 20, count(*), sum(i)
     FROM generate_series(1, 200) i, LATERAL (SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second') AS x(t)
    WHERE t < '2024-01-01 00:03:00+00' GROUP BY 1, 2)
  UNION ALL
  (SELECT streaming.window(t, '1 minute'), i % 20, count(*), sum(i)
     FROM generate_series(1, 200) i, LATERAL (SELECT timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second') AS x(t)
    WHERE t < '2024-01-01 00:03:00+00' GROUP BY 1, 2
   EXCEPT SELECT * FROM keyed_out)) d;
DROP TABLE keyed_out;
SELECT streaming.drop_query('keyed_windows');
SELECT streaming.drop_source('ev_keys');

-- dropping a query keeps its files, and forgets its manifest
SELECT streaming.drop_query('to_json');
SELECT count(*) FROM streaming.sink_files WHERE query = 'to_json';
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/file_sink/json') f ORDER BY f;

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source('ev');
DROP EXTENSION streaming;
DROP FUNCTION try(text);
REVOKE CREATE ON SCHEMA public FROM regress_file_sink_user;
DROP ROLE regress_file_sink_user;
