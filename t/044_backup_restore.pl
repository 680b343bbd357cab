# Backup and restore resume exactly, against a real Apache Kafka broker (test/kafka/kafka.sh),
# by the procedure of the README's "Backup and restore".  With the pipeline live (generator
# producing to 4 partitions, 2 consumers) a pg_dump -Fc of the database and a pg_basebackup
# of the cluster are taken, and ingest goes on.  Each is restored into a new server pointed at
# the same topic, started with tweetlake.autostart=off for that start only (no worker writes
# into a half-restored database), checked, and its pipeline started once the old server's is
# stopped (one pipeline per topic).  Each restored server re-reads from the broker exactly the
# messages that arrived after its backup: every offset of the topic is in bronze once and
# verify() is zero.  Then retention deletes the whole topic and the dump is restored once more:
# the consumers say which offsets of which partitions are lost (a WARNING each, and
# last_error), skip nothing else, and go on with the messages that came after.
use strict;
use warnings;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use lib 't';
use PipelineTest;

my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
my $bootstrap = $kafka->{bootstrap};
kafka_topic($kafka, 'tweets', 4);
my @partitions = (0 .. 3);

# The old server: the pipeline of t/010, with WAL for pg_basebackup.
my $old = tweetlake_node('backup_old',
	'tweetlake.brokers' => "'$bootstrap'",
	'tweetlake.topic' => "'tweets'",
	'tweetlake.generator_rate' => 2000,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 1000,
	wal_level => 'replica',
	max_wal_senders => 4);

# --- helpers -------------------------------------------------------------------------------------

# The README's start of a restored server: the pipeline off for this start only.
sub start_pipeline_off
{
	my ($node) = @_;
	command_ok([ 'pg_ctl', '-w', '-D', $node->data_dir, '-l', $node->logfile,
			'-o', '-c tweetlake.autostart=off', 'start' ],
		$node->name . ": pg_ctl start -o '-c tweetlake.autostart=off'");
	$node->_update_pid(1);
}

# { partition => next_offset } as stored in tweetlake.offsets.
sub stored_offsets
{
	my ($node, $db) = @_;
	return { map { split /\|/ } split /\n/, $node->safe_psql($db,
			"SELECT partition, next_offset FROM tweetlake.offsets WHERE topic = 'tweets' ORDER BY 1") };
}

sub offsets_text
{
	my ($o) = @_;
	return join(' ', map { "$_:" . ($o->{$_} // 'none') } @partitions);
}

sub sum_of { my ($o) = @_; my $s = 0; $s += $o->{$_} for @partitions; return $s; }

sub running_workers
{
	my ($node, $db) = @_;
	return $node->safe_psql($db, "SELECT count(*) FROM tweetlake.status
	                              WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL");
}

sub wait_db
{
	my ($node, $db, $sql, $expected, $what, $timeout) = @_;
	my $got = '';
	for (1 .. ($timeout // 180) * 4)
	{
		$got = $node->safe_psql($db, $sql);
		last if $got eq $expected;
		usleep(250_000);
	}
	is($got, $expected, $what);
}

# A restored server before its pipeline starts: no worker ran, the database holds exactly what
# its backup stored (bronze = the stored offsets), gold equals a recompute.  Returns the stored
# offsets, those of the backup.
sub check_restored
{
	my ($node, $db, $what) = @_;
	my $launcher = '';
	for (1 .. 240)
	{
		$launcher = $node->safe_psql($db, "SELECT count(*) FROM tweetlake.status WHERE role = 'launcher' AND pid IS NOT NULL");
		last if $launcher eq '1';
		usleep(250_000);
	}
	is($launcher, '1', "$what: the launcher runs");
	is(running_workers($node, $db), '0', "$what: no generator or consumer runs (autostart off)");
	my $stored = stored_offsets($node, $db);
	is(scalar(keys %$stored), 4, "$what: the backup has the stored offsets of the 4 partitions: " . offsets_text($stored));
	is($node->safe_psql($db, "SELECT count(*) FROM bronze.tweets WHERE kafka_topic = 'tweets'"), sum_of($stored),
		"$what: bronze holds exactly the messages below the stored offsets (nothing ingested since)");
	is($node->safe_psql($db, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
		"$what: verify() is zero");
	return $stored;
}

# After the drain: every offset once, and the messages this server stored itself (ingested
# after $t0) are, per partition, exactly those from its backup's offset to the end.
sub check_resumed
{
	my ($node, $db, $what, $stored, $end, $t0) = @_;
	offsets_each_once($node, 'tweets', $end, $db);
	is($node->safe_psql($db, "SELECT string_agg(p || ':' || lo || '..' || hi || ' ' || n, ', ' ORDER BY p)
	                          FROM (SELECT kafka_partition p, min(kafka_offset) lo, max(kafka_offset) hi, count(*) n
	                                FROM bronze.tweets WHERE ingested_at > '$t0' GROUP BY 1) s"),
		join(', ', map { "$_:$stored->{$_}.." . ($end->{$_} - 1) . ' ' . ($end->{$_} - $stored->{$_}) } @partitions),
		"$what: read from the broker exactly the messages from its backup's offsets to the end (partition:first..last count)");
	is($node->safe_psql($db, 'SELECT count(*) FROM silver.tweets'), sum_of($end), "$what: silver has a row per message");
	is($node->safe_psql($db, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
		"$what: verify() is zero");
}

# --- backups with the pipeline live ------------------------------------------------------------
wait_for($old, 'SELECT count(*) >= 6000 FROM bronze.tweets', 't', 'old server: ingest under way', 180);
is(sql_value($old, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND messages > 0"), '2',
	'old server: both consumers consume');

my $dump = PostgreSQL::Test::Utils::tempdir . '/tweetlake.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $old->connstr('postgres'), '-f', $dump ], 'pg_dump -Fc with the pipeline live');
my $base = $old->backup_dir . '/base';
command_ok([ 'pg_basebackup', '-d', $old->connstr('postgres'), '-D', $base, '-c', 'fast' ],
	'pg_basebackup with the pipeline live');
my $at_backup = sql_value($old, 'SELECT count(*) FROM bronze.tweets');

# --- the base backup restored while the old server still ingests --------------------------------
my $basenode = PostgreSQL::Test::Cluster->new('backup_base');
$basenode->init_from_backup($old, 'base');
start_pipeline_off($basenode);
wait_for($old, 'SELECT count(*) >= ' . ($at_backup + 6000) . ' FROM bronze.tweets', 't',
	'old server: ingest goes on after the backups', 180);
my $base_stored = check_restored($basenode, 'postgres', 'base backup');
my $old_now = stored_offsets($old, 'postgres');
ok(sum_of($old_now) > sum_of($base_stored),
	'the old server went on past the backup (' . sum_of($old_now) . ' > ' . sum_of($base_stored) . ' stored)');

# One pipeline per topic: the old server's stops before the restored one starts.
$old->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($old, "SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL",
	'0', 'old server: pipeline stopped');
is(sql_value($old, "SELECT errors FROM tweetlake.status WHERE role = 'generator'"), '0',
	'old server: every generated message was acknowledged by the broker');

my $t0 = $basenode->safe_psql('postgres', 'SELECT now()');
$basenode->safe_psql('postgres', 'SELECT tweetlake.start()');
my $old_total = sql_value($old, 'SELECT count(*) FROM bronze.tweets');
# its generator (the old server's settings came with the backup) produces meanwhile
wait_for($basenode, "SELECT count(*) >= $old_total + 4000 FROM bronze.tweets", 't',
	'base backup: consumes and produces', 180);
$basenode->safe_psql('postgres', 'ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()');
wait_for($basenode, "SELECT state || ' ' || (pid IS NULL) FROM tweetlake.status WHERE role = 'generator'",
	'stopped true', 'base backup: generator stopped');
is($basenode->safe_psql('postgres', "SELECT errors FROM tweetlake.status WHERE role = 'generator'"), '0',
	'base backup: every generated message was acknowledged by the broker');

my $end = kafka_end_offsets($kafka, 'tweets');
note('topic end offsets: ' . offsets_text($end));
wait_db($basenode, 'postgres', 'SELECT sum(next_offset) FROM tweetlake.offsets', sum_of($end),
	'base backup: the stored offsets reach the end of every partition');
check_resumed($basenode, 'postgres', 'base backup', $base_stored, $end, $t0);
$basenode->safe_psql('postgres', 'SELECT tweetlake.stop()');
wait_for($basenode, "SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL",
	'0', 'base backup: pipeline stopped');

# --- the dump restored into a new server -------------------------------------------------------
sub restore_dump
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', join('', map { "$_\n" } "shared_preload_libraries = 'tweetlake'",
		"tweetlake.database = 'tweetlake'", "tweetlake.brokers = '$bootstrap'", "tweetlake.topic = 'tweets'",
		'tweetlake.consumers = 2', 'tweetlake.generator_rate = 0', 'tweetlake.batch_size = 1000',
		'max_worker_processes = 20'));
	start_pipeline_off($node);
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	command_ok([ 'createdb', '-T', 'template0', '-E', 'UTF8', 'tweetlake' ], "$name: createdb -T template0 -E UTF8 tweetlake");
	{
		local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
		command_ok([ 'pg_restore', '-d', 'tweetlake', $dump ], "$name: pg_restore with session_replication_role=replica");
	}
	return $node;
}

my $restored = restore_dump('backup_dump');
my $dump_stored = check_restored($restored, 'tweetlake', 'dump');
for my $p (@partitions)
{
	ok($dump_stored->{$p} < $end->{$p}, "dump: partition $p has messages after the dump ($dump_stored->{$p} < $end->{$p})");
}
$t0 = $restored->safe_psql('tweetlake', 'SELECT now()');
$restored->safe_psql('tweetlake', 'SELECT tweetlake.start()');
wait_db($restored, 'tweetlake', 'SELECT sum(next_offset) FROM tweetlake.offsets', sum_of($end),
	'dump: the stored offsets reach the end of every partition');
check_resumed($restored, 'tweetlake', 'dump', $dump_stored, $end, $t0);

# -o '-c tweetlake.autostart=off' held for that start only: a plain start runs the pipeline.
$restored->stop('fast');
$restored->start;
wait_db($restored, 'tweetlake', "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL",
	'2', 'dump: after a stop and a plain start the consumers run again (autostart as configured)', 120);
$restored->safe_psql('tweetlake', 'SELECT tweetlake.stop()');
$restored->stop('fast');

# --- the dump restored once more, after retention deleted what it had not read ------------------
# Retention of one second deletes every message of the topic (the broker checks every second,
# see test/kafka/kafka.sh); then it is set back to the broker's default and new messages come.
my @config = ('--bootstrap-server', $bootstrap, '--entity-type', 'topics', '--entity-name', 'tweets', '--alter');
kafka_tool($kafka, '', 'kafka.admin.ConfigCommand', @config, '--add-config', 'retention.ms=1000');
# where each partition starts, as the README shows it: kcat -Q -t tweets:<partition>:-2
sub log_start_offsets
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-Q', '-b', $bootstrap, map { ('-t', "tweets:$_:-2") } @partitions ],
		'>', \$out, '2>', \$err) or die "kcat -Q failed: $err";
	my %start;
	$start{$1} = $2 while $out =~ /\[(\d+)\]\s+offset\s+(-?\d+)/g;
	return \%start;
}
my $start = {};
for (1 .. 120)
{
	$start = log_start_offsets();
	last if offsets_text($start) eq offsets_text($end);
	usleep(500_000);
}
is(offsets_text($start), offsets_text($end), 'retention deleted every message: each partition now starts at its end');
is(offsets_text(kafka_end_offsets($kafka, 'tweets', -2)), offsets_text($start),
	"the broker's GetOffsetShell agrees on where each partition starts");
kafka_tool($kafka, '', 'kafka.admin.ConfigCommand', @config, '--delete-config', 'retention.ms');
my @after = generated_tweets($old, 400, 441);
kcat_produce($bootstrap, 'tweets', write_messages(\@after, "\n"), '\n');
my $end2 = kafka_end_offsets($kafka, 'tweets');
is(sum_of($end2) - sum_of($end), 400, '400 messages produced after the retention');
is(offsets_text(log_start_offsets()), offsets_text($start), 'retention set back: the new messages are kept');

my $late = restore_dump('backup_late');
my $late_stored = check_restored($late, 'tweetlake', 'old dump');
is(offsets_text($late_stored), offsets_text($dump_stored), 'old dump: the same stored offsets as before');
$late->safe_psql('tweetlake', 'SELECT tweetlake.start()');
wait_db($late, 'tweetlake', 'SELECT sum(next_offset) FROM tweetlake.offsets', sum_of($end2),
	'old dump: the stored offsets reach the new end of every partition');

# What the consumers said: one WARNING per partition with the offsets lost, and last_error of
# each consumer naming its partitions and their lost offsets.
my $log = slurp_file($late->logfile);
for my $p (@partitions)
{
	my ($from, $to) = ($dump_stored->{$p}, $start->{$p} - 1);
	my $n = $start->{$p} - $dump_stored->{$p};
	my $c = $p % 2;
	my @warned = $log =~ /WARNING:  tweetlake consumer $c: messages of partition $p of topic "tweets" were deleted by the broker before they were read\n.*?DETAIL:  (.*)/g;
	is(join(' | ', @warned), "Offsets $from to $to ($n messages) are lost: offset $from was to be read next, "
		. "and the partition now starts at offset $start->{$p}. Reading goes on from there.",
		"old dump: one WARNING for partition $p with the offsets lost");
}
like($log, qr/HINT:  Brokers delete messages by the topic's retention \(retention.ms, retention.bytes\), read or not/,
	'old dump: the WARNING says why');
for my $c (0, 1)
{
	is($late->safe_psql('tweetlake', "SELECT last_error FROM tweetlake.status WHERE role = 'consumer' AND worker = $c"),
		'messages lost, deleted by the broker before they were read: '
		  . join(', ', map { "partition $_ offsets $dump_stored->{$_}.." . ($start->{$_} - 1) } grep { $_ % 2 == $c } @partitions),
		"old dump: last_error of consumer $c names its partitions and the offsets lost");
}

# Nothing else skipped: per partition the rows are the offsets below the backup's and those
# from the start of the log on, each once, and none of the lost ones.
is($late->safe_psql('tweetlake', "SELECT string_agg(p || ':' || n || ' ' || d || ' ' || below || ' ' || lost || ' ' || lo || '..' || hi, ', ' ORDER BY p)
                                  FROM (SELECT kafka_partition p, count(*) n, count(DISTINCT kafka_offset) d,
                                               count(*) FILTER (WHERE kafka_offset < s.next) below,
                                               count(*) FILTER (WHERE kafka_offset >= s.next AND kafka_offset < s.start) lost,
                                               min(kafka_offset) FILTER (WHERE kafka_offset >= s.start) lo, max(kafka_offset) hi
                                        FROM bronze.tweets
                                        JOIN (VALUES " . join(', ', map { "($_, $dump_stored->{$_}, $start->{$_})" } @partitions) . ") s(part, next, start)
                                          ON s.part = kafka_partition
                                        GROUP BY kafka_partition) g"),
	join(', ', map { my $n = $dump_stored->{$_} + $end2->{$_} - $start->{$_};
		"$_:$n $n $dump_stored->{$_} 0 $start->{$_}.." . ($end2->{$_} - 1) } @partitions),
	'old dump: per partition (rows, distinct offsets, below the backup, in the lost range, first..last after it)');
is($late->safe_psql('tweetlake', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'old dump: verify() is zero');
$late->safe_psql('tweetlake', 'SELECT tweetlake.stop()');

$late->stop('fast');
$basenode->stop('fast');
$old->stop('fast');
done_testing();
