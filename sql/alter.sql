-- alter_query() and reset_query(): changing a query in place, repairing a
-- watermark that a bad event time pushed ahead, rebuilding a query from its
-- sources; the errors history and the status columns a dashboard charts
CREATE EXTENSION streaming;
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/alter && mkdir -p /tmp/streaming_regress/alter/in';

CREATE FUNCTION alter_try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE msg text; detail text; hint text; code text;
BEGIN
    EXECUTE stmt;
    RETURN 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT, code = RETURNED_SQLSTATE;
    RETURN code || ': ' || msg || coalesce(' [' || nullif(detail, '') || ']', '')
           || coalesce(' (' || nullif(hint, '') || ')', '');
END
$$;

-- one file of input per batch: (event time, key, value)
CREATE FUNCTION alter_file(name text, body text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT pg_catalog.unnest(pg_catalog.string_to_array(%L, E''\n''))) TO PROGRAM %L', body,
                   format('cat > /tmp/streaming_regress/alter/in/%s.tmp && mv /tmp/streaming_regress/alter/in/%s.tmp /tmp/streaming_regress/alter/in/%s.csv',
                          name, name, name));
END
$$;

SELECT streaming.create_source('ev', 'file', 'ts timestamptz, k int, v int',
         '{"path": "/tmp/streaming_regress/alter/in", "format": "csv"}');
-- ten-minute windows, emitted once when closed (append) or kept up to date (update)
SELECT streaming.create_query('win',
         $$SELECT streaming.window(ts, '10 minutes') AS w, k, count(*) AS n, sum(v) AS total
             FROM ev GROUP BY 1, 2$$,
         output_mode => 'append', event_time => 'ts', watermark => '5 minutes');
SELECT streaming.create_query('upd',
         $$SELECT streaming.window(ts, '10 minutes') AS w, count(*) AS n, sum(v) AS total
             FROM ev GROUP BY 1$$,
         output_mode => 'update', event_time => 'ts', watermark => '5 minutes');

-- the watermark cannot be moved before a batch has set it
SELECT alter_try($$SELECT streaming.alter_query('win', watermark_at => '2024-01-01 10:00:00+00')$$);

SELECT alter_file('a', E'2024-01-01T10:01:00Z,1,1\n2024-01-01T10:03:00Z,1,2\n2024-01-01T10:12:00Z,1,3\n2024-01-01T10:14:00Z,2,4');
SELECT streaming.run('win'), streaming.run('upd');
SELECT alter_file('b', E'2024-01-01T10:21:00Z,1,5');
SELECT streaming.run('win'), streaming.run('upd');
SELECT name, watermark, closed_until FROM streaming.queries ORDER BY name;

-- a bad event time, a day ahead, pushes the watermark a day ahead: every
-- window open then is closed (append: emitted; update: evicted)
SELECT alter_file('c', E'2024-01-02T10:00:00Z,1,100');
SELECT streaming.run('win'), streaming.run('upd');
SELECT name, watermark, closed_until FROM streaming.queries ORDER BY name;
-- so the rows that come next are all late
SELECT alter_file('d', E'2024-01-01T10:25:00Z,1,6\n2024-01-01T10:31:00Z,1,7\n2024-01-01T10:33:00Z,1,8');
SELECT streaming.run('win'), streaming.run('upd');
SELECT query, batch_id, input_rows, state_rows_dropped_by_watermark
  FROM streaming.progress WHERE batch_id = 3 ORDER BY query;

-- the watermark is moved back, never forward
SELECT alter_try($$SELECT streaming.alter_query('win', watermark_at => '2024-01-03 00:00:00+00')$$);
SELECT streaming.alter_query('win', watermark_at => '2024-01-01 10:26:00+00');
SELECT streaming.alter_query('upd', watermark_at => '2024-01-01 10:26:00+00');
SELECT name, watermark, closed_until FROM streaming.queries ORDER BY name;

-- 10:27 falls in the window [10:20, 10:30), closed before: still late;
-- 10:32 and 10:34 open the window [10:30, 10:40), which had not closed
SELECT alter_file('e', E'2024-01-01T10:27:00Z,1,9\n2024-01-01T10:32:00Z,1,10\n2024-01-01T10:34:00Z,1,11');
SELECT streaming.run('win'), streaming.run('upd');
SELECT query, batch_id, input_rows, state_rows_dropped_by_watermark
  FROM streaming.progress WHERE batch_id = 4 ORDER BY query;
SELECT alter_file('f', E'2024-01-01T10:46:00Z,1,12');
SELECT streaming.run('win'), streaming.run('upd');

-- each window once; [10:20, 10:30) as it was closed, before the bad row
SELECT lower(w) AS w, k, n, total FROM win ORDER BY w, k;
SELECT count(*) AS emitted_twice FROM (SELECT w, k FROM win GROUP BY w, k HAVING count(*) > 1) s;
-- update mode: the evicted window's row is not overwritten by the late 10:27
SELECT lower(w) AS w, n, total FROM upd ORDER BY w;
-- the bad row's window is still in state, open
SELECT k1 AS w, k2 AS k FROM streaming.state_1 ORDER BY 1, 2;

-- trigger, watermark delay and on_error change in place
SELECT streaming.alter_query('win', trigger => '5 seconds', watermark => '1 minute', on_error => 'fail');
SELECT trigger, watermark_delay, on_error, last_batch_id, state_rows FROM streaming.queries WHERE name = 'win';
SELECT alter_file('g', E'2024-01-01T10:47:00Z,1,13\nnot a time,1,14');
SELECT alter_try($$SELECT streaming.run('win')$$);
SELECT streaming.alter_query('win', on_error => 'dead_letter');
SELECT streaming.run('win');
SELECT position, error FROM streaming.dead_letters WHERE query = 'win';

-- what cannot be changed, or not so
SELECT alter_try($$SELECT streaming.alter_query('win')$$);
SELECT alter_try($$SELECT streaming.alter_query('win', trigger => '2 days')$$);
SELECT alter_try($$SELECT streaming.alter_query('win', on_error => 'ignore')$$);
SELECT alter_try($$SELECT streaming.alter_query('win', watermark => '-1 minute')$$);
SELECT alter_try($$SELECT streaming.alter_query('nope', trigger => '1 second')$$);
SELECT streaming.create_query('plain', $$SELECT k, count(*) AS n FROM ev GROUP BY k$$,
                              output_mode => 'complete');
SELECT alter_try($$SELECT streaming.alter_query('plain', watermark => '1 minute')$$);
SELECT alter_try($$SELECT streaming.alter_query('plain', watermark_at => '2024-01-01 00:00:00+00')$$);

-- only the owner may alter or reset a query
CREATE ROLE alter_other;
SET ROLE alter_other;
SELECT alter_try($$SELECT streaming.alter_query('win', trigger => '1 second')$$);
SELECT alter_try($$SELECT streaming.reset_query('win')$$);
SELECT count(*) AS errors_visible FROM streaming.errors;
RESET ROLE;

-- reset: the bad input is removed, and the query rebuilt from its source
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm /tmp/streaming_regress/alter/in/c.csv /tmp/streaming_regress/alter/in/g.csv';
SELECT streaming.reset_query('win');
SELECT watermark, closed_until, state_rows, input_rows_total, last_batch_id FROM streaming.queries WHERE name = 'win';
SELECT (SELECT count(*) FROM win) AS result_rows, (SELECT count(*) FROM streaming.state_1) AS state_rows,
       (SELECT count(*) FROM streaming.offsets WHERE query = 'win') AS offsets,
       (SELECT count(*) FROM streaming.dead_letters WHERE query = 'win') AS dead_letters;
SELECT streaming.run('win');
-- the result equals plain SQL over the files: the windows that the
-- watermark (largest event time - 1 minute) has closed
CREATE TABLE alter_raw (ts timestamptz, k int, v int);
COPY alter_raw FROM PROGRAM 'cat /tmp/streaming_regress/alter/in/*.csv' WITH (FORMAT csv);
SELECT lower(w) AS w, k, n, total FROM win
EXCEPT ALL
SELECT lower(streaming.window(ts, '10 minutes')), k, count(*), sum(v) FROM alter_raw
 GROUP BY 1, 2 HAVING lower(streaming.window(ts, '10 minutes')) + '10 minutes' <= (SELECT max(ts) - '1 minute'::interval FROM alter_raw);
SELECT lower(streaming.window(ts, '10 minutes')), k, count(*), sum(v) FROM alter_raw
 GROUP BY 1, 2 HAVING lower(streaming.window(ts, '10 minutes')) + '10 minutes' <= (SELECT max(ts) - '1 minute'::interval FROM alter_raw)
EXCEPT ALL
SELECT lower(w) AS w, k, n, total FROM win;
SELECT count(*) AS result_rows FROM win;
SELECT last_batch_id, input_rows_total, late_rows_total FROM streaming.queries WHERE name = 'win';

-- a query whose source is a table cannot be read again from its start
CREATE TABLE alter_t (id int, v int);
SELECT streaming.create_source('tsrc', 'table', options => '{"table": "public.alter_t"}');
SELECT streaming.create_query('tq', $$SELECT id, v FROM tsrc$$);
SELECT alter_try($$SELECT streaming.reset_query('tq')$$);
SELECT streaming.drop_query('tq');
SELECT streaming.drop_source('tsrc');

-- totals for a dashboard, from the catalog alone
SELECT name, input_rows_total, late_rows_total, dead_letters_total, sink_rows_total
  FROM streaming.queries ORDER BY name;
SELECT name, state, activity, backlog, watermark_delay, closed_until,
       state_bytes > 0 AS has_state_bytes, failed_at
  FROM streaming.status ORDER BY name;

-- the backlog is what the last batch's sources had beyond what it read, by
-- their own count (as a Kafka source records it: a batch that read up to
-- offset 30 of partition 0, of 100, and all 20 of partition 1)
INSERT INTO streaming.progress (query, batch_id, "timestamp", input_rows, duration_ms, sources, sink_rows)
VALUES ('upd', 1000, now(), 50, '{"trigger_execution": 12.5}',
        '[{"source": "ev", "kind": "kafka", "start_offset": {"t:0": 0, "t:1": 0},
           "end_offset": {"t:0": 30, "t:1": 20}, "latest_offset": {"t:0": 100, "t:1": 20}, "input_rows": 50}]', 0);
SELECT name, backlog, last_batch_ms FROM streaming.status WHERE name = 'upd';
-- a file source says nothing of what waits
SELECT name, backlog, last_batch_ms > 0 AS timed FROM streaming.status WHERE name = 'win';

-- the errors history: each new error or condition of a query, the last
-- 100 of each (written as a worker writes them)
UPDATE streaming.queries SET last_error = 'first failure' WHERE name = 'win';
UPDATE streaming.queries SET last_error = 'first failure' WHERE name = 'win';
UPDATE streaming.queries SET condition = 'waiting for a directory' WHERE name = 'win';
UPDATE streaming.queries SET condition = NULL WHERE name = 'win';
UPDATE streaming.queries SET status = 'failed', last_error = 'second failure' WHERE name = 'win';
SELECT query, kind, batch_id, message FROM streaming.errors ORDER BY id;
SELECT state, failed_at = (SELECT max(occurred_at) FROM streaming.errors WHERE kind = 'failed') AS failed_at_is_last
  FROM streaming.status WHERE name = 'win';
DO $$
BEGIN
    FOR i IN 1..150 LOOP
        UPDATE streaming.queries SET condition = 'condition ' || i WHERE name = 'upd';
    END LOOP;
END
$$;
SELECT count(*), (array_agg(message ORDER BY id))[1] AS oldest, max(id) - min(id) AS span
  FROM streaming.errors WHERE query = 'upd';
SELECT count(*) FROM streaming.errors WHERE query = 'win';

-- deduplication and session windows: what the watermark closed stays
-- closed when it is moved back (a forgotten key, a written session)
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/streaming_regress/alter/dd';
SELECT streaming.create_source('dd', 'file', 'k int, ts timestamptz, v int',
         '{"path": "/tmp/streaming_regress/alter/dd", "format": "csv"}');
SELECT streaming.create_query('seen', 'SELECT DISTINCT ON (k, ts) k, ts, v FROM dd',
         event_time => 'ts', watermark => '1 minute');
SELECT streaming.create_query('sess',
         $$SELECT k, streaming.session_window(ts, '5 minutes') AS s, count(*) AS n FROM dd GROUP BY 1, 2$$,
         output_mode => 'append', event_time => 'ts', watermark => '1 minute');
COPY (VALUES (1, '2024-01-01 10:00:00+00', 1), (1, '2024-01-01 10:02:00+00', 2), (2, '2024-01-01 10:10:00+00', 3))
  TO '/tmp/streaming_regress/alter/dd/1.csv' WITH (FORMAT csv);
SELECT streaming.run('seen'), streaming.run('sess');
SELECT name, watermark, closed_until FROM streaming.queries WHERE name IN ('seen', 'sess') ORDER BY name;
SELECT streaming.alter_query('seen', watermark_at => '2024-01-01 10:00:00+00');
SELECT streaming.alter_query('sess', watermark_at => '2024-01-01 10:00:00+00');
-- 10:02 of key 1 again: forgotten by the deduplication, and in the written
-- session of key 1, so late for both; 10:05 is a new key, but would join
-- the written session
COPY (VALUES (1, '2024-01-01 10:02:00+00', 2), (1, '2024-01-01 10:05:00+00', 5), (2, '2024-01-01 10:11:00+00', 6))
  TO '/tmp/streaming_regress/alter/dd/2.csv' WITH (FORMAT csv);
SELECT streaming.run('seen'), streaming.run('sess');
COPY (VALUES (3, '2024-01-01 10:30:00+00', 7))
  TO '/tmp/streaming_regress/alter/dd/3.csv' WITH (FORMAT csv);
SELECT streaming.run('seen'), streaming.run('sess');
SELECT k, ts, v FROM seen ORDER BY ts, k;
SELECT k, lower(s), upper(s), n FROM sess ORDER BY k, lower(s);
SELECT query, batch_id, input_rows, state_rows_dropped_by_watermark AS late
  FROM streaming.progress WHERE query IN ('seen', 'sess') ORDER BY query, batch_id;
SELECT streaming.drop_query('seen');
SELECT streaming.drop_query('sess');
SELECT streaming.drop_source('dd');

-- reset_query(name, start_from): from a time (files modified at or after
-- it), from given offsets (the files named count as read) or from the
-- earliest; one batch per file, as usual
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/streaming_regress/alter/rs';
CREATE FUNCTION rs_file(name text, body text, mtime text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT pg_catalog.unnest(pg_catalog.string_to_array(%L, E''\n''))) TO PROGRAM %L', body,
                   format('cat > /tmp/streaming_regress/alter/rs/.%s && touch -d %s /tmp/streaming_regress/alter/rs/.%s && mv /tmp/streaming_regress/alter/rs/.%s /tmp/streaming_regress/alter/rs/%s.csv',
                          name, quote_literal(mtime), name, name, name));
END
$$;
SELECT rs_file('f1', E'1,10\n2,20\n1,30', '2024-01-01 00:00:00 UTC');
SELECT rs_file('f2', E'1,1\n3,3', '2024-01-02 00:00:00 UTC');
SELECT rs_file('f3', E'2,5\n3,7\n3,9', '2024-01-03 00:00:00 UTC');
SELECT streaming.create_source('rs', 'file', 'k int, v int',
         '{"path": "/tmp/streaming_regress/alter/rs", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_query('rsq', $$SELECT k, count(*) AS n, sum(v) AS total FROM rs GROUP BY k$$,
         output_mode => 'complete');
CREATE TABLE rs_raw (f text, k int, v int);
COPY rs_raw (k, v) FROM PROGRAM 'cat /tmp/streaming_regress/alter/rs/f1.csv' WITH (FORMAT csv);
UPDATE rs_raw SET f = 'f1' WHERE f IS NULL;
COPY rs_raw (k, v) FROM PROGRAM 'cat /tmp/streaming_regress/alter/rs/f2.csv' WITH (FORMAT csv);
UPDATE rs_raw SET f = 'f2' WHERE f IS NULL;
COPY rs_raw (k, v) FROM PROGRAM 'cat /tmp/streaming_regress/alter/rs/f3.csv' WITH (FORMAT csv);
UPDATE rs_raw SET f = 'f3' WHERE f IS NULL;
-- rsq_diff: rows of the result and of plain SQL over the given files that differ
CREATE FUNCTION rsq_diff(files text[]) RETURNS TABLE (side text, k int, n bigint, total bigint)
LANGUAGE sql AS $$
    (SELECT 'result only', k, n, total FROM rsq
     EXCEPT ALL SELECT 'result only', k, count(*), sum(v) FROM rs_raw WHERE f = ANY (files) GROUP BY k)
    UNION ALL
    (SELECT 'plain SQL only', k, count(*), sum(v) FROM rs_raw WHERE f = ANY (files) GROUP BY k
     EXCEPT ALL SELECT 'plain SQL only', k, n, total FROM rsq)
$$;
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff('{f1,f2,f3}');
SELECT last_batch_id FROM streaming.queries WHERE name = 'rsq';

-- from a time: f2 (modified at it) and f3, in two batches
SELECT streaming.reset_query('rsq', start_from => '2024-01-02 00:00:00+00'::timestamptz);
SELECT regexp_replace(partition, '.*/', '') AS file, "offset", batch_id
  FROM streaming.offsets WHERE query = 'rsq' ORDER BY 1;
SELECT count(*) AS result_rows FROM rsq;
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff('{f2,f3}');
SELECT count(*) AS result_rows FROM rsq;
SELECT batch_id, input_rows FROM streaming.progress WHERE query = 'rsq' ORDER BY batch_id;
-- the same written as text, a moment after f2: f3 only
SELECT streaming.reset_query('rsq', '2024-01-02 00:00:00.000001+00');
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff('{f3}');
SELECT count(*) AS result_rows FROM rsq;

-- from offsets, as streaming.offsets records them: f1 and f3 count as read
SELECT streaming.reset_query('rsq', start_from => jsonb_build_object(
         '/tmp/streaming_regress/alter/rs/f1.csv', 15, '/tmp/streaming_regress/alter/rs/f3.csv', 12));
SELECT regexp_replace(partition, '.*/', '') AS file, "offset" FROM streaming.offsets WHERE query = 'rsq' ORDER BY 1;
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff('{f2}');
SELECT count(*) AS result_rows FROM rsq;
-- keyed by the source's name, as a query of several sources needs
SELECT streaming.reset_query('rsq', '{"rs": {"/tmp/streaming_regress/alter/rs/f2.csv": 8}}');
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff('{f1,f3}');
SELECT count(*) AS result_rows FROM rsq;

-- from the earliest, and without start_from: every file again
SELECT streaming.reset_query('rsq', 'earliest');
SELECT count(*) AS offsets FROM streaming.offsets WHERE query = 'rsq';
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff('{f1,f2,f3}');
SELECT streaming.reset_query('rsq');
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff('{f1,f2,f3}');
SELECT count(*) AS result_rows FROM rsq;

-- mistakes are errors, and leave the query as it was
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"/tmp/streaming_regress/alter/rs/nope.csv": 0}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"/tmp/streaming_regress/alter/rs/f1.csv": 16}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"/tmp/streaming_regress/alter/rs/f1.csv": -1}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"/tmp/streaming_regress/alter/rs/f1.csv": 1.5}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"/tmp/streaming_regress/alter/rs/f1.csv": "11"}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '[1]'::jsonb)$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"other": {"x": 1}}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"rs": {"/tmp/streaming_regress/alter/rs/f1.csv": 15}, "other": {"x": 1}}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', '{"rs": {}, "/tmp/streaming_regress/alter/rs/f1.csv": 15}')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', 'yesterday noonish')$$);
SELECT alter_try($$SELECT streaming.reset_query('rsq', 'infinity')$$);
SELECT * FROM rsq_diff('{f1,f2,f3}');
SELECT count(*) AS offsets FROM streaming.offsets WHERE query = 'rsq';
-- a rate source can start from the earliest only
SELECT streaming.create_source('rs_rate', 'rate', options => '{"rows_per_batch": 3, "start_timestamp": "2024-01-01 00:00:00+00"}');
SELECT streaming.create_query('rs_rq', 'SELECT count(*) AS n FROM rs_rate', output_mode => 'complete');
SELECT alter_try($$SELECT streaming.reset_query('rs_rq', now())$$);
SELECT alter_try($$SELECT streaming.reset_query('rs_rq', '{"x": 1}'::jsonb)$$);
SELECT streaming.run('rs_rq', 2);
SELECT streaming.reset_query('rs_rq', 'earliest');
SELECT streaming.run('rs_rq', 1);
SELECT n FROM rs_rq;
SELECT streaming.drop_query('rs_rq');
SELECT streaming.drop_source('rs_rate');

-- alter_query(query => ...): a new SELECT that keeps the same state; the
-- result is computed again from the state, and the query goes on
CREATE FUNCTION rsq_diff2(expected text) RETURNS TABLE (side text, row_text text)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        (SELECT 'result only', r::text FROM rsq r EXCEPT ALL SELECT 'result only', e::text FROM (%s) e)
        UNION ALL
        (SELECT 'plain SQL only', e::text FROM (%s) e EXCEPT ALL SELECT 'plain SQL only', r::text FROM rsq r)$q$,
        expected, expected);
END
$$;
-- the columns change: the result table is created again, filled from the state
SELECT streaming.alter_query('rsq', query => $$SELECT k, count(*) * 2 AS n2, sum(v) AS total FROM rs GROUP BY k$$);
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'rsq'::regclass AND attnum > 0 ORDER BY attnum;
SELECT * FROM rsq_diff2($$SELECT k, count(*) * 2 AS n2, sum(v) AS total FROM rs_raw GROUP BY k$$);
SELECT count(*) AS result_rows FROM rsq;
SELECT query FROM streaming.queries WHERE name = 'rsq';
SELECT result_table FROM streaming.queries WHERE name = 'rsq';
-- and the query goes on with its state: a new file, a batch
SELECT rs_file('f4', E'1,100\n4,40', '2024-01-04 00:00:00 UTC');
COPY rs_raw (k, v) FROM PROGRAM 'cat /tmp/streaming_regress/alter/rs/f4.csv' WITH (FORMAT csv);
UPDATE rs_raw SET f = 'f4' WHERE f IS NULL;
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff2($$SELECT k, count(*) * 2 AS n2, sum(v) AS total FROM rs_raw GROUP BY k$$);
SELECT count(*) AS result_rows FROM rsq;
-- the same columns, other expressions and a HAVING: the table stays, its rows are computed again
SELECT 'rsq'::regclass::oid AS rsq_oid \gset
SELECT streaming.alter_query('rsq', query => $$SELECT k, count(*) AS n2, sum(v) * 10 AS total FROM rs GROUP BY k HAVING count(*) > 1$$);
SELECT 'rsq'::regclass::oid = :rsq_oid AS same_table;
SELECT * FROM rsq_diff2($$SELECT k, count(*) AS n2, sum(v) * 10 AS total FROM rs_raw GROUP BY k HAVING count(*) > 1$$);
SELECT count(*) AS result_rows FROM rsq;
SELECT step, statement FROM streaming.explain('rsq') WHERE step IN ('query', 'having');
-- the next batch follows the new HAVING: key 4 gets its second row and appears
SELECT rs_file('f5', E'4,1\n2,2', '2024-01-05 00:00:00 UTC');
COPY rs_raw (k, v) FROM PROGRAM 'cat /tmp/streaming_regress/alter/rs/f5.csv' WITH (FORMAT csv);
UPDATE rs_raw SET f = 'f5' WHERE f IS NULL;
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff2($$SELECT k, count(*) AS n2, sum(v) * 10 AS total FROM rs_raw GROUP BY k HAVING count(*) > 1$$);
SELECT count(*) AS result_rows FROM rsq;
-- a column computed from aggregates the state keeps: its mean
SELECT streaming.alter_query('rsq', query => $$SELECT k, count(*) AS n2, sum(v) * 10 AS total,
         round(sum(v)::numeric / count(*), 2) AS mean FROM rs GROUP BY k HAVING count(*) > 1$$);
SELECT * FROM rsq_diff2($$SELECT k, count(*) AS n2, sum(v) * 10 AS total, round(sum(v)::numeric / count(*), 2) AS mean
                            FROM rs_raw GROUP BY k HAVING count(*) > 1$$);
SELECT k, mean FROM rsq ORDER BY k;
-- refused: what the state keeps would change; the query stays as it was
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT k, count(*) AS n2, sum(v) * 10 AS total, round(avg(v), 2) AS mean FROM rs GROUP BY k')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT k, count(*) AS n2, max(v) AS total FROM rs GROUP BY k')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT k, count(*) AS n2, sum(v) AS total FROM rs WHERE v > 1 GROUP BY k')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT k % 2 AS k, count(*) AS n2, sum(v) AS total FROM rs GROUP BY 1')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT k, count(*) AS n2, sum(v) AS total FROM ev GROUP BY k')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT k, v FROM rs')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT nope FROM rs')$$);
SELECT alter_try($$SELECT streaming.alter_query('win', query => $q$SELECT streaming.window(ts, '10 minutes') AS w, k, count(*) * 2 AS n, sum(v) AS total FROM ev GROUP BY 1, 2$q$)$$);
SELECT alter_try($$SELECT streaming.alter_query('upd', query => $q$SELECT streaming.window(ts, '10 minutes') AS w, count(*) * 2 AS n, sum(v) AS total FROM ev GROUP BY 1$q$)$$);
SET ROLE alter_other;
SELECT alter_try($$SELECT streaming.alter_query('rsq', query => 'SELECT k, count(*) AS n2, sum(v) AS total FROM rs GROUP BY k')$$);
RESET ROLE;
SELECT query FROM streaming.queries WHERE name = 'rsq';
SELECT * FROM rsq_diff2($$SELECT k, count(*) AS n2, sum(v) * 10 AS total, round(sum(v)::numeric / count(*), 2) AS mean
                            FROM rs_raw GROUP BY k HAVING count(*) > 1$$);
-- an append-mode query may take a SELECT that computes the same result
SELECT streaming.alter_query('win', query => $q$SELECT streaming.window(ts, '10 minutes') AS w, k, count(*) AS n, sum(v) AS total
  FROM ev GROUP BY 1, 2$q$);
SELECT query FROM streaming.queries WHERE name = 'win';

-- alter_query(output_mode => ...): update and complete modes exchange in
-- place; anything involving append mode is refused
SELECT alter_try($$SELECT streaming.alter_query('rsq', output_mode => 'append')$$);
SELECT alter_try($$SELECT streaming.alter_query('win', output_mode => 'update')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', output_mode => 'bogus')$$);
SELECT streaming.alter_query('rsq', output_mode => 'update');
SELECT output_mode, plan->>'mode' AS plan_mode FROM streaming.queries WHERE name = 'rsq';
SELECT step, statement FROM streaming.explain('rsq') WHERE step = 'shape';
-- the next batch upserts the groups it touches, as update mode does
SELECT rs_file('f6', E'5,50\n1,1\n5,5', '2024-01-06 00:00:00 UTC');
COPY rs_raw (k, v) FROM PROGRAM 'cat /tmp/streaming_regress/alter/rs/f6.csv' WITH (FORMAT csv);
UPDATE rs_raw SET f = 'f6' WHERE f IS NULL;
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff2($$SELECT k, count(*) AS n2, sum(v) * 10 AS total, round(sum(v)::numeric / count(*), 2) AS mean
                            FROM rs_raw GROUP BY k HAVING count(*) > 1$$);
SELECT count(*) AS result_rows FROM rsq;
-- and back to complete mode: the same result table, every group kept
SELECT streaming.alter_query('rsq', output_mode => 'complete');
SELECT output_mode, plan->>'mode' AS plan_mode FROM streaming.queries WHERE name = 'rsq';
SELECT rs_file('f7', E'3,1\n6,6', '2024-01-07 00:00:00 UTC');
COPY rs_raw (k, v) FROM PROGRAM 'cat /tmp/streaming_regress/alter/rs/f7.csv' WITH (FORMAT csv);
UPDATE rs_raw SET f = 'f7' WHERE f IS NULL;
SELECT streaming.run('rsq');
SELECT * FROM rsq_diff2($$SELECT k, count(*) AS n2, sum(v) * 10 AS total, round(sum(v)::numeric / count(*), 2) AS mean
                            FROM rs_raw GROUP BY k HAVING count(*) > 1$$);
SELECT count(*) AS result_rows FROM rsq;
-- a SELECT and a mode at once
SELECT streaming.alter_query('rsq', output_mode => 'update',
         query => $$SELECT k, count(*) AS n2, sum(v) * 10 AS total FROM rs GROUP BY k HAVING count(*) > 1$$);
SELECT output_mode, query FROM streaming.queries WHERE name = 'rsq';
SELECT * FROM rsq_diff2($$SELECT k, count(*) AS n2, sum(v) * 10 AS total FROM rs_raw GROUP BY k HAVING count(*) > 1$$);
-- windows: complete -> update always; update -> complete until update mode
-- has evicted a window
SELECT streaming.create_query('wc',
         $$SELECT streaming.window(ts, '10 minutes') AS w, count(*) AS n FROM ev GROUP BY 1$$,
         output_mode => 'complete', event_time => 'ts', watermark => '5 minutes');
SELECT streaming.run('wc') > 0 AS ran;
SELECT (SELECT count(*) FROM wc) = (SELECT state_rows FROM streaming.queries WHERE name = 'wc') AS all_windows_kept,
       (SELECT closed_until FROM streaming.queries WHERE name = 'wc') AS closed_until;
SELECT count(*) AS result_rows FROM wc \gset wc_
SELECT streaming.alter_query('wc', output_mode => 'update');
SELECT streaming.alter_query('wc', output_mode => 'complete');
SELECT streaming.alter_query('wc', output_mode => 'update');
SELECT step FROM streaming.explain('wc') WHERE step = 'close';
-- an event time a few days on: update mode evicts every earlier window,
-- whose result rows stay
SELECT alter_file('h', E'2024-01-05T00:00:00Z,1,1');
SELECT streaming.run('wc');
SELECT (SELECT count(*) FROM wc) - :wc_result_rows AS new_rows,
       (SELECT state_rows FROM streaming.queries WHERE name = 'wc') AS state_rows,
       (SELECT closed_until FROM streaming.queries WHERE name = 'wc') AS closed_until;
SELECT alter_try($$SELECT streaming.alter_query('wc', output_mode => 'complete')$$);
SELECT alter_try($$SELECT streaming.alter_query('upd', output_mode => 'complete')$$);
SELECT output_mode FROM streaming.queries WHERE name IN ('wc', 'upd') ORDER BY name;
-- rebuilt from its sources, it may go to complete mode again
SELECT streaming.reset_query('wc');
SELECT streaming.alter_query('wc', output_mode => 'complete');
SELECT streaming.run('wc') > 0 AS ran;
SELECT (SELECT count(*) FROM wc) = (SELECT state_rows FROM streaming.queries WHERE name = 'wc') AS all_windows_kept;
SELECT streaming.drop_query('wc');

-- alter_query(sink_options => ...): merged into the query's options (a key
-- given null goes), checked as create_query checks them; the result table
-- and a file sink's options cannot change
SELECT alter_try($$SELECT streaming.alter_query('rsq', sink_options => '{"table": "alter_t"}')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', sink_options => '{"bogus": 1}')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', sink_options => '[1]')$$);
SELECT streaming.alter_query('rsq', sink_options => '{}');
SELECT streaming.create_query('con', $$SELECT k, v FROM rs$$, sink => 'console',
         sink_options => '{"num_rows": 3}', output_mode => 'update');
-- complete mode needs an aggregation, as create_query says
SELECT alter_try($$SELECT streaming.alter_query('con', output_mode => 'complete')$$);
SELECT streaming.alter_query('con', sink_options => '{"num_rows": 5, "truncate": false}');
SELECT sink_options FROM streaming.queries WHERE name = 'con';
SELECT streaming.alter_query('con', sink_options => '{"num_rows": null}');
SELECT sink_options FROM streaming.queries WHERE name = 'con';
SELECT alter_try($$SELECT streaming.alter_query('con', sink_options => '{"num_rows": 0}')$$);
SELECT alter_try($$SELECT streaming.alter_query('con', sink_options => '{"table": "alter_t"}')$$);
SELECT streaming.create_query('nq', $$SELECT k, v FROM rs$$, sink => 'notify');
SELECT streaming.alter_query('nq', sink_options => '{"channel": "alter_channel"}');
SELECT sink_options FROM streaming.queries WHERE name = 'nq';
SELECT alter_try($$SELECT streaming.alter_query('nq', sink_options => '{"channel": ""}')$$);
SELECT streaming.create_query('kq', $$SELECT k, v FROM rs$$, sink => 'kafka',
         sink_options => '{"bootstrap_servers": "localhost:9", "topic": "one", "key": "k"}');
SELECT streaming.alter_query('kq', sink_options => '{"topic": "two", "kafka.linger.ms": 5}');
SELECT sink_options FROM streaming.queries WHERE name = 'kq';
SELECT alter_try($$SELECT streaming.alter_query('kq', sink_options => '{"key": "nope"}')$$);
SELECT alter_try($$SELECT streaming.alter_query('kq', sink_options => '{"kafka.linger.ms": "soon"}')$$);
SELECT alter_try($$SELECT streaming.alter_query('kq', sink_options => '{"topic": null}')$$);
SELECT streaming.create_query('fq', $$SELECT k, v FROM rs$$, sink => 'file',
         sink_options => '{"path": "/tmp/streaming_regress/alter/out"}');
SELECT alter_try($$SELECT streaming.alter_query('fq', sink_options => '{"format": "json"}')$$);
SELECT streaming.alter_query('fq', sink_options => '{"path": "/tmp/streaming_regress/alter/out"}');
SET ROLE alter_other;
SELECT alter_try($$SELECT streaming.alter_query('con', sink_options => '{"num_rows": 7}')$$);
SELECT alter_try($$SELECT streaming.alter_query('rsq', output_mode => 'complete')$$);
RESET ROLE;
SELECT sink_options FROM streaming.queries WHERE name = 'kq';
SELECT streaming.drop_query('con');
SELECT streaming.drop_query('nq');
SELECT streaming.drop_query('kq');
SELECT streaming.drop_query('fq');

SELECT streaming.drop_query('win');
SELECT streaming.drop_query('upd');
SELECT streaming.drop_query('plain');
SELECT count(*) AS errors_left FROM streaming.errors;
DROP ROLE alter_other;
SELECT streaming.drop_query('rsq');
SELECT streaming.drop_source('rs');
SELECT streaming.drop_source('ev');
DROP EXTENSION streaming;
DROP TABLE alter_raw, alter_t, rs_raw;
DROP FUNCTION alter_try(text), alter_file(text, text), rs_file(text, text, text), rsq_diff(text[]), rsq_diff2(text);
