-- Nexmark's daily statistics, q15, q16 and q17, as the benchmark writes
-- them (Flink's DATE_FORMAT(dateTime, 'yyyy-MM-dd') written as to_char):
-- several count(*) FILTER (...), count(DISTINCT ...) FILTER (...), min,
-- max, avg and sum per day, run as continuous queries over a bid stream
-- and compared, after each of four batches, with plain SQL over the same
-- bids.
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SET TimeZone = 'UTC';
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/nexmark_daily && mkdir -p /tmp/streaming_regress/nexmark_daily';
SELECT streaming.create_source('bid', 'file', 'auction bigint, bidder bigint, price bigint, channel text, url text, date_time timestamptz, extra text',
         '{"path": "/tmp/streaming_regress/nexmark_daily", "format": "csv", "max_files_per_trigger": 1}');
-- the same rows, for plain PostgreSQL
CREATE TABLE all_bid (auction bigint, bidder bigint, price bigint, channel text, url text, date_time timestamptz, extra text);


CREATE TABLE cases (name text PRIMARY KEY, sql text);
CREATE FUNCTION add_case(name text, sql text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM streaming.create_query(name, replace(sql, '$src', 'bid'), output_mode => 'update');
    INSERT INTO cases VALUES (name, sql);
END $$;

-- rows of the result table and of the reference: how many each holds and
-- how many of each are missing from the other
CREATE FUNCTION compare(q text)
RETURNS TABLE (query text, result_rows bigint, reference_rows bigint, missing bigint, extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    ref text := replace((SELECT sql FROM cases WHERE name = q), '$src', 'all_bid');
    res text := format('SELECT * FROM %I', q);
BEGIN
    query := q;
    EXECUTE format('SELECT count(*) FROM (%s) x', res) INTO result_rows;
    EXECUTE format('SELECT count(*) FROM (%s) x', ref) INTO reference_rows;
    EXECUTE format('SELECT count(*) FROM (%s EXCEPT ALL %s) x', ref, res) INTO missing;
    EXECUTE format('SELECT count(*) FROM (%s EXCEPT ALL %s) x', res, ref) INTO extra;
    RETURN NEXT;
END $$;

-- batch n: 400 bids of 60 auctions by 150 bidders, prices over the three
-- ranks, four channels, spread over three days (batches overlap in days)
CREATE FUNCTION feed(n int) RETURNS void LANGUAGE plpgsql SET DateStyle = 'ISO' AS $$
DECLARE
    file text := format('/tmp/streaming_regress/nexmark_daily/%s.csv', n);
BEGIN
    EXECUTE format($f$COPY (SELECT (g * 7 + %s) %% 60 + 1000,
                                  (g * g + %s * 13) %% 150 + 1,
                                  CASE g %% 7 WHEN 0 THEN 1000000 + (g * 7919) %% 900000
                                              WHEN 1 THEN 9999 WHEN 2 THEN 10000
                                              WHEN 3 THEN 999999 ELSE (g * 104729 + %s) %% 20000 END,
                                  (ARRAY['Google', 'Facebook', 'Baidu', 'Apple'])[1 + (g + %s) %% 4],
                                  'https://example.com/' || g, timestamptz '2015-07-15 00:00:00+00'
                                      + make_interval(secs => ((g * 977 + %s * 40000) %% 259200)::float8 + 0.25),
                                  ''
                             FROM generate_series(1, 400) g) TO %L WITH (FORMAT csv)$f$,
                   n, n, n, n, n, file);
    EXECUTE format('COPY all_bid FROM %L WITH (FORMAT csv)', file);
END $$;

CREATE FUNCTION run_all() RETURNS SETOF bigint LANGUAGE sql AS $$
    SELECT streaming.run(name, 1) FROM cases ORDER BY name
$$;

-- q15: bids, bidders and auctions per day, in three price ranks
SELECT add_case('q15', $$
SELECT
     to_char(date_time, 'YYYY-MM-DD') as "day",
     count(*) AS total_bids,
     count(*) filter (where price < 10000) AS rank1_bids,
     count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids,
     count(*) filter (where price >= 1000000) AS rank3_bids,
     count(distinct bidder) AS total_bidders,
     count(distinct bidder) filter (where price < 10000) AS rank1_bidders,
     count(distinct bidder) filter (where price >= 10000 and price < 1000000) AS rank2_bidders,
     count(distinct bidder) filter (where price >= 1000000) AS rank3_bidders,
     count(distinct auction) AS total_auctions,
     count(distinct auction) filter (where price < 10000) AS rank1_auctions,
     count(distinct auction) filter (where price >= 10000 and price < 1000000) AS rank2_auctions,
     count(distinct auction) filter (where price >= 1000000) AS rank3_auctions
FROM $src
GROUP BY to_char(date_time, 'YYYY-MM-DD')$$);
-- q16: the same per channel and day, with the last minute of a bid
SELECT add_case('q16', $$
SELECT
    channel,
    to_char(date_time, 'YYYY-MM-DD') as "day",
    max(to_char(date_time, 'HH24:MI')) as "minute",
    count(*) AS total_bids,
    count(*) filter (where price < 10000) AS rank1_bids,
    count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids,
    count(*) filter (where price >= 1000000) AS rank3_bids,
    count(distinct bidder) AS total_bidders,
    count(distinct bidder) filter (where price < 10000) AS rank1_bidders,
    count(distinct bidder) filter (where price >= 10000 and price < 1000000) AS rank2_bidders,
    count(distinct bidder) filter (where price >= 1000000) AS rank3_bidders,
    count(distinct auction) AS total_auctions,
    count(distinct auction) filter (where price < 10000) AS rank1_auctions,
    count(distinct auction) filter (where price >= 10000 and price < 1000000) AS rank2_auctions,
    count(distinct auction) filter (where price >= 1000000) AS rank3_auctions
FROM $src
GROUP BY channel, to_char(date_time, 'YYYY-MM-DD')$$);
-- q17: per auction and day, bids in the three ranks and price statistics
SELECT add_case('q17', $$
SELECT
     auction,
     to_char(date_time, 'YYYY-MM-DD') AS "day",
     count(*) AS total_bids,
     count(*) filter (where price < 10000) AS rank1_bids,
     count(*) filter (where price >= 10000 and price < 1000000) AS rank2_bids,
     count(*) filter (where price >= 1000000) AS rank3_bids,
     min(price) AS min_price,
     max(price) AS max_price,
     avg(price) AS avg_price,
     sum(price) AS sum_price
FROM $src
GROUP BY auction, to_char(date_time, 'YYYY-MM-DD')$$);
-- how each is kept
SELECT step, statement FROM streaming.explain('q15') WHERE step IN ('state table', 'distinct table') ORDER BY step;
SELECT count(*) FILTER (WHERE statement LIKE '%over the distinct values%') AS kept_distinct,
       count(*) FILTER (WHERE statement LIKE '%count in bigint column%') AS counts
  FROM streaming.explain('q16') WHERE step = 'aggregate';
SELECT step, statement FROM streaming.explain('q17') WHERE step IN ('aggregate', 'distinct table') ORDER BY statement;

SELECT feed(1);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed(2);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed(3);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT feed(4);
SELECT * FROM run_all();
SELECT c.* FROM cases, compare(name) c ORDER BY 1;
SELECT * FROM q15 ORDER BY day;
SELECT count(*) AS dead_letters FROM streaming.dead_letters;

SELECT streaming.drop_query(name) FROM cases ORDER BY name;
SELECT streaming.drop_source('bid');
DROP TABLE all_bid, cases;
DROP FUNCTION add_case(text, text), compare(text), feed(int), run_all();
DROP EXTENSION streaming;
