/*
 * kafka_conf_props: every configuration property of the librdkafka the
 * extension is linked with, for t/032_kafka_properties.pl.
 *
 * Prints "version <librdkafka version>" and then librdkafka's own table of
 * its properties (rd_kafka_conf_properties_show(), the table of
 * CONFIGURATION.md): one "name | C/P | range | default | importance |
 * description" line per property, global ones first, then topic ones.
 * Hidden properties are not in the table; the test names them itself.
 */
#include <stdio.h>

#include <librdkafka/rdkafka.h>

int
main(void)
{
	printf("version %s\n", rd_kafka_version_str());
	rd_kafka_conf_properties_show(stdout);
	return 0;
}
