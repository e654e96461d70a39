-- The table source: the committed inserts into an ordinary table, in commit
-- order, through logical decoding (a replication slot per query and source)
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
SHOW wal_level;

CREATE TABLE orders (id int PRIMARY KEY, name text NOT NULL, value numeric(10,2), note text);
-- committed before the query's slot exists: not part of its stream
INSERT INTO orders VALUES (0, 'before', 1, NULL);

-- the schema comes from the table
SELECT streaming.create_source('orders_s', 'table', options => '{"table": "public.orders"}');
\d orders_s
-- outside a batch there is nothing to peek at
SELECT * FROM orders_s;

SELECT streaming.create_query('by_name',
         $$SELECT name, count(*) AS n, sum(value) AS total, max(length(note)) AS longest
             FROM orders_s GROUP BY name$$, output_mode => 'complete');
SELECT streaming.create_query('copied', $$SELECT id, name, value, note FROM orders_s$$);

-- the first run creates the slots: the streams start there
SELECT streaming.run('by_name');
SELECT streaming.run('copied');
SELECT s.slot_name = pg_catalog.format('streaming_%s_%s_%s', d.oid, q.id, 'orders_s'::regclass::oid) AS named,
       s.plugin, s.slot_type, s.temporary
  FROM pg_replication_slots s
  JOIN pg_database d ON d.datname = s.database
  JOIN streaming.queries q ON s.slot_name LIKE pg_catalog.format('streaming\_%s\_%s\_%%', d.oid, q.id)
 ORDER BY q.name;

-- committed inserts in commit order; a rolled-back one is never seen
INSERT INTO orders SELECT i, 'n' || (i % 3), i * 1.5, NULL FROM generate_series(1, 10) i;
BEGIN;
INSERT INTO orders VALUES (11, 'n0', 100, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i));
INSERT INTO orders VALUES (12, 'n1', 1, 'small');
COMMIT;
BEGIN;
INSERT INTO orders VALUES (13, 'rolled back', 1, NULL);
ROLLBACK;
-- a value stored out of line (TOAST) arrives whole
SELECT pg_relation_size(reltoastrelid) > 0 AS toasted FROM pg_class WHERE oid = 'orders'::regclass;

SELECT streaming.run('by_name');
SELECT name, n, total, longest FROM by_name ORDER BY name;
-- the same as plain SQL over the table, without the row from before the stream
SELECT name, count(*) AS n, sum(value) AS total, max(length(note)) AS longest
  FROM orders WHERE id > 0 GROUP BY name ORDER BY name;
SELECT streaming.run('copied');
-- row for row: nothing missing, nothing extra, nothing twice
SELECT (SELECT count(*) FROM copied) AS copied,
       (SELECT count(*) FROM (SELECT * FROM copied EXCEPT ALL
                              SELECT id, name, value, note FROM orders WHERE id > 0) x) AS extra,
       (SELECT count(*) FROM (SELECT id, name, value, note FROM orders WHERE id > 0 EXCEPT ALL
                              SELECT * FROM copied) x) AS missing;
-- nothing new: no batch
SELECT streaming.run('by_name');

-- a batch that rolls back is read again by the next run, exactly once
INSERT INTO orders VALUES (14, 'n2', 10, NULL), (15, 'n2', 20, NULL);
BEGIN;
SELECT streaming.run('by_name');
SELECT n, total FROM by_name WHERE name = 'n2';
ROLLBACK;
SELECT n, total FROM by_name WHERE name = 'n2';
-- a batch in a transaction: an insert of that transaction is seen once it commits
BEGIN;
SELECT streaming.run('by_name');
INSERT INTO orders VALUES (16, 'n2', 30, NULL);
SELECT streaming.run('by_name');
COMMIT;
SELECT streaming.run('by_name');
SELECT n, total FROM by_name WHERE name = 'n2';
SELECT count(*) AS n, sum(value) AS total FROM orders WHERE name = 'n2';

-- updates and deletes are counted and skipped, in the progress of the batch
UPDATE orders SET value = value + 1 WHERE id <= 3;
DELETE FROM orders WHERE id IN (4, 5);
INSERT INTO orders VALUES (17, 'n0', 7, NULL);
SELECT streaming.run('by_name');
SELECT batch_id, input_rows, sources->0->'skipped_updates' AS updates,
       sources->0->'skipped_deletes' AS deletes, sources->0->'truncates' AS truncates,
       (sources->0->'end_offset'->>'seq')::int AS end_seq
  FROM streaming.progress WHERE query = 'by_name' ORDER BY batch_id DESC LIMIT 1;
SELECT name, n, total FROM by_name WHERE name = 'n0';

-- a large transaction is read in several batches of max_rows_per_trigger
SELECT streaming.create_source('orders_small', 'table', 'id int, value numeric',
         '{"table": "public.orders", "max_rows_per_trigger": 4}');
SELECT streaming.create_query('ids', $$SELECT id, value FROM orders_small$$);
SELECT streaming.run('ids');
INSERT INTO orders SELECT i, 'bulk', i, NULL FROM generate_series(100, 109) i;
INSERT INTO orders VALUES (110, 'bulk', 110, NULL);
SELECT streaming.run('ids', 1);
SELECT streaming.run('ids', 1);
SELECT streaming.run('ids');
SELECT batch_id, input_rows, (sources->0->'start_offset'->>'seq')::int AS start_seq,
       (sources->0->'end_offset'->>'seq')::int AS end_seq
  FROM streaming.progress WHERE query = 'ids' ORDER BY batch_id;
-- the first two batches end in the same transaction, the third in the next one
SELECT count(DISTINCT sources->0->'end_offset'->>'lsn') FILTER (WHERE batch_id < 2) AS first_two,
       count(DISTINCT sources->0->'end_offset'->>'lsn') AS all_three
  FROM streaming.progress WHERE query = 'ids';
SELECT partition, "offset" FROM streaming.offsets WHERE query = 'ids' AND partition = 'seq';
SELECT count(*) AS n, sum(value) AS total, count(DISTINCT id) AS distinct_ids FROM ids;

-- TRUNCATE of the table is reported with a warning; the results stay
TRUNCATE orders;
SELECT streaming.run('ids');
SELECT sources->0->'truncates' AS truncates FROM streaming.progress
 WHERE query = 'ids' ORDER BY batch_id DESC LIMIT 1;
SELECT count(*) FROM ids;

-- a table cannot be dropped under its source
CREATE TABLE items (id int);
SELECT streaming.create_source('items_s', 'table', options => '{"table": "public.items"}');
DROP TABLE items;
SELECT streaming.drop_source('items_s');
DROP TABLE items;

-- the table's columns that a source reads cannot be dropped or retyped
-- under it; other changes of the table go on
CREATE TABLE stock (id int, label text, qty int, spare text);
SELECT streaming.create_source('stock_s', 'table', 'id int, label text, qty int',
                               '{"table": "public.stock"}');
SELECT streaming.create_query('stock_copy', $$SELECT id, label, qty FROM stock_s$$);
SELECT streaming.run('stock_copy');
INSERT INTO stock VALUES (1, 'a', 10, 'x');
ALTER TABLE stock DROP COLUMN label;
ALTER TABLE stock ALTER COLUMN qty TYPE bigint;
-- nor may the table become unlogged: the rows inserted meanwhile would
-- never reach the WAL, and the source would miss them once it is logged again
ALTER TABLE stock SET UNLOGGED;
ALTER TABLE stock ADD COLUMN later int, SET UNLOGGED;
SELECT relpersistence FROM pg_class WHERE oid = 'stock'::regclass;
-- a column the source does not read may go; a new one is not read
ALTER TABLE stock DROP COLUMN spare;
ALTER TABLE stock ADD COLUMN colour text;
INSERT INTO stock VALUES (2, 'b', 20, 'red'), (3, NULL, 30, 'blue');
SELECT streaming.run('stock_copy');
SELECT * FROM stock_copy ORDER BY id;
SELECT id, label, qty FROM stock ORDER BY id;
-- the source reads columns by name: one it reads cannot be renamed; the
-- others can
ALTER TABLE stock RENAME COLUMN qty TO quantity;
ALTER TABLE stock RENAME colour TO color;
-- ... nor by the other ALTER commands with which PostgreSQL renames a
-- table's column too
ALTER FOREIGN TABLE stock RENAME COLUMN qty TO quantity;
ALTER VIEW stock RENAME COLUMN qty TO quantity;
ALTER MATERIALIZED VIEW stock RENAME COLUMN qty TO quantity;
ALTER TYPE stock RENAME ATTRIBUTE qty TO quantity;
SELECT attname FROM pg_attribute WHERE attrelid = 'stock'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
-- ... and the source's own columns, each the table's column of its name
ALTER FOREIGN TABLE stock_s RENAME COLUMN qty TO quantity;
ALTER TABLE stock_s RENAME label TO name;
-- ... nor may the source get a column, or retype one (before a query
-- reads it): they would not be the table's
ALTER FOREIGN TABLE stock_s ADD COLUMN colour text;
ALTER TABLE stock_s ADD COLUMN extra int;
SELECT attname FROM pg_attribute WHERE attrelid = 'stock_s'::regclass AND attnum > 0 ORDER BY attnum;
-- ... nor through the table that the followed one is a partition or an
-- inheritance child of: the rename, or the type change, goes down to it
CREATE TABLE shelves (id int, qty int) PARTITION BY RANGE (id);
CREATE TABLE shelves_low PARTITION OF shelves FOR VALUES FROM (0) TO (100);
CREATE TABLE bins (id int, qty int);
CREATE TABLE bins_red () INHERITS (bins);
SELECT streaming.create_source('shelves_low_s', 'table', options => '{"table": "public.shelves_low"}');
SELECT streaming.create_source('bins_red_s', 'table', options => '{"table": "public.bins_red"}');
ALTER TABLE shelves RENAME COLUMN qty TO quantity;
ALTER TABLE bins RENAME COLUMN qty TO quantity;
ALTER TABLE bins ALTER COLUMN qty TYPE bigint;
SELECT attrelid::regclass AS "table", attname, atttypid::regtype AS type FROM pg_attribute
 WHERE attrelid IN ('shelves'::regclass, 'shelves_low'::regclass, 'bins'::regclass, 'bins_red'::regclass)
   AND attnum = 2 ORDER BY 1;
-- ... nor through the composite type of a typed table (ALTER TYPE ... CASCADE)
CREATE TYPE crate AS (id int, qty int);
CREATE TABLE crates OF crate;
SELECT streaming.create_source('crates_s', 'table', options => '{"table": "public.crates"}');
ALTER FOREIGN TABLE crates_s ALTER COLUMN qty TYPE bigint;
ALTER TYPE crate RENAME ATTRIBUTE qty TO quantity CASCADE;
ALTER TYPE crate ALTER ATTRIBUTE qty TYPE bigint CASCADE;
SELECT attname, atttypid::regtype AS type FROM pg_attribute WHERE attrelid = 'crates'::regclass AND attnum = 2;
SELECT streaming.drop_source('shelves_low_s');
SELECT streaming.drop_source('bins_red_s');
SELECT streaming.drop_source('crates_s');
DROP TABLE shelves, bins, crates CASCADE;
DROP TYPE crate;
-- the table itself may be renamed and moved to another schema, and the
-- schema renamed: the source follows the same table, and its option
-- "table" says the new name
ALTER TABLE stock RENAME TO inventory;
INSERT INTO inventory VALUES (4, 'd', 40, 'green');
CREATE TABLE stock (id int, label text, qty int);
INSERT INTO stock VALUES (99, 'not followed', 0);
SELECT streaming.run('stock_copy');
SELECT options->>'table' AS followed FROM streaming.sources WHERE name = 'stock_s';
CREATE SCHEMA depot;
ALTER TABLE inventory SET SCHEMA depot;
ALTER SCHEMA depot RENAME TO "Depot 2";
INSERT INTO "Depot 2".inventory VALUES (5, 'e', 50, 'grey');
SELECT streaming.run('stock_copy');
SELECT options->>'table' AS followed FROM streaming.sources WHERE name = 'stock_s';
-- ALTER INDEX ... RENAME renames a table too (PostgreSQL allows it for
-- compatibility): followed the same way
ALTER INDEX "Depot 2".inventory RENAME TO "Stock 2026";
SELECT options->>'table' AS followed FROM streaming.sources WHERE name = 'stock_s';
INSERT INTO "Depot 2"."Stock 2026" VALUES (6, 'f', 60, 'black');
SELECT streaming.run('stock_copy');
-- a session that has not loaded the library leaves the option behind, and
-- another table may take the old name: the source still follows its own
-- table, by its dependency, and adopts no other
UPDATE streaming.sources SET options = jsonb_set(options, '{table}', '"\"Depot 2\".inventory"')
 WHERE name = 'stock_s';
CREATE TABLE "Depot 2".inventory (id int, label text, qty int);
INSERT INTO "Depot 2".inventory VALUES (98, 'not followed', 0);
INSERT INTO "Depot 2"."Stock 2026" VALUES (7, 'g', 70, 'white');
SELECT streaming.run('stock_copy');
SELECT DISTINCT refobjid::regclass AS depends_on FROM pg_depend
 WHERE classid = 'pg_class'::regclass AND objid = 'stock_s'::regclass AND refclassid = 'pg_class'::regclass;
SELECT * FROM stock_copy ORDER BY id;
SELECT streaming.drop_query('stock_copy');
SELECT streaming.drop_source('stock_s');
DROP TABLE stock;
DROP SCHEMA "Depot 2" CASCADE;

-- option "snapshot": a query's first batch is the rows the table holds,
-- then the stream goes on from there; without it the rows from before the
-- query's slot are not read
CREATE TABLE shelf (id int, item text);
INSERT INTO shelf SELECT g, 'old ' || g FROM generate_series(1, 5) g;
SELECT streaming.create_source('shelf_s', 'table', options => '{"table": "public.shelf", "snapshot": true}');
SELECT streaming.create_source('shelf_new', 'table', options => '{"table": "public.shelf"}');
SELECT streaming.create_query('shelf_all', $$SELECT id, item FROM shelf_s$$, start => false);
SELECT streaming.create_query('shelf_since', $$SELECT id, item FROM shelf_new$$, start => false);
SELECT streaming.run('shelf_all');
SELECT streaming.run('shelf_since');
INSERT INTO shelf VALUES (6, 'new 6');
SELECT streaming.run('shelf_all');
SELECT streaming.run('shelf_since');
SELECT * FROM shelf_all ORDER BY id;
SELECT * FROM shelf_since ORDER BY id;
SELECT batch_id, input_rows, sources->0->'snapshot_rows' AS snapshot_rows
  FROM streaming.progress WHERE query = 'shelf_all' ORDER BY batch_id;
-- the snapshot is recorded with the first batch's position
SELECT count(*) FILTER (WHERE partition LIKE 'snapshot\_%') > 2 AS snapshot_recorded
  FROM streaming.offsets WHERE query = 'shelf_all';
-- reset_query reads the table again, under a new snapshot, then the
-- changes after it (the delete is not followed: changes "insert")
DELETE FROM shelf WHERE id = 2;
SELECT streaming.reset_query('shelf_all');
SELECT streaming.run('shelf_all');
INSERT INTO shelf VALUES (7, 'after the reset');
SELECT streaming.run('shelf_all');
SELECT * FROM shelf_all ORDER BY id;
SELECT (SELECT count(*) FROM shelf_all) AS result_rows, (SELECT count(*) FROM shelf) AS table_rows,
       (SELECT count(*) FROM (SELECT * FROM shelf EXCEPT ALL SELECT * FROM shelf_all) x) AS missing;
-- a first batch in a transaction that wrote to the table before it: the
-- snapshot leaves out that transaction's rows, which the stream reads
-- once it commits
BEGIN;
INSERT INTO shelf VALUES (8, 'before the run, in its transaction');
SELECT streaming.reset_query('shelf_all');
SELECT streaming.run('shelf_all');
INSERT INTO shelf VALUES (9, 'after the run, in its transaction');
COMMIT;
SELECT streaming.run('shelf_all');
SELECT (SELECT count(*) FROM shelf_all) AS result_rows, (SELECT count(*) FROM shelf) AS table_rows,
       (SELECT count(*) FROM (SELECT * FROM shelf EXCEPT ALL SELECT * FROM shelf_all) x) AS missing,
       (SELECT count(*) FROM (SELECT * FROM shelf_all EXCEPT ALL SELECT * FROM shelf) x) AS extra;
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.shelf", "snapshot": "maybe"}');
SELECT streaming.drop_query('shelf_all'), streaming.drop_query('shelf_since');
SELECT streaming.drop_source('shelf_s'), streaming.drop_source('shelf_new');
DROP TABLE shelf;

-- event times straight from a table's rows: an infinite one has no window
-- and no watermark can be taken from it, so its row is a dead letter; a
-- delay that reaches past the earliest timestamptz leaves the query
-- without a watermark (no row is late), and one beyond 64 bits of
-- microseconds is refused
CREATE TABLE ticks (id int, ts timestamptz);
SELECT streaming.create_source('ticks_s', 'table', options => '{"table": "public.ticks"}');
SELECT streaming.create_query('tick_windows',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM ticks_s GROUP BY 1$$,
         output_mode => 'update', event_time => 'ts', watermark => '1 minute');
SELECT streaming.create_query('tick_far',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM ticks_s GROUP BY 1$$,
         output_mode => 'update', event_time => 'ts', watermark => '100000000 days');
SELECT streaming.create_query('tick_never',
         $$SELECT streaming.window(ts, '1 minute') AS w, count(*) AS n FROM ticks_s GROUP BY 1$$,
         output_mode => 'update', event_time => 'ts', watermark => '200000000 days');
SELECT streaming.run('tick_windows');
SELECT streaming.run('tick_far');
INSERT INTO ticks VALUES (1, '2024-01-01 00:00:10+00'), (2, '-infinity'), (3, '2024-01-01 00:01:30+00');
SELECT streaming.run('tick_windows');
SELECT streaming.run('tick_far');
INSERT INTO ticks VALUES (4, '2024-01-01 00:00:20+00');
SELECT streaming.run('tick_windows');
SELECT streaming.run('tick_far');
SELECT 'tick_windows' AS query, * FROM tick_windows UNION ALL SELECT 'tick_far', * FROM tick_far ORDER BY 1, 2;
SELECT query, position, error FROM streaming.dead_letters WHERE query LIKE 'tick%' ORDER BY 1;
SELECT name, watermark, late_rows_total FROM streaming.queries WHERE name LIKE 'tick%' ORDER BY 1;
SELECT name, state, event_time_lag IS NOT NULL AS lag FROM streaming.status WHERE name LIKE 'tick%' ORDER BY 1;
SELECT streaming.drop_query('tick_windows');
SELECT streaming.drop_query('tick_far');
SELECT streaming.drop_source('ticks_s');
DROP TABLE ticks;

-- run() in a transaction that has written cannot create a slot
SELECT streaming.create_query('late', $$SELECT id FROM orders_small$$);
BEGIN;
INSERT INTO orders VALUES (200, 'x', 1, NULL);
SELECT streaming.run('late');
ROLLBACK;

-- drop_query drops the query's slot
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%';
SELECT streaming.drop_query('late');
SELECT streaming.drop_query('ids');
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%';
-- ... when its transaction commits
BEGIN;
SELECT streaming.drop_query('copied');
ROLLBACK;
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%';

-- bad definitions
SELECT streaming.create_source('bad', 'table', options => '{}');
SELECT streaming.create_source('bad', 'table', options => '{"table": "orders"}');
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.nosuch"}');
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.orders", "changes": "all"}');
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.orders", "colour": "red"}');
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.orders", "max_rows_per_trigger": 0}');
SELECT streaming.create_source('bad', 'table', 'id int, name int', '{"table": "public.orders"}');
SELECT streaming.create_source('bad', 'table', 'id int, colour text', '{"table": "public.orders"}');
CREATE VIEW orders_v AS SELECT * FROM orders;
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.orders_v"}');
CREATE UNLOGGED TABLE scratch (id int);
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.scratch"}');
CREATE TABLE parted (id int) PARTITION BY RANGE (id);
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.parted"}');
SELECT streaming.create_source('bad', 'table', options => '{"table": "pg_catalog.pg_class"}');
-- row-level security: decoding would bypass the policies
CREATE TABLE secret (id int, owner text);
ALTER TABLE secret ENABLE ROW LEVEL SECURITY;
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.secret"}');
-- the creator needs REPLICATION (a slot keeps WAL, and slots are few, as
-- PostgreSQL reserves them to such roles) and SELECT on the table
CREATE ROLE regress_table_user;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_table_user;
GRANT CREATE ON SCHEMA public TO regress_table_user;
GRANT SELECT ON orders TO regress_table_user;
SET ROLE regress_table_user;
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.orders"}');
RESET ROLE;
REVOKE SELECT ON orders FROM regress_table_user;
ALTER ROLE regress_table_user REPLICATION;
SET ROLE regress_table_user;
SELECT streaming.create_source('bad', 'table', options => '{"table": "public.orders"}');
RESET ROLE;
-- ... and the source's owner, at every batch (sources read as their owner)
GRANT SELECT ON orders TO regress_table_user;
SET ROLE regress_table_user;
SELECT streaming.create_source('mine', 'table', options => '{"table": "public.orders"}');
SELECT streaming.create_query('mine_q', $$SELECT id FROM mine$$);
SELECT streaming.run('mine_q');
RESET ROLE;
REVOKE SELECT ON orders FROM regress_table_user;
INSERT INTO orders VALUES (300, 'x', 1, NULL);
SET ROLE regress_table_user;
SELECT streaming.run('mine_q');
SELECT streaming.drop_query('mine_q');
SELECT streaming.drop_source('mine');
RESET ROLE;

SELECT streaming.drop_query('by_name');
SELECT streaming.drop_query('copied');
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%';
SELECT streaming.drop_source('orders_small');
SELECT streaming.drop_source('orders_s');
DROP VIEW orders_v;
DROP TABLE orders, scratch, parted, secret;
REVOKE ALL ON SCHEMA public FROM regress_table_user;
REVOKE USAGE ON FOREIGN SERVER streaming FROM regress_table_user;
DROP ROLE regress_table_user;
DROP EXTENSION streaming;
