-- Aggregates kept incrementally: each is compared, after several batches,
-- with the same aggregate computed over all the input at once.  A grouped
-- avg must combine partial states (sum, count), not average the averages.
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/aggregates && mkdir -p /tmp/streaming_regress/aggregates';
SELECT streaming.create_source('m', 'file', 'k text, i int, f float8, d numeric, b boolean',
         '{"path": "/tmp/streaming_regress/aggregates", "format": "csv", "max_files_per_trigger": 1}');

SELECT streaming.create_query('agg',
  $$SELECT k, count(*) AS n, avg(i) AS avg_i, avg(f) AS avg_f,
           bool_and(b) AS all_b, bool_or(b) AS any_b, every(i > 0) AS all_pos,
           variance(i) AS var_i, var_pop(d) AS varp_d, stddev(f) AS sd_f, stddev_pop(f) AS sdp_f,
           stddev_samp(d) AS sds_d, var_samp(f) FILTER (WHERE b) AS vars_f_b
      FROM m GROUP BY k$$, output_mode => 'update');
SELECT step, statement FROM streaming.explain('agg') WHERE step = 'aggregate';

-- the average of averages would be wrong: batch 1 has (a: 1, 2, 3), batch 2 has (a: 100)
COPY (VALUES ('a', 1, 1.5, 1.25, true), ('a', 2, 2.5, 2.5, true), ('a', 3, NULL, 3.75, NULL),
             ('b', -1, 1e10, 0.1, false), ('c', NULL, NULL, NULL, NULL))
  TO '/tmp/streaming_regress/aggregates/1.csv' WITH (FORMAT csv);
COPY (VALUES ('a', 100, 1e-3, 100, false), ('b', 5, 1e10 + 1, 0.2, false))
  TO '/tmp/streaming_regress/aggregates/2.csv' WITH (FORMAT csv);
COPY (VALUES ('b', 7, 1e10 + 2, 0.3, true), ('c', 4, 4, 4, true), ('d', 9, 9, 9, NULL))
  TO '/tmp/streaming_regress/aggregates/3.csv' WITH (FORMAT csv);
SELECT streaming.run('agg');
SELECT k, n, avg_i, all_b, any_b, all_pos FROM agg ORDER BY k;
SELECT k, round(avg_f::numeric, 6) AS avg_f, var_i, round(varp_d, 10) AS varp_d,
       round(sd_f::numeric, 6) AS sd_f, round(sdp_f::numeric, 6) AS sdp_f,
       round(sds_d, 10) AS sds_d, round(vars_f_b::numeric, 6) AS vars_f_b
  FROM agg ORDER BY k;

-- the same aggregates over all the input at once
CREATE TABLE all_m (k text, i int, f float8, d numeric, b boolean);
COPY all_m FROM PROGRAM 'cat /tmp/streaming_regress/aggregates/*.csv' WITH (FORMAT csv);
SELECT count(*) AS differing_groups FROM (
  SELECT k, count(*) AS n, avg(i) AS avg_i, round(avg(f)::numeric, 6) AS avg_f,
         bool_and(b) AS all_b, bool_or(b) AS any_b, every(i > 0) AS all_pos,
         round(variance(i), 10) AS var_i, round(var_pop(d), 10) AS varp_d,
         round(stddev(f)::numeric, 6) AS sd_f, round(stddev_pop(f)::numeric, 6) AS sdp_f,
         round(stddev_samp(d), 10) AS sds_d, round((var_samp(f) FILTER (WHERE b))::numeric, 6) AS vars_f_b
    FROM all_m GROUP BY k
  EXCEPT
  SELECT k, n, avg_i, round(avg_f::numeric, 6), all_b, any_b, all_pos, round(var_i, 10), round(varp_d, 10),
         round(sd_f::numeric, 6), round(sdp_f::numeric, 6), round(sds_d, 10), round(vars_f_b::numeric, 6)
    FROM agg) d;
-- the types of the result columns are those of the aggregates
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'agg'::regclass AND attnum > 0 ORDER BY attnum;

DROP TABLE all_m;
SELECT streaming.drop_query('agg');
SELECT streaming.drop_source('m');
DROP EXTENSION streaming;
