# SASL/PLAIN over TLS (SASL_SSL) against a real Apache Kafka broker: the workers connect
# with credentials from tweetlake.kafka_config_file; wrong credentials show as an error in
# tweetlake.status and the server log, and no password ever appears in either.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
kafka_topic($kafka, 'tweets', 2);
my $password = $kafka->{users}{tweetlake};
my $wrong = 'Wr0ng-' . substr($password, 0, 8);

my $secrets = PostgreSQL::Test::Utils::tempdir . '/kafka.properties';
sub write_secrets
{
	my ($pw) = @_;
	open my $fh, '>', $secrets or die;
	print $fh "# client settings for the SASL_SSL listener\n",
	  "security.protocol=SASL_SSL\n",
	  "ssl.ca.location=$kafka->{ca}\n",
	  "sasl.mechanisms=PLAIN\n",
	  "sasl.username=tweetlake\n",
	  "sasl.password=$pw\n";
	close $fh;
	chmod 0600, $secrets;
}
write_secrets($password);

my $node = tweetlake_node('kafka_sasl',
	'tweetlake.brokers' => "'$kafka->{ssl_bootstrap}'",
	'tweetlake.kafka_config_file' => "'$secrets'",
	'tweetlake.generator_rate' => 1000,
	'tweetlake.consumers' => 1);

wait_for($node, 'SELECT count(*) >= 3000 FROM bronze.tweets', 't',
	'tweets flow over SASL_SSL with the right password', 120);
is(sql_value($node, "SELECT count(*) FROM tweetlake.status
                     WHERE role IN ('generator', 'consumer') AND last_error ~* 'auth'"),
	'0', 'no authentication error while the password is right');

# A non-superuser cannot see the Kafka settings.
$node->safe_psql('postgres', 'CREATE ROLE watcher LOGIN');
my ($rc, $out, $err) = $node->psql('postgres', 'SHOW tweetlake.kafka_config_file',
	extra_params => [ '-U', 'watcher' ]);
like($err, qr/permission denied|must be superuser|privileges/, 'tweetlake.kafka_config_file is superuser-only');

# Wrong password: an error in status and in the log, and ingest stops.
write_secrets($wrong);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT count(*) FROM tweetlake.status
                 WHERE role IN ('generator', 'consumer') AND last_error ~ 'Authentication failed'",
	'2', 'generator and consumer report the authentication failure', 60);
my $stuck = sql_value($node, 'SELECT count(*) FROM bronze.tweets');
sleep 3;
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets'), $stuck, 'nothing is ingested with wrong credentials');
like(slurp_file($node->logfile), qr/tweetlake (consumer 0|generator): .*Authentication failed/,
	'the server log says authentication failed');

# Right password again: ingest resumes where it stopped.
write_secrets($password);
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, 'SELECT count(*) > ' . ($stuck + 2000) . ' FROM bronze.tweets', 't',
	'ingest resumes with the right password', 120);

$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
wait_for($node, "SELECT state || ' ' || (pid IS NULL) FROM tweetlake.status WHERE role = 'generator'",
	'stopped true', 'generator stopped');
# The broker's own end offsets: the consumer's cached high watermark can trail the last
# messages the generator produced before it stopped.
my $ends = kafka_end_offsets($kafka, 'tweets');
my $total = 0;
$total += $_ for values %$ends;
wait_for($node, 'SELECT sum(next_offset) FROM tweetlake.offsets', $total, 'consumer caught up');
is(sql_value($node, 'SELECT count(DISTINCT tweet_id) FROM bronze.tweets'), $total,
	"every message on the broker is in bronze once ($total)");

# A line in Java properties syntax ("key: value") is reported by its line number, never its
# content: that line may hold a password.
my $colon_secret = 'Colon-' . substr($password, 0, 10);
open my $fh, '>', $secrets or die;
print $fh "security.protocol=SASL_SSL\nsasl.password: $colon_secret\n";
close $fh;
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer'
                 AND last_error ~ 'line 2: expected key=value'",
	'1', 'a malformed config file line is reported by its number', 60);
ok(index(sql_value($node, 'SELECT string_agg(s::text, E\'\n\') FROM tweetlake.status s'), $colon_secret) < 0,
	'the malformed line\'s content is not in tweetlake.status');
ok(index(slurp_file($node->logfile), $colon_secret) < 0, 'the malformed line\'s content is not in the server log');
write_secrets($password);

# No password anywhere: status (every column), the server log, the settings a user sees.
my $status = sql_value($node, 'SELECT string_agg(s::text, E\'\n\') FROM tweetlake.status s');
my $log = slurp_file($node->logfile);
for my $pw ($password, $wrong)
{
	ok(index($status, $pw) < 0, 'no password in tweetlake.status');
	ok(index($log, $pw) < 0, 'no password in the server log');
}
ok(index(sql_value($node, "SELECT string_agg(setting, ',') FROM pg_settings WHERE name LIKE 'tweetlake.%'"),
		$password) < 0, 'no password in pg_settings');

$node->stop('fast');
done_testing();
