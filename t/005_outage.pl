# The broker goes away for about 10 s while the consumer runs: the consumer reports it in
# tweetlake.status and stays up, and catches up with nothing lost when the broker returns.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use PipelineTest;

my ($broker, $bootstrap) = start_mock_broker('tweets', 4);
END { stop_mock_broker($broker) if $broker; }

my $node = tweetlake_node('outage',
	'tweetlake.brokers' => "'$bootstrap'",
	'tweetlake.generator_rate' => 0,
	'tweetlake.batch_size' => 500);
my @tweets = generated_tweets($node, 9000, 41);
my @ids = sort map { /"tweet_id":"([^"]+)"/ ? $1 : () } @tweets;

kcat_produce($bootstrap, 'tweets', write_messages([ @tweets[0 .. 2999] ], "\n"), '\n');
wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', '3000', 'first 3000 stored');
my $pid = sql_value($node, "SELECT pid FROM tweetlake.status WHERE role = 'consumer'");
my $errors_before = sql_value($node, "SELECT coalesce(last_error_at::text, 'none') FROM tweetlake.status WHERE role = 'consumer'");

# 3000 more, and the broker goes down before the consumer can have read them all
kcat_produce($bootstrap, 'tweets', write_messages([ @tweets[3000 .. 5999] ], "\n"), '\n');
$broker->signal('USR1');
my $down_at = sql_value($node, 'SELECT now()');
wait_for($node, "SELECT last_error_at > '$down_at' FROM tweetlake.status WHERE role = 'consumer'", 't',
	'the consumer reports the outage in tweetlake.status', 30);
my $err = sql_value($node, "SELECT last_error FROM tweetlake.status WHERE role = 'consumer'");
like($err, qr/kafka:/, "last_error names the Kafka problem ($err)");
sleep(8);    # the rest of the ~10 s outage
is(sql_value($node, "SELECT pid FROM tweetlake.status WHERE role = 'consumer'"), $pid,
	'consumer kept running through the outage');

$broker->signal('USR2');
kcat_produce($bootstrap, 'tweets', write_messages([ @tweets[6000 .. 8999] ], "\n"), '\n');
wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', '9000',
	'all 9000 stored after the broker returned', 180);

is(sql_value($node, 'SELECT count(*) FROM bronze.tweets'), '9000', 'bronze has 9000 rows');
is(sql_value($node, 'SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'), '9000',
	'each offset once');
my @stored = split /\n/, sql_value($node, 'SELECT tweet_id FROM bronze.tweets ORDER BY tweet_id COLLATE "C"');
is_deeply(\@stored, \@ids, 'exactly the tweets sent');
is(sql_value($node, "SELECT pid FROM tweetlake.status WHERE role = 'consumer'"), $pid, 'same consumer process throughout');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');

$node->stop('fast');
done_testing();
