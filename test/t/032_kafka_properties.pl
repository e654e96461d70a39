# The librdkafka allow-list (src/sources/kafka_properties.c), checked against
# every configuration property of the librdkafka the extension is linked
# with: test/kafka/kafka_conf_props prints librdkafka's own property table
# (rd_kafka_conf_properties_show), to which the hidden properties of
# librdkafka 2.0.2's source (rdkafka_conf.c, _RK_HIDDEN) are added.  For
# every property, as a role without superuser and in all four places an
# option can be set (create_source, a Kafka sink's sink_options at
# create_query, CREATE SERVER and CREATE USER MAPPING through the FDW
# validator), the test checks that a property off the allow-list is refused
# with insufficient_privilege, that an allow-listed one is accepted, that a
# property naming a server file needs pg_read_server_files, and that a
# secret is accepted only in a user mapping.
use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# --- librdkafka's properties
my $props_bin = "$FindBin::Bin/../kafka/kafka_conf_props";
die "build the test programs first (make -C test)" unless -x $props_bin;
my @table = `$props_bin`;
die "kafka_conf_props failed" if $? != 0;
my ($version) = map { /^version (\S+)/ ? $1 : () } @table;
my %seen;
my @visible = grep { !$seen{$_}++ }
  map { /^([a-z_][\w.]*)\s+\|\s+[ CP*]{3}\s+\|/ ? $1 : () } @table;
my @hidden = qw(client.software.name client.software.version enable.sparse.connections
  enable_sasl_queue metadata.request.timeout.ms test.mock.num.brokers test.mock.broker.rtt
  ut_handle_ProduceResponse);
my @all = (@visible, grep { !$seen{$_}++ } @hidden);

is($version, '2.0.2', 'the librdkafka whose properties are listed');
is(scalar(@visible), 164, 'librdkafka 2.0.2 shows 164 distinct properties (global and topic)');
is(scalar(@all), 172, '... 172 with the hidden ones');

# --- the allow-list, with a value librdkafka takes for each property
my %allowed = (
	'bootstrap.servers' => '127.0.0.1:9',
	'security.protocol' => 'ssl',
	'sasl.mechanism' => 'SCRAM-SHA-256',
	'sasl.mechanisms' => 'PLAIN',
	'sasl.username' => 'u',
	'sasl.password' => 'p',
	'ssl.cipher.suites' => 'ECDHE-RSA-AES256-GCM-SHA384',
	'ssl.curves.list' => 'P-256',
	'ssl.sigalgs.list' => 'RSA-PSS+SHA256',
	'ssl.key.pem' => '-----BEGIN PRIVATE KEY-----',
	'ssl.key.password' => 'kp',
	'ssl.key.location' => '/nonexistent/client.key',
	'ssl.certificate.pem' => '-----BEGIN CERTIFICATE-----',
	'ssl.certificate.location' => '/nonexistent/client.crt',
	'ssl.ca.pem' => '-----BEGIN CERTIFICATE-----',
	'ssl.ca.location' => '/etc/ssl/certs',
	'ssl.crl.location' => '/nonexistent/ca.crl',
	'ssl.keystore.location' => '/nonexistent/client.p12',
	'ssl.keystore.password' => 'ksp',
	'enable.ssl.certificate.verification' => 'false',
	'ssl.endpoint.identification.algorithm' => 'none',
	'client.id' => 'me',
	'client.rack' => 'r1',
	'api.version.request' => 'true',
	'api.version.request.timeout.ms' => '5000',
	'api.version.fallback.ms' => '0',
	'broker.version.fallback' => '0.10.0',
	'socket.timeout.ms' => '5000',
	'socket.connection.setup.timeout.ms' => '5000',
	'socket.send.buffer.bytes' => '65536',
	'socket.receive.buffer.bytes' => '65536',
	'socket.keepalive.enable' => 'true',
	'socket.nagle.disable' => 'true',
	'socket.max.fails' => '3',
	'connections.max.idle.ms' => '60000',
	'reconnect.backoff.ms' => '200',
	'reconnect.backoff.max.ms' => '5000',
	'broker.address.ttl' => '1000',
	'broker.address.family' => 'v4',
	'metadata.max.age.ms' => '60000',
	'topic.metadata.refresh.interval.ms' => '30000',
	'topic.metadata.refresh.fast.interval.ms' => '100',
	'topic.metadata.refresh.sparse' => 'true',
	'topic.metadata.propagation.max.ms' => '1000',
	'message.max.bytes' => '2000000',
	'message.copy.max.bytes' => '1000',
	'receive.message.max.bytes' => '200000000',
	'max.in.flight.requests.per.connection' => '5',
	'max.in.flight' => '5',
	'queued.min.messages' => '1000',
	'queued.max.messages.kbytes' => '1024',
	'fetch.wait.max.ms' => '100',
	'fetch.message.max.bytes' => '1048576',
	'max.partition.fetch.bytes' => '1048576',
	'fetch.max.bytes' => '52428800',
	'fetch.min.bytes' => '1',
	'fetch.error.backoff.ms' => '100',
	'isolation.level' => 'read_uncommitted',
	'check.crcs' => 'true',
	'request.required.acks' => '-1',
	'acks' => 'all',
	'request.timeout.ms' => '10000',
	'message.timeout.ms' => '10000',
	'delivery.timeout.ms' => '10000',
	'queue.buffering.max.messages' => '1000',
	'queue.buffering.max.kbytes' => '1024',
	'queue.buffering.max.ms' => '10',
	'linger.ms' => '10',
	'queue.buffering.backpressure.threshold' => '1',
	'batch.num.messages' => '1000',
	'batch.size' => '100000',
	'sticky.partitioning.linger.ms' => '10',
	'message.send.max.retries' => '3',
	'retries' => '3',
	'retry.backoff.ms' => '100',
	'compression.codec' => 'lz4',
	'compression.type' => 'gzip',
	'compression.level' => '1',
	'partitioner' => 'murmur2');
my %file = map { $_ => 1 }
  qw(ssl.key.location ssl.certificate.location ssl.ca.location ssl.crl.location ssl.keystore.location);
# librdkafka 2.0.2's _RK_SENSITIVE properties, and the OIDC client secret
my %secret = map { $_ => 1 }
  qw(sasl.username sasl.password ssl.key.location ssl.key.password ssl.key.pem ssl_key
  ssl.ca.pem ssl.keystore.password sasl.oauthbearer.config sasl.oauthbearer.client.secret);

is(scalar(keys %allowed), 79, '79 properties on the allow-list');
is(join(' ', sort grep { !$seen{$_} } keys %allowed), '', 'every allow-listed property is one of librdkafka');
is(scalar(grep { !exists $allowed{$_} } @all), 93, '93 properties of librdkafka are for superusers only');

# the class of a property, which decides the expected outcomes
sub class_of
{
	my ($p) = @_;
	return 'refused' unless exists $allowed{$p};
	return $file{$p} ? ($secret{$p} ? 'secret_file' : 'file') : ($secret{$p} ? 'secret' : 'user');
}

my $node = PostgreSQL::Test::Cluster->new('kafka_properties');
$node->init;
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }

my $values = join(",\n", map {
	my $v = exists $allowed{$_} ? $allowed{$_} : 'x';
	"('$_', '$v', '" . class_of($_) . "')"
} @all);

sql(qq{
	CREATE EXTENSION streaming;
	ALTER DATABASE postgres SET streaming.autostart = off;
	CREATE ROLE alice LOGIN;
	CREATE ROLE filer LOGIN;
	GRANT pg_read_server_files TO filer;
	GRANT USAGE ON FOREIGN SERVER streaming TO alice, filer;
	GRANT USAGE ON FOREIGN DATA WRAPPER streaming TO alice, filer;
	GRANT CREATE ON SCHEMA public TO alice, filer;
	CREATE TABLE props (name text PRIMARY KEY, value text, class text);
	INSERT INTO props VALUES $values;
	GRANT SELECT ON props TO PUBLIC;

	-- 'ok' if stmt succeeds (and then undone), else its SQLSTATE
	CREATE FUNCTION outcome(stmt text) RETURNS text LANGUAGE plpgsql AS \$\$
	BEGIN
		EXECUTE stmt;
		RAISE EXCEPTION 'accepted';
	EXCEPTION WHEN OTHERS THEN
		IF SQLERRM = 'accepted' THEN RETURN 'ok'; END IF;
		RETURN SQLSTATE;
	END
	\$\$;

	-- the four places: a source, a Kafka sink, a server, a user mapping
	CREATE FUNCTION outcomes(p text, v text) RETURNS text LANGUAGE sql AS \$\$
	SELECT concat_ws(' ',
		outcome(format('SELECT streaming.create_source(%L, %L, options => %L)', 'k_' || current_user, 'kafka',
			jsonb_build_object('topic', 't', 'kafka.' || p, v)
			|| CASE WHEN p = 'bootstrap.servers' THEN '{}' ELSE '{"bootstrap_servers": "127.0.0.1:9"}' END::jsonb)),
		outcome(format('SELECT streaming.create_query(%L, %L, sink => %L, sink_options => %L, start => false)',
			'q_' || current_user, 'SELECT value FROM tick_' || current_user, 'kafka',
			jsonb_build_object('topic', 't', 'bootstrap_servers', '127.0.0.1:9', 'kafka.' || p, v))),
		outcome(format('CREATE SERVER %I FOREIGN DATA WRAPPER streaming OPTIONS (%I %L)',
			'probe_' || current_user, 'kafka.' || p, v)),
		outcome(format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I OPTIONS (%I %L)',
			'srv_' || current_user, 'kafka.' || p, v)))
	\$\$;
});
for my $role ('alice', 'filer')
{
	sql(qq{
		SET ROLE $role;
		CREATE SERVER srv_$role FOREIGN DATA WRAPPER streaming;
		SELECT streaming.create_source('tick_$role', 'rate', options => '{"rows_per_second": 1}');
	});
}

# rows "outcome: count" of one role's outcomes for the properties of a class
sub outcomes_of
{
	my ($role, $class) = @_;
	return sql(qq{
		SET ROLE $role;
		SELECT o || ': ' || count(*) FROM (SELECT outcomes(name, value) AS o FROM props WHERE class = '$class') s
		 GROUP BY o ORDER BY o});
}
# the properties of a class whose outcome differs from expected
sub unexpected
{
	my ($role, $class, $expected) = @_;
	return sql(qq{
		SET ROLE $role;
		SELECT string_agg(name || ' (' || o || ')', ', ' ORDER BY name)
		  FROM (SELECT name, outcomes(name, value) AS o FROM props WHERE class = '$class') s
		 WHERE o <> '$expected'});
}

# source, sink, server, user mapping; 42501 is insufficient_privilege,
# 22023 (invalid_parameter_value) a secret outside a user mapping
is(outcomes_of('alice', 'refused'), '42501 42501 42501 42501: 93',
	'a role without superuser: each of the 93 other properties is refused in all four places');
is(unexpected('alice', 'refused', '42501 42501 42501 42501'), '', '... none is let through');
is(outcomes_of('alice', 'user'), 'ok ok ok ok: 68',
	'the 68 allow-listed properties that are neither secrets nor server files are accepted in all four places');
is(unexpected('alice', 'user', 'ok ok ok ok'), '', '... each of them');
is(outcomes_of('alice', 'secret'), '22023 22023 22023 ok: 6',
	'the 6 allow-listed secrets are accepted only in a user mapping');
is(outcomes_of('alice', 'file') . ' / ' . outcomes_of('alice', 'secret_file'),
	'42501 42501 42501 42501: 4 / 42501 42501 42501 42501: 1',
	'the 5 properties that name a server file need pg_read_server_files');
is(outcomes_of('filer', 'file') . ' / ' . outcomes_of('filer', 'secret_file'),
	'ok ok ok ok: 4 / 22023 22023 22023 ok: 1',
	'... which a role with it may set (ssl.key.location, a secret, in a user mapping only)');
is(outcomes_of('filer', 'refused'), '42501 42501 42501 42501: 93',
	'pg_read_server_files does not open the other properties');

# a superuser may set what others may not, but secrets too belong in a user mapping
sql(q{
	CREATE SERVER srv_postgres FOREIGN DATA WRAPPER streaming;
	SELECT streaming.create_source('tick_postgres', 'rate', options => '{"rows_per_second": 1}');
});
is(sql(q{
	SELECT string_agg(p || ' ' || outcomes(p, v), ', ' ORDER BY p)
	  FROM (VALUES ('debug', 'broker'), ('sasl.kerberos.principal', 'kafka'), ('enable.idempotence', 'false'),
	               ('log_level', '7'), ('sasl.password', 'p'), ('sasl.oauthbearer.config', 'principal=admin')) t(p, v)}),
	'debug ok ok ok ok, enable.idempotence ok ok ok ok, log_level ok ok ok ok, '
	  . 'sasl.kerberos.principal ok ok ok ok, sasl.oauthbearer.config 22023 22023 22023 ok, '
	  . 'sasl.password 22023 22023 22023 ok',
	'a superuser: properties off the allow-list are accepted, secrets only in a user mapping');

# the mechanism: PLAIN and SCRAM for other roles, GSSAPI and OAUTHBEARER for superusers
is(sql(q{
	SET ROLE alice;
	SELECT string_agg(m || ' ' || outcomes('sasl.mechanism', m), ', ' ORDER BY m)
	  FROM unnest(ARRAY['PLAIN', 'SCRAM-SHA-512', 'GSSAPI', 'OAUTHBEARER', 'plain']) m}),
	'GSSAPI 42501 42501 42501 42501, OAUTHBEARER 42501 42501 42501 42501, PLAIN ok ok ok ok, '
	  . 'SCRAM-SHA-512 ok ok ok ok, plain 42501 42501 42501 42501',
	'a role without superuser may choose PLAIN and SCRAM mechanisms only');
is(sql(q{SELECT outcomes('sasl.mechanism', 'GSSAPI')}), 'ok ok ok ok', 'a superuser may choose GSSAPI');

$node->stop;
done_testing();
