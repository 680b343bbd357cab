# The pipeline against a real Apache Kafka broker (test/kafka/kafka.sh, KRaft, topic
# auto-creation off): a missing topic is an error in tweetlake.status, not a crash loop;
# once the topic exists the generator produces to 4 partitions and two consumers fill
# bronze, silver and gold; kcat and the Java console producer feed it too, and kcat reads
# what the generator wrote.
use strict;
use warnings;
use IPC::Run ();
use JSON::PP ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use PipelineTest;

my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
my $bootstrap = $kafka->{bootstrap};

my $node = tweetlake_node('kafka_pipeline',
	'tweetlake.brokers' => "'$bootstrap'",
	'tweetlake.topic' => "'tweets'",
	'tweetlake.generator_rate' => 2000,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 2000);

# --- the topic does not exist yet ---------------------------------------------------------
wait_for($node, "SELECT count(*) FROM tweetlake.status
                 WHERE role IN ('generator', 'consumer') AND state = 'waiting for the topic'",
	'3', 'generator and both consumers wait for the topic');
my $err = sql_value($node, "SELECT string_agg(DISTINCT last_error, ' | ') FROM tweetlake.status
                            WHERE role IN ('generator', 'consumer')");
is($err, qq{topic "tweets" does not exist on $bootstrap (create it; tweetlake does not create topics)},
	'status says which topic is missing where');
my $pids = sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY role, worker) FROM tweetlake.status
                             WHERE role IN ('generator', 'consumer')");
sleep 6;    # three retry rounds
is(sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY role, worker) FROM tweetlake.status
                     WHERE role IN ('generator', 'consumer')"),
	$pids, 'the workers wait in place (same pids, no restarts)');
my $log = slurp_file($node->logfile);
my $logged = () = $log =~ /tweetlake generator: topic "tweets" does not exist/g;
is($logged, 1, 'the missing topic is logged once per worker, not at every retry');
unlike($log, qr/terminated by signal|exited with exit code [^0]/, 'no worker crashed');
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets'), '0', 'nothing ingested');

# --- create it: the live pipeline runs ------------------------------------------------------
kafka_topic($kafka, 'tweets', 4);
wait_for($node, 'SELECT count(*) >= 20000 FROM bronze.tweets', 't',
	'20000 tweets through the real broker (10 s at 2000/s)', 180);
is(sql_value($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND messages > 0"),
	'2', 'both consumers consume');
is(sql_value($node, "SELECT string_agg(consumer::text || ':' || partition, ',' ORDER BY partition)
                     FROM tweetlake.consumer_lag"),
	'0:0,1:1,0:2,1:3', 'four partitions spread over two consumers');
is(sql_value($node, 'SELECT count(DISTINCT kafka_partition) FROM bronze.tweets'), '4',
	'tweets arrive from all four partitions');
is(sql_value($node, "SELECT state FROM tweetlake.status WHERE role = 'generator'"),
	'producing 2000 tweets/s', 'generator state');

# kcat reads what the generator produced: keyed by tweet_id, valid JSON.
my ($kout, $kerr) = ('', '');
IPC::Run::run([ 'kcat', '-C', '-b', $bootstrap, '-t', 'tweets', '-p', '0', '-o', 'beginning',
	'-c', '200', '-e', '-q', '-f', '%k\t%s\n' ], '>', \$kout, '2>', \$kerr);
my @lines = split /\n/, $kout;
is(scalar @lines, 200, 'kcat consumed 200 generator messages from partition 0');
my $good = grep {
	my ($k, $v) = split /\t/, $_, 2;
	my $doc = eval { JSON::PP::decode_json($v) };
	$doc && $doc->{tweet_id} eq $k && $doc->{text} ne '' && exists $doc->{user}{user_id}
} @lines;
is($good, 200, 'each is a tweet in JSON keyed by its tweet_id');

# --- stop, drain, and count -----------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL",
	'0', 'workers stopped');
my $produced = sql_value($node, "SELECT messages FROM tweetlake.status WHERE role = 'generator'");
is(sql_value($node, "SELECT errors FROM tweetlake.status WHERE role = 'generator'"), '0',
	'every generator message was acknowledged by the broker');

# Interop while the generator is off: kcat (keyless, spread) and the Java console producer.
my @kcat_msgs = generated_tweets($node, 100, 71);
kcat_produce($bootstrap, 'tweets', write_messages(\@kcat_msgs, "\n"), '\n');
my @java_msgs = generated_tweets($node, 100, 72);
kafka_tool($kafka, join("\n", @java_msgs) . "\n", 'org.apache.kafka.tools.ConsoleProducer',
	'--bootstrap-server', $bootstrap, '--topic', 'tweets');
my $expected = $produced + 200;

$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
$node->safe_psql('postgres', 'SELECT tweetlake.start()');
wait_for($node, 'SELECT sum(next_offset) FROM tweetlake.offsets', $expected,
	"stored offsets cover the generator's $produced and the 200 interop messages");
wait_for($node, 'SELECT sum(high_watermark) FROM tweetlake.consumer_lag', $expected,
	'the broker holds exactly that many messages');
$node->safe_psql('postgres', 'SELECT tweetlake.stop()');

is(sql_value($node, 'SELECT count(*) FROM bronze.tweets'), $expected, "bronze holds all $expected messages");
is(sql_value($node, 'SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'),
	$expected, 'each Kafka offset once');
is(sql_value($node, 'SELECT count(*) FROM silver.tweets'), $expected, 'silver has a row per message');
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), '0', 'no dead letters');
my $ids = join(',', map { /"tweet_id":"([^"]+)"/ ? "'$1'" : die } @kcat_msgs);
is(sql_value($node, "SELECT count(*) FROM silver.tweets WHERE tweet_id IN ($ids)"), '100',
	'the 100 kcat messages are in silver');
$ids = join(',', map { /"tweet_id":"([^"]+)"/ ? "'$1'" : die } @java_msgs);
is(sql_value($node, "SELECT count(*) FROM silver.tweets WHERE tweet_id IN ($ids)"), '100',
	'the 100 console-producer messages are in silver');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify(): gold equals a full recompute');
is(sql_value($node, 'SELECT sum(total_tweets) FROM gold.hourly_activity_summary'), $expected,
	'the hourly summary counts every tweet');

$node->stop('fast');
$log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|exited with exit code [^01]/, 'clean shutdown');
done_testing();
