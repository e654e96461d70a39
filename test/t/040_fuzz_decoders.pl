# No input can crash the server or stop a query: seeded random and hostile
# records (broken UTF-8, NUL bytes, deep nesting, huge numbers, stray
# quotes, wrong arity, surrogate escapes, very long lines) go through the
# json, csv and text decoders of the file source and the json and csv
# decoders of the Kafka source.  Every record ends up either as a row or as
# a dead letter — the two counts add up to the input exactly — every valid
# record is among the rows, and the server never restarts.
#
# The seed is fixed, so that make test is repeatable; FUZZ_SEED=random
# draws one (printed, to rerun it as FUZZ_SEED=n); FUZZ_RECORDS=n changes
# the size.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use StreamingTest;

my $seed = $ENV{FUZZ_SEED} // 47825;
$seed = int(rand(1_000_000)) if $seed eq 'random';
my $records = $ENV{FUZZ_RECORDS} // 3000;
note "FUZZ_SEED=$seed FUZZ_RECORDS=$records";
srand($seed);

my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.autostart = off
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
my $started = sql(q{SELECT pg_postmaster_start_time()});
my $base = $node->basedir;

# --- generators
sub rand_bytes
{
	my ($n) = @_;
	return join('', map { chr(int(rand(256))) } 1 .. $n);
}
sub pick { return $_[int(rand(@_))]; }
my @hostile_scalars = (
	'1e999', '-1e999', '99999999999999999999999999999', '-0', '0x10', 'NaN', 'Infinity',
	'"\u0000"', '"\ud800"', '"\udc00\ud800"', '"\uZZZZ"', '"\\', '"' . ('x' x 100_000) . '"',
	'"2024-02-30T25:61:00Z"', '"infinity"', '"-infinity"', 'true', 'false', 'null',
	'"' . "\xff\xfe" . '"', '"' . "\xc3" . '"', '"' . "\xe2\x82" . '"', '[]', '{}',
	'[' x 5000 . ']' x 5000, '{"a":' x 3000 . '1' . '}' x 3000, '[' x 200_000,
	'"' . "\x00" . '"', '12abc', '--1', '1.2.3', '"\t\n"',
);
sub json_valid
{
	my ($id) = @_;
	return sprintf('{"id": %d, "name": "n%d", "amount": %d.%02d, "ok": %s, "ts": "2024-01-01T00:%02d:00Z", "doc": {"k": [%d]}}',
		$id, $id, $id % 1000, $id % 100, $id % 2 ? 'true' : 'false', $id % 60, $id);
}
sub json_hostile
{
	my $kind = int(rand(6));
	return rand_bytes(1 + int(rand(60))) if $kind == 0;
	if ($kind == 1)
	{
		# mutated after the id, which stays out of the valid ids' range
		my $line = json_valid(1_000_000 + int(rand(1000)));
		my $from = index($line, ', "name"');
		substr($line, $from + int(rand(length($line) - $from)), 1 + int(rand(5)), rand_bytes(1 + int(rand(3))));
		return $line;
	}
	return sprintf('{"id": %s, "name": %s}', pick(@hostile_scalars), pick(@hostile_scalars)) if $kind == 2;
	return sprintf('{"amount": %s, "ts": %s, "ok": %s}', pick(@hostile_scalars), pick(@hostile_scalars),
		pick(@hostile_scalars)) if $kind == 3;
	return sprintf('{"doc": %s, "id": 2000000}', pick(@hostile_scalars)) if $kind == 4;
	return pick('[1,2,3]', '"just a string"', '42', 'null', '{"id": 2000001, "id": 2000002}', '{', '}',
		'{"id": 2000001}}', '{"id": 2000001} {"id": 2000002}', '{"id" 2000001}', "{\"id\": 2000001,}",
		' ' x 10 . 'x');
}
sub csv_valid
{
	my ($id) = @_;
	return sprintf('%d,n%d,%d.%02d,%s,2024-01-01 00:%02d:00+00', $id, $id, $id % 1000, $id % 100,
		$id % 2 ? 't' : 'f', $id % 60);
}
sub csv_hostile
{
	my $kind = int(rand(5));
	return rand_bytes(1 + int(rand(60))) if $kind == 0;
	if ($kind == 1)
	{
		my $line = csv_valid(1_000_000 + int(rand(1000)));
		my $from = index($line, ',');
		substr($line, $from + int(rand(length($line) - $from)), 1 + int(rand(5)), rand_bytes(1 + int(rand(3))));
		return $line;
	}
	return join(',', map { pick('"', '""', '"a"b', "\xff", "\x00", '99999999999999999999', '1e999', 'x' x 70_000, '') }
		1 .. 1 + int(rand(8))) if $kind == 2;
	return join(',', (2000000) x (1 + int(rand(12)))) if $kind == 3;
	return pick('2000001,n,1,t', '2000001,n,1,t,2024-01-01,extra', '"2000001,n,1,t,2024-01-01', ',,,,',
		'\\N,\\N,\\N,\\N,\\N', '\\.', '"\\."', '\\.,1');
}
# one record per line: no line breaks inside; never blank (blank lines are skipped)
sub one_line
{
	my ($s) = @_;
	$s =~ s/[\r\n]/?/g;
	$s = '?' if $s =~ /^[ \t]*$/;
	return $s;
}
# a data set: records in random order; valid ones have ids 1..N
sub data_set
{
	my ($valid, $hostile) = @_;
	my (@lines, $nvalid, $idsum);
	for my $i (1 .. $records)
	{
		if (rand() < 0.4)
		{
			$nvalid++;
			$idsum += $i;
			push @lines, $valid->($i);
		}
		else
		{
			push @lines, one_line($hostile->());
		}
	}
	return (\@lines, $nvalid, $idsum);
}
sub write_file
{
	my ($path, $lines) = @_;
	open my $fh, '>:raw', "$path.tmp" or die;
	print $fh "$_\n" for @$lines;
	close $fh;
	rename "$path.tmp", $path or die;
}

my $cols = 'id int, name text, amount numeric(10,2), ok boolean, ts timestamptz';
sql(q{CREATE EXTENSION streaming});

# every record a row or a dead letter; every valid id among the rows
sub check
{
	my ($query, $total, $nvalid, $idsum, $what) = @_;
	is(sql(qq{SELECT (SELECT count(*) FROM $query) + (SELECT count(*) FROM streaming.dead_letters WHERE query = '$query')}),
		$total, "$what: rows + dead letters = $total records");
	is(sql(qq{SELECT count(*) || '/' || coalesce(sum(id), 0) FROM $query WHERE id BETWEEN 1 AND $records}),
		"$nvalid/$idsum", "$what: all $nvalid valid records are rows");
}

# --- the file source: json, csv (one record per file: a stray quote may
# run to the end of its file), text
mkdir "$base/json";
my ($json_lines, $json_valid, $json_idsum) = data_set(\&json_valid, \&json_hostile);
for my $c (0 .. 9)
{
	my @chunk = grep { $_ % 10 == $c } 0 .. $#$json_lines;
	write_file("$base/json/part$c.json", [ map { $json_lines->[$_] } @chunk ]);
}
sql(qq{
	SELECT streaming.create_source('fz_json', 'file', '$cols, doc jsonb', '{"path": "$base/json", "format": "json"}');
	SELECT streaming.create_query('fz_json_rows', 'SELECT * FROM fz_json', start => false);
});
is(sql(q{SELECT streaming.run('fz_json_rows')}), '1', 'file json: one batch, no error');
check('fz_json_rows', $records, $json_valid, $json_idsum, 'file json');

mkdir "$base/csv";
my ($csv_lines, $csv_valid, $csv_idsum) = data_set(\&csv_valid, \&csv_hostile);
my $n = 0;
write_file(sprintf("%s/csv/r%05d.csv", $base, $n++), [$_]) for @$csv_lines;
sql(qq{
	SELECT streaming.create_source('fz_csv', 'file', '$cols', '{"path": "$base/csv", "format": "csv"}');
	SELECT streaming.create_query('fz_csv_rows', 'SELECT * FROM fz_csv', start => false);
});
is(sql(q{SELECT streaming.run('fz_csv_rows')}), '1', 'file csv: one batch, no error');
check('fz_csv_rows', $records, $csv_valid, $csv_idsum, 'file csv');

# many records per file: a bad byte or a "\." line must not end the file
# early (records without quotes, so that each line is one record)
mkdir "$base/csv_many";
my @unquoted = grep { !/"/ } @$csv_lines;
my $unquoted_valid = grep { /^[0-9]+,n[0-9]+,/ && (split /,/)[0] <= $records } @unquoted;
my $unquoted_idsum = 0;
$unquoted_idsum += (split /,/)[0] for grep { /^[0-9]+,n[0-9]+,/ && (split /,/)[0] <= $records } @unquoted;
for my $c (0 .. 4)
{
	write_file("$base/csv_many/part$c.csv", [ map { $unquoted[$_] } grep { $_ % 5 == $c } 0 .. $#unquoted ]);
}
sql(qq{
	SELECT streaming.create_source('fz_csv_many', 'file', '$cols', '{"path": "$base/csv_many", "format": "csv"}');
	SELECT streaming.create_query('fz_csv_many_rows', 'SELECT * FROM fz_csv_many', start => false);
});
is(sql(q{SELECT streaming.run('fz_csv_many_rows')}), '1', 'file csv, many records per file: one batch, no error');
check('fz_csv_many_rows', scalar(@unquoted), $unquoted_valid, $unquoted_idsum, 'file csv, many records per file');

mkdir "$base/text";
my @text_lines = map { one_line(rand() < 0.5 ? rand_bytes(1 + int(rand(80))) : "line $_") } 1 .. $records;
my $plain = grep { /^line [0-9]+$/ } @text_lines;
write_file("$base/text/all.txt", \@text_lines);
sql(qq{
	SELECT streaming.create_source('fz_text', 'file', 'value text', '{"path": "$base/text", "format": "text"}');
	SELECT streaming.create_query('fz_text_rows', 'SELECT * FROM fz_text', start => false);
});
is(sql(q{SELECT streaming.run('fz_text_rows')}), '1', 'file text: one batch, no error');
is(sql(q{SELECT (SELECT count(*) FROM fz_text_rows) + (SELECT count(*) FROM streaming.dead_letters WHERE query = 'fz_text_rows')}),
	$records, "file text: rows + dead letters = $records lines");
is(sql(q{SELECT count(*) FROM fz_text_rows WHERE value ~ '^line [0-9]+$'}), $plain,
	"file text: all $plain plain lines are rows");

# --- the Kafka source: each message decoded alone
my $kafka = StreamingTest::Broker->start('fz_json:2', 'fz_csv:2');
my $bootstrap = $kafka->bootstrap;
sub broker { return $kafka->cmd($_[0]); }
# the mock cluster keeps a few megabytes per partition: messages of at most 20 kB
sub short { my @l = map { substr($_, 0, 20_000) } @{ $_[0] }; return \@l; }
my $kjson = short($json_lines);
write_file("$base/k.json", $kjson);
broker("producefile fz_json -1 $base/k.json");
my $kcsv = short($csv_lines);
write_file("$base/k.csv", $kcsv);
broker("producefile fz_csv -1 $base/k.csv");
sql(qq{
	SELECT streaming.create_source('fzk_json', 'kafka', '$cols, doc jsonb',
		'{"bootstrap_servers": "$bootstrap", "topic": "fz_json", "format": "json", "starting_offsets": "earliest"}');
	SELECT streaming.create_query('fzk_json_rows', 'SELECT * FROM fzk_json', start => false);
	SELECT streaming.create_source('fzk_csv', 'kafka', '$cols',
		'{"bootstrap_servers": "$bootstrap", "topic": "fz_csv", "format": "csv", "starting_offsets": "earliest"}');
	SELECT streaming.create_query('fzk_csv_rows', 'SELECT * FROM fzk_csv', start => false);
});
is(sql(q{SELECT streaming.run('fzk_json_rows')}), '1', 'kafka json: one batch, no error');
is(sql(q{SELECT streaming.run('fzk_csv_rows')}), '1', 'kafka csv: one batch, no error');
check('fzk_json_rows', $records, $json_valid, $json_idsum, 'kafka json');
check('fzk_csv_rows', $records, $csv_valid, $csv_idsum, 'kafka csv');

is(sql(q{SELECT pg_postmaster_start_time()}), $started, 'the server never restarted');
$kafka->quit;
$node->stop;
done_testing();
