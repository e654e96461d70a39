-- The table sink into an existing table (sink_options.table): a query
-- writes its result into a table it did not create, which stays when the
-- query is dropped
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/table_sink && mkdir -p /tmp/streaming_regress/table_sink';
SELECT streaming.create_source('sales', 'file', 'shop text, amount int',
         '{"path": "/tmp/streaming_regress/table_sink", "format": "csv"}');

-- append: rows go into a table with more columns (defaults fill the rest)
CREATE TABLE sales_log (id bigserial PRIMARY KEY, shop text, amount int, logged boolean DEFAULT true);
SELECT streaming.create_query('log_sales', 'SELECT shop, amount FROM sales',
         sink_options => '{"table": "sales_log"}');
-- update: groups upserted by the key, through a unique index NULLS NOT DISTINCT
CREATE TABLE shop_totals (shop text, total bigint, note text DEFAULT 'kept');
CREATE UNIQUE INDEX ON shop_totals (shop) NULLS NOT DISTINCT;
INSERT INTO shop_totals VALUES ('elsewhere', 99, 'not ours');
SELECT streaming.create_query('totals', 'SELECT shop, sum(amount) AS total FROM sales GROUP BY shop',
         output_mode => 'update', sink_options => '{"table": "shop_totals"}');

COPY (VALUES ('a', 1), ('b', 2), (NULL, 3)) TO '/tmp/streaming_regress/table_sink/1.csv' WITH (FORMAT csv);
SELECT streaming.run('log_sales'), streaming.run('totals');
COPY (VALUES ('a', 10), (NULL, 30)) TO '/tmp/streaming_regress/table_sink/2.csv' WITH (FORMAT csv);
SELECT streaming.run('log_sales'), streaming.run('totals');
SELECT id, shop, amount, logged FROM sales_log ORDER BY id;
SELECT * FROM shop_totals ORDER BY shop NULLS FIRST;
SELECT step, statement FROM streaming.explain('totals') WHERE step IN ('result table', 'emit');

-- what cannot work is refused at create_query
CREATE FUNCTION try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE msg text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN msg || coalesce(' (' || nullif(hint, '') || ')', '');
END
$$;
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, amount FROM sales', sink_options => '{"table": "no_such_table"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, amount AS amt FROM sales', sink_options => '{"table": "sales_log"}')$q$);
CREATE TABLE narrow (shop int, amount int);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, amount FROM sales', sink_options => '{"table": "narrow"}')$q$);
CREATE TABLE no_index (shop text, total bigint);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, sum(amount) AS total FROM sales GROUP BY shop', output_mode => 'update', sink_options => '{"table": "no_index"}')$q$);
CREATE UNIQUE INDEX ON no_index (shop);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, sum(amount) AS total FROM sales GROUP BY shop', output_mode => 'update', sink_options => '{"table": "no_index"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT sum(amount) AS total FROM sales', output_mode => 'complete', sink_options => '{"table": "no_index"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, amount FROM sales', sink_options => '{"table": "sales"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, amount FROM sales', sink_options => '{"table": "sales_log", "colour": 1}')$q$);
-- two queries, one table: a grouped query's table is its own (it would
-- overwrite the other's rows with the same keys), while queries that only
-- append may share one
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, count(*) AS total FROM sales GROUP BY shop', output_mode => 'update', sink_options => '{"table": "shop_totals"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, amount::bigint AS total FROM sales', sink_options => '{"table": "shop_totals"}')$q$);
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, max(amount) AS amount FROM sales GROUP BY shop', output_mode => 'update', sink_options => '{"table": "sales_log"}')$q$);
SELECT streaming.create_query('log_sales_too', 'SELECT shop, amount FROM sales',
         sink_options => '{"table": "sales_log"}');
SELECT streaming.drop_query('log_sales_too');
CREATE ROLE regress_table_sink_user;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_table_sink_user;
GRANT SELECT ON sales TO regress_table_sink_user;
SET ROLE regress_table_sink_user;
SELECT try($q$SELECT streaming.create_query('x', 'SELECT shop, amount FROM sales', sink_options => '{"table": "sales_log"}')$q$);
RESET ROLE;

-- dropping the queries leaves the tables and their rows
SELECT streaming.drop_query('log_sales');
SELECT streaming.drop_query('totals');
SELECT count(*) FROM sales_log;
SELECT count(*) FROM shop_totals;

SELECT streaming.drop_source('sales');
DROP EXTENSION streaming;
DROP FUNCTION try(text);
DROP TABLE sales_log, shop_totals, narrow, no_index;
DROP ROLE regress_table_sink_user;
