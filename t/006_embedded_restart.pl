# The embedded broker lives in memory: after a server restart it comes back empty, on a new
# port.  The consumer notices (new cluster id, or stored offsets past the end of the log),
# says so, and goes on with the new log: it neither hangs nor touches what Postgres holds.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $node = tweetlake_node('embedded_restart', 'tweetlake.generator_rate' => 1000);
wait_for($node, 'SELECT count(*) >= 3000 FROM bronze.tweets', 't', 'data before the restart');
my $old_bootstrap = sql_value($node, 'SELECT tweetlake.bootstrap_servers()');

# a stable count: stop the pipeline first, then restart the server (autostart runs it again)
$node->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL", '0',
	'consumer stopped before the restart');
my $rows_before = sql_value($node, 'SELECT count(*) FROM bronze.tweets');
my $max_before = sql_value($node, 'SELECT max(ingested_at) FROM bronze.tweets');
$node->restart('fast');

# new data flows again through the new, empty broker
wait_for($node, "SELECT count(*) >= $rows_before + 3000 FROM bronze.tweets", 't',
	'the consumer goes on with the new broker');
isnt(sql_value($node, 'SELECT tweetlake.bootstrap_servers()'), $old_bootstrap, 'the broker came back on a new port');
is(sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE ingested_at <= '$max_before'"), $rows_before,
	'rows from before the restart are all still there');
like(slurp_file($node->logfile),
	qr/Kafka cluster id changed|the broker lost its log/,
	'the consumer says the broker came back without its log');
like(sql_value($node, "SELECT last_error FROM tweetlake.status WHERE role = 'consumer'"),
	qr/cluster changed|not on the broker/, 'and shows it in tweetlake.status');

$node->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL", '0', 'stopped');
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets') - sql_value($node, 'SELECT count(DISTINCT tweet_id) FROM bronze.tweets'),
	0, 'no tweet stored twice');
is(sql_value($node, 'SELECT count(*) FROM silver.tweets'), sql_value($node, 'SELECT count(*) FROM bronze.tweets'),
	'silver has every tweet');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');

$node->stop('fast');
done_testing();
