# docker/ for real: every image of docker/docker-compose.yml built with podman and the stack
# brought up with podman-compose from a copy of the checkout, following the README's steps
# (docker/.env from docker/example.env), then checked from the host through the published
# loopback ports only: Postgres and its passwords, the Kafka topic, the pipeline into gold,
# Superset as tweetlake_reader, `down` and `up` again on the same volumes (ingest resumes, every
# Kafka offset in bronze once), and `down -v` leaving nothing behind.
#
# Runs as root (podman), from scripts/compose-test.sh, which provides the engine and the base
# image: COMPOSE (the podman-compose command), COMPOSE_SRC (the checkout), COMPOSE_LOGS (where
# the compose output and the containers' logs are kept).
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run ();
use JSON::PP qw(decode_json encode_json);
use Test::More;
use Time::HiRes qw(sleep time);

BAIL_OUT('t/032_compose.pl needs root: podman runs the stack (scripts/compose-test.sh runs it)') if $> != 0;

my $src = $ENV{COMPOSE_SRC} // dirname(dirname(abs_path($0)));
my @podman_compose = split ' ', ($ENV{COMPOSE} // 'podman-compose');
my $project = $ENV{COMPOSE_PROJECT} // 'tweetlake-test';
my $logs = $ENV{COMPOSE_LOGS} // File::Temp::tempdir(CLEANUP => 1);
make_path($logs);
my $work = File::Temp::tempdir('tweetlake-compose.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $tree = "$work/tweetlake";
my $started = time;

# --- helpers --------------------------------------------------------------------------------
sub elapsed { sprintf '%.0f s', time - $started }

# Runs a command in the tree, its output appended to $logs/$log; (success, output).
sub run_logged
{
	my ($log, $cmd, $timeout) = @_;
	my $out = '';
	my $ok = eval {
		IPC::Run::run($cmd, '<', \'', '>&', \$out, init => sub { chdir $tree },
			IPC::Run::timeout($timeout // 600));
	};
	$out .= "\n(timed out or failed to run: $@)" if $@;
	open my $fh, '>>', "$logs/$log" or die "$logs/$log: $!";
	print $fh '$ ', join(' ', @$cmd), "\n", $out, "\n";
	close $fh;
	return ($ok, $out);
}

sub compose
{
	my ($log, $timeout, @args) = @_;
	return run_logged($log, [ @podman_compose, '-p', $project, '-f', 'docker/docker-compose.yml', @args ], $timeout);
}

sub podman
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'podman', @args ], '<', \'', '>', \$out, '2>', \$err);
	chomp $out;
	return $out;
}

sub podman_ok { IPC::Run::run([ 'podman', @_ ], '<', \'', '>', \my $o, '2>', \my $e) }

sub free_port
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die "socket: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

# Superset wants a SUPERSET_SECRET_KEY of 32 characters or more
sub secret { join '', map { ('a' .. 'z', 'A' .. 'Z', 0 .. 9)[ rand 62 ] } 1 .. 40 }

# The project's containers, volumes and networks (compose labels them with the project).
sub project_objects
{
	my @found;
	push @found, map { "container $_" } split /\n/,
	  podman('ps', '-a', '--filter', "label=com.docker.compose.project=$project", '--format', '{{.Names}}');
	push @found, map { "volume $_" } split /\n/,
	  podman('volume', 'ls', '--filter', "label=com.docker.compose.project=$project", '--format', '{{.Name}}');
	push @found, map { "network $_" } grep { /^\Q$project\E_/ } split /\n/, podman('network', 'ls', '--format', '{{.Name}}');
	return @found;
}

# The container of a service (podman-compose names it <project>_<service>_1).
sub container { "${project}_$_[0]_1" }

my %env;

# psql over the published port: (output, stderr, success)
sub psql_as
{
	my ($user, $password, $sql) = @_;
	my ($o, $e) = ('', '');
	local $ENV{PGPASSWORD} = $password;
	local $ENV{PGCONNECT_TIMEOUT} = 5;
	my $ok = IPC::Run::run([ 'psql', '-X', '-tA', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', $env{POSTGRES_HOST_PORT},
			'-U', $user, '-d', 'tweetlake', '-c', $sql ], '<', \'', '>', \$o, '2>', \$e);
	chomp $o;
	return ($o, $e, $ok);
}

sub sql
{
	my ($o, $e, $ok) = psql_as('postgres', $env{POSTGRES_PASSWORD}, @_);
	return $ok ? $o : "ERROR: $e";
}

# Polls $get until $want->(value) holds or $timeout seconds pass; one test; returns the value.
sub wait_for
{
	my ($what, $timeout, $get, $want) = @_;
	my $deadline = time + $timeout;
	my $v;
	while (1)
	{
		$v = $get->() // '';
		last if $want->($v) || time > $deadline;
		sleep 2;
	}
	ok($want->($v), "$what (after " . elapsed() . ')') or diag("last value: $v");
	return $v;
}

# The end offset of each partition of tweets, from Kafka through its published port.
sub kafka_end_offsets
{
	my ($out, $err) = ('', '');
	my @query = map { ('-t', "tweets:$_:-1") } 0 .. 3;
	IPC::Run::run([ 'kcat', '-Q', '-b', "127.0.0.1:$env{KAFKA_HOST_PORT}", @query ], '<', \'', '>', \$out, '2>', \$err,
		IPC::Run::timeout(60));
	my %end;
	$end{$1} = $2 while $out =~ /\[(\d+)\]\s+offset\s+(-?\d+)/g;
	return \%end;
}

# bronze's offsets and rows per partition: "partition:rows:distinct:min:max" joined by spaces
sub bronze_offsets
{
	sql(q{SELECT string_agg(p || ':' || n || ':' || d || ':' || lo || ':' || hi, ' ' ORDER BY p)
	      FROM (SELECT p, count(*) n, count(DISTINCT o) d, min(o) lo, max(o) hi
	            FROM (SELECT kafka_partition, kafka_offset FROM bronze.tweets WHERE kafka_topic = 'tweets'
	                  UNION ALL
	                  SELECT kafka_partition, kafka_offset FROM bronze.dead_letters WHERE kafka_topic = 'tweets') m(p, o)
	            GROUP BY p) s});
}

sub save_container_logs
{
	my ($tag) = @_;
	for my $c (split /\n/, podman('ps', '-a', '--filter', "label=com.docker.compose.project=$project", '--format', '{{.Names}}'))
	{
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'podman', 'logs', $c ], '<', \'', '>', \$out, '2>&1');
		open my $fh, '>', "$logs/$tag-$c.log" or next;
		print $fh $out;
		close $fh;
	}
}

# Whatever happens, the stack goes: containers, volumes, network.
my $cleaned = 0;
sub cleanup
{
	return if $cleaned++;
	save_container_logs('end') if -d $tree;
	compose('down.log', 300, 'down', '-v') if -d $tree;
	podman('rm', '-f', '-t', '0', $_) for map { s/^container //r } grep { /^container / } project_objects();
	podman('volume', 'rm', '-f', $_) for map { s/^volume //r } grep { /^volume / } project_objects();
	podman('network', 'rm', '-f', $_) for map { s/^network //r } grep { /^network / } project_objects();
}
END { my $rc = $?; cleanup(); $? = $rc; }
$SIG{INT} = $SIG{TERM} = sub { cleanup(); exit 1; };

if (!is(join(', ', project_objects()), '', "no stack of project $project is left from an earlier run"))
{
	cleanup();
	$cleaned = 0;
}
# every volume there is now: `down -v` must leave no other, anonymous ones included
my %volumes_before = map { $_ => 1 } split /\n/, podman('volume', 'ls', '--format', '{{.Name}}');

# --- the README's steps: a copy of the checkout, docker/.env from docker/example.env --------
make_path($tree);
system('tar', '-C', $src, '--exclude=./.git', '--exclude=./build', '--exclude=./.run', '--exclude=./docker/.env',
	'--exclude=./tmp_check', '-cf', "$work/src.tar", '.') == 0 or BAIL_OUT("cannot copy $src");
system('tar', '-C', $tree, '-xf', "$work/src.tar") == 0 or BAIL_OUT("cannot copy $src");
unlink "$work/src.tar";
system('install', '-m', '600', "$tree/docker/example.env", "$tree/docker/.env") == 0 or BAIL_OUT('install docker/.env');
%env = (POSTGRES_PASSWORD => secret() . '-!%+', SUPERSET_SECRET_KEY => secret(), SUPERSET_ADMIN_PASSWORD => secret(),
	TWEETLAKE_READER_PASSWORD => secret(), POSTGRES_HOST_PORT => free_port(), KAFKA_HOST_PORT => free_port(),
	SUPERSET_HOST_PORT => free_port());
{
	my $dotenv = do { local (@ARGV, $/) = "$tree/docker/.env"; <> };
	for my $k (sort keys %env)
	{
		$dotenv =~ s/^\Q$k\E=.*\n//m;
		$dotenv .= "$k=$env{$k}\n";
	}
	open my $fh, '>', "$tree/docker/.env" or die $!;
	print $fh $dotenv;
	close $fh;
}
my ($example) = do { local (@ARGV, $/) = "$src/docker/example.env"; <> };
is(join(',', sort grep { $example =~ /^\Q$_\E=$/m } qw(POSTGRES_PASSWORD SUPERSET_SECRET_KEY SUPERSET_ADMIN_PASSWORD TWEETLAKE_READER_PASSWORD)),
	'POSTGRES_PASSWORD,SUPERSET_ADMIN_PASSWORD,SUPERSET_SECRET_KEY,TWEETLAKE_READER_PASSWORD',
	'docker/example.env has the four passwords to set, empty');

# --- build ----------------------------------------------------------------------------------
my ($ok, $out) = compose('build.log', 3600, 'build');
# On failure: the lines that say what failed (the images build in parallel, so the failing
# build's own message may be far from the end), then the end of the output.
my @failures = grep { /\b(error|fail(ed|ure)?|exit (code|status))\b/i && !/HEALTHCHECK/ } split /\n/, $out;
splice(@failures, 40) if @failures > 40;
ok($ok, 'podman-compose build: every image of the compose file builds (' . elapsed() . ')')
  or diag(join("\n", @failures, '...', substr($out, -2000)));
my %images = ('tweetlake/postgres:0.1.0' => 'postgres', 'tweetlake/kafka:4.1.1' => 'kafka, kafka-init',
	'tweetlake/superset:0.1.0' => 'superset');
for my $image (sort keys %images)
{
	is(podman_ok('image', 'exists', $image) ? 'exists' : 'missing', 'exists', "image $image ($images{$image})");
}
# .dockerignore at work: docker/.env was in the tree the images were built from
is(podman('run', '--rm', '--entrypoint', 'sh', 'tweetlake/postgres:0.1.0', '-c',
		'ls -a /usr/src/tweetlake/docker; ls -d /usr/src/tweetlake/.git /usr/src/tweetlake/build 2>/dev/null') =~ /^\.env$/m ? 'in the image' : 'not in the image',
	'not in the image', 'docker/.env, with the passwords, is not in the postgres image (nor .git, build/)');
BAIL_OUT('the images do not build; see ' . "$logs/build.log") unless $ok;

# The postgres image's entrypoint refuses what it cannot run with, before any server starts.
sub run_image
{
	my (@env) = @_;
	my $out = '';
	IPC::Run::run([ 'podman', 'run', '--rm', map({ ('-e', $_) } @env), 'tweetlake/postgres:0.1.0' ], '<', \'', '>&', \$out,
		IPC::Run::timeout(120));
	return ($? >> 8, $out);
}
my ($rc, $msg) = run_image();
ok($rc != 0 && $msg =~ /POSTGRES_PASSWORD is not set/, "without POSTGRES_PASSWORD the container stops at once, saying why (status $rc)")
  or diag($msg);
($rc, $msg) = run_image('POSTGRES_PASSWORD=x', 'TWEETLAKE_CONSUMERS=two');
ok($rc != 0 && $msg =~ /TWEETLAKE_CONSUMERS must be an integer, not 'two'/, "a non-numeric TWEETLAKE_CONSUMERS is refused (status $rc)")
  or diag($msg);

# --- up -------------------------------------------------------------------------------------
# podman 4.3 cannot start a container whose --requires chain is two deep ("generating dependency
# graph ... not found in input list"), which podman-compose makes of depends_on: --no-deps
# leaves that out.  Every service is still started, in the order of depends_on; podman-compose
# does not wait for a health check on podman before 4.6 either way.
my @up = ('up', '-d', '--build', '--no-deps');
($ok, $out) = compose('up.log', 900, @up);
ok($ok, 'podman-compose up -d --build (--no-deps)') or diag(substr($out, -3000));

my $pg_ready = wait_for('Postgres accepts the password of docker/.env on 127.0.0.1:' . $env{POSTGRES_HOST_PORT}, 300,
	sub { sql('SELECT current_user || \' \' || current_database()') }, sub { $_[0] eq 'postgres tweetlake' });
my ($o, $e) = psql_as('postgres', 'wrong' . $env{POSTGRES_PASSWORD}, 'SELECT 1');
like($e, qr/password authentication failed for user "postgres"/, 'a wrong password is refused');
($o, $e) = psql_as('tweetlake_reader', 'wrong', 'SELECT 1');
like($e, qr/password authentication failed for user "tweetlake_reader"/, '  and so is one for tweetlake_reader');
is(sql(q{SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'tweetlake') FROM pg_extension WHERE extname = 'tweetlake'}),
	't', 'the extension is installed in database tweetlake at its default version');
is(sql(q{SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
         WHERE name IN ('tweetlake.brokers', 'tweetlake.topic', 'tweetlake.consumers', 'tweetlake.generator_rate')}),
	'tweetlake.brokers=kafka:9092 tweetlake.consumers=2 tweetlake.generator_rate=1000 tweetlake.topic=tweets',
	'the settings of the compose file: brokers kafka:9092, topic tweets, 2 consumers, 1,000 tweets/s');

wait_for('kafka-init created the topic and exited with status 0', 300,
	sub { podman('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', container('kafka-init')) },
	sub { $_[0] eq 'exited 0' });
my $topic = wait_for('the topic tweets has 4 partitions (kcat -L on 127.0.0.1:' . $env{KAFKA_HOST_PORT} . ')', 120, sub {
		my ($o, $e) = ('', '');
		IPC::Run::run([ 'kcat', '-L', '-b', "127.0.0.1:$env{KAFKA_HOST_PORT}", '-t', 'tweets', '-m', '10' ], '<', \'', '>', \$o, '2>', \$e);
		$o =~ /topic "tweets" with (\d+) partitions/ ? $1 : "$o$e";
	}, sub { $_[0] eq '4' });
my ($auto) = podman('exec', container('kafka'), 'sh', '-c', 'cat /tmp/*/server.properties') =~ /^auto\.create\.topics\.enable=(\S+)/m;
is($auto // 'unset', 'false', 'the broker creates no topic by itself');

wait_for('tweetlake.status: the generator and both consumers run', 180,
	sub { sql(q{SELECT string_agg(role || ':' || (pid IS NOT NULL), ' ' ORDER BY role, worker) FROM tweetlake.status WHERE role <> 'launcher'}) },
	sub { $_[0] eq 'consumer:true consumer:true generator:true' });
wait_for('tweets reach gold (more than 5,000 counted in gold.hourly_activity_summary)', 300,
	sub { sql('SELECT coalesce(sum(total_tweets), 0) FROM gold.hourly_activity_summary') }, sub { $_[0] =~ /^\d+$/ && $_[0] > 5000 });
# (last_error may tell of the time the topic did not exist yet: see the up above)
is(sql(q{SELECT string_agg(role || ' ' || (messages > 0) || ' ' || errors, ', ' ORDER BY role, worker) FROM tweetlake.status WHERE role <> 'launcher'}),
	'consumer true 0, consumer true 0, generator true 0', 'each worker moved messages; no dead letter, no failed delivery')
  or diag(sql('SELECT * FROM tweetlake.status'));
is(sql('SELECT count(*) - count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'), '0',
	'each (kafka_partition, kafka_offset) is in bronze.tweets once');
is(sql('SELECT count(DISTINCT kafka_partition) FROM bronze.tweets'), '4', 'tweets came from all 4 partitions');

# The password is in the cluster; the postmaster (PID 1) runs without it, though compose gave it.
my $comm = podman('exec', container('postgres'), 'cat', '/proc/1/comm');
is($comm, 'postgres', 'the postmaster is PID 1 of its container (the stop signal reaches it)');
my $given = podman('inspect', '--format', '{{range .Config.Env}}{{println .}}{{end}}', container('postgres'));
my $environ = podman('exec', container('postgres'), 'sh', '-c', q{tr '\0' '\n' < /proc/1/environ; tr '\0' ' ' < /proc/1/cmdline});
ok($given =~ /^POSTGRES_PASSWORD=\Q$env{POSTGRES_PASSWORD}\E$/m && $environ ne ''
	  && $environ !~ /POSTGRES_PASSWORD/ && index($environ, $env{POSTGRES_PASSWORD}) < 0,
	'  and POSTGRES_PASSWORD, in the container\'s configuration, is neither in its environment nor in its arguments');

# --- Superset, as tweetlake_reader ----------------------------------------------------------
my $base = "http://127.0.0.1:$env{SUPERSET_HOST_PORT}";
my $http = HTTP::Tiny->new(timeout => 120);
wait_for("Superset answers /health on $base", 600, sub { my $r = $http->get("$base/health"); "$r->{status} $r->{content}" },
	sub { $_[0] eq '200 OK' });
my $login = $http->post("$base/api/v1/security/login", { headers => { 'Content-Type' => 'application/json' },
		content => encode_json({ username => 'admin', password => $env{SUPERSET_ADMIN_PASSWORD}, provider => 'db', refresh => JSON::PP::false }) });
is($login->{status}, 200, 'API login as admin with SUPERSET_ADMIN_PASSWORD of docker/.env') or diag($login->{content});
my $token = eval { decode_json($login->{content})->{access_token} } // '';
sub api
{
	my ($method, $path, $body) = @_;
	my $r = $http->request($method, "$base$path", { headers => { Authorization => "Bearer $token", 'Content-Type' => 'application/json' },
			defined $body ? (content => encode_json($body)) : () });
	return ($r->{status}, eval { decode_json($r->{content}) } // { raw => $r->{content} });
}
my (undef, $dash) = api('GET', '/api/v1/dashboard/?q=(page_size:100)');
is(join(',', sort map { $_->{dashboard_title} } @{ $dash->{result} // [] }),
	'Pipeline Health,Real-time Trends,Tweet Analytics Overview,User Engagement Analysis', 'the four dashboards exist');
my (undef, $dbs) = api('GET', '/api/v1/database/');
my ($db) = grep { $_->{database_name} eq 'tweetlake' } @{ $dbs->{result} // [] };
my (undef, $conn) = $db ? api('GET', "/api/v1/database/$db->{id}/connection") : (undef, {});
like($conn->{result}{sqlalchemy_uri} // '', qr{^postgresql\+psycopg2://tweetlake_reader:[^\@]*\@postgres:5432/tweetlake$},
	'Superset reads Postgres as tweetlake_reader at postgres:5432 (the stack\'s network)');

# A chart's data, through Superset's API: rows from gold.
sub chart_rows
{
	my ($name) = @_;
	my (undef, $charts) = api('GET', '/api/v1/chart/?q=(page_size:100)');
	my ($c) = grep { $_->{slice_name} eq $name } @{ $charts->{result} // [] };
	return "no chart $name" unless $c;
	my (undef, $full) = api('GET', "/api/v1/chart/$c->{id}");
	my $qc = eval { decode_json($full->{result}{query_context}) } or return 'no query context';
	$qc->{datasource} = { id => $c->{datasource_id}, type => 'table' };
	$qc->{force} = JSON::PP::true;
	my ($status, $r) = api('POST', '/api/v1/chart/data', $qc);
	my $q = $r->{result}[0] // {};
	return "$status " . join(',', @{ $q->{colnames} // [] }) . ' ' . ($q->{rowcount} // 0) . ($status == 200 ? '' : ' ' . encode_json($r));
}
my $chart = chart_rows('Regional activity');
like($chart, qr/^200 region,tweets [1-9]\d* ?$/, "the chart \"Regional activity\" returns rows of gold ($chart)");
is(join(' ', map { (psql_as('tweetlake_reader', $env{TWEETLAKE_READER_PASSWORD}, $_))[2] ? 'yes' : 'no' }
		'SELECT count(*) FROM gold.tweet_volume_by_region', 'SELECT count(*) FROM bronze.tweets'),
	'yes no', 'tweetlake_reader, with the password of docker/.env, reads gold and not bronze');
my ($gunicorn_env) = podman('exec', container('superset'), 'sh', '-c', q{tr '\0' '\n' < /proc/1/environ});
ok(defined $gunicorn_env && $gunicorn_env =~ /^SUPERSET_SECRET_KEY=/m && $gunicorn_env !~ /^(PGPASSWORD|POSTGRES_PASSWORD|SUPERSET_ADMIN_PASSWORD|TWEETLAKE_READER_PASSWORD)=/m,
	'gunicorn (PID 1 of superset) runs with SUPERSET_SECRET_KEY and without the other secrets');

# The health checks of the compose file.  Docker runs them itself; podman schedules them with
# systemd timers, and this machine has no systemd, so they are run here once, by hand.
for my $service (qw(postgres kafka superset))
{
	my $hc_out = '';
	my $hc_ok = IPC::Run::run([ 'podman', 'healthcheck', 'run', container($service) ], '<', \'', '>&', \$hc_out);
	my $status = podman('inspect', '--format', '{{.State.Health.Status}}', container($service));
	ok($hc_ok && $status eq 'healthy', "$service: its health check passes ($status)") or diag($hc_out);
}

# --- down, up again: the named volumes keep the data, ingest resumes --------------------------
save_container_logs('first');
my $before = sql('SELECT count(*) FROM bronze.tweets');
my $end_before = kafka_end_offsets();
($ok, $out) = compose('down.log', 300, 'down');
ok($ok, "podman-compose down (with $before tweets in bronze)") or diag(substr($out, -2000));
is(join(', ', grep { /^container/ } project_objects()), '', '  removes the containers');
is(join(' ', sort map { s/^volume \Q$project\E_//r } grep { /^volume / } project_objects()), 'kafka-data pgdata superset-home',
	'  and keeps the named volumes kafka-data, pgdata, superset-home');

# docker/.env changed in between: the next start takes the new setting
{
	my $dotenv = do { local (@ARGV, $/) = "$tree/docker/.env"; <> };
	$dotenv =~ s/^TWEETLAKE_CONSUMERS=.*$/TWEETLAKE_CONSUMERS=3/m or $dotenv .= "TWEETLAKE_CONSUMERS=3\n";
	open my $fh, '>', "$tree/docker/.env" or die $!;
	print $fh $dotenv;
	close $fh;
}
($ok, $out) = compose('up.log', 900, @up);
ok($ok, 'podman-compose up -d --build again, with TWEETLAKE_CONSUMERS=3 in docker/.env') or diag(substr($out, -2000));
my $after = wait_for('Postgres is back with every tweet of before', 300, sub { sql('SELECT count(*) FROM bronze.tweets') },
	sub { $_[0] =~ /^\d+$/ && $_[0] >= $before });
my ($pg_log) = ('');
IPC::Run::run([ 'podman', 'logs', container('postgres') ], '<', \'', '>&', \$pg_log);
like($pg_log, qr/database system was shut down at/, 'PostgreSQL had shut down cleanly (no recovery)')
  or diag($pg_log);
my $kept = wait_for('Kafka is back with each partition\'s log (end offsets ' . join(',', map { $end_before->{$_} // '?' } 0 .. 3)
	  . ' or more)', 300, sub { my $e = kafka_end_offsets(); join ' ', map { $e->{$_} // '?' } 0 .. 3 },
	sub { my @e = split ' ', $_[0]; @e == 4 && !grep { $e[$_] !~ /^\d+$/ || $e[$_] < ($end_before->{$_} // 1) } 0 .. 3 });
wait_for('tweetlake.status: the generator and now three consumers run', 180,
	sub { sql(q{SELECT string_agg(role || ':' || (pid IS NOT NULL), ' ' ORDER BY role, worker) FROM tweetlake.status WHERE role <> 'launcher'}) },
	sub { $_[0] eq 'consumer:true consumer:true consumer:true generator:true' });
wait_for('ingest resumes: 5,000 tweets more in bronze', 300, sub { sql('SELECT count(*) FROM bronze.tweets') },
	sub { $_[0] =~ /^\d+$/ && $_[0] >= $before + 5000 });

# The generator off (ALTER SYSTEM, a reload), the consumers drain the topic: every offset Kafka
# has is in bronze (or the dead letters) exactly once, and gold equals a full recompute.
sql('ALTER SYSTEM SET tweetlake.generator_rate = 0');
sql('SELECT pg_reload_conf()');
wait_for('ALTER SYSTEM wins over the environment: tweetlake.generator_rate is 0 after a reload', 30,
	sub { sql(q{SELECT current_setting('tweetlake.generator_rate')}) }, sub { $_[0] eq '0' });
wait_for('the generator stops producing', 60,
	sub { my $a = sql(q{SELECT messages FROM tweetlake.status WHERE role = 'generator'}); sleep 3;
		  $a . ' ' . sql(q{SELECT messages FROM tweetlake.status WHERE role = 'generator'}) },
	sub { $_[0] =~ /^(\d+) (\d+)$/ && $1 == $2 });
my $end = kafka_end_offsets();
my $want = join ' ', map { "$_:$end->{$_}:$end->{$_}:0:" . ($end->{$_} - 1) } sort keys %$end;
wait_for("the consumers read the topic to its end: per partition offsets 0 .. end - 1 each once ($want)", 300,
	\&bronze_offsets, sub { $_[0] eq $want && keys %$end == 4 });
my $bronze = sql('SELECT count(*) FROM bronze.tweets');
is(sql('SELECT count(*) FROM silver.tweets') . ' ' . sql('SELECT sum(total_tweets) FROM gold.hourly_activity_summary'),
	"$bronze $bronze", "silver and gold count every one of the $bronze tweets of bronze");
is(sql('SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'SELECT * FROM tweetlake.verify(): gold equals a full recompute');
is(sql(q{SELECT count(*) FROM tweetlake.verify() WHERE gold_rows > 0}), sql('SELECT count(*) FROM tweetlake.verify()'),
	'  and every gold table has rows');
sql('ALTER SYSTEM RESET tweetlake.generator_rate');
sql('SELECT pg_reload_conf()');

wait_for('Superset answers again, with its metadata kept in superset-home', 600,
	sub { my $r = $http->get("$base/health"); "$r->{status} $r->{content}" }, sub { $_[0] eq '200 OK' });
$login = $http->post("$base/api/v1/security/login", { headers => { 'Content-Type' => 'application/json' },
		content => encode_json({ username => 'admin', password => $env{SUPERSET_ADMIN_PASSWORD}, provider => 'db', refresh => JSON::PP::false }) });
$token = eval { decode_json($login->{content})->{access_token} } // '';
$chart = chart_rows('Tweet volume by hour');
like($chart, qr/^200 hour,tweets [1-9]\d* ?$/, "the chart \"Tweet volume by hour\" returns rows ($chart)");

# --- down -v: nothing left --------------------------------------------------------------------
save_container_logs('second');
($ok, $out) = compose('down.log', 300, 'down', '-v');
ok($ok, 'podman-compose down -v') or diag(substr($out, -2000));
is(join(', ', project_objects()), '', '  leaves no container, volume or network of the project');
is(join(', ', grep { !$volumes_before{$_} } split /\n/, podman('volume', 'ls', '--format', '{{.Name}}')), '',
	'  and no anonymous volume either');
my $open = join ' ', grep { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $env{$_}, Timeout => 2) }
  qw(POSTGRES_HOST_PORT KAFKA_HOST_PORT SUPERSET_HOST_PORT);
is($open, '', '  and no published port answers any more');
$cleaned = 1;

diag('compose suite: ' . elapsed());
done_testing();
