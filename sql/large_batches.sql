-- A stateless query's large batch writes its rows while it decodes them:
-- each 10 000 rows its INSERT runs over them, in the batch's transaction.
-- Every row lands once, whatever fails where.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/large_batches && mkdir -p /tmp/streaming_regress/large_batches/a /tmp/streaming_regress/large_batches/b /tmp/streaming_regress/large_batches/c /tmp/streaming_regress/large_batches/d';
SELECT streaming.create_source('lb_a', 'file', 'id int, v text',
         '{"path": "/tmp/streaming_regress/large_batches/a", "format": "csv"}');
SELECT streaming.create_query('lb_copy', $$SELECT id, upper(v) AS v FROM lb_a WHERE id % 7 <> 0$$);
COPY (SELECT i, 'row ' || i FROM generate_series(1, 25000) i)
  TO '/tmp/streaming_regress/large_batches/a/1.csv' WITH (FORMAT csv);
SELECT streaming.run('lb_copy');
-- every row once: the result equals plain SQL over the same rows
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM lb_copy;
SELECT count(*) AS differ FROM (
  (SELECT id, v FROM lb_copy EXCEPT ALL
   SELECT i, upper('row ' || i) FROM generate_series(1, 25000) i WHERE i % 7 <> 0)
  UNION ALL
  (SELECT i, upper('row ' || i) FROM generate_series(1, 25000) i WHERE i % 7 <> 0
   EXCEPT ALL SELECT id, v FROM lb_copy)) d;
-- one batch, which wrote while it read and counts every row it wrote
SELECT batch_id, input_rows, sink_rows, duration_ms ? 'add_batch_while_reading' AS wrote_while_reading
  FROM streaming.progress WHERE query = 'lb_copy';
SELECT input_rows_total, sink_rows_total FROM streaming.queries WHERE name = 'lb_copy';
-- a small batch writes once it has read
COPY (SELECT i, 'row ' || i FROM generate_series(25001, 25010) i)
  TO '/tmp/streaming_regress/large_batches/a/2.csv' WITH (FORMAT csv);
SELECT streaming.run('lb_copy');
SELECT batch_id, input_rows, sink_rows, duration_ms ? 'add_batch_while_reading' AS wrote_while_reading
  FROM streaming.progress WHERE query = 'lb_copy' ORDER BY batch_id;

-- a record that cannot be decoded after rows were written: the batch
-- decodes again record by record, and the rows written before are taken
-- back with the first attempt, not written twice
SELECT streaming.create_source('lb_b', 'file', 'id int, v text',
         '{"path": "/tmp/streaming_regress/large_batches/b", "format": "csv"}');
SELECT streaming.create_query('lb_letters', $$SELECT id, v FROM lb_b$$, on_error => 'dead_letter');
COPY (SELECT CASE WHEN i = 15001 THEN 'not a number' ELSE i::text END, 'row ' || i FROM generate_series(1, 20000) i)
  TO '/tmp/streaming_regress/large_batches/b/1.csv' WITH (FORMAT csv);
SELECT streaming.run('lb_letters');
SELECT count(*) AS rows, count(DISTINCT id) AS ids, min(id), max(id) FROM lb_letters;
SELECT position, error FROM streaming.dead_letters WHERE query = 'lb_letters';
SELECT batch_id, input_rows, sink_rows, duration_ms ? 'add_batch_while_reading' AS wrote_while_reading
  FROM streaming.progress WHERE query = 'lb_letters';

-- the statement fails on a row after others were written: the batch
-- fails, nothing of it stays, and it is read again
SELECT streaming.create_source('lb_c', 'file', 'id int',
         '{"path": "/tmp/streaming_regress/large_batches/c", "format": "csv"}');
SELECT streaming.create_query('lb_fail', $$SELECT id, 100 / (id - 15000) AS q FROM lb_c$$);
COPY (SELECT i FROM generate_series(1, 20000) i) TO '/tmp/streaming_regress/large_batches/c/1.csv' WITH (FORMAT csv);
SELECT streaming.run('lb_fail');
SELECT count(*) FROM lb_fail;
SELECT last_batch_id, input_rows_total FROM streaming.queries WHERE name = 'lb_fail';
SELECT count(*) FROM streaming.offsets WHERE query = 'lb_fail';
SELECT streaming.run('lb_fail');

-- a table with a trigger gets the batch's rows in one statement, as before
SELECT streaming.create_source('lb_d', 'file', 'id int',
         '{"path": "/tmp/streaming_regress/large_batches/d", "format": "csv"}');
SELECT streaming.create_query('lb_trig', $$SELECT id FROM lb_d$$);
CREATE TABLE lb_statements (rows bigint);
CREATE FUNCTION lb_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO lb_statements SELECT count(*) FROM new_rows;
  RETURN NULL;
END $$;
CREATE TRIGGER lb_count AFTER INSERT ON lb_trig REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION lb_count();
COPY (SELECT i FROM generate_series(1, 25000) i) TO '/tmp/streaming_regress/large_batches/d/1.csv' WITH (FORMAT csv);
SELECT streaming.run('lb_trig');
SELECT * FROM lb_statements;
SELECT count(*) FROM lb_trig;
SELECT batch_id, input_rows, sink_rows, duration_ms ? 'add_batch_while_reading' AS wrote_while_reading
  FROM streaming.progress WHERE query = 'lb_trig';

-- a query that reads the table it writes into (sink_options.table) gets
-- the batch in one statement: the rows it wrote earlier in the batch do not
-- hide the batch's other rows, as they would from a later statement
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && mkdir -p /tmp/streaming_regress/large_batches/e';
SELECT streaming.create_source('lb_e', 'file', 'id int, v text',
         '{"path": "/tmp/streaming_regress/large_batches/e", "format": "csv"}');
CREATE TABLE lb_seen (id int, v text);
SELECT streaming.create_query('lb_own',
  $$SELECT e.id, e.v FROM lb_e e WHERE NOT EXISTS (SELECT 1 FROM public.lb_seen s WHERE s.id = e.id)$$,
  sink_options => '{"table": "public.lb_seen"}');
COPY (SELECT CASE WHEN i <= 20000 THEN i ELSE i - 20000 END, 'row ' || i FROM generate_series(1, 25000) i)
  TO '/tmp/streaming_regress/large_batches/e/1.csv' WITH (FORMAT csv);
SELECT streaming.run('lb_own');
SELECT count(*) AS rows, count(DISTINCT id) AS ids FROM lb_seen;
SELECT batch_id, input_rows, sink_rows, duration_ms ? 'add_batch_while_reading' AS wrote_while_reading
  FROM streaming.progress WHERE query = 'lb_own';

SELECT streaming.drop_query(q) FROM unnest(ARRAY['lb_copy', 'lb_letters', 'lb_fail', 'lb_trig', 'lb_own']) q;
SELECT streaming.drop_source(s) FROM unnest(ARRAY['lb_a', 'lb_b', 'lb_c', 'lb_d', 'lb_e']) s;
DROP TABLE lb_statements;
DROP TABLE lb_seen;
DROP FUNCTION lb_count;
DROP EXTENSION streaming;
