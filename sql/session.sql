-- Session windows: a session spans [first, last + gap) per key, and
-- sessions that overlap merge, also across batches
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/session && mkdir -p /tmp/streaming_regress/session/c /tmp/streaming_regress/session/a';
SELECT streaming.session_window('2024-01-01 00:00:10+00', '5 seconds');

-- (files in ISO 8601: a source reads event times in no other way)
CREATE FUNCTION feed(dir text, batch int, VARIADIC ev text[]) RETURNS void LANGUAGE plpgsql
    SET DateStyle = 'ISO' AS $$
BEGIN
    -- ev: 'user@second' pairs
    EXECUTE format($f$COPY (SELECT split_part(e, '@', 1), to_timestamp(split_part(e, '@', 2)::int)
                          FROM unnest(%L::text[]) e) TO %L WITH (FORMAT csv)$f$,
                   ev, format('/tmp/streaming_regress/session/%s/%s.csv', dir, batch));
END $$;
CREATE FUNCTION sessions(t regclass) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($f$SELECT format('%%s [%%s,%%s) n=%%s', u, extract(epoch FROM lower(s))::int,
                                         extract(epoch FROM upper(s))::int, n)
                                   FROM %s ORDER BY u, s$f$, t);
END $$;

-- complete mode: the table always holds the current sessions
SELECT streaming.create_source('clicks_c', 'file', 'u text, ts timestamptz', '{"path": "/tmp/streaming_regress/session/c", "format": "csv"}');
SELECT streaming.create_query('sess_c',
         $$SELECT u, streaming.session_window(ts, '10 seconds') AS s, count(*) AS n FROM clicks_c GROUP BY u, s$$,
         output_mode => 'complete');
-- batch 0: alice has two sessions (10-12 and 30), bob one
SELECT feed('c', 1, 'alice@10', 'alice@12', 'alice@30', 'bob@11');
SELECT streaming.run('sess_c');
SELECT * FROM sessions('sess_c');
-- batch 1: alice@21 bridges her two sessions into one; bob@40 opens a new one
SELECT feed('c', 2, 'alice@21', 'bob@40');
SELECT streaming.run('sess_c');
SELECT * FROM sessions('sess_c');
-- batch 2: alice@5 extends the start; bob@21 opens [21,31), which only touches [11,21)
SELECT feed('c', 3, 'alice@5', 'bob@21');
SELECT streaming.run('sess_c');
SELECT * FROM sessions('sess_c');
SELECT batch_id, input_rows, state_rows_updated, state_rows_total, sink_rows FROM streaming.progress ORDER BY batch_id;
SELECT count(*) AS state_rows FROM streaming.state_1;

-- append mode: a session is written once, when the watermark passes its end
SELECT streaming.create_source('clicks_a', 'file', 'u text, ts timestamptz', '{"path": "/tmp/streaming_regress/session/a", "format": "csv"}');
SELECT streaming.create_query('sess_a',
         $$SELECT u, streaming.session_window(ts, '10 seconds') AS s, count(*) AS n FROM clicks_a GROUP BY u, s$$,
         output_mode => 'append', event_time => 'ts', watermark => '5 seconds');
SELECT feed('a', 1, 'alice@10', 'alice@15', 'bob@12');
SELECT streaming.run('sess_a');
SELECT * FROM sessions('sess_a');
-- watermark 40 - 5 = 35 closes alice [10,25) and bob [12,22)
SELECT feed('a', 2, 'alice@40', 'alice@18');
SELECT streaming.run('sess_a');
SELECT * FROM sessions('sess_a');
-- alice@33 is at or before the watermark 35: late, dropped; alice@45 extends [40,50)
SELECT feed('a', 3, 'alice@33', 'alice@45');
SELECT streaming.run('sess_a');
SELECT * FROM sessions('sess_a');
SELECT batch_id, input_rows, state_rows_dropped_by_watermark, state_rows_total, sink_rows,
       extract(epoch FROM watermark)::int AS watermark
  FROM streaming.progress WHERE query = 'sess_a' ORDER BY batch_id;

-- update mode cannot keep session windows
SELECT streaming.create_query('bad', $$SELECT u, streaming.session_window(ts, '10 seconds') AS s, count(*) FROM clicks_a GROUP BY 1, 2$$,
         output_mode => 'update');

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source(name) FROM streaming.sources ORDER BY name;
DROP FUNCTION feed(text, int, text[]), sessions(regclass);
DROP EXTENSION streaming;
