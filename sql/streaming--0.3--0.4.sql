/* streaming--0.3--0.4.sql: rebuilding a query from a chosen position, a new SELECT that keeps the state (see README, "reset_query", "alter_query") */

\echo Use "ALTER EXTENSION streaming UPDATE TO '0.4'" to load this file. \quit

/* ------------------------------------------------------------------------
 * reset_query(name [, start_from]): start_from is 'earliest', a time, or
 * the offsets to start after, as jsonb.  ("from" is a reserved word, which
 * named notation cannot use unquoted.)  The text variant takes all three
 * written as text and is the one reset_query('q') calls; the timestamptz
 * and jsonb variants take typed values.  Without start_from, the sources
 * start where a new query would, as in 0.3.
 * ------------------------------------------------------------------------ */

DROP FUNCTION streaming.reset_query(text);

CREATE FUNCTION streaming.reset_query(name text, start_from text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'streaming_reset_query'
LANGUAGE C;

CREATE FUNCTION streaming.reset_query(name text, start_from timestamptz)
RETURNS void
AS 'MODULE_PATHNAME', 'streaming_reset_query'
LANGUAGE C;

CREATE FUNCTION streaming.reset_query(name text, start_from jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'streaming_reset_query'
LANGUAGE C;

/* ------------------------------------------------------------------------
 * alter_query(..., query, output_mode, sink_options): a new SELECT that
 * keeps the same state, its result computed again from the state; update
 * and complete modes exchanged; sink options that are not structural.  New
 * arguments with defaults: the 0.3 function is replaced, or calls would be
 * ambiguous.
 * ------------------------------------------------------------------------ */

DROP FUNCTION streaming.alter_query(text, text, interval, timestamptz, text);

CREATE FUNCTION streaming.alter_query(
    name         text,
    trigger      text        DEFAULT NULL,
    watermark    interval    DEFAULT NULL,
    watermark_at timestamptz DEFAULT NULL,
    on_error     text        DEFAULT NULL,
    query        text        DEFAULT NULL,
    output_mode  text        DEFAULT NULL,
    sink_options jsonb       DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'streaming_alter_query'
LANGUAGE C;
