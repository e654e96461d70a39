-- Stateless queries: projection, WHERE, expressions and joins with tables
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/stateless && mkdir -p /tmp/streaming_regress/stateless';

CREATE TABLE products (id int PRIMARY KEY, label text);
INSERT INTO products VALUES (1, 'apple'), (2, 'pear');

SELECT streaming.create_source('sales', 'file',
         schema  => 'product_id int, qty int, price numeric(10,2)',
         options => '{"path": "/tmp/streaming_regress/stateless", "format": "csv", "header": true}');
SELECT streaming.create_query('big_sales',
         $$SELECT s.product_id, p.label, s.qty * s.price AS amount, upper(p.label) AS shout
             FROM sales s LEFT JOIN products p ON p.id = s.product_id
            WHERE s.qty > 1$$);
\d big_sales
SELECT output_mode, shape, state_table FROM streaming.queries;

COPY (VALUES (1, 2, 1.50), (2, 1, 9.99), (3, 5, 0.10)) TO '/tmp/streaming_regress/stateless/a.csv' WITH (FORMAT csv, HEADER);
SELECT streaming.run('big_sales');
SELECT * FROM big_sales ORDER BY product_id;
COPY (VALUES (2, 3, 2.00), (1, 2, 1.50)) TO '/tmp/streaming_regress/stateless/b.csv' WITH (FORMAT csv, HEADER);
SELECT streaming.run('big_sales');
-- rows are appended: the duplicate row of file b is a second row
SELECT * FROM big_sales ORDER BY product_id, amount;
SELECT streaming.run('big_sales');
SELECT count(*) FROM big_sales;
SELECT batch_id, input_rows, state_rows_total, state_rows_updated, sink_rows
  FROM streaming.progress ORDER BY batch_id;

-- update mode over a stateless query also appends
SELECT streaming.create_query('all_sales', $$SELECT * FROM sales$$, output_mode => 'update');
SELECT streaming.run('all_sales');
SELECT * FROM all_sales ORDER BY product_id, qty;

SELECT streaming.drop_query('big_sales');
SELECT streaming.drop_query('all_sales');
SELECT streaming.drop_source('sales');
DROP TABLE products;
DROP EXTENSION streaming;
