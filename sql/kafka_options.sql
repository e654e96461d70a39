-- Kafka sources: option and schema validation at create_source (no broker
-- is contacted to create a source)
CREATE EXTENSION streaming;
SET streaming.autostart = off;

CREATE FUNCTION try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE msg text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'succeeded';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN msg || coalesce(' (' || nullif(hint, '') || ')', '');
END
$$;

SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"topic": "t"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "topic_pattern": "t.*"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic_pattern": "(unclosed"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topics": [1, 2]}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "starting_offsets": "middle"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "starting_offsets": {"t": {"0": -5}}}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "max_offsets_per_trigger": 0}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "format": "avro"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "delimiter": ";"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.security.protocol": "carrier_pigeon"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.no.such.setting": 1}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "colour": "red"}')$q$);
-- schemas
SELECT try($q$SELECT streaming.create_source('k', 'kafka', 'value bytea, colour text', '{"bootstrap_servers": "127.0.0.1:9", "topic": "t"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "format": "json"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', 'a int, kafka_offset int', '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "format": "json"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', 'a text, b text', '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "format": "text"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', 'kafka_key text', '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "format": "csv"}')$q$);

-- the raw format's default schema is Spark's; text gets one value column
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "kafka.bootstrap.servers": "127.0.0.1:9", "topic": "t"}')$q$);
-- kafka.bootstrap.servers is librdkafka's spelling of the same option
SELECT streaming.create_source('raw_k', 'kafka',
         options => '{"kafka.bootstrap.servers": "127.0.0.1:9", "topics": "a, b", "kafka.socket.timeout.ms": 5000}');
\d raw_k
SELECT streaming.create_source('text_k', 'kafka',
         options => '{"bootstrap_servers": "127.0.0.1:9", "topic_pattern": "^logs-.*", "format": "text"}');
\d text_k
SELECT streaming.create_source('json_k', 'kafka',
         'device text, reading float8, kafka_key text, kafka_timestamp timestamptz',
         '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "format": "json",
           "starting_offsets": {"t": {"0": 5, "1": -2}}, "max_offsets_per_trigger": 1000,
           "fail_on_data_loss": false}');
SELECT name, kind FROM streaming.sources ORDER BY name;
SELECT streaming.drop_source('raw_k');
SELECT streaming.drop_source('text_k');
SELECT streaming.drop_source('json_k');

-- shared connection settings on a foreign server of the wrapper, secrets in
-- a user mapping (shown only to its owner); the source's own options win
CREATE SERVER kafka_prod FOREIGN DATA WRAPPER streaming
  OPTIONS (bootstrap_servers '127.0.0.1:9', "kafka.security.protocol" 'SASL_SSL', "kafka.sasl.mechanisms" 'PLAIN');
CREATE USER MAPPING FOR CURRENT_USER SERVER kafka_prod
  OPTIONS ("kafka.sasl.username" 'streaming', "kafka.sasl.password" 'secret');
SELECT streaming.create_source('prod_k', 'kafka',
         options => '{"server": "kafka_prod", "topic": "t", "format": "text"}');
SELECT s.srvname FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
 WHERE ft.ftrelid = 'prod_k'::regclass;
SELECT options FROM streaming.sources WHERE name = 'prod_k';
SELECT try($q$DROP SERVER kafka_prod$q$);
SELECT try($q$CREATE SERVER bad_server FOREIGN DATA WRAPPER streaming OPTIONS (colour 'red')$q$);
SELECT try($q$CREATE SERVER bad_server FOREIGN DATA WRAPPER streaming OPTIONS ("kafka.security.protocol" 'carrier_pigeon')$q$);
SELECT try($q$ALTER FOREIGN DATA WRAPPER streaming OPTIONS (ADD bootstrap_servers 'x:1')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"server": "no_such_server", "topic": "t"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'rate', options => '{"server": "kafka_prod"}')$q$);
SELECT streaming.drop_source('prod_k');
DROP USER MAPPING FOR CURRENT_USER SERVER kafka_prod;
DROP SERVER kafka_prod;

-- a role without superuser: settings that load code or run a command are
-- refused, settings naming server files need pg_read_server_files
CREATE ROLE regress_kafka_user;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_kafka_user;
GRANT CREATE ON SCHEMA public TO regress_kafka_user;
SET ROLE regress_kafka_user;
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.plugin.library.paths": "/tmp/evil.so"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.sasl.kerberos.kinit.cmd": "touch /tmp/x"}')$q$);
SELECT try($q$SELECT streaming.create_source('k', 'kafka', options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.ssl.key.location": "/etc/ssl/private/server.key"}')$q$);
-- credentials go in a user mapping, never in the source's options
SELECT try($q$SELECT streaming.create_source('user_k', 'kafka',
         options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.security.protocol": "SASL_SSL",
                      "kafka.sasl.mechanisms": "PLAIN", "kafka.sasl.username": "u", "kafka.sasl.password": "p"}')$q$);
CREATE USER MAPPING FOR CURRENT_USER SERVER streaming
  OPTIONS (bootstrap_servers '127.0.0.1:9', "kafka.security.protocol" 'SASL_SSL',
           "kafka.sasl.mechanisms" 'PLAIN', "kafka.sasl.username" 'u', "kafka.sasl.password" 'p');
SELECT streaming.create_source('user_k', 'kafka',
         options => '{"topic": "t"}');
SELECT streaming.drop_source('user_k');
DROP USER MAPPING FOR CURRENT_USER SERVER streaming;
RESET ROLE;
GRANT pg_read_server_files TO regress_kafka_user;
SET ROLE regress_kafka_user;
SELECT streaming.create_source('user_k', 'kafka',
         options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.ssl.ca.location": "/etc/ssl/certs"}');
SELECT streaming.drop_source('user_k');
RESET ROLE;
REVOKE CREATE ON SCHEMA public FROM regress_kafka_user;
DROP EXTENSION streaming;
DROP ROLE regress_kafka_user;
