# Exactly once against a real Apache Kafka broker (test/kafka/kafka.sh): consumer workers
# killed with SIGKILL, a backend killed (whole-server crash restart) and immediate restarts
# of Postgres while the broker keeps running; then the broker itself stopped and started
# in the middle of live ingest with the generator producing.  Nothing lost, nothing twice.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
my $bootstrap = $kafka->{bootstrap};
kafka_topic($kafka, 'tweets', 4);

my $node = tweetlake_node('kafka_faults',
	'tweetlake.brokers' => "'$bootstrap'",
	'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 100,
	'tweetlake.batch_timeout_ms' => 50,
	restart_after_crash => 'on');

# --- Postgres-side faults, the broker running throughout ---------------------------------
my $n = 6 * 3000;
exactly_once_under_faults($node, $bootstrap, 'tweets', 6, 3000, 31);

# --- the broker stopped and started mid-ingest ------------------------------------------
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 2000;
                              ALTER SYSTEM SET tweetlake.batch_size = 1000; SELECT pg_reload_conf()");
wait_for($node, 'SELECT count(*) >= ' . ($n + 6000) . ' FROM bronze.tweets', 't',
	'live ingest from the generator under way', 120);
my $before = sql_value($node, 'SELECT count(*) FROM bronze.tweets');
restart_kafka($kafka);    # SIGTERM, wait for it to exit, start on the same ports and data
note("broker restarted with $before rows in bronze");
like(sql_value($node, "SELECT string_agg(DISTINCT coalesce(last_error, ''), ' | ') FROM tweetlake.status
                       WHERE role IN ('generator', 'consumer')"),
	qr/127\.0\.0\.1:\d+.*(Connection refused|Disconnected|failed|down)/i,
	'the outage shows in tweetlake.status');
wait_for($node, 'SELECT count(*) >= ' . ($before + 10000) . ' FROM bronze.tweets', 't',
	'ingest goes on after the broker is back', 180);

# Stop producing, let the consumers drain, and count.
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
# rate 0 stops the generator worker, which flushes its queue before it exits
wait_for($node, "SELECT state || ' ' || (pid IS NULL) FROM tweetlake.status WHERE role = 'generator'",
	'stopped true', 'generator stopped');
my $produced = sql_value($node, "SELECT messages FROM tweetlake.status WHERE role = 'generator'");
is(sql_value($node, "SELECT errors FROM tweetlake.status WHERE role = 'generator'"), '0',
	'no generator message failed across the broker restart');
my $total = $n + $produced;
wait_for($node, 'SELECT sum(high_watermark) FROM tweetlake.consumer_lag', "$total",
	"the broker holds the $n sent before and the $produced generated");
wait_for($node, 'SELECT sum(next_offset) FROM tweetlake.offsets', "$total",
	'stored offsets reach the end of every partition', 180);
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets'), "$total", "bronze has all $total");
is(sql_value($node, 'SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'),
	"$total", 'each (partition, offset) once');
is(sql_value($node, "SELECT count(*) FROM (SELECT kafka_partition, max(kafka_offset) + 1 - count(*) AS gap
                     FROM bronze.tweets GROUP BY kafka_partition) g WHERE gap <> 0"),
	'0', 'no gap in any partition');
is(sql_value($node, 'SELECT count(DISTINCT tweet_id) FROM bronze.tweets'), "$total",
	'each tweet_id once (the idempotent producer sent nothing twice)');
is(sql_value($node, 'SELECT count(*) FROM silver.tweets'), "$total", 'silver has a row per tweet');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify(): gold equals a full recompute');

$node->stop('fast');
done_testing();
