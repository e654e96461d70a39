-- Nexmark's stream-stream joins over person, auction and bid file sources,
-- the rows of the three streams arriving interleaved over several batches
-- (bids before their auctions, sellers after their auctions, everything in
-- one batch): q4's first level (the final price of each auction: its
-- highest bid within its lifetime) and its second level (the average final
-- price per category) as a plain view over the first's result table; q8
-- (persons who opened an auction in the 10-second window they were
-- created in) as a join in the same window followed by DISTINCT; and q9's
-- first step, the winning price per auction and seller; q7 as a join of
-- the bids with the windowed max of the bids.  q4's second level
-- also runs as a continuous query chained on the first through a table
-- source that takes updates back (changes 'all').  After every batch each
-- result is compared, both ways and with counts, with the same SELECT run
-- by plain PostgreSQL over tables holding the same rows.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/nxj_* && mkdir -p /tmp/streaming_regress/nxj_person /tmp/streaming_regress/nxj_auction /tmp/streaming_regress/nxj_bid';
SELECT streaming.create_source('person', 'file', 'id bigint, name text, city text, state text, date_time timestamptz',
         '{"path": "/tmp/streaming_regress/nxj_person", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_source('auction', 'file',
         'id bigint, item_name text, initial_bid bigint, reserve bigint, date_time timestamptz, expires timestamptz, seller bigint, category bigint',
         '{"path": "/tmp/streaming_regress/nxj_auction", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_source('bid', 'file', 'auction bigint, bidder bigint, price bigint, channel text, date_time timestamptz',
         '{"path": "/tmp/streaming_regress/nxj_bid", "format": "csv", "max_files_per_trigger": 1}');
CREATE TABLE all_person (id bigint, name text, city text, state text, date_time timestamptz);
CREATE TABLE all_auction (id bigint, item_name text, initial_bid bigint, reserve bigint, date_time timestamptz,
                          expires timestamptz, seller bigint, category bigint);
CREATE TABLE all_bid (auction bigint, bidder bigint, price bigint, channel text, date_time timestamptz);

CREATE TABLE cases (name text PRIMARY KEY, sql text);
-- $person, $auction and $bid name the sources in the query and the tables
-- in the reference
CREATE FUNCTION add_case(name text, sql text, mode text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(replace(replace(sql, '$person', 'person'), '$auction', 'auction'), '$bid', 'bid'),
                                   output_mode => mode);
    INSERT INTO cases VALUES (name, sql);
END $$;
CREATE FUNCTION compare(q text, result text DEFAULT NULL)
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    ref text := replace(replace(replace((SELECT sql FROM cases WHERE name = q),
                                        '$person', 'all_person'), '$auction', 'all_auction'), '$bid', 'all_bid');
    res text := coalesce(result, format('SELECT * FROM %I', q));
BEGIN
    query := q;
    EXECUTE format('SELECT count(*) FROM (%s) x', res) INTO result_rows;
    EXECUTE format('SELECT count(*) FROM (%s) x', ref) INTO reference_rows;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', ref, res) INTO missing;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', res, ref) INTO extra;
    RETURN NEXT;
END $$;
-- a file of the rows first .. first + n - 1 of one stream.  Person g is
-- created at second 3g; auction g at second 2g, sold by a person created
-- about then (2g / 3, or the one before), open for 4 to 20 seconds; bid g
-- at second g, on an auction opened shortly before (g / 2 - g % 4: some
-- bids come after it closed) or, every 13th, on one that never comes, at a
-- price that ties now and then
CREATE FUNCTION feed(stream text, first int, n int) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
DECLARE
    file text := format('/tmp/streaming_regress/nxj_%s/%s.csv', stream, first);
    q text;
BEGIN
    q := CASE stream
        WHEN 'person' THEN format($f$SELECT g, 'p' || g, (ARRAY['Portland', 'Boise', 'Fresno'])[1 + g %% 3],
                                         (ARRAY['OR', 'ID', 'CA'])[1 + g %% 3],
                                         timestamptz '2024-01-01' + make_interval(secs => 3 * g)
                                    FROM generate_series(%s, %s) g$f$, first, first + n - 1)
        WHEN 'auction' THEN format($f$SELECT g, 'item' || g, g * 10, g * 20,
                                          timestamptz '2024-01-01' + make_interval(secs => 2 * g),
                                          timestamptz '2024-01-01' + make_interval(secs => 2 * g + 4 + g %% 17),
                                          greatest(1, 2 * g / 3 - g %% 2), 10 + g %% 4
                                     FROM generate_series(%s, %s) g$f$, first, first + n - 1)
        ELSE format($f$SELECT CASE WHEN g %% 13 = 0 THEN 1000 + g ELSE greatest(1, g / 2 - g %% 4) END, g %% 31 + 1, 100 + (g * 37) %% 50,
                              (ARRAY['web', 'app'])[1 + g %% 2], timestamptz '2024-01-01' + make_interval(secs => g)
                         FROM generate_series(%s, %s) g$f$, first, first + n - 1)
    END;
    EXECUTE format('COPY (%s) TO %L WITH (FORMAT csv)', q, file);
    EXECUTE format('COPY all_%s FROM %L WITH (FORMAT csv)', stream, file);
END $$;
CREATE FUNCTION run_all() RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT streaming.run(name, 1) FROM cases WHERE name NOT IN ('q4', 'q7_b_join') ORDER BY name
$$;

-- q4, first level: the final price of each auction, its highest bid
-- within its lifetime
SELECT add_case('q4_final',
  $$SELECT A.id, A.category, max(B.price) AS final
      FROM $auction A, $bid B
     WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
     GROUP BY A.id, A.category$$, 'update');
-- q4, second level: the average final price per category, over the first
-- level's live result
CREATE VIEW q4 AS SELECT category, avg(final) AS avg_final FROM q4_final GROUP BY category;
INSERT INTO cases VALUES ('q4',
  $$SELECT Q.category, avg(Q.final) AS avg_final
      FROM (SELECT max(B.price) AS final, A.category FROM $auction A, $bid B
             WHERE A.id = B.auction AND B.date_time BETWEEN A.date_time AND A.expires
             GROUP BY A.id, A.category) Q
     GROUP BY Q.category$$);
-- and the same second level as a continuous query chained on the first:
-- a table source follows q4_final's result table, whose rows the first
-- level rewrites in place (changes 'all': an update takes the old final
-- price back and adds the new one)
ALTER TABLE q4_final REPLICA IDENTITY FULL;
SELECT streaming.create_source('q4_final_s', 'table', options => '{"table": "public.q4_final", "changes": "all"}');
SELECT streaming.create_query('q4_chained', $$SELECT category, avg(final) AS avg_final FROM q4_final_s GROUP BY category$$,
                              output_mode => 'update', start => false);
-- its stream starts when its slot is made, at its first batch: before any
-- final price is written
SELECT streaming.run('q4_chained');
-- q8: persons who opened an auction in the 10-second window they were
-- created in (Nexmark joins two windowed groupings; the same pairs come
-- from a join in the same window followed by DISTINCT)
SELECT add_case('q8',
  $$SELECT DISTINCT P.id, P.name, lower(streaming.window(P.date_time, '10 seconds')) AS starttime
      FROM $person P JOIN $auction A
        ON P.id = A.seller
       AND streaming.window(P.date_time, '10 seconds') = streaming.window(A.date_time, '10 seconds')$$, 'append');
-- q9's first step: per auction and seller, the winning price and the
-- number of bids within the auction's lifetime, over an inner join (the
-- join itself with no separate WHERE, the bound in WHERE)
SELECT add_case('q9_winner',
  $$SELECT A.id, A.seller, max(B.price) AS price, count(*) AS bids
      FROM $auction A JOIN $bid B ON A.id = B.auction
     WHERE B.date_time BETWEEN A.date_time AND A.expires
     GROUP BY A.id, A.seller$$, 'update');
SELECT step, statement FROM streaming.explain('q8') WHERE step IN ('shape', 'join state') ORDER BY step, statement;
-- q7: the highest bids of each 10-second window, with Nexmark's join of
-- the bids with a windowed stream: a windowed max in append mode (final
-- once the watermark passes its window) whose result table a table source
-- follows as a stream, joined with the bids stream.  The join reads the
-- windows as the max query commits them (it runs after that query's batch
-- has committed), so its reference joins the bids with that query's result
-- table.
SELECT streaming.create_query('q7_a_max',
  $$SELECT streaming.window(B.date_time, '10 seconds') AS w, max(B.price) AS top FROM bid B GROUP BY 1$$,
  output_mode => 'append', event_time => 'date_time', watermark => '2 seconds');
INSERT INTO cases VALUES ('q7_a_max',
  $$SELECT streaming.window(B.date_time, '10 seconds') AS w, max(B.price) AS top FROM $bid B GROUP BY 1
     HAVING upper(streaming.window(B.date_time, '10 seconds')) <= (SELECT watermark FROM streaming.queries WHERE name = 'q7_a_max')$$);
SELECT streaming.create_source('q7_windows', 'table', options => '{"table": "public.q7_a_max"}');
SELECT streaming.create_query('q7_b_join',
  $$SELECT B.auction, B.bidder, B.price, B.date_time FROM bid B JOIN q7_windows M
     ON B.price = M.top AND B.date_time >= lower(M.w) AND B.date_time < upper(M.w)$$, start => false);
INSERT INTO cases VALUES ('q7_b_join',
  $$SELECT B.auction, B.bidder, B.price, B.date_time FROM $bid B JOIN q7_a_max M
     ON B.price = M.top AND B.date_time >= lower(M.w) AND B.date_time < upper(M.w)$$);
-- its stream of windows starts with its slot, made by its first batch
SELECT streaming.run('q7_b_join');

-- batches: bids before their auctions, then auctions before their sellers,
-- then everything at once, then each stream alone again
SELECT feed('bid', 1, 40);
SELECT * FROM run_all();
SELECT streaming.run('q7_b_join', 1) AS q7_join_batch;
SELECT c.* FROM cases, compare(name) c WHERE name <> 'q4' ORDER BY 1;
SELECT feed('auction', 1, 15);
SELECT * FROM run_all();
SELECT streaming.run('q7_b_join', 1) AS q7_join_batch;
SELECT c.* FROM cases, compare(name) c WHERE name <> 'q4' ORDER BY 1;
SELECT feed('person', 1, 12), feed('bid', 41, 30);
SELECT * FROM run_all();
SELECT streaming.run('q7_b_join', 1) AS q7_join_batch;
SELECT c.* FROM cases, compare(name) c WHERE name <> 'q4' ORDER BY 1;
SELECT feed('person', 13, 20), feed('auction', 16, 25), feed('bid', 71, 60);
SELECT * FROM run_all();
SELECT streaming.run('q7_b_join', 1) AS q7_join_batch;
SELECT c.* FROM cases, compare(name) c WHERE name <> 'q4' ORDER BY 1;
SELECT feed('auction', 41, 20);
SELECT * FROM run_all();
SELECT streaming.run('q7_b_join', 1) AS q7_join_batch;
SELECT c.* FROM cases, compare(name) c WHERE name <> 'q4' ORDER BY 1;
SELECT * FROM compare('q4', 'SELECT * FROM q4');
-- the chained query reads what the first level committed, in its own batch
SELECT streaming.run('q4_chained') > 0 AS chained_ran;
SELECT (SELECT count(*) FROM q4_chained) AS chained_rows, (SELECT count(*) FROM q4) AS reference_rows,
       (SELECT count(*) FROM ((SELECT category, round(avg_final, 9) FROM q4)
                              EXCEPT ALL (SELECT category, round(avg_final, 9) FROM q4_chained)) x) AS missing,
       (SELECT count(*) FROM ((SELECT category, round(avg_final, 9) FROM q4_chained)
                              EXCEPT ALL (SELECT category, round(avg_final, 9) FROM q4)) x) AS extra;
SELECT * FROM q4 ORDER BY category;
SELECT count(*) AS q8_pairs, count(DISTINCT starttime) AS windows FROM q8;
SELECT count(*) AS dead_letters FROM streaming.dead_letters;

DROP VIEW q4;
SELECT streaming.drop_query('q4_chained');
SELECT streaming.drop_source('q4_final_s');
SELECT count(*) AS q7_windows, sum(top) AS q7_top_sum FROM q7_a_max;
SELECT count(*) AS q7_highest_bids FROM q7_b_join;
SELECT streaming.drop_query('q7_b_join');
SELECT streaming.drop_source('q7_windows');
SELECT streaming.drop_query(name) FROM cases WHERE name NOT IN ('q4', 'q7_b_join') ORDER BY name;
SELECT streaming.drop_source('person'), streaming.drop_source('auction'), streaming.drop_source('bid');
DROP TABLE all_person, all_auction, all_bid, cases;
DROP FUNCTION add_case(text, text, text), compare(text, text), feed(text, int, int), run_all();
DROP EXTENSION streaming;
