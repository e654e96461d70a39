-- A stateless query writes its rows into its result table as COPY FROM
-- does (a page's rows at a time), when nothing could tell that from its
-- INSERT: an ordinary table without triggers, rules or row-level security,
-- whose columns are the query's.  Otherwise the INSERT runs.  Either way the
-- rows, the index entries and the errors are an INSERT's.
CREATE EXTENSION streaming;
CREATE EXTENSION pg_walinspect;
CREATE EXTENSION amcheck;
SET streaming.autostart = off;
-- the WAL a batch writes is flushed at its commit, for pg_walinspect to read
SET synchronous_commit = on;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/bulk_insert && mkdir -p /tmp/streaming_regress/bulk_insert/a /tmp/streaming_regress/bulk_insert/b';
SELECT streaming.create_source('bi_src', 'file', 'id int, v text',
         '{"path": "/tmp/streaming_regress/bulk_insert/a", "format": "csv"}');
SELECT streaming.create_source('bi_bad', 'file', 'id int, v text',
         '{"path": "/tmp/streaming_regress/bulk_insert/b", "format": "csv"}');

-- the WAL records of one kind that wrote to a table since an LSN
CREATE FUNCTION wal_records(t regclass, since pg_lsn, kind text) RETURNS bigint
LANGUAGE sql AS $$
  SELECT count(*) FROM pg_get_wal_records_info_till_end_of_wal(since)
   WHERE record_type LIKE kind || '%'
     AND block_ref ~ ('rel \d+/\d+/' || pg_relation_filenode(t) || ' ')
$$;
-- a file of rows n..m in directory dir: id, 'row <id>'; every 50th id a
-- long value (toasted)
CREATE FUNCTION feed(dir text, n int, m int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format($c$COPY (SELECT i, CASE WHEN i %% 50 = 0 THEN repeat('long ' || i, 2000) ELSE 'row ' || i END
                          FROM generate_series(%s, %s) i)
                   TO '/tmp/streaming_regress/bulk_insert/%s/%s.csv' WITH (FORMAT csv)$c$, n, m, dir, n);
END $$;
-- rows n..m of a table that differ from those fed, both ways
CREATE FUNCTION differ(t regclass, n int, m int) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE d bigint;
BEGIN
  EXECUTE format($c$SELECT count(*) FROM (
    (SELECT id, v FROM %s WHERE id BETWEEN %s AND %s EXCEPT ALL
     SELECT i, CASE WHEN i %% 50 = 0 THEN repeat('long ' || i, 2000) ELSE 'row ' || i END FROM generate_series(%s, %s) i)
    UNION ALL
    (SELECT i, CASE WHEN i %% 50 = 0 THEN repeat('long ' || i, 2000) ELSE 'row ' || i END FROM generate_series(%s, %s) i
     EXCEPT ALL SELECT id, v FROM %s WHERE id BETWEEN %s AND %s)) d$c$, t, n, m, n, m, n, m, t, n, m) INTO d;
  RETURN d;
END $$;

-- an ordinary table with an index: written in bulk, one WAL record per
-- page of rows rather than one per row
SELECT streaming.create_query('bi_plain', 'SELECT id, v FROM bi_src');
CREATE INDEX bi_plain_v ON bi_plain (lower(v));
SELECT feed('a', 1, 3000);
SELECT pg_current_wal_flush_lsn() AS lsn \gset
SELECT streaming.run('bi_plain');
SELECT wal_records('bi_plain', :'lsn', 'MULTI_INSERT') > 0 AS bulk,
       wal_records('bi_plain', :'lsn', 'INSERT') AS row_records;
SELECT count(*) AS rows, differ('bi_plain', 1, 3000) AS differ FROM bi_plain;
-- every row has its index entry, and the long values their TOAST
SELECT bt_index_check('bi_plain_v', heapallindexed => true);
SELECT count(*) FROM bi_plain WHERE length(v) > 2000;
SET enable_seqscan = off;
SELECT id FROM bi_plain WHERE lower(v) = 'row 2999';
RESET enable_seqscan;
SELECT input_rows, sink_rows FROM streaming.progress WHERE query = 'bi_plain';

-- a CHECK constraint, NOT NULL and a unique index hold as for an INSERT:
-- the batch fails with the INSERT's error and writes nothing
SELECT streaming.create_query('bi_checked', 'SELECT id, v FROM bi_bad');
ALTER TABLE bi_checked ADD CONSTRAINT small CHECK (id < 3500);
SELECT feed('b', 1, 3000);
SELECT streaming.run('bi_checked');
SELECT feed('b', 3001, 3600);
SELECT streaming.run('bi_checked');
SELECT count(*) AS rows, differ('bi_checked', 1, 3000) AS differ FROM bi_checked;
ALTER TABLE bi_checked DROP CONSTRAINT small;
ALTER TABLE bi_checked ALTER COLUMN v SET NOT NULL;
COPY (SELECT 3601, NULL) TO '/tmp/streaming_regress/bulk_insert/b/3601.csv' WITH (FORMAT csv);
SELECT streaming.run('bi_checked');
SELECT count(*) FROM bi_checked;
ALTER TABLE bi_checked ALTER COLUMN v DROP NOT NULL;
CREATE UNIQUE INDEX bi_checked_id ON bi_checked (id);
COPY (SELECT i, 'dup' FROM generate_series(3602, 3603) i UNION ALL SELECT 3602, 'dup')
  TO '/tmp/streaming_regress/bulk_insert/b/3602.csv' WITH (FORMAT csv);
SELECT streaming.run('bi_checked');
SELECT count(*) FROM bi_checked;
SELECT bt_index_check('bi_checked_id', heapallindexed => true);
-- without the duplicate, the batch lands whole
COPY (SELECT i, 'dup' FROM generate_series(3602, 3603) i)
  TO '/tmp/streaming_regress/bulk_insert/b/3602.csv' WITH (FORMAT csv);
SELECT streaming.run('bi_checked');
SELECT count(*) AS rows, differ('bi_checked', 1, 3600) AS differ FROM bi_checked;
SELECT id, v FROM bi_checked WHERE id > 3600 ORDER BY id;
SELECT bt_index_check('bi_checked_id', heapallindexed => true);

-- what would tell a bulk write from an INSERT makes the INSERT run
CREATE FUNCTION bi_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bi_counted SET n = n + 1;
  RETURN NEW;
END $$;
CREATE TABLE bi_counted (n int);
INSERT INTO bi_counted VALUES (0);
-- a row trigger fires once per row
SELECT streaming.create_query('bi_trig', 'SELECT id, v FROM bi_src');
CREATE TRIGGER bi_trig_count BEFORE INSERT ON bi_trig FOR EACH ROW EXECUTE FUNCTION bi_count();
-- a column added with a default gets it
SELECT streaming.create_query('bi_wider', 'SELECT id, v FROM bi_src');
ALTER TABLE bi_wider ADD COLUMN note text DEFAULT 'added';
-- a column of a narrower type gets the INSERT's coercion (and error)
SELECT streaming.create_query('bi_narrow', 'SELECT id, v FROM bi_src WHERE id <= 10');
ALTER TABLE bi_narrow ALTER COLUMN v TYPE varchar(5);
-- row-level security, a rule, an identity column
SELECT streaming.create_query('bi_rls', 'SELECT id, v FROM bi_src');
ALTER TABLE bi_rls ENABLE ROW LEVEL SECURITY;
SELECT streaming.create_query('bi_ruled', 'SELECT id, v FROM bi_src');
CREATE TABLE bi_ruled_log (id int);
CREATE RULE bi_ruled_also AS ON INSERT TO bi_ruled DO ALSO INSERT INTO bi_ruled_log VALUES (NEW.id);
SELECT streaming.create_query('bi_ident', 'SELECT id, v FROM bi_src');
ALTER TABLE bi_ident ALTER COLUMN id SET NOT NULL;
ALTER TABLE bi_ident ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY;
SELECT pg_current_wal_flush_lsn() AS lsn \gset
SELECT streaming.run(q) FROM unnest(ARRAY['bi_trig', 'bi_wider', 'bi_rls', 'bi_ruled', 'bi_ident']) q;
SELECT streaming.run('bi_narrow');
SELECT t, wal_records(t, :'lsn', 'MULTI_INSERT') AS bulk_records, wal_records(t, :'lsn', 'INSERT') > 0 AS row_records
  FROM unnest(ARRAY['bi_trig', 'bi_wider', 'bi_rls', 'bi_ruled', 'bi_ident']::regclass[]) t;
SELECT n FROM bi_counted;
SELECT count(*) AS rows, differ('bi_trig', 1, 3000) AS differ FROM bi_trig;
SELECT note, count(*) FROM bi_wider GROUP BY note;
SELECT count(*) AS rows, differ('bi_rls', 1, 3000) AS differ FROM bi_rls;
SELECT count(*) AS logged FROM bi_ruled_log;
SELECT count(*) AS rows FROM bi_ident;
SELECT count(*) FROM bi_narrow;
ALTER TABLE bi_narrow ALTER COLUMN v TYPE varchar(6);
SELECT streaming.run('bi_narrow');
SELECT id, v FROM bi_narrow ORDER BY id;
-- a column renamed: the INSERT names it, and fails
SELECT streaming.create_query('bi_renamed', 'SELECT id, v FROM bi_src WHERE id <= 10');
ALTER TABLE bi_renamed RENAME COLUMN v TO w;
SELECT streaming.run('bi_renamed');
SELECT count(*) FROM bi_renamed;

-- the owner who may no longer insert gets the INSERT's error
CREATE ROLE regress_bi_owner LOGIN;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_bi_owner;
GRANT CREATE ON SCHEMA public TO regress_bi_owner;
GRANT pg_read_server_files TO regress_bi_owner;
SET ROLE regress_bi_owner;
SELECT streaming.create_source('bi_src2', 'file', 'id int, v text',
         '{"path": "/tmp/streaming_regress/bulk_insert/a", "format": "csv"}');
SELECT streaming.create_query('bi_owned', 'SELECT id, v FROM bi_src2 WHERE id <= 5');
REVOKE INSERT ON bi_owned FROM regress_bi_owner;
SELECT streaming.run('bi_owned');
GRANT INSERT ON bi_owned TO regress_bi_owner;
SELECT streaming.run('bi_owned');
SELECT count(*) FROM bi_owned;
RESET ROLE;
-- a table elsewhere (sink_options.table) that the owner may insert into
-- but not read: a CHECK's error shows the row inserted, as the INSERT's
-- does; and once the owner may no longer use its schema, the INSERT's
-- error
CREATE SCHEMA bi_other;
CREATE TABLE bi_other.sink (id int CHECK (id <> 3), v text);
GRANT USAGE ON SCHEMA bi_other TO regress_bi_owner;
GRANT INSERT ON bi_other.sink TO regress_bi_owner;
SET ROLE regress_bi_owner;
SELECT streaming.create_query('bi_elsewhere', 'SELECT id, v FROM bi_src2 WHERE id <= 5',
         sink_options => '{"table": "bi_other.sink"}');
SELECT streaming.run('bi_elsewhere');
RESET ROLE;
ALTER TABLE bi_other.sink DROP CONSTRAINT sink_id_check;
REVOKE USAGE ON SCHEMA bi_other FROM regress_bi_owner;
SET ROLE regress_bi_owner;
SELECT streaming.run('bi_elsewhere');
RESET ROLE;
SELECT count(*) FROM bi_other.sink;
GRANT USAGE ON SCHEMA bi_other TO regress_bi_owner;
SET ROLE regress_bi_owner;
SELECT streaming.run('bi_elsewhere');
RESET ROLE;
SELECT count(*) AS rows, differ('bi_other.sink', 1, 5) AS differ FROM bi_other.sink;

-- the SELECT whose rows are written in bulk is not planned in parallel,
-- as the INSERT is not: the rows are written while it runs, and a
-- function that a constraint calls (here a volatile one behind a stable
-- one) could run no statement in a parallel operation
CREATE TABLE bi_allowed AS SELECT generate_series(1, 10000) AS id;
ANALYZE bi_allowed;
CREATE FUNCTION bi_lookup(i int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  RETURN EXISTS (SELECT 1 WHERE i > 0);
END $$;
CREATE FUNCTION bi_is_allowed(i int) RETURNS bool LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN bi_lookup(i);
END $$;
SELECT streaming.create_query('bi_par',
         'SELECT id, v FROM bi_src WHERE id <= (SELECT max(id) FROM bi_allowed) AND id <= 100');
ALTER TABLE bi_par ADD CONSTRAINT allowed CHECK (bi_is_allowed(id));
SELECT plan->>'input' AS par_input FROM streaming.queries WHERE name = 'bi_par' \gset
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
-- the SELECT alone would be
EXPLAIN (COSTS OFF) SELECT * FROM :par_input;
SELECT pg_current_wal_flush_lsn() AS lsn \gset
SELECT streaming.run('bi_par');
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT wal_records('bi_par', :'lsn', 'MULTI_INSERT') > 0 AS bulk;
SELECT count(*) AS rows, differ('bi_par', 1, 100) AS differ FROM bi_par;

-- a volatile function the query calls may read the result table, and see
-- there the rows the batch wrote before, as the INSERT writes each row
-- before the next is read: the INSERT runs (here, only the first row of
-- each key passes)
CREATE FUNCTION bi_unseen(k int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM bi_firsts WHERE id = k);
END $$;
SELECT streaming.create_query('bi_firsts', 'SELECT id % 7 AS id, v FROM bi_src WHERE id <= 100 AND bi_unseen(id % 7)');
SELECT streaming.run('bi_firsts');
SELECT id, v FROM bi_firsts ORDER BY id;
-- (as through a view it reads)
CREATE VIEW bi_keys AS SELECT k FROM generate_series(0, 6) k WHERE random() >= 0;
SELECT streaming.create_query('bi_viewed', 'SELECT s.id, s.v FROM bi_src s JOIN bi_keys ON k = s.id % 7 WHERE s.id <= 100');
SELECT pg_current_wal_flush_lsn() AS lsn \gset
SELECT streaming.run('bi_viewed');
SELECT wal_records('bi_viewed', :'lsn', 'MULTI_INSERT') AS bulk_records,
       wal_records('bi_viewed', :'lsn', 'INSERT') > 0 AS row_records;
SELECT count(*) AS rows, differ('bi_viewed', 1, 100) AS differ FROM bi_viewed;
-- so may a CHECK constraint's (here, the second row of a key fails)
CREATE FUNCTION bi_first_of(k int) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
  RETURN NOT EXISTS (SELECT 1 FROM bi_keyed WHERE id = k);
END $$;
SELECT streaming.create_query('bi_keyed', 'SELECT id % 7 AS id, v FROM bi_src WHERE id <= 20');
ALTER TABLE bi_keyed ADD CONSTRAINT first CHECK (bi_first_of(id));
SELECT streaming.run('bi_keyed');
SELECT count(*) FROM bi_keyed;

-- a query planned by an earlier version without an input view, whose plan
-- is not upgraded (simulated: its text is not what it would be planned
-- as now), runs its INSERT as before
SELECT streaming.create_query('bi_old', 'SELECT id, v FROM bi_src WHERE id <= 5');
SELECT plan->>'input' AS old_view FROM streaming.queries WHERE name = 'bi_old' \gset
UPDATE streaming.queries
   SET plan = (plan - 'input' - 'batch_fingerprint' - 'close_fingerprint') || jsonb_build_object('query', (plan->>'query') || ' ')
 WHERE name = 'bi_old';
DROP VIEW :old_view;
SELECT streaming.run('bi_old');
SELECT plan ? 'input' AS has_view FROM streaming.queries WHERE name = 'bi_old';
SELECT count(*) AS rows, differ('bi_old', 1, 5) AS differ FROM bi_old;

SELECT streaming.drop_query(q) FROM unnest(ARRAY['bi_plain', 'bi_checked', 'bi_trig', 'bi_wider', 'bi_narrow',
  'bi_rls', 'bi_ruled', 'bi_ident', 'bi_renamed', 'bi_owned', 'bi_elsewhere', 'bi_par', 'bi_firsts', 'bi_keyed',
  'bi_viewed', 'bi_old']) q;
SELECT streaming.drop_source(s) FROM unnest(ARRAY['bi_src', 'bi_bad', 'bi_src2']) s;
DROP VIEW bi_keys;
DROP TABLE bi_counted, bi_ruled_log, bi_allowed, bi_other.sink;
DROP SCHEMA bi_other;
DROP FUNCTION wal_records, feed, differ, bi_count, bi_is_allowed, bi_lookup, bi_unseen, bi_first_of;
DROP OWNED BY regress_bi_owner;
DROP ROLE regress_bi_owner;
DROP EXTENSION streaming;
DROP EXTENSION pg_walinspect;
DROP EXTENSION amcheck;
