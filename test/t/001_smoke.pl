# Smoke test: the library preloads, the extension installs at version 0.1,
# and its catalog tables exist.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('smoke');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION streaming');

is( $node->safe_psql(
		'postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'streaming'"),
	'0.1',
	'extension version is 0.1');

is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'streaming' AND c.relkind = 'r'
		   AND c.relname IN ('sources', 'queries', 'offsets', 'progress', 'dead_letters')}),
	'5',
	'catalog tables sources, queries, offsets, progress and dead_letters exist');

$node->stop;
done_testing();
