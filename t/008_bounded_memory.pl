# tweet_id_of (behind bronze.tweets.tweet_id) reads at most the id: a 20 MB message whose
# tweet_id value is escaped costs a backend no more than the message itself.  (It used to
# parse such a message with json-c: the peak went from 137 MB to 744 MB for this one.)
# Then the workers with Kafka clients: with tweetlake.malloc_arenas = 1 (the default)
# librdkafka's threads allocate from the worker's main heap, which the consumer trims, not
# from heaps of their own (src/memory.c); with 0 they have their own again.  Last, a backlog:
# the consumer's kept plans do not grow when it first brings large batches, and the memory
# its largest batches took goes back to the kernel once it has caught up, even when no batch
# comes after them.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(usleep);
use lib 't';
use PipelineTest;

my $node = tweetlake_node('bounded_memory', 'tweetlake.generator_rate' => 0, 'tweetlake.consumers' => 0);

# Peak resident memory of this backend (VmHWM, kB) after each step, in one session.
# 10M array elements ahead of an escaped id: a json-c object tree of them took 600 MB more.
my $msg = q{'{"x":[' || repeat('1,', 10000000) || '1],"tweet_id":"big\u002d1","created_at":"2026-01-01T00:00:00Z"}'};
my $hwm = q{(SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'VmHWM:\s+(\d+) kB'))[1]::bigint)};
my $out = $node->safe_psql('postgres', qq{
	CREATE TEMP TABLE m AS SELECT $msg AS raw;
	SELECT length(raw) FROM m;
	SELECT $hwm;
	SELECT tweetlake.tweet_id_of(raw) FROM m;
	SELECT $hwm;});
my ($len, $before, $id, $after) = split /\n/, $out;
is($id, 'big-1', 'the escaped tweet_id of a 20 MB message is decoded');
my $grew_mb = ($after - $before) / 1024;
ok($grew_mb < 64, sprintf('tweet_id_of on a %d-byte message raised the peak by %.1f MB (< 64 MB)', $len, $grew_mb));

$node->stop('fast');

# glibc maps each thread arena's heap at a 64 MiB boundary (HEAP_MAX_SIZE): anonymous rw-p
# mappings at such an address, counted in /proc/PID/smaps.
sub thread_heaps
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/smaps" or die "/proc/$pid/smaps: $!";
	my $n = 0;
	while (<$fh>)
	{
		$n++ if /^([0-9a-f]+)-[0-9a-f]+ rw-p 00000000 00:00 0\s*$/ && hex($1) % (64 * 1024 * 1024) == 0;
	}
	return $n;
}

my $pipe = tweetlake_node('arenas', 'tweetlake.generator_rate' => 2000, 'tweetlake.consumers' => 1);
my $workers = "SELECT string_agg(role || ' ' || pid, ',' ORDER BY role) FROM tweetlake.status
               WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL AND messages >= 4000";
wait_for($pipe, "SELECT count(*) FROM ($workers) w WHERE string_agg LIKE '%,%'", '1',
	'generator and consumer have 4,000 messages each (malloc_arenas = 1)');
my %heaps = map { my ($r, $p) = split / /; ($r => thread_heaps($p)) } split /,/, sql_value($pipe, $workers);
is_deeply(\%heaps, { consumer => 0, generator => 0 },
	"malloc_arenas = 1: librdkafka's threads allocate from the workers' main heap, no thread arena");
is(sql_value($pipe, "SELECT setting FROM pg_settings WHERE name = 'tweetlake.malloc_arenas'"), '1', 'the default is 1');

# The workers restarted after $sql (a change of tweetlake.malloc_arenas, which they read when
# they start), until each has 4,000 messages.
sub restart_with
{
	my ($sql, $what) = @_;
	$pipe->safe_psql('postgres', $sql);
	$pipe->safe_psql('postgres', "SELECT pg_reload_conf()");
	$pipe->safe_psql('postgres', "SELECT tweetlake.stop()");
	wait_for($pipe, "SELECT count(*) FROM tweetlake.status WHERE pid IS NOT NULL AND role IN ('generator', 'consumer')", '0',
		"the workers stop ($what)");
	$pipe->safe_psql('postgres', "SELECT tweetlake.start()");
	wait_for($pipe, "SELECT count(*) FROM ($workers) w WHERE string_agg LIKE '%,%'", '1',
		"generator and consumer have 4,000 messages each ($what)");
}

# 0: glibc's default
restart_with("ALTER SYSTEM SET tweetlake.malloc_arenas = 0", 'malloc_arenas = 0');
my $new = sql_value($pipe, $workers);
%heaps = map { my ($r, $p) = split / /; ($r => thread_heaps($p)) } split /,/, $new;
ok($heaps{consumer} > 0 && $heaps{generator} > 0,
	"malloc_arenas = 0: librdkafka's threads have heaps of their own again (consumer $heaps{consumer}, generator $heaps{generator})");

# The consumer's kept plans (src/batch.c, run()): every batch-size class planned at its first
# batch, so a backlog that brings its first large batch adds no plans.  Counted from
# pg_log_backend_memory_contexts: the CachedPlan contexts and their bytes.
sub cached_plans
{
	my ($node, $pid) = @_;
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($pid)");
	my $log = '';
	for (1 .. 100)
	{
		$log = slurp_file($node->logfile, $offset);
		last if $log =~ /\[$pid\] LOG:  Grand total/;
		usleep(100_000);	# (sleep 0.1 is sleep 0: the dump, still being written, once counted no plan)
	}
	die "process $pid logged no memory contexts in 10 s" unless $log =~ /\[$pid\] LOG:  Grand total/;
	my ($n, $bytes) = (0, 0);
	while ($log =~ /\[$pid\] LOG:  level: \d+; CachedPlan: (\d+) total/g)
	{
		$n++;
		$bytes += $1;
	}
	return ($n, $bytes);
}
# The default arenas again for the rest: what follows is what a consumer does by default.
restart_with("ALTER SYSTEM RESET tweetlake.malloc_arenas", 'malloc_arenas = 1 again');

# RssAnon of a process, kB
sub rss_anon
{
	my ($pid) = @_;
	my $status = slurp_file("/proc/$pid/status");
	$status =~ /^RssAnon:\s+(\d+) kB/m or die "no RssAnon in /proc/$pid/status";
	return $1;
}

my $consumer = sql_value($pipe, "SELECT pid FROM tweetlake.status WHERE role = 'consumer'");
my ($plans, $plan_bytes) = cached_plans($pipe, $consumer);
ok($plans >= 4 * 3, "the consumer has planned its statements for the 4 size classes ($plans plans, "
	. int($plan_bytes / 1024) . " kB)");
my $rss_before = rss_anon($consumer);

# A backlog: the consumer waits 10 s for a gold table while 2,000 tweets/s come in, and then
# reads batches of up to tweetlake.batch_size (10,000), chunks of 5,000 tweets.  The
# generator stops after 8 s, so the backlog's batches are the consumer's last ones.
my $seen = sql_value($pipe, "SELECT messages FROM tweetlake.status WHERE role = 'consumer'");
my ($lock_out, $lock_err) = ('', '');
my $lock = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $pipe->connstr('postgres'), '-c',
		'BEGIN; LOCK TABLE gold.hourly_activity_summary IN EXCLUSIVE MODE; SELECT pg_sleep(10); COMMIT;' ],
	'>', \$lock_out, '2>', \$lock_err);
wait_for($pipe, "SELECT count(*) FROM pg_locks WHERE relation = 'gold.hourly_activity_summary'::regclass
                 AND mode = 'ExclusiveLock' AND granted", '1', 'a session holds a gold table');
sleep 8;
$pipe->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0");
$pipe->safe_psql('postgres', "SELECT pg_reload_conf()");
wait_for($pipe, "SELECT state FROM tweetlake.status WHERE role = 'generator'", 'stopped', 'the generator stops');
$lock->finish;
is($lock_err, '', 'the session held the gold table for 10 s');
my $produced = sql_value($pipe, "SELECT messages FROM tweetlake.status WHERE role = 'generator'");
ok($produced - $seen >= 8192, 'a backlog of ' . ($produced - $seen) . ' messages built up');
wait_for($pipe, "SELECT messages >= $produced FROM tweetlake.status WHERE role = 'consumer'", 't',
	'the consumer catches up');
my ($plans_after, $plan_bytes_after) = cached_plans($pipe, $consumer);
is($plans_after, $plans, "after its largest batches the consumer keeps the same $plans plans");
ok($plan_bytes_after <= 1.05 * $plan_bytes, sprintf('and their memory is flat: %d kB, %.3f times before',
	$plan_bytes_after / 1024, $plan_bytes_after / $plan_bytes));

# No batch comes after the backlog's: what its batches took (~40-70 MB) is given back once
# the consumer has waited a second for the next (src/memory.c), not kept until one comes.
sleep 3;
my $rss_after = rss_anon($consumer);
ok($rss_after <= $rss_before + 16 * 1024,
	sprintf('idle after the backlog, the consumer holds %.1f MB of RssAnon (%.1f MB before it; at most 16 MB more)',
		$rss_after / 1024, $rss_before / 1024));

is(sql_value($pipe, "SELECT count(*) FROM bronze.tweets") > 0 ? 'rows' : 'none', 'rows', 'the pipeline stored tweets');
is(sql_value($pipe, "SELECT sum(missing + extra + differing) FROM tweetlake.verify()"), '0', 'verify() is zero');

$pipe->stop('fast');
unlike(slurp_file($pipe->logfile), qr/terminated by signal|exited with exit code [^01]/, 'no worker died');
done_testing();
