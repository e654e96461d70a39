# Where Kafka credentials go.  librdkafka's mock cluster speaks no SASL, so
# two fake brokers (test/kafka/kafka_sasl_probe) record the SASL PLAIN
# user and password that every client sends them.  Roles alice, bob and
# dave use a server whose credentials are in user mappings; the test checks
# that a source connects with its owner's credentials whoever reads it (a
# query worker of another role, run() by a member of the owner's role,
# another role's peek, kafka_lag), that a sink connects with its query
# owner's, that the PUBLIC mapping serves a role without one, that
# kafka_lag refuses a role that does not own the query, and that a source
# cannot send a server's credentials to a broker of its own choosing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $prod = StreamingTest::SaslProbe->start;
my $other = StreamingTest::SaslProbe->start;
my ($prod_b, $other_b) = ($prod->bootstrap, $other->bootstrap);

my $node = PostgreSQL::Test::Cluster->new('kafka_credentials');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.launcher_naptime = 1
streaming.idle_poll = 50
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub as { my ($role, $s) = @_; return sql("SET ROLE $role; $s"); }
# the error of a statement run as role, or '' if it succeeds
sub error_as
{
	my ($role, $s) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "SET ROLE $role; $s");
	$err =~ s/^psql:[^\n]*?ERROR:\s*//s;
	$err =~ s/\n.*//s;
	return $err;
}
# what a probe receives within a few seconds (the first attempt, and the
# retries librdkafka makes meanwhile)
sub received
{
	my ($probe) = @_;
	my $got = '';
	for (1 .. 100)
	{
		usleep(50_000);
		my $c = $probe->credentials;
		$got = join(' ', sort grep { length } (split(/ /, $got), split(/ /, $c)));
		last if $got ne '' && $_ > 20;
	}
	my %u = map { $_ => 1 } split / /, $got;
	return join(' ', sort keys %u);
}
sub drain { $_[0]->credentials for 1 .. 3; return; }

sql(qq{
	CREATE EXTENSION streaming;
	ALTER DATABASE postgres SET streaming.autostart = off;
	CREATE ROLE alice LOGIN;
	CREATE ROLE bob LOGIN;
	CREATE ROLE dave LOGIN;
	CREATE ROLE alice_ops LOGIN IN ROLE alice;
	CREATE ROLE carol LOGIN;
	GRANT USAGE ON FOREIGN SERVER streaming TO alice, bob, dave, alice_ops;
	GRANT CREATE ON SCHEMA public TO alice, bob, dave;
	CREATE SERVER kprod FOREIGN DATA WRAPPER streaming
	  OPTIONS (bootstrap_servers '$prod_b', "kafka.security.protocol" 'SASL_PLAINTEXT',
	           "kafka.sasl.mechanism" 'PLAIN', "kafka.reconnect.backoff.ms" '100');
	CREATE SERVER kother FOREIGN DATA WRAPPER streaming
	  OPTIONS (bootstrap_servers '$other_b', "kafka.security.protocol" 'SASL_PLAINTEXT',
	           "kafka.sasl.mechanism" 'PLAIN', "kafka.reconnect.backoff.ms" '100');
	GRANT USAGE ON FOREIGN SERVER kprod, kother TO alice, bob, dave, alice_ops;
	CREATE USER MAPPING FOR PUBLIC SERVER kprod
	  OPTIONS ("kafka.sasl.username" 'shared', "kafka.sasl.password" 'shared-pw');
});
as('alice', q{CREATE USER MAPPING FOR CURRENT_USER SERVER kprod
	OPTIONS ("kafka.sasl.username" 'alice', "kafka.sasl.password" 'alice-pw')});
as('alice_ops', q{CREATE USER MAPPING FOR CURRENT_USER SERVER kprod
	OPTIONS ("kafka.sasl.username" 'ops', "kafka.sasl.password" 'ops-pw')});
as('bob', q{CREATE USER MAPPING FOR CURRENT_USER SERVER kprod
	OPTIONS ("kafka.sasl.username" 'bob', "kafka.sasl.password" 'bob-pw');
	CREATE USER MAPPING FOR CURRENT_USER SERVER kother
	OPTIONS ("kafka.sasl.username" 'bob', "kafka.sasl.password" 'bob-other-pw')});

# --- a source cannot redirect a server's credentials to its own broker
is(error_as('alice', qq{SELECT streaming.create_source('a_redirect', 'kafka', NULL,
		'{"server": "kprod", "bootstrap_servers": "$other_b", "topic": "t"}')}),
	'option "bootstrap_servers" cannot be set where server "kprod" supplies the credentials',
	'a source naming a server with credentials cannot name its own brokers');
is(error_as('alice', q{SELECT streaming.create_source('a_redirect', 'kafka', NULL,
		'{"server": "kprod", "topic": "t", "kafka.security.protocol": "PLAINTEXT"}')}),
	'option "kafka.security.protocol" cannot be set where server "kprod" supplies the credentials',
	'... nor weaken their protection');
is(received($other) . '|' . received($prod), '|', 'no broker was contacted');

# --- alice's source and query; bob may read the source
as('alice', q{
	SELECT streaming.create_source('a_src', 'kafka', NULL, '{"server": "kprod", "topic": "t"}');
	SELECT streaming.create_query('a_q', 'SELECT value FROM a_src', start => false);
	GRANT SELECT ON a_src TO bob;
});

drain($prod);
is(as('alice_ops', q{SELECT streaming.run('a_q')}), '0', 'run() by a member of the owner role: no batch (no broker)');
is(received($prod), 'alice:alice-pw', '... and the broker received the source owner\'s credentials, not the caller\'s');

drain($prod);
like(error_as('bob', q{SELECT * FROM a_src}), qr/could not reach Kafka/, 'bob peeks at alice\'s source');
is(received($prod), 'alice:alice-pw', '... with the source owner\'s credentials, never his own');

is(error_as('bob', q{SELECT * FROM streaming.kafka_lag('a_q')}),
	'must be owner of continuous query "a_q"', 'kafka_lag refuses a role that does not own the query');
is(error_as('carol', q{SELECT * FROM streaming.kafka_lag('a_q')}),
	'must be owner of continuous query "a_q"', '... even one with no grant at all');
drain($prod);
like(error_as('alice_ops', q{SELECT * FROM streaming.kafka_lag('a_q')}), qr/could not reach Kafka/,
	'kafka_lag by a member of the owner role asks the broker');
is(received($prod), 'alice:alice-pw', '... with the source owner\'s credentials');

# --- a role without a user mapping of its own gets the PUBLIC one
as('dave', q{
	SELECT streaming.create_source('d_src', 'kafka', NULL, '{"server": "kprod", "topic": "t"}');
	SELECT streaming.create_query('d_q', 'SELECT value FROM d_src', start => false);
});
drain($prod);
is(as('dave', q{SELECT streaming.run('d_q')}), '0', 'dave, who has no user mapping, runs his query');
is(received($prod), 'shared:shared-pw', '... with the PUBLIC user mapping');

# --- the right password to the right broker: bob's source on the other server
as('bob', q{
	SELECT streaming.create_source('b_src', 'kafka', NULL, '{"server": "kother", "topic": "t"}');
	SELECT streaming.create_query('b_q', 'SELECT value FROM b_src', start => false);
});
drain($prod);
drain($other);
is(as('bob', q{SELECT streaming.run('b_q')}), '0', 'bob runs his query on the other server');
is(received($other) . '|' . received($prod), 'bob:bob-other-pw|',
	'... its broker receives his mapping for that server, the first broker nothing');

# --- a sink connects with its query owner's credentials
as('alice', q{
	SELECT streaming.create_source('a_ticks', 'rate', options => '{"rows_per_batch": 2}');
	SELECT streaming.create_query('a_out', 'SELECT value FROM a_ticks', start => false,
		sink => 'kafka', sink_options => '{"server": "kprod", "topic": "out", "kafka.message.timeout.ms": 1500}');
});
is(sql(q{SELECT sink_options FROM streaming.queries WHERE name = 'a_out'}),
	'{"topic": "out", "server": "kprod", "kafka.message.timeout.ms": 1500}',
	'the sink\'s options name the server; no credential is stored with the query');
drain($prod);
like(error_as('alice_ops', q{SELECT streaming.run('a_out')}), qr/could not deliver 2 of 2 messages/,
	'run() of a query with a Kafka sink by a member of the owner role');
is(received($prod), 'alice:alice-pw', '... the producer used the query owner\'s credentials');
is(error_as('bob', q{SELECT streaming.create_query('b_out', 'SELECT value FROM a_src',
		sink => 'kafka', sink_options => '{"server": "kprod", "topic": "out", "kafka.sasl.password": "x"}')}),
	'option "kafka.sasl.password" may be set only in a user mapping', 'a sink refuses a secret in its options');

# --- a query worker of another role reads alice's source with her credentials
as('bob', q{SELECT streaming.create_query('b_over_a', 'SELECT value FROM a_src')});
drain($prod);
sql(q{SELECT streaming.start('b_over_a')});
is(received($prod), 'alice:alice-pw', 'bob\'s query worker reads alice\'s source with alice\'s credentials');
sql(q{SELECT streaming.stop('b_over_a')});

$prod->quit;
$other->quit;
$node->stop;
done_testing();
