-- Event times are read strictly: every timestamptz column of a source is
-- read with one grammar (ISO 8601 / RFC 3339, or epoch numbers), whatever
-- DateStyle says; with a query's event time, a row without one, or with one
-- too far ahead of the clock, is a dead letter, never state.
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
-- this session reads dates day first: to timestamptz_in, "01/02/2024" is 1 February
SET DateStyle = 'ISO, DMY';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/event_time && mkdir -p /tmp/streaming_regress/event_time && cd /tmp/streaming_regress/event_time && mkdir json strict future replay week epoch_ms epoch_s tz typmod';

-- ----------------------------------------------------------------------
-- The parser against timestamptz_in
-- ----------------------------------------------------------------------

-- the parser, declared for this test only: NULL when it rejects the text
CREATE FUNCTION parse_event_time(x text, format text, tz text) RETURNS timestamptz
    AS '$libdir/streaming', 'streaming_parse_event_time' LANGUAGE C STRICT;
-- timestamptz_in under TimeZone tz and DateStyle ds; NULL when it rejects the text
CREATE FUNCTION pg_in(x text, tz text DEFAULT 'UTC', ds text DEFAULT 'ISO, MDY') RETURNS timestamptz
LANGUAGE plpgsql SET TimeZone = 'UTC' SET DateStyle = 'ISO, MDY' AS $$
BEGIN
    PERFORM set_config('TimeZone', tz, true), set_config('DateStyle', ds, true);
    RETURN x::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
-- timestamptz_in reads the text differently under MDY, DMY and YMD
CREATE FUNCTION datestyle_dependent(x text) RETURNS boolean LANGUAGE sql AS $$
    SELECT pg_in(x, 'UTC', 'ISO, MDY') IS DISTINCT FROM pg_in(x, 'UTC', 'ISO, DMY')
        OR pg_in(x, 'UTC', 'ISO, MDY') IS DISTINCT FROM pg_in(x, 'UTC', 'ISO, YMD') $$;
CREATE FUNCTION rnd(n int) RETURNS int LANGUAGE sql AS $$ SELECT floor(random() * n)::int $$;
CREATE FUNCTION two(n int) RETURNS text LANGUAGE sql AS $$ SELECT lpad(n::text, 2, '0') $$;
-- a random text of the grammar: any date of 0001-9999, T/t/space, seconds
-- up to 60, 0-9 fraction digits, and (if offsets) each offset form
CREATE FUNCTION random_event_time(offsets boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    d date := date '0001-01-01' + rnd(date '9999-12-31' - date '0001-01-01' + 1);
    t text := to_char(d, 'YYYY-MM-DD') || (ARRAY['T', 't', ' '])[1 + rnd(3)]
              || two(rnd(24)) || ':' || two(rnd(60)) || ':' || two(rnd(61));
    digits int := rnd(10);
    form int := CASE WHEN offsets THEN rnd(7) ELSE 0 END;
    sign text := (ARRAY['+', '-'])[1 + rnd(2)];
    hh text := two(rnd(16));
    mm text := two(rnd(60));
BEGIN
    IF digits > 0 THEN
        t := t || '.' || (SELECT string_agg(rnd(10)::text, '') FROM generate_series(1, digits));
    END IF;
    RETURN t || CASE form WHEN 0 THEN '' WHEN 1 THEN 'Z' WHEN 2 THEN 'z' WHEN 3 THEN sign || hh
                          WHEN 4 THEN sign || hh || mm ELSE sign || hh || ':' || mm END;
END $$;
SELECT setseed(0.20240102);

-- 3000 random texts of the grammar and the edges of the calendar: the
-- parser reads each as timestamptz_in does with TimeZone UTC (or both reject
-- it: no such day, a leap second past midnight)
CREATE TEMP TABLE iso AS
    SELECT random_event_time(true) AS x FROM generate_series(1, 3000)
    UNION ALL
    SELECT unnest(ARRAY[
        '2024-02-29T12:00:00Z', '2000-02-29 00:00:00+00', '0004-02-29T00:00:00Z', '1900-02-29T00:00:00Z',
        '2100-02-29T00:00:00Z', '2023-02-29T00:00:00Z', '2023-04-31T00:00:00Z', '2023-13-01T00:00:00Z',
        '0000-01-01T00:00:00Z', '1999-12-31T23:59:59.999999-01:00', '1999-12-31T23:59:59.9999995Z',
        '2000-01-01T00:00:00+00:01', '0001-01-01T00:00:00Z', '0001-01-01T00:00:00+15:59',
        '9999-12-31T23:59:59.999999Z', '9999-12-31T23:59:59.999999-15:59', '2016-12-31T23:59:60Z',
        '2016-12-31T23:59:60.5Z', '2016-12-31T23:59:60+01:00', '2016-06-30T12:59:60.5Z',
        '2024-01-02T10:09:03.0000005Z', '2024-01-02T10:09:03.0000015Z', '2024-01-02T10:09:03.0000025Z',
        '2024-01-02T10:09:03.1234565Z', '2024-01-02T10:09:03.9999995Z', '2024-01-02T10:09:03.999999999Z',
        '2024-01-02T23:59:59.9999999Z', '2024-01-02T10:09:03-00:00', '2024-01-02T10:09:03+1559',
        '2024-01-02T10:09:03+16:00', '2024-01-02T10:09:03-15:60', '2024-01-02T10:60:00Z',
        '2024-01-02T10:09:61Z']);
SELECT count(*) AS texts,
       count(*) FILTER (WHERE parse_event_time(x, 'iso8601', 'UTC') = pg_in(x)) AS same_value,
       count(*) FILTER (WHERE parse_event_time(x, 'iso8601', 'UTC') IS NULL AND pg_in(x) IS NULL) AS both_reject,
       count(*) FILTER (WHERE parse_event_time(x, 'iso8601', 'UTC') IS DISTINCT FROM pg_in(x)) AS differ
  FROM iso;
SELECT x, parse_event_time(x, 'iso8601', 'UTC'), pg_in(x) FROM iso
 WHERE parse_event_time(x, 'iso8601', 'UTC') IS DISTINCT FROM pg_in(x);
SELECT x FROM iso WHERE pg_in(x) IS NULL ORDER BY x;

-- without an offset, a time is local to the source's timezone option, as to
-- timestamptz_in with TimeZone set to it: random times, and times in the
-- hours around daylight-saving changes (gaps and repeated hours)
CREATE TEMP TABLE zoned AS
    SELECT (ARRAY['America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Australia/Lord_Howe',
                  'Pacific/Chatham', 'America/Sao_Paulo'])[1 + rnd(6)] AS tz,
           random_event_time(rnd(4) = 0) AS x
      FROM generate_series(1, 1000)
    UNION ALL
    SELECT tz, to_char(day + rnd(300) * interval '1 minute', 'YYYY-MM-DD HH24:MI:SS') AS x
      FROM (VALUES ('America/New_York', date '2024-03-10'), ('America/New_York', date '2024-11-03'),
                   ('Europe/Berlin', date '2024-03-31'), ('Europe/Berlin', date '2024-10-27'),
                   ('Australia/Lord_Howe', date '2024-04-07'), ('Australia/Lord_Howe', date '2024-10-06'),
                   ('Pacific/Chatham', date '2024-04-07'), ('America/Sao_Paulo', date '2018-11-04'))
           AS c(tz, day), generate_series(1, 40);
SELECT count(*) AS texts,
       count(*) FILTER (WHERE parse_event_time(x, 'iso8601', tz) = pg_in(x, tz)) AS same_value,
       count(*) FILTER (WHERE parse_event_time(x, 'iso8601', tz) IS NULL AND pg_in(x, tz) IS NULL) AS both_reject,
       count(*) FILTER (WHERE parse_event_time(x, 'iso8601', tz) IS DISTINCT FROM pg_in(x, tz)) AS differ,
       count(*) FILTER (WHERE pg_in(x, tz) IS DISTINCT FROM pg_in(x)) AS zone_matters
  FROM zoned;
SELECT tz, x, parse_event_time(x, 'iso8601', tz), pg_in(x, tz) FROM zoned
 WHERE parse_event_time(x, 'iso8601', tz) IS DISTINCT FROM pg_in(x, tz);

-- dates in the orders DateStyle chooses between: all rejected, and all
-- read differently by timestamptz_in under MDY, DMY and YMD
CREATE TEMP TABLE ambiguous AS
    SELECT to_char(ts, (ARRAY['MM/DD/YYYY HH24:MI:SS', 'DD/MM/YYYY HH24:MI:SS', 'MM-DD-YYYY HH24:MI:SS',
                              'DD-MM-YYYY"T"HH24:MI:SS', 'DD.MM.YYYY HH24:MI:SS', 'MM/DD/YYYY'])[1 + rnd(6)]) AS x
      FROM (SELECT make_timestamp(1901 + rnd(199), m, (m + 1 + rnd(10)) % 12 + 1, rnd(24), rnd(60), rnd(60)) AS ts
              FROM (SELECT 1 + rnd(12) AS m FROM generate_series(1, 500)) AS g) AS r;
SELECT count(*) AS texts,
       count(*) FILTER (WHERE parse_event_time(x, 'iso8601', 'UTC') IS NULL) AS rejected,
       count(*) FILTER (WHERE datestyle_dependent(x)) AS datestyle_dependent
  FROM ambiguous;

-- one character of a valid text replaced, dropped or doubled: what the
-- parser accepts, timestamptz_in reads the same; what it rejects,
-- timestamptz_in rejects too, reads by DateStyle, or is outside the grammar
CREATE TEMP TABLE mutated AS
    SELECT CASE rnd(3)
               WHEN 0 THEN overlay(x PLACING substr('0123456789-:T .+Z/x', 1 + rnd(19), 1) FROM 1 + rnd(length(x)) FOR 1)
               WHEN 1 THEN overlay(x PLACING '' FROM 1 + rnd(length(x)) FOR 1)
               ELSE overlay(x PLACING substr(x, p, 1) || substr(x, p, 1) FROM p FOR 1)
           END AS x
      FROM (SELECT x, 1 + rnd(length(x)) AS p FROM (SELECT random_event_time(true) AS x FROM generate_series(1, 2000)) a) b;
SELECT CASE WHEN parse_event_time(x, 'iso8601', 'UTC') = pg_in(x) THEN 'accepted, same value'
            WHEN parse_event_time(x, 'iso8601', 'UTC') IS NOT NULL THEN 'accepted, not as timestamptz_in reads it'
            WHEN pg_in(x) IS NULL THEN 'rejected, as by timestamptz_in'
            WHEN datestyle_dependent(x) THEN 'rejected, read by DateStyle'
            ELSE 'rejected, outside the grammar' END AS outcome,
       count(*)
  FROM mutated GROUP BY 1 ORDER BY 1;

-- texts timestamptz_in takes that the grammar leaves out on purpose
SELECT x, parse_event_time(x, 'iso8601', 'UTC') IS NOT NULL AS parsed, pg_in(x) IS NOT NULL AS timestamptz_in
  FROM unnest(ARRAY['now', 'today', 'epoch', 'infinity', '2024-01-02', '2024-01-02T10:09Z',
                    '2024-01-02T24:00:00Z', 'Jan 2 2024 10:09:03', 'Tue Jan 02 10:09:03 2024 UTC',
                    '20240102T100903Z', '2024-01-02 10:09:03 PST', '2024-01-02 10:09:03 Europe/Berlin',
                    '2024-01-02T10:09:03+05:30:00', '2024-01-02T10:09:03+5', ' 2024-01-02T10:09:03Z',
                    '2024-01-02T10:09:03Z ', '2024-1-2T10:09:03Z', '2024-01-02T10:09:03.1234567891Z',
                    '2024-01-02 10:09:03 BC', '12024-01-02T10:09:03Z', 'J2460312']) AS x;

-- epoch milliseconds and seconds: random values of 0001-9999, fractions to
-- the microsecond, exact (extract(epoch ...) is numeric)
CREATE TEMP TABLE epochs AS
    SELECT (floor(random() * 315537897600000) - 62135596800000)::bigint::text
           || CASE rnd(2) WHEN 0 THEN '' ELSE '.' || substr(rnd(1000)::text || '00', 1, 1 + rnd(3)) END AS ms,
           (floor(random() * 315537897600) - 62135596800)::bigint::text
           || CASE rnd(2) WHEN 0 THEN '' ELSE '.' || substr(lpad(rnd(1000000)::text, 6, '0'), 1, 1 + rnd(6)) END AS s
      FROM generate_series(1, 1000);
SELECT count(*) AS texts,
       count(*) FILTER (WHERE extract(epoch FROM parse_event_time(ms, 'epoch_ms', 'UTC')) * 1000 = ms::numeric) AS same_ms,
       count(*) FILTER (WHERE extract(epoch FROM parse_event_time(s, 'epoch_s', 'UTC')) = s::numeric) AS same_s
  FROM epochs;
SELECT x, parse_event_time(x, 'epoch_ms', 'UTC') AS epoch_ms, parse_event_time(x, 'epoch_s', 'UTC') AS epoch_s
  FROM unnest(ARRAY['0', '-1', '1704103200000', '1704103200.5', '-1.5', '1.0000005', '1.0000015', '007',
                    '1e3', '', '-', '1.', '.5', '+1', ' 1', '1 ', '0x10', '1,5', '1704103200000Z',
                    '2024-01-01T10:00:00Z', '9223372036854775807', '99999999999999999999']) AS x;

-- ----------------------------------------------------------------------
-- End to end: a file source, a windowed append query with a watermark
-- ----------------------------------------------------------------------

SELECT streaming.create_source('clicks', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/json", "format": "json"}');
SELECT streaming.create_query('per_minute',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM clicks GROUP BY 1$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
-- the same rows without an event time: any row is fine, but its timestamps
-- are read by the same grammar
SELECT streaming.create_query('all_clicks', 'SELECT id, ts FROM clicks');

-- batch 0: three rows, and one whose time DateStyle would read as 1 February
COPY (VALUES ('{"id": 1, "ts": "2024-01-01T10:00:00Z"}'), ('{"id": 2, "ts": "01/02/2024 10:09:03"}'),
             ('{"id": 3, "ts": "2024-01-01 10:00:01+00"}'), ('{"id": 4, "ts": "2024-01-01T11:00:02+01:00"}'))
  TO '/tmp/streaming_regress/event_time/json/1.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.run('per_minute');
-- the bad row is one dead letter; the watermark stays 10 seconds behind 10:00:02
SELECT watermark FROM streaming.queries WHERE name = 'per_minute';
SELECT regexp_replace(position, '.*/', '') AS position, convert_from(payload, 'UTF8') AS payload, error
  FROM streaming.dead_letters WHERE query = 'per_minute' ORDER BY id;
-- batch 1: 100 valid rows, 10:00:00 to 10:01:39: none of them is late
COPY (SELECT format('{"id": %s, "ts": "%s"}', 100 + i,
                    to_char(timestamptz '2024-01-01 10:00:00+00' + i * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
        FROM generate_series(0, 99) i)
  TO '/tmp/streaming_regress/event_time/json/2.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.run('per_minute');
-- batch 2: a row at 10:05 closes both windows; rows without a time are dead letters
COPY (VALUES ('{"id": 200, "ts": "2024-01-01T10:05:00Z"}'), ('{"id": 201}'), ('{"id": 202, "ts": null}'))
  TO '/tmp/streaming_regress/event_time/json/3.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.run('per_minute');
SELECT batch_id, input_rows, dead_letters, state_rows_dropped_by_watermark AS late, watermark
  FROM streaming.progress WHERE query = 'per_minute' ORDER BY batch_id;
SELECT lower(w) AS window_start, upper(w) AS window_end, n FROM per_minute ORDER BY w;
-- the open window [10:05, 10:06) is all the state holds: no NULL window
SELECT count(*) AS state_rows FROM streaming.state_1;
SELECT batch_id, regexp_replace(position, '.*/', '') AS position, convert_from(payload, 'UTF8') AS payload, error
  FROM streaming.dead_letters WHERE query = 'per_minute' ORDER BY id;
-- without an event time the rows without a time are rows; the bad text is a dead letter still
SELECT streaming.run('all_clicks');
SELECT count(*) AS rows, count(*) FILTER (WHERE ts IS NULL) AS without_time FROM all_clicks;
SELECT regexp_replace(position, '.*/', '') AS position, error
  FROM streaming.dead_letters WHERE query = 'all_clicks' ORDER BY id;
-- a peek outside a batch reads the same way (one record could not be decoded)
SELECT count(*) FROM clicks;

-- with on_error 'fail' a row without its event time stops the batch
SELECT streaming.create_source('strict_clicks', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/strict", "format": "csv"}');
SELECT streaming.create_query('strict_count',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM strict_clicks GROUP BY 1$$,
         output_mode => 'update', event_time => 'ts', watermark => '10 seconds', on_error => 'fail');
COPY (VALUES ('1,2024-01-01T10:00:00Z'), ('2,')) TO '/tmp/streaming_regress/event_time/strict/1.csv';
SELECT streaming.run('strict_count');
SELECT last_batch_id FROM streaming.queries WHERE name = 'strict_count';

-- ----------------------------------------------------------------------
-- Event times ahead of the clock
-- ----------------------------------------------------------------------

-- by default an event time more than a day ahead of the batch's start is a dead letter
SELECT streaming.create_source('future', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/future", "format": "json"}');
SELECT streaming.create_query('future_count',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM future GROUP BY 1$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
COPY (VALUES ('{"id": 1, "ts": "2024-01-01T10:00:00Z"}'), ('{"id": 2, "ts": "2999-01-01T00:00:00Z"}'),
             (format('{"id": 3, "ts": "%s"}', to_char(now() + interval '2 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
             (format('{"id": 4, "ts": "%s"}', to_char(now() + interval '1 hour', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))))
  TO '/tmp/streaming_regress/event_time/future/1.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.run('future_count');
SELECT input_rows, dead_letters, watermark BETWEEN now() AND now() + interval '1 hour' AS watermark_within_the_hour
  FROM streaming.progress WHERE query = 'future_count';
SELECT regexp_replace(convert_from(payload, 'UTF8'), '"ts": "[^"]*"', '"ts": …') AS payload,
       regexp_replace(error, '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', '<ts>') AS error
  FROM streaming.dead_letters WHERE query = 'future_count' ORDER BY id;
-- "off" (or null) turns the bound off, for replays of synthetic data
SELECT streaming.create_source('replay', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/replay", "format": "json", "max_event_time_ahead": "off"}');
SELECT streaming.create_query('replay_count',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM replay GROUP BY 1$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
COPY (VALUES ('{"id": 1, "ts": "2999-01-01T00:00:00Z"}'))
  TO '/tmp/streaming_regress/event_time/replay/1.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.run('replay_count');
SELECT input_rows, dead_letters, watermark FROM streaming.progress WHERE query = 'replay_count';
-- a wider bound: a week
SELECT streaming.create_source('week', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/week", "format": "csv", "max_event_time_ahead": "7 days"}');
SELECT streaming.create_query('week_count',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM week GROUP BY 1$$,
         output_mode => 'append', event_time => 'ts', watermark => '10 seconds');
COPY (SELECT 1, to_char(now() + interval '2 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
      UNION ALL SELECT 2, to_char(now() + interval '8 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
  TO '/tmp/streaming_regress/event_time/week/1.csv' WITH (FORMAT csv);
SELECT streaming.run('week_count');
SELECT input_rows, dead_letters FROM streaming.progress WHERE query = 'week_count';
SELECT regexp_replace(error, '\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', '<ts>') AS error
  FROM streaming.dead_letters WHERE query = 'week_count';

-- ----------------------------------------------------------------------
-- Epoch numbers, time zones, precision, domains
-- ----------------------------------------------------------------------

-- epoch milliseconds in json: numbers or strings of digits; anything else is a dead letter
SELECT streaming.create_source('ms_in', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/epoch_ms", "format": "json", "event_time_format": "epoch_ms"}');
SELECT streaming.create_query('ms_rows', 'SELECT id, ts FROM ms_in');
COPY (VALUES ('{"id": 1, "ts": 1704103200000}'), ('{"id": 2, "ts": "1704103200500"}'), ('{"id": 3, "ts": 1704103200000.25}'),
             ('{"id": 4, "ts": "2024-01-01T10:00:00Z"}'), ('{"id": 5, "ts": 1.7041032e12}'), ('{"id": 6, "ts": -1000}'))
  TO '/tmp/streaming_regress/event_time/epoch_ms/1.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.run('ms_rows');
SELECT * FROM ms_rows ORDER BY id;
SELECT convert_from(payload, 'UTF8') AS payload, error FROM streaming.dead_letters WHERE query = 'ms_rows' ORDER BY id;
-- epoch seconds in csv
SELECT streaming.create_source('s_in', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/epoch_s", "format": "csv", "event_time_format": "epoch_s"}');
SELECT streaming.create_query('s_rows', 'SELECT id, ts FROM s_in');
COPY (VALUES ('1,1704103200'), ('2,1704103200.123456'), ('3,-1.5'), ('4,01/02/2024'), ('5,1704103200.1234567'))
  TO '/tmp/streaming_regress/event_time/epoch_s/1.csv';
SELECT streaming.run('s_rows');
SELECT * FROM s_rows ORDER BY id;
SELECT convert_from(payload, 'UTF8') AS payload, error FROM streaming.dead_letters WHERE query = 's_rows' ORDER BY id;

-- times without an offset are local to the timezone option; offsets win
SELECT streaming.create_source('ny', 'file', 'id int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/event_time/tz", "format": "csv", "timezone": "America/New_York"}');
SELECT streaming.create_query('ny_rows', 'SELECT id, ts FROM ny');
COPY (VALUES ('1,2024-01-01 05:00:00'), ('2,2024-07-01T06:00:00'), ('3,2024-01-01T05:00:00Z'),
             ('4,2024-03-10 02:30:00'), ('5,2024-11-03 01:30:00'), ('6,2024-01-01T05:00:00+05:30'))
  TO '/tmp/streaming_regress/event_time/tz/1.csv';
SELECT streaming.run('ny_rows');
SELECT r.id, r.ts, r.ts = pg_in(f.x, 'America/New_York') AS as_timestamptz_in
  FROM ny_rows r JOIN (VALUES (1, '2024-01-01 05:00:00'), (2, '2024-07-01T06:00:00'), (3, '2024-01-01T05:00:00Z'),
                              (4, '2024-03-10 02:30:00'), (5, '2024-11-03 01:30:00'), (6, '2024-01-01T05:00:00+05:30'))
                      AS f(id, x) ON f.id = r.id
 ORDER BY r.id;

-- a column's precision rounds as timestamptz(p) does; a domain over
-- timestamptz reads the grammar, then checks its constraint
CREATE DOMAIN recent AS timestamptz CHECK (VALUE >= '2000-01-01 00:00:00+00');
SELECT streaming.create_source('typed', 'file', 'id int, ts timestamptz(0), d recent',
         '{"path": "/tmp/streaming_regress/event_time/typmod", "format": "csv"}');
SELECT streaming.create_query('typed_rows', 'SELECT id, ts, d FROM typed');
COPY (VALUES ('1,2024-01-01T10:00:00.6Z,2024-01-01T00:00:00Z'), ('2,2024-01-01T10:00:00Z,1999-12-31T23:59:59Z'),
             ('3,2024-01-01T10:00:00.4Z,01/02/2024'), ('4,2024-01-01T10:00:00Z,'), ('5,2024-01-01T10:00:00Z'))
  TO '/tmp/streaming_regress/event_time/typmod/1.csv';
SELECT streaming.run('typed_rows');
SELECT * FROM typed_rows ORDER BY id;
SELECT convert_from(payload, 'UTF8') AS payload, error FROM streaming.dead_letters WHERE query = 'typed_rows' ORDER BY id;

-- ----------------------------------------------------------------------
-- Options
-- ----------------------------------------------------------------------

CREATE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE msg text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN msg || coalesce(' (' || nullif(hint, '') || ')', '');
END $$;
SELECT o, try(format($f$SELECT streaming.drop_source(streaming.create_source('o', 'file', 'ts timestamptz', %L)::text)$f$,
                     '{"path": "/tmp/streaming_regress/event_time/json", ' || o || '}'))
  FROM unnest(ARRAY['"event_time_format": "rfc2822"', '"event_time_format": "epoch_ms"', '"timezone": "Mars/Olympus"',
                    '"timezone": ""', '"timezone": "utc"', '"timezone": "Europe/Berlin"', '"timezone": 1',
                    '"max_event_time_ahead": "1 month"', '"max_event_time_ahead": "-1 hour"',
                    '"max_event_time_ahead": "soon"', '"max_event_time_ahead": 86400',
                    '"max_event_time_ahead": null', '"max_event_time_ahead": "OFF"', '"max_event_time_ahead": "0"']) AS o;
-- the bound applies to any source; the reading options only to sources that decode records
SELECT try($$SELECT streaming.create_source('r', 'rate', options => '{"rows_per_second": 1, "max_event_time_ahead": "1 hour"}')$$);
SELECT try($$SELECT streaming.create_source('r2', 'rate', options => '{"rows_per_second": 1, "timezone": "UTC"}')$$);
SELECT try($$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "localhost:9", "topic": "t", "event_time_format": "epoch_ms"}')$$);
SELECT try($$SELECT streaming.create_source('k2', 'kafka', 'ts timestamptz', '{"bootstrap_servers": "localhost:9", "topic": "t", "format": "json", "event_time_format": "epoch_ms", "timezone": "Asia/Tokyo"}')$$);
SELECT name, kind FROM streaming.sources WHERE name IN ('r', 'r2', 'k', 'k2') ORDER BY name;

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source(name) FROM streaming.sources ORDER BY name;
DROP EXTENSION streaming;
DROP DOMAIN recent;
DROP FUNCTION try(text);
DROP FUNCTION parse_event_time(text, text, text);
DROP FUNCTION datestyle_dependent(text);
DROP FUNCTION pg_in(text, text, text);
DROP FUNCTION random_event_time(boolean);
DROP FUNCTION rnd(int);
DROP FUNCTION two(int);
