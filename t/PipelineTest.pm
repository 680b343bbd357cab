# t/PipelineTest.pm - helpers shared by the TAP suites: a PostgreSQL node with tweetlake
# preloaded, polling, a mock broker process that outlives server crashes, and kcat.
package PipelineTest;

use strict;
use warnings;
use Exporter 'import';
use File::Temp ();
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(tweetlake_node wait_for sql_value start_mock_broker stop_mock_broker
                 kcat_produce write_messages generated_tweets);

# Source checkout (for test/mock_broker); scripts/test.sh copies test/ next to t/.
my $test_dir = -d 'test' ? 'test' : "$ENV{TWEETLAKE_SRC}/test";

# A started node with tweetlake preloaded and created in "postgres"; extra settings given
# as a hash are appended to postgresql.conf.
sub tweetlake_node
{
	my ($name, %conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my %all = (
		shared_preload_libraries => "'tweetlake'",
		'tweetlake.database' => "'postgres'",
		max_worker_processes => 20,
		shared_buffers => '256MB',
		%conf);
	$node->append_conf('postgresql.conf', join('', map { "$_ = $all{$_}\n" } sort keys %all));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION tweetlake');
	return $node;
}

sub sql_value
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# Polls until the query returns the expected value (default 't'); fails the test with the
# last value seen after $timeout seconds.
sub wait_for
{
	my ($node, $sql, $expected, $what, $timeout) = @_;
	$expected //= 't';
	$timeout //= 120;
	my $last = '';
	for (my $i = 0; $i < $timeout * 4; $i++)
	{
		my ($rc, $out) = (0, '');
		$out = $node->psql('postgres', $sql, stdout => \my $stdout, stderr => \my $stderr);
		$last = defined $stdout ? $stdout : '';
		return 1 if $last eq $expected;
		usleep(250_000);
	}
	fail("$what: waited ${timeout}s for '$expected', last value '$last'");
	return 0;
}

# The mock cluster as its own process (test/mock_broker.c); returns (handle, bootstrap).
sub start_mock_broker
{
	my ($topic, $partitions) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $addr_file = "$dir/broker.addr";
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ "$test_dir/mock_broker", $topic, $partitions, $addr_file ],
		'>', \$out, '2>', \$err);
	for (my $i = 0; $i < 200 && !-s $addr_file; $i++) { usleep(50_000); }
	die "mock_broker did not start: $err" unless -s $addr_file;
	my $addr = PostgreSQL::Test::Utils::slurp_file($addr_file);
	chomp $addr;
	return ($h, $addr);
}

sub stop_mock_broker
{
	my ($h) = @_;
	return unless $h;
	$h->signal('TERM');
	$h->finish;
}

# Writes messages (byte strings) to a file separated by $delim; returns the file name.
sub write_messages
{
	my ($messages, $delim) = @_;
	my ($fh, $file) = File::Temp::tempfile(DIR => PostgreSQL::Test::Utils::tempdir);
	binmode $fh;
	print $fh join($delim, @$messages);
	close $fh;
	return $file;
}

# Produces the messages of $file (separated by $delim) to $topic with kcat, byte-exact.
sub kcat_produce
{
	my ($bootstrap, $topic, $file, $delim, @extra) = @_;
	my ($out, $err) = ('', '');
	# keyless messages: spread them one by one, not in sticky runs on one partition
	IPC::Run::run([ 'kcat', '-P', '-b', $bootstrap, '-t', $topic, '-D', $delim,
		'-X', 'enable.idempotence=true', '-X', 'sticky.partitioning.linger.ms=0',
		@extra, '-l', $file ], '>', \$out, '2>', \$err)
	  or die "kcat -P failed: $err";
}

# n generated tweets (the tweet model of tweetlake.generate_tweets) from a node.
sub generated_tweets
{
	my ($node, $n, $seed, $start) = @_;
	$start //= '2026-01-01 00:00+00';
	my $out = $node->safe_psql('postgres',
		"SELECT t FROM tweetlake.generate_tweets($n, $seed, '$start') t");
	return split /\n/, $out;
}

1;
