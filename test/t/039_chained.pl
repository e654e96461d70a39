# Chained queries: a query reads another query's result through a table
# source.  Pool workers run an append-mode rollup per minute over a file
# source and, over its result table, an append-mode rollup per hour with its
# own watermark; files arrive over several batches.  The hourly result must
# equal plain SQL over the input files for every hour its watermark closed,
# and drop_query of the upstream refuses while a source follows its result.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $node = StreamingTest::logical_node('chained', qq{
streaming.idle_poll = 50
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub wait_for { return StreamingTest::wait_for($node, @_); }

my $dir = $node->basedir . '/readings';
mkdir $dir or die;

# file n: readings of three sensors at half past every minute of hour
# n - 1, and one of s1 on the hour n: the watermark (0 seconds) closes the
# minutes of hour n - 1, and no row of the next file is at or before it
sub put_file
{
	my ($n) = @_;
	open my $fh, '>', "$dir/.tmp" or die;
	for my $minute (($n - 1) * 60 .. $n * 60 - 1)
	{
		for my $sensor (qw(s1 s2 s3))
		{
			my $v = ($minute * 7 + length($sensor) * 13 + ord(substr($sensor, 1))) % 50;
			printf $fh "%s,%d,2024-01-01 %02d:%02d:30+00\n", $sensor, $v, int($minute / 60), $minute % 60;
		}
	}
	printf $fh "s1,1,2024-01-01 %02d:00:00+00\n", $n;
	close $fh;
	rename "$dir/.tmp", sprintf("%s/f%02d.csv", $dir, $n) or die;
}

sql(qq{
	CREATE EXTENSION streaming;
	SELECT streaming.create_source('readings', 'file', schema => 'sensor text, v int, ts timestamptz',
		options => '{"path": "$dir", "format": "csv"}');
	SELECT streaming.create_query('per_minute',
		\$\$SELECT streaming.window(ts, '1 minute') AS w, lower(streaming.window(ts, '1 minute')) AS minute,
		         sensor, count(*) AS n, sum(v) AS total
		    FROM readings GROUP BY 1, 3\$\$,
		output_mode => 'append', event_time => 'ts', watermark => '0 seconds');
	SELECT streaming.create_source('per_minute_s', 'table', options => '{"table": "public.per_minute"}');
	SELECT streaming.create_query('per_hour',
		\$\$SELECT streaming.window(minute, '1 hour') AS h, sensor, sum(n) AS n, sum(total) AS total,
		         count(*) AS minutes
		    FROM per_minute_s GROUP BY 1, 2\$\$,
		output_mode => 'append', event_time => 'minute', watermark => '0 seconds');
});
# the downstream's stream starts when its worker has made its slot
wait_for(q{SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'streaming\_%'}, '1',
	'the downstream query has its replication slot');

for my $n (1 .. 4)
{
	put_file($n);
	# the upstream has read the file and closed its minutes ...
	wait_for(qq{SELECT count(*) FROM streaming.offsets WHERE query = 'per_minute'}, "$n",
		"file $n read by the per-minute query");
	# ... and the downstream has followed its result table up to there
	wait_for(q{SELECT (SELECT max(minute) FROM per_minute) = (SELECT watermark FROM streaming.queries WHERE name = 'per_hour')},
		't', "file $n: the per-hour query has followed the per-minute result");
}

sql(qq{
	CREATE TABLE raw (sensor text, v int, ts timestamptz);
	COPY raw FROM PROGRAM 'cat $dir/f*.csv' WITH (FORMAT csv);
});
my $closed = q{(SELECT watermark FROM streaming.queries WHERE name = 'per_hour')};
my $reference = qq{
	SELECT streaming.window(date_trunc('minute', ts), '1 hour') AS h, sensor, count(*) AS n, sum(v) AS total,
	       count(DISTINCT date_trunc('minute', ts)) AS minutes
	  FROM raw WHERE date_trunc('minute', ts) + interval '1 minute' <= (SELECT max(ts) FROM raw)
	 GROUP BY 1, 2 HAVING upper(streaming.window(date_trunc('minute', ts), '1 hour')) <= $closed};
is(sql("SELECT count(*) FROM ($reference) r"), '9', 'three hours of three sensors are closed (the fourth is not)');
is(sql('SELECT count(*) FROM per_hour'), '9', 'the per-hour result holds them');
is(sql("SELECT count(*) FROM (($reference) EXCEPT ALL SELECT * FROM per_hour) d"), '0', 'no hour missing or different');
is(sql("SELECT count(*) FROM (SELECT * FROM per_hour EXCEPT ALL ($reference)) d"), '0', 'no hour extra');
is(sql('SELECT sum(minutes) FROM per_hour'), 3 * 3 * 60, 'every closed minute counted once');

# the upstream cannot go while a source follows its result
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT streaming.drop_query('per_minute')});
like($err, qr/cannot drop continuous query "per_minute" because source "per_minute_s" follows its result table/,
	'drop_query of the upstream is refused');
like($err, qr/Continuous query "per_hour" reads source "per_minute_s"/, 'naming the query that reads it');
is(sql(q{SELECT count(*) FROM streaming.queries}), '2', 'both queries are still there');
sql(q{SELECT streaming.drop_query('per_hour'); SELECT streaming.drop_source('per_minute_s');
      SELECT streaming.drop_query('per_minute')});
is(sql(q{SELECT count(*) FROM streaming.queries}), '0', 'dropped downstream first, then the upstream');

$node->stop;
done_testing();
