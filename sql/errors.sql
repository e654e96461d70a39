-- Continuous queries that cannot be kept incrementally are rejected at creation
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/errors && mkdir -p /tmp/streaming_regress/errors';
SELECT streaming.create_source('src', 'file', 'k text, v int',
         '{"path": "/tmp/streaming_regress/errors", "format": "csv"}');
CREATE TABLE plain (k text, v int);
-- each failure as (code, message, detail, hint)
CREATE FUNCTION try(stmt text, OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    message := 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                            detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END
$$;
\x on
-- a query over an unknown relation
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k FROM no_such_source')$q$);
-- not a query, or not a single one
SELECT * FROM try($q$SELECT streaming.create_query('q', 'DELETE FROM plain')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT 1; SELECT 2')$q$);
-- no source at all
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, count(*) FROM plain GROUP BY k', output_mode => 'complete')$q$);
-- append mode with an aggregate and no watermark
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, count(*) FROM src GROUP BY k')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, count(*) FROM src GROUP BY k', output_mode => 'append')$q$);
-- complete mode without an aggregate
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, v FROM src', output_mode => 'complete')$q$);
-- aggregates that have no incremental form
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, array_agg(DISTINCT ARRAY[v]) FROM src GROUP BY k', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, mode() WITHIN GROUP (ORDER BY v) FROM src GROUP BY k', output_mode => 'update')$q$);
CREATE FUNCTION concat_sfunc(text, int) RETURNS text LANGUAGE sql AS $$SELECT $1 || $2::text$$;
CREATE AGGREGATE concat_all(int) (sfunc = concat_sfunc, stype = text, initcond = '');
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, concat_all(v) FROM src GROUP BY k', output_mode => 'update')$q$);
-- shapes the result table cannot key
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT count(*) FROM src GROUP BY k', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, count(*) + (SELECT 1) FROM src GROUP BY k', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, count(*) FROM src GROUP BY k HAVING count(*) > (SELECT count(*) FROM plain)', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, v FROM src ORDER BY v')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT DISTINCT k, count(*) FROM src GROUP BY k', output_mode => 'update')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('Sales Report', 'SELECT k FROM src')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('my source', 'rate')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k, row_number() OVER () FROM src')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT s.k FROM (SELECT a.k FROM src a JOIN src b USING (k)) s')$q$);
-- bad arguments
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k FROM src', output_mode => 'sometimes')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k FROM src', trigger => 'whenever')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k FROM src', on_error => 'ignore')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k FROM src', sink => 'carrier_pigeon')$q$);
SELECT * FROM try($q$SELECT streaming.run('no_such_query')$q$);
SELECT * FROM try($q$SELECT streaming.explain('no_such_query')$q$);
SELECT * FROM try($q$SELECT streaming.drop_query('no_such_query')$q$);
-- a duplicate name
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT k FROM src')$q$);
SELECT * FROM try($q$SELECT streaming.create_query('q', 'SELECT v FROM src')$q$);
-- nothing was left behind by the failures
\x off
SELECT name FROM streaming.queries;
SELECT relname FROM pg_class WHERE relnamespace = 'streaming'::regnamespace AND relname LIKE 'state%';
SELECT streaming.drop_query('q');
SELECT streaming.drop_source('src');
DROP TABLE plain;
DROP AGGREGATE concat_all(int);
DROP FUNCTION concat_sfunc(text, int);
DROP FUNCTION try(text);
DROP EXTENSION streaming;
