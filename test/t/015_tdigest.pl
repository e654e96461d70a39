# Percentiles of a stream: percentile_cont and friends are ordered-set
# aggregates, which have no incremental form; the tdigest extension's
# aggregates (postgresql-15-tdigest) have combine and serialization
# functions and are kept like any such aggregate, in expressions and HAVING
# too.  The sketch is approximate: its percentiles must be close to the
# exact ones over all the input.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('tdigest');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'streaming'");
# batches are driven by run() here, not by background workers
$node->append_conf('postgresql.conf', "streaming.autostart = off");
$node->start;

if ($node->safe_psql('postgres', "SELECT count(*) FROM pg_available_extensions WHERE name = 'tdigest'") ne '1')
{
	plan skip_all => 'postgresql-15-tdigest is not installed';
}

# groups k0..k2 get 1000 rows a file each, k3 only 5: HAVING leaves it out
my $dir = $node->basedir . '/incoming';
mkdir $dir or die;
for my $f (1 .. 3)
{
	open my $fh, '>', "$dir/$f.csv" or die;
	for my $i (1 .. 3000)
	{
		printf $fh "k%d,%.1f\n", $i % 3, (($i * 7919 + $f * 104729) % 1000) / 10.0 + $f * 10 * ($i % 3);
	}
	print $fh "k3,$_\n" for 1 .. 5;
	close $fh;
}

$node->safe_psql('postgres', qq{
	CREATE EXTENSION tdigest;
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('samples', 'file', 'k text, v float8',
		'{"path": "$dir", "format": "csv", "max_files_per_trigger": 1}');
	SELECT streaming.create_query('pct',
		\$\$SELECT k, tdigest_percentile(v, 100, 0.95) AS p95,
		          tdigest_percentile(v, 100, 0.95) - tdigest_percentile(v, 100, 0.05) AS spread,
		          count(*) AS n
		     FROM samples GROUP BY k HAVING count(*) > 100\$\$,
		output_mode => 'update');
});
like($node->safe_psql('postgres', "SELECT string_agg(statement, E'\\n') FROM streaming.explain('pct') WHERE step = 'aggregate'"),
	qr/tdigest_percentile\(double precision,integer,double precision\) as its serialized transition state in bytea column/,
	'explain shows the sketch kept as a serialized state');
$node->psql('postgres',
	"SELECT streaming.create_query('exact', \$\$SELECT k, percentile_cont(0.95) WITHIN GROUP (ORDER BY v) FROM samples GROUP BY k\$\$, output_mode => 'update')",
	stderr => \my $refused);
like($refused, qr/ordered-set aggregate percentile_cont has no incremental form.*HINT:.*tdigest_percentile/s,
	'percentile_cont is refused, with a hint to the sketch');
is($node->safe_psql('postgres', "SELECT streaming.run('pct')"), '3', 'three batches');

$node->safe_psql('postgres', qq{
	CREATE TABLE all_samples (k text, v float8);
	COPY all_samples FROM PROGRAM 'cat $dir/*.csv' WITH (FORMAT csv);
	CREATE TABLE exact AS
		SELECT k, percentile_cont(0.95) WITHIN GROUP (ORDER BY v) AS p95,
		       percentile_cont(0.95) WITHIN GROUP (ORDER BY v) - percentile_cont(0.05) WITHIN GROUP (ORDER BY v) AS spread,
		       count(*) AS n
		  FROM all_samples GROUP BY k HAVING count(*) > 100;
});
is($node->safe_psql('postgres', q{SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM pct}),
	'k0=3000,k1=3000,k2=3000', 'the groups that satisfy HAVING, with exact counts');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM pct p JOIN exact e USING (k)
	 WHERE abs(p.p95 - e.p95) < 0.5 AND abs(p.spread - e.spread) < 1 AND p.n = e.n}), '3',
	'the incremental percentiles are within the sketch\'s error of the exact ones');
is($node->safe_psql('postgres', q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute
	 WHERE attrelid = 'pct'::regclass AND attname = 'spread'}), 'double precision', 'typed as PostgreSQL types it');

$node->stop;
done_testing();
