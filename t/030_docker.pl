# docker/ without a Docker engine: the compose file is checked against the README (parsed,
# by docker/check_compose.py, which must also catch a broken copy), and the image's
# entrypoint runs here, on the build `make test` installed, the way the container runs it:
# cluster creation from the environment, password authentication, the pipeline on the
# embedded broker, a clean shutdown on the stop signal and a restart on the same volume.
use strict;
use warnings;
use File::Copy qw(copy);
use File::Path qw(make_path);
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $src = -d 'docker' ? '.' : $ENV{TWEETLAKE_SRC};
my $entrypoint = "$src/docker/entrypoint.sh";

# --- the compose file, the README and the Dockerfiles agree --------------------------------
sub copy_tree
{
	my ($dest) = @_;
	system('cp', '-r', map("$src/$_", qw(docker scripts superset README.md)), $dest) == 0 or die "cp failed";
	# the build context's .dockerignore (scripts/test.sh copies no dot files: take the checkout's)
	my ($ignore) = grep { -f } ("$src/.dockerignore", "$ENV{TWEETLAKE_SRC}/.dockerignore");
	copy($ignore, "$dest/.dockerignore") or die "copy .dockerignore: $!" if $ignore;
	make_path("$dest/test/kafka");
	copy("$src/test/kafka/pom.xml", "$dest/test/kafka/pom.xml") or die "copy pom.xml: $!";
}

sub run_checker
{
	my ($root) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'python3', "$root/docker/check_compose.py", '--root', $root ], '>', \$out, '2>', \$err);
	return ($ok, $out . $err);
}

sub edit_file
{
	my ($path, $from, $to) = @_;
	my $text = slurp_file($path);
	$text =~ s/$from/$to/ or die "pattern $from not in $path";
	open my $fh, '>', $path or die $!;
	print $fh $text;
	close $fh;
}

my $good = PostgreSQL::Test::Utils::tempdir;
copy_tree($good);
my ($ok, $out) = run_checker($good);
ok($ok, 'docker/check_compose.py accepts docker/ and the README') or diag $out;
like($out, qr/^check_compose: 0 failed$/m, 'and says so');
my $checks = () = $out =~ /^ok /mg;
cmp_ok($checks, '>=', 40, "it made its checks ($checks)");

my @broken = (
	[ 'superset published on another port than the README says',
	  'docker/docker-compose.yml', qr/127\.0\.0\.1:8088:8088/, '127.0.0.1:8089:8088',
	  qr/FAIL superset: publishes port 8088/ ],
	[ 'a service the README does not list',
	  'README.md', qr/^\| kafka-init \|.*\n/m, '',
	  qr/FAIL README services/ ],
	[ 'the workers pointed at a listener Kafka does not advertise',
	  'docker/docker-compose.yml', qr/TWEETLAKE_BROKERS: kafka:9092/, 'TWEETLAKE_BROKERS: kafka:9093',
	  qr/FAIL postgres: TWEETLAKE_BROKERS/ ],
	[ 'a Kafka image other than the tests\' broker',
	  'docker/docker-compose.yml', qr/image: apache\/kafka:[0-9.]+\n/, "image: apache/kafka:3.7.0\n",
	  qr/FAIL kafka: image/ ],
	[ 'an entrypoint variable missing from the README',
	  'docker/entrypoint.sh', qr/^write_settings$/m, "write_settings\n: \"\${TWEETLAKE_UNDOCUMENTED:-}\"",
	  qr/FAIL every variable the entrypoint reads.*TWEETLAKE_UNDOCUMENTED/ ],
	[ 'a Dockerfile that no longer builds with scripts/install-deps.sh',
	  'docker/Dockerfile', qr/RUN bash \/usr\/src\/tweetlake\/scripts\/install-deps\.sh/,
	  'RUN apt-get update && apt-get install -y postgresql-15',
	  qr/FAIL docker\/Dockerfile runs scripts\/install-deps\.sh/ ],
	[ 'a .dockerignore that lets docker/.env into the image',
	  '.dockerignore', qr/^docker\/\.env\n\*\*\/\.env\n/m, '',
	  qr/FAIL \.dockerignore keeps docker\/\.env out of the build context/ ],
	[ 'a .dockerignore that lets private keys into the image',
	  '.dockerignore', qr/^\*\*\/\*\.key\n/m, '',
	  qr/FAIL \.dockerignore keeps docker\/tls\/server\.key out/ ],
	[ 'a .dockerignore that lets make run\'s password file (.run/pgpass) into the image',
	  '.dockerignore', qr/^\.run\n/m, '',
	  qr/FAIL \.dockerignore keeps \.run\/pgpass out/ ],
	[ 'a .dockerignore that leaves out what a Dockerfile COPYs',
	  '.dockerignore', qr/\z/, "docker/*.sh\n",
	  qr/FAIL \.dockerignore keeps docker\/entrypoint\.sh, which a Dockerfile COPYs/ ],
	[ 'a secret with a default instead of being required',
	  'docker/docker-compose.yml', qr/SUPERSET_SECRET_KEY: \$\{SUPERSET_SECRET_KEY:\?[^}]*\}/,
	  'SUPERSET_SECRET_KEY: changeme', qr/FAIL superset: SUPERSET_SECRET_KEY/ ]);
for my $case (@broken)
{
	my ($what, $file, $from, $to, $expect) = @$case;
	my $root = PostgreSQL::Test::Utils::tempdir;
	copy_tree($root);
	edit_file("$root/$file", $from, $to);
	my ($bad_ok, $bad_out) = run_checker($root);
	ok(!$bad_ok, "the checker fails on $what");
	like($bad_out, $expect, '  and names the problem');
}

# The images' install steps, on this machine: each Dockerfile's scripts/install-deps.sh call,
# with its arguments (every package it names must be installed here, or installable as root).
for my $dockerfile ('docker/Dockerfile', 'docker/superset.Dockerfile')
{
	my @calls = slurp_file("$src/$dockerfile") =~ m{^RUN bash \S*scripts/install-deps\.sh((?: --[a-z-]+)*)}mg;
	is(scalar @calls, 1, "$dockerfile calls scripts/install-deps.sh once");
	for my $args (@calls)
	{
		my ($o, $e) = ('', '');
		my $ran = IPC::Run::run([ 'bash', "$src/scripts/install-deps.sh", split(' ', $args) ], '>', \$o, '2>', \$e);
		ok($ran, "its step 'install-deps.sh$args' passes here") or diag $o . $e;
		like($o, qr/^install-deps: ok/m, '  and reports what it found');
	}
}

# --- the entrypoint ----------------------------------------------------------------------
my $pgdata = PostgreSQL::Test::Utils::tempdir . '/data';
my $sockdir = PostgreSQL::Test::Utils::tempdir_short;
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $logfile = PostgreSQL::Test::Utils::tempdir . '/container.log';
my $password = q{s3cret pass'with quote};

my %container_env = (
	PGDATA => $pgdata, PGPORT => $port, POSTGRES_LISTEN => '127.0.0.1',
	POSTGRES_SOCKET_DIR => $sockdir, TWEETLAKE_BROKERS => '',
	TWEETLAKE_GENERATOR_RATE => 2000, TWEETLAKE_CONSUMERS => 2);

# Runs the entrypoint as the container would (its PID written first, then exec), with the
# environment given; returns the IPC::Run harness and that PID.
sub run_container
{
	my (%env) = @_;
	local %ENV = (%ENV, %env);
	delete $ENV{$_} for grep { !defined $env{$_} && exists $env{$_} } keys %env;
	my $pidfile = "$logfile.pid";
	unlink $pidfile;
	my $h = IPC::Run::start([ 'bash', '-c', 'echo $$ > "$0"; exec "$@"', $pidfile, $entrypoint, 'postgres' ],
		'>>', $logfile, '2>>', $logfile);
	for (1 .. 100) { last if -s $pidfile; usleep(50_000); }
	chomp(my $pid = slurp_file($pidfile));
	return ($h, $pid);
}

sub finish_within
{
	my ($h, $seconds) = @_;
	my $t = IPC::Run::timer($seconds);
	$t->start;
	while ($h->pumpable && !$t->is_expired) { $h->pump_nb; usleep(100_000); }
	return 0 if $h->pumpable;
	$h->finish;
	return 1;
}

# psql over TCP as postgres with password $pw: (stdout, stderr, success)
sub psql_tcp
{
	my ($pw, $sql) = @_;
	my ($o, $e) = ('', '');
	local $ENV{PGPASSWORD} = $pw;
	my $ok = IPC::Run::run([ 'psql', '-X', '-tA', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', $port,
			'-U', 'postgres', '-d', 'tweetlake', '-c', $sql ], '>', \$o, '2>', \$e);
	chomp $o;
	return ($o, $e, $ok);
}

# the same with the right password; dies on an error
sub psql_ok
{
	my ($o, $e, $ok) = psql_tcp($password, @_);
	die "psql failed: $e" unless $ok;
	return $o;
}

sub wait_until
{
	my ($sql, $expected, $what, $timeout) = @_;
	my $last = '';
	for (1 .. ($timeout // 120) * 4)
	{
		$last = eval { psql_ok($sql) } // '';
		return pass($what) if $last eq $expected;
		usleep(250_000);
	}
	fail($what);
	diag("last value: $last; container log:\n" . slurp_file($logfile));
}

sub ready
{
	for (1 .. 240)
	{
		return 1 if system('pg_isready', '-q', '-h', '127.0.0.1', '-p', $port, '-d', 'tweetlake') == 0;
		usleep(250_000);
	}
	return 0;
}

# no password: no cluster
my ($h, $pid) = run_container(%container_env, POSTGRES_PASSWORD => undef);
ok(finish_within($h, 30), 'without POSTGRES_PASSWORD the entrypoint stops at once');
isnt($h->result(0), 0, '  with a failure status');
like(slurp_file($logfile), qr/POSTGRES_PASSWORD is not set/, '  and says why');
ok(!-e "$pgdata/PG_VERSION", '  and creates no cluster');

# first start: cluster, database, extension, settings from the environment
($h, $pid) = run_container(%container_env, POSTGRES_PASSWORD => $password);
ok(ready(), 'the container accepts connections') or diag(slurp_file($logfile));
like(slurp_file($logfile), qr/created the database tweetlake with the extension tweetlake/, 'it created the database');
my ($postmaster) = split /\n/, slurp_file("$pgdata/postmaster.pid");
is($postmaster, $pid, 'the postmaster is the entrypoint process itself (exec): the stop signal reaches it');
# Every backend inherits the postmaster's environment (/proc/PID/environ, which
# pg_read_server_files can read): the password must not be in it.
my $environ = slurp_file("/proc/$pid/environ");
my @env_names = map { /^([^=]*)=/ ? $1 : () } split /\0/, $environ;
ok(!grep({ $_ eq 'POSTGRES_PASSWORD' } @env_names), 'the postmaster runs without POSTGRES_PASSWORD in its environment');
ok(index($environ, $password) < 0, '  and the password is nowhere in it');

my ($v, $err) = psql_tcp($password, q{SELECT e.extversion || ' ' || (e.extversion = a.default_version)
	FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'tweetlake'});
like($v, qr/^\S+ true$/, "TCP login with POSTGRES_PASSWORD works, and the extension is installed in database tweetlake at its default version ($v)")
  or diag $err;
($v, $err) = psql_tcp('wrong', 'SELECT 1');
like($err, qr/password authentication failed for user "postgres"/, 'a wrong password is refused');
is(psql_ok(q{SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
               WHERE name IN ('tweetlake.consumers', 'tweetlake.generator_rate', 'tweetlake.brokers', 'tweetlake.database')}),
	'tweetlake.brokers= tweetlake.consumers=2 tweetlake.database=tweetlake tweetlake.generator_rate=2000',
	'the tweetlake settings come from the environment');
is(psql_ok(q{SELECT count(*) FROM pg_hba_file_rules WHERE type = 'host' AND auth_method = 'scram-sha-256'
               AND address IN ('0.0.0.0', '::')}), '2', 'TCP from anywhere needs a scram-sha-256 password');

# the pipeline runs: generator and two consumers on the embedded broker, into gold
wait_until(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('tweetlake generator', 'tweetlake consumer')},
	'3', 'the generator and both consumers run, named in pg_stat_activity');
wait_until('SELECT count(*) >= 5000 FROM silver.tweets', 't', 'tweets flow into silver');
psql_ok('SELECT tweetlake.stop()');
wait_until(q{SELECT count(*) FROM tweetlake.status WHERE role IN ('generator', 'consumer') AND pid IS NOT NULL},
	'0', 'the pipeline stops');
my $tweets = psql_ok('SELECT count(*) FROM bronze.tweets');
is(psql_ok('SELECT count(*) FROM silver.tweets'), $tweets, "silver has every one of the $tweets tweets");
is(psql_ok('SELECT sum(total_tweets) FROM gold.hourly_activity_summary'), $tweets, 'gold counts every one of them');
is(psql_ok('SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'gold equals a full recompute');

# the stop signal of the image (SIGINT: a fast shutdown)
kill 'INT', $pid;
ok(finish_within($h, 60), 'SIGINT stops the container');
is($h->result(0), 0, '  with status 0');
like(slurp_file($logfile), qr/database system is shut down/, '  after a clean shutdown');

# a bad setting in the environment is refused before the server starts
($h, $pid) = run_container(%container_env, TWEETLAKE_CONSUMERS => 'two');
ok(finish_within($h, 30), 'a non-numeric TWEETLAKE_CONSUMERS stops the entrypoint');
like(slurp_file($logfile), qr/TWEETLAKE_CONSUMERS must be an integer, not 'two'/, '  with the reason');

# restart on the same volume, no password needed, new settings from the environment
($h, $pid) = run_container(%container_env, POSTGRES_PASSWORD => undef, TWEETLAKE_GENERATOR_RATE => 0,
	TWEETLAKE_CONSUMERS => 1);
ok(ready(), 'the container starts again on the same data directory') or diag(slurp_file($logfile));
is(psql_ok('SELECT count(*) FROM bronze.tweets'), $tweets, 'every tweet is still there');
is(psql_ok(q{SELECT current_setting('tweetlake.generator_rate') || ' ' || current_setting('tweetlake.consumers')}),
	'0 1', 'the settings follow the new environment');
($v, $err) = psql_tcp($password, 'SELECT count(*) FROM gold.tweet_volume_by_region');
cmp_ok($v, '>', 0, 'the password set at creation still works') or diag $err;
# an ALTER SYSTEM setting wins over the environment's
psql_ok('ALTER SYSTEM SET tweetlake.generator_rate = 5');
kill 'HUP', $pid;
wait_until(q{SELECT current_setting('tweetlake.generator_rate')}, '5', 'ALTER SYSTEM wins over the environment');
kill 'INT', $pid;
ok(finish_within($h, 60), 'and it stops cleanly again');
is($h->result(0), 0, '  with status 0');

done_testing();
