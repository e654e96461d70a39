-- Kafka settings and credentials as roles without superuser: regress_carol
-- (LOGIN only), regress_alice and regress_bob (USAGE on the foreign server
-- streaming, as the README says a user needs).  Each numbered finding of
-- the security review is reproduced and must now fail safely.  No broker
-- is contacted here: where credentials actually go is checked with fake
-- brokers by test/t/033_kafka_credentials.pl, and every librdkafka property
-- by test/t/032_kafka_properties.pl.
CREATE EXTENSION streaming;
SET streaming.autostart = off;

-- the SQLSTATE, message and hint of a statement's error, or 'ok'
CREATE FUNCTION attempt(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE msg text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || msg || coalesce(' (' || nullif(hint, '') || ')', '');
END
$$;
-- a source (or sink) with extra options, for the variants below
CREATE FUNCTION source_with(extra jsonb) RETURNS text
LANGUAGE sql AS $$
SELECT attempt(format('SELECT streaming.create_source(%L, %L, options => %L)', 'k', 'kafka',
                  '{"bootstrap_servers": "127.0.0.1:9", "topic": "t"}'::jsonb || extra))
$$;
CREATE FUNCTION sink_with(extra jsonb) RETURNS text
LANGUAGE sql AS $$
SELECT attempt(format('SELECT streaming.create_query(%L, %L, sink => %L, sink_options => %L, start => false)',
                  'q', 'SELECT value FROM ticks', 'kafka',
                  '{"bootstrap_servers": "127.0.0.1:9", "topic": "out"}'::jsonb || extra))
$$;
GRANT EXECUTE ON FUNCTION attempt(text), source_with(jsonb), sink_with(jsonb) TO PUBLIC;

CREATE ROLE regress_carol LOGIN;
CREATE ROLE regress_alice LOGIN;
CREATE ROLE regress_bob LOGIN;
GRANT USAGE ON FOREIGN SERVER streaming TO regress_alice, regress_bob;
GRANT CREATE ON SCHEMA public TO regress_alice, regress_bob;

-- A Kerberos server as a superuser sets it up, with a keytab.
CREATE SERVER kerberos FOREIGN DATA WRAPPER streaming
  OPTIONS (bootstrap_servers '127.0.0.1:9', "kafka.security.protocol" 'SASL_PLAINTEXT',
           "kafka.sasl.mechanism" 'GSSAPI', "kafka.sasl.kerberos.keytab" '/etc/krb5.keytab',
           "kafka.sasl.kerberos.principal" 'streaming@EXAMPLE.COM');
GRANT USAGE ON FOREIGN SERVER kerberos TO regress_alice, regress_bob;

------------------------------------------------------------------------------
-- Finding 5: kafka.sasl.kerberos.principal went unquoted into librdkafka's
-- kinit shell command.  Now only allow-listed properties are open to roles
-- without superuser.
------------------------------------------------------------------------------
SET ROLE regress_alice;
SELECT attempt($q$SELECT streaming.create_source('k', 'kafka',
  options => '{"server": "kerberos", "topic": "t", "kafka.sasl.kerberos.principal": "x; touch /tmp/pwned"}')$q$);
-- other properties that run commands, load code, write files, reach other
-- URLs or log secrets, and some that are merely not needed
SELECT p, source_with(jsonb_build_object('kafka.' || p, v))
  FROM (VALUES ('sasl.kerberos.kinit.cmd', 'touch /tmp/pwned'), ('sasl.kerberos.keytab', '/etc/krb5.keytab'),
               ('sasl.kerberos.service.name', 'kafka'), ('sasl.kerberos.min.time.before.relogin', '0'),
               ('sasl.oauthbearer.token.endpoint.url', 'http://169.254.169.254/'),
               ('sasl.oauthbearer.method', 'oidc'), ('enable.sasl.oauthbearer.unsecure.jwt', 'true'),
               ('debug', 'all'), ('plugin.library.paths', '/tmp/evil.so'), ('interceptors', 'x'),
               ('ssl.engine.location', '/tmp/evil.so'), ('ssl.engine.id', 'evil'), ('ssl.providers', 'evil'),
               ('offset.store.method', 'file'), ('offset.store.path', '/tmp/offsets'),
               ('log_level', '7'), ('log.connection.close', 'false'), ('log.queue', 'true'),
               ('internal.termination.signal', '9'), ('statistics.interval.ms', '1000'),
               ('enable.random.seed', 'false'), ('test.mock.num.brokers', '3'),
               ('metadata.broker.list', '127.0.0.1:9'), ('group.id', 'mine'),
               ('enable.partition.eof', 'false'), ('enable.idempotence', 'false')) t(p, v)
 ORDER BY p;
-- a SASL mechanism other than PLAIN and SCRAM, and a SASL protocol without one
SELECT source_with('{"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "GSSAPI"}');
SELECT source_with('{"kafka.sasl.mechanisms": "OAUTHBEARER"}');
SELECT source_with('{"kafka.security.protocol": "sasl_ssl"}');
SELECT source_with('{"kafka.sasl.mechanism": null}');
-- the server's own superuser settings serve the role, which cannot change
-- them: before, a key that the server also set was not checked at all
SELECT attempt($q$SELECT streaming.create_source('k', 'kafka',
  options => '{"server": "kerberos", "topic": "t", "kafka.sasl.kerberos.keytab": "/tmp/mine.keytab"}')$q$);
SELECT streaming.create_source('kerberos_k', 'kafka', options => '{"server": "kerberos", "topic": "t"}');
-- allow-listed settings to connect and to tune
SELECT streaming.create_source('tuned_k', 'kafka',
         options => '{"bootstrap_servers": "127.0.0.1:9", "topic": "t", "kafka.security.protocol": "SASL_SSL",
                      "kafka.sasl.mechanism": "SCRAM-SHA-512", "kafka.ssl.endpoint.identification.algorithm": "https",
                      "kafka.fetch.max.bytes": 1048576, "kafka.socket.timeout.ms": 5000, "kafka.client.id": "tuned"}');
-- the same properties on a server the role owns, on a user mapping, on a sink
RESET ROLE;
GRANT USAGE ON FOREIGN DATA WRAPPER streaming TO regress_alice;
SET ROLE regress_alice;
SELECT attempt($q$CREATE SERVER alice_srv FOREIGN DATA WRAPPER streaming
  OPTIONS (bootstrap_servers '127.0.0.1:9', "kafka.sasl.kerberos.principal" 'x; touch /tmp/pwned')$q$);
CREATE SERVER alice_srv FOREIGN DATA WRAPPER streaming
  OPTIONS (bootstrap_servers '127.0.0.1:9', "kafka.socket.timeout.ms" '5000');
SELECT attempt($q$ALTER SERVER alice_srv OPTIONS (ADD "kafka.debug" 'all')$q$);
SELECT attempt($q$ALTER SERVER alice_srv OPTIONS (ADD "kafka.sasl.mechanism" 'GSSAPI')$q$);
SELECT attempt($q$CREATE USER MAPPING FOR CURRENT_USER SERVER kerberos
  OPTIONS ("kafka.sasl.kerberos.principal" 'x; touch /tmp/pwned')$q$);
CREATE USER MAPPING FOR CURRENT_USER SERVER alice_srv OPTIONS ("kafka.sasl.username" 'alice');
SELECT attempt($q$ALTER USER MAPPING FOR CURRENT_USER SERVER alice_srv
  OPTIONS (ADD "kafka.sasl.kerberos.kinit.cmd" 'touch /tmp/pwned')$q$);
SELECT attempt($q$ALTER USER MAPPING FOR CURRENT_USER SERVER alice_srv
  OPTIONS (ADD "kafka.ssl.ca.location" '/etc/ssl/private')$q$);
SELECT streaming.create_source('ticks', 'rate', options => '{"rows_per_second": 1}');
SELECT sink_with('{"kafka.sasl.kerberos.principal": "x; touch /tmp/pwned"}');
SELECT sink_with('{"kafka.plugin.library.paths": "/tmp/evil.so"}');
SELECT sink_with('{"kafka.enable.idempotence": false}');
SELECT sink_with('{"kafka.linger.ms": 50, "kafka.compression.codec": "zstd", "kafka.acks": "all"}');
SELECT streaming.drop_query('q');
-- a role with LOGIN only may do none of it
SET ROLE regress_carol;
SELECT source_with('{}');
SELECT attempt($q$CREATE USER MAPPING FOR CURRENT_USER SERVER streaming OPTIONS ("kafka.client.id" 'c')$q$);
-- a definition stored before these checks is checked again, with its
-- owner's rights, before it connects
RESET ROLE;
UPDATE streaming.sources SET options = options || '{"kafka.sasl.kerberos.principal": "x; touch /tmp/pwned"}'
 WHERE name = 'tuned_k';
SET ROLE regress_alice;
SELECT attempt($q$SELECT * FROM tuned_k$q$);
-- and so are a server's and a user mapping's, with the rights of the
-- server's owner and of the mapped role: what a superuser (or a version
-- before 0.2) put there for alice takes effect only as far as alice may
-- set it herself
SELECT streaming.create_source('via_srv', 'kafka', options => '{"server": "alice_srv", "topic": "t"}');
RESET ROLE;
ALTER USER MAPPING FOR regress_alice SERVER alice_srv
  OPTIONS (ADD "kafka.sasl.kerberos.kinit.cmd" 'touch /tmp/pwned');
SET ROLE regress_alice;
SELECT attempt($q$SELECT * FROM via_srv$q$);
RESET ROLE;
ALTER USER MAPPING FOR regress_alice SERVER alice_srv OPTIONS (DROP "kafka.sasl.kerberos.kinit.cmd");
ALTER SERVER alice_srv OPTIONS (ADD "kafka.sasl.mechanism" 'GSSAPI');
SET ROLE regress_alice;
SELECT attempt($q$SELECT * FROM via_srv$q$);
SELECT streaming.drop_source('via_srv');
RESET ROLE;
ALTER SERVER alice_srv OPTIONS (DROP "kafka.sasl.mechanism");
-- superusers may set any property, in their own sources too
SELECT source_with('{"kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "GSSAPI",
                     "kafka.sasl.kerberos.service.name": "kafka", "kafka.debug": "security"}');
SELECT streaming.drop_source('k');
-- but nobody gets GSSAPI without naming it
SELECT source_with('{"kafka.security.protocol": "SASL_PLAINTEXT"}');

------------------------------------------------------------------------------
-- Finding 6: sources merged the caller's user mapping, and kafka_lag(query)
-- had no owner check, so a role reading another's source sent its own
-- password to that source's brokers.  Now a source connects with its
-- owner's mapping (or the PUBLIC one), kafka_lag needs the query's owner,
-- and a source cannot send its server's credentials to brokers of its own.
------------------------------------------------------------------------------
CREATE SERVER kprod FOREIGN DATA WRAPPER streaming
  OPTIONS (bootstrap_servers '127.0.0.1:9', "kafka.security.protocol" 'SASL_SSL', "kafka.sasl.mechanism" 'PLAIN');
GRANT USAGE ON FOREIGN SERVER kprod TO regress_alice, regress_bob;
CREATE USER MAPPING FOR PUBLIC SERVER kprod
  OPTIONS ("kafka.sasl.username" 'shared', "kafka.sasl.password" 'shared-secret');
SET ROLE regress_bob;
CREATE USER MAPPING FOR CURRENT_USER SERVER kprod
  OPTIONS ("kafka.sasl.username" 'bob', "kafka.sasl.password" 'bob-secret');
SET ROLE regress_alice;
CREATE USER MAPPING FOR CURRENT_USER SERVER kprod
  OPTIONS ("kafka.sasl.username" 'alice', "kafka.sasl.password" 'alice-secret');
-- alice cannot point the server's credentials at a broker of her own, in
-- any spelling, nor weaken how they travel
SELECT p, attempt(format('SELECT streaming.create_source(%L, %L, options => %L)', 'k', 'kafka',
                     jsonb_build_object('server', 'kprod', 'topic', 't', p, v)))
  FROM (VALUES ('bootstrap_servers', '10.6.6.6:9092'), ('kafka.bootstrap.servers', '10.6.6.6:9092'),
               ('kafka.security.protocol', 'SASL_PLAINTEXT'), ('kafka.sasl.mechanism', 'SCRAM-SHA-256'),
               ('kafka.enable.ssl.certificate.verification', 'false'),
               ('kafka.ssl.endpoint.identification.algorithm', 'none')) t(p, v)
 ORDER BY p;
SELECT streaming.create_source('a_src', 'kafka', options => '{"server": "kprod", "topic": "t"}');
SELECT streaming.create_query('a_q', 'SELECT value FROM a_src', start => false);
GRANT SELECT ON a_src TO regress_bob;
-- only alice (or a member of her role) may ask for the lag
SET ROLE regress_bob;
SELECT attempt($q$SELECT * FROM streaming.kafka_lag('a_q')$q$);
SET ROLE regress_carol;
SELECT attempt($q$SELECT * FROM streaming.kafka_lag('a_q')$q$);
SELECT attempt($q$SELECT * FROM streaming.kafka_lag('no_such_query')$q$);
-- nobody else reads the mappings' credentials
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'kprod' ORDER BY usename;
SET ROLE regress_bob;
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'kprod' ORDER BY usename;
RESET ROLE;

------------------------------------------------------------------------------
-- Finding 8: Kafka sink passwords sat in streaming.queries.sink_options,
-- readable by every role.  Now secrets are refused in sink and source
-- options (and on servers) for everyone, superusers included, and a sink
-- takes its connection from a server and its owner's user mapping.
------------------------------------------------------------------------------
SET ROLE regress_alice;
SELECT p, sink_with(jsonb_build_object('kafka.' || p, 'x'))
  FROM unnest(ARRAY['sasl.password', 'sasl.username', 'ssl.key.password', 'ssl.keystore.password',
                    'ssl.key.pem', 'ssl.ca.pem', 'sasl.oauthbearer.client.secret', 'sasl.oauthbearer.config']) p
 ORDER BY p;
SELECT source_with('{"kafka.sasl.password": "alice-secret"}');
RESET ROLE;
SELECT p, sink_with(jsonb_build_object('kafka.' || p, 'x')), source_with(jsonb_build_object('kafka.' || p, 'x'))
  FROM unnest(ARRAY['sasl.password', 'ssl.key.location', 'sasl.oauthbearer.client.secret']) p
 ORDER BY p;
SELECT attempt($q$CREATE SERVER leaky FOREIGN DATA WRAPPER streaming OPTIONS ("kafka.sasl.password" 'secret')$q$);
SELECT attempt($q$ALTER SERVER kprod OPTIONS (ADD "kafka.ssl.key.pem" '-----BEGIN PRIVATE KEY-----')$q$);
-- the sink names the server; its credentials come from the owner's mapping
SET ROLE regress_alice;
SELECT streaming.create_query('a_out', 'SELECT value FROM ticks', start => false,
         sink => 'kafka', sink_options => '{"server": "kprod", "topic": "out", "kafka.linger.ms": 10}');
SELECT name, sink, sink_options FROM streaming.queries WHERE name = 'a_out';
-- and cannot send them elsewhere either
SELECT attempt($q$SELECT streaming.create_query('q', 'SELECT value FROM ticks', start => false,
  sink => 'kafka', sink_options => '{"server": "kprod", "topic": "out", "kafka.bootstrap.servers": "10.6.6.6:9092"}')$q$);
SELECT attempt($q$SELECT streaming.create_query('q', 'SELECT value FROM ticks', start => false,
  sink => 'kafka', sink_options => '{"server": "kprod", "topic": "out", "kafka.security.protocol": "SASL_PLAINTEXT"}')$q$);
-- a server the role may not use, that does not exist, of another wrapper
SET ROLE regress_bob;
SELECT attempt($q$SELECT streaming.create_query('b_out', 'SELECT value FROM a_src', start => false,
  sink => 'kafka', sink_options => '{"server": "alice_srv", "topic": "out"}')$q$);
SELECT attempt($q$SELECT streaming.create_query('b_out', 'SELECT value FROM a_src', start => false,
  sink => 'kafka', sink_options => '{"server": "no_such_server", "topic": "out"}')$q$);
RESET ROLE;
CREATE FOREIGN DATA WRAPPER regress_other;
CREATE SERVER other_srv FOREIGN DATA WRAPPER regress_other;
SELECT attempt($q$SELECT streaming.create_query('b_out', 'SELECT value FROM a_src', start => false,
  sink => 'kafka', sink_options => '{"server": "other_srv", "topic": "out"}')$q$);
-- a server and mapping without brokers
CREATE SERVER empty_srv FOREIGN DATA WRAPPER streaming OPTIONS ("kafka.socket.timeout.ms" '5000');
SELECT attempt($q$SELECT streaming.create_query('b_out', 'SELECT value FROM a_src', start => false,
  sink => 'kafka', sink_options => '{"server": "empty_srv", "topic": "out"}')$q$);

-- clean up
SET ROLE regress_alice;
SELECT streaming.drop_query('a_out');
SELECT streaming.drop_query('a_q');
SELECT streaming.drop_source('a_src');
SELECT streaming.drop_source('ticks');
SELECT streaming.drop_source('kerberos_k');
SELECT streaming.drop_source('tuned_k');
DROP USER MAPPING FOR CURRENT_USER SERVER kprod;
DROP USER MAPPING FOR CURRENT_USER SERVER alice_srv;
DROP SERVER alice_srv;
RESET ROLE;
DROP USER MAPPING FOR regress_bob SERVER kprod;
DROP USER MAPPING FOR PUBLIC SERVER kprod;
DROP SERVER kprod;
DROP SERVER kerberos;
DROP SERVER empty_srv;
DROP SERVER other_srv;
DROP FOREIGN DATA WRAPPER regress_other;
REVOKE CREATE ON SCHEMA public FROM regress_alice, regress_bob;
DROP EXTENSION streaming;
DROP FUNCTION attempt(text), source_with(jsonb), sink_with(jsonb);
DROP ROLE regress_alice, regress_bob, regress_carol;
