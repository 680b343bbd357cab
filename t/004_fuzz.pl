# 10,000 bad messages of many kinds mixed with 2,000 good ones, through Kafka: every good
# one reaches silver, every bad one is a dead letter with a reason (payloads that are not
# even text keep their exact bytes), every offset is accounted for once, and the consumer
# never restarts.
use strict;
use warnings;
use Encode ();
use List::Util qw(shuffle);
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

# 8 partitions keep each under the 5 MB the embedded (mock) broker holds per partition
my $node = tweetlake_node('fuzz', 'tweetlake.generator_rate' => 0, 'tweetlake.batch_size' => 1000,
	'tweetlake.partitions' => 8);
wait_for($node, "SELECT state FROM tweetlake.status WHERE role = 'consumer'",
	'consuming 8 of 8 partitions', 'consumer assigned');
my $bootstrap = sql_value($node, 'SELECT tweetlake.bootstrap_servers()');
my $pid_before = sql_value($node, "SELECT pid FROM tweetlake.status WHERE role = 'consumer'");

srand(20261124);
my @good = generated_tweets($node, 2000, 31);
my @good_ids = sort map { /"tweet_id":"([^"]+)"/ ? $1 : () } @good;
my @templates = generated_tweets($node, 500, 32);
sub template { return $templates[ int(rand(@templates)) ]; }

my @kinds = (
	sub { my $t = template(); substr($t, 0, 1 + int(rand(length($t) - 2))) },        # truncated
	sub { my $t = template(); $t =~ s/"like_count":(\d+)/"like_count":"$1"/; $t },  # wrong type
	sub { my $t = template(); $t =~ s/"text":"[^"]*"/'"text":"' . ('x' x 1500) . '"'/e; $t },  # huge text
	sub { my $t = template(); substr($t, 20, 0) = "\xff\xfe"; $t },                   # invalid UTF-8
	sub { my $t = template(); substr($t, 30, 0) = "\x00"; $t },                       # NUL byte
	sub { join '', map { chr(int(rand(256))) } 1 .. 1 + int(rand(100)) },              # random bytes
	sub { (qw([1,2] "string" 42 null true {}))[ int(rand(6)) ] },                       # not an object
	sub { my $t = template(); $t =~ s/"created_at":"[^"]*",//; $t },                  # missing field
	sub { my $t = template(); $t =~ s/"is_retweet":(true|false)/"is_retweet":"no"/; $t },  # wrong type
	sub { my $t = template(); $t =~ s/"sentiment_score":-?[\d.]+/"sentiment_score":1.5/; $t },  # range
);
my @bad = map { $kinds[ $_ % @kinds ]->() } 1 .. 9988;
# two messages over tweetlake.max_message_bytes (1 MB)
push @bad, map { '{"tweet_id":"big' . $_ . '","text":"' . ('y' x 1_050_000) . '","created_at":"2026-01-01T00:00:00Z"}' } 1 .. 2;

# which of them are not text at all (those never reach bronze.tweets)
my @not_text = grep { index($_, "\0") >= 0 || !eval { Encode::decode('UTF-8', my $c = $_, Encode::FB_CROAK); 1 } } @bad;
ok(@not_text > 1500, 'a good share of the bad messages are not valid text (' . scalar(@not_text) . ')');

my $delim = "\n<<TWEETLAKE-MESSAGE-END>>\n";
ok(!grep({ index($_, $delim) >= 0 } @bad, @good), 'no message contains the delimiter');
my $file = write_messages([ shuffle(@good, @bad) ], $delim);
kcat_produce($bootstrap, 'tweets', $file, '\n<<TWEETLAKE-MESSAGE-END>>\n', '-X', 'message.max.bytes=4000000');
# ten empty messages (NULL payloads) from SQL: kcat does not send empty ones
sql_value($node, 'SELECT tweetlake.produce(NULL) FROM generate_series(1, 10)');
my $total = @good + @bad + 10;
my $bad_total = @bad + 10;

wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', "$total",
	"offsets cover all $total messages", 180);

my @silver = split /\n/, sql_value($node, 'SELECT tweet_id FROM silver.tweets ORDER BY tweet_id COLLATE "C"');
is_deeply(\@silver, \@good_ids, 'every good message is in silver, and nothing else');
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), "$bad_total", "$bad_total dead letters");
is(sql_value($node, "SELECT count(*) FROM bronze.dead_letters WHERE coalesce(reason, '') = ''"), '0',
	'each with a reason');
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets'), $total - @not_text,
	'every message that is text is in bronze');
is(sql_value($node, "SELECT count(*) FROM (SELECT kafka_partition, kafka_offset FROM bronze.tweets
                     UNION ALL SELECT kafka_partition, kafka_offset FROM bronze.dead_letters
                     WHERE reason ~ '^(invalid UTF-8|NUL byte) at byte') o"),
	"$total", 'bronze + non-text dead letters cover every offset');
is(sql_value($node, "SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.dead_letters"),
	"$bad_total", 'each dead letter is one Kafka message');

# non-text payloads are kept byte for byte
my %sent = map { unpack('H*', $_) => 1 } @not_text;
my @kept = split /\n/, sql_value($node,
	"SELECT encode(raw, 'hex') FROM bronze.dead_letters WHERE reason ~ '^(invalid UTF-8|NUL byte) at byte'");
is(scalar @kept, scalar @not_text, 'one dead letter per non-text payload');
is(scalar(grep { $sent{$_} } @kept), scalar @not_text, 'their raw bytes are exactly what was sent');

# reasons by kind
my %reasons = map { split /\|/ } split /\n/, sql_value($node,
	"SELECT k || '|' || count(*) FROM (SELECT CASE
	   WHEN reason ~ '^invalid JSON' THEN 'json' WHEN reason ~ '^not a JSON object' THEN 'object'
	   WHEN reason ~ 'expected' THEN 'type' WHEN reason ~ 'longer than' THEN 'long'
	   WHEN reason ~ '^message larger' THEN 'huge' WHEN reason ~ '^(invalid UTF-8|NUL byte) at' THEN 'bytes'
	   WHEN reason ~ '^missing required' THEN 'missing' WHEN reason ~ 'outside' THEN 'range'
	   WHEN reason = 'empty message' THEN 'empty' ELSE 'other: ' || reason END AS k
	   FROM bronze.dead_letters) r GROUP BY k");
is($reasons{huge}, 2, 'two messages over max_message_bytes');
is($reasons{empty}, 10, 'ten empty messages');
ok($reasons{long} >= 900, "huge texts rejected as too long ($reasons{long})");
ok($reasons{range} >= 900, "out-of-range sentiment rejected ($reasons{range})");
ok($reasons{missing} >= 900, "missing created_at rejected ($reasons{missing})");
is(scalar(grep { /^other/ } keys %reasons), 0, 'no unexpected reason: ' . join(', ', grep { /^other/ } keys %reasons));

unlike(slurp_file($node->logfile), qr/deleted by the broker/, 'the broker dropped nothing before it was read');

# the consumer never restarted, and counted what it sent to dead letters itself
is(sql_value($node, "SELECT pid FROM tweetlake.status WHERE role = 'consumer'"), $pid_before, 'consumer pid unchanged');
is(sql_value($node, "SELECT errors FROM tweetlake.status WHERE role = 'consumer'"), scalar @not_text,
	'status counts the non-text payloads');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');

$node->stop('fast');
done_testing();
