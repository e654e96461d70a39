-- Watermarks and the three output modes, written the way Spark's own tests
-- are: event time v = v seconds after the epoch, count(*) per 5-second
-- tumbling window, watermark delay 10 seconds, one file per batch.  A
-- trigger on each result table records exactly what each batch wrote.
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/wm && mkdir -p /tmp/streaming_regress/wm/first /tmp/streaming_regress/wm/second /tmp/streaming_regress/wm/append /tmp/streaming_regress/wm/update /tmp/streaming_regress/wm/complete /tmp/streaming_regress/wm/bounded';

CREATE TABLE writes (seq serial, query text, op text, start int, n bigint);
CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO writes (query, op, start, n)
    VALUES (TG_TABLE_NAME, lower(TG_OP), extract(epoch FROM lower(NEW.w))::int, NEW.n);
    RETURN NULL;
END $$;

-- feed(dir, batch, values): write one file of event times, v seconds after the epoch
-- (files in ISO 8601: a source reads event times in no other way)
CREATE FUNCTION feed(dir text, batch int, VARIADIC v int[]) RETURNS void LANGUAGE plpgsql
    SET DateStyle = 'ISO' AS $$
BEGIN
    EXECUTE format('COPY (SELECT to_timestamp(x) FROM unnest(%L::int[]) x) TO %L WITH (FORMAT csv)',
                   v, format('/tmp/streaming_regress/wm/%s/%s.csv', dir, lpad(batch::text, 3, '0')));
END $$;

-- what batch N did: the rows it wrote, late rows it dropped, state it kept
CREATE FUNCTION batch(q text, OUT wrote text, OUT dropped bigint, OUT state_rows bigint, OUT watermark int)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.run(q);
    SELECT coalesce(string_agg(format('[%s,%s)=%s', start, start + 5, n), ' ' ORDER BY start), '-')
      INTO wrote FROM writes WHERE query = q;
    DELETE FROM writes WHERE query = q;
    SELECT p.state_rows_dropped_by_watermark, p.state_rows_total, extract(epoch FROM p.watermark)::int
      INTO dropped, state_rows, watermark
      FROM streaming.progress p WHERE p.query = q ORDER BY p.batch_id DESC LIMIT 1;
END $$;

SELECT streaming.create_source('ev_append', 'file', 'ts timestamptz', '{"path": "/tmp/streaming_regress/wm/append", "format": "csv"}');
SELECT streaming.create_source('ev_update', 'file', 'ts timestamptz', '{"path": "/tmp/streaming_regress/wm/update", "format": "csv"}');
SELECT streaming.create_source('ev_complete', 'file', 'ts timestamptz', '{"path": "/tmp/streaming_regress/wm/complete", "format": "csv"}');

-- append: each window once, when the watermark passes its end, then evicted
SELECT streaming.create_query('win_append',
         $$SELECT streaming.window(ts, '5 seconds') AS w, count(*) AS n FROM ev_append GROUP BY 1$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
CREATE TRIGGER log AFTER INSERT OR UPDATE ON win_append FOR EACH ROW EXECUTE FUNCTION log_write();
SELECT feed('append', 1, 10, 11, 12, 13, 14, 15);
SELECT * FROM batch('win_append');
SELECT feed('append', 2, 25);
SELECT * FROM batch('win_append');
SELECT feed('append', 3, 10);
SELECT * FROM batch('win_append');
SELECT extract(epoch FROM lower(w))::int AS start, n FROM win_append ORDER BY w;

-- update: the windows a batch changed; state behind the watermark evicted silently
SELECT streaming.create_query('win_update',
         $$SELECT streaming.window(ts, '5 seconds') AS w, count(*) AS n FROM ev_update GROUP BY 1$$,
         output_mode => 'update', event_time => 'ts', watermark => '10 seconds');
CREATE TRIGGER log AFTER INSERT OR UPDATE ON win_update FOR EACH ROW EXECUTE FUNCTION log_write();
SELECT feed('update', 1, 10, 11, 12, 13, 14, 15);
SELECT * FROM batch('win_update');
SELECT feed('update', 2, 25);
SELECT * FROM batch('win_update');
SELECT feed('update', 3, 10, 25);
SELECT * FROM batch('win_update');
SELECT feed('update', 4, 10);
SELECT * FROM batch('win_update');

-- complete: the whole result every batch; nothing evicted, late rows still count
SELECT streaming.create_query('win_complete',
         $$SELECT streaming.window(ts, '5 seconds') AS w, count(*) AS n FROM ev_complete GROUP BY 1$$,
         output_mode => 'complete', event_time => 'ts', watermark => '10 seconds');
CREATE FUNCTION complete_result() RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('(%s,%s)', extract(epoch FROM lower(w))::int, n), ' ' ORDER BY w) FROM win_complete $$;
SELECT feed('complete', 1, 10, 11, 12);
SELECT dropped, state_rows, watermark, complete_result() FROM batch('win_complete');
SELECT feed('complete', 2, 25);
SELECT dropped, state_rows, watermark, complete_result() FROM batch('win_complete');
SELECT feed('complete', 3, 25);
SELECT dropped, state_rows, watermark, complete_result() FROM batch('win_complete');
SELECT feed('complete', 4, 10);
SELECT dropped, state_rows, watermark, complete_result() FROM batch('win_complete');
SELECT feed('complete', 5, 25);
SELECT dropped, state_rows, watermark, complete_result() FROM batch('win_complete');

-- the watermark never moves backwards and survives in the catalog
SELECT name, extract(epoch FROM watermark)::int AS watermark FROM streaming.queries ORDER BY name;
SELECT query, string_agg(extract(epoch FROM watermark)::int::text, ',' ORDER BY batch_id) AS watermarks
  FROM streaming.progress GROUP BY query ORDER BY query;

-- bounded state: 40 batches, each 10 seconds later than the last, rows in
-- two windows each; append and update keep only the windows still open
SELECT streaming.create_source('ev_bounded', 'file', 'ts timestamptz', '{"path": "/tmp/streaming_regress/wm/bounded", "format": "csv"}');
SELECT streaming.create_query('bounded_append',
         $$SELECT streaming.window(ts, '5 seconds') AS w, count(*) AS n FROM ev_bounded GROUP BY 1$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
SELECT streaming.create_query('bounded_update',
         $$SELECT streaming.window(ts, '5 seconds') AS w, count(*) AS n FROM ev_bounded GROUP BY 1$$,
         output_mode => 'update', event_time => 'ts', watermark => '10 seconds');
CREATE TABLE state_sizes (batch int, append_state bigint, update_state bigint);
DO $$
BEGIN
  FOR b IN 1..40 LOOP
    PERFORM feed('bounded', b, b * 10, b * 10 + 1, b * 10 + 6);
    PERFORM streaming.run('bounded_append');
    PERFORM streaming.run('bounded_update');
    INSERT INTO state_sizes SELECT b,
        (SELECT count(*) FROM streaming.state_4), (SELECT count(*) FROM streaming.state_5);
  END LOOP;
END $$;
-- windows still open after batch b: those ending after 10b + 6 - 10
SELECT append_state, update_state, count(*) AS batches, min(batch), max(batch)
  FROM state_sizes GROUP BY 1, 2 ORDER BY 4;
SELECT count(*) AS windows_emitted, sum(n) AS rows_counted,
       min(extract(epoch FROM lower(w)))::int AS first, max(extract(epoch FROM lower(w)))::int AS last
  FROM bounded_append;
SELECT count(*) AS windows, sum(n) AS rows_counted FROM bounded_update;
SELECT query, sum(state_rows_removed) AS removed FROM streaming.progress
 WHERE query LIKE 'bounded%' GROUP BY query ORDER BY query;

-- invalid combinations are rejected at creation
SELECT streaming.create_query('bad', $$SELECT streaming.window(ts, '5 seconds') AS w, count(*) FROM ev_bounded GROUP BY 1$$,
         output_mode => 'append');
SELECT streaming.create_query('bad', $$SELECT count(*) FROM ev_bounded$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT ts FROM ev_bounded$$, event_time => 'nope', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT ts FROM ev_bounded$$, event_time => 'ts');
SELECT streaming.create_query('bad', $$SELECT ts FROM ev_bounded$$, event_time => 'ts', watermark => '-1 second');

-- update mode, grouped by window and key: the groups of a window that one
-- batch both opens and closes are written to the result only, not to the
-- state; those of a window the state holds, and those with a null key, are
-- merged into the state and evicted as before, and every count is the same
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/wm/keyed && mkdir -p /tmp/streaming_regress/wm/keyed';
SELECT streaming.create_source('ev_keyed', 'file', 'ts timestamptz, k int', '{"path": "/tmp/streaming_regress/wm/keyed", "format": "csv"}');
SELECT streaming.create_query('keyed_update',
         $$SELECT streaming.window(ts, '5 seconds') AS w, k, count(*) AS n, max(ts) AS last FROM ev_keyed GROUP BY 1, 2$$,
         output_mode => 'update', event_time => 'ts', watermark => '10 seconds');
CREATE TABLE keyed_input (batch int, s int, k int);
INSERT INTO keyed_input VALUES
  (1, 10, 1), (1, 11, NULL), (1, 12, 2),
  (2, 13, 1), (2, 14, NULL), (2, 16, 2), (2, 17, NULL), (2, 18, 3), (2, 19, 3), (2, 40, 3),
  (3, 41, 3), (3, 60, 1),
  (4, 10, 1), (4, 75, 2), (4, 61, 1);
CREATE FUNCTION keyed_batch(b int, OUT updated bigint, OUT state_rows bigint, OUT dropped bigint,
                            OUT removed bigint, OUT wrote bigint, OUT watermark int)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format($c$COPY (SELECT to_char(to_timestamp(s) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), k
                              FROM keyed_input WHERE batch = %s) TO %L WITH (FORMAT csv)$c$,
                   b, format('/tmp/streaming_regress/wm/keyed/%s.csv', lpad(b::text, 3, '0')));
    PERFORM streaming.run('keyed_update');
    SELECT p.state_rows_updated, p.state_rows_total, p.state_rows_dropped_by_watermark, p.state_rows_removed,
           p.sink_rows, extract(epoch FROM p.watermark)::int
      INTO updated, state_rows, dropped, removed, wrote, watermark
      FROM streaming.progress p WHERE p.query = 'keyed_update' ORDER BY p.batch_id DESC LIMIT 1;
END $$;
SELECT b, k.* FROM generate_series(1, 4) b, keyed_batch(b) k;
SELECT extract(epoch FROM lower(w))::int AS start, k, n, extract(epoch FROM last)::int AS last
  FROM keyed_update ORDER BY w, k;
-- the same as plain SQL over the rows that were not late (batch 4's 10)
CREATE VIEW keyed_plain AS
SELECT tstzrange(to_timestamp(s / 5 * 5), to_timestamp(s / 5 * 5 + 5)) AS w, k, count(*) AS n, max(to_timestamp(s)) AS last
  FROM keyed_input WHERE NOT (batch = 4 AND s = 10) GROUP BY 1, 2;
SELECT (SELECT count(*) FROM (SELECT * FROM keyed_update EXCEPT SELECT * FROM keyed_plain) a) AS extra,
       (SELECT count(*) FROM (SELECT * FROM keyed_plain EXCEPT SELECT * FROM keyed_update) b) AS missing;
DROP VIEW keyed_plain;
DROP TABLE keyed_input;
DROP FUNCTION keyed_batch(int);
SELECT streaming.drop_query('keyed_update');
SELECT streaming.drop_source('ev_keyed');

-- over two sources the watermark is the least of theirs, and a source that
-- has read no event time yet holds it back (as Spark counts it at 0):
-- second's first rows, a batch after first's, are not late for windows
-- that first's watermark alone would have closed
SELECT streaming.create_source('ev_first', 'file', 'ts timestamptz', '{"path": "/tmp/streaming_regress/wm/first", "format": "csv"}');
SELECT streaming.create_source('ev_second', 'file', 'ts timestamptz', '{"path": "/tmp/streaming_regress/wm/second", "format": "csv"}');
SELECT streaming.create_query('win_two',
         $$SELECT streaming.window(ts, '5 seconds') AS w, count(*) AS n
             FROM (SELECT ts FROM ev_first UNION ALL SELECT ts FROM ev_second) u GROUP BY 1$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
CREATE TRIGGER log AFTER INSERT OR UPDATE ON win_two FOR EACH ROW EXECUTE FUNCTION log_write();
SELECT feed('first', 1, 10, 30);
SELECT * FROM batch('win_two');
SELECT feed('second', 1, 11, 12);
SELECT * FROM batch('win_two');
SELECT feed('first', 2, 40);
SELECT feed('second', 2, 45);
SELECT * FROM batch('win_two');
SELECT extract(epoch FROM lower(w))::int AS start, n FROM win_two ORDER BY w;
SELECT late_rows_total FROM streaming.queries WHERE name = 'win_two';

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source(name) FROM streaming.sources ORDER BY name;
DROP TABLE writes, state_sizes;
DROP FUNCTION log_write(), feed(text, int, int[]), batch(text), complete_result();
DROP EXTENSION streaming;
