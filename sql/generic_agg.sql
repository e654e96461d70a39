-- Any aggregate with a combine function is kept through its own transition,
-- combine and final functions over a serialized state
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/generic && mkdir -p /tmp/streaming_regress/generic';
SELECT streaming.create_source('pts', 'file', 'k text, x float8, y float8, flags int',
         '{"path": "/tmp/streaming_regress/generic", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_query('fit',
  $$SELECT k, bit_and(flags) AS all_flags, bit_or(flags) AS any_flags,
           corr(y, x) AS r, regr_slope(y, x) AS slope, regr_intercept(y, x) AS intercept,
           regr_count(y, x) AS n
      FROM pts GROUP BY k$$, output_mode => 'complete');
SELECT statement FROM streaming.explain('fit') WHERE step = 'aggregate' ORDER BY statement;
\d streaming.state_1

COPY (VALUES ('a', 1, 2.1, 7), ('a', 2, 3.9, 3), ('b', 1, 1, 1))
  TO '/tmp/streaming_regress/generic/1.csv' WITH (FORMAT csv);
COPY (VALUES ('a', 3, 6.2, 11), ('b', 2, 0, 2), ('b', 3, -1.5, NULL))
  TO '/tmp/streaming_regress/generic/2.csv' WITH (FORMAT csv);
COPY (VALUES ('a', 4, 7.8, 15), ('c', 1, NULL, 8))
  TO '/tmp/streaming_regress/generic/3.csv' WITH (FORMAT csv);
SELECT streaming.run('fit');
SELECT k, all_flags, any_flags, round(r::numeric, 10) AS r, round(slope::numeric, 10) AS slope,
       round(intercept::numeric, 10) AS intercept, n
  FROM fit ORDER BY k;

-- the same over all the input at once
CREATE TABLE all_pts (k text, x float8, y float8, flags int);
COPY all_pts FROM PROGRAM 'cat /tmp/streaming_regress/generic/*.csv' WITH (FORMAT csv);
SELECT count(*) AS differing_groups FROM (
  SELECT k, bit_and(flags), bit_or(flags), round(corr(y, x)::numeric, 10), round(regr_slope(y, x)::numeric, 10),
         round(regr_intercept(y, x)::numeric, 10), regr_count(y, x)
    FROM all_pts GROUP BY k
  EXCEPT
  SELECT k, all_flags, any_flags, round(r::numeric, 10), round(slope::numeric, 10),
         round(intercept::numeric, 10), n FROM fit) d;
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'fit'::regclass AND attnum > 0 ORDER BY attnum;

DROP TABLE all_pts;
SELECT streaming.drop_query('fit');
SELECT streaming.drop_source('pts');
DROP EXTENSION streaming;
