# An outside Kafka client (kcat) against the embedded broker: it lists the topic, its good
# and bad messages land in silver and dead letters, and it reads what the generator produced.
use strict;
use warnings;
use IPC::Run ();
use JSON::PP ();
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $node = tweetlake_node('kcat', 'tweetlake.generator_rate' => 0);
wait_for($node, "SELECT tweetlake.bootstrap_servers() IS NOT NULL", 't', 'embedded broker up');
my $bootstrap = sql_value($node, 'SELECT tweetlake.bootstrap_servers()');
wait_for($node, "SELECT state FROM tweetlake.status WHERE role = 'consumer'",
	'consuming 4 of 4 partitions', 'consumer assigned');

# kcat sees the broker and the topic.
my ($meta, $err) = ('', '');
IPC::Run::run([ 'kcat', '-L', '-b', $bootstrap, '-t', 'tweets' ], '>', \$meta, '2>', \$err)
  or die "kcat -L: $err";
like($meta, qr/topic "tweets" with 4 partitions/, 'kcat lists topic tweets with 4 partitions');

# 50 good and 5 bad messages from kcat.
my @good = generated_tweets($node, 50, 7);
my @ids = sort map { /"tweet_id":"([^"]+)"/ ? $1 : () } @good;
my %bad = (
	'{"tweet_id":"cut","text":"trunc' => qr/^invalid JSON: unexpected end of message/,
	'[1,2,3]' => qr/^not a JSON object \(got array\)$/,
	'{"tweet_id":"lc","text":"x","created_at":"2026-01-01T00:00:00Z","like_count":"7"}' =>
	  qr/^like_count: expected integer, got string$/,
	'{"tweet_id":"nt","text":"x"}' => qr/^missing required field created_at$/,
	'' => qr/^empty message$/);
my @bad = ('{"tweet_id":"cut","text":"trunc', '[1,2,3]',
	'{"tweet_id":"lc","text":"x","created_at":"2026-01-01T00:00:00Z","like_count":"7"}', '{"tweet_id":"nt","text":"x"}');
my $file = write_messages([ @good[0 .. 24], @bad, @good[25 .. 49] ], "\n");
kcat_produce($bootstrap, 'tweets', $file, '\n');
# kcat never sends an empty message; a NULL payload (a tombstone) comes from SQL
sql_value($node, 'SELECT tweetlake.produce(NULL)');

wait_for($node, 'SELECT count(*) FROM bronze.tweets', '55', 'all 55 kcat messages in bronze');
my @silver = split /\n/, sql_value($node, 'SELECT tweet_id FROM silver.tweets ORDER BY tweet_id COLLATE "C"');
is_deeply(\@silver, \@ids, 'the 50 good messages are in silver, by tweet_id');
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), '5', 'the 5 bad ones are dead letters');
for my $raw (sort keys %bad)
{
	my $reason = sql_value($node,
		"SELECT reason FROM bronze.dead_letters WHERE raw = convert_to(" .
		  $node->safe_psql('postgres', "SELECT quote_literal(\$x\$$raw\$x\$)") . ", 'UTF8')");
	like($reason, $bad{$raw}, "reason for '" . substr($raw, 0, 30) . "'");
}
is(sql_value($node, "SELECT count(*) FROM bronze.dead_letters WHERE kafka_topic = 'tweets'
                     AND kafka_partition BETWEEN 0 AND 3 AND kafka_offset >= 0"),
	'5', 'dead letters carry their Kafka coordinates');
is(sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE kafka_topic = 'tweets'
                     AND kafka_offset IS NOT NULL AND kafka_timestamp IS NOT NULL"),
	'55', 'bronze rows carry topic, partition, offset and timestamp');

# One message from SQL.
my $offset = sql_value($node,
	q{SELECT tweetlake.produce('{"tweet_id":"from-sql","text":"hello #sql","created_at":"2026-02-01T00:00:00Z","hashtags":["#sql"]}', 'from-sql')});
ok($offset =~ /^\d+$/, "tweetlake.produce returns the offset ($offset)");
wait_for($node, "SELECT count(*) FROM silver.tweets WHERE tweet_id = 'from-sql'", '1', 'produced from SQL lands in silver');
is(sql_value($node, "SELECT tweet_count FROM gold.popular_hashtags_by_hour WHERE hashtag = 'sql'"), '1',
	'and in gold');

# kcat reads what the generator produces: keyed by tweet_id, valid JSON.
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 2000; SELECT pg_reload_conf()");
wait_for($node, 'SELECT count(*) >= 1000 FROM bronze.tweets', 't', 'generator messages arrive');
my ($consumed, $cerr) = ('', '');
IPC::Run::run([ 'kcat', '-C', '-b', $bootstrap, '-t', 'tweets', '-o', 'beginning', '-e', '-q',
		'-f', '%k\t%s\n' ], '>', \$consumed, '2>', \$cerr)
  or die "kcat -C: $cerr";
my ($keyed, $valid) = (0, 0);
for my $line (split /\n/, $consumed)
{
	my ($key, $json) = split /\t/, $line, 2;
	next unless defined $key && length $key && $key ne 'from-sql';
	$keyed++;
	my $doc = eval { JSON::PP->new->utf8->decode($json) };
	$valid++ if $doc && $doc->{tweet_id} eq $key && defined $doc->{created_at} && ref $doc->{user} eq 'HASH';
}
ok($keyed >= 1000, "kcat consumed generator messages ($keyed)");
is($valid, $keyed, 'each is a JSON tweet whose tweet_id is its key');

$node->stop('fast');
done_testing();
