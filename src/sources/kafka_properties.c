/*-------------------------------------------------------------------------
 *
 * kafka_properties.c
 *	  Which librdkafka properties a role may set, and where: the one
 *	  allow-list that the Kafka source, the Kafka sink and the FDW
 *	  validator (servers and user mappings) all check.
 *
 * A "kafka.<property>" option goes to librdkafka as it is.  Many of
 * librdkafka's properties reach far beyond the network: some load code
 * (plugin.library.paths, ssl.engine.location, ssl.providers), some run a
 * shell command into which other properties are pasted unquoted
 * (sasl.kerberos.kinit.cmd with sasl.kerberos.principal and keytab), some
 * write files (offset.store.path), some make requests to other URLs
 * (sasl.oauthbearer.token.endpoint.url) or log what should stay secret
 * (debug).  A deny-list of them is bound to miss one, and every librdkafka
 * release adds properties, so roles other than superusers get an
 * allow-list: the properties an ordinary user needs to connect (security
 * protocol, SASL PLAIN or SCRAM, TLS) and to tune sizes, timeouts and
 * compression.  Everything else is for superusers.  Properties that name a
 * file of the server's also need the privileges of pg_read_server_files.
 *
 * Secrets (the properties librdkafka marks sensitive, and the OAUTHBEARER
 * client secret) are refused everywhere but in a user mapping, whose
 * options PostgreSQL shows only to the mapped role and the server's owner:
 * a source's options (streaming.sources), a query's sink options
 * (streaming.queries) and a server's options (pg_foreign_server) are
 * readable by every role.
 *
 * Options are checked with the rights of the role that sets them: the FDW
 * validator as the role that creates or alters a server or user mapping,
 * create_source and create_query as the creating role, and each time a
 * source or sink connects as its owner, so that a definition stored
 * before the rules got stricter cannot run with settings its owner may
 * not set.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/jsonb.h"

#include "source.h"
#include "streaming.h"

/* what a property is, for the checks */
#define KP_USER			0x01	/* any role may set it */
#define KP_FILE			0x02	/* names a server file: pg_read_server_files */
#define KP_SECRET		0x04	/* a credential: only in a user mapping */
#define KP_CONNECTION	0x08	/* decides where and how credentials travel */
#define KP_MECHANISM	0x10	/* a SASL mechanism: PLAIN or SCRAM for others */

typedef struct KafkaProperty
{
	const char *name;			/* librdkafka's name, without "kafka." */
	int			flags;
} KafkaProperty;

/*
 * The allow-list (KP_USER or KP_FILE), and the secrets, some of which are
 * for superusers only.  README.md lists the same properties; the TAP test
 * t/032_kafka_properties.pl checks every property of librdkafka against
 * this table.
 */
static const KafkaProperty kafka_properties[] = {
	/* where to connect, and how */
	{"bootstrap.servers", KP_USER | KP_CONNECTION},
	{"security.protocol", KP_USER | KP_CONNECTION},
	{"sasl.mechanism", KP_USER | KP_CONNECTION | KP_MECHANISM},
	{"sasl.mechanisms", KP_USER | KP_CONNECTION | KP_MECHANISM},
	{"sasl.username", KP_USER | KP_SECRET},
	{"sasl.password", KP_USER | KP_SECRET},
	{"ssl.cipher.suites", KP_USER | KP_CONNECTION},
	{"ssl.curves.list", KP_USER | KP_CONNECTION},
	{"ssl.sigalgs.list", KP_USER | KP_CONNECTION},
	{"ssl.key.pem", KP_USER | KP_SECRET},
	{"ssl.key.password", KP_USER | KP_SECRET},
	{"ssl.key.location", KP_FILE | KP_SECRET},
	{"ssl.certificate.pem", KP_USER},
	{"ssl.certificate.location", KP_FILE},
	{"ssl.ca.pem", KP_USER | KP_SECRET | KP_CONNECTION},
	{"ssl.ca.location", KP_FILE | KP_CONNECTION},
	{"ssl.crl.location", KP_FILE | KP_CONNECTION},
	{"ssl.keystore.location", KP_FILE},
	{"ssl.keystore.password", KP_USER | KP_SECRET},
	{"enable.ssl.certificate.verification", KP_USER | KP_CONNECTION},
	{"ssl.endpoint.identification.algorithm", KP_USER | KP_CONNECTION},
	{"client.id", KP_USER},
	{"client.rack", KP_USER},
	{"api.version.request", KP_USER},
	{"api.version.request.timeout.ms", KP_USER},
	{"api.version.fallback.ms", KP_USER},
	{"broker.version.fallback", KP_USER},

	/* sockets and reconnection */
	{"socket.timeout.ms", KP_USER},
	{"socket.connection.setup.timeout.ms", KP_USER},
	{"socket.send.buffer.bytes", KP_USER},
	{"socket.receive.buffer.bytes", KP_USER},
	{"socket.keepalive.enable", KP_USER},
	{"socket.nagle.disable", KP_USER},
	{"socket.max.fails", KP_USER},
	{"connections.max.idle.ms", KP_USER},
	{"reconnect.backoff.ms", KP_USER},
	{"reconnect.backoff.max.ms", KP_USER},
	{"broker.address.ttl", KP_USER},
	{"broker.address.family", KP_USER},

	/* metadata and request sizes */
	{"metadata.max.age.ms", KP_USER},
	{"topic.metadata.refresh.interval.ms", KP_USER},
	{"topic.metadata.refresh.fast.interval.ms", KP_USER},
	{"topic.metadata.refresh.sparse", KP_USER},
	{"topic.metadata.propagation.max.ms", KP_USER},
	{"message.max.bytes", KP_USER},
	{"message.copy.max.bytes", KP_USER},
	{"receive.message.max.bytes", KP_USER},
	{"max.in.flight.requests.per.connection", KP_USER},
	{"max.in.flight", KP_USER},

	/* the source's fetching */
	{"queued.min.messages", KP_USER},
	{"queued.max.messages.kbytes", KP_USER},
	{"fetch.wait.max.ms", KP_USER},
	{"fetch.message.max.bytes", KP_USER},
	{"max.partition.fetch.bytes", KP_USER},
	{"fetch.max.bytes", KP_USER},
	{"fetch.min.bytes", KP_USER},
	{"fetch.error.backoff.ms", KP_USER},
	{"isolation.level", KP_USER},
	{"check.crcs", KP_USER},

	/* the sink's producing */
	{"request.required.acks", KP_USER},
	{"acks", KP_USER},
	{"request.timeout.ms", KP_USER},
	{"message.timeout.ms", KP_USER},
	{"delivery.timeout.ms", KP_USER},
	{"queue.buffering.max.messages", KP_USER},
	{"queue.buffering.max.kbytes", KP_USER},
	{"queue.buffering.max.ms", KP_USER},
	{"linger.ms", KP_USER},
	{"queue.buffering.backpressure.threshold", KP_USER},
	{"batch.num.messages", KP_USER},
	{"batch.size", KP_USER},
	{"sticky.partitioning.linger.ms", KP_USER},
	{"message.send.max.retries", KP_USER},
	{"retries", KP_USER},
	{"retry.backoff.ms", KP_USER},
	{"compression.codec", KP_USER},
	{"compression.type", KP_USER},
	{"compression.level", KP_USER},
	{"partitioner", KP_USER},

	/* secrets that only a superuser may set (in a user mapping) */
	{"sasl.oauthbearer.config", KP_SECRET},
	{"sasl.oauthbearer.client.secret", KP_SECRET},
	{"ssl_key", KP_SECRET},
};

/* the SASL mechanisms that other roles than superusers may choose */
static const char *const user_mechanisms[] = {
	"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL
};

/*
 * KafkaIsPassthroughKey: a "kafka.*" option goes to librdkafka.
 */
bool
KafkaIsPassthroughKey(const char *key)
{
	return strncmp(key, "kafka.", 6) == 0;
}

/* the table's entry of a librdkafka property, or NULL */
static const KafkaProperty *
kafka_property(const char *name)
{
	for (int i = 0; i < lengthof(kafka_properties); i++)
		if (strcmp(kafka_properties[i].name, name) == 0)
			return &kafka_properties[i];
	return NULL;
}

static int
property_flags(const char *key)
{
	const KafkaProperty *p;

	if (strcmp(key, "bootstrap_servers") == 0)
		return KP_USER | KP_CONNECTION;
	if (!KafkaIsPassthroughKey(key))
		return 0;
	p = kafka_property(key + 6);
	return p ? p->flags : 0;
}

/* why a place other than a user mapping must not hold a secret */
static const char *
place_detail(KafkaOptionsPlace place)
{
	switch (place)
	{
		case KAFKA_IN_SOURCE:
			return "A source's options are kept in streaming.sources, which every role may read.";
		case KAFKA_IN_SINK:
			return "A query's sink options are kept in streaming.queries, which every role may read.";
		case KAFKA_IN_SERVER:
			return "A server's options are shown to every role by pg_foreign_server.";
		case KAFKA_IN_USER_MAPPING:
			break;
	}
	return NULL;
}

/*
 * KafkaCheckOptions checks the kafka.* options of one place (a source's or
 * a sink's own options, a server's, a user mapping's) as set by role: a
 * role other than a superuser may set only allow-listed properties, those
 * that name a server file only with the privileges of
 * pg_read_server_files, and a SASL mechanism only among PLAIN and SCRAM;
 * secrets belong in a user mapping, whoever sets them.
 */
void
KafkaCheckOptions(Jsonb *options, KafkaOptionsPlace place, Oid role)
{
	bool		is_superuser = superuser_arg(role);
	ListCell   *lc;

	foreach(lc, JsonbObjectKeys(options))
	{
		char	   *key = lfirst(lc);
		JsonbValue *v;
		int			flags;
		char	   *value;

		if (!KafkaIsPassthroughKey(key))
			continue;
		v = JsonbGetKey(options, key);
		/* null would reset a property to librdkafka's default */
		if (v->type != jbvString && v->type != jbvNumeric && v->type != jbvBool)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"%s\"", key),
					 errhint("Use a string, a number or a boolean.")));
		value = JsonbValueAsText(v);
		flags = property_flags(key);

		if (!is_superuser)
		{
			if ((flags & (KP_USER | KP_FILE)) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser may set option \"%s\"", key),
						 errdetail("Other roles may set only allow-listed librdkafka properties: "
								   "those that connect (security protocol, SASL PLAIN or SCRAM, TLS) "
								   "and those that tune sizes, timeouts and compression.")));
			if ((flags & KP_FILE) && !has_privs_of_role(role, ROLE_PG_READ_SERVER_FILES))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("permission denied to set option \"%s\"", key),
						 errdetail("Only roles with privileges of the \"pg_read_server_files\" role may name server files.")));
			if (flags & KP_MECHANISM)
			{
				bool		ok = false;

				for (int i = 0; user_mechanisms[i] != NULL; i++)
					ok |= strcmp(value, user_mechanisms[i]) == 0;
				if (!ok)
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("only a superuser may set option \"%s\" to \"%s\"", key, value),
							 errdetail("Other roles may choose PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512: "
									   "GSSAPI runs the kinit command with the server's Kerberos settings, "
									   "and OAUTHBEARER needs settings reserved to superusers.")));
			}
		}
		if ((flags & KP_SECRET) && place != KAFKA_IN_USER_MAPPING)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("option \"%s\" may be set only in a user mapping", key),
					 errdetail("%s", place_detail(place)),
					 place == KAFKA_IN_SERVER ?
					 errhint("Put it in a user mapping for the server, e.g. "
							 "CREATE USER MAPPING FOR CURRENT_USER SERVER kafka_prod OPTIONS (\"%s\" '...').",
							 key) :
					 errhint("Put it in a user mapping, e.g. "
							 "CREATE USER MAPPING FOR CURRENT_USER SERVER kafka_prod OPTIONS (\"%s\" '...'), "
							 "and name the server with the option \"server\".",
							 key)));
	}
}

/*
 * KafkaCheckInherited: a source or sink whose server or user mapping
 * supplies a secret may not choose, in its own options, where the secret
 * goes or how it is protected (the brokers, the security protocol and
 * mechanism, TLS verification); otherwise any role allowed to use a server
 * could send the server's PUBLIC credentials to a broker of its own.
 */
void
KafkaCheckInherited(Jsonb *own, Jsonb *inherited, const char *servername)
{
	bool		secret = false;
	ListCell   *lc;

	foreach(lc, JsonbObjectKeys(inherited))
		secret |= (property_flags(lfirst(lc)) & KP_SECRET) != 0;
	if (!secret)
		return;
	foreach(lc, JsonbObjectKeys(own))
	{
		char	   *key = lfirst(lc);

		if (property_flags(key) & KP_CONNECTION)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("option \"%s\" cannot be set where server \"%s\" supplies the credentials",
							key, servername),
					 errdetail("The credentials of a user mapping go only to the brokers, "
							   "and with the security settings, that the server and the user mapping name."),
					 errhint("Set it on the server or in the user mapping, or use another server.")));
	}
}

/*
 * KafkaCheckSasl: with a SASL security protocol the mechanism must be
 * named.  librdkafka's default, GSSAPI, runs the kinit command; nobody
 * should get it without asking for it.
 */
void
KafkaCheckSasl(Jsonb *options)
{
	JsonbValue *protocol = JsonbGetKey(options, "kafka.security.protocol");
	char	   *value;

	if (protocol == NULL || protocol->type != jbvString)
		return;
	value = JsonbValueAsText(protocol);
	if (pg_strncasecmp(value, "sasl_", 5) != 0)
		return;
	if (JsonbGetKey(options, "kafka.sasl.mechanism") == NULL &&
		JsonbGetKey(options, "kafka.sasl.mechanisms") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("security protocol \"%s\" needs the option \"kafka.sasl.mechanism\"", value),
				 errdetail("librdkafka's default mechanism, GSSAPI, runs the kinit command; it is used only when named."),
				 errhint("Add \"kafka.sasl.mechanism\" (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) beside \"kafka.security.protocol\".")));
}
