# t/PipelineTest.pm - helpers shared by the TAP suites: a PostgreSQL node with tweetlake
# preloaded, polling, a mock broker process that outlives server crashes, and kcat.
package PipelineTest;

use strict;
use warnings;
use Exporter 'import';
use File::Temp ();
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(tweetlake_node wait_for sql_value start_mock_broker stop_mock_broker
                 kcat_produce write_messages generated_tweets
                 start_kafka stop_kafka restart_kafka kafka_topic kafka_tool
                 exactly_once_under_faults
                 kcat_produce_unprivileged kafka_end_offsets try_sql
                 embedded_end_offsets offsets_each_once strike_fault copied_tweet_sql);

# Source checkout (for test/mock_broker); scripts/test.sh copies test/ next to t/.
my $test_dir = -d 'test' ? 'test' : "$ENV{TWEETLAKE_SRC}/test";
# Where scripts/test.sh put the Kafka jars (readable by the server's user).
$ENV{KAFKA_LIB} = $ENV{TWEETLAKE_KAFKA_LIB} if $ENV{TWEETLAKE_KAFKA_LIB};

# A started node with tweetlake preloaded and created in "postgres"; extra settings given
# as a hash are appended to postgresql.conf.
sub tweetlake_node
{
	my ($name, %conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my %all = (
		shared_preload_libraries => "'tweetlake'",
		'tweetlake.database' => "'postgres'",
		max_worker_processes => 20,
		shared_buffers => '256MB',
		%conf);
	$node->append_conf('postgresql.conf', join('', map { "$_ = $all{$_}\n" } sort keys %all));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION tweetlake');
	return $node;
}

sub sql_value
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

# Polls until the query returns the expected value (default 't'); fails the test with the
# last value seen after $timeout seconds.
sub wait_for
{
	my ($node, $sql, $expected, $what, $timeout) = @_;
	$expected //= 't';
	$timeout //= 120;
	my $last = '';
	for (my $i = 0; $i < $timeout * 4; $i++)
	{
		my ($rc, $out) = (0, '');
		$out = $node->psql('postgres', $sql, stdout => \my $stdout, stderr => \my $stderr);
		$last = defined $stdout ? $stdout : '';
		return 1 if $last eq $expected;
		usleep(250_000);
	}
	fail("$what: waited ${timeout}s for '$expected', last value '$last'");
	return 0;
}

# The mock cluster as its own process (test/mock_broker.c); returns (handle, bootstrap).
sub start_mock_broker
{
	my ($topic, $partitions) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $addr_file = "$dir/broker.addr";
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ "$test_dir/mock_broker", $topic, $partitions, $addr_file ],
		'>', \$out, '2>', \$err);
	for (my $i = 0; $i < 200 && !-s $addr_file; $i++) { usleep(50_000); }
	die "mock_broker did not start: $err" unless -s $addr_file;
	my $addr = PostgreSQL::Test::Utils::slurp_file($addr_file);
	chomp $addr;
	return ($h, $addr);
}

sub stop_mock_broker
{
	my ($h) = @_;
	return unless $h;
	$h->signal('TERM');
	$h->finish;
}

# A real Apache Kafka broker (test/kafka/kafka.sh: KRaft, one node, Maven Central jars in
# $TWEETLAKE_KAFKA_LIB).  Returns a hash: dir, bootstrap (PLAINTEXT), sasl_bootstrap
# (SASL_PLAINTEXT), ssl_bootstrap (SASL_SSL), ca (PEM file), users (name => password).
# Dies when the broker cannot start: a real-broker test never passes without one.
sub start_kafka
{
	my $dir = PostgreSQL::Test::Utils::tempdir . '/kafka';
	my %k = (dir => $dir);
	kafka_sh('start', $dir);
	for (split /\n/, PostgreSQL::Test::Utils::slurp_file("$dir/ports"))
	{
		$k{bootstrap} = $1 if /^BOOTSTRAP=(.*)/;
		$k{sasl_bootstrap} = $1 if /^SASL_BOOTSTRAP=(.*)/;
		$k{ssl_bootstrap} = $1 if /^SSL_BOOTSTRAP=(.*)/;
	}
	for (split /\n/, PostgreSQL::Test::Utils::slurp_file("$dir/users"))
	{
		$k{users}{$1} = $2 if /^(\w+)=(.*)/;
	}
	$k{ca} = "$dir/ca.pem";
	return \%k;
}

sub stop_kafka { my ($k) = @_; kafka_sh('stop', $k->{dir}) if $k && -d $k->{dir}; }
sub restart_kafka { my ($k) = @_; kafka_sh('restart', $k->{dir}); }
sub kafka_topic { my ($k, $topic, $partitions) = @_; kafka_sh('topic', $k->{dir}, $topic, $partitions); }

# Runs a Kafka tool class (ConsoleProducer, ...) with stdin from $in; returns stdout.
sub kafka_tool
{
	my ($k, $in, $class, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'bash', "$test_dir/kafka/kafka.sh", 'tool', $k->{dir}, $class, @args ],
		'<', \$in, '>', \$out, '2>', \$err)
	  or die "$class failed: $err";
	return $out;
}

sub kafka_sh
{
	my ($action, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'bash', "$test_dir/kafka/kafka.sh", $action, @args ], '>', \$out, '2>', \$err)
	  or die "test/kafka/kafka.sh $action failed: $err$out";
	return $out;
}

# Writes messages (byte strings) to a file separated by $delim; returns the file name.
sub write_messages
{
	my ($messages, $delim) = @_;
	my ($fh, $file) = File::Temp::tempfile(DIR => PostgreSQL::Test::Utils::tempdir);
	binmode $fh;
	print $fh join($delim, @$messages);
	close $fh;
	return $file;
}

# Produces the messages of $file (separated by $delim) to $topic with kcat, byte-exact.
sub kcat_produce
{
	my ($bootstrap, $topic, $file, $delim, @extra) = @_;
	my ($out, $err) = ('', '');
	# keyless messages: spread them one by one, not in sticky runs on one partition
	IPC::Run::run([ 'kcat', '-P', '-b', $bootstrap, '-t', $topic, '-D', $delim,
		'-X', 'enable.idempotence=true', '-X', 'sticky.partitioning.linger.ms=0',
		@extra, '-l', $file ], '>', \$out, '2>', \$err)
	  or die "kcat -P failed: $err";
}

# An INSERT of one tweet into bronze.tweets: a copy of a stored one with the fields given
# replaced (path => value: 'user,user_id' => 'u-1', 'like_count' => 5; a value of digits
# only is a JSON number, any other a JSON string).
sub copied_tweet_sql
{
	my (%set) = @_;
	my $expr = 'raw::jsonb';
	for my $path (sort keys %set)
	{
		my $v = $set{$path} =~ /^-?\d+$/ ? $set{$path} : '"' . $set{$path} . '"';
		$expr = "jsonb_set($expr, '{$path}', '$v')";
	}
	return "INSERT INTO bronze.tweets (raw) SELECT ${expr}::text FROM bronze.tweets LIMIT 1";
}

# n generated tweets (the tweet model of tweetlake.generate_tweets) from a node.
sub generated_tweets
{
	my ($node, $n, $seed, $start) = @_;
	$start //= '2026-01-01 00:00+00';
	my $out = $node->safe_psql('postgres',
		"SELECT t FROM tweetlake.generate_tweets($n, $seed, '$start') t");
	return split /\n/, $out;
}

# Exactly once into bronze under faults: $rounds chunks of $chunk known messages are sent
# with kcat, and as soon as the consumers are into a chunk one fault strikes, in turn:
# SIGKILL of a consumer worker, SIGKILL of a backend (crash and restart of the whole
# server; needs restart_after_crash = on), an immediate stop and start.  The broker must
# outlive all of them.  Afterwards bronze holds each message exactly once, by Kafka
# coordinates and by tweet_id, with no gap, and gold equals a full recompute.
sub exactly_once_under_faults
{
	my ($node, $bootstrap, $topic, $rounds, $chunk, $seed) = @_;
	my $n = $chunk * $rounds;
	my @tweets = generated_tweets($node, $n, $seed);
	is(scalar @tweets, $n, "$n messages to send");
	my @ids = sort map { /"tweet_id":"([^"]+)"/ ? $1 : die "no id" } @tweets;

	my $consumer_pid = sub
	{
		my $pid = '';
		for (1 .. 120)
		{
			$pid = $node->safe_psql('postgres',
				"SELECT pid FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL AND messages > 0 LIMIT 1");
			return $pid if $pid ne '';
			usleep(250_000);
		}
		return $pid;
	};

	my %faults = (kill_consumer => 0, kill_backend => 0, immediate_restart => 0);
	my $mid_ingest = 0;
	for my $round (1 .. $rounds)
	{
		my $file = write_messages([ @tweets[ ($round - 1) * $chunk .. $round * $chunk - 1 ] ], "\n");
		kcat_produce($bootstrap, $topic, $file, '\n');

		# strike as soon as the consumers are into this chunk (a chunk is 30 batches)
		my $before = ($round - 1) * $chunk;
		my $started = 0;
		for (1 .. 3000)
		{
			$started = $node->safe_psql('postgres', "SELECT count(*) > $before FROM bronze.tweets") eq 't';
			last if $started;
			usleep(10_000);
		}
		ok($started, "round $round: ingest under way");
		my $fault = (qw(kill_consumer kill_backend immediate_restart))[ ($round - 1) % 3 ];
		my $at = $node->safe_psql('postgres', 'SELECT count(*) FROM bronze.tweets');
		$mid_ingest++ if $at < $round * $chunk;
		note("round $round: $fault with $at of " . ($round * $chunk) . " rows in bronze");
		strike_fault($node, $fault, "round $round", $consumer_pid);
		$faults{$fault}++;
	}
	my $each = int($rounds / 3);
	is_deeply(\%faults, { kill_consumer => $each, kill_backend => $each, immediate_restart => $each },
		"$each faults of each kind");
	ok($mid_ingest >= 2 * $rounds / 3, "faults struck while a chunk was half ingested ($mid_ingest of $rounds)");

	# Let the consumers finish: the stored offsets add up to every message sent.
	wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', "$n",
		'stored offsets cover every message', 240);

	is($node->safe_psql('postgres', 'SELECT count(*) FROM bronze.tweets'), "$n", "bronze has $n rows");
	is($node->safe_psql('postgres', 'SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'),
		"$n", 'every (partition, offset) exactly once');
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM (SELECT kafka_partition, max(kafka_offset) + 1 - count(*) AS gap
			 FROM bronze.tweets GROUP BY kafka_partition) g WHERE gap <> 0"),
		'0', 'no gap in any partition');
	my @stored = split /\n/, $node->safe_psql('postgres', 'SELECT tweet_id FROM bronze.tweets ORDER BY tweet_id COLLATE "C"');
	is_deeply(\@stored, \@ids, 'bronze holds exactly the tweet_ids sent, each once');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM silver.tweets'), "$n", "silver has $n rows");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM bronze.dead_letters'), '0', 'no dead letters');
	is($node->safe_psql('postgres', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
		'verify(): gold equals a full recompute');
}


# Produces the messages (byte strings) to $topic with kcat fed on stdin, as a client with no
# access to the database: as OS user "nobody" when this process may switch to it (root),
# otherwise as the current user with an empty environment (no PG* variables, no home
# directory, so no .pgpass).  $partition undef spreads them.  Returns the OS user kcat ran as.
sub kcat_produce_unprivileged
{
	my ($bootstrap, $topic, $messages, $partition, @extra) = @_;
	my $delim = '<<TWEETLAKE-MESSAGE-END>>';
	die 'a message contains the delimiter' if grep { index($_, $delim) >= 0 } @$messages;
	my @kcat = ('kcat', '-P', '-b', $bootstrap, '-t', $topic, '-D', $delim,
		'-X', 'message.max.bytes=4000000', (defined $partition ? ('-p', $partition) : ()), @extra);
	my ($user, @cmd);
	if ($> == 0)
	{
		$user = 'nobody';
		@cmd = ('runuser', '-u', 'nobody', '--', 'env', '-i', 'PATH=/usr/bin:/bin', @kcat);
	}
	else
	{
		$user = getpwuid($>) // $>;
		@cmd = ('env', '-i', 'PATH=/usr/bin:/bin', 'HOME=/nonexistent', @kcat);
	}
	my $in = join($delim, @$messages);
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \$in, '>', \$out, '2>', \$err, init => sub { chdir '/' })
	  or die "kcat -P as $user failed: $err";
	return $user;
}

# The end offset (high watermark) of each partition of $topic on a real broker from
# start_kafka, as the broker itself reports it (Kafka's GetOffsetShell): { partition => offset }.
# With $time -2: where each partition's log starts (its oldest message not yet deleted).
sub kafka_end_offsets
{
	my ($k, $topic, $time) = @_;
	my $out = kafka_tool($k, '', 'org.apache.kafka.tools.GetOffsetShell',
		'--bootstrap-server', $k->{bootstrap}, '--topic', $topic, '--time', $time // '-1');
	my %end;
	$end{$1} = $2 while $out =~ /^\Q$topic\E:(\d+):(\d+)\s*$/mg;
	die "GetOffsetShell printed no offsets for $topic: $out" unless %end;
	return \%end;
}

# Runs $sql in $db (default postgres) and returns its output, or "ERROR: <message>" when it
# fails (say, a column that does not exist yet), so a test can report it instead of dying.
sub try_sql
{
	my ($node, $sql, $db) = @_;
	my ($stdout, $stderr) = ('', '');
	my $rc = $node->psql($db // 'postgres', $sql, stdout => \$stdout, stderr => \$stderr);
	return $rc == 0 ? $stdout : "ERROR: " . ($stderr =~ s/\s+$//r);
}

# The end of each partition's log on the node's embedded broker, from the broker itself
# (kcat -Q: timestamp -1 = the end): { partition => offset }.
sub embedded_end_offsets
{
	my ($node, $topic, $partitions) = @_;
	my $bootstrap = sql_value($node, 'SELECT tweetlake.bootstrap_servers()');
	my @query = map { ('-t', "$topic:$_:-1") } 0 .. $partitions - 1;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'kcat', '-Q', '-b', $bootstrap, @query ], '>', \$out, '2>', \$err)
	  or die "kcat -Q failed: $err";
	my %end;
	$end{$1} = $2 while $out =~ /\[(\d+)\]\s+offset\s+(-?\d+)/g;
	die "kcat -Q printed no offset for some partition: $out" unless keys %end == $partitions;
	return \%end;
}

# One test per partition of $end ({ partition => end offset }): every offset 0 .. end - 1
# of $topic is in bronze or the dead letters (of database $db, default postgres) exactly once.
sub offsets_each_once
{
	my ($node, $topic, $end, $db) = @_;
	my %got = map { my ($p, @v) = split /\|/; ($p => join(' ', @v)) } split /\n/, $node->safe_psql($db // 'postgres',
		"SELECT p, count(*), count(DISTINCT o), min(o), max(o)
		 FROM (SELECT kafka_partition, kafka_offset FROM bronze.tweets WHERE kafka_topic = '$topic'
		       UNION ALL
		       SELECT kafka_partition, kafka_offset FROM bronze.dead_letters WHERE kafka_topic = '$topic') m(p, o)
		 GROUP BY p");
	for my $p (sort { $a <=> $b } keys %$end)
	{
		my $n = $end->{$p};
		is($got{$p} // 'none', "$n $n 0 " . ($n - 1),
			"partition $p: offsets 0 .. " . ($n - 1) . ' each once (rows, distinct offsets, min, max)');
	}
}

# One fault struck at a running pipeline, as exactly_once_under_faults strikes them:
# 'kill_consumer' SIGKILLs a consumer worker, caught inside a batch (pg_stat_activity:
# active, "writing a batch ...") when one is within 10 s, else any consumer; 'kill_backend'
# SIGKILLs an idle backend (both make the postmaster restart every process: needs
# restart_after_crash = on); 'immediate_restart' stops the server in immediate mode and
# starts it.  $pick_consumer, when given, chooses the consumer to kill instead (returns its
# pid).  Two tests: the fault ($what names it) and the server accepting connections again.
# Returns 1 when a consumer was killed inside a batch, else 0.
sub strike_fault
{
	my ($node, $kind, $what, $pick_consumer) = @_;
	# After a SIGKILL: the postmaster has reaped the process (and begun its crash handling)
	# once the pid is gone; only then does "accepts connections" mean "recovered".
	my $gone = sub
	{
		my ($pid) = @_;
		for (1 .. 200)
		{
			return 1 unless kill(0, $pid);
			usleep(50_000);
		}
		return 0;
	};
	my $in_batch = 0;
	if ($kind eq 'kill_consumer' && $pick_consumer)
	{
		my $pid = $pick_consumer->();
		ok($pid ne '' && kill('KILL', $pid) && $gone->($pid), "$what: SIGKILL consumer $pid");
	}
	elsif ($kind eq 'kill_consumer')
	{
		my $pid = '';
		for (1 .. 400)
		{
			$pid = $node->safe_psql('postgres',
				"SELECT pid FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'
				 AND state = 'active' AND query LIKE 'writing a batch%' LIMIT 1");
			last if $pid ne '';
			usleep(10_000);
		}
		$in_batch = $pid ne '' ? 1 : 0;
		$pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer' LIMIT 1")
		  if $pid eq '';
		ok($pid ne '' && kill('KILL', $pid) && $gone->($pid),
			"$what: SIGKILL consumer $pid" . ($in_batch ? ' inside a batch' : ' (not caught in a batch)'));
	}
	elsif ($kind eq 'kill_backend')
	{
		my $sleeper = IPC::Run::start([ 'psql', '-X', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres', '-c', 'SELECT pg_sleep(60)' ], '>', \my $o, '2>', \my $e);
		my $pid = '';
		for (1 .. 40)
		{
			$pid = $node->safe_psql('postgres',
				"SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' LIMIT 1");
			last if $pid ne '';
			usleep(100_000);
		}
		ok($pid ne '' && kill('KILL', $pid) && $gone->($pid), "$what: SIGKILL backend $pid");
		$sleeper->kill_kill;
	}
	elsif ($kind eq 'immediate_restart')
	{
		$node->stop('immediate');
		$node->start;
		pass("$what: immediate stop and start");
	}
	else
	{
		die "strike_fault: unknown fault $kind";
	}
	# The query goes with -c, not on standard input: a psql turned away while the server
	# recovers exits before it reads its input, and writing the query to it would then fail
	# with EPIPE (IPC::Run dies of that).
	my $back = 0;
	for (1 .. 240)
	{
		$back = eval {
			IPC::Run::run([ 'psql', '-X', '-q', '-h', $node->host, '-p', $node->port,
				'-d', 'postgres', '-c', 'SELECT 1' ], '>', \my $o, '2>', \my $e);
		} ? 1 : 0;
		last if $back;
		usleep(250_000);
	}
	ok($back, "$what: server accepts connections again");
	return $in_batch;
}

1;
