# Several Kafka sources in one database, on a real Apache Kafka broker: the default source
# (postgresql.conf's settings, plain listener) runs while a source over SASL_SSL with its
# own properties file is added, another is added, changed and dropped, and one is turned
# off and on, all without a restart.  Each source's workers start and stop within seconds,
# its offsets are its own, every message of every topic is in bronze exactly once, the
# password appears nowhere, and more workers than the server has is refused up front.  Each
# source writes for its tenant (0.13.0), and a tenant's role reads its own rows only.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
kafka_topic($kafka, 'tweets', 4);
kafka_topic($kafka, 'secure_feed', 2);
kafka_topic($kafka, 'replay_feed', 3);
my $password = $kafka->{users}{tweetlake};

my $secrets = PostgreSQL::Test::Utils::tempdir . '/secure.properties';
open my $fh, '>', $secrets or die;
print $fh "security.protocol=SASL_SSL\n", "ssl.ca.location=$kafka->{ca}\n",
  "sasl.mechanisms=PLAIN\n", "sasl.username=tweetlake\n", "sasl.password=$password\n";
close $fh;
chmod 0600, $secrets;

my $node = tweetlake_node('sources',
	'tweetlake.brokers' => "'$kafka->{bootstrap}'",
	'tweetlake.topic' => "'tweets'",
	'tweetlake.generator_rate' => 1000,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 1000,
	max_worker_processes => 12);

# How many workers of a source run, by role, as pg_stat_activity and tweetlake.status see them.
sub running
{
	my ($source) = @_;
	return sql_value($node, "SELECT coalesce(string_agg(role || ':' || n, ' ' ORDER BY role), '')
		FROM (SELECT role, count(*) AS n FROM tweetlake.status s
		      JOIN pg_stat_activity a ON a.pid = s.pid
		      WHERE s.source = '$source' GROUP BY role) r");
}

# --- the default source alone, as before sources --------------------------------------------
wait_for($node, "SELECT count(*) >= 2000 FROM bronze.tweets WHERE kafka_topic = 'tweets'", 't',
	'the default source ingests from the plain listener', 120);
is(running('default'), 'consumer:2 generator:1', 'the default source: two consumers and a generator');
is(sql_value($node, "SELECT string_agg(DISTINCT source, ',') FROM tweetlake.offsets"), 'default',
	'its offsets are under "default"');

# --- a source over SASL_SSL, added while the pipeline runs ------------------------------------
$node->safe_psql('postgres', "SELECT tweetlake.create_source(name => 'secure',
	brokers => '$kafka->{ssl_bootstrap}', topic => 'secure_feed', consumers => 1,
	kafka_config_file => '$secrets', generator_rate => 500, tenant => 'acme')");
wait_for($node, "SELECT count(*) FROM tweetlake.status s JOIN pg_stat_activity a ON a.pid = s.pid
                 WHERE s.source = 'secure' AND s.state ~ '^(consuming|producing)'", '2',
	'its consumer and generator run within seconds of create_source', 15);
wait_for($node, "SELECT count(*) >= 1500 FROM bronze.tweets WHERE kafka_topic = 'secure_feed'", 't',
	'tweets of the SASL_SSL source reach bronze', 120);
is(sql_value($node, "SELECT string_agg(DISTINCT a.usename, ',') FROM tweetlake.status s
                     JOIN pg_stat_activity a ON a.pid = s.pid WHERE s.source = 'secure' AND s.role = 'consumer'"),
	'tweetlake_worker', 'its consumer runs as tweetlake_worker');
like(sql_value($node, "SELECT string_agg(DISTINCT backend_type, ',') FROM pg_stat_activity
                      WHERE backend_type LIKE 'tweetlake%'"),
	qr/^tweetlake consumer,tweetlake generator,tweetlake launcher$/, 'workers named in pg_stat_activity');
is(running('default'), 'consumer:2 generator:1', 'the default source ran on unchanged');

# --- a replay: a pre-filled topic, a source of two consumers, drained exactly once ------------
my @replay = generated_tweets($node, 3000, 18);
kcat_produce($kafka->{bootstrap}, 'replay_feed', write_messages(\@replay, "\n"), "\n");
$node->safe_psql('postgres', "SELECT tweetlake.create_source('replay', '$kafka->{bootstrap}', 'replay_feed',
	consumers => 2, tenant => 'beta')");
wait_for($node, "SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets WHERE source = 'replay'", '3000',
	'the replay source drains its topic', 120);
is(sql_value($node, "SELECT count(*) || ' ' || count(DISTINCT (kafka_partition, kafka_offset))
                     FROM bronze.tweets WHERE kafka_topic = 'replay_feed'"),
	'3000 3000', 'each of its 3000 messages in bronze once');
is(sql_value($node, "SELECT string_agg(source || ':' || topic || ':' || n, ' ' ORDER BY source)
                     FROM (SELECT source, topic, count(*) AS n FROM tweetlake.offsets GROUP BY 1, 2) o"),
	'default:tweets:4 replay:replay_feed:3 secure:secure_feed:2', 'offsets: each source its own partitions');
is(sql_value($node, "SELECT string_agg(source || ':' || n, ' ' ORDER BY source)
                     FROM (SELECT source, count(*) AS n FROM tweetlake.consumer_lag GROUP BY 1) l"),
	'default:4 replay:3 secure:2', 'consumer_lag: each source its partitions');
is(running('replay'), 'consumer:2', 'the replay source: two consumers, no generator (rate 0)');

# --- changed: one consumer takes all three partitions; more messages arrive once ------------
my $pids = sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM tweetlake.status WHERE source = 'secure' AND pid IS NOT NULL");
$node->safe_psql('postgres', "SELECT tweetlake.alter_source('replay', consumers => 1)");
wait_for($node, "SELECT string_agg(consumer::text, ',' ORDER BY partition) FROM tweetlake.consumer_lag
                 WHERE source = 'replay'", '0,0,0', 'after alter_source one consumer has the three partitions', 15);
@replay = generated_tweets($node, 1000, 19);
kcat_produce($kafka->{bootstrap}, 'replay_feed', write_messages(\@replay, "\n"), "\n");
wait_for($node, "SELECT count(*) || ' ' || count(DISTINCT (kafka_partition, kafka_offset))
                 FROM bronze.tweets WHERE kafka_topic = 'replay_feed'", '4000 4000',
	'1000 more replayed messages, each once', 120);
is(sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM tweetlake.status WHERE source = 'secure' AND pid IS NOT NULL"),
	$pids, 'changing one source left the workers of another alone');

# --- dropped while running: its workers stop, its offsets and status rows go, its rows stay ---
$node->safe_psql('postgres', "SELECT tweetlake.drop_source('replay')");
wait_for($node, "SELECT count(*) FROM pg_stat_activity a JOIN tweetlake.status s ON s.pid = a.pid
                 WHERE s.source = 'replay'", '0', 'its consumer stops within seconds of drop_source', 15);
wait_for($node, "SELECT (SELECT count(*) FROM tweetlake.status WHERE source = 'replay')
                        + (SELECT count(*) FROM tweetlake.consumer_lag WHERE source = 'replay')
                        + (SELECT count(*) FROM tweetlake.offsets WHERE source = 'replay')", '0',
	'tweetlake.status, consumer_lag and offsets forget it', 15);
is(sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE kafka_topic = 'replay_feed'"), '4000',
	'what it stored stays in bronze');
like(slurp_file($node->logfile), qr/source "replay" was dropped, stopping its workers/, 'the launcher logs the drop');

# --- a reading of the sources that fails keeps the sources running as they were ----------------
my $running_pids = sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM tweetlake.status
                                     WHERE source IS NOT NULL AND pid IS NOT NULL");
$node->safe_psql('postgres', 'ALTER TABLE tweetlake.sources RENAME COLUMN enabled TO enabled_renamed');
wait_for($node, "SELECT last_error ~ '^reading tweetlake.sources: column \"enabled\" does not exist' FROM tweetlake.status
                 WHERE role = 'launcher'", 't', "the launcher says why it cannot read the sources", 15);
sleep 2;
is(sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY pid) FROM tweetlake.status
                     WHERE source IS NOT NULL AND pid IS NOT NULL"), $running_pids,
	'meanwhile every source runs on, with the same workers');
$node->safe_psql('postgres', 'ALTER TABLE tweetlake.sources RENAME COLUMN enabled_renamed TO enabled');

# --- turned off and on: no message lost or stored twice across it ------------------------------
$node->safe_psql('postgres', "SELECT tweetlake.alter_source('secure', enabled => false)");
wait_for($node, "SELECT count(*) FROM pg_stat_activity a JOIN tweetlake.status s ON s.pid = a.pid
                 WHERE s.source = 'secure'", '0', 'a disabled source stops', 15);
my $held = sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE kafka_topic = 'secure_feed'");
sleep 2;
is(sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE kafka_topic = 'secure_feed'"), $held,
	'nothing of it is ingested while it is off');
is(running('default'), 'consumer:2 generator:1', 'the default source runs on');
$node->safe_psql('postgres', "SELECT tweetlake.alter_source('secure', enabled => true)");
wait_for($node, "SELECT count(*) > $held + 1000 FROM bronze.tweets WHERE kafka_topic = 'secure_feed'", 't',
	'enabled again, it goes on', 120);

# --- more workers than max_worker_processes: refused at create_source ------------------------
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT tweetlake.create_source('big', '$kafka->{bootstrap}', 'big_feed', consumers => 8)");
like($err, qr/the enabled sources need 14 background workers, but max_worker_processes is 12/,
	'too many workers is an error at create_source');
is(sql_value($node, "SELECT count(*) FROM tweetlake.sources WHERE name = 'big'"), '0', 'and no source was made');

# --- drain both sources and check them whole ---------------------------------------------------
$node->safe_psql('postgres', "SELECT tweetlake.alter_source('secure', generator_rate => 0)");
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
wait_for($node, "SELECT count(*) FROM tweetlake.status s JOIN pg_stat_activity a ON a.pid = s.pid
                 WHERE s.role = 'generator'", '0', 'both generators stopped', 30);
for my $t ([ 'default', 'tweets' ], [ 'secure', 'secure_feed' ])
{
	my ($source, $topic) = @$t;
	my $ends = kafka_end_offsets($kafka, $topic);
	my $total = 0;
	$total += $_ for values %$ends;
	wait_for($node, "SELECT sum(next_offset) FROM tweetlake.offsets WHERE source = '$source'", $total,
		"$source drained ($total messages on the broker)", 120);
	is(sql_value($node, "SELECT count(*) || ' ' || count(DISTINCT (kafka_partition, kafka_offset))
	                     FROM bronze.tweets WHERE kafka_topic = '$topic'"),
		"$total $total", "$source: every message on the broker in bronze exactly once");
}
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), '0', 'no dead letters');
is(sql_value($node, "SELECT string_agg(kafka_topic || ':' || tenant, ' ' ORDER BY kafka_topic)
                     FROM (SELECT DISTINCT kafka_topic, tenant FROM bronze.tweets) t"),
	'replay_feed:beta secure_feed:acme tweets:default', "each source's messages are its tenant's");
is(sql_value($node, "SELECT string_agg(tenant || ':' || (n = ids)::text, ' ' ORDER BY tenant)
                     FROM (SELECT s.tenant, count(*) AS n,
                                  (SELECT count(DISTINCT b.tweet_id) FROM bronze.tweets b WHERE b.tenant = s.tenant) AS ids
                           FROM silver.tweets s GROUP BY 1) x"),
	'acme:true beta:true default:true', "silver: one row per tweet_id of each tenant's messages");
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'gold equals a recompute over all sources');

# --- a tenant's role, logged in as itself, reads its tenant only --------------------------------
$node->safe_psql('postgres', "CREATE ROLE tl_acme LOGIN; SELECT tweetlake.grant_tenant('tl_acme', 'acme')");
my $acme_silver = sql_value($node, "SELECT count(*) FROM silver.tweets WHERE tenant = 'acme'");
my @as_acme = (extra_params => [ '-U', 'tl_acme' ]);
my (undef, $seen) = $node->psql('postgres', "SELECT string_agg(DISTINCT tenant, ',') || ' ' || count(*) FROM silver.tweets_view", @as_acme);
is($seen, "acme $acme_silver", "tl_acme reads acme's $acme_silver tweets and no other tenant's");
for my $view (qw(gold.popular_hashtags_view gold.regional_activity_view gold.top_users_by_engagement gold.hourly_activity_summary))
{
	my (undef, $tenants) = $node->psql('postgres', "SELECT string_agg(DISTINCT tenant, ',') FROM $view", @as_acme);
	is($tenants, 'acme', "tl_acme: $view holds acme's rows only");
}
my $acme_hours = sql_value($node, "SELECT count(*) FROM gold.hourly_activity_summary WHERE tenant = 'acme'");
my (undef, $hours) = $node->psql('postgres', "SELECT count(*) FROM gold.hourly_activity_summary", @as_acme);
is($hours, $acme_hours, "tl_acme: all of acme's hours ($acme_hours)");
my ($brc, undef, $berr) = $node->psql('postgres', 'SELECT count(*) FROM bronze.tweets', @as_acme);
like($berr, qr/permission denied for schema bronze/, 'tl_acme cannot read bronze');
($brc, undef, $berr) = $node->psql('postgres', 'SET ROLE tweetlake_reader', @as_acme);
like($berr, qr/permission denied to set role "tweetlake_reader"/, 'nor become tweetlake_reader');
my (undef, $still) = $node->psql('postgres', "SET app.tenant = 'beta'; SELECT string_agg(DISTINCT tenant, ',') FROM gold.user_engagement", @as_acme);
is($still, 'acme', 'a setting changes nothing it sees');

# --- the password is nowhere a user or the log can see -----------------------------------------
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$password\E/, 'the password is not in the server log');
is(sql_value($node, "SELECT count(*) FROM tweetlake.status WHERE coalesce(last_error, '') || state LIKE '%' || " .
		$node->safe_psql('postgres', "SELECT quote_literal('$password')") . " || '%'"),
	'0', 'nor in tweetlake.status');
unlike($log, qr/terminated by signal|exited with exit code [^0]/, 'no worker crashed');

$node->stop;
done_testing();
