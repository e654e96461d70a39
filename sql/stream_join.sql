-- Inner joins between streams, after Spark's StreamingJoinSuite: rows of
-- either side arriving first, in the same batch or in later ones, several
-- matches per key, NULL keys, a stream joined with itself, three streams,
-- and what sits on a join (projection, deduplication, aggregation, DISTINCT
-- aggregates); Nexmark q3 and q20 in their stream-stream form.  After every
-- batch each result is compared, both ways and with counts, with the same
-- SELECT run by plain PostgreSQL over tables holding the same rows.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/join_* && mkdir -p /tmp/streaming_regress/join_person /tmp/streaming_regress/join_auction /tmp/streaming_regress/join_bid';
SELECT streaming.create_source('person', 'file', 'id bigint, name text, city text, state text, date_time timestamptz',
         '{"path": "/tmp/streaming_regress/join_person", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_source('auction', 'file', 'id bigint, item_name text, initial_bid bigint, seller bigint, category bigint, date_time timestamptz',
         '{"path": "/tmp/streaming_regress/join_auction", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_source('bid', 'file', 'auction bigint, bidder bigint, price bigint, channel text, date_time timestamptz',
         '{"path": "/tmp/streaming_regress/join_bid", "format": "csv", "max_files_per_trigger": 1}');
CREATE TABLE all_person (id bigint, name text, city text, state text, date_time timestamptz);
CREATE TABLE all_auction (id bigint, item_name text, initial_bid bigint, seller bigint, category bigint, date_time timestamptz);
CREATE TABLE all_bid (auction bigint, bidder bigint, price bigint, channel text, date_time timestamptz);
CREATE TABLE categories (id bigint PRIMARY KEY, label text);
INSERT INTO categories SELECT g, 'cat' || g FROM generate_series(10, 14) g;

CREATE TABLE cases (name text PRIMARY KEY, sql text);
-- $person, $auction and $bid name the sources in the query and the tables
-- in the reference
CREATE FUNCTION add_case(name text, sql text, mode text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(replace(replace(sql, '$person', 'person'), '$auction', 'auction'), '$bid', 'bid'),
                                   output_mode => mode);
    INSERT INTO cases VALUES (name, sql);
END $$;
CREATE FUNCTION compare(q text)
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    ref text := replace(replace(replace((SELECT sql FROM cases WHERE name = q),
                                        '$person', 'all_person'), '$auction', 'all_auction'), '$bid', 'all_bid');
    res text := format('SELECT * FROM %I', q);
BEGIN
    query := q;
    EXECUTE format('SELECT count(*) FROM (%s) x', res) INTO result_rows;
    EXECUTE format('SELECT count(*) FROM (%s) x', ref) INTO reference_rows;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', ref, res) INTO missing;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', res, ref) INTO extra;
    RETURN NEXT;
END $$;
-- a file of n rows of one stream, ids from first on; sellers, bidders and
-- auctions refer to ids that came before, come in the same file or come
-- later, and some to none (NULL)
CREATE FUNCTION feed(stream text, first int, n int) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
DECLARE
    file text := format('/tmp/streaming_regress/join_%s/%s.csv', stream, first);
    q text;
BEGIN
    q := CASE stream
        WHEN 'person' THEN format($f$SELECT g, 'p' || g, (ARRAY['Portland', 'Boise', 'Fresno', 'Austin'])[1 + g %% 4],
                                         (ARRAY['OR', 'ID', 'CA', 'TX'])[1 + g %% 4],
                                         timestamptz '2024-01-01' + make_interval(secs => g)
                                    FROM generate_series(%s, %s) g$f$, first, first + n - 1)
        WHEN 'auction' THEN format($f$SELECT g, 'item' || g, g * 10, CASE WHEN g %% 13 = 0 THEN NULL ELSE (g * 7) %% 40 + 1 END,
                                          10 + g %% 5, timestamptz '2024-01-01' + make_interval(secs => g)
                                     FROM generate_series(%s, %s) g$f$, first, first + n - 1)
        ELSE format($f$SELECT CASE WHEN g %% 11 = 0 THEN NULL ELSE (g * 3) %% 45 + 1 END, (g * 5) %% 40 + 1, g * 100 + g %% 7,
                              (ARRAY['web', 'app'])[1 + g %% 2], timestamptz '2024-01-01' + make_interval(secs => g)
                         FROM generate_series(%s, %s) g$f$, first, first + n - 1)
    END;
    EXECUTE format('COPY (%s) TO %L WITH (FORMAT csv)', q, file);
    EXECUTE format('COPY all_%s FROM %L WITH (FORMAT csv)', stream, file);
END $$;
CREATE FUNCTION run_all() RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT streaming.run(name, 1) FROM cases ORDER BY name
$$;

-- Nexmark q3: local item suggestion (people in some states selling in a category)
SELECT add_case('q3',
  $$SELECT P.name, P.city, P.state, A.id
      FROM $auction AS A INNER JOIN $person AS P on A.seller = P.id
     WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')$$, 'append');
-- Nexmark q20: expand bid with auction information, for one category
SELECT add_case('q20',
  $$SELECT auction, bidder, price, channel, B.date_time, item_name, initial_bid, seller, category
      FROM $bid AS B INNER JOIN $auction AS A on B.auction = A.id
     WHERE A.category = 10$$, 'append');
-- every pair of a key, several on each side; rows with NULL keys never match
SELECT add_case('pairs',
  $$SELECT a.id AS auction_id, b.bidder, b.price FROM $auction a JOIN $bid b ON b.auction = a.id$$, 'update');
-- a stream joined with itself: auctions of the same seller
SELECT add_case('self',
  $$SELECT x.id AS first, y.id AS second, x.seller FROM $auction x JOIN $auction y ON x.seller = y.seller AND x.id < y.id$$,
  'append');
-- three streams, and an ordinary table
SELECT add_case('three',
  $$SELECT p.state, c.label, b.price FROM $bid b, $auction a, $person p, categories c
     WHERE b.auction = a.id AND a.seller = p.id AND c.id = a.category AND b.price % 3 <> 0$$, 'append');
-- aggregations over a join: update and complete modes, DISTINCT aggregates, HAVING
SELECT add_case('per_state',
  $$SELECT p.state, count(*) AS auctions, sum(a.initial_bid) AS total, count(DISTINCT a.category) AS categories,
           max(a.id) - min(a.id) AS spread
      FROM $auction a JOIN $person p ON a.seller = p.id GROUP BY p.state HAVING count(*) > 1$$, 'update');
SELECT add_case('bids_per_seller',
  $$SELECT a.seller, count(*) AS bids, count(DISTINCT b.bidder) AS bidders, max(b.price) AS top
      FROM $bid b JOIN $auction a ON b.auction = a.id GROUP BY a.seller$$, 'complete');
-- deduplication after a join: each (seller, bidder) pair once
SELECT add_case('met',
  $$SELECT DISTINCT a.seller, b.bidder FROM $bid b JOIN $auction a ON b.auction = a.id$$, 'append');
SELECT step, statement FROM streaming.explain('q3') WHERE step IN ('source', 'join state') ORDER BY step, statement;
SELECT indexdef FROM pg_indexes WHERE schemaname = 'streaming' AND tablename LIKE 'join_%'
   AND tablename IN (SELECT substring(x.statement FROM 'streaming\.(join_\d+_\d+)') FROM streaming.explain('q20') x
                      WHERE x.step = 'join state') ORDER BY 1;

-- batches: persons first, then auctions of them and of persons to come,
-- bids before their auctions, everything at once, then each alone again
SELECT feed('person', 1, 15);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed('auction', 1, 20), feed('bid', 1, 30);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed('bid', 31, 40);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed('person', 16, 25), feed('auction', 21, 25), feed('bid', 71, 30);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed('auction', 46, 10);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT * FROM per_state ORDER BY state;
-- each batch kept its sources' new rows: the state holds every row once
SELECT (SELECT count(*) FROM all_bid) AS bids, (SELECT count(*) FROM streaming.join_2_1) AS bids_kept_by_q20,
       (SELECT count(*) FROM all_auction) AS auctions, (SELECT count(*) FROM streaming.join_2_2) AS auctions_kept_by_q20;
SELECT count(*) AS dead_letters FROM streaming.dead_letters;
-- the status shows the rows each joined source has kept, and their size
SELECT pg_stat_force_next_flush();
SELECT name, join_state_rows, state_bytes > 0 AS has_state_bytes FROM streaming.status
 WHERE name IN ('q20', 'pairs', 'q3') ORDER BY name;

-- reset_query empties the join states; the files are read again
SELECT streaming.reset_query('pairs');
SELECT streaming.run('pairs');
SELECT * FROM compare('pairs');

-- alter_query: new output expressions over the same join and state; a
-- query that would read a column the join states do not keep is refused
SELECT streaming.alter_query('bids_per_seller', query =>
  $$SELECT a.seller, count(*) * 10 AS bids10, count(DISTINCT b.bidder) + 1 AS bidders1, max(b.price) / 100 AS top_hundreds
      FROM bid b JOIN auction a ON b.auction = a.id GROUP BY a.seller$$);
UPDATE cases SET sql = $$SELECT a.seller, count(*) * 10 AS bids10, count(DISTINCT b.bidder) + 1 AS bidders1, max(b.price) / 100 AS top_hundreds
      FROM $bid b JOIN $auction a ON b.auction = a.id GROUP BY a.seller$$ WHERE name = 'bids_per_seller';
SELECT * FROM compare('bids_per_seller');
SELECT streaming.alter_query('bids_per_seller', query =>
  $$SELECT a.seller, count(*) * 10 AS bids10, count(DISTINCT b.bidder) + 1 AS bidders1, max(b.price) / 100 AS top_hundreds
      FROM bid b JOIN auction a ON b.auction = a.id WHERE b.channel = 'web' GROUP BY a.seller$$);

-- join keys that are expressions of a stream are indexed as such
CREATE FUNCTION tens(bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 10';
SELECT streaming.create_query('by_expr', $$SELECT a.id, p.id AS pid FROM auction a JOIN person p ON a.seller * 10 = tens(p.id) + 0$$);
SELECT regexp_replace(indexdef, 'join_\d+_', 'join_N_', 'g') FROM pg_indexes
 WHERE schemaname = 'streaming' AND tablename IN (SELECT substring(x.statement FROM 'streaming\.(join_\d+_\d+)')
                                                    FROM streaming.explain('by_expr') x WHERE x.step = 'join state')
 ORDER BY 1;
SELECT streaming.drop_query('by_expr');
DROP FUNCTION tens(bigint);
-- what is not supported is refused
SELECT streaming.create_query('bad', $$SELECT a, p.name FROM auction a JOIN person p ON a.seller = p.id$$);
SELECT streaming.create_query('bad', $$SELECT p.name FROM auction a LEFT JOIN person p ON a.seller = p.id$$);
SELECT streaming.create_query('bad', $$SELECT p.name FROM auction a FULL JOIN person p ON a.seller = p.id$$);
SELECT streaming.create_query('bad', $$SELECT s.n FROM (SELECT p.name AS n FROM auction a JOIN person p ON a.seller = p.id) s$$);
SELECT streaming.create_query('bad', $$SELECT a.id FROM auction a JOIN (SELECT id FROM person UNION ALL SELECT bidder FROM bid) x ON a.seller = x.id$$);
-- a stream outer-joined with an ordinary table is no join of streams
SELECT streaming.create_query('ok_table', $$SELECT a.id, c.label FROM auction a LEFT JOIN categories c ON c.id = a.category$$);
SELECT streaming.drop_query('ok_table');

-- a role that may read some columns of a source joins it as it may query
-- it: the state keeps the columns the query reads (the others stay NULL);
-- a query over a column it may not read fails, saying so
CREATE ROLE regress_join_reader;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_join_reader;
GRANT CREATE ON SCHEMA public TO regress_join_reader;
GRANT SELECT ON auction TO regress_join_reader;
GRANT SELECT (id, state) ON person TO regress_join_reader;
SET ROLE regress_join_reader;
SELECT streaming.create_query('by_column', $$SELECT a.id, p.state FROM auction a JOIN person p ON a.seller = p.id$$);
SELECT streaming.run('by_column');
SELECT substring(statement FROM 'streaming\.(join_\d+_\d+) keeps the rows of public\.person') AS person_state
  FROM streaming.explain('by_column') WHERE step = 'join state' AND statement LIKE '%person%' \gset
SELECT count(*) AS rows, count(*) FILTER (WHERE name IS NULL AND city IS NULL AND id IS NOT NULL) AS without_unread_columns
  FROM streaming.:person_state;
SELECT streaming.create_query('by_name', $$SELECT a.id, p.name FROM auction a JOIN person p ON a.seller = p.id$$);
SELECT streaming.run('by_name');
RESET ROLE;
SELECT (SELECT count(*) FROM by_column) AS result_rows,
       (SELECT count(*) FROM all_auction a JOIN all_person p ON a.seller = p.id) AS reference_rows,
       (SELECT count(*) FROM ((SELECT a.id, p.state FROM all_auction a JOIN all_person p ON a.seller = p.id)
                              EXCEPT ALL SELECT * FROM by_column) x) AS missing;
SELECT statement FROM streaming.explain('by_column') WHERE step = 'statement';
SELECT streaming.drop_query('by_column'), streaming.drop_query('by_name');
REVOKE ALL ON auction, person FROM regress_join_reader;
REVOKE ALL ON SCHEMA public FROM regress_join_reader;
REVOKE ALL ON FOREIGN SERVER streaming FROM regress_join_reader;
DROP ROLE regress_join_reader;

-- drop_query drops the join states
SELECT streaming.drop_query(name) FROM cases ORDER BY name;
SELECT count(*) AS join_states_left FROM pg_class
 WHERE relnamespace = 'streaming'::regnamespace AND relname LIKE 'join%';
SELECT streaming.drop_source(s) FROM unnest(ARRAY['person', 'auction', 'bid']) s;
DROP TABLE all_person, all_auction, all_bid, categories, cases;
DROP FUNCTION add_case(text, text, text), compare(text), feed(text, int, int), run_all();

-- Watermarks and eviction, after Spark's StreamingJoinSuite: impressions
-- and clicks of ads, a click counting when it comes within 10 seconds of
-- its impression.  Each source has its own delay (impressions 20 s, clicks
-- 5 s); the query's watermark is the least of the sources' (Spark's min
-- policy).  Late rows (at or before the watermark of the batch before) are
-- dropped on either side; the reference is plain SQL over the rows that
-- were not, with the watermark computed in SQL too.
COPY (SELECT 1) TO PROGRAM 'mkdir -p /tmp/streaming_regress/join_imp /tmp/streaming_regress/join_clk';
SELECT streaming.create_source('imp', 'file', 'ad bigint, t timestamptz',
         '{"path": "/tmp/streaming_regress/join_imp", "format": "csv", "max_files_per_trigger": 1}');
SELECT streaming.create_source('clk', 'file', 'ad bigint, t timestamptz, note text',
         '{"path": "/tmp/streaming_regress/join_clk", "format": "csv", "max_files_per_trigger": 1}');
CREATE TABLE fed_imp (batch int, ad bigint, t timestamptz);
CREATE TABLE fed_clk (batch int, ad bigint, t timestamptz, note text);
-- a batch's file of one source: (ad, seconds after 2024-01-01)
CREATE FUNCTION wfeed(src text, b int, rows bigint[][]) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
BEGIN
    EXECUTE format('INSERT INTO fed_%s (batch, ad, t) SELECT %s, $1[i][1], timestamptz %L + make_interval(secs => $1[i][2])
                      FROM generate_subscripts($1, 1) i', src, b, '2024-01-01 00:00:00+00') USING rows;
    EXECUTE format('COPY (SELECT ad, t%s FROM fed_%s WHERE batch = %s) TO %L WITH (FORMAT csv)',
                   CASE src WHEN 'clk' THEN ', note' ELSE '' END, src, b,
                   format('/tmp/streaming_regress/join_%s/%s.csv', src, b));
END $$;
-- the query's watermark after batch n, as Spark computes it
CREATE FUNCTION ref_wm(n int) RETURNS timestamptz LANGUAGE sql AS $$
    SELECT max(w) FROM (
      SELECT k, min(m - d) AS w
        FROM generate_series(1, n) k,
             LATERAL (SELECT max(t) AS m, interval '20 seconds' AS d FROM fed_imp WHERE batch <= k
                      UNION ALL SELECT max(t), interval '5 seconds' FROM fed_clk WHERE batch <= k) x
       WHERE m IS NOT NULL GROUP BY k) y
$$;
-- the rows that were not late
CREATE VIEW ok_imp AS SELECT * FROM fed_imp f WHERE f.batch = 1 OR f.t > ref_wm(f.batch - 1);
CREATE VIEW ok_clk AS SELECT * FROM fed_clk f WHERE f.batch = 1 OR f.t > ref_wm(f.batch - 1);
CREATE TABLE wcases (name text PRIMARY KEY, sql text);
CREATE FUNCTION add_wcase(name text, sql text, mode text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(replace(sql, '$imp', 'imp'), '$clk', 'clk'), output_mode => mode,
              event_time => '{"imp": "t", "clk": {"column": "t", "watermark": "5 seconds"}}', watermark => '20 seconds');
    INSERT INTO wcases VALUES (name, sql);
END $$;
-- result and reference, both ways; a windowed aggregation in append mode
-- holds the windows closed so far: those ending close_lag before the watermark
CREATE FUNCTION wcompare(q text, n int, close_lag interval DEFAULT NULL)
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    ref text := replace(replace((SELECT sql FROM wcases WHERE name = q), '$imp', 'ok_imp'), '$clk', 'ok_clk');
    res text := format('SELECT * FROM %I', q);
BEGIN
    IF close_lag IS NOT NULL THEN
        ref := format('SELECT * FROM (%s) r WHERE upper(r.w) <= %L::timestamptz - %L::interval', ref, ref_wm(n), close_lag);
    END IF;
    query := q;
    EXECUTE format('SELECT count(*) FROM (%s) x', res) INTO result_rows;
    EXECUTE format('SELECT count(*) FROM (%s) x', ref) INTO reference_rows;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', ref, res) INTO missing;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) x', res, ref) INTO extra;
    RETURN NEXT;
END $$;
-- the rows each state keeps, against what Spark's rule leaves after batch n
CREATE FUNCTION wstates(n int)
RETURNS TABLE (query text, imp_kept bigint, imp_expected bigint, clk_kept bigint, clk_expected bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w timestamptz := ref_wm(n);
    st text;
BEGIN
    FOR query IN SELECT name FROM wcases WHERE name IN ('clicked', 'same_window') ORDER BY name LOOP
        SELECT substring(statement FROM 'streaming\.(join_\d+_\d+) keeps the rows of public\.imp') INTO st
          FROM streaming.explain(query) WHERE step = 'join state' AND statement LIKE '%public.imp;%';
        EXECUTE format('SELECT count(*) FROM streaming.%I', st) INTO imp_kept;
        SELECT substring(statement FROM 'streaming\.(join_\d+_\d+) keeps the rows of public\.clk') INTO st
          FROM streaming.explain(query) WHERE step = 'join state' AND statement LIKE '%public.clk;%';
        EXECUTE format('SELECT count(*) FROM streaming.%I', st) INTO clk_kept;
        IF query = 'clicked' THEN
            -- an impression waits 10 s for its clicks; a click, for nothing later
            SELECT count(*) INTO imp_expected FROM ok_imp WHERE batch <= n AND t + interval '10 seconds' > w;
            SELECT count(*) INTO clk_expected FROM ok_clk WHERE batch <= n AND t > w;
        ELSE
            SELECT count(*) INTO imp_expected FROM ok_imp WHERE batch <= n AND upper(streaming.window(t, '10 seconds')) > w;
            SELECT count(*) INTO clk_expected FROM ok_clk WHERE batch <= n AND upper(streaming.window(t, '10 seconds')) > w;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
-- one batch of each query; its watermark then, and the one computed in SQL
CREATE FUNCTION wrun(n int) RETURNS TABLE (name text, watermark timestamptz, expected timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.run(c.name, 1) FROM wcases c;
    RETURN QUERY SELECT c.name, q.watermark, ref_wm(n)
                   FROM wcases c JOIN streaming.queries q ON q.name = c.name ORDER BY c.name;
END $$;

-- a click within 10 seconds after its impression (no NOTICE: both states are evicted)
SELECT add_wcase('clicked',
  $$SELECT i.ad, i.t AS shown, c.t AS clicked FROM $imp i JOIN $clk c
     ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$, 'append');
-- both in the same window of 10 seconds
SELECT add_wcase('same_window',
  $$SELECT i.ad, i.t AS shown, c.t AS clicked FROM $imp i JOIN $clk c
     ON c.ad = i.ad AND streaming.window(i.t, '10 seconds') = streaming.window(c.t, '10 seconds')$$, 'append');
-- clicks per window of impressions, in append mode: a window is final 10 s
-- after the watermark passes its end (a kept impression may still be clicked)
SELECT add_wcase('per_window',
  $$SELECT streaming.window(i.t, '10 seconds') AS w, count(*) AS clicks, max(c.t) AS last_click FROM $imp i JOIN $clk c
     ON c.ad = i.ad AND c.t >= i.t AND i.t + interval '10 seconds' >= c.t GROUP BY 1$$, 'append');
-- impressions and clicks per window, over a UNION ALL of both, in append and update modes
SELECT add_wcase('union_window',
  $$SELECT streaming.window(t, '10 seconds') AS w, count(*) AS events
      FROM (SELECT ad, t FROM $imp UNION ALL SELECT ad, t FROM $clk) u GROUP BY 1$$, 'append');
SELECT add_wcase('union_update',
  $$SELECT streaming.window(t, '10 seconds') AS w, count(*) AS events
      FROM (SELECT ad, t FROM $imp UNION ALL SELECT ad, t FROM $clk) u GROUP BY 1$$, 'update');
-- each clicked impression once: a key goes when its impression's state
-- does, 10 s behind the watermark (no later click can bring it back)
SELECT add_wcase('dedup_clicked',
  $$SELECT DISTINCT i.ad, i.t AS shown FROM $imp i JOIN $clk c
     ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$, 'append');
SELECT step, statement FROM streaming.explain('dedup_clicked') WHERE step = 'state table';
-- a source joined with itself: clicks followed by another click within 10
-- seconds.  Its watermark is the clicks' own; its one state goes
-- 10 s behind it (as the first click; as the second, at the watermark).
-- self_check(n) runs its batch n and compares it with plain SQL over the
-- clicks that were not late, and its state with what Spark's rule keeps.
SELECT streaming.create_query('self_clicks',
  $$SELECT c1.ad, c1.t AS first, c2.t AS second FROM clk c1 JOIN clk c2
     ON c2.t > c1.t AND c2.t <= c1.t + interval '10 seconds'$$,
  output_mode => 'append', event_time => 't', watermark => '5 seconds');
SELECT step, regexp_replace(statement, 'join_\d+_', 'join_N_', 'g') FROM streaming.explain('self_clicks')
 WHERE step = 'join state' ORDER BY 2;
CREATE FUNCTION self_check(n int, OUT missing bigint, OUT extra bigint, OUT result_rows bigint,
                           OUT kept bigint, OUT expected bigint) LANGUAGE plpgsql AS $$
DECLARE
    wm timestamptz;
BEGIN
    PERFORM streaming.run('self_clicks', 1);
    CREATE TEMP TABLE self_ok ON COMMIT DROP AS
      SELECT f.* FROM fed_clk f
       WHERE f.batch <= n
         AND f.t > coalesce((SELECT max(p.t) FROM fed_clk p WHERE p.batch < f.batch) - interval '5 seconds', '-infinity');
    wm := (SELECT max(t) FROM fed_clk WHERE batch <= n) - interval '5 seconds';
    CREATE TEMP TABLE self_ref ON COMMIT DROP AS
      SELECT c1.ad, c1.t AS first, c2.t AS second FROM self_ok c1 JOIN self_ok c2
          ON c2.t > c1.t AND c2.t <= c1.t + interval '10 seconds';
    SELECT count(*) INTO missing FROM (SELECT * FROM self_ref EXCEPT ALL SELECT * FROM self_clicks) d;
    SELECT count(*) INTO extra FROM (SELECT * FROM self_clicks EXCEPT ALL SELECT * FROM self_ref) d;
    SELECT count(*) INTO result_rows FROM self_clicks;
    EXECUTE format('SELECT count(*) FROM streaming.%I',
                   (SELECT substring(statement FROM 'streaming\.(join_\d+_\d+) keeps') FROM streaming.explain('self_clicks')
                     WHERE step = 'join state'))
       INTO kept;
    SELECT count(*) INTO expected FROM self_ok WHERE t + interval '10 seconds' > wm;
    DROP TABLE self_ok, self_ref;
END $$;
-- the keys it keeps after batch n, and those Spark's rule leaves
CREATE FUNCTION dedup_kept(n int, OUT kept bigint, OUT expected bigint) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT count(*) FROM %s',
                   (SELECT substring(statement FROM '^(\S+),') FROM streaming.explain('dedup_clicked') WHERE step = 'state table'))
       INTO kept;
    SELECT count(*) INTO expected FROM (
      SELECT DISTINCT i.ad, i.t FROM ok_imp i JOIN ok_clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'
       WHERE i.batch <= n AND c.batch <= n AND i.t > ref_wm(n) - interval '10 seconds') k;
END $$;
SELECT step, regexp_replace(statement, 'join_\d+_', 'join_N_', 'g') FROM streaming.explain('clicked')
 WHERE step = 'join state' ORDER BY 2;
SELECT step, regexp_replace(statement, 'join_\d+_', 'join_N_', 'g') FROM streaming.explain('same_window')
 WHERE step = 'join state' ORDER BY 2;
SELECT step, statement FROM streaming.explain('per_window') WHERE step = 'window close';
-- the states are indexed on the columns eviction reads
SELECT regexp_replace(indexdef, 'join_\d+_', 'join_N_', 'g') FROM pg_indexes
 WHERE schemaname = 'streaming' AND tablename IN (SELECT substring(x.statement FROM 'streaming\.(join_\d+_\d+)')
                                                    FROM streaming.explain('clicked') x WHERE x.step = 'join state')
 ORDER BY 1;

-- 1: impressions of ads 1-4; ad 1 clicked in the same batch
SELECT wfeed('imp', 1, '{{1,0},{2,2},{3,4},{4,6}}'), wfeed('clk', 1, '{{1,3}}');
SELECT * FROM wrun(1);
SELECT c.* FROM wcases, wcompare(name, 1, CASE WHEN name = 'per_window' THEN interval '10 seconds'
                                               WHEN name = 'union_window' THEN interval '0' END) c ORDER BY 1;
SELECT * FROM wstates(1);
SELECT * FROM dedup_kept(1);
SELECT * FROM self_check(1);
-- 2: ad 2 clicked a batch after its impression, ad 3 too late to count;
-- the watermark moves to 5 s (impressions: 25 - 20; clicks: 30 - 5)
SELECT wfeed('imp', 2, '{{5,25}}'), wfeed('clk', 2, '{{2,8},{3,30}}');
SELECT * FROM wrun(2);
SELECT c.* FROM wcases, wcompare(name, 2, CASE WHEN name = 'per_window' THEN interval '10 seconds'
                                               WHEN name = 'union_window' THEN interval '0' END) c ORDER BY 1;
SELECT * FROM wstates(2);
SELECT * FROM dedup_kept(2);
SELECT * FROM self_check(2);
-- 3: a late impression and a late click (at or before 5 s) are dropped;
-- ad 5 clicked; the watermark moves to 20 s
SELECT wfeed('imp', 3, '{{6,4},{7,40}}'), wfeed('clk', 3, '{{4,5},{5,28}}');
SELECT * FROM wrun(3);
SELECT c.* FROM wcases, wcompare(name, 3, CASE WHEN name = 'per_window' THEN interval '10 seconds'
                                               WHEN name = 'union_window' THEN interval '0' END) c ORDER BY 1;
SELECT * FROM wstates(3);
SELECT * FROM dedup_kept(3);
SELECT * FROM self_check(3);
-- 4: clicks alone: their watermark runs to 55 s, the impressions' stays at
-- 20 s and holds the query's there
SELECT wfeed('clk', 4, '{{7,45},{5,60}}');
SELECT * FROM wrun(4);
SELECT c.* FROM wcases, wcompare(name, 4, CASE WHEN name = 'per_window' THEN interval '10 seconds'
                                               WHEN name = 'union_window' THEN interval '0' END) c ORDER BY 1;
SELECT * FROM wstates(4);
SELECT * FROM dedup_kept(4);
SELECT * FROM self_check(4);
-- 5: an impression far ahead: the watermark moves to 55 s, both states shrink
SELECT wfeed('imp', 5, '{{8,100}}');
SELECT * FROM wrun(5);
SELECT c.* FROM wcases, wcompare(name, 5, CASE WHEN name = 'per_window' THEN interval '10 seconds'
                                               WHEN name = 'union_window' THEN interval '0' END) c ORDER BY 1;
SELECT * FROM wstates(5);
SELECT * FROM dedup_kept(5);
SELECT * FROM self_check(5);
-- 6: both sides in one batch
SELECT wfeed('imp', 6, '{{9,101}}'), wfeed('clk', 6, '{{9,105}}');
SELECT * FROM wrun(6);
SELECT c.* FROM wcases, wcompare(name, 6, CASE WHEN name = 'per_window' THEN interval '10 seconds'
                                               WHEN name = 'union_window' THEN interval '0' END) c ORDER BY 1;
SELECT * FROM wstates(6);
SELECT * FROM dedup_kept(6);
SELECT * FROM self_check(6);
SELECT * FROM per_window ORDER BY w;
-- each source's watermark, kept in the catalog across restarts
SELECT source, max_event_time, watermark FROM streaming.source_watermarks WHERE query = 'clicked' ORDER BY source::text;
-- late rows and evicted join rows are counted per batch
SELECT batch_id, state_rows_dropped_by_watermark AS late, state_rows_removed AS removed
  FROM streaming.progress WHERE query = 'clicked' ORDER BY batch_id;

-- a join without a bound on one side: created, with a NOTICE naming it
SELECT streaming.create_query('one_sided', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad AND c.t >= i.t$$,
         event_time => 't', watermark => '5 seconds');
SELECT step, regexp_replace(statement, 'join_\d+_', 'join_N_', 'g') FROM streaming.explain('one_sided')
 WHERE step = 'join state' ORDER BY 2;
SELECT streaming.drop_query('one_sided');
-- a bound in days has no fixed length (a day may have 23 or 25 hours): the
-- NOTICE says to write it in hours
SELECT streaming.create_query('daily', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '1 day'$$,
         event_time => 't', watermark => '5 seconds');
SELECT streaming.drop_query('daily');
-- a source without event time does not bound the other side's state
SELECT streaming.create_query('half', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '1 minute'$$,
         event_time => '{"imp": "t"}', watermark => '5 seconds');
SELECT streaming.drop_query('half');
-- windows over a join whose side is never evicted would never be final
SELECT streaming.create_query('bad', $$SELECT streaming.window(i.t, '10 seconds') AS w, count(*) FROM imp i JOIN clk c ON c.ad = i.ad GROUP BY 1$$,
         output_mode => 'append', event_time => 't', watermark => '5 seconds');
-- the event_time argument's errors
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "nope": "t"}', watermark => '5 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "clk": "note"}', watermark => '5 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "clk": "missing"}', watermark => '5 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "clk": {"column": "t", "watermark": "1 month"}}', watermark => '5 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "clk": {"column": "t", "watermark": "soon"}}', watermark => '5 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "clk": {"col": "t"}}', watermark => '5 seconds');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "clk": {"column": "t", "watermark": "1 second"}}');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{}', watermark => '5 seconds');
-- a source named twice, by its name and by its schema-qualified name
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN clk c ON c.ad = i.ad$$,
         event_time => '{"imp": "t", "clk": "t", "public.imp": {"column": "t", "watermark": "1 hour"}}',
         watermark => '5 seconds');
-- a name that two sources share (in two schemas) names neither
CREATE SCHEMA other;
SELECT streaming.create_source('other.imp', 'file', 'ad bigint, t timestamptz',
         '{"path": "/tmp/streaming_regress/join_imp", "format": "csv"}');
SELECT streaming.create_query('bad', $$SELECT i.ad FROM imp i JOIN other.imp o ON o.ad = i.ad$$,
         event_time => '{"imp": "t"}', watermark => '5 seconds');
SELECT streaming.drop_source('other.imp');
DROP SCHEMA other;
-- the ON condition of an outer join with an ordinary table does not bound
-- which rows of the streams match: a click of any time joins its impression
-- (the label is NULL when the times are far apart), so neither state is evicted
CREATE TABLE labels (ad bigint, label text);
SELECT streaming.create_query('outer_on', $$SELECT i.ad, c.t, l.label FROM imp i JOIN clk c ON c.ad = i.ad
                                            LEFT JOIN labels l ON l.ad = i.ad AND c.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
         event_time => 't', watermark => '5 seconds');
SELECT step, regexp_replace(statement, 'join_\d+_', 'join_N_', 'g') FROM streaming.explain('outer_on')
 WHERE step = 'join state' ORDER BY 2;
SELECT streaming.drop_query('outer_on');
-- ... while the same bound in WHERE does
SELECT streaming.create_query('outer_where', $$SELECT i.ad, c.t, l.label FROM imp i JOIN clk c ON c.ad = i.ad
                                               LEFT JOIN labels l ON l.ad = i.ad
                                              WHERE c.t BETWEEN i.t AND i.t + interval '10 seconds'$$,
         event_time => 't', watermark => '5 seconds');
SELECT step, regexp_replace(statement, 'join_\d+_', 'join_N_', 'g') FROM streaming.explain('outer_where')
 WHERE step = 'join state' ORDER BY 2;
SELECT streaming.drop_query('outer_where');
DROP TABLE labels;
-- a source in three places, each pair bounded otherwise, two of the
-- bounds BETWEEN negative offsets, and deduplicated on the event time of
-- its second place: its one state goes when no later click can match it
-- in any place, its keys that state's lag (30 s) behind the watermark.
-- Created now, it reads the clicks fed above, a file a batch; every key
-- comes out once, as plain SQL over the clicks that were not late has it
SELECT streaming.create_query('self_three',
  $$SELECT DISTINCT c2.t AS second, c2.ad FROM clk c1
      JOIN clk c2 ON c2.t BETWEEN c1.t - interval '20 seconds' AND c1.t - interval '5 seconds'
      JOIN clk c3 ON c3.t BETWEEN c1.t - interval '30 seconds' AND c1.t + interval '7 seconds'
                 AND c3.t BETWEEN c2.t AND c2.t + interval '30 seconds'$$,
  output_mode => 'append', event_time => 't', watermark => '5 seconds');
SELECT streaming.run('self_three') > 1 AS several_batches;
CREATE TEMP TABLE self_ok AS
  SELECT f.* FROM fed_clk f
   WHERE f.t > coalesce((SELECT max(p.t) FROM fed_clk p WHERE p.batch < f.batch) - interval '5 seconds', '-infinity');
CREATE TEMP VIEW self_three_ref AS
  SELECT DISTINCT c2.t AS second, c2.ad FROM self_ok c1
    JOIN self_ok c2 ON c2.t BETWEEN c1.t - interval '20 seconds' AND c1.t - interval '5 seconds'
    JOIN self_ok c3 ON c3.t BETWEEN c1.t - interval '30 seconds' AND c1.t + interval '7 seconds'
                   AND c3.t BETWEEN c2.t AND c2.t + interval '30 seconds';
SELECT (SELECT count(*) FROM self_three) AS result_rows, (SELECT count(*) FROM self_three_ref) AS reference_rows,
       (SELECT count(*) FROM (SELECT * FROM self_three_ref EXCEPT ALL SELECT * FROM self_three) d) AS missing,
       (SELECT count(*) FROM (SELECT * FROM self_three EXCEPT ALL SELECT * FROM self_three_ref) d) AS extra;
-- keys were evicted: the state keeps fewer than came out
SELECT (SELECT state_rows FROM streaming.queries WHERE name = 'self_three') < count(*) AS evicted FROM self_three;
SELECT * FROM self_three ORDER BY second, ad;
DROP VIEW self_three_ref;
DROP TABLE self_ok;
SELECT streaming.drop_query('self_three');
SELECT streaming.drop_query(name) FROM wcases ORDER BY name;
SELECT streaming.drop_query('self_clicks');
SELECT count(*) AS source_watermarks_left FROM streaming.source_watermarks;
SELECT streaming.drop_source(s) FROM unnest(ARRAY['imp', 'clk']) s;
DROP VIEW ok_imp, ok_clk;
DROP TABLE fed_imp, fed_clk, wcases;
DROP FUNCTION wfeed(text, int, bigint[]), ref_wm(int), add_wcase(text, text, text), wcompare(text, int, interval),
              wstates(int), wrun(int), dedup_kept(int), self_check(int);
DROP EXTENSION streaming;
