# pg_dump carries a tweetlake database whole.  A database with data (load_generated, messages
# through the consumers, dead letters) is dumped with pg_dump -Fc and restored on a new
# server, where the pipeline is not running yet (tweetlake.autostart = off), by the
# documented procedure: pg_restore with session_replication_role = replica, so the bronze
# trigger does not process the restored bronze rows again.  Every table with user data or
# pipeline state must come back row for row, gold must equal a full recompute, and the
# workers started on the new server must go on from the stored offsets: only new messages,
# none twice.  A plain restore without the replica setting is tried too, and what happens is
# printed (its behaviour is not specified).
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use PipelineTest;

# The mock broker runs as its own process: both servers read the same topic from it.
my ($broker, $bootstrap) = start_mock_broker('tweets', 4);
END { stop_mock_broker($broker) if $broker; }

my $old = tweetlake_node('dump_old', 'tweetlake.brokers' => "'$bootstrap'", 'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 2, 'tweetlake.batch_size' => 1000);
wait_for($old, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND state = 'consuming 2 of 4 partitions'",
	'2', 'old server: both consumers assigned');

# --- data of every kind ------------------------------------------------------------------------
$old->safe_psql('postgres', 'SELECT tweetlake.load_generated(30000, 51)');
my @good = generated_tweets($old, 3000, 52);
my @bad = ((map { '{"tweet_id":"bad-' . $_ . '","text":"x"' } 1 .. 20),              # truncated JSON
	(map { qq({"tweet_id":"utf-$_","text":"\xff\xfe","created_at":"2026-01-01T00:00:00Z"}) } 1 .. 20),  # not UTF-8
	(map { qq({"tweet_id":"type-$_","text":"x","created_at":"2026-01-01T00:00:00Z","like_count":"many"}) } 1 .. 10));
my $sent = @good + @bad;
kcat_produce($bootstrap, 'tweets', write_messages([ @good, @bad ], "\n<<END>>\n"), '\n<<END>>\n');
wait_for($old, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', $sent,
	"old server: the consumers store all $sent messages", 120);
$old->safe_psql('postgres', q{INSERT INTO bronze.tweets (raw) VALUES ('not json'), ('{"text":"no id"}')});
# and deletions (schema 0.5.0): five tweets go, their ids are kept in silver.deleted_tweets
$old->safe_psql('postgres', q{SELECT tweetlake.delete_tweet(tweet_id) FROM (SELECT tweet_id FROM silver.tweets ORDER BY tweet_id LIMIT 5) d});
$old->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($old, "SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL",
	'0', 'old server: workers stopped');
is(sql_value($old, 'SELECT count(*) FROM bronze.dead_letters'), '52', 'old server: 52 dead letters (50 from Kafka, 2 from SQL)');
is(sql_value($old, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'old server: verify() is zero');

# Every table of the extension with user data or pipeline state, and a fingerprint of its
# rows: count, and md5 of the row texts in one fixed order.
my @tables = qw(bronze.tweets bronze.dead_letters silver.tweets silver.deleted_tweets);
push @tables, split /\n/, sql_value($old, "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
                                            WHERE schemaname = 'gold' ORDER BY 1");
push @tables, map { "tweetlake.$_" } qw(user_hour mention_hour region_hour_counts offsets top_users top_users_floor
  top_users_pending top_users_locks sources tenant_grants);
# A second Kafka source (0.12.0), off: the dump carries it; the row "default" comes with the
# extension (compared without it, below).
$old->safe_psql('postgres', "SELECT tweetlake.create_source('eu', 'kafka-eu:9092', 'tweets_eu', consumers => 2,
                                                              enabled => false)");
# A second tenant (0.13.0) with a role that reads it: its rows and its grant go into the dump
# (the role itself, like every role, with pg_dumpall --roles-only).
$old->safe_psql('postgres', "CREATE ROLE tl_dump_acme LOGIN");
$old->safe_psql('postgres', "SELECT tweetlake.grant_tenant('tl_dump_acme', 'acme')");
$old->safe_psql('postgres', "SELECT tweetlake.load_generated(500, seed => 9, tenant => 'acme')");
# Users wait in the pending list only while batches run side by side; three are put there
# (as a batch that found the set held would), so that the dump carries some.
$old->safe_psql('postgres', 'INSERT INTO tweetlake.top_users_pending (user_id, retracted)
                             SELECT user_id, false FROM tweetlake.top_users ORDER BY user_id LIMIT 3');
my $other = sql_value($old, "SELECT string_agg(format('%I.%I', schemaname, tablename), ' ') FROM pg_tables
                             WHERE schemaname IN ('bronze', 'silver', 'gold', 'tweetlake')
                               AND format('%I.%I', schemaname, tablename) <> ALL (ARRAY['" . join("', '", @tables) . "'])
                               AND NOT EXISTS (SELECT FROM pg_inherits i   -- bronze's partitions: read through their table
                                               WHERE i.inhrelid = format('%I.%I', schemaname, tablename)::regclass)");
note('tables compared: ' . join(' ', @tables) . ($other ne '' ? "; not compared: $other" : ''));
is($other, '', 'the list covers every table of the extension');

sub fingerprint
{
	my ($node, $db) = @_;
	my %fp;
	for my $t (@tables)
	{
		my $where = $t eq 'tweetlake.sources' ? "WHERE t.name <> 'default'" : '';
		$fp{$t} = $node->safe_psql($db, "SELECT count(*) || ' ' || md5(coalesce(string_agg(r.x, E'\\n' ORDER BY r.x COLLATE \"C\"), ''))
		                                 FROM (SELECT t::text AS x FROM $t t $where) r");
	}
	return \%fp;
}
my $before = fingerprint($old, 'postgres');
for my $t (@tables)
{
	my ($n) = split / /, $before->{$t};
	ok($n > 0, "old server: $t has rows ($n)");
}

# --- dump, and restore on a new server by the documented procedure ---------------------------------
my $dump = PostgreSQL::Test::Utils::tempdir . '/tweetlake.dump';
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('postgres') ], 'pg_dump -Fc');

my $new = PostgreSQL::Test::Cluster->new('dump_new');
$new->init;
$new->append_conf('postgresql.conf', join('', map { "$_\n" } "shared_preload_libraries = 'tweetlake'",
	"tweetlake.database = 'restored'", 'tweetlake.autostart = off', "tweetlake.brokers = '$bootstrap'",
	'tweetlake.consumers = 2', 'tweetlake.generator_rate = 0', 'tweetlake.batch_size = 1000',
	'max_worker_processes = 20', 'shared_buffers = 256MB'));
$new->start;
$new->safe_psql('postgres', "CREATE DATABASE restored TEMPLATE template0 ENCODING 'UTF8'");
# the roles first, as pg_dumpall --roles-only would bring them
$new->safe_psql('postgres', "CREATE ROLE tl_dump_acme LOGIN");   # as the README's createdb -T template0 -E UTF8
my ($out, $err) = ('', '');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	IPC::Run::run([ 'pg_restore', '-d', $new->connstr('restored'), $dump ], '>', \$out, '2>', \$err);
	is($? >> 8, 0, 'pg_restore with session_replication_role = replica succeeds') or diag($err);
}
my $after = fingerprint($new, 'restored');
# bronze's day partitions (made by the launcher on the old server) come back as they were
my $partitions_sql = "SELECT string_agg(partition || ' ' || coalesce(range_from::text, 'default') || ' '
                      || coalesce(range_to::text, '') || ' ' || (SELECT count(*) FROM bronze.tweets b WHERE b.tableoid = partition),
                      ', ' ORDER BY partition::text) FROM tweetlake.bronze_partitions WHERE table_name = 'bronze.tweets'::regclass";
my $partitions_before = $old->safe_psql('postgres', $partitions_sql);
like($partitions_before, qr/bronze\.tweets_p\d{8} /, "old server: bronze's partitions: $partitions_before");
is($new->safe_psql('restored', $partitions_sql), $partitions_before, 'restored: the same partitions of bronze.tweets, each with its rows');
for my $t (@tables)
{
	is($after->{$t}, $before->{$t}, "restored: $t equal row for row (count md5)");
}
is($new->safe_psql('restored', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'restored: verify() is zero');
# the tenant's role, a member of tweetlake_tenant again (as the roles' dump says), reads its
# tenant's rows only, by its restored grant
$new->safe_psql('postgres', 'GRANT tweetlake_tenant TO tl_dump_acme');
is($new->safe_psql('restored', "SET ROLE tl_dump_acme; SELECT string_agg(DISTINCT tenant, ' ') || ' ' || count(*) FROM silver.tweets"),
	'acme 500', "restored: the tenant's role reads its 500 tweets and no other tenant's");
is($new->safe_psql('restored', "SELECT string_agg(DISTINCT tenant, ' ' ORDER BY tenant) FROM gold.user_engagement"),
	'acme default', 'restored: gold holds both tenants');
is($new->safe_psql('restored', "SELECT string_agg(name || ':' || enabled, ' ' ORDER BY name) FROM tweetlake.sources"),
	'default:true eu:false', 'restored: the default source (from CREATE EXTENSION) and the dumped one');
is($new->safe_psql('restored', "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL"), '0',
	'restored: no consumer runs yet (autostart off)');

# --- the workers on the new server go on from the stored offsets -----------------------------------
my @more = generated_tweets($old, 1000, 53);
kcat_produce($bootstrap, 'tweets', write_messages(\@more, "\n"), '\n');
my $total = $sent + @more;
my $bronze_before = $new->safe_psql('restored', 'SELECT count(*) FROM bronze.tweets');
my $silver_before = $new->safe_psql('restored', 'SELECT count(*) FROM silver.tweets');
my $launcher_up = 0;
for (1 .. 120)
{
	$launcher_up = $new->safe_psql('restored', "SELECT count(*) FROM tweetlake.status WHERE role = 'launcher' AND pid IS NOT NULL") eq '1';
	last if $launcher_up;
	sleep 1;
}
ok($launcher_up, 'restored: the launcher runs');
$new->safe_psql('restored', 'SELECT tweetlake.start()');
my $stored = '';
for (1 .. 480)
{
	$stored = $new->safe_psql('restored', 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets');
	last if $stored eq $total;
	usleep(250_000);
}
is($stored, $total, "restored: the stored offsets reach the end of the topic ($total messages)");
is($new->safe_psql('restored', 'SELECT count(*) FROM bronze.tweets') - $bronze_before, 1000,
	'restored: exactly the 1000 new messages were read');
is($new->safe_psql('restored', 'SELECT count(*) - count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets
                                WHERE kafka_partition IS NOT NULL'), '0', 'restored: no (partition, offset) twice in bronze');
is($new->safe_psql('restored', 'SELECT count(*) FROM silver.tweets') - $silver_before, 1000,
	'restored: the 1000 new tweets reach silver');
is($new->safe_psql('restored', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'restored: verify() is zero after the new messages');
$new->safe_psql('restored', 'SELECT tweetlake.stop()');

# --- a plain restore, without session_replication_role = replica: what happens ---------------------
$new->safe_psql('postgres', "CREATE DATABASE plain TEMPLATE template0 ENCODING 'UTF8'");
($out, $err) = ('', '');
IPC::Run::run([ 'pg_restore', '-d', $new->connstr('plain'), $dump ], '>', \$out, '2>', \$err);
my $rc = $? >> 8;
my @errors = $err =~ /^pg_restore: error: (.*)$/mg;
my $plain = fingerprint($new, 'plain');
my @differ = grep { $plain->{$_} ne $before->{$_} } @tables;
note("plain pg_restore (no replica setting): exit code $rc, " . scalar(@errors) . ' errors');
note("  $_") for @errors[ 0 .. ($#errors < 7 ? $#errors : 7) ];
note('  tables that differ from the source: ' . (@differ ? join(', ', map { "$_ ($plain->{$_} vs $before->{$_})" =~ s/ [0-9a-f]{32}//gr } @differ) : 'none'));
note('  verify(): ' . (try_sql($new, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()', 'plain') =~ s/\n/ /gr));
pass('a plain restore was tried and its outcome printed');

$new->stop('fast');
$old->stop('fast');
done_testing();
