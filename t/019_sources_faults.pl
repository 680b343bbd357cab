# Exactly once per source under the faults of t/011, on a real Apache Kafka broker: two
# sources (the default one and one made with create_source, two topics, two consumers each)
# take known messages in rounds while, in turn, a consumer of the second source is killed,
# a backend is killed (the whole server restarts), and the server stops immediately and
# starts.  Afterwards every offset of each topic is in bronze once, each source's stored
# offsets reach its topic's end, bronze holds exactly the tweets sent, gold equals a recompute.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
kafka_topic($kafka, 'feed_default', 4);
kafka_topic($kafka, 'feed_second', 4);

my $node = tweetlake_node('sources_faults',
	'tweetlake.brokers' => "'$kafka->{bootstrap}'",
	'tweetlake.topic' => "'feed_default'",
	'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 100,
	restart_after_crash => 'on');
$node->safe_psql('postgres', "SELECT tweetlake.create_source('second', '$kafka->{bootstrap}', 'feed_second', consumers => 2)");
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND state ~ '^consuming'", '4',
	'two consumers of each source consume');

my ($rounds, $chunk) = (6, 2000);
my @tweets = generated_tweets($node, 2 * $rounds * $chunk, 191);
my @ids = sort map { /"tweet_id":"([^"]+)"/ ? $1 : die "no id" } @tweets;
my $second_consumer = sub
{
	return sql_value($node, "SELECT pid FROM tweetlake.status WHERE source = 'second' AND role = 'consumer'
	                         AND pid IS NOT NULL ORDER BY messages DESC LIMIT 1");
};
for my $round (1 .. $rounds)
{
	my $from = 2 * ($round - 1) * $chunk;
	kcat_produce($kafka->{bootstrap}, 'feed_default',
		write_messages([ @tweets[ $from .. $from + $chunk - 1 ] ], "\n"), '\n');
	kcat_produce($kafka->{bootstrap}, 'feed_second',
		write_messages([ @tweets[ $from + $chunk .. $from + 2 * $chunk - 1 ] ], "\n"), '\n');
	my $before = $from;
	wait_for($node, "SELECT count(*) > $before FROM bronze.tweets", 't', "round $round: ingest under way", 60);
	my $fault = (qw(kill_consumer kill_backend immediate_restart))[ ($round - 1) % 3 ];
	note("round $round: $fault with " . sql_value($node, 'SELECT count(*) FROM bronze.tweets') . ' rows in bronze');
	strike_fault($node, $fault, "round $round", $second_consumer);
}

my $n = scalar @tweets;
for my $t ([ 'default', 'feed_default' ], [ 'second', 'feed_second' ])
{
	my ($source, $topic) = @$t;
	my $ends = kafka_end_offsets($kafka, $topic);
	my $total = 0;
	$total += $_ for values %$ends;
	is($total, $n / 2, "$topic holds the " . ($n / 2) . ' messages sent to it');
	wait_for($node, "SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets WHERE source = '$source'", $total,
		"source $source: its stored offsets reach the end of $topic", 240);
	offsets_each_once($node, $topic, $ends);
}
my @stored = split /\n/, sql_value($node, 'SELECT tweet_id FROM bronze.tweets ORDER BY tweet_id COLLATE "C"');
is_deeply(\@stored, \@ids, "bronze holds exactly the $n tweet_ids sent, each once");
is(sql_value($node, 'SELECT count(*) FROM silver.tweets'), $n, "silver has $n rows");
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), '0', 'no dead letters');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify(): gold equals a full recompute');

$node->stop;
done_testing();
