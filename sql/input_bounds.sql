-- Inputs that must not hang, exhaust memory or lose rows: window() bounds,
-- csv line endings compared with COPY, files that change under a batch,
-- upper bounds of numeric options, a spilled batch decoded twice
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/bounds && mkdir -p /tmp/streaming_regress/bounds/w /tmp/streaming_regress/bounds/csv /tmp/streaming_regress/bounds/one /tmp/streaming_regress/bounds/header /tmp/streaming_regress/bounds/change /tmp/streaming_regress/bounds/spill';
-- each failure as (code, message, hint)
CREATE FUNCTION bounds_try(stmt text, OUT code text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    message := 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
END
$$;

-- ------------------------------------------------------------------------
-- window(): a slide that puts a row in more than 10000 windows is refused
-- at once (it looped without an interrupt check; 041_input_bounds.pl runs
-- the case that looped for days)
-- ------------------------------------------------------------------------
SET statement_timeout = '10s';
SELECT streaming.window('2024-01-01', '100 seconds', '1 microsecond') LIMIT 1;
SELECT count(*) FROM streaming.window('2024-01-01', '10001 seconds', '1 second');
-- 10000 windows per row is allowed: exactly those that contain ts
SELECT (SELECT count(*) FROM streaming.window('2024-01-01 00:00:00.5+00', '10000 seconds', '1 second')) AS windows,
       (SELECT count(*) FROM (
            SELECT w FROM streaming.window('2024-01-01 00:00:00.5+00', '10000 seconds', '1 second') w
            EXCEPT
            SELECT pg_catalog.tstzrange(s, s + interval '10000 seconds')
              FROM generate_series(timestamptz '2024-01-01 00:00:00+00' - interval '9999 seconds',
                                   timestamptz '2024-01-01 00:00:00+00', interval '1 second') s) d) AS unexpected;
RESET statement_timeout;
-- a window must lie inside the timestamptz range, or it could be stored
-- but not read back: its bounds are checked
SELECT w AS last_window, w::text::tstzrange = w AS reads_back
  FROM streaming.window('294276-12-30 00:00:00+00', '1 day') w;
SELECT streaming.window('294276-12-31 00:00:00+00', '1 day');
SELECT streaming.window('294276-12-30 00:00:00+00', '1 day', '12 hours');
SELECT w AS first_window, w::text::tstzrange = w AS reads_back
  FROM streaming.window('4714-12-02 00:00:00+00 BC', '10 days') w;
SELECT streaming.window('4714-12-01 00:00:00+00 BC', '10 days');
-- sizes in months are refused, also when there is no row time; so is an
-- infinite origin
SELECT count(*) FROM streaming.window(NULL, '1 month', '1 day');
SELECT count(*) FROM streaming.window(NULL, '1 day', '1 year');
SELECT streaming.window(now(), '1 day', '1 hour', 'infinity');
-- in a continuous query such times do not even come in: the event-time
-- grammar reads years 1 to 9999, so both files' rows are dead letters and
-- nothing unreadable is stored
SELECT streaming.create_source('far', 'file', 'ts timestamptz',
         '{"path": "/tmp/streaming_regress/bounds/w", "format": "csv"}');
-- a window that cannot work is refused when the query is created
SELECT streaming.create_query('monthly',
         $$SELECT streaming.window(ts, '1 month') AS w, count(*) AS n FROM far GROUP BY 1$$, output_mode => 'update');
SELECT streaming.create_query('too_many',
         $$SELECT w, count(*) AS n FROM far, streaming.window(ts, '1 day', '1 second') w GROUP BY 1$$,
         output_mode => 'update');
SELECT streaming.create_query('far_windows',
         $$SELECT streaming.window(ts, '1 day') AS w, count(*) AS n FROM far GROUP BY 1$$, output_mode => 'update');
COPY (VALUES ('294276-12-30 12:00:00+00')) TO '/tmp/streaming_regress/bounds/w/1.csv';
SELECT streaming.run('far_windows');
COPY (VALUES ('294276-12-31 12:00:00+00')) TO '/tmp/streaming_regress/bounds/w/2.csv';
\set SHOW_CONTEXT never
SELECT streaming.run('far_windows');
\set SHOW_CONTEXT errors
SELECT w, n, w::text::tstzrange = w AS reads_back FROM far_windows;
SELECT regexp_replace(partition, '.*/', '') AS file FROM streaming.offsets WHERE query = 'far_windows' ORDER BY 1;
SELECT regexp_replace(position, '.*/', '') AS position, error FROM streaming.dead_letters
 WHERE query = 'far_windows' ORDER BY 1;

-- ------------------------------------------------------------------------
-- csv: every record is a row or a dead letter, whatever its line ending;
-- good records are read as COPY (FORMAT csv) reads them
-- ------------------------------------------------------------------------
-- a: file number * 10 + record number; the files, in the order written:
--  1 a bare \r inside an unquoted field        6 \r at the end of the file
--  2 \r\n endings                              7 quoted \r\n, \n, \r and quotes
--  3 \n first, then \r\n lines                 8 empty lines
--  4 \r\n first, then a \n line                9 a quoted field never closed
--  5 \r endings, no ending at the end         10 \r\n file with a bare \r
COPY (SELECT 1) TO PROGRAM $$cat >/dev/null && cd /tmp/streaming_regress/bounds/csv &&
  printf '11,a\n12,b\rc\n13,c\n14,d\n' > f01.csv && touch -d '2001-01-01' f01.csv &&
  printf '21,a\r\n22,b\r\n23,c\r\n' > f02.csv && touch -d '2001-01-02' f02.csv &&
  printf '31,a\n32,b\r\n33,c\n34,d\r\n35,e\n' > f03.csv && touch -d '2001-01-03' f03.csv &&
  printf '41,a\r\n42,b\n43,c\r\n44,d\r\n' > f04.csv && touch -d '2001-01-04' f04.csv &&
  printf '51,a\r52,b\r53,c' > f05.csv && touch -d '2001-01-05' f05.csv &&
  printf '61,a\n62,b\r' > f06.csv && touch -d '2001-01-06' f06.csv &&
  printf '71,"x\r\ny"\r\n72,"p\nq"\r\n73,"r\rs"\r\n74,"""quoted"", too"\r\n' > f07.csv && touch -d '2001-01-07' f07.csv &&
  printf '81,a\n\n82,b\n\n' > f08.csv && touch -d '2001-01-08' f08.csv &&
  printf '91,a\n92,"b\n93,c\n' > f09.csv && touch -d '2001-01-09' f09.csv &&
  printf '101,a\r\n102,b\rc\r\n103,d\r\n' > f10.csv && touch -d '2001-01-10' f10.csv$$;
SELECT streaming.create_source('shapes', 'file', 'a bigint, b text',
         '{"path": "/tmp/streaming_regress/bounds/csv", "format": "csv"}');
SELECT streaming.create_query('shape_rows', 'SELECT a, b FROM shapes');
SELECT streaming.run('shape_rows');
SELECT a, replace(replace(b, E'\r', '\r'), E'\n', '\n') AS b FROM shape_rows ORDER BY a;
SELECT regexp_replace(position, '.*/', '') AS position,
       replace(replace(convert_from(payload, 'UTF8'), E'\r', '\r'), E'\n', '\n') AS payload, error
  FROM streaming.dead_letters WHERE query = 'shape_rows' ORDER BY id;
-- rows + dead letters = records, file by file
SELECT f.file, coalesce(r.n, 0) AS rows, coalesce(d.n, 0) AS dead_letters, f.records,
       coalesce(r.n, 0) + coalesce(d.n, 0) = f.records AS all_records
  FROM (VALUES (1, 5), (2, 3), (3, 5), (4, 4), (5, 3), (6, 2), (7, 4), (8, 4), (9, 2), (10, 4)) f (file, records)
  LEFT JOIN (SELECT a / 10 AS file, count(*) AS n FROM shape_rows GROUP BY 1) r USING (file)
  LEFT JOIN (SELECT substring(position from 'f(\d+)\.csv')::int AS file, count(*) AS n
               FROM streaming.dead_letters WHERE query = 'shape_rows' GROUP BY 1) d USING (file)
 ORDER BY f.file;
SELECT input_rows, dead_letters FROM streaming.progress WHERE query = 'shape_rows';
-- every file is recorded as read to its end
SELECT count(*) AS files, bool_and("offset" = (pg_stat_file(partition)).size) AS read_whole
  FROM streaming.offsets WHERE query = 'shape_rows';
-- COPY reads the good files to the same rows...
CREATE TABLE copied (a bigint, b text);
COPY copied FROM '/tmp/streaming_regress/bounds/csv/f02.csv' (FORMAT csv);
COPY copied FROM '/tmp/streaming_regress/bounds/csv/f05.csv' (FORMAT csv);
COPY copied FROM '/tmp/streaming_regress/bounds/csv/f07.csv' (FORMAT csv);
SELECT count(*) AS copied,
       (SELECT count(*) FROM (SELECT * FROM copied EXCEPT SELECT a, b FROM shape_rows) d) AS only_copy,
       (SELECT count(*) FROM (SELECT a, b FROM shape_rows WHERE a / 10 IN (2, 5, 7) EXCEPT SELECT * FROM copied) d) AS only_stream
  FROM copied;
-- ...and rejects the others whole, with the messages the dead letters carry
COPY copied FROM '/tmp/streaming_regress/bounds/csv/f01.csv' (FORMAT csv);
COPY copied FROM '/tmp/streaming_regress/bounds/csv/f04.csv' (FORMAT csv);
COPY copied FROM '/tmp/streaming_regress/bounds/csv/f06.csv' (FORMAT csv);
COPY copied FROM '/tmp/streaming_regress/bounds/csv/f09.csv' (FORMAT csv);
-- one column: empty lines are NULLs, "" is an empty string, as for COPY,
-- with \n or \r endings
COPY (SELECT 1) TO PROGRAM $$cat >/dev/null && cd /tmp/streaming_regress/bounds/one &&
  printf 'x\n\n"y"\n""\nz' > o1.csv && printf 'x2\r\r"y2"\r""\r' > o2.csv$$;
SELECT streaming.create_source('one', 'file', 'v text', '{"path": "/tmp/streaming_regress/bounds/one", "format": "csv"}');
SELECT streaming.create_query('one_rows', 'SELECT v FROM one');
SELECT streaming.run('one_rows');
TRUNCATE copied;
COPY copied (b) FROM '/tmp/streaming_regress/bounds/one/o1.csv' (FORMAT csv);
COPY copied (b) FROM '/tmp/streaming_regress/bounds/one/o2.csv' (FORMAT csv);
SELECT v, v IS NULL AS is_null, count(*) AS n FROM one_rows GROUP BY v ORDER BY v NULLS FIRST;
SELECT (SELECT count(*) FROM one_rows) AS stream_rows, (SELECT count(*) FROM copied) AS copy_rows,
       (SELECT count(*) FROM (SELECT v FROM one_rows EXCEPT ALL SELECT b FROM copied) d) AS only_stream,
       (SELECT count(*) FROM (SELECT b FROM copied EXCEPT ALL SELECT v FROM one_rows) d) AS only_copy;
-- a header line ending in \r is skipped, not the whole file
COPY (SELECT 1) TO PROGRAM $$cat >/dev/null && printf 'a,b\r1,x\r2,y\r' > /tmp/streaming_regress/bounds/header/h.csv$$;
SELECT streaming.create_source('with_header', 'file', 'a bigint, b text',
         '{"path": "/tmp/streaming_regress/bounds/header", "format": "csv", "header": true}');
SELECT streaming.create_query('header_rows', 'SELECT a, b FROM with_header');
SELECT streaming.run('header_rows');
TRUNCATE copied;
COPY copied FROM '/tmp/streaming_regress/bounds/header/h.csv' (FORMAT csv, HEADER true);
SELECT h.a, h.b, c.a IS NOT NULL AS as_copy FROM header_rows h LEFT JOIN copied c USING (a, b) ORDER BY h.a;
SELECT count(*) AS copy_rows FROM copied;

-- ------------------------------------------------------------------------
-- files that change: a file is read up to its size when the batch was
-- planned; one that shrank fails the batch; a processed file that grows is
-- reported once
-- ------------------------------------------------------------------------
-- decoding value 100 appends a line to b.csv (once), value 200 cuts d.csv
-- to its first line: they change files between planning and reading
CREATE FUNCTION bounds_fire(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF v = 100 AND (pg_stat_file('/tmp/streaming_regress/bounds/change/b.csv')).size = 12 THEN
        COPY (SELECT 1) TO PROGRAM $p$cat >/dev/null && printf '103,late\n' >> /tmp/streaming_regress/bounds/change/b.csv$p$;
    ELSIF v = 200 THEN
        COPY (SELECT 1) TO PROGRAM $p$cat >/dev/null && truncate -s 6 /tmp/streaming_regress/bounds/change/d.csv$p$;
    END IF;
    RETURN true;
END
$$;
CREATE DOMAIN bounds_int AS int CHECK (bounds_fire(VALUE));
SELECT streaming.create_source('changing', 'file', 'a bounds_int, b text',
         '{"path": "/tmp/streaming_regress/bounds/change", "format": "csv"}');
SELECT streaming.create_query('changing_rows', 'SELECT a, b FROM changing');
COPY (SELECT 1) TO PROGRAM $$cat >/dev/null && cd /tmp/streaming_regress/bounds/change &&
  printf '100,first\n' > a.csv && touch -d '2001-01-01' a.csv &&
  printf '101,x\n102,y\n' > b.csv && touch -d '2001-01-02' b.csv$$;
-- b.csv grows while a.csv is decoded: the batch reads the 12 bytes it
-- planned; the run's next planning finds it grown and reports it, with a
-- WARNING and the query's condition
SELECT streaming.run('changing_rows');
SELECT a, b FROM changing_rows ORDER BY a;
SELECT regexp_replace(partition, '.*/', '') AS file, "offset", (pg_stat_file(partition)).size AS size_now
  FROM streaming.offsets WHERE query = 'changing_rows' ORDER BY 1;
SELECT condition FROM streaming.status WHERE name = 'changing_rows';
-- once: later batches do not repeat it
SELECT streaming.run('changing_rows');
SELECT streaming.run('changing_rows');
SELECT condition FROM streaming.status WHERE name = 'changing_rows';
-- a file that grows after its batch committed is reported the same way
COPY (SELECT 1) TO PROGRAM $$cat >/dev/null && printf '104,later\n' >> /tmp/streaming_regress/bounds/change/a.csv$$;
SELECT streaming.run('changing_rows');
SELECT streaming.run('changing_rows');
SELECT condition FROM streaming.status WHERE name = 'changing_rows';
-- d.csv is cut while c.csv is decoded: the batch fails, nothing is recorded
COPY (SELECT 1) TO PROGRAM $$cat >/dev/null && cd /tmp/streaming_regress/bounds/change &&
  printf '200,cut\n' > c.csv && touch -d '2001-01-03' c.csv &&
  printf '201,x\n202,y\n' > d.csv && touch -d '2001-01-04' d.csv$$;
SELECT streaming.run('changing_rows');
SELECT count(*) AS rows FROM changing_rows;
SELECT regexp_replace(partition, '.*/', '') AS file FROM streaming.offsets WHERE query = 'changing_rows' ORDER BY 1;
-- run again, it reads d.csv as it is now
SELECT streaming.run('changing_rows');
SELECT a, b FROM changing_rows ORDER BY a;
SELECT regexp_replace(partition, '.*/', '') AS file, "offset", (pg_stat_file(partition)).size AS size_now
  FROM streaming.offsets WHERE query = 'changing_rows' ORDER BY 1;

-- ------------------------------------------------------------------------
-- numeric options have upper bounds, checked at creation
-- ------------------------------------------------------------------------
\x on
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"rows_per_second": 10000001}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"rows_per_second": 1e20}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"rows_per_batch": 10000001}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"rows_per_batch": 0}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"rows_per_batch": 1, "advance_millis_per_batch": 86400001}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"rows_per_batch": 1, "start_timestamp": "infinity"}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"ramp_up_time": 86401}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"ramp_up_time": "2 days"}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'rate', options => '{"ramp_up_time": "106751991 days"}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'socket', options => '{"port": 9999, "max_lines_per_trigger": 10000001}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'socket', options => '{"port": 4294967297}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('r', 'file', 'a int', '{"path": "/tmp/streaming_regress/bounds/w", "max_files_per_trigger": 100001}')$q$);
-- the largest values are accepted
SELECT * FROM bounds_try($q$SELECT streaming.create_source('rate_max', 'rate', options => '{"rows_per_second": 10000000, "ramp_up_time": "1 day"}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('batch_max', 'rate', options => '{"rows_per_batch": 10000000, "advance_millis_per_batch": 86400000}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('socket_max', 'socket', options => '{"port": 65535, "max_lines_per_trigger": 10000000}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_source('files_max', 'file', 'a int', '{"path": "/tmp/streaming_regress/bounds/w", "max_files_per_trigger": 100000}')$q$);
-- console num_rows: 2147483647 overflowed LIMIT num_rows + 1 in every batch
SELECT * FROM bounds_try($q$SELECT streaming.create_query('shown', 'SELECT value FROM batch_max', sink => 'console', sink_options => '{"num_rows": 2147483647}')$q$);
SELECT * FROM bounds_try($q$SELECT streaming.create_query('shown', 'SELECT value FROM batch_max', sink => 'console', sink_options => '{"num_rows": 0}')$q$);
\x off
-- a deterministic batch whose timestamp would leave the timestamptz range fails
SELECT streaming.create_source('late_rate', 'rate',
         options => '{"rows_per_batch": 3, "start_timestamp": "294276-12-31 00:00:00+00", "advance_millis_per_batch": 86400000}');
SELECT streaming.create_query('shown', 'SELECT "timestamp", value FROM late_rate', sink => 'console',
         sink_options => '{"num_rows": 100000}');
SELECT streaming.run('shown', 1);
SELECT streaming.run('shown', 1);
SELECT batch_id, input_rows, sink_rows FROM streaming.progress WHERE query = 'shown';

-- ------------------------------------------------------------------------
-- a batch that spilled to disk and had a bad record is decoded twice:
-- the first attempt's temporary file is closed (no "temporary file leak")
-- ------------------------------------------------------------------------
SET work_mem = '64kB';
COPY (SELECT 'k' || (i % 10), CASE WHEN i = 15000 THEN 'bad' ELSE i::text END, repeat('x', 50)
        FROM generate_series(1, 20000) i)
  TO '/tmp/streaming_regress/bounds/spill/1.csv' WITH (FORMAT csv);
SELECT streaming.create_source('big', 'file', 'k text, v int, pad text',
         '{"path": "/tmp/streaming_regress/bounds/spill", "format": "csv"}');
SELECT streaming.create_query('big_totals', 'SELECT k, count(*) AS n, sum(v) AS total FROM big GROUP BY k',
         output_mode => 'update');
SELECT streaming.run('big_totals');
RESET work_mem;
SELECT b.k, b.n, b.total, e.n = b.n AND e.total = b.total AS as_sql
  FROM big_totals b
  JOIN (SELECT 'k' || (i % 10) AS k, count(*) AS n, sum(i) AS total
          FROM generate_series(1, 20000) i WHERE i <> 15000 GROUP BY 1) e USING (k)
 ORDER BY b.k;
SELECT regexp_replace(position, '.*/', '') AS position, error FROM streaming.dead_letters WHERE query = 'big_totals';
SELECT input_rows, dead_letters FROM streaming.progress WHERE query = 'big_totals';

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source(name) FROM streaming.sources ORDER BY name;
DROP TABLE copied;
DROP DOMAIN bounds_int;
DROP FUNCTION bounds_fire(int);
DROP FUNCTION bounds_try(text);
DROP EXTENSION streaming;
