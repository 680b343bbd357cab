# Bronze retention run by the launcher while the pipeline ingests: it makes today's and
# tomorrow's day partitions before the first consumer writes, empties an expired day with
# TRUNCATE while a writer holds bronze (and drops it at a later run, once it may take the
# parent's lock for an instant), keeps going when a run fails, and never loses or repeats a
# message; silver keeps the tweets of the dropped day and verify() stays zero.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use PipelineTest;

my $topic = 'tweets';
my $partitions = 4;
my $node = tweetlake_node('retention',
	'tweetlake.generator_rate' => 2000,
	'tweetlake.consumers' => 2,
	'tweetlake.partitions' => $partitions,
	'tweetlake.batch_size' => 2000);

my $today = sql_value($node, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')");
my $tomorrow = sql_value($node, "SELECT to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD')");

# --- day partitions come first -----------------------------------------------------------------
wait_for($node, 'SELECT count(*) >= 5000 FROM bronze.tweets', 't', 'tweets flow');
is(sql_value($node, "SELECT string_agg(partition::text, ' ' ORDER BY partition::text)
                     FROM tweetlake.bronze_partitions WHERE range_from IS NOT NULL"),
	"bronze.dead_letters_p$today bronze.dead_letters_p$tomorrow bronze.tweets_p$today bronze.tweets_p$tomorrow",
	'the launcher made today\'s and tomorrow\'s partitions of both bronze tables');
like(slurp_file($node->logfile), qr/tweetlake launcher: partition bronze\.tweets_p$tomorrow: created/,
	'and logged what it made');
is(sql_value($node, "SELECT count(*) FILTER (WHERE tableoid = 'bronze.tweets_default'::regclass) || ' of ' || (count(*) > 0)
                     FROM bronze.tweets"),
	'0 of true', 'the workers\' rows are in the day partition, none in the default partition');

# --- an expired day, emptied while a writer holds bronze, dropped afterwards --------------------
$node->safe_psql('postgres', q{
	CREATE TABLE bronze.tweets_p_expired (LIKE bronze.tweets INCLUDING DEFAULTS INCLUDING GENERATED);
	DO $$ BEGIN
	  EXECUTE format('ALTER TABLE bronze.tweets ATTACH PARTITION bronze.tweets_p_expired FOR VALUES FROM (%L) TO (%L)',
	                 date_trunc('day', now() AT TIME ZONE 'UTC' - interval '40 days') AT TIME ZONE 'UTC',
	                 date_trunc('day', now() AT TIME ZONE 'UTC' - interval '39 days') AT TIME ZONE 'UTC');
	END $$;
	INSERT INTO bronze.tweets (raw, ingested_at)
	SELECT t, now() - interval '960 hours' FROM tweetlake.generate_tweets(500, 77, '2025-10-01', '1 day') t;});
is(sql_value($node, "SELECT count(*) FROM bronze.tweets_p_expired"), '500', '500 tweets of 40 days ago in their partition');
my $old_ids = "SELECT tweet_id FROM silver.tweets WHERE created_at < '2025-10-03'";
is(sql_value($node, "SELECT count(*) FROM ($old_ids) x"), '500', 'and in silver');

# A session that wrote into bronze and keeps its transaction open, as a consumer's batch does
# (a message that becomes a dead letter, so that it holds no gold row a consumer needs).
my $writer = $node->background_psql('postgres');
$writer->query_safe("BEGIN; INSERT INTO bronze.tweets (raw) VALUES ('not json')");

my $rows_before = sql_value($node, 'SELECT count(*) FROM bronze.tweets');
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.bronze_retention = '30d'");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT count(*) FROM bronze.tweets_p_expired", '0',
	'a reload applies the retention: the expired day is emptied while the writer holds bronze', 30);
wait_for($node, "SELECT count(*) > $rows_before + 4000 FROM bronze.tweets", 't',
	'the consumers go on writing meanwhile', 60);
like(slurp_file($node->logfile), qr/partition bronze\.tweets_p_expired: emptied; dropped at a later run/,
	'the drop, which needs the parent\'s lock, waited 50 ms and was left for a later run');
ok(defined sql_value($node, "SELECT to_regclass('bronze.tweets_p_expired')"), 'the empty table is still there');

$writer->query_safe('COMMIT');
$writer->quit;
# each poll reloads, so the launcher runs again: under load a run's 50 ms for the parent's lock
# can fall while a consumer's batch holds it, and the drop waits for the run after
wait_for($node, "SELECT to_regclass('bronze.tweets_p_expired') IS NULL FROM pg_reload_conf()", 't',
	'once the writer is done, a later run drops it', 30);
is(sql_value($node, "SELECT count(*) FROM ($old_ids) x"), '500', 'silver keeps the 500 tweets of the dropped day');

# --- a run that fails leaves the launcher running and says why ---------------------------------
my $launcher = sql_value($node, "SELECT pid FROM tweetlake.status WHERE role = 'launcher'");
$node->safe_psql('postgres', "DROP TABLE bronze.dead_letters_p$tomorrow;
                              CREATE TABLE bronze.dead_letters_p$tomorrow (x int)");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT last_error FROM tweetlake.status WHERE role = 'launcher'",
	"partition maintenance: relation \"dead_letters_p$tomorrow\" already exists",
	'a failed run is the launcher\'s last_error', 30);
like(slurp_file($node->logfile), qr/WARNING:  tweetlake launcher: bronze partition maintenance failed: relation "dead_letters_p$tomorrow" already exists/,
	'and a WARNING in the log');
is(sql_value($node, "SELECT pid FROM tweetlake.status WHERE role = 'launcher'"), $launcher, 'the launcher keeps running');
$node->safe_psql('postgres', "DROP TABLE bronze.dead_letters_p$tomorrow");
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT count(*) FROM tweetlake.bronze_partitions WHERE partition = 'bronze.dead_letters_p$tomorrow'::regclass",
	'1', 'the next run makes the partition', 30);

# --- nothing lost, nothing twice ---------------------------------------------------------------
$node->safe_psql('postgres', 'ALTER SYSTEM SET tweetlake.generator_rate = 0');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT pid IS NULL FROM tweetlake.status WHERE role = 'generator'", 't', 'the generator stops', 20);
my %end = %{ embedded_end_offsets($node, $topic, $partitions) };
my $total = 0;
$total += $_ for values %end;
wait_for($node, "SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets WHERE topic = '$topic'",
	"$total", "the consumers store all $total offsets", 90);
offsets_each_once($node, $topic, \%end);
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');

$node->stop('fast');
done_testing();
