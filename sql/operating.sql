-- Operating the extension as a new user does: the errors at creation that
-- would otherwise come at the first batch, the hints that name every
-- option, dropping a source that queries read, starting a query that
-- cannot run, an unreadable directory in run(), the file sink's files
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/operating && mkdir -p /tmp/streaming_regress/operating/in /tmp/streaming_regress/operating/gone';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && printf "2024-01-01T00:00:01Z,1\n2024-01-01T00:00:02Z,2\n" > /tmp/streaming_regress/operating/in/a.csv';

CREATE FUNCTION operating_try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE msg text; hint text; code text;
BEGIN
    EXECUTE stmt;
    RETURN 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT, code = RETURNED_SQLSTATE;
    RETURN code || ': ' || msg || coalesce(' (' || nullif(hint, '') || ')', '');
END
$$;

SELECT streaming.create_source('ev', 'file', 'ts timestamptz, v int',
         '{"path": "/tmp/streaming_regress/operating/in"}');

-- a window that cannot work is refused by create_query, however its size
-- is written, as long as it does not depend on the row
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, '1 month') AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, size => '1 month') AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(size => '1 year', ts => ts) AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, '1 month'::text::interval) AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, make_interval(months => 1)) AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, '1 day'::interval * 30 + '1 month') AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, '1 day', slide => '1 month') AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, '1 day', '1 second'::text::interval) AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, '0 seconds'::text::interval) AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, '1 day', '1 hour', 'infinity'::text::timestamptz) AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
-- a size that depends on the row is checked by the batch, as before
SELECT operating_try($q$SELECT streaming.create_query('w', $$SELECT streaming.window(ts, make_interval(months => v)) AS w, count(*) FROM ev GROUP BY 1$$, output_mode => 'complete')$q$);
SELECT operating_try($q$SELECT streaming.run('w')$q$);
SELECT streaming.drop_query('w');
-- sizes that fold to a valid constant are accepted and work
SELECT streaming.create_query('w', $$SELECT streaming.window(ts, size => '1 day'::text::interval) AS w, count(*) AS n FROM ev GROUP BY 1$$, output_mode => 'complete');
SELECT streaming.run('w');
SELECT * FROM w ORDER BY w;
SELECT streaming.drop_query('w');

-- every unknown option's hint names every option the source or sink takes
SELECT operating_try($q$SELECT streaming.create_source('x', 'file', 'a int', '{"path": "/tmp/streaming_regress/operating/in", "colour": "red"}')$q$);
SELECT operating_try($q$SELECT streaming.create_source('x', 'kafka', 'a int', '{"bootstrap_servers": "localhost:9", "topic": "t", "format": "csv", "colour": "red"}')$q$);
SELECT operating_try($q$SELECT streaming.create_source('x', 'socket', options => '{"port": 9, "colour": "red"}')$q$);
SELECT operating_try($q$SELECT streaming.create_source('x', 'rate', options => '{"rows_per_second": 1, "colour": "red"}')$q$);
SELECT operating_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'console', sink_options => '{"colour": "red"}')$q$);
SELECT operating_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'notify', sink_options => '{"colour": "red"}')$q$);
SELECT operating_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'kafka', sink_options => '{"topic": "t", "bootstrap_servers": "localhost:9", "colour": "red"}')$q$);
-- and each option the hint names is accepted (here: the file source's all)
SELECT operating_try($q$SELECT streaming.create_source('x', 'file', 'a int, ts timestamptz', '{"path": "/tmp/streaming_regress/operating/in", "format": "csv", "header": true, "delimiter": ";", "quote": "''", "escape": "\\", "null": "NA", "max_files_per_trigger": 2, "latest_first": true, "clean_source": "off", "event_time_format": "iso8601", "timezone": "UTC", "max_event_time_ahead": "1 hour"}')$q$);
SELECT streaming.drop_source('x');
SELECT operating_try($q$SELECT streaming.create_source('x', 'socket', options => '{"port": 9, "host": "localhost", "include_timestamp": true, "max_lines_per_trigger": 5, "max_event_time_ahead": "off"}')$q$);
SELECT streaming.drop_source('x');
-- event-time options are options of sources, not of sinks
SELECT operating_try($q$SELECT streaming.create_query('x', 'SELECT * FROM ev', sink => 'console', sink_options => '{"timezone": "UTC"}')$q$);

-- DROP FOREIGN TABLE of a source that queries read: refused without
-- CASCADE, with CASCADE the queries go too (their tables and catalog rows)
SELECT streaming.create_query('agg', 'SELECT v, count(*) AS n FROM ev GROUP BY v', output_mode => 'complete');
CREATE TABLE copies (ts timestamptz, v int);
SELECT streaming.create_query('copy', 'SELECT ts, v FROM ev', sink_options => '{"table": "copies"}');
SELECT streaming.run('agg'), streaming.run('copy');
SELECT count(*) FROM copies;
\set VERBOSITY terse
DROP FOREIGN TABLE ev;
\set VERBOSITY default
SELECT name FROM streaming.queries ORDER BY name;
DROP FOREIGN TABLE ev CASCADE;
SELECT name FROM streaming.queries ORDER BY name;
SELECT count(*) FROM streaming.offsets;
SELECT count(*) FROM streaming.sources;
SELECT to_regclass('agg') AS result_table, count(*) AS state_tables
  FROM pg_class WHERE relnamespace = 'streaming'::regnamespace AND relname LIKE 'state\_%';
-- the existing table a query wrote into stays, with its rows
SELECT count(*) FROM copies;
DROP TABLE copies;

-- a query without tables of its own: DROP is refused all the same
SELECT streaming.create_source('ev', 'file', 'ts timestamptz, v int',
         '{"path": "/tmp/streaming_regress/operating/in"}');
CREATE TABLE copies (ts timestamptz, v int);
SELECT streaming.create_query('copy', 'SELECT ts, v FROM ev', sink_options => '{"table": "copies"}');
SELECT operating_try('DROP FOREIGN TABLE ev');
SELECT operating_try('DROP FOREIGN TABLE ev RESTRICT');

-- DROP SCHEMA ... CASCADE takes a source's queries too
CREATE SCHEMA feeds;
SELECT streaming.create_source('feeds.ev2', 'file', 'ts timestamptz, v int',
         '{"path": "/tmp/streaming_regress/operating/in"}');
SELECT streaming.create_query('per_v', 'SELECT v, count(*) AS n FROM feeds.ev2 GROUP BY v', output_mode => 'complete');
SELECT streaming.run('per_v');
DROP SCHEMA feeds CASCADE;
SELECT name FROM streaming.queries ORDER BY name;
SELECT to_regclass('per_v');

-- start() of a query that cannot run is an error, and changes nothing
SELECT streaming.create_query('agg', 'SELECT v, count(*) AS n FROM ev GROUP BY v', output_mode => 'complete');
DROP TABLE agg;
SELECT operating_try($q$SELECT streaming.start('agg')$q$);
SELECT operating_try($q$SELECT streaming.run('agg')$q$);
SELECT enabled, status, worker_pid, last_error FROM streaming.queries WHERE name = 'agg';
SELECT streaming.drop_query('agg');
SELECT streaming.create_query('agg', 'SELECT v, count(*) AS n FROM ev GROUP BY v', output_mode => 'complete');
SELECT state_table AS agg_state FROM streaming.queries WHERE name = 'agg' \gset
DROP TABLE :agg_state;
SELECT operating_try($q$SELECT streaming.start('agg')$q$);
SELECT enabled, status, worker_pid, last_error FROM streaming.queries WHERE name = 'agg';
SELECT streaming.drop_query('agg');
SELECT streaming.drop_query('copy');
DROP TABLE copies;

-- a missing directory in run(): the error says which source and why
SELECT streaming.create_source('lost', 'file', 'ts timestamptz, v int',
         '{"path": "/tmp/streaming_regress/operating/gone"}');
SELECT streaming.create_query('lost_rows', 'SELECT ts, v FROM lost');
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rmdir /tmp/streaming_regress/operating/gone';
SELECT operating_try($q$SELECT streaming.run('lost_rows')$q$);
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && mkdir /tmp/streaming_regress/operating/gone && cp /tmp/streaming_regress/operating/in/a.csv /tmp/streaming_regress/operating/gone/';
SELECT streaming.run('lost_rows');
SELECT * FROM lost_rows ORDER BY v;
SELECT streaming.drop_query('lost_rows');
SELECT streaming.drop_source('lost');

-- the file sink's files: part-<10-digit batch id>, readable by all
SELECT streaming.create_query('to_files', 'SELECT ts, v FROM ev',
         sink => 'file', sink_options => '{"path": "/tmp/streaming_regress/operating/out/json", "format": "json"}');
SELECT streaming.run('to_files');
SELECT path, rows FROM streaming.sink_files WHERE query = 'to_files';
CREATE TEMP TABLE modes (line text);
COPY modes FROM PROGRAM 'cd /tmp/streaming_regress/operating/out && stat -c "%a %n" . json json/*';
SELECT * FROM modes ORDER BY line;
SELECT streaming.drop_query('to_files');

SELECT streaming.drop_source('ev');
DROP EXTENSION streaming;
DROP FUNCTION operating_try(text);
