# No consumer at all: the generator waits.  On the embedded broker (about 5 MB per partition,
# the oldest dropped beyond that) a generator that kept producing while no consumer runs would
# lose messages.  Here the consumers cannot start for 30 s (their role tweetlake_worker loses
# the CONNECT right on the database, and the running ones are terminated): the generator says
# it waits for a consumer and produces nothing; when the right is back the consumers come
# back, the generator goes on, and every offset the broker handed out reaches bronze exactly
# once.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use lib 't';
use PipelineTest;

my $topic = 'tweets';
my $partitions = 4;
my $outage_s = 30;

my $node = tweetlake_node('no_consumer',
	'tweetlake.generator_rate' => 2000,
	'tweetlake.consumers' => 2,
	'tweetlake.partitions' => $partitions);
wait_for($node, 'SELECT count(*) >= 4000 FROM bronze.tweets', 't', 'tweets flow before the outage');

sub generator
{
	my ($state, $rate, $messages) = split /\|/,
	  sql_value($node, "SELECT state, round(rate_10s), messages FROM tweetlake.status WHERE role = 'generator'");
	return { state => $state, rate => $rate, messages => $messages };
}

sub running_consumers
{
	return sql_value($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'");
}

# --- the outage: no connection for the consumers' role, the running consumers end -----------
$node->safe_psql('postgres', 'REVOKE CONNECT ON DATABASE postgres FROM PUBLIC');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'");
wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'",
	'0', 'no consumer runs', 30);

my $t0 = time;
my @samples;
while (time - $t0 < $outage_s)
{
	push @samples, { at => time - $t0, gen => generator(), consumers => running_consumers() };
	usleep(2_000_000);
}
note(sprintf("%5.1f s: %d consumers; generator: %s, %s tweets/s, %s produced", $_->{at}, $_->{consumers},
		$_->{gen}{state}, $_->{gen}{rate}, $_->{gen}{messages})) for @samples;
my $last = $samples[-1]{gen};
is(scalar(grep { $_->{consumers} > 0 } @samples), 0, 'no consumer ran during the outage');
my @waiting = grep { $_->{gen}{state} eq 'waiting for a consumer: none is running' } @samples;
ok(@waiting >= @samples / 2,
	'the generator says it waits for a consumer: ' . scalar(@waiting) . ' of ' . scalar(@samples)
	  . " samples (last: '$last->{state}')");
is($last->{rate}, '0', "its rate_10s after ${outage_s} s without a consumer is 0 tweets/s");
is($last->{messages}, $samples[ @samples - 6 ]{gen}{messages}, 'it produced nothing in the last 10 s');
like(sql_value($node, "SELECT string_agg(DISTINCT coalesce(last_error, ''), ' / ') FROM tweetlake.status WHERE role = 'consumer'")
	  . slurp_file($node->logfile),
	qr/permission denied for database "postgres"/, 'why the consumers do not start is in the log');

# --- the end of the outage: consumers back, the generator goes on, then stops -----------------
$node->safe_psql('postgres', 'GRANT CONNECT ON DATABASE postgres TO PUBLIC');
wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'",
	'2', 'both consumers run again', 60);
my $before = generator()->{messages};
wait_for($node, "SELECT messages > $before FROM tweetlake.status WHERE role = 'generator'", 't',
	'the generator produces again', 30);

$node->safe_psql('postgres', 'ALTER SYSTEM SET tweetlake.generator_rate = 0');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
wait_for($node, "SELECT pid IS NULL FROM tweetlake.status WHERE role = 'generator'", 't',
	'the generator stops', 20);

my %end = %{ embedded_end_offsets($node, $topic, $partitions) };
my $total = 0;
$total += $_ for values %end;
wait_for($node, "SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets WHERE topic = '$topic'",
	"$total", "the consumers store all $total offsets the broker handed out", 90);

offsets_each_once($node, $topic, \%end);
unlike(slurp_file($node->logfile), qr/were deleted by the broker before they were read/,
	'no consumer found messages deleted before it read them');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');

$node->stop('fast');
done_testing();
