# Helpers shared by the TAP tests (test/t/*.pl): a cluster for table
# sources, waiting for a query to reach a state, dropping input files into a source directory the way a
# producer should (write, then rename), and driving the Kafka test broker.
package StreamingTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(put_file);

# wait_for(NODE, SQL or CODE, EXPECTED, WHAT): polls (up to a minute) until
# the SQL's result (or the code's return value) is EXPECTED, then reports
# the last value seen as one test.
sub wait_for
{
	my ($node, $probe, $expected, $what) = @_;
	my $got = '';
	for (1 .. 600)
	{
		$got = ref $probe ? $probe->() : $node->safe_psql('postgres', $probe);
		return is($got, $expected, $what) if $got eq $expected;
		usleep(100_000);
	}
	return is($got, $expected, $what);
}

# logical_node(NAME, SETTINGS[, INIT OPTIONS...]): a started cluster with
# the extension preloaded and logical decoding on, as table sources need,
# and SETTINGS (postgresql.conf lines) appended.
sub logical_node
{
	my ($name, $settings, @init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(@init);
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'streaming'\n"
		  . "wal_level = logical\n"
		  . "output_plugin_libraries = 'pgoutput, test_decoding, streaming'\n"
		  . ($settings // ''));
	$node->start;
	return $node;
}

# put_file(DIR, LINES...): a new csv file in DIR, complete when it appears
# (written under a hidden name, then renamed); names sort by creation.
my $seq = 0;
sub put_file
{
	my ($dir, @lines) = @_;
	mkdir $dir unless -d $dir;
	$seq++;
	open my $fh, '>', "$dir/.tmp" or die "$dir/.tmp: $!";
	print $fh "$_\n" for @lines;
	close $fh;
	rename "$dir/.tmp", sprintf("%s/f%04d.csv", $dir, $seq) or die "rename: $!";
	return;
}

# StreamingTest::Broker->start(TOPIC:PARTITIONS, ...): the Kafka test broker
# (test/kafka/kafka_test_broker, librdkafka's mock cluster) with those topics.
package StreamingTest::Broker;

use FindBin;
use IPC::Run qw(pump finish timeout);

sub start
{
	my ($class, @topics) = @_;
	my $bin = "$FindBin::Bin/../kafka/kafka_test_broker";
	die "build the test broker first (make -C test)" unless -x $bin;
	my $self = bless { in => '', out => '', err => '', timer => timeout(120) }, $class;
	$self->{h} = IPC::Run::start([ $bin, map { ('--topic', $_) } @topics ],
		\$self->{in}, \$self->{out}, \$self->{err}, $self->{timer});
	pump $self->{h} until $self->{out} =~ /^bootstrap (\S+)\n/m;
	$self->{bootstrap} = $1;
	return $self;
}

sub bootstrap { return $_[0]->{bootstrap}; }

# cmd(LINE): one command on the broker's stdin; dies unless it answers ok
sub cmd
{
	my ($self, $line) = @_;
	$self->{out} = '';
	$self->{in} .= "$line\n";
	$self->{timer}->start(120);
	pump $self->{h} until $self->{out} =~ /\n/;
	die "broker: $line: $self->{out}" unless $self->{out} =~ /^ok/;
	chomp(my $reply = $self->{out});
	return $reply;
}

sub quit
{
	my ($self) = @_;
	$self->{in} .= "quit\n";
	finish $self->{h};
	return;
}

# StreamingTest::SaslProbe->start: a fake broker (test/kafka/kafka_sasl_probe)
# that records the SASL PLAIN credentials librdkafka clients send it.
package StreamingTest::SaslProbe;

use FindBin;
use IPC::Run qw(pump finish timeout);

sub start
{
	my ($class) = @_;
	my $bin = "$FindBin::Bin/../kafka/kafka_sasl_probe";
	die "build the test programs first (make -C test)" unless -x $bin;
	my $self = bless { in => '', out => '', err => '', timer => timeout(300) }, $class;
	$self->{h} = IPC::Run::start([$bin], \$self->{in}, \$self->{out}, \$self->{err}, $self->{timer});
	pump $self->{h} until $self->{out} =~ /^bootstrap (\S+)\n/m;
	$self->{bootstrap} = $1;
	$self->{out} =~ s/^bootstrap \S+\n//m;
	return $self;
}

sub bootstrap { return $_[0]->{bootstrap}; }

# credentials(): the distinct "user:password" pairs received since the last
# call, sorted, joined by spaces ('' if none)
sub credentials
{
	my ($self) = @_;
	$self->{h}->pump_nb;
	my %seen;
	# complete lines only; a line still being written waits for the next call
	$self->{out} =~ s/\A((?:.*\n)*)//;
	my $lines = $1;
	$seen{"$1:$2"} = 1 while $lines =~ /^auth PLAIN (\S*) (.*)$/mg;
	return join(' ', sort keys %seen);
}

sub quit
{
	my ($self) = @_;
	$self->{in} .= "quit\n";
	finish $self->{h};
	return;
}

1;
