-- Queries over several sources: UNION ALL of streams, alone and under an
-- aggregation, each batch reading every source's new input.  After every
-- batch each result is compared, both ways and with counts, with the same
-- SELECT run by plain PostgreSQL over tables holding the same rows.  What
-- combines streams otherwise (UNION, a stream in a subquery beside
-- another) is refused.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/union_a /tmp/streaming_regress/union_b && mkdir -p /tmp/streaming_regress/union_a /tmp/streaming_regress/union_b';
SELECT streaming.create_source('clicks_a', 'file', 'page text, ms int, at timestamptz',
         '{"path": "/tmp/streaming_regress/union_a", "format": "csv", "max_files_per_trigger": 1}');
-- other names, other (coercible) types
SELECT streaming.create_source('clicks_b', 'file', 'url text, latency bigint, country text',
         '{"path": "/tmp/streaming_regress/union_b", "format": "csv", "max_files_per_trigger": 1}');
CREATE TABLE all_a (page text, ms int, at timestamptz);
CREATE TABLE all_b (url text, latency bigint, country text);
-- an ordinary table joined to one branch
CREATE TABLE pages (page text PRIMARY KEY, section text);
INSERT INTO pages VALUES ('p0', 'home'), ('p1', 'docs'), ('p2', 'docs'), ('p3', 'shop');

CREATE TABLE cases (name text PRIMARY KEY, sql text);
CREATE FUNCTION add_case(name text, sql text, mode text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(replace(sql, '$a', 'clicks_a'), '$b', 'clicks_b'), output_mode => mode);
    INSERT INTO cases VALUES (name, sql);
END $$;
CREATE FUNCTION compare(q text)
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    ref text := replace(replace((SELECT sql FROM cases WHERE name = q), '$a', 'all_a'), '$b', 'all_b');
    res text := format('SELECT * FROM %I', q);
BEGIN
    query := q;
    EXECUTE format('SELECT count(*) FROM (%s) x', res) INTO result_rows;
    EXECUTE format('SELECT count(*) FROM (%s) x', ref) INTO reference_rows;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', ref, res) INTO missing;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', res, ref) INTO extra;
    RETURN NEXT;
END $$;
-- a file of n rows for source a or b (or none when n = 0)
CREATE FUNCTION feed(src text, n int, k int) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
DECLARE
    file text := format('/tmp/streaming_regress/union_%s/%s.csv', src, k);
BEGIN
    IF src = 'a' THEN
        EXECUTE format($f$COPY (SELECT 'p' || ((g * %s) %% 5), (g * 37 + %s) %% 300,
                                      timestamptz '2024-01-01' + make_interval(secs => g + %s * 100)
                                 FROM generate_series(1, %s) g) TO %L WITH (FORMAT csv)$f$, k, k, k, n, file);
        EXECUTE format('COPY all_a FROM %L WITH (FORMAT csv)', file);
    ELSE
        EXECUTE format($f$COPY (SELECT CASE WHEN g %% 9 = 0 THEN NULL ELSE 'p' || ((g + %s) %% 6) END,
                                      (g * 53 + %s) %% 500, (ARRAY['fr', 'de', 'jp'])[1 + g %% 3]
                                 FROM generate_series(1, %s) g) TO %L WITH (FORMAT csv)$f$, k, k, n, file);
        EXECUTE format('COPY all_b FROM %L WITH (FORMAT csv)', file);
    END IF;
END $$;
CREATE FUNCTION run_all() RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT streaming.run(name, 1) FROM cases ORDER BY name
$$;

-- the rows of both streams, appended as they come
SELECT add_case('u_rows', $$SELECT page, ms::bigint AS ms, 'a' AS src FROM $a UNION ALL SELECT url, latency, 'b' FROM $b$$, 'append');
-- aggregated over both, with FILTER, DISTINCT, an expression and HAVING
SELECT add_case('u_agg',
  $$SELECT page, count(*) AS n, sum(ms) AS total, count(*) FILTER (WHERE src = 'b') AS from_b,
           count(DISTINCT src) AS sources, max(ms) - min(ms) AS spread
      FROM (SELECT page, ms::bigint AS ms, 'a' AS src FROM $a
            UNION ALL SELECT url, latency, 'b' FROM $b WHERE country <> 'jp') c
     GROUP BY page HAVING count(*) > 2$$, 'update');
-- per section, one branch joined with an ordinary table; complete mode
SELECT add_case('u_sections',
  $$SELECT section, count(*) AS n FROM (SELECT p.section FROM $a a JOIN pages p USING (page)
                                         UNION ALL SELECT coalesce(url, 'none') FROM $b) s GROUP BY section$$,
  'complete');
-- three branches, one source twice
SELECT add_case('u_three',
  $$SELECT src, count(*) AS n FROM (SELECT 'a' AS src FROM $a UNION ALL SELECT 'b' FROM $b
                                     UNION ALL SELECT 'a2' FROM $a WHERE ms > 150) t GROUP BY src$$, 'update');
SELECT step, statement FROM streaming.explain('u_agg') WHERE step = 'source' ORDER BY statement;

-- batches: both sources, one of them, the other, both again
SELECT feed('a', 30, 1), feed('b', 25, 1);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed('a', 20, 2);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed('b', 40, 3);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed('a', 15, 4), feed('b', 15, 4);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
-- nothing new: no batch
SELECT * FROM run_all();
SELECT * FROM u_three ORDER BY src;
-- each batch's progress names both sources and what each gave
SELECT batch_id, input_rows, (SELECT string_agg(format('%s:%s', s->>'source', s->>'input_rows'), ' ' ORDER BY s->>'source')
                                FROM jsonb_array_elements(sources) s) AS per_source
  FROM streaming.progress WHERE query = 'u_agg' ORDER BY batch_id;
SELECT s.relname, count(*) AS files FROM streaming.offsets o JOIN pg_class s ON s.oid = o.source
 WHERE query = 'u_agg' GROUP BY 1 ORDER BY 1;

-- what combines streams otherwise is refused
SELECT streaming.create_query('bad', $$SELECT page FROM clicks_a UNION SELECT url FROM clicks_b$$);
SELECT streaming.create_query('bad', $$SELECT page FROM clicks_a EXCEPT ALL SELECT url FROM clicks_b$$);
-- (joins of streams in the query's own FROM: see stream_join)
SELECT streaming.create_query('bad', $$SELECT page FROM clicks_a WHERE page IN (SELECT url FROM clicks_b)$$);
SELECT streaming.create_query('bad', $$SELECT x.page FROM clicks_a x JOIN (SELECT url FROM clicks_b UNION ALL SELECT page FROM clicks_a) y ON x.page = y.url$$);
SELECT streaming.create_query('bad', $$SELECT page FROM clicks_a UNION ALL SELECT url FROM clicks_b$$,
         event_time => 'at', watermark => '1 minute');
-- UNION of a stream with an ordinary table would compare one batch's rows only
SELECT streaming.create_query('bad', $$SELECT page FROM clicks_a UNION SELECT page FROM pages$$);

-- dropping one source stops the query from running, with the reason
SELECT streaming.drop_query(name) FROM cases WHERE name <> 'u_rows' ORDER BY name;
DROP FOREIGN TABLE clicks_b CASCADE;
SELECT name FROM streaming.queries;
SELECT streaming.drop_source('clicks_a');
DROP TABLE all_a, all_b, pages, cases;
DROP FUNCTION add_case(text, text, text), compare(text), feed(text, int, int), run_all();
DROP EXTENSION streaming;
