-- The security model, probed as the roles of a review: carol (LOGIN only),
-- alice and bob (what the README says a user needs, plus CREATE on public,
-- as a database owner has).  Every attempt below either fails safely or
-- runs as the role that made it; an attempt that ran with someone else's
-- rights would both print a WARNING "hijacked" and make its role a
-- superuser, which the checks after each part would show.
CREATE EXTENSION streaming;
SET streaming.autostart = off;
SET TimeZone = 'UTC';
SELECT current_user AS su \gset

CREATE ROLE regress_carol LOGIN;
CREATE ROLE regress_alice LOGIN;
CREATE ROLE regress_bob LOGIN;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_alice, regress_bob;
GRANT CREATE ON SCHEMA public TO regress_alice, regress_bob;

-- the payload of every attack: run as anyone but the attacker, escalate
-- the attacker, and say so
CREATE FUNCTION public.evil(v anyelement, attacker text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> attacker THEN
        RAISE WARNING 'hijacked: % ran code of %', current_user, attacker;
        EXECUTE format('ALTER ROLE %I SUPERUSER', attacker);
    END IF;
    RETURN true;
END $$;
GRANT EXECUTE ON FUNCTION public.evil(anyelement, text) TO PUBLIC;
CREATE VIEW escalated AS
  SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_%' AND rolsuper;
GRANT SELECT ON escalated TO PUBLIC;

-- every error of an attempt, as one line, so that the script goes on
CREATE FUNCTION sec_try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION sec_try(text) TO PUBLIC;

-- alice's query, for the others to attack
SET SESSION AUTHORIZATION regress_alice;
SELECT streaming.create_source('alice_ticks', 'rate',
         options => '{"rows_per_batch": 4, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('alice_sums',
         $$SELECT value % 2 AS parity, count(*) AS n, sum(value) AS total,
                  avg(value::float8) AS mean, var_samp(value::float8) AS var, stddev(value) AS sd
             FROM alice_ticks GROUP BY 1$$, output_mode => 'update');
SELECT streaming.run('alice_sums', 1);
RESET SESSION AUTHORIZATION;

-- 1. Types shadowed in pg_temp, which PostgreSQL searches first for types
--    and relations: a domain over each type the extension's statements
--    cast to or compare, whose check runs the payload.
\c - regress_carol
SET streaming.autostart = off;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['oid', 'text', 'jsonb', 'regclass', 'regrole', 'regprocedure',
                             'timestamptz', 'tstzrange', 'interval', 'int4', 'int8', 'numeric',
                             'float8', 'bool', 'bytea', 'name', 'xid', 'regnamespace'] LOOP
        EXECUTE format('CREATE DOMAIN pg_temp.%I AS pg_catalog.%I CHECK (public.evil(VALUE, %L))', t, t, current_user);
    END LOOP;
END $$;
-- and a temporary table named as each catalog table
CREATE TEMP TABLE queries (name text);
CREATE TEMP TABLE sources (relid oid);
CREATE TEMP TABLE pg_class (oid oid, relname name);
-- every entry point, as carol: each fails (she owns nothing), none runs her code
SELECT sec_try($$SELECT count(*) FROM streaming.explain('alice_sums')$$);
SELECT sec_try($$SELECT streaming.run('alice_sums')$$);
SELECT sec_try($$SELECT streaming.start('alice_sums')$$);
SELECT sec_try($$SELECT streaming.stop('alice_sums')$$);
SELECT sec_try($$SELECT streaming.drop_query('alice_sums')$$);
SELECT sec_try($$SELECT streaming.drop_source('alice_ticks')$$);
SELECT sec_try($$SELECT streaming.drop_query('nothing', if_exists => true)$$);
SELECT sec_try($$SELECT streaming.create_source('c', 'rate', options => '{"rows_per_batch": 1}')$$);
SELECT sec_try($$SELECT * FROM streaming.kafka_lag('alice_sums')$$);
SELECT sec_try($$SELECT count(*) FROM streaming.status$$);
SELECT sec_try($$SELECT count(*) FROM streaming.kafka_lag$$);
-- 2. the sql_drop event trigger, with regclass shadowed above
CREATE TEMP TABLE x ();
DROP TABLE x;
\c - :su
SET streaming.autostart = off;
SET TimeZone = 'UTC';
SELECT * FROM escalated;

-- the same as alice, whose calls succeed: every statement of create_query,
-- run, explain and the catalog runs with shadowed types in her pg_temp
\c - regress_alice
SET streaming.autostart = off;
SET TimeZone = 'UTC';
-- (not the types of her own source's columns, which she would only break for herself)
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['oid', 'text', 'jsonb', 'regclass', 'regrole', 'regprocedure',
                             'tstzrange', 'interval', 'int4', 'numeric',
                             'float8', 'bool', 'bytea', 'name', 'xid', 'regnamespace'] LOOP
        EXECUTE format('CREATE DOMAIN pg_temp.%I AS pg_catalog.%I CHECK (public.evil(VALUE, %L))', t, t, current_user);
    END LOOP;
END $$;
SELECT streaming.create_source('alice_more', 'rate',
         options => '{"rows_per_batch": 2, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('alice_windows',
         $$SELECT streaming.window("timestamp", '2 seconds') AS w, count(*) AS n, max(value) AS top
             FROM alice_more GROUP BY 1$$,
         output_mode => 'append', event_time => 'timestamp', watermark => '1 second');
SELECT count(*) > 0 AS explained FROM streaming.explain('alice_windows');
-- 5 batches of 2 rows, a second apart: the watermark (3 s) closes [0 s, 2 s)
SELECT streaming.run('alice_windows', 5), streaming.run('alice_sums', 1);
SELECT extract(epoch FROM lower(w))::int4 - 1704067200 AS w, n, top FROM alice_windows ORDER BY w;
SELECT streaming.drop_query('alice_windows');
SELECT streaming.drop_source('alice_more');
\c - :su
SET streaming.autostart = off;
SET TimeZone = 'UTC';
SELECT * FROM escalated;

-- 3. and 4. Operators and functions in public, a schema of everyone's
-- search_path, that match the extension's mixed-type arithmetic exactly
-- (float8 against bigint, numeric against bigint, xid against integer, ...)
-- or shadow the functions it calls: a superuser's query must not run them.
SET SESSION AUTHORIZATION regress_bob;
-- each operator computes what pg_catalog's would, so that a statement that
-- picked it runs on: only the payload shows
DO $$
DECLARE
    op text;
    sig text;
    ret text;
BEGIN
    FOREACH op IN ARRAY ARRAY['+', '-', '*', '/', '=', '<>', '<', '<=', '>', '>=', '||', '^', '->>'] LOOP
        FOREACH sig IN ARRAY ARRAY['float8, int8', 'int8, float8', 'numeric, int8', 'int8, numeric',
                                   'int8, int4', 'xid, int4', 'int4, int4', 'int8, int8', 'text, text',
                                   'tstzrange, timestamptz', 'timestamptz, timestamptz', 'jsonb, text',
                                   'float8, float8', 'numeric, numeric', 'name, text', 'float8, int4',
                                   'numeric, int4', 'timestamptz, interval', 'regclass, oid',
                                   'varchar, varchar'] LOOP
            ret := CASE WHEN op IN ('=', '<>', '<', '<=', '>', '>=') THEN 'boolean'
                        WHEN op IN ('||', '->>') THEN 'text'
                        WHEN sig LIKE '%timestamptz%' THEN 'timestamptz'
                        WHEN sig LIKE '%float8%' OR op = '^' THEN 'float8'
                        WHEN sig LIKE '%numeric%' THEN 'numeric'
                        WHEN sig LIKE '%int8%' THEN 'int8' ELSE 'int4' END;
            BEGIN
                EXECUTE format('CREATE FUNCTION public.op_%s(%s) RETURNS %s LANGUAGE sql AS %L',
                               md5(op || sig), sig, ret,
                               format('SELECT CASE WHEN public.evil(1, ''regress_bob'') THEN $1 OPERATOR(pg_catalog.%s) $2 END', op));
                EXECUTE format('CREATE OPERATOR public.%s (FUNCTION = public.op_%s, LEFTARG = %s, RIGHTARG = %s)',
                               op, md5(op || sig), split_part(sig, ', ', 1), split_part(sig, ', ', 2));
            EXCEPTION WHEN OTHERS THEN
                NULL;       -- not every operator name takes every pair
            END;
        END LOOP;
    END LOOP;
END $$;
CREATE FUNCTION public.upper(tstzrange) RETURNS timestamptz LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN pg_catalog.upper($1) END$$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN pg_catalog.now() END$$;
CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE sql
    AS $$SELECT pg_catalog.unnest($1) WHERE public.evil(1, 'regress_bob')$$;
SELECT count(*) > 50 AS operators_planted FROM pg_operator WHERE oprnamespace = 'public'::regnamespace;
RESET SESSION AUTHORIZATION;

-- a superuser's queries of every shape, run under the default search_path
SHOW search_path;
SELECT streaming.create_source('su_ticks', 'rate',
         options => '{"rows_per_batch": 5, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('su_stats',
         $$SELECT value % 3 AS k, count(*) AS n, sum(value) AS s, avg(value) AS a, avg(value::float8) AS af,
                  var_samp(value::float8) AS vf, var_pop(value) AS vn, stddev_samp(value::float8) AS sf,
                  min(value) AS lo, max(value) AS hi, bool_and(value > 0) AS all_pos
             FROM su_ticks GROUP BY 1$$, output_mode => 'complete');
SELECT streaming.create_query('su_windows',
         $$SELECT streaming.window("timestamp", '2 seconds') AS w, count(*) AS n, avg(value::float8) AS a
             FROM su_ticks GROUP BY 1$$,
         output_mode => 'append', event_time => 'timestamp', watermark => '1 second');
SELECT streaming.create_query('su_sessions',
         $$SELECT (value % 2)::varchar AS k, streaming.session_window("timestamp", '1500 milliseconds') AS s,
                  count(*) AS n
             FROM su_ticks GROUP BY 1, 2$$,
         output_mode => 'complete');
SELECT streaming.create_query('su_dedup',
         $$SELECT DISTINCT value % 4 AS k FROM su_ticks$$, output_mode => 'append');
-- and a file source, whose batches read the files they processed
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/security && mkdir -p /tmp/streaming_regress/security';
COPY (VALUES (1, 'a'), (2, 'b')) TO '/tmp/streaming_regress/security/1.csv' WITH (FORMAT csv);
SELECT streaming.create_source('su_files', 'file', 'id int, name text',
         '{"path": "/tmp/streaming_regress/security", "format": "csv"}');
SELECT streaming.create_query('su_file_rows', 'SELECT id, name FROM su_files');
SELECT streaming.run('su_stats', 4), streaming.run('su_windows', 4), streaming.run('su_sessions', 4),
       streaming.run('su_dedup', 4), streaming.run('su_file_rows');
COPY (VALUES (3, 'c')) TO '/tmp/streaming_regress/security/2.csv' WITH (FORMAT csv);
SELECT streaming.run('su_file_rows');
SELECT id, name FROM su_file_rows ORDER BY id;
SELECT * FROM escalated;
-- and the results are right: the same aggregates over the same 20 values in
-- plain SQL (floats rounded: partial states merge in another order)
CREATE VIEW su_plain AS
  SELECT v % 3 AS k, count(*) AS n, sum(v) AS s, avg(v) AS a, round(avg(v::float8)::numeric, 9) AS af,
         round(var_samp(v::float8)::numeric, 9) AS vf, var_pop(v) AS vn,
         round(stddev_samp(v::float8)::numeric, 9) AS sf, min(v) AS lo, max(v) AS hi, bool_and(v > 0) AS all_pos
    FROM generate_series(0::bigint, 19) v GROUP BY 1;
CREATE VIEW su_kept AS
  SELECT k, n, s, a, round(af::numeric, 9) AS af, round(vf::numeric, 9) AS vf, vn,
         round(sf::numeric, 9) AS sf, lo, hi, all_pos FROM su_stats;
SELECT (SELECT count(*) FROM su_kept) AS kept, (SELECT count(*) FROM su_plain) AS plain,
       (SELECT count(*) FROM (SELECT * FROM su_kept EXCEPT SELECT * FROM su_plain) d) AS differ;
DROP VIEW su_kept, su_plain;
SELECT extract(epoch FROM lower(w))::int4 - 1704067200 AS w, n, a FROM su_windows ORDER BY w;
SELECT k, n FROM su_sessions ORDER BY k;
SELECT k FROM su_dedup ORDER BY k;
SELECT streaming.drop_query('su_stats'), streaming.drop_query('su_windows'),
       streaming.drop_query('su_sessions'), streaming.drop_query('su_dedup');
SELECT streaming.drop_query('su_file_rows');
SELECT streaming.drop_source('su_ticks');
SELECT streaming.drop_source('su_files');
SET SESSION AUTHORIZATION regress_bob;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT oid::regoperator AS o FROM pg_operator WHERE oprnamespace = 'public'::regnamespace LOOP
        EXECUTE format('DROP OPERATOR %s', r.o);
    END LOOP;
    FOR r IN SELECT oid::regprocedure AS f FROM pg_proc WHERE pronamespace = 'public'::regnamespace
              AND proowner = 'regress_bob'::regrole LOOP
        EXECUTE format('DROP FUNCTION %s', r.f);
    END LOOP;
END $$;
RESET SESSION AUTHORIZATION;

-- 4b. The user's own query text is not parsed again at each batch under
-- the owner's search_path: a function or operator planted later in public
-- with the exact argument types of a call that pg_catalog serves through
-- a polymorphic or "any" parameter (format, ||, jsonb_build_object,
-- to_json, concat, array_append) would otherwise be picked by the re-parse.
SELECT streaming.create_source('su_poly', 'rate',
         options => '{"rows_per_batch": 4, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('su_poly_rows',
         $$SELECT value, 'tick-' || value AS label, format('%s', value) AS f,
                  jsonb_build_object('v', value) AS doc, to_json(value) AS j,
                  concat('c', value) AS c, array_append(ARRAY[0::bigint], value) AS a
             FROM su_poly$$);
SELECT streaming.create_query('su_poly_groups',
         $$SELECT 'tick-' || (value % 2) AS label, count(*) AS n,
                  sum(length(format('%s', value))) AS digits,
                  count(*) FILTER (WHERE to_json(value)::text <> '3') AS not3
             FROM su_poly GROUP BY 1$$, output_mode => 'update');
SELECT streaming.create_query('su_poly_dedup',
         $$SELECT DISTINCT concat('k', value % 3) AS k FROM su_poly$$);
SELECT streaming.run('su_poly_rows', 1), streaming.run('su_poly_groups', 1), streaming.run('su_poly_dedup', 1);
SET SESSION AUTHORIZATION regress_bob;
CREATE FUNCTION public.format(text, bigint) RETURNS text LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN pg_catalog.format($1, $2) END$$;
CREATE FUNCTION public.jsonb_build_object(text, bigint) RETURNS jsonb LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN pg_catalog.jsonb_build_object($1, $2) END$$;
CREATE FUNCTION public.to_json(bigint) RETURNS json LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN pg_catalog.to_json($1) END$$;
CREATE FUNCTION public.concat(text, bigint) RETURNS text LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN pg_catalog.concat($1, $2) END$$;
CREATE FUNCTION public.array_append(bigint[], bigint) RETURNS bigint[] LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN pg_catalog.array_append($1, $2) END$$;
CREATE FUNCTION public.cat_text_int8(text, bigint) RETURNS text LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN $1 OPERATOR(pg_catalog.||) $2::text END$$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = public.cat_text_int8);
RESET SESSION AUTHORIZATION;
-- the planted function would win a parse of the same text now
EXPLAIN (VERBOSE, COSTS OFF) SELECT format('%s', 1::bigint);
SELECT streaming.run('su_poly_rows', 2), streaming.run('su_poly_groups', 2), streaming.run('su_poly_dedup', 2);
SELECT * FROM escalated;
-- 12 rows, as plain SQL computes them over 0 .. 11
SELECT (SELECT count(*) FROM su_poly_rows) AS rows,
       (SELECT count(*) FROM (SELECT value, label, f, doc::text, j::text, c, a FROM su_poly_rows
                              EXCEPT
                              SELECT v, 'tick-' OPERATOR(pg_catalog.||) v::text, pg_catalog.format('%s', v),
                                     pg_catalog.jsonb_build_object('v', v)::text, pg_catalog.to_json(v)::text,
                                     pg_catalog.concat('c', v), pg_catalog.array_append(ARRAY[0::bigint], v)
                                FROM generate_series(0::bigint, 11) v) d) AS differ;
SELECT label, n, digits, not3 FROM su_poly_groups ORDER BY label;
SELECT k FROM su_poly_dedup ORDER BY k;
SELECT streaming.drop_query('su_poly_rows'), streaming.drop_query('su_poly_groups'),
       streaming.drop_query('su_poly_dedup');
SELECT streaming.drop_source('su_poly');
SET SESSION AUTHORIZATION regress_bob;
DROP OPERATOR public.|| (text, bigint);
DROP FUNCTION public.cat_text_int8(text, bigint), public.format(text, bigint),
              public.jsonb_build_object(text, bigint), public.to_json(bigint),
              public.concat(text, bigint), public.array_append(bigint[], bigint);
RESET SESSION AUTHORIZATION;

-- 4c. Nor are the tables it reads looked up again by name: a batch reads
-- the query's input view, which holds them (and their columns' types) as
-- create_query resolved them, and PostgreSQL keeps them from being
-- retyped or dropped under it.  alice owns two tables a superuser's query
-- joins: renaming it and putting a view with her function in its place
-- changes nothing for the query, and retyping a column or dropping the
-- table is refused while the query reads it.
SET SESSION AUTHORIZATION regress_alice;
CREATE TABLE public.alice_dim (k bigint PRIMARY KEY, label text);
INSERT INTO public.alice_dim VALUES (0, 'even'), (1, 'odd');
GRANT SELECT ON public.alice_dim TO PUBLIC;
RESET SESSION AUTHORIZATION;
SELECT streaming.create_source('su_dim_ticks', 'rate',
         options => '{"rows_per_batch": 4, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('su_labelled',
         $$SELECT t.value, d.label FROM su_dim_ticks t JOIN alice_dim d ON d.k = t.value % 2$$);
SELECT streaming.create_query('su_label_counts',
         $$SELECT d.label, count(*) AS n FROM su_dim_ticks t JOIN alice_dim d ON d.k = t.value % 2 GROUP BY 1$$,
         output_mode => 'update');
SELECT streaming.run('su_labelled', 1), streaming.run('su_label_counts', 1);
SET SESSION AUTHORIZATION regress_alice;
ALTER TABLE public.alice_dim RENAME TO alice_dim_old;
CREATE VIEW public.alice_dim WITH (security_invoker = true) AS
  SELECT k, 'hijacked'::text AS label FROM public.alice_dim_old WHERE public.evil(k, 'regress_alice');
GRANT SELECT ON public.alice_dim TO PUBLIC;
CREATE TYPE public.boxed AS (v bigint);
SELECT sec_try($$ALTER TABLE public.alice_dim_old ALTER COLUMN k TYPE public.boxed USING ROW(k)$$);
SELECT sec_try($$DROP TABLE public.alice_dim_old$$);
RESET SESSION AUTHORIZATION;
SELECT streaming.run('su_labelled', 1), streaming.run('su_label_counts', 1);
SELECT * FROM escalated;
SELECT value, label FROM su_labelled ORDER BY value;
SELECT label, n FROM su_label_counts ORDER BY label;
-- what the batches read is shown, as the view PostgreSQL keeps
SELECT statement FROM streaming.explain('su_label_counts') WHERE step = 'input view';
-- dropped with CASCADE, the view takes the query's input with it: it says so
SET SESSION AUTHORIZATION regress_alice;
DROP TABLE public.alice_dim_old CASCADE;
RESET SESSION AUTHORIZATION;
SELECT sec_try($$SELECT streaming.run('su_labelled', 1)$$);
SELECT streaming.drop_query('su_labelled'), streaming.drop_query('su_label_counts');
SELECT streaming.drop_source('su_dim_ticks');
SET SESSION AUTHORIZATION regress_alice;
DROP TYPE public.boxed;
RESET SESSION AUTHORIZATION;
-- A query planned by an earlier version (simulated: its plan without the
-- view and fingerprints) gets them at its next batch, its text meaning now
-- what it meant then
SELECT streaming.create_source('su_old_ticks', 'rate',
         options => '{"rows_per_batch": 2, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('su_old', 'SELECT value FROM su_old_ticks');
SELECT plan->>'input' AS old_view FROM streaming.queries WHERE name = 'su_old' \gset
UPDATE streaming.queries SET plan = plan - 'input' - 'batch_fingerprint' - 'close_fingerprint'
 WHERE name = 'su_old';
DROP VIEW :old_view;
SELECT streaming.run('su_old', 2);
SELECT plan ? 'input' AS has_view, plan ? 'batch_fingerprint' AS has_fingerprint,
       to_regclass(plan->>'input') IS NOT NULL AS view_exists
  FROM streaming.queries WHERE name = 'su_old';
SELECT value FROM su_old ORDER BY value;
SELECT streaming.drop_query('su_old');
SELECT streaming.drop_source('su_old_ticks');

-- What the batch statement computes from the state - expressions over
-- aggregates, HAVING - names the query's functions in text: a name
-- resolved in the function's own schema can still find an overload
-- created since with a closer signature.  Every batch checks that its
-- statements resolve to what they resolved to at create_query, and
-- refuses to run otherwise.
CREATE FUNCTION public.same(v anyelement) RETURNS anyelement LANGUAGE sql AS $$SELECT v$$;
SELECT streaming.create_source('su_fp_ticks', 'rate',
         options => '{"rows_per_batch": 4, "start_timestamp": "2024-01-01 00:00:00+00",
                      "advance_millis_per_batch": 1000}');
SELECT streaming.create_query('su_same',
         $$SELECT value % 2 AS k, public.same(sum(value)) AS s FROM su_fp_ticks
            GROUP BY 1 HAVING public.same(sum(value)) >= 0$$, output_mode => 'update');
SELECT streaming.run('su_same', 1);
SET SESSION AUTHORIZATION regress_bob;
CREATE FUNCTION public.same(numeric) RETURNS numeric LANGUAGE sql
    AS $$SELECT CASE WHEN public.evil(1, 'regress_bob') THEN $1 END$$;
RESET SESSION AUTHORIZATION;
SELECT sec_try($$SELECT streaming.run('su_same', 1)$$);
SELECT * FROM escalated;
SELECT k, s FROM su_same ORDER BY k;
SET SESSION AUTHORIZATION regress_bob;
DROP FUNCTION public.same(numeric);
RESET SESSION AUTHORIZATION;
SELECT streaming.run('su_same', 1);
SELECT k, s FROM su_same ORDER BY k;
SELECT streaming.drop_query('su_same');
SELECT streaming.drop_source('su_fp_ticks');
DROP FUNCTION public.same(anyelement);
-- a temporary table is another one in every session: refused, as
-- CREATE MATERIALIZED VIEW refuses it
SELECT streaming.create_source('su_tmp_ticks', 'rate', options => '{"rows_per_batch": 1}');
CREATE TEMP TABLE lookup (k bigint, label text);
SELECT sec_try($$SELECT streaming.create_query('su_tmp', 'SELECT t.value, l.label FROM su_tmp_ticks t JOIN lookup l ON l.k = t.value')$$);
DROP TABLE lookup;
SELECT streaming.drop_source('su_tmp_ticks');

-- 7. run() runs the owner's code as the owner, under the owner's pinned
-- search_path, whoever calls it: alice's query reads a table she was
-- allowed to read when she created it, and calls her own function.
CREATE TABLE secret (parity bigint, label text);
INSERT INTO secret VALUES (0, 'even'), (1, 'odd');
GRANT SELECT ON secret TO regress_alice;
CREATE SCHEMA alice_tools AUTHORIZATION regress_alice;
SET SESSION AUTHORIZATION regress_alice;
CREATE FUNCTION alice_tools.whoami(bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'regress_alice' THEN
        RAISE WARNING 'hijacked: alice''s function ran as %', current_user;
    END IF;
    RETURN current_user || ' ' || current_setting('search_path');
END $$;
SET search_path = alice_tools, public;
SELECT streaming.create_query('alice_labels',
         $$SELECT t.value, s.label, whoami(t.value) AS who
             FROM alice_ticks t JOIN secret s ON s.parity = t.value % 2$$);
SELECT search_path FROM streaming.queries WHERE name = 'alice_labels';
RESET search_path;
RESET SESSION AUTHORIZATION;
-- the superuser runs it: alice's function runs as alice, under her path
SELECT streaming.run('alice_labels', 1);
SELECT value, label, who FROM alice_tools.alice_labels ORDER BY value;
-- once alice may no longer read the table, nobody's run() reads it for her
REVOKE SELECT ON secret FROM regress_alice;
SELECT sec_try($$SELECT streaming.run('alice_labels', 1)$$);
SELECT count(*) FROM alice_tools.alice_labels;
-- a batch run as alice is security-restricted: her code cannot change the
-- session of the superuser who called run()
GRANT SELECT ON secret TO regress_alice;
SET SESSION AUTHORIZATION regress_alice;
CREATE OR REPLACE FUNCTION alice_tools.whoami(bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('work_mem', '64kB', false);
    RETURN current_user;
END $$;
RESET SESSION AUTHORIZATION;
SELECT sec_try($$SELECT streaming.run('alice_labels', 1)$$);
SHOW work_mem;
SELECT * FROM escalated;

-- 13. Catalog rows are their owner's: carol and bob see none of alice's
-- query texts, errors, progress, offsets, dead letters or source options
SET SESSION AUTHORIZATION regress_carol;
SELECT (SELECT count(*) FROM streaming.queries) AS queries,
       (SELECT count(*) FROM streaming.sources) AS sources,
       (SELECT count(*) FROM streaming.progress) AS progress,
       (SELECT count(*) FROM streaming.offsets) AS offsets,
       (SELECT count(*) FROM streaming.dead_letters) AS dead_letters,
       (SELECT count(*) FROM streaming.sink_files) AS sink_files,
       (SELECT count(*) FROM streaming.status) AS status;
SET SESSION AUTHORIZATION regress_bob;
SELECT (SELECT count(*) FROM streaming.queries) AS queries,
       (SELECT count(*) FROM streaming.progress) AS progress,
       (SELECT count(*) FROM streaming.status) AS status;
SELECT sec_try($$SELECT * FROM streaming.kafka_lag('alice_sums')$$);
SET SESSION AUTHORIZATION regress_alice;
SELECT name, owner FROM streaming.queries ORDER BY name;
SELECT name FROM streaming.sources ORDER BY name;
SELECT name, state FROM streaming.status ORDER BY name;
SELECT query, count(*) AS batches FROM streaming.progress GROUP BY query ORDER BY query;
SELECT query, count(*) AS offsets FROM streaming.offsets GROUP BY query ORDER BY query;
-- a query's state table is its owner's too, whatever default privileges
-- the catalog's owner (who creates it) has
RESET SESSION AUTHORIZATION;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;
SET SESSION AUTHORIZATION regress_alice;
SELECT streaming.create_query('alice_secret_sums',
         'SELECT value % 3 AS k, sum(value) AS total FROM alice_ticks GROUP BY 1', output_mode => 'update');
RESET SESSION AUTHORIZATION;
ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM PUBLIC;
SELECT state_table AS alice_state FROM streaming.queries WHERE name = 'alice_secret_sums' \gset
SELECT pg_catalog.has_table_privilege('regress_carol', :'alice_state', 'SELECT') AS carol_reads_state,
       pg_catalog.has_table_privilege('regress_alice', :'alice_state', 'SELECT') AS alice_reads_state;
SET SESSION AUTHORIZATION regress_alice;
SELECT streaming.drop_query('alice_secret_sums');
-- a role with the owner's privileges sees them too
RESET SESSION AUTHORIZATION;
GRANT regress_alice TO regress_bob;
SET SESSION AUTHORIZATION regress_bob;
SELECT name FROM streaming.queries ORDER BY name;
RESET SESSION AUTHORIZATION;
REVOKE regress_alice FROM regress_bob;

-- The functions that keep any aggregate's state run it only with the
-- caller's EXECUTE privilege on it, and only on the types it takes
CREATE AGGREGATE secret_max(bigint) (SFUNC = int8larger, STYPE = bigint, COMBINEFUNC = int8larger);
REVOKE EXECUTE ON FUNCTION secret_max(bigint) FROM PUBLIC;
SET SESSION AUTHORIZATION regress_carol;
SELECT sec_try($$SELECT streaming.agg_combine('public.secret_max(bigint)', int8send(1), int8send(2))$$);
SELECT sec_try($$SELECT streaming.agg_partial('pg_catalog.max(bigint)', repeat('x', 100))$$);
SELECT sec_try($$SELECT streaming.agg_partial('pg_catalog.max(text)', '\x0102'::bytea)$$);
SELECT sec_try($$SELECT streaming.agg_finalize('pg_catalog.max(bigint)', int8send(4096), NULL::text)$$);
SELECT sec_try($$SELECT streaming.agg_partial('pg_catalog.sum(bigint)', 1::bigint, 2::bigint)$$);
-- used as intended, they work
SELECT streaming.agg_finalize('pg_catalog.max(bigint)',
         streaming.agg_combine('pg_catalog.max(bigint)', streaming.agg_partial('pg_catalog.max(bigint)', v), int8send(7)),
         NULL::bigint) AS max
  FROM (VALUES (3::bigint), (9), (5)) t(v);
RESET SESSION AUTHORIZATION;
DROP AGGREGATE secret_max(bigint);

-- A file source reads server files with its owner's rights, checked at
-- every batch: once they are revoked, it reads no more
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/security_alice && mkdir -p /tmp/streaming_regress/security_alice';
COPY (VALUES (1), (2)) TO '/tmp/streaming_regress/security_alice/1.csv' WITH (FORMAT csv);
GRANT pg_read_server_files TO regress_alice;
SET SESSION AUTHORIZATION regress_alice;
SELECT streaming.create_source('alice_files', 'file', 'id int',
         '{"path": "/tmp/streaming_regress/security_alice", "format": "csv"}');
SELECT streaming.create_query('alice_file_ids', 'SELECT id FROM alice_files');
SELECT streaming.run('alice_file_ids');
RESET SESSION AUTHORIZATION;
REVOKE pg_read_server_files FROM regress_alice;
COPY (VALUES (3)) TO '/tmp/streaming_regress/security_alice/2.csv' WITH (FORMAT csv);
SET SESSION AUTHORIZATION regress_alice;
SELECT sec_try($$SELECT streaming.run('alice_file_ids')$$);
SELECT sec_try($$SELECT count(*) FROM alice_files$$);
SELECT id FROM alice_file_ids ORDER BY id;
SELECT streaming.drop_query('alice_file_ids');
SELECT streaming.drop_source('alice_files');
RESET SESSION AUTHORIZATION;

-- A source decodes its input with its owner's rights: alice's domain on a
-- column of her source checks values as alice, whoever reads the source
-- (bob's query over it, a superuser's SELECT)
GRANT pg_read_server_files TO regress_alice;
SET SESSION AUTHORIZATION regress_alice;
CREATE DOMAIN public.alice_id AS int CHECK (public.evil(VALUE, 'regress_alice'));
SELECT streaming.create_source('alice_typed', 'file', 'id public.alice_id',
         '{"path": "/tmp/streaming_regress/security_alice", "format": "csv"}');
GRANT SELECT ON alice_typed TO regress_bob;
SET SESSION AUTHORIZATION regress_bob;
SELECT streaming.create_query('bob_typed', 'SELECT id FROM alice_typed');
SELECT streaming.run('bob_typed');
SELECT id FROM bob_typed ORDER BY id;
RESET SESSION AUTHORIZATION;
SELECT count(*) FROM alice_typed;
SELECT * FROM escalated;
SET SESSION AUTHORIZATION regress_bob;
SELECT streaming.drop_query('bob_typed');
SET SESSION AUTHORIZATION regress_alice;
SELECT streaming.drop_source('alice_typed');
DROP DOMAIN public.alice_id;
RESET SESSION AUTHORIZATION;
REVOKE pg_read_server_files FROM regress_alice;

-- 12. a trigger faster than a worker can wait, or slower than a day
SELECT sec_try($$SELECT streaming.create_query('fast', 'SELECT value FROM alice_ticks', trigger => '1 microsecond')$$);
SELECT sec_try($$SELECT streaming.create_query('slow', 'SELECT value FROM alice_ticks', trigger => '25 hours')$$);
SELECT sec_try($$SELECT streaming.create_query('odd', 'SELECT value FROM alice_ticks', trigger => '-1 second')$$);

SELECT * FROM escalated;

SET SESSION AUTHORIZATION regress_alice;
SELECT streaming.drop_query('alice_labels');
SELECT streaming.drop_query('alice_sums');
SELECT streaming.drop_source('alice_ticks');
RESET SESSION AUTHORIZATION;
DROP SCHEMA alice_tools CASCADE;
DROP TABLE secret;
DROP VIEW escalated;
DROP FUNCTION sec_try(text);
DROP FUNCTION public.evil(anyelement, text);
REVOKE CREATE ON SCHEMA public FROM regress_alice, regress_bob;
REVOKE USAGE ON FOREIGN SERVER streaming FROM regress_alice, regress_bob;
DROP EXTENSION streaming;
DROP ROLE regress_carol, regress_alice, regress_bob;
