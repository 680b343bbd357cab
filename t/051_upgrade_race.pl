# A batch that waits for an ALTER EXTENSION UPDATE: the update to 0.9.0 makes the top users'
# set and drops an index of gold.user_engagement, so a batch that started before it committed
# waits for it at its gold rows.  That batch must still bring its users into the set, which
# did not exist when it began: here a user who becomes the best of all with it, who must head
# the ranking afterwards.
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $node = PostgreSQL::Test::Cluster->new('upgrade_race');
$node->init;
$node->append_conf('postgresql.conf', join('', map { "$_\n" } "shared_preload_libraries = 'tweetlake'",
	"tweetlake.database = 'postgres'", 'tweetlake.autostart = off', 'tweetlake.generator_rate = 0'));
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION tweetlake VERSION '0.8.0'");
$node->safe_psql('postgres', 'SELECT tweetlake.load_generated(20000, 5)');

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
done_testing();
