/* streaming--0.4--0.5.sql: see the README's sections on watermarks over several sources and on joins between streams */

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
