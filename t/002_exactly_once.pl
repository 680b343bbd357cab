# Exactly once into bronze under faults: a known set of messages is ingested while consumer
# workers are killed with SIGKILL, a backend is killed (crash and restart of the whole
# server), and the server is stopped in immediate mode and started again.  The broker runs
# as its own process (test/mock_broker), so it outlives every one of those.  Afterwards
# bronze holds each message exactly once, by Kafka coordinates and by tweet_id.
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use PipelineTest;

# 8 partitions and 27,000 messages of ~900 bytes: about 3 MB a partition, well inside what
# librdkafka's mock broker keeps (5 MB a partition; beyond that it drops the oldest).
my ($broker, $bootstrap) = start_mock_broker('tweets', 8);
END { stop_mock_broker($broker) if $broker; }

my $node = tweetlake_node('exactly_once',
	'tweetlake.brokers' => "'$bootstrap'",
	'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 100,
	'tweetlake.batch_timeout_ms' => 50,
	restart_after_crash => 'on');

my $chunk = 3000;
my $rounds = 9;
my $n = $chunk * $rounds;
my @tweets = generated_tweets($node, $n, 21);
is(scalar @tweets, $n, "$n messages to send");
my @ids = sort map { /"tweet_id":"([^"]+)"/ ? $1 : die "no id" } @tweets;

sub consumer_pid
{
	my $pid = '';
	for (1 .. 120)
	{
		$pid = $node->safe_psql('postgres',
			"SELECT pid FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL AND messages > 0 LIMIT 1");
		return $pid if $pid ne '';
		usleep(250_000);
	}
	return $pid;
}

# After a SIGKILL: the postmaster has reaped the process (and begun its crash handling)
# once the pid is gone; only then does "accepts connections" mean "recovered".
sub gone
{
	my ($pid) = @_;
	for (1 .. 200)
	{
		return 1 unless kill(0, $pid);
		usleep(50_000);
	}
	return 0;
}

sub server_back
{
	for (1 .. 240)
	{
		my $ret = $node->psql('postgres', 'SELECT 1');
		return 1 if $ret == 0;
		usleep(250_000);
	}
	return 0;
}

my %faults = (kill_consumer => 0, kill_backend => 0, immediate_restart => 0);
my $mid_ingest = 0;
for my $round (1 .. $rounds)
{
	my $file = write_messages([ @tweets[ ($round - 1) * $chunk .. $round * $chunk - 1 ] ], "\n");
	kcat_produce($bootstrap, 'tweets', $file, '\n');

	# strike as soon as the consumers are into this chunk (a chunk is 30 batches)
	my $before = ($round - 1) * $chunk;
	my $started = 0;
	for (1 .. 3000)
	{
		$started = $node->safe_psql('postgres', "SELECT count(*) > $before FROM bronze.tweets") eq 't';
		last if $started;
		usleep(10_000);
	}
	ok($started, "round $round: ingest under way");
	my $fault = (qw(kill_consumer kill_backend immediate_restart))[ ($round - 1) % 3 ];
	my $at = $node->safe_psql('postgres', 'SELECT count(*) FROM bronze.tweets');
	$mid_ingest++ if $at < $round * $chunk;
	note("round $round: $fault with $at of " . ($round * $chunk) . " rows in bronze");
	if ($fault eq 'kill_consumer')
	{
		my $pid = consumer_pid();
		ok($pid ne '' && kill('KILL', $pid) && gone($pid), "round $round: SIGKILL consumer $pid");
	}
	elsif ($fault eq 'kill_backend')
	{
		my $sleeper = IPC::Run::start([ 'psql', '-X', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres', '-c', 'SELECT pg_sleep(60)' ], '>', \my $o, '2>', \my $e);
		my $pid = '';
		for (1 .. 40)
		{
			$pid = $node->safe_psql('postgres',
				"SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' LIMIT 1");
			last if $pid ne '';
			usleep(100_000);
		}
		ok($pid ne '' && kill('KILL', $pid) && gone($pid), "round $round: SIGKILL backend $pid");
		$sleeper->kill_kill;
	}
	else
	{
		$node->stop('immediate');
		$node->start;
		pass("round $round: immediate stop and start");
	}
	$faults{$fault}++;
	ok(server_back(), "round $round: server accepts connections again");
}
is_deeply(\%faults, { kill_consumer => 3, kill_backend => 3, immediate_restart => 3 },
	'three faults of each kind');
ok($mid_ingest >= 6, "faults struck while a chunk was half ingested ($mid_ingest of $rounds)");

# Let the consumers finish: the stored offsets add up to every message sent.
wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', "$n",
	'stored offsets cover every message', 240);

is($node->safe_psql('postgres', 'SELECT count(*) FROM bronze.tweets'), "$n", "bronze has $n rows");
is($node->safe_psql('postgres', 'SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'),
	"$n", 'every (partition, offset) exactly once');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT kafka_partition, max(kafka_offset) + 1 - count(*) AS gap
		 FROM bronze.tweets GROUP BY kafka_partition) g WHERE gap <> 0"),
	'0', 'no gap in any partition');
my @stored = split /\n/, $node->safe_psql('postgres', 'SELECT tweet_id FROM bronze.tweets ORDER BY tweet_id COLLATE "C"');
is_deeply(\@stored, \@ids, 'bronze holds exactly the tweet_ids sent, each once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM silver.tweets'), "$n", "silver has $n rows");
is($node->safe_psql('postgres', 'SELECT count(*) FROM bronze.dead_letters'), '0', 'no dead letters');
is($node->safe_psql('postgres', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify(): gold equals a full recompute');

$node->stop('fast');
done_testing();
