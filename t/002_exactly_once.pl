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

exactly_once_under_faults($node, $bootstrap, 'tweets', 9, 3000, 21);

$node->stop('fast');
done_testing();
