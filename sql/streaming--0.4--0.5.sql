/* streaming--0.4--0.5.sql: see the README's sections on watermarks over several sources, on joins between streams and on the table source */

\echo Use "ALTER EXTENSION streaming UPDATE TO '0.5'" to load this file. \quit

/* ------------------------------------------------------------------------
 * Watermarks over several sources: each source's largest event time and
 * watermark, written in the transaction of the batch that moved them, so
 * that a restart goes on with them.  The query's watermark is the least
 * watermark of its sources that have read an event time (Spark's
 * WatermarkTracker with its default policy, min).
 * ------------------------------------------------------------------------ */

CREATE TABLE streaming.source_watermarks (
    query          text        NOT NULL REFERENCES streaming.queries (name)
                               ON UPDATE CASCADE ON DELETE CASCADE,
    source         regclass    NOT NULL,
    max_event_time timestamptz NOT NULL,
    watermark      timestamptz NOT NULL,
    batch_id       bigint      NOT NULL,
    PRIMARY KEY (query, source)
);

SELECT pg_catalog.pg_extension_config_dump('streaming.source_watermarks', '');
GRANT SELECT ON streaming.source_watermarks TO PUBLIC;

ALTER TABLE streaming.source_watermarks ENABLE ROW LEVEL SECURITY;
CREATE POLICY source_watermarks_owner ON streaming.source_watermarks FOR SELECT
    USING (EXISTS (SELECT 1 FROM streaming.queries q
                    WHERE q.name OPERATOR(pg_catalog.=) source_watermarks.query));

/* ------------------------------------------------------------------------
 * Table sources: slot health.  The status view's condition also says when
 * a query's replication slot falls behind (pg_replication_slots.wal_status
 * 'extended'), is about to lose WAL it needs ('unreserved') or has lost it
 * ('lost'), whether or not the query runs.  The same columns as 0.4.
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
       COALESCE(sl.condition, q.condition) AS condition,
       q.restarts,
       q.restart_at,
       q.last_error,
       CASE WHEN w.pid IS NULL THEN NULL
            WHEN w.state OPERATOR(pg_catalog.=) 'active'
                 AND pg_catalog.now() OPERATOR(pg_catalog.-) w.query_start OPERATOR(pg_catalog.>) t.stuck_after THEN 'stuck'
            WHEN w.state OPERATOR(pg_catalog.=) 'active' THEN 'processing'
            WHEN l.backlog OPERATOR(pg_catalog.>) 0
                 AND pg_catalog.now() OPERATOR(pg_catalog.-) q.last_progress_at OPERATOR(pg_catalog.>) t.stuck_after THEN 'stuck'
            WHEN q.last_progress_at IS NULL
                 OR pg_catalog.now() OPERATOR(pg_catalog.-) q.last_progress_at OPERATOR(pg_catalog.>) t.idle_after THEN 'idle'
            ELSE 'waiting' END AS activity,
       CASE WHEN w.state OPERATOR(pg_catalog.=) 'active'
            THEN pg_catalog.now() OPERATOR(pg_catalog.-) w.query_start END AS batch_running_for,
       l.backlog,
       l.last_batch_ms,
       q.watermark_delay,
       q.closed_until,
       pg_catalog.now() OPERATOR(pg_catalog.-) (q.watermark OPERATOR(pg_catalog.+) q.watermark_delay) AS event_time_lag,
       q.input_rows_total,
       q.late_rows_total,
       q.dead_letters_total,
       q.sink_rows_total,
       CASE WHEN q.state_table IS NOT NULL OR (q.plan OPERATOR(pg_catalog.?) 'join_states')
            THEN COALESCE(pg_catalog.pg_total_relation_size(q.state_table), 0)
                 OPERATOR(pg_catalog.+) COALESCE(pg_catalog.pg_total_relation_size(
                        pg_catalog.to_regclass(q.plan OPERATOR(pg_catalog.->>) 'distinct_table')), 0)
                 OPERATOR(pg_catalog.+) COALESCE((SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(pg_catalog.to_regclass(j.t)))
                        FROM pg_catalog.jsonb_array_elements_text(q.plan OPERATOR(pg_catalog.->) 'join_states') AS j(t)), 0)::pg_catalog.int8
            END AS state_bytes,
       CASE WHEN q.status OPERATOR(pg_catalog.=) 'failed'
            THEN (SELECT pg_catalog.max(e.occurred_at) FROM streaming.errors e
                   WHERE e.query OPERATOR(pg_catalog.=) q.name AND e.kind OPERATOR(pg_catalog.=) 'failed') END AS failed_at,
       (SELECT pg_catalog.jsonb_object_agg(src.name, pg_catalog.pg_stat_get_live_tuples(pg_catalog.to_regclass(st.name)))
          FROM pg_catalog.jsonb_array_elements_text(q.plan OPERATOR(pg_catalog.->) 'join_sources') WITH ORDINALITY AS src(name, i)
          JOIN pg_catalog.jsonb_array_elements_text(q.plan OPERATOR(pg_catalog.->) 'join_states') WITH ORDINALITY AS st(name, i)
            ON st.i OPERATOR(pg_catalog.=) src.i) AS join_state_rows
  FROM streaming.queries q
  CROSS JOIN LATERAL (
        SELECT GREATEST(i OPERATOR(pg_catalog.*) 10,
                        COALESCE(pg_catalog.current_setting('streaming.stuck_after', true)::pg_catalog.interval,
                                 '1 minute'::pg_catalog.interval)) AS stuck_after,
               GREATEST(i OPERATOR(pg_catalog.*) 2, '1 second'::pg_catalog.interval) AS idle_after
          FROM (SELECT CASE WHEN q.trigger OPERATOR(pg_catalog.=) ANY (ARRAY['once', 'available_now'])
                            THEN '0'::pg_catalog.interval
                            ELSE q.trigger::pg_catalog.interval END AS i) ti) t
  LEFT JOIN LATERAL (
        SELECT a.pid, a.state, a.query_start FROM pg_catalog.pg_stat_activity a
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
                 WHERE p.query OPERATOR(pg_catalog.=) q.name ORDER BY p.batch_id DESC LIMIT 10) p) r ON true
  -- the query's replication slots (table sources) that fell behind or are lost
  LEFT JOIN LATERAL (
        SELECT pg_catalog.string_agg(pg_catalog.format(
                 CASE s.wal_status
                      WHEN 'lost' THEN 'replication slot %s of table source %s is lost: the server removed WAL it still needed (max_slot_wal_keep_size); the query cannot read the table any more'
                      WHEN 'unreserved' THEN 'replication slot %s of table source %s holds more WAL than max_slot_wal_keep_size: the next checkpoint removes WAL it still needs, and the slot is lost'
                      ELSE 'replication slot %s of table source %s is behind: it holds more WAL than max_wal_size' END,
                 s.slot_name,
                 pg_catalog.split_part(s.slot_name, '_', 4)::pg_catalog.oid::pg_catalog.regclass),
                 '; ' ORDER BY s.slot_name) COLLATE pg_catalog."default" AS condition
          FROM pg_catalog.pg_replication_slots s
         WHERE s.slot_name OPERATOR(pg_catalog.~~) pg_catalog.format('streaming\_%s\_%s\_%%',
                   (SELECT d.oid FROM pg_catalog.pg_database d
                     WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()), q.id)
           -- only the extension's names: the last part is the source's oid
           AND s.slot_name OPERATOR(pg_catalog.~) '^streaming_[0-9]+_[0-9]+_[0-9]+$'
           AND s.wal_status OPERATOR(pg_catalog.=) ANY (ARRAY['extended', 'unreserved', 'lost'])) sl ON true
  -- the last batch: its duration, and what its sources had beyond what it
  -- read, by their own count (Kafka offsets, socket lines), when they say
  LEFT JOIN LATERAL (
        SELECT (p.duration_ms OPERATOR(pg_catalog.->>) 'trigger_execution')::pg_catalog.float8 AS last_batch_ms,
               (SELECT pg_catalog.sum((o.value OPERATOR(pg_catalog.#>>) '{}')::pg_catalog.numeric
                                      OPERATOR(pg_catalog.-)
                                      (s.value OPERATOR(pg_catalog.->) 'end_offset' OPERATOR(pg_catalog.->>) o.key)::pg_catalog.numeric)::pg_catalog.int8
                  FROM pg_catalog.jsonb_array_elements(p.sources) s,
                       pg_catalog.jsonb_each(s.value OPERATOR(pg_catalog.->) 'latest_offset') o
                 WHERE pg_catalog.jsonb_typeof(s.value OPERATOR(pg_catalog.->) 'latest_offset') OPERATOR(pg_catalog.=) 'object') AS backlog
          FROM streaming.progress p
         WHERE p.query OPERATOR(pg_catalog.=) q.name
         ORDER BY p.batch_id DESC LIMIT 1) l ON true;

/* ------------------------------------------------------------------------
 * A source's catalog row goes with its foreign table only: the event
 * trigger also sees the columns dropped from a table (ALTER FOREIGN TABLE
 * ... DROP COLUMN), with the table's oid and their number as objsubid,
 * and took them for the source.
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
       AND d.objid OPERATOR(pg_catalog.=) s.relid::pg_catalog.oid
       AND d.objsubid OPERATOR(pg_catalog.=) 0;
END
$$;

/* ------------------------------------------------------------------------
 * One query on several workers: with parallelism N, the partitions of a
 * Kafka source (or the files of a file source) are split into N slices,
 * each read by batches of its own that pool workers run side by side.
 * A slice's batch locks the slice's row below for its whole length, and
 * the query's row FOR KEY SHARE (which stop(), alter_query(), reset_query()
 * and drop_query() wait for); it reads and decodes its input, then takes
 * the query's row FOR NO KEY UPDATE to merge, write and commit, one slice
 * at a time.  Which worker holds slice 0 is the query's worker_pid;
 * slices 1 .. N-1 are held here.  A slice's watermark is what its own
 * input moves the watermark to; while a slice is behind (its last batch
 * left input unread, or it has not run yet), the query's watermark does
 * not pass it: what one slice reads ahead does not make the other's rows
 * late.  The rows are made as needed: they are not dumped.
 * ------------------------------------------------------------------------ */

ALTER TABLE streaming.queries ADD COLUMN parallelism integer NOT NULL DEFAULT 1
    CONSTRAINT queries_parallelism_check CHECK (parallelism BETWEEN 1 AND 64);

CREATE TABLE streaming.query_slices (
    query      integer     NOT NULL REFERENCES streaming.queries (id) ON DELETE CASCADE,
    slice      integer     NOT NULL,
    worker_pid integer,
    restarts   integer     NOT NULL DEFAULT 0,
    restart_at timestamptz,
    watermark  timestamptz,
    drained    boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (query, slice)
);

GRANT SELECT ON streaming.query_slices TO PUBLIC;

ALTER TABLE streaming.query_slices ENABLE ROW LEVEL SECURITY;
CREATE POLICY query_slices_owner ON streaming.query_slices FOR SELECT
    USING (EXISTS (SELECT 1 FROM streaming.queries q
                    WHERE q.id OPERATOR(pg_catalog.=) query_slices.query));

DROP FUNCTION streaming.create_query(text, text, text, text, text, interval, text, jsonb, text, boolean);

CREATE FUNCTION streaming.create_query(
    name         text,
    query        text,
    output_mode  text     DEFAULT 'append',
    trigger      text     DEFAULT '0',
    event_time   text     DEFAULT NULL,
    watermark    interval DEFAULT NULL,
    sink         text     DEFAULT 'table',
    sink_options jsonb    DEFAULT '{}',
    on_error     text     DEFAULT 'dead_letter',
    start        boolean  DEFAULT true,
    parallelism  integer  DEFAULT 1)
RETURNS regclass
AS 'MODULE_PATHNAME', 'streaming_create_query'
LANGUAGE C;

DROP FUNCTION streaming.alter_query(text, text, interval, timestamptz, text, text, text, jsonb);

CREATE FUNCTION streaming.alter_query(
    name         text,
    trigger      text        DEFAULT NULL,
    watermark    interval    DEFAULT NULL,
    watermark_at timestamptz DEFAULT NULL,
    on_error     text        DEFAULT NULL,
    query        text        DEFAULT NULL,
    output_mode  text        DEFAULT NULL,
    sink_options jsonb       DEFAULT NULL,
    parallelism  integer     DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'streaming_alter_query'
LANGUAGE C;

DROP FUNCTION streaming.run(text, integer);

CREATE FUNCTION streaming.run(
    name        text,
    max_batches integer DEFAULT NULL,
    slice       integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'streaming_run'
LANGUAGE C;

-- the start of streaming.window(ts, size), the key of a windowed state
CREATE FUNCTION streaming.window_start(ts timestamptz, size interval)
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'streaming_window_start'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- the partial states of the micro-batch under way, for its batch statement
-- (a grouped query's large batch is aggregated in parts as it is decoded).
-- Stable: the same rows throughout a statement, which can then read them
-- where it groups them, not from a copy kept for a CTE.
CREATE FUNCTION streaming.batch_partials()
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'streaming_batch_partials'
LANGUAGE C STABLE;
