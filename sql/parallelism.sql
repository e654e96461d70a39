-- parallelism => N: a query's input split into N slices (a file source by
-- the hash of each file's path, a Kafka source by partition), each read by
-- batches of its own.  Here run(name, max_batches, slice) drives the
-- slices one after another; specs/parallel_slices.spec runs them side by
-- side, and the TAP tests on pool workers.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/parallelism && mkdir -p /tmp/streaming_regress/parallelism/in';

CREATE FUNCTION par_try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE msg text; detail text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN msg || coalesce(' [' || nullif(detail, '') || ']', '') || coalesce(' (' || nullif(hint, '') || ')', '');
END
$$;

-- twelve files of 100 events each: event i of file f is key i % 7, value
-- f * 1000 + i, at 2024-01-01 00:00 + (f * 100 + i) seconds
CREATE FUNCTION write_file(f int) RETURNS void
LANGUAGE plpgsql SET datestyle = 'ISO, YMD' AS $$
BEGIN
    EXECUTE format('COPY (SELECT ''k'' || i %% 7, %s * 1000 + i, timestamptz ''2024-01-01 00:00+00'' + (%s * 100 + i) * interval ''1 second'' '
                   'FROM generate_series(1, 100) i) TO %L CSV', f, f, '/tmp/streaming_regress/parallelism/in/f' || lpad(f::text, 2, '0') || '.csv');
END
$$;
CREATE VIEW written AS
SELECT 'k' || i % 7 AS k, f * 1000 + i AS v, timestamptz '2024-01-01 00:00+00' + (f * 100 + i) * interval '1 second' AS ts
  FROM generate_series(0, 11) f, generate_series(1, 100) i;
SELECT write_file(f) FROM generate_series(0, 5) f;

SELECT streaming.create_source('ev', 'file', 'k text, v int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/parallelism/in", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_batch": 5}');

-- what cannot have slices
SELECT par_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', parallelism => 0)$q$);
SELECT par_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', parallelism => 65)$q$);
SELECT par_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ticks', parallelism => 2)$q$);
SELECT par_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', trigger => 'once', parallelism => 2)$q$);
SELECT par_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', trigger => 'available_now', parallelism => 2)$q$);
SELECT count(*) AS queries FROM streaming.queries;

-- a windowed aggregate, a deduplication and a projection, three slices each
SELECT streaming.create_query('per_minute',
    $$SELECT streaming.window(ts, '1 minute') AS w, k, count(*) AS n, sum(v) AS total, max(v) AS top
        FROM ev GROUP BY 1, 2$$,
    output_mode => 'update', event_time => 'ts', watermark => '1 hour', parallelism => 3);
SELECT streaming.create_query('firsts', 'SELECT DISTINCT ON (k) k, v FROM ev',
    parallelism => 3) IS NOT NULL AS created;
SELECT streaming.create_query('copy', 'SELECT k, v, ts FROM ev', parallelism => 3);
SELECT name, parallelism FROM streaming.queries ORDER BY name;
SELECT q.name, s.slice FROM streaming.query_slices s JOIN streaming.queries q ON q.id = s.query ORDER BY 1, 2;

SELECT par_try($q$SELECT streaming.run('copy', 1, slice => 3)$q$);
SELECT par_try($q$SELECT streaming.run('copy', 1, slice => -1)$q$);
SELECT par_try($q$SELECT streaming.alter_query('copy', trigger => 'once')$q$);
SELECT par_try($q$SELECT streaming.alter_query('copy', parallelism => 0)$q$);
SELECT par_try($q$SELECT streaming.alter_query('copy', query => 'SELECT value AS v FROM ticks')$q$);

-- each slice reads its own files, one per batch; the slices in turn
CREATE FUNCTION run_slices(q text, n int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE total bigint := 0; ran bigint;
BEGIN
    LOOP
        ran := 0;
        FOR s IN 0 .. n - 1 LOOP
            ran := ran + streaming.run(q, 1, slice => s);
        END LOOP;
        EXIT WHEN ran = 0;
        total := total + ran;
    END LOOP;
    RETURN total;
END
$$;
SELECT run_slices('per_minute', 3) AS batches, run_slices('firsts', 3) AS firsts, run_slices('copy', 3) AS copies;

-- every file read once, by the slice its path hashes to; batch ids in order
SELECT count(*) AS files, count(DISTINCT partition) AS distinct_files FROM streaming.offsets WHERE query = 'copy';
SELECT count(*) = max(batch_id) + 1 AS ids_dense, sum(input_rows) AS input_rows,
       count(DISTINCT duration_ms ->> 'slice') AS slices_seen
  FROM streaming.progress WHERE query = 'copy';

-- the results, against plain SQL over the same events
CREATE FUNCTION check_results() RETURNS TABLE (what text, missing bigint, extra bigint)
LANGUAGE sql AS $$
    WITH expected AS (
        SELECT streaming.window(ts, '1 minute') AS w, k, count(*) AS n, sum(v) AS total, max(v) AS top
          FROM written WHERE v % 1000 <> 0 AND v / 1000 IN (SELECT DISTINCT (regexp_match(partition, 'f(\d+)'))[1]::int
                                                              FROM streaming.offsets WHERE query = 'per_minute')
         GROUP BY 1, 2)
    SELECT 'per_minute', (SELECT count(*) FROM (SELECT * FROM expected EXCEPT SELECT w, k, n, total, top FROM per_minute) x),
           (SELECT count(*) FROM (SELECT w, k, n, total, top FROM per_minute EXCEPT SELECT * FROM expected) x)
    UNION ALL
    SELECT 'copy', (SELECT count(*) FROM (SELECT k, v, ts FROM written WHERE v / 1000 IN
                        (SELECT DISTINCT (regexp_match(partition, 'f(\d+)'))[1]::int FROM streaming.offsets WHERE query = 'copy')
                    EXCEPT ALL SELECT k, v, ts FROM copy) x),
           (SELECT count(*) FROM (SELECT k, v, ts FROM copy EXCEPT ALL SELECT k, v, ts FROM written) x)
$$;
SELECT * FROM check_results();
SELECT count(*) AS rows FROM per_minute;
SELECT count(*) AS rows FROM copy;
-- deduplication: one row per key, whichever slice saw it first
SELECT count(*) AS keys, count(DISTINCT k) AS distinct_keys FROM firsts;

-- more files; the query goes to two slices, then to one: no file is read
-- twice, none is left out
SELECT write_file(f) FROM generate_series(6, 8) f;
SELECT streaming.alter_query('per_minute', parallelism => 2);
SELECT streaming.alter_query('copy', parallelism => 2);
SELECT q.name, s.slice FROM streaming.query_slices s JOIN streaming.queries q ON q.id = s.query
 WHERE q.name IN ('per_minute', 'copy') ORDER BY 1, 2;
SELECT run_slices('per_minute', 2) > 0 AS ran, run_slices('copy', 2) > 0 AS ran_copy;
SELECT write_file(f) FROM generate_series(9, 11) f;
SELECT streaming.alter_query('per_minute', parallelism => 1);
SELECT streaming.alter_query('copy', parallelism => 1);
SELECT count(*) AS slices_left FROM streaming.query_slices s JOIN streaming.queries q ON q.id = s.query
 WHERE q.name IN ('per_minute', 'copy');
SELECT par_try($q$SELECT streaming.run('copy', 1, slice => 0)$q$);
SELECT streaming.run('per_minute') AS batches, streaming.run('copy') AS copy_batches;
SELECT count(*) AS files, count(DISTINCT partition) AS distinct_files FROM streaming.offsets WHERE query = 'copy';
SELECT * FROM check_results();
SELECT count(*) AS rows FROM per_minute;
SELECT count(*) AS rows FROM copy;
SELECT count(*) = max(batch_id) + 1 AS ids_dense FROM streaming.progress WHERE query = 'per_minute';

-- a run() of the whole query reads the files of every slice
SELECT streaming.alter_query('copy', parallelism => 4);
SELECT write_file(f) FROM generate_series(12, 15) f;
SELECT streaming.run('copy') AS batches;
SELECT count(*) AS files, count(DISTINCT partition) AS distinct_files FROM streaming.offsets WHERE query = 'copy';
SELECT count(*) AS rows, count(DISTINCT v) AS distinct_rows FROM copy;

-- a slice that has read all its files does not make the backlog of
-- another late: slice 0 has one file, at minute 6; slice 1 has one a
-- minute from minute 1 to 5, which it reads one per batch.  Its batches
-- hold the watermark at their own until the last: nothing is late, as
-- for one runner reading the files in order.
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/streaming_regress/parallelism/late';
CREATE FUNCTION write_minute(slice int, m int, tag text DEFAULT '') RETURNS void
LANGUAGE plpgsql SET datestyle = 'ISO, YMD' AS $$
DECLARE path text;
BEGIN
    SELECT p INTO path
      FROM (SELECT '/tmp/streaming_regress/parallelism/late/m' || m || tag || '_' || i || '.csv' AS p
              FROM generate_series(1, 100) i) c
     WHERE (hashtext(p)::bigint & 4294967295) % 2 = slice ORDER BY p LIMIT 1;
    EXECUTE format('COPY (SELECT ''k'', %s * 100 + i, timestamptz ''2024-01-01 00:00+00'' + %s * interval ''1 minute'' + i * interval ''1 second'' '
                   'FROM generate_series(1, 10) i) TO %L CSV', m, m, path);
END
$$;
SELECT write_minute(1, m) FROM generate_series(1, 5) m;
SELECT write_minute(0, 6);
SELECT streaming.create_source('late_ev', 'file', 'k text, v int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/parallelism/late", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_query('per_minute_late',
    $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n, sum(v) AS total FROM late_ev GROUP BY 1$$,
    output_mode => 'update', event_time => 'ts', watermark => '30 seconds', parallelism => 2);
SELECT run_slices('per_minute_late', 2) AS batches;
-- all read: the watermark is one runner's, the last event's minus the delay
SELECT watermark = timestamptz '2024-01-01 00:06:10+00' - interval '30 seconds' AS one_runners,
       late_rows_total FROM streaming.queries WHERE name = 'per_minute_late';
SELECT count(*) AS missing FROM (
    SELECT streaming.window(timestamptz '2024-01-01 00:00+00' + m * interval '1 minute' + i * interval '1 second', '1 minute'),
           count(*), sum(m * 100 + i)
      FROM generate_series(1, 6) m, generate_series(1, 10) i GROUP BY 1
    EXCEPT SELECT w, n, total FROM per_minute_late) x;
SELECT count(*) AS rows FROM per_minute_late;
-- reset_query: the slices have read nothing either, and what they had
-- read makes nothing late when they read it again
SELECT streaming.reset_query('per_minute_late');
SELECT run_slices('per_minute_late', 2) AS batches;
SELECT watermark, late_rows_total FROM streaming.queries WHERE name = 'per_minute_late';
SELECT count(*) AS rows, sum(n) AS events FROM per_minute_late;
-- watermark_at moves the slices' watermarks back with the query's (slice
-- 0's was at minute 5:40): a file at minute 5 for each slice, slice 0's
-- read first; slice 1's is on time
SELECT streaming.alter_query('per_minute_late', watermark_at => '2024-01-01 00:04:30+00');
SELECT write_minute(0, 5, 'b'), write_minute(1, 5, 'c');
SELECT run_slices('per_minute_late', 2) AS batches;
SELECT watermark, late_rows_total FROM streaming.queries WHERE name = 'per_minute_late';
SELECT lower(w) AS minute, n FROM per_minute_late ORDER BY 1;
SELECT streaming.drop_query('per_minute_late');
SELECT streaming.drop_source('late_ev');
DROP FUNCTION write_minute(int, int, text);

-- a new parallelism moves files between slices: a slice that had read
-- ahead (minute 6) and gets another's backlog (minutes 2 and 3) holds the
-- watermark back until it has read again.  Under parallelism 3, slice 0
-- reads minute 6 and slice 1 minute 1; under parallelism 2, slice 0 has
-- minutes 2 and 3, and slice 1 minute 4, which it reads first.
CREATE FUNCTION write_sliced(m int, of2 int, of3 int) RETURNS void
LANGUAGE plpgsql SET datestyle = 'ISO, YMD' AS $$
DECLARE path text;
BEGIN
    SELECT p INTO path
      FROM (SELECT '/tmp/streaming_regress/parallelism/moved/m' || m || '_' || i || '.csv' AS p
              FROM generate_series(1, 200) i) c
     WHERE (hashtext(p)::bigint & 4294967295) % 2 = of2 AND (hashtext(p)::bigint & 4294967295) % 3 = of3
     ORDER BY p LIMIT 1;
    EXECUTE format('COPY (SELECT ''k'', %s * 100 + i, timestamptz ''2024-01-01 00:00+00'' + %s * interval ''1 minute'' + i * interval ''1 second'' '
                   'FROM generate_series(1, 10) i) TO %L CSV', m, m, path);
END
$$;
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/streaming_regress/parallelism/moved';
SELECT write_sliced(1, 1, 1), write_sliced(2, 0, 1), write_sliced(3, 0, 1),
       write_sliced(4, 1, 1), write_sliced(6, 0, 0);
SELECT streaming.create_source('moved_ev', 'file', 'k text, v int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/parallelism/moved", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_query('per_minute_moved',
    $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n, sum(v) AS total FROM moved_ev GROUP BY 1$$,
    output_mode => 'update', event_time => 'ts', watermark => '30 seconds', parallelism => 3);
SELECT streaming.run('per_minute_moved', 1, slice => 0) AS slice_0, streaming.run('per_minute_moved', 1, slice => 1) AS slice_1;
SELECT streaming.alter_query('per_minute_moved', parallelism => 2);
SELECT streaming.run('per_minute_moved', 1, slice => 1) AS slice_1;
SELECT run_slices('per_minute_moved', 2) AS batches;
SELECT watermark, late_rows_total FROM streaming.queries WHERE name = 'per_minute_moved';
SELECT lower(w) AS minute, n FROM per_minute_moved ORDER BY 1;
SELECT streaming.drop_query('per_minute_moved');
SELECT streaming.drop_source('moved_ev');
DROP FUNCTION write_sliced(int, int, int);

SELECT streaming.drop_query('per_minute');
SELECT streaming.drop_query('firsts');
SELECT streaming.drop_query('copy');
SELECT count(*) AS slices FROM streaming.query_slices;
SELECT streaming.drop_source('ev');
SELECT streaming.drop_source('ticks');
DROP FUNCTION par_try(text);
DROP FUNCTION run_slices(text, int);
DROP FUNCTION check_results();
DROP VIEW written;
DROP FUNCTION write_file(int);
DROP EXTENSION streaming;
