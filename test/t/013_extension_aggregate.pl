# An aggregate of another extension, kept incrementally through its combine
# and serialization functions: postgresql-hll's hll_add_agg (internal state).
# The incremental sketch must equal, exactly, the sketch over all the input.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('hll');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
# batches are driven by run() here, not by background workers
$node->append_conf('postgresql.conf', "streaming.autostart = off");
$node->start;

if ($node->safe_psql('postgres', "SELECT count(*) FROM pg_available_extensions WHERE name = 'hll'") ne '1')
{
	plan skip_all => 'postgresql-15-hll is not installed';
}

my $dir = $node->basedir . '/incoming';
mkdir $dir or die;
for my $f (1 .. 3)
{
	open my $fh, '>', "$dir/$f.csv" or die;
	print $fh 'k' . ($_ % 3) . ',' . ($_ % (700 * $f)) . "\n" for 1 .. 4000;
	close $fh;
}

$node->safe_psql('postgres', qq{
	CREATE EXTENSION hll;
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('visits', 'file', 'k text, uid int',
		'{"path": "$dir", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('uniq',
		\$\$SELECT k, hll_add_agg(hll_hash_integer(uid)) AS users, count(*) AS n FROM visits GROUP BY k\$\$,
		output_mode => 'update');
});
like($node->safe_psql('postgres', "SELECT statement FROM streaming.explain('uniq') WHERE step = 'aggregate' AND statement LIKE 'users:%'"),
	qr/^users: hll_add_agg\(hll_hashval\) as its serialized transition state in bytea column s1, merged by its combine function/,
	'explain shows how the extension aggregate is kept');
is($node->safe_psql('postgres', "SELECT streaming.run('uniq')"), '3', 'three batches');

$node->safe_psql('postgres', qq{
	CREATE TABLE all_visits (k text, uid int);
	COPY all_visits FROM PROGRAM 'cat $dir/*.csv' WITH (FORMAT csv);
});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM uniq u JOIN (
		SELECT k, hll_add_agg(hll_hash_integer(uid)) AS users FROM all_visits GROUP BY k) d USING (k)
	 WHERE hll_cardinality(u.users) = hll_cardinality(d.users)}), '3',
	'the incremental sketch equals the sketch over all the input, for every group');
is($node->safe_psql('postgres', q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM uniq}),
	'k0=3999,k1=4002,k2=3999', 'exact counts beside the sketch');

$node->stop;
done_testing();
