# A session's load of many batches in one transaction, alongside consumers at full speed.
# Each batch ends by keeping the top users' set.  In 0.9.0 a batch waited for the set's lock,
# which a transaction of several batches kept until it committed, while holding rows of
# gold.user_engagement that transaction's next batch needed: a deadlock.  Now a batch that
# finds the set held writes its users to tweetlake.top_users_pending and goes on: shown
# first with two sessions (B commits while A holds the set, and the ranking shows B's user),
# then with three transactions of 300 batches each against two consumers at full speed.
# Afterwards gold, the top users included, equals a full recompute and every offset the
# broker handed out is in bronze exactly once.  Between the two, a batch whose tweet another
# transaction is writing into silver waits for it and keeps the version that stands.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $topic = 'tweets';
my $partitions = 4;
my $node = tweetlake_node('concurrent_load',
	'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 2,
	'tweetlake.partitions' => $partitions,
	'tweetlake.batch_size' => 200,
	'tweetlake.batch_timeout_ms' => 50,
	log_lock_waits => 'on');

# --- one batch while another transaction holds the set: it does not wait ----------------
# Thousands of users first, so that the set has a floor.  Then session A writes a tweet and
# keeps its transaction open; session B writes one of another user, hour and day (no gold
# row in common with A's), with more engagement than anyone: B commits at once, its user
# pending, and the ranking shows it first.
$node->safe_psql('postgres', 'SELECT tweetlake.load_generated(20000, 7)');
is(sql_value($node, 'SELECT floor IS NOT NULL FROM tweetlake.top_users_floor'), 't', 'the set has a floor');

# One generated tweet as user $user at $at, with $likes likes.
sub tweet
{
	my ($id, $user, $at, $likes) = @_;
	return copied_tweet_sql(tweet_id => $id, 'user,user_id' => $user, created_at => $at, like_count => $likes);
}
my $a = $node->background_psql('postgres');
$a->query_safe('BEGIN');
$a->query_safe(tweet('held-1', 'user-held', '2020-01-01T10:00:00Z', 5));
my $b = try_sql($node, "SET statement_timeout = '30s'; " . tweet('riser-1', 'user-riser', '2020-02-02T12:00:00Z', 100000000));
unlike($b, qr/ERROR/, "session B's batch commits while A holds the set (no wait)");
is(sql_value($node, "SELECT string_agg(user_id, ',') FROM tweetlake.top_users_pending"), 'user-riser',
	"B's user is pending");
is(sql_value($node, "SELECT count(*) FROM tweetlake.top_users WHERE user_id = 'user-riser'"), '0',
	"B did not touch the members");
is(sql_value($node, 'SELECT user_id FROM gold.top_users_by_engagement LIMIT 1'), 'user-riser',
	'the ranking shows the pending user first');
is(sql_value($node,
	"SELECT missing + extra + differing FROM tweetlake.verify() WHERE gold_table = 'top_users_by_engagement'"),
	'0', 'the ranking equals a sort of gold.user_engagement');
$a->query_safe('COMMIT');
$a->quit;
$node->safe_psql('postgres', 'SELECT tweetlake.load_generated(10, 8)');
is(sql_value($node,
	"SELECT (SELECT count(*) FROM tweetlake.top_users_pending)
	        || ' ' || (SELECT count(*) FROM tweetlake.top_users WHERE user_id = 'user-riser')
	        || ' ' || (SELECT members = (SELECT count(*) FROM tweetlake.top_users) FROM tweetlake.top_users_floor)"),
	'0 1 true', 'the next batch to hold the set moved the pending user into the members, counted');

# --- one batch per transaction, three sessions, plans that differ ---------------------------
# A single batch takes the rows of each gold table in key order and the tables in one order,
# so transactions of one batch each never deadlock, whatever plan each backend made.  The
# table order had been the plan's: a plan made for another batch size or other table sizes
# could run the hashtag upsert before the regions' and another the other way round
# (CONTEXT: while locking tuple in "popular_hashtags_by_hour").  Three sessions whose
# planners choose differently (hash joins off in one, merge joins in another, both in the
# third), 150 transactions each of 1 to 12 tweets or 20 to 919 over the same three hours,
# on a node of their own with gold small, as on a pipeline's first day: none may fail.
my $lo = tweetlake_node('lock_order', 'tweetlake.autostart' => 'off');
$lo->safe_psql('postgres', "SELECT tweetlake.load_generated(3000, 1, now() - interval '3 hours', interval '3 hours')");
my @planner = ('SET enable_hashjoin = off;', 'SET enable_mergejoin = off;',
	'SET enable_hashjoin = off; SET enable_mergejoin = off;');
my $loaded = 0;
my @sessions;
srand(17);
for my $w (1 .. 3)
{
	my $script = "SET tweetlake.batch_size = 5000; $planner[$w - 1]\n";
	for my $i (1 .. 150)
	{
		my $k = rand() < 0.25 ? 1 + int(rand(12)) : 20 + int(rand(900));
		$loaded += $k;
		$script .= "SELECT tweetlake.load_generated($k, " . (1000 * $w + $i)
		  . ", now() - interval '3 hours', interval '3 hours');\n";
	}
	# from a file: a harness feeds a string only while it is pumped, one session at a time
	my $file = "${PostgreSQL::Test::Utils::tmp_check}/lock_order_$w.sql";
	append_to_file($file, $script);
	my %s = (out => '', err => '');
	$s{h} = IPC::Run::start([ $lo->installed_command('psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=0',
				'-d', $lo->connstr('postgres'), '-f', $file ], '>', \$s{out}, '2>', \$s{err});
	push @sessions, \%s;
}
$_->{h}->finish for @sessions;
is(join('', map { $_->{err} } @sessions), '', '450 one-batch transactions of 3 sessions: no error, no deadlock');
is($lo->safe_psql('postgres', 'SELECT count(*) FROM bronze.tweets'), 3000 + $loaded,
	"the 450 transactions' $loaded tweets are in bronze");
is($lo->safe_psql('postgres', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'gold equals a full recompute after them');

# --- a tweet that another transaction is writing --------------------------------------------
# A batch with a tweet that another transaction is writing into silver waits for it: when it
# commits, its version stands (the batch's message for the id, with fewer likes, is not a
# newer version) and the batch's other tweet goes in; when it rolls back, the batch's own
# version goes in.
for my $end ('COMMIT', 'ROLLBACK')
{
	my $id = 'race-' . lc($end);
	my $a = $lo->background_psql('postgres');
	$a->query_safe('BEGIN');
	$a->query_safe(copied_tweet_sql(tweet_id => "$id-1", like_count => 111));
	my $b = $lo->background_psql('postgres');
	$b->query_until(qr/sent/, "\\echo sent\n"
		  . "INSERT INTO bronze.tweets (raw) SELECT jsonb_set(jsonb_set(r.raw::jsonb, '{tweet_id}', to_jsonb(i.id)), "
		  . "'{like_count}', '50')::text FROM (SELECT raw FROM bronze.tweets LIMIT 1) r, "
		  . "unnest(ARRAY['$id-1', '$id-2']) AS i(id);\n");
	ok($lo->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%$id-2%'"),
		"$end: the batch with $id-1 waits for the transaction writing it");
	$a->query_safe($end);
	$a->quit;
	$b->query_safe('SELECT 1');		# the INSERT has returned
	$b->quit;
	is($lo->safe_psql('postgres',
		"SELECT string_agg(tweet_id || ':' || like_count, ',' ORDER BY tweet_id) FROM silver.tweets WHERE tweet_id LIKE '$id-%'"),
		$end eq 'COMMIT' ? "$id-1:111,$id-2:50" : "$id-1:50,$id-2:50",
		"$end: silver holds " . ($end eq 'COMMIT' ? "the other transaction's" : "the batch's") . " $id-1, and $id-2");
}
is($lo->safe_psql('postgres', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'gold equals a full recompute after both');
$lo->stop('fast');

# --- the same at full speed: consumers, and sessions of 300 batches each --------------------
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = -1; SELECT pg_reload_conf()");
wait_for($node, 'SELECT count(*) >= 40000 FROM silver.tweets', 't', 'consumers write at full speed');

for my $round (1 .. 3)
{
	my $seed = 100 + $round;
	my $before = sql_value($node, 'SELECT count(*) FROM silver.tweets');
	# tweetlake.batch_size 200: 300 batches in each transaction.  A deadlock on gold rows
	# (not on the top users' set) aborts one of the two; a session that is aborted runs its
	# transaction again (README "Loading alongside the consumers"), and says why.  Its recent
	# tweets are of the 10 minutes before the current hour began: the consumers' are of now,
	# and in the first minute of an hour both would make the hour's rows at once, each batch
	# of the session's long transaction deadlocking with a consumer's (every try of a round
	# that started at 13:00:10 did).
	my ($out, $tries) = ('', 0);
	do
	{
		$tries++;
		$out = try_sql($node,
			"BEGIN;
			 SELECT tweetlake.load_generated(30000, $seed, date_trunc('hour', now()) - interval '10 minutes', interval '10 minutes');
			 SELECT tweetlake.load_generated(30000, $seed + 50, now() - interval '30 days', interval '29 days');
			 COMMIT;");
		diag("round $round, try $tries: " . join(' ', grep { /ERROR|DETAIL/ } split /\n/, $out))
		  if $out =~ /ERROR/;
	} while ($out =~ /ERROR:  deadlock detected/ && $tries < 8);
	unlike($out, qr/ERROR/, "round $round: the session's 60,000 tweets in 300 batches commit ($tries tries)");
	my $after = sql_value($node, 'SELECT count(*) FROM silver.tweets');
	cmp_ok($after - $before, '>', 60000, "round $round: the consumers' tweets went in too ($before -> $after)");
}

# Consumers went on while the sessions held the set: some of their users went pending.
wait_for($node,
	"SELECT n_tup_ins > 0 FROM pg_stat_user_tables WHERE relid = 'tweetlake.top_users_pending'::regclass",
	't', 'consumers wrote users to the pending list while the set was held');

# Stop the generator, let the consumers read to the end of the log, then compare.
$node->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL",
	'0', 'generator and consumers stopped');
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
$node->safe_psql('postgres', 'SELECT tweetlake.start()');
my $end = embedded_end_offsets($node, $topic, $partitions);
my $total = 0;
$total += $_ for values %$end;
wait_for($node, "SELECT sum(next_offset) FROM tweetlake.offsets WHERE topic = '$topic'", $total,
	'offsets reach the end of the log', 180);

is(sql_value($node,
	"SELECT string_agg(gold_table, ', ') FROM tweetlake.verify() WHERE missing + extra + differing > 0"),
	'', 'every gold table, and the top users, equal a full recompute');
is(sql_value($node,
	"SELECT count(*) FROM gold.top_users_by_engagement"), '100', 'the ranking holds 100 users');
# Whichever batch held the set, each member's copy of its row (which the ranking reads) is the
# row, or the member is pending (and the ranking reads the row itself).
is(sql_value($node, q{SELECT count(*) FROM tweetlake.top_users t
	LEFT JOIN gold.user_engagement u USING (user_id)
	WHERE t.user_id NOT IN (SELECT user_id FROM tweetlake.top_users_pending WHERE user_id IS NOT NULL)
	  AND (t.username, t.tweets_count, t.followers_count, t.total_engagement, t.first_day, t.last_day)
	      IS DISTINCT FROM (u.username, u.tweets_count, u.followers_count, u.total_engagement, u.first_day, u.last_day)}),
	'0', "every member's copy of its row equals gold.user_engagement's, or the member is pending");
is(sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE kafka_topic IS NULL"), 20000 + 2 + 10 + 180000,
	"the sessions' 180,000 tweets (and the 20,012 before) are in bronze once");
offsets_each_once($node, $topic, $end);
my $deadlocks = sql_value($node,
	"SELECT deadlocks FROM pg_stat_database WHERE datname = 'postgres'");
note("deadlocks detected (a consumer's batch is retried): $deadlocks");

$node->stop('fast');
done_testing();
