# The live pipeline on the embedded broker: the generator produces, two consumers fill
# bronze, silver and gold, and the status views say so.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $node = tweetlake_node('pipeline',
	'tweetlake.generator_rate' => 2000,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 5000);

# Workers, named in pg_stat_activity.
wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN
                 ('tweetlake launcher', 'tweetlake broker', 'tweetlake generator', 'tweetlake consumer')",
	'5', 'launcher, broker, generator and two consumers in pg_stat_activity');

# Data flows: 30k tweets at 2000/s is about 15 s.
wait_for($node, "SELECT count(*) >= 30000 FROM bronze.tweets", 't', '30000 tweets in bronze (15 s at 2000/s)');

# While running: the generator's 10-second rate is near its setting; both consumers work.
my $gen_rate = sql_value($node, "SELECT rate_10s FROM tweetlake.status WHERE role = 'generator'");
ok($gen_rate > 1000 && $gen_rate < 3000, "generator rate_10s near 2000/s (got $gen_rate)");
my $busy = sql_value($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND messages > 0");
is($busy, '2', 'both consumers have consumed messages');
my $parts = sql_value($node, "SELECT string_agg(consumer::text || ':' || partition, ',' ORDER BY partition)
                              FROM tweetlake.consumer_lag");
is($parts, '0:0,1:1,0:2,1:3', 'partitions spread over the two consumers (p mod 2)');

# Reload: the generator takes the new rate.
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 500; SELECT pg_reload_conf()");
wait_for($node, "SELECT state FROM tweetlake.status WHERE role = 'generator'",
	'producing 500 tweets/s', 'generator state after SIGHUP');

# Stop the pipeline and let the consumers drain: then everything adds up.
$node->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL",
	'0', 'generator and consumers stopped');
my $produced = sql_value($node, "SELECT messages FROM tweetlake.status WHERE role = 'generator'");
my $hw = sql_value($node, "SELECT sum(high_watermark) FROM tweetlake.consumer_lag");
# The consumers stopped with their last batch stored; start them without the generator to drain.
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
$node->safe_psql('postgres', 'SELECT tweetlake.start()');
wait_for($node, "SELECT sum(next_offset) FROM tweetlake.offsets", $produced,
	'offsets reach everything the generator produced');
$node->safe_psql('postgres', 'SELECT tweetlake.stop()');

my $bronze = sql_value($node, 'SELECT count(*) FROM bronze.tweets');
is($bronze, $produced, "bronze holds every produced message ($produced)");
is(sql_value($node, 'SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'),
	$produced, 'each Kafka offset stored once');
is(sql_value($node, 'SELECT count(*) FROM silver.tweets'), $produced, 'silver has a row per tweet');
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), '0', 'no dead letters from the generator');
for my $t (qw(popular_hashtags_by_hour active_users_by_day tweet_volume_by_region
	tweet_metrics_by_language hourly_activity_summary))
{
	ok(sql_value($node, "SELECT count(*) FROM gold.$t") > 0, "gold.$t has rows");
}
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify(): incremental gold equals a full recompute');
is(sql_value($node, 'SELECT sum(total_tweets) FROM gold.hourly_activity_summary'), $produced,
	'hourly summary counts every tweet');
like(sql_value($node, 'SELECT tweetlake.bootstrap_servers()'), qr/^127\.0\.0\.1:\d+$/,
	'embedded broker listens on loopback');

# DROP EXTENSION with the pipeline running: the generator and consumers stop before the
# embedded broker, so nobody talks to a broker that is gone.
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 2000; SELECT pg_reload_conf()");
$node->safe_psql('postgres', 'SELECT tweetlake.start()');
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND messages > 0 AND pid IS NOT NULL",
	'3', 'pipeline running again before DROP EXTENSION');
my $log_at = -s $node->logfile;
# DROP EXTENSION takes its locks table by table, so it can deadlock with a consumer's batch;
# PostgreSQL then cancels one of the two, and a user runs DROP again (README).
for my $try (1 .. 5)
{
	my ($rc, $out, $err) = $node->psql('postgres', 'DROP EXTENSION tweetlake');
	last if $rc == 0;
	die "DROP EXTENSION failed: $err" unless $err =~ /deadlock detected/;
	note "DROP EXTENSION try $try: deadlock with a consumer's batch, again";
}
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_extension WHERE extname = 'tweetlake'"), '0',
	'DROP EXTENSION with the pipeline running');
wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('tweetlake broker', 'tweetlake generator', 'tweetlake consumer')",
	'0', 'DROP EXTENSION stops the broker, the generator and the consumers');
my $after_drop = slurp_file($node->logfile, $log_at);
# (Stopping the broker first made the generator log "Disconnected" and "1/1 brokers are down"
# while it flushed, and the consumers exit with code 1.)
unlike($after_drop, qr/Connection refused|Failed to connect|brokers are down|Disconnected|message timed out|could not (flush|deliver)/i,
	'after DROP EXTENSION no worker talks to a broker that is gone');
unlike($after_drop, qr/"tweetlake [a-z]+" \(PID \d+\) exited with exit code [^0]/,
	'after DROP EXTENSION every worker exits cleanly');

# Clean shutdown: no worker dies by a signal.
$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/, 'no process terminated by a signal');
unlike($log, qr/exited with exit code [^01]/, 'no worker exited abnormally');

done_testing();
