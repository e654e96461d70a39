/* streaming--0.1--0.2.sql: the security model (see README, "Roles and privileges") */

\echo Use "ALTER EXTENSION streaming UPDATE TO '0.2'" to load this file. \quit

/* ------------------------------------------------------------------------
 * A query's batches run under the search_path pinned when it was created,
 * as a function runs under its SET search_path.  Queries created before
 * this version had their statements stored without qualified operators:
 * they run under the catalog's path, where nobody can define anything.
 * ------------------------------------------------------------------------ */

ALTER TABLE streaming.queries ADD COLUMN search_path text;
UPDATE streaming.queries SET search_path = 'pg_catalog, pg_temp';
ALTER TABLE streaming.queries ALTER COLUMN search_path SET NOT NULL;

/* ------------------------------------------------------------------------
 * Catalog rows are visible to their owner (and to the roles that have the
 * owner's privileges, and superusers) only: query texts, errors, payloads
 * of dead letters and the options of sources may hold what others must not
 * read.  The extension's functions write the catalog as its owner, which
 * row-level security does not restrict.
 * ------------------------------------------------------------------------ */

ALTER TABLE streaming.queries ENABLE ROW LEVEL SECURITY;
CREATE POLICY queries_owner ON streaming.queries FOR SELECT
    USING (pg_catalog.pg_has_role(owner::pg_catalog.oid, 'USAGE'));

ALTER TABLE streaming.sources ENABLE ROW LEVEL SECURITY;
CREATE POLICY sources_owner ON streaming.sources FOR SELECT
    USING (pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c
                                    WHERE c.oid OPERATOR(pg_catalog.=) relid::pg_catalog.oid),
                                  'USAGE'));

-- the rows of a query: visible with the query (queries has a column
-- "query" too, hence the qualified names)
ALTER TABLE streaming.offsets ENABLE ROW LEVEL SECURITY;
CREATE POLICY offsets_owner ON streaming.offsets FOR SELECT
    USING (EXISTS (SELECT 1 FROM streaming.queries q WHERE q.name OPERATOR(pg_catalog.=) offsets.query));

ALTER TABLE streaming.progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY progress_owner ON streaming.progress FOR SELECT
    USING (EXISTS (SELECT 1 FROM streaming.queries q WHERE q.name OPERATOR(pg_catalog.=) progress.query));

ALTER TABLE streaming.dead_letters ENABLE ROW LEVEL SECURITY;
CREATE POLICY dead_letters_owner ON streaming.dead_letters FOR SELECT
    USING (EXISTS (SELECT 1 FROM streaming.queries q WHERE q.name OPERATOR(pg_catalog.=) dead_letters.query));

ALTER TABLE streaming.sink_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY sink_files_owner ON streaming.sink_files FOR SELECT
    USING (EXISTS (SELECT 1 FROM streaming.queries q WHERE q.name OPERATOR(pg_catalog.=) sink_files.query));

/* ------------------------------------------------------------------------
 * The views read the catalog with the rights of whoever reads them.  A
 * query's worker is the backend whose pid the query's row holds (or one
 * still starting under the query's name): application names are cut at
 * 63 bytes, so a long query name alone does not find it.
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE VIEW streaming.status WITH (security_invoker = true) AS
SELECT q.name,
       CASE WHEN q.status OPERATOR(pg_catalog.=) 'running' AND w.pid IS NULL
                 AND q.restart_at OPERATOR(pg_catalog.>) pg_catalog.now() THEN 'restarting'
            WHEN q.status OPERATOR(pg_catalog.=) 'running' AND w.pid IS NULL THEN 'starting'
            ELSE q.status END AS state,
       q.enabled,
       w.pid AS worker_pid,
       q.trigger,
       q.last_batch_id,
       q.last_progress_at,
       pg_catalog.now() OPERATOR(pg_catalog.-) q.last_progress_at AS since_last_progress,
       q.watermark,
       q.state_rows,
       r.batches AS recent_batches,
       r.input_rows AS recent_input_rows,
       r.input_rows_per_second,
       r.processed_rows_per_second,
       q.condition,
       q.restarts,
       q.restart_at,
       q.last_error
  FROM streaming.queries q
  LEFT JOIN LATERAL (
        SELECT a.pid FROM pg_catalog.pg_stat_activity a
         WHERE a.datid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d
                                               WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
           AND a.backend_type OPERATOR(pg_catalog.=) 'streaming query'
           AND (a.pid OPERATOR(pg_catalog.=) q.worker_pid
                OR a.application_name OPERATOR(pg_catalog.=) ('streaming query ' OPERATOR(pg_catalog.||) q.name))
         ORDER BY (a.pid OPERATOR(pg_catalog.=) q.worker_pid) DESC NULLS LAST
         LIMIT 1) w ON true
  LEFT JOIN LATERAL (
        SELECT pg_catalog.count(*) AS batches, pg_catalog.sum(p.input_rows) AS input_rows,
               pg_catalog.avg(p.input_rows_per_second) AS input_rows_per_second,
               pg_catalog.avg(p.processed_rows_per_second) AS processed_rows_per_second
          FROM (SELECT * FROM streaming.progress p
                 WHERE p.query OPERATOR(pg_catalog.=) q.name ORDER BY p.batch_id DESC LIMIT 10) p) r ON true;

ALTER VIEW streaming.kafka_lag SET (security_invoker = true);

/* ------------------------------------------------------------------------
 * The event trigger's function runs as the extension's owner in any
 * session that drops something: nothing in it may resolve to an object of
 * that session (pg_temp last, every name qualified).
 * ------------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION streaming.on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM streaming.sources s
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid
       AND d.objid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid;
END
$$;
