# ALTER EXTENSION tweetlake UPDATE from every released version, with the pipeline running:
# the data are intact, verify() is zero, ingest goes on (as the worker role once the new
# schema has it), nothing is lost or stored twice, and the upgraded schema is exactly what a
# fresh install of the current version creates.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $src = -d 'test' ? '.' : $ENV{TWEETLAKE_SRC};

# a < b for versions "x.y.z"
sub version_lt
{
	my ($a, $b) = map { [ split /\./ ] } @_;
	for my $i (0 .. 2) { return $a->[$i] < $b->[$i] if $a->[$i] != $b->[$i]; }
	return 0;
}
my $fingerprint_sql = slurp_file("$src/test/schema_fingerprint.sql");

# Which versions there are: the installed control file and scripts say.
my $probe = PostgreSQL::Test::Cluster->new('probe');
$probe->init;
$probe->start;
my $current = $probe->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'tweetlake'");
my @older = split /\n/, $probe->safe_psql('postgres',
	"SELECT version FROM pg_available_extension_versions
	 WHERE name = 'tweetlake' AND version <> '$current' ORDER BY string_to_array(version, '.')::int[]");
my $tomorrow = $probe->safe_psql('postgres', "SELECT to_char(now() AT TIME ZONE 'UTC' + interval '1 day', 'YYYYMMDD')");
$probe->stop;
ok(scalar(@older) >= 1, "released versions to upgrade from: @older (current $current)");

for my $from (@older)
{
	my $node = PostgreSQL::Test::Cluster->new("upgrade_" . ($from =~ tr/./_/r));
	$node->init;
	$node->append_conf('postgresql.conf', join('', map { "$_\n" }
		"shared_preload_libraries = 'tweetlake'", "tweetlake.database = 'postgres'",
		'max_worker_processes = 20', 'shared_buffers = 256MB',
		'tweetlake.generator_rate = 2000', 'tweetlake.consumers = 2', 'tweetlake.batch_size = 5000'));
	$node->start;
	$node->safe_psql('postgres', "CREATE EXTENSION tweetlake VERSION '$from'");
	is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'"),
		$from, "installed $from");

	# The pipeline runs on the old schema; SQL loads too.
	wait_for($node, 'SELECT count(*) >= 10000 FROM bronze.tweets', 't', "$from: 10k tweets from Kafka in bronze");
	$node->safe_psql('postgres', "SELECT tweetlake.load_generated(20000, 7)");
	$node->safe_psql('postgres', q{
		CREATE TABLE public.silver_before AS SELECT * FROM silver.tweets;
		CREATE TABLE public.bronze_before AS SELECT raw, kafka_partition, kafka_offset FROM bronze.tweets;
		CREATE TABLE public.offsets_before AS SELECT * FROM tweetlake.offsets;});
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM public.silver_before');
	ok($before >= 30000, "$from: $before tweets in silver before the update");

	# The update, with the generator and both consumers writing.
	is($node->safe_psql('postgres', 'SET search_path = public; ALTER EXTENSION tweetlake UPDATE; SHOW search_path'),
		'public', "$from -> $current: the upgrade script's search_path does not outlive it");
	is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'"),
		$current, "$from -> $current: ALTER EXTENSION tweetlake UPDATE with the workers running");

	# Nothing that was there is gone or changed.
	my $silver_cols = $node->safe_psql('postgres', q{SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = 'public.silver_before'::regclass AND attnum > 0 AND NOT attisdropped});
	is($node->safe_psql('postgres', "SELECT count(*) FROM (SELECT * FROM public.silver_before
	                                 EXCEPT ALL SELECT $silver_cols FROM silver.tweets) x"),
		'0', "$from -> $current: every silver row as it was");

	# Tweets stored before the update can be updated and deleted after it (schema 0.5.0).
	my ($gone, $changed) = split /\|/, $node->safe_psql('postgres',
		'SELECT min(tweet_id), max(tweet_id) FROM public.silver_before');
	is($node->safe_psql('postgres', "SELECT tweetlake.delete_tweet('$gone')"), 't',
		"$from -> $current: delete_tweet() of a tweet stored before the update");
	$node->safe_psql('postgres', qq{INSERT INTO bronze.tweets (raw)
		SELECT jsonb_set(raw::jsonb, '{like_count}', to_jsonb(coalesce((raw::jsonb->>'like_count')::int, 0) + 5000))::text
		FROM bronze.tweets WHERE tweet_id = '$changed' AND raw IS NOT NULL LIMIT 1});
	is($node->safe_psql('postgres', qq{SELECT (SELECT count(*) FROM silver.tweets WHERE tweet_id = '$gone')
		|| ',' || (SELECT s.like_count - b.like_count FROM silver.tweets s JOIN public.silver_before b USING (tweet_id)
		           WHERE tweet_id = '$changed')}),
		'0,5000', "$from -> $current: the deleted tweet left silver, the updated one has its new likes");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM (SELECT * FROM public.bronze_before EXCEPT ALL
	                                   SELECT raw, kafka_partition, kafka_offset FROM bronze.tweets) x'),
		'0', "$from -> $current: every bronze row as it was");
	# Bronze by day (0.6.0): the rows from before an update from an older version are one
	# partition, kept whole, and the launcher makes the day partitions from tomorrow on of
	# both bronze tables.
	is($node->safe_psql('postgres', 'SELECT count(*) FROM (SELECT * FROM public.bronze_before EXCEPT ALL
	                                   SELECT raw, kafka_partition, kafka_offset FROM bronze.tweets_before_partitioning) x'),
		'0', "$from -> $current: bronze's rows from before the update are the partition tweets_before_partitioning")
	  if version_lt($from, '0.6.0');
	wait_for($node, "SELECT string_agg(partition::text, ' ' ORDER BY partition::text) FROM tweetlake.bronze_partitions
	                 WHERE range_from = (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC'",
		'bronze.dead_letters_p' . $tomorrow . ' bronze.tweets_p' . $tomorrow,
		"$from -> $current: the launcher made tomorrow's partitions of bronze.tweets and bronze.dead_letters", 30);
	is($node->safe_psql('postgres', 'SELECT count(*) FROM public.offsets_before b JOIN tweetlake.offsets o USING (topic, partition)
	                                  WHERE o.next_offset < b.next_offset'),
		'0', "$from -> $current: no stored offset went back");
	# Sources (0.12.0): the offsets there were become the default source's, the only one.
	is($node->safe_psql('postgres', "SELECT (SELECT string_agg(name, ',') FROM tweetlake.sources) || ' '
	        || (SELECT count(*) FROM tweetlake.offsets WHERE source = 'default') || ' '
	        || (SELECT count(*) FROM public.offsets_before)"),
		'default 4 4', "$from -> $current: one source, default, with the 4 partitions' offsets");

	# Ingest goes on, and the consumers come back as the worker role the new schema made.
	wait_for($node, "SELECT count(*) >= $before + 10000 FROM silver.tweets", 't',
		"$from -> $current: 10k more tweets reach silver after the update");
	wait_for($node, "SELECT string_agg(DISTINCT usename, ',') FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'",
		'tweetlake_worker', "$from -> $current: the consumers run as tweetlake_worker");
	is($node->safe_psql('postgres', "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND retries = 0
	                                  AND source = 'default'"),
		'2', "$from -> $current: tweetlake.status has the new columns (retries, source), no consumer stalled");

	# Drain and check the whole: exactly once, and gold equals a recompute.
	$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
	wait_for($node, "SELECT sum(lag) = 0 AND count(*) = 4 FROM tweetlake.consumer_lag", 't',
		"$from -> $current: consumers drained the topic");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM (SELECT kafka_partition, kafka_offset FROM bronze.tweets
	                                  WHERE kafka_topic IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d'),
		'0', "$from -> $current: no Kafka message stored twice");
	is($node->safe_psql('postgres', 'SELECT (SELECT sum(next_offset) FROM tweetlake.offsets)
	        = (SELECT count(*) FROM bronze.tweets WHERE kafka_topic IS NOT NULL)
	        + (SELECT count(*) FROM bronze.dead_letters WHERE kafka_topic IS NOT NULL)'),
		't', "$from -> $current: every offset below the stored ones is in bronze or dead letters");
	is($node->safe_psql('postgres', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'),
		'0', "$from -> $current: verify() is zero");
	# 0.11.0: each member of the top users' set keeps a copy of its row, which the ranking
	# reads: the update filled the copies, and the batches after it kept them.
	is($node->safe_psql('postgres', q{SELECT count(*) FROM tweetlake.top_users t
		LEFT JOIN gold.user_engagement u USING (user_id)
		WHERE t.user_id NOT IN (SELECT user_id FROM tweetlake.top_users_pending WHERE user_id IS NOT NULL)
		  AND (t.username, t.tweets_count, t.followers_count, t.total_engagement, t.first_day, t.last_day)
		      IS DISTINCT FROM (u.username, u.tweets_count, u.followers_count, u.total_engagement, u.first_day, u.last_day)}),
		'0', "$from -> $current: every member's copy of its row equals gold.user_engagement's");
	$node->safe_psql('postgres', 'SELECT tweetlake.rebuild_gold()');
	is($node->safe_psql('postgres', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'),
		'0', "$from -> $current: rebuild_gold() and verify() agree");

	# The upgraded schema is the current one, object for object.
	$node->safe_psql('postgres', 'DROP TABLE public.silver_before, public.bronze_before, public.offsets_before');
	$node->safe_psql('postgres', 'CREATE DATABASE fresh');
	$node->safe_psql('fresh', 'CREATE EXTENSION tweetlake');
	my $upgraded = $node->safe_psql('postgres', $fingerprint_sql);
	my $fresh = $node->safe_psql('fresh', $fingerprint_sql);
	ok(length($fresh) > 10000, "$current: schema fingerprint has every object (" . length($fresh) . " bytes)");
	is($upgraded, $fresh, "$from -> $current: the upgraded schema equals a fresh install of $current");
	$node->stop;
}

done_testing();
