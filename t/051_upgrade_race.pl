# A batch that waits for an ALTER EXTENSION UPDATE: the update to 0.9.0 makes the top users'
# set and drops an index of gold.user_engagement, so a batch that started before it committed
# waits for it at its gold rows.  That batch must still bring its users into the set, which
# did not exist when it began: here a user who becomes the best of all with it, who must head
# the ranking afterwards.  Then the update to 0.11.0, which adds the members' copies of their
# rows, while a batch holds the set and another writes its user to the pending list.  Last,
# the update from 0.9.0 to 0.11.0 while a batch that began on 0.9.0's set waits for it, and
# the update from 0.10.0 to 0.12.0 while a consumer's batch waits for a lock.
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

# A server with tweetlake at $version (no workers) and 20,000 tweets loaded.
sub race_node
{
	my ($name, $version) = @_;
	my $n = PostgreSQL::Test::Cluster->new($name);
	$n->init;
	$n->append_conf('postgresql.conf', join('', map { "$_\n" } "shared_preload_libraries = 'tweetlake'",
		"tweetlake.database = 'postgres'", 'tweetlake.autostart = off', 'tweetlake.generator_rate = 0'));
	$n->start;
	$n->safe_psql('postgres', "CREATE EXTENSION tweetlake VERSION '$version'");
	$n->safe_psql('postgres', 'SELECT tweetlake.load_generated(20000, 5)');
	return $n;
}

my $node = race_node('upgrade_race', '0.8.0');

# The update, held open.
my $upd = $node->background_psql('postgres');
$upd->query_safe('BEGIN');
$upd->query_safe("ALTER EXTENSION tweetlake UPDATE TO '0.9.0'");

# A batch of one tweet with more engagement than anyone, started meanwhile.
my ($out, $err) = ('', '');
my $batch = IPC::Run::start([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c',
	copied_tweet_sql(tweet_id => 'late-riser-1', 'user,user_id' => 'user-late-riser', like_count => 100000000) ], '>', \$out, '2>', \$err);
wait_for($node, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%late-riser%' AND wait_event_type = 'Lock'
                 AND pid <> pg_backend_pid()", '1', 'the batch waits for the update');
$upd->query_safe('COMMIT');
$upd->quit;
$batch->finish;
is($?, 0, 'the batch commits after the update') or diag($err);

is(sql_value($node, "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'"), '0.9.0', 'updated to 0.9.0');
is(sql_value($node, "SELECT count(*) FROM tweetlake.top_users WHERE user_id = 'user-late-riser'"), '1',
	"the batch's user is in the set it did not see begin");
is(sql_value($node, 'SELECT user_id FROM gold.top_users_by_engagement LIMIT 1'), 'user-late-riser',
	'and heads the ranking');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify() is zero');

$node->stop('fast');

# --- the update to 0.11.0 while a batch holds the set and another writes pending users -----
# The update adds each member's copy of its row; it takes the set first, as a batch does.
# Session A's batch holds the set (its transaction left open) when the update starts: the
# update waits for it.  Meanwhile B's batch, of a user better than A's, finds the set held
# and writes its user to the pending list, and commits (another hour and day than A's: no
# gold row in common).  Once A commits, the update fills the
# copies (A's member among them); the ranking shows B's user, then A's, each member's copy is
# its row, and the next batch moves B's user in with its copy.
my $cp = race_node('upgrade_race_copy', '0.10.0');
my $stale_sql = q{SELECT count(*) FROM tweetlake.top_users t
	LEFT JOIN gold.user_engagement u USING (user_id)
	WHERE t.user_id NOT IN (SELECT user_id FROM tweetlake.top_users_pending WHERE user_id IS NOT NULL)
	  AND (t.username, t.tweets_count, t.followers_count, t.total_engagement, t.first_day, t.last_day)
	      IS DISTINCT FROM (u.username, u.tweets_count, u.followers_count, u.total_engagement, u.first_day, u.last_day)};

my $a = $cp->background_psql('postgres');
$a->query_safe('BEGIN');
$a->query_safe(copied_tweet_sql(tweet_id => 'holder-1', 'user,user_id' => 'user-holder', like_count => 100000000,
	created_at => '2020-01-01T10:00:00Z'));

my ($uout, $uerr) = ('', '');
my $update = IPC::Run::start([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $cp->connstr('postgres'), '-c',
	"ALTER EXTENSION tweetlake UPDATE TO '0.11.0'" ], '>', \$uout, '2>', \$uerr);
wait_for($cp, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ALTER EXTENSION%' AND wait_event_type = 'Lock'",
	'1', 'the update waits for the batch that holds the set');

$cp->safe_psql('postgres',
	copied_tweet_sql(tweet_id => 'pending-1', 'user,user_id' => 'user-pending', like_count => 200000000,
		created_at => '2020-02-02T10:00:00Z'));
is(sql_value($cp, "SELECT string_agg(user_id, ',') FROM tweetlake.top_users_pending"), 'user-pending',
	"meanwhile another batch commits, its user pending");

$a->query_safe('COMMIT');
$a->quit;
$update->finish;
is($?, 0, 'the update commits once the holder has') or diag($uerr);
is(sql_value($cp, "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'"), '0.11.0', 'updated to 0.11.0');
is(sql_value($cp, q{SELECT total_engagement >= 100000000 FROM tweetlake.top_users WHERE user_id = 'user-holder'}), 't',
	"the holder's member has its copy, filled by the update");
is(sql_value($cp, "SELECT string_agg(user_id, ',') FROM (SELECT user_id FROM gold.top_users_by_engagement LIMIT 2) h"),
	'user-pending,user-holder', 'the ranking shows the pending user, then the holder\'s');
is(sql_value($cp, $stale_sql), '0', "every member's copy not pending is its row");
is(sql_value($cp, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');

$cp->safe_psql('postgres',
	copied_tweet_sql(tweet_id => 'holder-2', 'user,user_id' => 'user-holder', like_count => 1));
is(sql_value($cp, q{SELECT (SELECT count(*) FROM tweetlake.top_users_pending) || ',' || total_engagement
	FROM tweetlake.top_users WHERE user_id = 'user-pending'}), '0,' . sql_value($cp,
	"SELECT total_engagement FROM gold.user_engagement WHERE user_id = 'user-pending'"),
	'the next batch moves the pending user in, with its copy');
is(sql_value($cp, $stale_sql), '0', "every member's copy is its row");
is(sql_value($cp, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero after it');
$cp->stop('fast');

# --- the update from 0.9.0 to 0.11.0 while a batch of 0.9.0's set waits for it -------------
# On 0.9.0 a batch adds its users to the set itself (no pending list, no copies).  This one
# looked the schema up before the update committed and then waits for the set's table, which
# the update alters.  Once it runs it must write the set as 0.11.0 does: its user a member
# with the copy of its row (as 0.9.0 wrote it, a member without a copy, not pending, at the
# head of nothing).  CI saw it once, with the consumers running through t/050's update.
my $nine = race_node('upgrade_race_nine', '0.9.0');
my $up = $nine->background_psql('postgres');
$up->query_safe('BEGIN');
$up->query_safe("ALTER EXTENSION tweetlake UPDATE TO '0.11.0'");
my ($bout, $berr) = ('', '');
my $nb = IPC::Run::start([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $nine->connstr('postgres'), '-c',
	copied_tweet_sql(tweet_id => 'nine-1', 'user,user_id' => 'user-nine', like_count => 300000000) ],
	'>', \$bout, '2>', \$berr);
wait_for($nine, q{SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                  WHERE NOT l.granted AND l.relation = 'tweetlake.top_users'::regclass AND a.query LIKE '%nine-1%'},
	'1', "the batch waits for the set's table, which the update alters");
$up->query_safe('COMMIT');
$up->quit;
$nb->finish;
is($?, 0, 'the batch commits after the update') or diag($berr);
is(sql_value($nine, "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'"), '0.11.0', 'updated from 0.9.0 to 0.11.0');
is(sql_value($nine, q{SELECT (SELECT total_engagement FROM tweetlake.top_users WHERE user_id = 'user-nine')
	= (SELECT total_engagement FROM gold.user_engagement WHERE user_id = 'user-nine')}), 't',
	"the batch's user is a member with the copy of its row");
is(sql_value($nine, 'SELECT user_id FROM gold.top_users_by_engagement LIMIT 1'), 'user-nine', 'and heads the ranking');
is(sql_value($nine, $stale_sql), '0', "every member's copy not pending is its row");
is(sql_value($nine, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');
$nine->stop('fast');
# --- the update from 0.10.0 to 0.12.0 while a consumer's batch waits -------------------------
# The update alters the top users' set (0.11.0), then tweetlake.offsets (0.12.0).  A consumer
# batch that waits for a lock on silver must not hold its offsets rows meanwhile: when it
# did (it fenced them first), the update waited for them while holding the set, and once the
# batch went on to the set the two deadlocked (t/050 saw it with the workers running).  Now
# a batch takes tweetlake.offsets last: the update completes while the batch waits, and the
# batch then stores its messages with their offsets.
my $ten = tweetlake_node('upgrade_race_ten', 'tweetlake.autostart' => 'off', 'tweetlake.generator_rate' => 500,
	'tweetlake.consumers' => 1, 'tweetlake.batch_size' => 500);
$ten->safe_psql('postgres', "DROP EXTENSION tweetlake; CREATE EXTENSION tweetlake VERSION '0.10.0'");
$ten->safe_psql('postgres', 'SELECT tweetlake.start()');
wait_for($ten, 'SELECT count(*) >= 1000 FROM bronze.tweets', 't', '0.10.0: the pipeline ingests');
my $holder = $ten->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE silver.tweets IN SHARE ROW EXCLUSIVE MODE');
wait_for($ten, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'
                 AND wait_event_type = 'Lock'}, '1', "a consumer's batch waits for silver");
my ($tout, $terr) = ('', '');
my $t_update = IPC::Run::start([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $ten->connstr('postgres'), '-c',
	"ALTER EXTENSION tweetlake UPDATE TO '0.12.0'" ], '>', \$tout, '2>', \$terr);
wait_for($ten, "SELECT extversion FROM pg_extension WHERE extname = 'tweetlake'", '0.12.0',
	'the update to 0.12.0 commits while the batch waits (it holds no offsets row)', 30);
$holder->query_safe('COMMIT');
$holder->quit;
$t_update->finish;
is($?, 0, 'the update succeeds') or diag($terr);
my $seen = sql_value($ten, 'SELECT count(*) FROM bronze.tweets');
wait_for($ten, "SELECT count(*) > $seen + 1000 FROM bronze.tweets", 't', 'ingest goes on after the update');
unlike(slurp_file($ten->logfile), qr/deadlock detected/, 'no deadlock');
$ten->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
wait_for($ten, "SELECT sum(lag) = 0 AND count(*) = 4 FROM tweetlake.consumer_lag", 't', 'the consumer drained the topic');
is(sql_value($ten, "SELECT (SELECT sum(next_offset) FROM tweetlake.offsets WHERE source = 'default')
	|| ' ' || (SELECT count(*) FROM bronze.tweets WHERE kafka_topic IS NOT NULL)
	|| ' ' || (SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets WHERE kafka_topic IS NOT NULL)"),
	join(' ', (sql_value($ten, "SELECT sum(next_offset) FROM tweetlake.offsets")) x 3),
	'every stored offset in bronze once');
is(sql_value($ten, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');
$ten->stop('fast');
done_testing();
