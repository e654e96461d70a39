-- A query's statements are prepared once per session (or worker) and
-- prepared again only when something they use changes: progress rows show
-- the time spent preparing, duration_ms->'query_planning', which is 0 for a
-- batch whose statements were reused
CREATE EXTENSION streaming;
SET streaming.autostart = off;

-- batch b of the deterministic rate source holds values 5b .. 5b+4,
-- stamped 2024-01-01 + 4b seconds
SELECT streaming.create_source('pr_ticks', 'rate',
         options => '{"rows_per_batch": 5, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 4000}');
SELECT streaming.create_query('pr_sums',
         $$SELECT value % 3 AS k, count(*) AS n, sum(value) AS total FROM pr_ticks GROUP BY 1$$,
         output_mode => 'update');

-- which batches of a query prepared a statement
CREATE FUNCTION prepared_in(q text) RETURNS TABLE (batch_id bigint, prepared boolean)
LANGUAGE sql AS $$
  SELECT batch_id, (duration_ms->>'query_planning')::numeric > 0
    FROM streaming.progress WHERE query = q ORDER BY batch_id
$$;
-- the result equals plain SQL over the batches' values
CREATE FUNCTION sums_differ(batches int) RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM (
    (SELECT k, n, total FROM pr_sums
     EXCEPT SELECT v % 3, count(*), sum(v) FROM generate_series(0, 5 * batches - 1) v GROUP BY 1)
    UNION ALL
    (SELECT v % 3, count(*), sum(v) FROM generate_series(0, 5 * batches - 1) v GROUP BY 1
     EXCEPT SELECT k, n, total FROM pr_sums)) d
$$;

-- five batches, one transaction each: prepared in the first only
SELECT streaming.run('pr_sums', 1);
SELECT streaming.run('pr_sums', 1);
SELECT streaming.run('pr_sums', 1);
SELECT streaming.run('pr_sums', 1);
SELECT streaming.run('pr_sums', 1);
SELECT * FROM prepared_in('pr_sums');
SELECT sums_differ(5);

-- a column added to the result table: prepared again, once
ALTER TABLE pr_sums ADD COLUMN note text;
SELECT streaming.run('pr_sums', 1);
SELECT streaming.run('pr_sums', 1);
SELECT streaming.run('pr_sums', 1);
-- an index on the state table: prepared again, once
CREATE INDEX ON streaming.state_1 (s2);
SELECT streaming.run('pr_sums', 1);
SELECT streaming.run('pr_sums', 1);
-- several batches in one run(), one transaction: no preparing after the first
SELECT streaming.run('pr_sums', 3);
SELECT * FROM prepared_in('pr_sums') WHERE batch_id >= 5;
SELECT sums_differ(13);
SELECT count(*) AS notes FROM pr_sums WHERE note IS NOT NULL;

-- the close statement ($1: the watermark) is kept too: 10-second windows,
-- a watermark of 5 seconds, append mode
SELECT streaming.create_query('pr_windows',
         $$SELECT streaming.window("timestamp", '10 seconds') AS w, count(*) AS n, sum(value) AS total
             FROM pr_ticks GROUP BY 1$$,
         output_mode => 'append', event_time => 'timestamp', watermark => '5 seconds');
SELECT streaming.run('pr_windows', 1);
SELECT streaming.run('pr_windows', 1);
SELECT streaming.run('pr_windows', 1);
SELECT streaming.run('pr_windows', 1);
SELECT streaming.run('pr_windows', 1);
SELECT streaming.run('pr_windows', 1);
SELECT * FROM prepared_in('pr_windows');
SELECT batch_id, state_rows_removed, sink_rows FROM streaming.progress
 WHERE query = 'pr_windows' ORDER BY batch_id;
-- closed windows equal plain SQL over the values of batches 0..5, at
-- 0, 4, ..., 20 s: the watermark, 20 - 5 s, closed the windows ending by 15 s
SELECT extract(epoch FROM lower(w) - '2024-01-01 00:00:00+00')::int AS starts, n, total
  FROM pr_windows ORDER BY 1;
SELECT 4 * (v / 5) / 10 * 10 AS starts, count(*) AS n, sum(v) AS total
  FROM generate_series(0, 29) v GROUP BY 1 HAVING 4 * (v / 5) / 10 * 10 + 10 <= 20 - 5 ORDER BY 1;

-- a statement that resolves a function by its signature: an overload
-- created since with a closer one is caught at the next batch though the
-- statement is kept, and the batch does not run
CREATE FUNCTION public.pr_same(v anyelement) RETURNS anyelement LANGUAGE sql AS $$SELECT v$$;
SELECT streaming.create_query('pr_fn',
         $$SELECT value % 2 AS k, public.pr_same(sum(value)) AS s FROM pr_ticks
            GROUP BY 1 HAVING public.pr_same(sum(value)) >= 0$$, output_mode => 'update');
SELECT streaming.run('pr_fn', 1);
SELECT streaming.run('pr_fn', 1);
CREATE FUNCTION public.pr_same(numeric) RETURNS numeric LANGUAGE sql AS $$SELECT -$1$$;
SELECT streaming.run('pr_fn', 1);
SELECT k, s FROM pr_fn ORDER BY k;
-- gone again: the statement means what it meant, and runs
DROP FUNCTION public.pr_same(numeric);
SELECT streaming.run('pr_fn', 1);
SELECT streaming.run('pr_fn', 1);
SELECT * FROM prepared_in('pr_fn');
SELECT k, s FROM pr_fn ORDER BY k;
SELECT v % 2 AS k, sum(v) AS s FROM generate_series(0, 19) v GROUP BY 1 ORDER BY 1;

-- a query dropped and created again under the same name is prepared anew
SELECT streaming.drop_query('pr_fn');
SELECT streaming.create_query('pr_fn',
         $$SELECT value % 2 AS k, count(*) AS s FROM pr_ticks GROUP BY 1$$, output_mode => 'update');
SELECT streaming.run('pr_fn', 1);
SELECT streaming.run('pr_fn', 1);
SELECT * FROM prepared_in('pr_fn');
SELECT k, s FROM pr_fn ORDER BY k;

SELECT streaming.drop_query('pr_sums');
SELECT streaming.drop_query('pr_windows');
SELECT streaming.drop_query('pr_fn');
SELECT streaming.drop_source('pr_ticks');
DROP FUNCTION prepared_in(text);
DROP FUNCTION sums_differ(int);
DROP FUNCTION public.pr_same(anyelement);
DROP EXTENSION streaming;
