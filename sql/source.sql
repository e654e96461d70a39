-- Sources: creation, validation errors, the relation, peeking and dropping
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/source && mkdir -p /tmp/streaming_regress/source';

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
-- unknown kind, unsupported kind, unknown option, bad and missing values
SELECT * FROM try($q$SELECT streaming.create_source('s', 'ftp', 'a int', '{}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'kafka', NULL, '{}')$q$);
-- socket sources: a port is needed, the schema is fixed
SELECT * FROM try($q$SELECT streaming.create_source('s', 'socket')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'socket', options => '{"port": 70000}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'socket', options => '{"port": 9999, "host": ""}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'socket', 'value text, n int', '{"port": 9999}')$q$);
SELECT streaming.create_source('s', 'socket', options => '{"port": 9999}');
\d s
SELECT streaming.drop_source('s');
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{"path": "/tmp/streaming_regress/source", "colour": "red"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{"path": "relative/dir"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{"path": "/tmp/streaming_regress/nonexistent"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{"path": "/tmp/streaming_regress/source", "max_files_per_trigger": 0}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{"path": "/tmp/streaming_regress/source", "latest_first": "perhaps"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{"path": "/tmp/streaming_regress/source", "format": "xml"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '{"path": "/tmp/streaming_regress/source", "delimiter": ";;"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int', '["not", "an", "object"]')$q$);
-- malformed schemas
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int,', '{"path": "/tmp/streaming_regress/source"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int) SERVER streaming; DROP TABLE x; --', '{"path": "/tmp/streaming_regress/source"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a no_such_type', '{"path": "/tmp/streaming_regress/source"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int PRIMARY KEY', '{"path": "/tmp/streaming_regress/source"}')$q$);
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', NULL, '{"path": "/tmp/streaming_regress/source"}')$q$);
-- text needs a single text column
SELECT * FROM try($q$SELECT streaming.create_source('s', 'file', 'a int, b int', '{"path": "/tmp/streaming_regress/source", "format": "text"}')$q$);
\x off
-- nothing was left behind by the failures
SELECT count(*) FROM streaming.sources;

-- a csv source is a foreign table with the declared columns
SELECT streaming.create_source('orders', 'file',
         schema  => 'id int, name text, value float8',
         options => '{"path": "/tmp/streaming_regress/source", "format": "csv", "header": true}');
\d orders
SELECT name, kind, options FROM streaming.sources;
-- a text source gets Spark's default schema, one value column
SELECT streaming.create_source('lines', 'file', options => '{"path": "/tmp/streaming_regress/source", "format": "text"}');
\d lines
SELECT streaming.create_source('orders', 'file', 'a int', '{"path": "/tmp/streaming_regress/source"}');

-- outside a micro-batch a SELECT peeks at the input present now
SELECT * FROM orders;
COPY (VALUES (1, 'a', 1.5), (2, 'b', 2.5)) TO '/tmp/streaming_regress/source/f1.csv' WITH (FORMAT csv, HEADER);
SELECT * FROM orders ORDER BY id;
SET streaming.peek_rows = 1;
SELECT count(*) FROM orders;
RESET streaming.peek_rows;
-- peeking consumes nothing
SELECT count(*) FROM streaming.offsets;

-- foreign tables of the FDW take no options (servers take Kafka settings)
CREATE FOREIGN TABLE bad (a int) SERVER streaming OPTIONS (path '/tmp');

-- drop_source
SELECT streaming.drop_source('lines');
SELECT streaming.drop_source('lines');
SELECT streaming.drop_source('lines', if_exists => true);
-- a column dropped from a source leaves the source in the catalog
ALTER FOREIGN TABLE orders ADD COLUMN spare int;
ALTER FOREIGN TABLE orders DROP COLUMN spare;
SELECT name, kind FROM streaming.sources ORDER BY name;
-- a source cannot be renamed nor moved to another schema, whatever the
-- command says it alters
CREATE SCHEMA elsewhere;
ALTER FOREIGN TABLE orders RENAME TO purchases;
ALTER TABLE orders RENAME TO purchases;
ALTER FOREIGN TABLE orders SET SCHEMA elsewhere;
DROP SCHEMA elsewhere;
SELECT name, relid::regclass FROM streaming.sources ORDER BY name;
-- a source dropped with DROP FOREIGN TABLE leaves the catalog too
DROP FOREIGN TABLE orders;
SELECT count(*) FROM streaming.sources;
DROP FUNCTION try(text);
DROP EXTENSION streaming;
