-- Top-N of an aggregation: ORDER BY ... LIMIT n in complete mode, and the
-- top rows per group, row_number() or rank() OVER (PARTITION BY ...) <= n
-- in update and complete mode.  After every batch each query's result
-- table is compared, both ways and with counts, with the same SELECT run
-- by plain PostgreSQL over a table holding the rows fed so far (the
-- reference names the group keys as the last sort keys where the
-- continuous query breaks ties by them).
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/topn && mkdir -p /tmp/streaming_regress/topn';
SELECT streaming.create_source('ev', 'file', 'a text, b int, x int, ts timestamptz',
         '{"path": "/tmp/streaming_regress/topn", "format": "csv", "max_files_per_trigger": 1}');
-- the same rows, for plain PostgreSQL
CREATE TABLE all_ev (a text, b int, x int, ts timestamptz);

-- the queries under test ($src: the source, or the plain table) and their
-- references, which add the group keys as tie-breakers
CREATE TABLE cases (name text PRIMARY KEY, reference text);
CREATE FUNCTION add_case(name text, sql text, reference text, mode text DEFAULT 'complete') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(sql, '$src', 'ev'), output_mode => mode);
    INSERT INTO cases VALUES (name, replace(reference, '$src', 'all_ev'));
END $$;

-- rows of the result table and of the reference: how many each holds and
-- how many of each are missing from the other
CREATE FUNCTION compare()
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    c cases;
BEGIN
    FOR c IN SELECT * FROM cases ORDER BY name LOOP
        query := c.name;
        EXECUTE format('SELECT count(*) FROM %I', c.name) INTO result_rows;
        EXECUTE format('SELECT count(*) FROM (%s) x', c.reference) INTO reference_rows;
        EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL SELECT * FROM %I) x', c.reference, c.name) INTO missing;
        EXECUTE format('SELECT count(*) FROM (SELECT * FROM %I EXCEPT ALL (%s)) x', c.name, c.reference) INTO extra;
        RETURN NEXT;
    END LOOP;
END $$;

-- feed: one file of rows (a batch), the same rows into all_ev; then a batch
-- of every query
CREATE FUNCTION feed(n int, rows_sql text) RETURNS void
LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
DECLARE
    c cases;
BEGIN
    EXECUTE format('INSERT INTO all_ev %s', rows_sql);
    EXECUTE format('COPY (%s) TO %L WITH (FORMAT csv)', rows_sql,
                   format('/tmp/streaming_regress/topn/%s.csv', n));
    FOR c IN SELECT * FROM cases ORDER BY name LOOP
        PERFORM streaming.run(c.name);
    END LOOP;
END $$;

-- the busiest groups; a NULL group; ties at the cut broken by the key
SELECT add_case('busiest', $$SELECT a, count(*) AS n FROM $src GROUP BY a ORDER BY n DESC LIMIT 3$$,
                $$SELECT a, count(*) AS n FROM $src GROUP BY a ORDER BY n DESC, a LIMIT 3$$);
-- the lowest sums: sums go down and up, so groups the batch does not
-- touch enter the top when the ones it touches leave it
SELECT add_case('lowest', $$SELECT a, b, sum(x) AS s, count(*) AS n FROM $src GROUP BY a, b ORDER BY s NULLS FIRST LIMIT 4$$,
                $$SELECT a, b, sum(x) AS s, count(*) AS n FROM $src GROUP BY a, b ORDER BY s NULLS FIRST, a, b LIMIT 4$$);
-- min and max, two sort keys, a key as the second
SELECT add_case('widest', $$SELECT b, min(x) AS lo, max(x) AS hi FROM $src GROUP BY b ORDER BY hi DESC, b DESC, lo LIMIT 2$$,
                $$SELECT b, min(x) AS lo, max(x) AS hi FROM $src GROUP BY b ORDER BY hi DESC, b DESC LIMIT 2$$);
-- expressions over aggregates beside the ordered one
SELECT add_case('means', $$SELECT a, count(*) AS n, sum(x)::float8 / count(*) AS mean, max(x) - min(x) AS spread
                             FROM $src GROUP BY a ORDER BY n, a DESC LIMIT 2$$,
                $$SELECT a, count(*) AS n, sum(x)::float8 / count(*) AS mean, max(x) - min(x) AS spread
                    FROM $src GROUP BY a ORDER BY n, a DESC LIMIT 2$$);
-- by the group key only, NULLs first
SELECT add_case('last_keys', $$SELECT a, count(*) AS n FROM $src GROUP BY a ORDER BY a DESC NULLS FIRST LIMIT 2$$,
                $$SELECT a, count(*) AS n FROM $src GROUP BY a ORDER BY a DESC NULLS FIRST LIMIT 2$$);
-- the last windows of the event time
SELECT add_case('last_windows', $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n, sum(x) AS s
                                    FROM $src GROUP BY w ORDER BY w DESC LIMIT 2$$,
                $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n, sum(x) AS s
                    FROM $src GROUP BY w ORDER BY w DESC LIMIT 2$$);

-- the top rows per group: per a, the two b with the most rows (ties by b)
SELECT add_case('per_a', $$SELECT * FROM (SELECT a, b, count(*) AS n, sum(x) AS s,
                                    row_number() OVER (PARTITION BY a ORDER BY count(*) DESC) AS rn
                               FROM $src GROUP BY a, b) t WHERE rn <= 2$$,
                $$SELECT * FROM (SELECT a, b, count(*) AS n, sum(x) AS s,
                                    row_number() OVER (PARTITION BY a ORDER BY count(*) DESC, b) AS rn
                               FROM $src GROUP BY a, b) t WHERE rn <= 2$$, 'update');
-- rank(): ties ranked alike, all of them kept; rk < 3
SELECT add_case('per_a_rank', $$SELECT a, b, s, rk FROM (SELECT a, b, sum(x) AS s,
                                    rank() OVER (PARTITION BY a ORDER BY sum(x) NULLS FIRST) AS rk
                               FROM $src GROUP BY a, b) t WHERE rk < 3$$,
                $$SELECT a, b, s, rk FROM (SELECT a, b, sum(x) AS s,
                                    rank() OVER (PARTITION BY a ORDER BY sum(x) NULLS FIRST) AS rk
                               FROM $src GROUP BY a, b) t WHERE rk < 3$$);
-- Nexmark q5's shape: the busiest b of each minute
SELECT add_case('hottest', $$SELECT w, b, n FROM (SELECT streaming.window(ts, '1 minute') AS w, b, count(*) AS n,
                                    row_number() OVER (PARTITION BY streaming.window(ts, '1 minute') ORDER BY count(*) DESC, b) AS rn
                               FROM $src GROUP BY 1, 2) t WHERE rn <= 1$$,
                $$SELECT w, b, n FROM (SELECT streaming.window(ts, '1 minute') AS w, b, count(*) AS n,
                                    row_number() OVER (PARTITION BY streaming.window(ts, '1 minute') ORDER BY count(*) DESC, b) AS rn
                               FROM $src GROUP BY 1, 2) t WHERE rn <= 1$$, 'update');
-- Nexmark q7's shape: the highest x of each two minutes, with every a that has it
SELECT add_case('highest', $$SELECT a, top, w FROM (SELECT streaming.window(ts, '2 minutes') AS w, a, max(x) AS top,
                                    rank() OVER (PARTITION BY streaming.window(ts, '2 minutes') ORDER BY max(x) DESC NULLS LAST) AS r
                               FROM $src GROUP BY 1, 2) t WHERE r <= 1$$,
                $$SELECT a, top, w FROM (SELECT streaming.window(ts, '2 minutes') AS w, a, max(x) AS top,
                                    rank() OVER (PARTITION BY streaming.window(ts, '2 minutes') ORDER BY max(x) DESC NULLS LAST) AS r
                               FROM $src GROUP BY 1, 2) t WHERE r <= 1$$);
-- partitioned by the second group key, which an index of its own finds
SELECT add_case('per_b', $$SELECT b, a, x_max, r FROM (SELECT a, b, max(x) AS x_max,
                                    rank() OVER (PARTITION BY b ORDER BY max(x) DESC NULLS LAST) AS r
                               FROM $src GROUP BY a, b) t WHERE r <= 2$$,
                $$SELECT b, a, x_max, r FROM (SELECT a, b, max(x) AS x_max,
                                    rank() OVER (PARTITION BY b ORDER BY max(x) DESC NULLS LAST) AS r
                               FROM $src GROUP BY a, b) t WHERE r <= 2$$);

-- the result and state tables, and how the top n is kept
\d busiest
SELECT step, statement FROM streaming.explain('lowest') WHERE step IN ('state table', 'top-n', 'emit');
SELECT pg_get_indexdef(indexrelid) FROM pg_index
 WHERE indrelid = (SELECT state_table FROM streaming.queries WHERE name = 'lowest') AND NOT indisunique;
SELECT step, statement FROM streaming.explain('hottest') WHERE step IN ('state table', 'top-n', 'emit');
-- partitioned by the first key: the state's unique index serves; by the
-- second, an index on it; the result's unique index leads with the partition
SELECT count(*) FROM pg_index
 WHERE indrelid = (SELECT state_table FROM streaming.queries WHERE name = 'per_a') AND NOT indisunique;
SELECT regexp_replace(pg_get_indexdef(indexrelid), 'state_\d+', 'state_N', 'g') FROM pg_index
 WHERE indrelid = (SELECT state_table FROM streaming.queries WHERE name = 'per_b') AND NOT indisunique;
\d per_b

-- batch 1: fewer groups than the limits
SELECT feed(1, $$VALUES ('p', 1, 5, '2026-01-01 00:00:10+00'::timestamptz), ('q', 1, -3, '2026-01-01 00:00:20+00'), ('p', 2, 1, '2026-01-01 00:00:30+00')$$);
SELECT * FROM compare();
SELECT * FROM busiest ORDER BY n DESC, a;

-- batch 2: more groups, ties at every cut, a NULL group, NULL values
SELECT feed(2, $$VALUES ('r', 1, 2, '2026-01-01 00:01:05+00'::timestamptz), ('s', 2, NULL, '2026-01-01 00:01:10+00'),
                        (NULL, 3, -7, '2026-01-01 00:01:15+00'), ('t', 3, 4, '2026-01-01 00:02:00+00'),
                        ('q', 2, 0, '2026-01-01 00:02:30+00'), (NULL, 3, 1, '2026-01-01 00:00:40+00')$$);
SELECT * FROM compare();
SELECT * FROM busiest ORDER BY n DESC, a;
SELECT * FROM lowest ORDER BY s NULLS FIRST, a, b;

-- batch 3: the lowest sums rise and leave the top; groups this batch does
-- not touch enter it; a group leaves the busiest
SELECT feed(3, $$VALUES ('q', 1, 20, '2026-01-01 00:03:00+00'::timestamptz), (NULL, 3, 30, '2026-01-01 00:03:10+00'),
                        ('r', 1, 1, '2026-01-01 00:03:20+00'), ('r', 1, 1, '2026-01-01 00:03:30+00'),
                        ('t', 3, 1, '2026-01-01 00:00:50+00'), ('t', 4, 9, '2026-01-01 00:03:40+00')$$);
SELECT * FROM compare();
SELECT * FROM busiest ORDER BY n DESC, a;
SELECT * FROM lowest ORDER BY s NULLS FIRST, a, b;

-- batch 4: a group that left comes back; new groups after the cut and
-- before it; a new key of b with the largest max
SELECT feed(4, $$VALUES ('q', 1, -40, '2026-01-01 00:04:00+00'::timestamptz), ('u', 9, 50, '2026-01-01 00:04:10+00'),
                        ('u', 9, -1, '2026-01-01 00:04:20+00'), ('u', 9, 3, '2026-01-01 00:04:30+00'),
                        ('v', 1, -2, '2026-01-01 00:01:50+00'), ('p', 1, NULL, '2026-01-01 00:04:40+00')$$);
SELECT * FROM compare();
SELECT * FROM busiest ORDER BY n DESC, a;
SELECT * FROM widest ORDER BY hi DESC, b DESC;

-- batch 5: many groups at once, of which few reach the tops
SELECT feed(5, $$SELECT chr(97 + g % 7), g % 5, (g * 37) % 23 - 11, '2026-01-01 00:05:00+00'::timestamptz + g * interval '1 second'
                  FROM generate_series(1, 200) g$$);
SELECT * FROM compare();
SELECT * FROM busiest ORDER BY n DESC, a;

-- a batch writes to the result table only the rows that entered the top
-- or that it changed: group a ties busiest's cut and enters it by its key
-- (d falls out), b 100 is a new group at the end of widest's order, the
-- one row is in the oldest window, which is not among the last two
SELECT feed(6, $$VALUES ('a', 100, -100, '2026-01-01 00:00:01+00'::timestamptz)$$);
SELECT * FROM compare();
SELECT * FROM busiest ORDER BY n DESC, a;
SELECT * FROM per_a ORDER BY a, rn;
SELECT * FROM highest ORDER BY w, a;
SELECT DISTINCT ON (query) query, input_rows, state_rows_updated, sink_rows
  FROM streaming.progress ORDER BY query, batch_id DESC;

-- refused shapes
CREATE FUNCTION try(sql text) RETURNS TABLE (code text, message text, detail text, hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    code := 'ok';
    RETURN NEXT;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN NEXT;
END $$;
\x on
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY n DESC LIMIT 3', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT streaming.window(ts, ''1 minute'') AS w, count(*) AS n FROM ev GROUP BY w ORDER BY n LIMIT 3', event_time => 'ts', watermark => '1 minute')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, x FROM ev ORDER BY x LIMIT 3', output_mode => 'append')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY n DESC', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a LIMIT 3', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY n DESC LIMIT 3 OFFSET 1', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY n DESC FETCH FIRST 3 ROWS WITH TIES', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY n DESC LIMIT 0', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY n DESC LIMIT ALL', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT count(*) AS n FROM ev ORDER BY n LIMIT 1', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a HAVING count(*) > 1 ORDER BY n DESC LIMIT 3', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, avg(x) AS m FROM ev GROUP BY a ORDER BY m DESC LIMIT 3', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY sum(x) LIMIT 3', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, count(*) AS n FROM ev GROUP BY a ORDER BY a USING OPERATOR(pg_catalog.~<~) LIMIT 3', output_mode => 'complete')$q$);
-- the top rows per group: not in append mode; only "rank <= n" or
-- "rank < n" over PARTITION BY group keys, selecting every group key; a
-- subquery that aggregates the stream otherwise would see one batch
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT * FROM (SELECT streaming.window(ts, ''1 minute'') AS w, a, count(*) AS n, row_number() OVER (PARTITION BY streaming.window(ts, ''1 minute'') ORDER BY count(*) DESC, a) AS rn FROM ev GROUP BY 1, 2) t WHERE rn <= 3', event_time => 'ts', watermark => '1 minute')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT * FROM (SELECT a, b, count(*) AS n, row_number() OVER (PARTITION BY a ORDER BY count(*) DESC) AS rn FROM ev GROUP BY a, b) t WHERE rn > 3', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, n FROM (SELECT a, b, count(*) AS n, row_number() OVER (PARTITION BY a ORDER BY count(*) DESC) AS rn FROM ev GROUP BY a, b) t WHERE rn <= 3', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT * FROM (SELECT a, b, avg(x) AS m, row_number() OVER (PARTITION BY a ORDER BY avg(x)) AS rn FROM ev GROUP BY a, b) t WHERE rn <= 3', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT * FROM (SELECT a, b, count(*) AS n, row_number() OVER (PARTITION BY b + 1 ORDER BY count(*) DESC) AS rn FROM ev GROUP BY a, b) t WHERE rn <= 3', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT * FROM (SELECT a, b, count(*) AS n, row_number() OVER (ORDER BY count(*) DESC) AS rn FROM ev GROUP BY a, b) t WHERE rn <= 3', output_mode => 'complete')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, n FROM (SELECT a, count(*) AS n FROM ev GROUP BY a) t WHERE n > 1', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('e', 'SELECT a, x FROM ev WHERE x IN (SELECT max(x) FROM all_ev GROUP BY a)', output_mode => 'append')$q$);
SELECT streaming.drop_query('e');
\x off
SELECT count(*) FROM streaming.queries WHERE name = 'e';

SELECT streaming.drop_query(name) FROM cases ORDER BY name;
DROP EXTENSION streaming CASCADE;
DROP FUNCTION try(text), compare(), feed(int, text), add_case(text, text, text, text);
DROP TABLE all_ev, cases;
