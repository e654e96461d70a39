-- Outer joins between streams, after Spark's StreamingOuterJoinSuite:
-- impressions and clicks of ads, a click counting when it comes within 10
-- seconds after its impression.  LEFT, RIGHT and FULL joins over several
-- batches: rows matched in the same batch, a batch later from either
-- side, by several rows, never (emitted padded with NULLs when the
-- watermark passes their bound, not before), late rows dropped.  After
-- every batch each result is compared, both ways and with counts, with
-- plain SQL's outer join over the rows fed so far that were not late,
-- restricted to what must be out by then: the pairs, and the unmatched
-- rows whose bound the watermark has passed.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/outer_* && mkdir -p /tmp/streaming_regress/outer_imp /tmp/streaming_regress/outer_clk';
SELECT streaming.create_source('imp', 'file', 'ad bigint, t timestamptz',
         '{"path": "/tmp/streaming_regress/outer_imp", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_source('clk', 'file', 'ad bigint, t timestamptz, note text',
         '{"path": "/tmp/streaming_regress/outer_clk", "format": "csv", "max_files_per_trigger": 1}');
CREATE TABLE labels (ad bigint, label text);
INSERT INTO labels VALUES (1, 'one'), (4, 'four'), (6, 'six');
CREATE TABLE fed_imp (batch int, ad bigint, t timestamptz);
CREATE TABLE fed_clk (batch int, ad bigint, t timestamptz, note text);
-- rows {ad, seconds after 2024-01-01} of one source for batch b
CREATE FUNCTION feed(src text, b int, rows bigint[][]) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
BEGIN
    EXECUTE format('INSERT INTO fed_%s (batch, ad, t) SELECT %s, $1[i][1], timestamptz %L + make_interval(secs => $1[i][2])
                      FROM generate_subscripts($1, 1) i', src, b, '2024-01-01 00:00:00+00') USING rows;
    IF src = 'clk' THEN
        UPDATE fed_clk SET note = 'n' || ad || '_' || extract(epoch FROM t - timestamptz '2024-01-01 00:00:00+00')::int
         WHERE batch = b;
    END IF;
    EXECUTE format('COPY (SELECT ad, t%s FROM fed_%s WHERE batch = %s) TO %L WITH (FORMAT csv)',
                   CASE src WHEN 'clk' THEN ', note' ELSE '' END, src, b,
                   format('/tmp/streaming_regress/outer_%s/%s.csv', src, b));
END $$;
-- the query's watermark after batch n: the least of the sources' largest
-- event times minus 10 seconds, never moving back
CREATE FUNCTION ref_wm(n int) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT max(w) FROM (
      SELECT k, min(m) - interval '10 seconds' AS w
        FROM generate_series(1, n) k,
             LATERAL (SELECT max(t) AS m FROM fed_imp WHERE batch <= k
                      UNION ALL SELECT max(t) FROM fed_clk WHERE batch <= k) x
       WHERE m IS NOT NULL GROUP BY k) y
$$;
-- the rows that were not late (at or before the watermark of the batch before)
CREATE VIEW ok_imp AS SELECT * FROM fed_imp f WHERE f.batch = 1 OR f.t > ref_wm(f.batch - 1);
CREATE VIEW ok_clk AS SELECT * FROM fed_clk f WHERE f.batch = 1 OR f.t > ref_wm(f.batch - 1);

-- each case: the query ($imp and $clk name the sources, or the rows fed
-- so far), and the reference's condition of what must be out ($wm: the
-- watermark)
CREATE TABLE cases (name text PRIMARY KEY, sql text, due text);
CREATE FUNCTION add_case(name text, sql text, due text, sink text DEFAULT 'table', sink_options jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(replace(sql, '$imp', 'imp'), '$clk', 'clk'),
                                   output_mode => 'append', event_time => 't', watermark => '10 seconds',
                                   sink => sink, sink_options => sink_options);
    INSERT INTO cases VALUES (name, sql, due);
END $$;
CREATE FUNCTION compare(q text, n int)
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c cases;
    ref text;
    res text := format('SELECT * FROM %I', q);
BEGIN
    SELECT * INTO c FROM cases WHERE name = q;
    ref := format('SELECT * FROM (%s) r WHERE %s',
                  replace(replace(c.sql, '$imp', format('(SELECT ad, t FROM ok_imp WHERE batch <= %s)', n)),
                          '$clk', format('(SELECT ad, t, note FROM ok_clk WHERE batch <= %s)', n)),
                  replace(c.due, '$wm', quote_literal(ref_wm(n)) || '::timestamptz'));
    query := q;
    EXECUTE format('SELECT count(*) FROM (%s) x', res) INTO result_rows;
    EXECUTE format('SELECT count(*) FROM (%s) x', ref) INTO reference_rows;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', ref, res) INTO missing;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', res, ref) INTO extra;
    RETURN NEXT;
END $$;
-- the rows each state keeps, against what the rule leaves after batch n:
-- an impression waits 10 s for its clicks, a click for nothing later
-- (both for the end of their window when joined on it)
CREATE FUNCTION states(n int)
RETURNS TABLE (query text, imp_kept bigint, imp_expected bigint, clk_kept bigint, clk_expected bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w timestamptz := ref_wm(n);
    st text;
BEGIN
    FOR query IN SELECT name FROM cases ORDER BY name LOOP
        SELECT substring(statement FROM 'streaming\.(join_\d+_\d+) keeps the rows of public\.imp') INTO st
          FROM streaming.explain(query) WHERE step = 'join state' AND statement LIKE '%public.imp;%';
        EXECUTE format('SELECT count(*) FROM streaming.%I', st) INTO imp_kept;
        SELECT substring(statement FROM 'streaming\.(join_\d+_\d+) keeps the rows of public\.clk') INTO st
          FROM streaming.explain(query) WHERE step = 'join state' AND statement LIKE '%public.clk;%';
        EXECUTE format('SELECT count(*) FROM streaming.%I', st) INTO clk_kept;
        IF query = 'window_left' THEN
            SELECT count(*) INTO imp_expected FROM ok_imp WHERE batch <= n AND t >= lower(streaming.window(w, '10 seconds'));
            SELECT count(*) INTO clk_expected FROM ok_clk WHERE batch <= n AND t >= lower(streaming.window(w, '10 seconds'));
        ELSE
            SELECT count(*) INTO imp_expected FROM ok_imp WHERE batch <= n AND t + interval '10 seconds' > w;
            SELECT count(*) INTO clk_expected FROM ok_clk WHERE batch <= n AND t > w;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
-- one batch of each query; its watermark then, and the one computed in SQL
CREATE FUNCTION run_all(n int) RETURNS TABLE (name text, watermark timestamptz, expected timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.run(c.name, 1) FROM cases c;
    RETURN QUERY SELECT c.name, q.watermark, ref_wm(n)
                   FROM cases c JOIN streaming.queries q ON q.name = c.name ORDER BY c.name;
END $$;

-- every impression, with its clicks or, once none can come, alone
SELECT add_case('left_clicks',
  $$SELECT i.ad, i.t AS shown, c.t AS clicked, c.note
      FROM $imp i LEFT JOIN $clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
  $$clicked IS NOT NULL OR shown <= $wm - interval '10 seconds'$$);
-- the same with conjuncts of one side in ON, into a file sink: impression
-- 9 and the click of ad 2 match nothing, so impressions 2 and 9 come out
-- alone; the padded rows reach the sink in their batch
SELECT add_case('left_files',
  $$SELECT i.ad, i.t AS shown, c.t AS clicked, c.note
      FROM $imp i LEFT JOIN $clk c
        ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds' AND i.ad <> 9 AND c.note NOT LIKE 'n2\_%'$$,
  $$clicked IS NOT NULL OR shown <= $wm - interval '10 seconds'$$,
  'file', '{"path": "/tmp/streaming_regress/outer_sink"}');
-- every click, with its impression or alone; WHERE applies after the join:
-- a click of ad 3 matched, so it is dropped, not padded with NULLs
SELECT add_case('right_clicks',
  $$SELECT c.ad, c.t AS clicked, i.t AS shown, c.note
      FROM $imp i RIGHT JOIN $clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'
     WHERE i.ad IS NULL OR i.ad <> 3$$,
  $$shown IS NOT NULL OR clicked <= $wm$$);
-- both, with USING-like merged key, and an ordinary table joined to the result
SELECT add_case('full_clicks',
  $$SELECT coalesce(i.ad, c.ad) AS ad, i.t AS shown, c.t AS clicked, l.label
      FROM ($imp i FULL JOIN $clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds')
      LEFT JOIN labels l ON l.ad = coalesce(i.ad, c.ad)$$,
  $$(shown IS NOT NULL AND clicked IS NOT NULL) OR (clicked IS NULL AND shown <= $wm - interval '10 seconds')
    OR (shown IS NULL AND clicked <= $wm)$$);
-- clicks in the window of 10 seconds of their impression: the window
-- bounds both sides, an impression comes out alone once the watermark
-- enters a later window
SELECT add_case('window_left',
  $$SELECT i.ad, i.t AS shown, c.t AS clicked
      FROM $imp i LEFT JOIN $clk c
        ON c.ad = i.ad AND streaming.window(i.t, '10 seconds') = streaming.window(c.t, '10 seconds')$$,
  $$clicked IS NOT NULL OR shown < lower(streaming.window($wm, '10 seconds'))$$);
SELECT step, regexp_replace(statement, 'join_\d+_', 'join_N_', 'g') FROM streaming.explain('full_clicks')
 WHERE step IN ('shape', 'join state') ORDER BY 1, 2;
-- the preserved side's state has the flag
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid
 WHERE r.relnamespace = 'streaming'::regnamespace
   AND r.relname = (SELECT substring(statement FROM 'streaming\.(join_\d+_\d+) keeps the rows of public\.imp')
                      FROM streaming.explain('left_clicks') WHERE step = 'join state' AND statement LIKE '%public.imp;%')
   AND a.attnum > 0 ORDER BY a.attnum;

-- 1: ad 1 clicked twice in the batch of its impression
SELECT feed('imp', 1, '{{1,0},{2,2},{3,4},{4,6}}'), feed('clk', 1, '{{1,3},{1,5}}');
SELECT * FROM run_all(1);
SELECT c.* FROM cases, compare(name, 1) c ORDER BY 1;
SELECT * FROM states(1);
-- 2: ad 2 clicked a batch after its impression; the watermark moves to
-- 10 s: no impression is due (3 and 4 wait until 14 and 16 s)
SELECT feed('imp', 2, '{{5,20}}'), feed('clk', 2, '{{2,8},{6,21}}');
SELECT * FROM run_all(2);
SELECT c.* FROM cases, compare(name, 2) c ORDER BY 1;
SELECT * FROM states(2);
-- 3: ad 3 clicked two batches after its impression; a late impression and a
-- late click (at or before 10 s) are dropped; the watermark moves to 11 s
SELECT feed('imp', 3, '{{7,9},{8,30}}'), feed('clk', 3, '{{3,12},{4,10}}');
SELECT * FROM run_all(3);
SELECT c.* FROM cases, compare(name, 3) c ORDER BY 1;
SELECT * FROM states(3);
-- 4: the watermark moves to 18 s: impression 4 (6 s), never clicked, is due
-- and comes out alone; the click of ad 8 at 28 s is before its impression
SELECT feed('imp', 4, '{{9,35}}'), feed('clk', 4, '{{5,25},{8,28}}');
SELECT * FROM run_all(4);
SELECT c.* FROM cases, compare(name, 4) c ORDER BY 1;
SELECT * FROM states(4);
SELECT * FROM left_clicks WHERE clicked IS NULL ORDER BY ad;
SELECT * FROM left_files WHERE clicked IS NULL ORDER BY ad;
-- 5: the watermark moves to 35 s: clicks 6 and 8, never matched, come out
-- alone; ad 11's click comes before its impression
SELECT feed('imp', 5, '{{10,50}}'), feed('clk', 5, '{{9,40},{11,45}}');
SELECT * FROM run_all(5);
SELECT c.* FROM cases, compare(name, 5) c ORDER BY 1;
SELECT * FROM states(5);
-- 6: impression 11 matches its kept click; the watermark moves to 40 s:
-- impression 8 (30 s) is due exactly now
SELECT feed('imp', 6, '{{11,42}}'), feed('clk', 6, '{{12,60}}');
SELECT * FROM run_all(6);
SELECT c.* FROM cases, compare(name, 6) c ORDER BY 1;
SELECT * FROM states(6);
-- 7: both sides of ad 13 in one batch; the watermark moves to 90 s
SELECT feed('imp', 7, '{{13,100}}'), feed('clk', 7, '{{13,101}}');
SELECT * FROM run_all(7);
SELECT c.* FROM cases, compare(name, 7) c ORDER BY 1;
SELECT * FROM states(7);
SELECT * FROM full_clicks ORDER BY ad, shown, clicked;
SELECT * FROM left_files WHERE clicked IS NULL ORDER BY ad;
-- each unmatched row came out once, in the batch whose watermark passed its bound
SELECT batch_id, state_rows_dropped_by_watermark AS late, state_rows_removed AS removed, sink_rows
  FROM streaming.progress WHERE query = 'full_clicks' ORDER BY batch_id;
-- the file sink holds the rows of the result table, each once, batch by batch
SELECT p.batch_id, p.sink_rows, f.rows AS file_rows
  FROM streaming.progress p LEFT JOIN streaming.sink_files f ON f.query = p.query AND f.batch_id = p.batch_id
 WHERE p.query = 'left_files' ORDER BY p.batch_id;
CREATE TABLE sunk (ad bigint, shown timestamptz, clicked timestamptz, note text);
COPY sunk FROM PROGRAM 'cat /tmp/streaming_regress/outer_sink/*.csv' WITH (FORMAT csv);
SELECT (SELECT count(*) FROM sunk) AS file_rows, (SELECT count(*) FROM left_files) AS result_rows,
       (SELECT count(*) FROM (SELECT * FROM sunk EXCEPT ALL SELECT * FROM left_files) x) AS extra,
       (SELECT count(*) FROM (SELECT * FROM left_files EXCEPT ALL SELECT * FROM sunk) x) AS missing;
DROP TABLE sunk;
-- the status shows the rows each side keeps
SELECT pg_stat_force_next_flush();
SELECT name, join_state_rows FROM streaming.status WHERE name IN (SELECT name FROM cases) ORDER BY name;

-- the nullable side of a LEFT join need not be evicted: created, with a
-- NOTICE naming it.  A bound in WHERE does not evict it: a click that the
-- ON condition matches with a later impression keeps that impression from
-- coming out alone, whatever WHERE says of the pair.
SELECT streaming.create_query('one_sided', $$SELECT i.ad, c.t FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t <= i.t + interval '10 seconds'
                                            WHERE c.t >= i.t$$,
         event_time => 't', watermark => '10 seconds');
SELECT streaming.drop_query('one_sided');
-- what is not supported is refused, saying what is missing
-- no watermark
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$);
-- a source without event time
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
         event_time => '{"imp": "t"}', watermark => '10 seconds');
-- no time bound, a bound that does not evict the preserved side, a bound in WHERE only
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i FULL JOIN clk c ON c.ad = i.ad$$,
         event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT c.ad FROM imp i RIGHT JOIN clk c ON c.ad = i.ad AND c.t <= i.t + interval '10 seconds'$$,
         event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad WHERE c.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
         event_time => 't', watermark => '10 seconds');
-- update mode, an aggregation or DISTINCT over the outer join
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
         output_mode => 'update', event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad, count(c.t) FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds' GROUP BY i.ad$$,
         output_mode => 'update', event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT DISTINCT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
         event_time => 't', watermark => '10 seconds');
-- a source outer-joined with itself, three streams, the padded side of
-- another outer join, an alias of the join
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN imp j ON j.ad = i.ad AND j.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
         event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'
                                         JOIN imp j ON j.ad = i.ad$$,
         event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT l.label FROM labels l LEFT JOIN (imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds') ON l.ad = i.ad$$,
         event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT j.x FROM (imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds') AS j(x)$$,
         event_time => 't', watermark => '10 seconds');
-- a subquery or a volatile function in the ON condition
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'
                                         AND c.ad IN (SELECT ad FROM labels)$$,
         event_time => 't', watermark => '10 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i LEFT JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'
                                         AND random() < 0.5$$,
         event_time => 't', watermark => '10 seconds');

SELECT streaming.drop_query(name) FROM cases ORDER BY name;
SELECT count(*) AS join_states_left FROM pg_class
 WHERE relnamespace = 'streaming'::regnamespace AND relname LIKE 'join%';
SELECT streaming.drop_source(s) FROM unnest(ARRAY['imp', 'clk']) s;
DROP VIEW ok_imp, ok_clk;
DROP TABLE fed_imp, fed_clk, cases, labels;
DROP FUNCTION feed(text, int, bigint[]), ref_wm(int), add_case(text, text, text, text, jsonb), compare(text, int), states(int), run_all(int);
DROP EXTENSION streaming;
