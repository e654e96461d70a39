-- Formats: csv options, text lines, json lines, and records that cannot be
-- decoded (dead letters, skip, fail)
CREATE EXTENSION streaming;
-- batches are driven by run() here, not by background workers
SET streaming.autostart = off;
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && rm -rf /tmp/streaming_regress/formats && mkdir -p /tmp/streaming_regress/formats/csv /tmp/streaming_regress/formats/text /tmp/streaming_regress/formats/json /tmp/streaming_regress/formats/bad';

-- csv with another delimiter, quote and null marker
SELECT streaming.create_source('csv_in', 'file', 'id int, label text, amount numeric',
         '{"path": "/tmp/streaming_regress/formats/csv", "format": "csv",
           "delimiter": ";", "quote": "''", "null": "NA", "header": true}');
COPY (VALUES ('id;label;amount'), ('1;''semi;colon'';2.50'), ('2;NA;NA'), ('3;''multi'), ('line'';1'))
  TO '/tmp/streaming_regress/formats/csv/a.csv';
SELECT streaming.create_query('csv_rows', 'SELECT id, label, amount FROM csv_in');
SELECT streaming.run('csv_rows');
SELECT id, label, amount, label IS NULL AS label_null FROM csv_rows ORDER BY id;

-- text: one value per line
SELECT streaming.create_source('text_in', 'file', options => '{"path": "/tmp/streaming_regress/formats/text", "format": "text"}');
COPY (VALUES ('the quick fox'), (''), ('the lazy dog'), ('the quick fox')) TO '/tmp/streaming_regress/formats/text/a.txt';
SELECT streaming.create_query('line_counts', 'SELECT value, count(*) AS n FROM text_in GROUP BY value',
                              output_mode => 'complete');
SELECT streaming.run('line_counts');
SELECT * FROM line_counts ORDER BY value;

-- json lines: keys map to columns, missing keys are NULL, nested values go to jsonb
SELECT streaming.create_source('json_in', 'file', 'id int, name text, tags jsonb, ok boolean',
         '{"path": "/tmp/streaming_regress/formats/json", "format": "json"}');
COPY (VALUES ('{"id": 1, "name": "a", "tags": {"x": [1, 2]}, "ok": true}'),
             ('{"name": "no id", "extra": 42}'),
             ('{"id": 3, "name": null, "tags": [], "ok": false}'),
             ('{"id": 4, "name": "quote \" and unicode \u00e9"}'))
  TO '/tmp/streaming_regress/formats/json/a.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.create_query('json_rows', 'SELECT * FROM json_in');
SELECT streaming.run('json_rows');
SELECT * FROM json_rows ORDER BY id NULLS FIRST;

-- bad records: kept in streaming.dead_letters with their position, the
-- batch goes on with the good ones
SELECT streaming.create_source('bad_csv', 'file', 'id int, v int',
         '{"path": "/tmp/streaming_regress/formats/bad", "format": "csv"}');
COPY (VALUES ('1,10'), ('2,eleven'), ('3,30'), ('4,40,extra'), ('5,50'))
  TO '/tmp/streaming_regress/formats/bad/a.csv';
SELECT streaming.create_query('bad_sum', 'SELECT count(*) AS n, sum(v) AS total FROM bad_csv',
                              output_mode => 'complete');
SELECT streaming.run('bad_sum');
SELECT * FROM bad_sum;
SELECT regexp_replace(position, '.*/', '') AS position, convert_from(payload, 'UTF8') AS payload, error
  FROM streaming.dead_letters ORDER BY id;
SELECT input_rows, dead_letters FROM streaming.progress WHERE query = 'bad_sum';

-- on_error = 'skip' only counts them; 'fail' stops the batch
SELECT streaming.create_query('bad_skip', 'SELECT count(*) AS n FROM bad_csv',
                              output_mode => 'complete', on_error => 'skip');
SELECT streaming.run('bad_skip');
SELECT * FROM bad_skip;
SELECT input_rows, dead_letters FROM streaming.progress WHERE query = 'bad_skip';
SELECT count(*) FROM streaming.dead_letters WHERE query = 'bad_skip';
SELECT streaming.create_query('bad_fail', 'SELECT count(*) AS n FROM bad_csv',
                              output_mode => 'complete', on_error => 'fail');
SELECT streaming.run('bad_fail');
SELECT last_batch_id FROM streaming.queries WHERE name = 'bad_fail';

-- neither a line "\." (COPY's end-of-data marker) nor a byte that is not
-- UTF-8 (a NUL included) ends a csv file early: each is one bad record,
-- kept with its raw bytes, and the rest is read
COPY (SELECT 1) TO PROGRAM 'cat >/dev/null && mkdir -p /tmp/streaming_regress/formats/marker && printf ''a,1\n\\.\nb\377,2\nc,3\n"d\n\\.\n",4\ne,5\nf\000g,6\nh,7\n'' > /tmp/streaming_regress/formats/marker/m.csv';
SELECT streaming.create_source('marker_csv', 'file', 'k text, v int',
         '{"path": "/tmp/streaming_regress/formats/marker", "format": "csv"}');
SELECT streaming.create_query('marker_rows', 'SELECT k, v FROM marker_csv');
SELECT streaming.run('marker_rows');
SELECT k, v FROM marker_rows ORDER BY v;
SELECT regexp_replace(position, '.*/', '') AS position, payload, error
  FROM streaming.dead_letters WHERE query = 'marker_rows' ORDER BY id;

-- json records that are not objects, not JSON, or of the wrong type
COPY (VALUES ('[1, 2]'), ('{"id": 5, "name": "fine"}'), ('{"id": "five"}'), ('{"id": 6,'))
  TO '/tmp/streaming_regress/formats/json/b.json' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02');
SELECT streaming.run('json_rows');
SELECT id, name FROM json_rows WHERE id >= 5 ORDER BY id;
SELECT regexp_replace(position, '.*/', '') AS position, convert_from(payload, 'UTF8') AS payload
  FROM streaming.dead_letters WHERE query = 'json_rows' ORDER BY id;

SELECT streaming.drop_query(name) FROM streaming.queries ORDER BY name;
SELECT streaming.drop_source(name) FROM streaming.sources ORDER BY name;
DROP EXTENSION streaming;
