-- clean_source: files that committed batches processed are deleted or
-- moved to an archive directory, at the next batch (Spark's cleanSource)
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/clean && mkdir -p /tmp/streaming_regress/clean/del /tmp/streaming_regress/clean/arc /tmp/streaming_regress/clean/archive';

SELECT streaming.create_source('to_delete', 'file', 'v int',
         '{"path": "/tmp/streaming_regress/clean/del", "format": "csv", "clean_source": "delete"}');
SELECT streaming.create_source('to_archive', 'file', 'v int',
         '{"path": "/tmp/streaming_regress/clean/arc", "format": "csv", "clean_source": "archive",
           "source_archive_dir": "/tmp/streaming_regress/clean/archive"}');
SELECT streaming.create_query('del_sum', 'SELECT sum(v) AS total FROM to_delete', output_mode => 'complete');
SELECT streaming.create_query('arc_sum', 'SELECT sum(v) AS total FROM to_archive', output_mode => 'complete');

COPY (VALUES (1), (2)) TO '/tmp/streaming_regress/clean/del/a.csv';
COPY (VALUES (3)) TO '/tmp/streaming_regress/clean/del/b.csv';
COPY (VALUES (10), (20)) TO '/tmp/streaming_regress/clean/arc/a.csv';

-- a batch in a transaction that rolls back cleans nothing up
BEGIN;
SELECT streaming.run('del_sum');
SELECT streaming.run('del_sum');
ROLLBACK;
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/clean/del') f ORDER BY f;

-- the batch processes the files; the next one (even with no input) cleans them
SELECT streaming.run('del_sum'), streaming.run('arc_sum');
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/clean/del') f ORDER BY f;
SELECT streaming.run('del_sum'), streaming.run('arc_sum');
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/clean/del') f ORDER BY f;
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/clean/arc') f ORDER BY f;
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/clean/archive') f ORDER BY f;
SELECT (SELECT total FROM del_sum) AS del_total, (SELECT total FROM arc_sum) AS arc_total;

-- new input is read, then cleaned up in its turn
COPY (VALUES (4)) TO '/tmp/streaming_regress/clean/del/c.csv';
SELECT streaming.run('del_sum');
SELECT streaming.run('del_sum');
SELECT f FROM pg_ls_dir('/tmp/streaming_regress/clean/del') f ORDER BY f;
SELECT total FROM del_sum;

-- options
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
SELECT try($q$SELECT streaming.create_source('x', 'file', 'v int', '{"path": "/tmp/streaming_regress/clean/del", "clean_source": "shred"}')$q$);
SELECT try($q$SELECT streaming.create_source('x', 'file', 'v int', '{"path": "/tmp/streaming_regress/clean/del", "clean_source": "archive"}')$q$);
SELECT try($q$SELECT streaming.create_source('x', 'file', 'v int', '{"path": "/tmp/streaming_regress/clean", "clean_source": "archive", "source_archive_dir": "/tmp/streaming_regress/clean/archive"}')$q$);
SELECT try($q$SELECT streaming.create_source('x', 'file', 'v int', '{"path": "/tmp/streaming_regress/clean/del", "source_archive_dir": "/tmp/streaming_regress/clean/archive"}')$q$);
CREATE ROLE regress_clean_user;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_clean_user;
GRANT pg_read_server_files TO regress_clean_user;
GRANT CREATE ON SCHEMA public TO regress_clean_user;
SET ROLE regress_clean_user;
SELECT try($q$SELECT streaming.create_source('x', 'file', 'v int', '{"path": "/tmp/streaming_regress/clean/del", "clean_source": "delete"}')$q$);
RESET ROLE;

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source(name) FROM streaming.sources ORDER BY name;
DROP EXTENSION streaming;
DROP FUNCTION try(text);
REVOKE CREATE ON SCHEMA public FROM regress_clean_user;
DROP ROLE regress_clean_user;
