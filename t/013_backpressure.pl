# No loss on the default path.  The embedded broker keeps about 5 MB per partition and drops
# the oldest messages beyond that, read or not, so a stalled consumer used to lose messages.
# Now the generator holds back: with both consumers blocked for 60 s behind a lock on a gold
# table while it runs at 2,000 tweets/s, it says it waits, the unread data stays under half
# the broker's limit, and afterwards every offset the broker handed out is in bronze exactly
# once.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 't';
use PipelineTest;

# BP_HIGH_BYTES in src/generator_worker.c: half of the mock cluster's 5 MiB per partition
my $threshold = 5 * 1024 * 1024 / 2;
my $stall_s = 60;
my $topic = 'tweets';
my $partitions = 4;

my $node = tweetlake_node('backpressure',
	'tweetlake.generator_rate' => 2000,
	'tweetlake.consumers' => 2,
	'tweetlake.partitions' => $partitions);
wait_for($node, 'SELECT count(*) >= 4000 FROM bronze.tweets', 't', 'tweets flow before the stall');

# The consumers' stored offsets, per partition.
sub stored_offsets
{
	my %next = map { split /\|/ } split /\n/,
	  sql_value($node, "SELECT partition, next_offset FROM tweetlake.offsets WHERE topic = '$topic'");
	return \%next;
}

sub generator
{
	my ($state, $rate, $messages) = split /\|/,
	  sql_value($node, "SELECT state, round(rate_10s), messages FROM tweetlake.status WHERE role = 'generator'");
	return { state => $state, rate => $rate, messages => $messages };
}

# --- the stall: a transaction holds a lock every consumer batch needs (the gold triggers) ---
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE gold.hourly_activity_summary IN ACCESS EXCLUSIVE MODE');
my $t0 = time;
wait_for($node,
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer' AND wait_event_type = 'Lock'",
	'2', 'both consumers are blocked by the lock', 30);

# Every 2 s: what the generator says, and the unread range of each partition (the stored
# offset up to the end of the log; their sizes are read from bronze after the drain).
my @samples;
while (time - $t0 < $stall_s)
{
	push @samples, { at => time - $t0, gen => generator(), next => stored_offsets(), end => embedded_end_offsets($node, $topic, $partitions) };
	usleep(2_000_000);
}
my $last = $samples[-1]{gen};
note(sprintf("%5.1f s: %s, %s tweets/s, %s produced", $_->{at}, $_->{gen}{state}, $_->{gen}{rate},
		$_->{gen}{messages})) for @samples;
my @waiting = grep { $_->{gen}{state} =~ /^waiting for the consumers: partition \d+ holds \d+\.\d MB unread$/ } @samples;
ok(@waiting >= @samples / 2,
	'the generator says it waits for the consumers: ' . scalar(@waiting) . ' of ' . scalar(@samples)
	  . " samples (last: '$last->{state}')");
is($last->{rate}, '0', "its rate_10s after ${stall_s} s of stall is 0 tweets/s");
is($last->{messages}, $samples[ @samples - 6 ]{gen}{messages}, 'it produced nothing in the last 10 s of the stall');

# --- the end: stop the generator while it waits (it answers SIGTERM), release, drain ---
$node->safe_psql('postgres', 'ALTER SYSTEM SET tweetlake.generator_rate = 0');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT pid IS NULL FROM tweetlake.status WHERE role = 'generator'", 't',
	'the waiting generator stops on SIGTERM', 20);
$locker->query_safe('COMMIT');
$locker->quit;

my $end = embedded_end_offsets($node, $topic, $partitions);
my $total = 0;
$total += $_ for values %$end;
wait_for($node, "SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets WHERE topic = '$topic'",
	"$total", "the consumers store all $total offsets the broker handed out", 90);

# every offset 0 .. end - 1 of every partition in bronze (or dead letters) exactly once
offsets_each_once($node, $topic, $end);
unlike(slurp_file($node->logfile), qr/were deleted by the broker before they were read/,
	'no consumer found messages deleted before it read them');

# what the broker held unread at each sample, in key and value bytes (tweet_id is the key)
my @ranges;
for my $s (@samples)
{
	push @ranges, sprintf('(%d, %d, %d)', $_, $s->{next}{$_}, $s->{end}{$_}) for 0 .. $partitions - 1;
}
my ($max_unread, $where) = split /\|/, sql_value($node,
	"SELECT coalesce(sum(octet_length(t.raw) + octet_length(t.tweet_id)), 0),
	        'partition ' || r.p || ', offsets ' || r.lo || ' .. ' || r.hi
	 FROM (SELECT DISTINCT * FROM (VALUES " . join(', ', @ranges) . ") v(p, lo, hi)) r
	 LEFT JOIN bronze.tweets t ON t.kafka_topic = '$topic' AND t.kafka_partition = r.p
	      AND t.kafka_offset >= r.lo AND t.kafka_offset < r.hi
	 GROUP BY r.p, r.lo, r.hi ORDER BY 1 DESC LIMIT 1");
note("most unread during the stall: $max_unread bytes ($where)");
cmp_ok($max_unread, '<', $threshold, "unread data stayed under half the broker's 5 MiB per partition");
cmp_ok($max_unread, '>', $threshold / 2, 'and the stall did back data up (a quarter of the limit at least)');

is(sql_value($node, 'SELECT count(*) FROM silver.tweets'),
	sql_value($node, 'SELECT count(*) FROM bronze.tweets'), 'silver has every tweet');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');

$node->stop('fast');
done_testing();
