# The decoders' fast paths against PostgreSQL itself.  Decoders write the
# common column types (smallint, integer, bigint, double precision,
# boolean, text, varchar, timestamp) straight from the record's bytes, and
# read flat JSON objects without PostgreSQL's JSON parser; each fast path
# must give exactly what the type's input function and the parser give.
#
# Many generated and adversarial texts go through a file source, in the
# json and csv formats, into a query's rows and dead letters; the same
# texts go through the input functions in plain SQL (a literal inserted into a column, which
# calls the input function with the column's typmod, as an INSERT).  Row for row, the
# values are the same, and the records that fail are the same records,
# with the input function's own message.  Then hostile JSON lines (escapes,
# duplicate keys, nested values, odd numbers and whitespace, broken
# syntax) go through the json decoder, and each is a row equal to what
# PostgreSQL's json operators read from it, or a dead letter exactly when
# PostgreSQL rejects it.
#
# The seed is fixed, so that make test is repeatable; FUZZ_SEED=random
# draws one (printed, to rerun it as FUZZ_SEED=n).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seed = $ENV{FUZZ_SEED} // 90211;
$seed = int(rand(1_000_000)) if $seed eq 'random';
note "FUZZ_SEED=$seed";
srand($seed);

my $node = PostgreSQL::Test::Cluster->new('fast_paths');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'streaming'
streaming.autostart = off
});
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
my $base = $node->basedir;
sql(q{CREATE EXTENSION streaming});
# a day-first DateStyle: the fast paths must not depend on it
sql(q{ALTER DATABASE postgres SET DateStyle = 'ISO, DMY'});

sub pick { return $_[int(rand(@_))]; }
sub digits { return join('', map { int(rand(10)) } 1 .. $_[0]); }

# --- the texts: boundaries, near misses and random values of each type
my @texts = (
	# integers
	'0', '-0', '+0', '+5', ' 5', '5 ', ' 5 ', '007', '-007', '', '-', '+', '--1', '+-1', '1-', '1 2',
	'-32768', '32767', '-32769', '32768', '9999', '-9999', '10000', '99999',
	'-2147483648', '2147483647', '-2147483649', '2147483648', '999999999', '1000000000', '-999999999',
	'-9223372036854775808', '9223372036854775807', '-9223372036854775809', '9223372036854775808',
	'999999999999999999', '1000000000000000000', '-999999999999999999', '00000000000000000000001',
	'99999999999999999999999999', '1e3', '1E3', '1.0', '1.', '.5', '0x10', '1_000', "\x{661}", "\t7",
	# floats
	'1.5', '-1.5', '0.1', '0.30000000000000004', '123456789.123456789', '1e308', '1e309', '-1e309',
	'1e-400', '2.2250738585072014e-308', '4.9e-324', 'NaN', 'nan', 'Infinity', '-Infinity', 'inf',
	'-inf', '5.', '00012.50', '-0.0', '0.000000000000000000000000001',
	'123456789012345678901234567890.5', '1234567890123456789012345678901', '1.7976931348623157e308',
	# booleans
	't', 'f', 'true', 'false', 'TRUE', 'False', 'tr', 'fa', 'yes', 'no', 'on', 'off', 'of', 'o', '1',
	'y', 'n', ' t', 'f ', 'truex', 'x',
	# timestamps
	'2015-07-15 00:00:00', '2015-07-15T00:00:00', '2015-07-15t00:00:00', '2015-07-15 00:00:00.123',
	'2015-07-15 00:00:00.123456', '2015-07-15 00:00:00.1234565', '2015-07-15 00:00:00.1234575',
	'2015-07-15 00:00:00.9999995', '2015-07-15 23:59:59.9999999', '2015-07-15 23:59:59.999999999',
	'2015-07-15 23:59:59.9999999999', '2015-07-15 23:59:60', '2015-07-15 23:59:60.5',
	'2015-07-15 24:00:00', '2015-07-15 24:00:01', '2015-07-15 23:60:00', '2015-07-15 25:00:00',
	'2016-02-29 12:00:00', '2015-02-29 12:00:00', '2000-02-29 00:00:00', '1900-02-29 00:00:00',
	'0001-01-01 00:00:00', '0000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '10000-01-01 00:00:00',
	'294276-12-31 23:59:59.999999', '294277-01-01 00:00:00', '0001-01-01 00:00:00 BC',
	'4714-11-24 00:00:00 BC', '4714-11-23 23:59:59 BC', 'infinity', '-infinity', 'epoch',
	'2015-07-15 00:00:00+00', '2015-07-15 00:00:00Z', '2015-07-15 00:00:00+14', '2015-07-15 00:00:00-12:30',
	'2015-07-15 00:00:00+1530', '2015-07-15 00:00:00 PST', '2015-07-15', '2015-07-15 00:00',
	'15-07-2015 00:00:00', '07/15/2015 00:00:00', '15/07/2015 00:00:00', '2015-7-15 0:0:0',
	'2015-07-15  00:00:00', ' 2015-07-15 00:00:00', '2015-07-15 00:00:00 ', '2015-07-15 00:00:00.',
	'2015-07-15 00:00:00.-1', 'July 15, 2015', 'J2457219', '2015-07-15 00:00:00 allballs',
	# text and varchar(5)
	'abcde', 'abcdef', 'abc  ', 'abcde   ', 'abcde  x', "h\x{e9}llo", "\x{20ac}\x{20ac}\x{20ac}\x{20ac}\x{20ac}",
	"\x{20ac}\x{20ac}\x{20ac}\x{20ac}\x{20ac}\x{20ac}", "\x{1f600}", 'a"b', 'a\\b', "a\tb", '{}', '[1]',
	'null', 'NULL', '\\N', 'x' x 300,
);
for (1 .. 150)
{
	my $sign = pick('', '', '-', '+');
	push @texts, $sign . ('0' x int(rand(3))) . digits(1 + int(rand(20)));
	push @texts, pick('', '-') . digits(1 + int(rand(16))) . '.' . digits(1 + int(rand(16)));
	push @texts, pick('', '-') . digits(1 + int(rand(3))) . 'e' . pick('', '-', '+') . digits(1 + int(rand(3)));
	my $ts = sprintf('%04d-%02d-%02d%s%02d:%02d:%02d', 1 + int(rand(9999)), 1 + int(rand(12)),
		1 + int(rand(31)), pick(' ', 'T', 't'), int(rand(25)), int(rand(60)), int(rand(61)));
	$ts .= '.' . digits(1 + int(rand(11))) if rand() < 0.6;
	$ts .= pick('Z', '+02', '-05:30', '+1400') if rand() < 0.2;
	$ts .= pick(' BC', 'x', ' ', '+') if rand() < 0.05;
	push @texts, $ts;
	push @texts, join('', map { chr(pick(32 .. 126, 0xe9, 0x20ac, 0x1f600)) } 1 .. int(rand(9)));
}

# a JSON string of a text; sometimes with needless escapes (not the fast path)
sub json_string
{
	my ($s) = @_;
	my $escape_all = rand() < 0.1;
	$s =~ s/(["\\])/\\$1/g;
	$s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord($1))/ge;
	$s =~ s/([a-z])/sprintf('\\u%04x', ord($1))/ge if $escape_all;
	return qq{"$s"};
}
# JSON's number grammar, true and false: such a text may stand bare
sub json_token
{
	return $_[0] =~ /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/ || $_[0] eq 'true' || $_[0] eq 'false';
}
sub ws { return pick('', '', '', ' ', '  ', "\t", " \r "); }

sub write_lines
{
	my ($path, $lines) = @_;
	open my $fh, '>:raw:utf8', "$path.tmp" or die;
	print $fh "$_\n" for @$lines;
	close $fh;
	rename "$path.tmp", $path or die;
}

# records_json: line k holds text k, as a JSON string or bare; records_csv:
# the same texts, quoted
my (@json_lines, @csv_lines);
for my $k (1 .. @texts)
{
	my $t = $texts[ $k - 1 ];
	my $v = json_token($t) && rand() < 0.7 ? $t : json_string($t);
	push @json_lines, rand() < 0.5
		? '{' . ws() . '"k"' . ws() . ':' . ws() . $k . ws() . ',' . ws() . '"v"' . ws() . ':' . ws() . $v . ws() . '}' . ws()
		: ws() . '{"v":' . $v . ',"k":' . $k . '}';
	(my $q = $t) =~ s/"/""/g;
	push @csv_lines, qq{$k,"$q"};
}
note scalar(@texts) . ' texts';

# the texts as SQL sees them, from the same files
sub load_lines
{
	my ($table, $path) = @_;
	sql(qq{
		CREATE TABLE $table AS
		SELECT n::int, line FROM string_to_table(convert_from(pg_read_binary_file('$path'), 'UTF8'), E'\\n')
		  WITH ORDINALITY AS l(line, n) WHERE line <> ''});
}

# expected_json(lines, out, columns): per JSON line, the row as text, or
# the error: the texts that the json operators read are inserted as
# literals into a table of the columns' types, which calls each type's
# input function with the column's typmod (a cast would apply a typmod as
# an explicit cast does, truncating a varchar)
sub expected_json
{
	my ($lines, $out, $cols) = @_;
	my $names = join(', ', map { $_->[0] } @$cols);
	my $defs = join(', ', map { "$_->[0] $_->[1]" } @$cols);
	my $vals = join(', ', map { "j->>'$_->[0]'" } @$cols);
	my $fmt = join(', ', map { '%L' } @$cols);
	sql(qq{
		CREATE TABLE $out (n int, row text, error text);
		CREATE TABLE ${out}_values ($defs);
		DO \$\$
		DECLARE l record; r text; j json;
		BEGIN
			FOR l IN SELECT * FROM $lines ORDER BY n LOOP
				BEGIN
					j := l.line::json;
					IF json_typeof(j) <> 'object' THEN RAISE EXCEPTION 'not an object'; END IF;
					EXECUTE format('INSERT INTO ${out}_values VALUES ($fmt) RETURNING ROW($names)::text', $vals) INTO r;
					INSERT INTO $out VALUES (l.n, r, NULL);
				EXCEPTION WHEN others THEN
					INSERT INTO $out VALUES (l.n, NULL, SQLERRM);
				END;
			END LOOP;
		END \$\$;});
}

# compare(query, columns, expected, with_messages): rows and dead letters of
# the query against the expected table, line for line
sub compare
{
	my ($query, $cols, $exp, $messages, $what) = @_;
	my $row = join(', ', map { $_->[0] } @$cols);
	my $got = qq{
		SELECT k AS n, ROW($row)::text AS row, NULL::text AS error FROM $query
		UNION ALL
		SELECT substring(position FROM ':([0-9]+)\$')::int, NULL, error
		  FROM streaming.dead_letters WHERE query = '$query'};
	my $err = $messages ? 'error' : '(error IS NOT NULL)::text';
	my $diff = sql(qq{
		WITH got AS ($got),
		     a AS (SELECT n, row, $err AS e FROM got EXCEPT ALL SELECT n, row, $err FROM $exp),
		     b AS (SELECT n, row, $err AS e FROM $exp EXCEPT ALL SELECT n, row, $err FROM got)
		SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
		  SELECT 'decoded  ' || n || ': ' || coalesce(row, 'ERROR ' || e) AS x FROM a
		  UNION ALL
		  SELECT 'expected ' || n || ': ' || coalesce(row, 'ERROR ' || e) FROM b) d});
	is($diff, '', "$what: every line the row or the error that PostgreSQL gives");
	is(sql(qq{SELECT count(*) FILTER (WHERE error IS NULL) || ' rows, ' || count(*) FILTER (WHERE error IS NOT NULL)
		|| ' errors' FROM $exp}), sql(qq{SELECT (SELECT count(*) FROM $query) || ' rows, '
		|| (SELECT count(*) FROM streaming.dead_letters WHERE query = '$query') || ' errors'}),
		"$what: as many rows and dead letters as PostgreSQL has values and errors");
}

# --- typed columns, json and csv
mkdir "$base/json";
write_lines("$base/json/texts.json", \@json_lines);
mkdir "$base/csv";
write_lines("$base/csv/texts.csv", \@csv_lines);
load_lines('json_lines', "$base/json/texts.json");
load_lines('csv_lines', "$base/csv/texts.csv");
# csv: the text is the line after "k," without its quotes
sql(q{CREATE TABLE csv_texts AS
	SELECT n, n || ',' || replace(substr(line, length(n::text) + 3, length(line) - length(n::text) - 3), '""', '"') AS line
	  FROM csv_lines});

my @types = ('smallint', 'integer', 'bigint', 'double precision', 'boolean', 'text', 'varchar(5)',
	'timestamp', 'timestamp(3)', 'numeric');
my $i = 0;
for my $type (@types)
{
	$i++;
	my $cols = [ [ 'k', 'integer' ], [ 'v', $type ] ];
	sql(qq{
		SELECT streaming.create_source('j$i', 'file', 'k integer, v $type', '{"path": "$base/json", "format": "json"}');
		SELECT streaming.create_query('jq$i', 'SELECT * FROM j$i', start => false);
		SELECT streaming.create_source('c$i', 'file', 'k integer, v $type', '{"path": "$base/csv", "format": "csv"}');
		SELECT streaming.create_query('cq$i', 'SELECT * FROM c$i', start => false);
	});
	is(sql(qq{SELECT streaming.run('jq$i')}), '1', "json $type: one batch");
	is(sql(qq{SELECT streaming.run('cq$i')}), '1', "csv $type: one batch");
	expected_json('json_lines', "json_exp$i", $cols);
	compare("jq$i", $cols, "json_exp$i", 1, "json $type");
	# csv: the text after "k," as one field
	sql(qq{
		CREATE TABLE csv_exp$i (n int, row text, error text);
		CREATE TABLE csv_exp${i}_values (k integer, v $type);
		DO \$\$
		DECLARE l record; r text;
		BEGIN
			FOR l IN SELECT n, substr(line, length(n::text) + 2) AS t FROM csv_texts ORDER BY n LOOP
				BEGIN
					EXECUTE format('INSERT INTO csv_exp${i}_values VALUES (%s, %L) RETURNING ROW(k, v)::text', l.n, l.t) INTO r;
					INSERT INTO csv_exp$i VALUES (l.n, r, NULL);
				EXCEPTION WHEN others THEN
					INSERT INTO csv_exp$i VALUES (l.n, NULL, SQLERRM);
				END;
			END LOOP;
		END \$\$;});
	compare("cq$i", $cols, "csv_exp$i", 1, "csv $type");
}
# the comparison can fail: the texts hold values and errors of every type
is(sql(q{SELECT count(*) FILTER (WHERE error IS NULL) > 100 AND count(*) FILTER (WHERE error IS NOT NULL) > 100 FROM json_exp3}),
	't', 'bigint: many values and many errors compared');

# --- hostile JSON lines: what the flat scan must accept, leave to the
# parser, or never accept
my @values = ('1', '-1', '0', '-0', '01', '-01', '1.5', '1.', '.5', '-', '1e5', '1E+5', '1e-5', '1e', '1e+',
	'12abc', '1_0', '0x1', 'true', 'false', 'null', 'nullx', 'truex', 'tru', 'True', 'NULL', 'nul',
	'"x"', '""', '"a\\"b"', '"\\u0041"', '"\\u0000"', '"\\ud83d\\ude00"', '"\\ud83d"', '"\\x"', '"\\/"',
	qq{"\x{e9}"}, qq{"tab\there"}, '"\\t"', '[]', '{}', '[1, {"a": [2]}]', '{"k": 1}', '{"a":', '[1,',
	'"2015-07-15 00:00:00"', '"123"', '"t"', 'Infinity', 'NaN', "\x{7f}", '"' . "\x{7f}" . '"', '\'x\'');
# values that are JSON (a value of the wrong type is still a dead letter)
my @good_values = ('1', '-1', '0', '-0', '1.5', '1e5', '1E+5', '-1e-5', 'true', 'false', 'null', '"x"', '""',
	'"a\\"b"', '"\\u0041"', '"\\ud83d\\ude00"', '"\\/"', qq{"\x{e9}"}, '"\\t"', '[]', '{}', '[1, {"a": [2]}]',
	'{"k": 1}', '"2015-07-15 00:00:00"', '"123"', '"t"', '"f"', '"99999999999999999999"');
my @keys = ('"k"', '"a"', '"b"', '"c"', '"d"', '"zz"', '"\\u0061"', '"a\\u0000"', '"A"', '"a "', '""', 'a', "'a'");
my @hostile;
for my $k (1 .. 2500)
{
	my $clean = rand() < 0.5;
	my @members = ('"k"' . ws() . ':' . ws() . $k);
	for (1 .. int(rand(6)))
	{
		my $key = $clean || rand() < 0.9 ? pick('"a"', '"b"', '"c"', '"d"', '"zz"') : pick(@keys);
		push @members, $key . ws() . ($clean ? ':' : pick(':', ':', ':', ':', '', '::', ' : ')) . ws()
			. ($clean ? pick(@good_values) : pick(@values));
	}
	my $line = ws() . '{' . ws() . join(ws() . ($clean ? ',' : pick(',', ',', ',', ',', ',', '', ',,')) . ws(), @members)
		. ws() . ($clean ? '}' : pick('}', '}', '}', '}', '}', '', '},', '}}', '} x', '}]', '} {}')) . ws();
	$line = pick('[' . $line . ']', '1', '"s"', 'null', '{"k": ' . $k . ',}', '{,"k": ' . $k . '}') if rand() < 0.03;
	$line = '?' if $line =~ /^[ \t]*$/;
	push @hostile, $line;
}
mkdir "$base/hostile";
write_lines("$base/hostile/h.json", \@hostile);
load_lines('hostile_lines', "$base/hostile/h.json");
my $hcols = [ [ 'k', 'integer' ], [ 'a', 'text' ], [ 'b', 'bigint' ], [ 'c', 'json' ], [ 'd', 'boolean' ] ];
sql(qq{
	SELECT streaming.create_source('h', 'file', 'k integer, a text, b bigint, c json, d boolean',
		'{"path": "$base/hostile", "format": "json"}');
	SELECT streaming.create_query('hq', 'SELECT * FROM h', start => false);
});
is(sql(q{SELECT streaming.run('hq')}), '1', 'hostile json: one batch');
expected_json('hostile_lines', 'hostile_exp', $hcols);
compare('hq', $hcols, 'hostile_exp', 0, 'hostile json');
is(sql(q{SELECT count(*) FILTER (WHERE error IS NULL) > 200 AND count(*) FILTER (WHERE error IS NOT NULL) > 200 FROM hostile_exp}),
	't', 'hostile json: many rows and many dead letters compared');

$node->stop;
done_testing();
