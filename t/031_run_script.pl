# scripts/run.sh (`make run` / `make stop`) on a fresh run directory and a free port, as the
# test's user: run directories another user could have planted (a symbolic link, someone
# else's, writable by others, or in a directory others can write) are refused before anything
# is written; the cluster it starts takes no connection without a password over TCP, keeps
# its socket in a directory only its user can enter, streams tweets into silver, starts again
# on the same data with the same password, and stops.
use strict;
use warnings;
use Fcntl ':mode';
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $root = -d 'scripts' ? '.' : $ENV{TWEETLAKE_SRC};
my $run_sh = "$root/scripts/run.sh";
my $me = scalar getpwuid($<);

# run.sh with TWEETLAKE_RUN_DIR (and PORT): (exit status 0?, stdout, stderr)
sub run_sh
{
	my ($dir, $cmd, %env) = @_;
	local %ENV = (%ENV, TWEETLAKE_RUN_DIR => $dir, %env);
	delete $ENV{SUPERSET};
	my ($o, $e) = ('', '');
	my $ok = IPC::Run::run([ 'bash', $run_sh, $cmd ], '>', \$o, '2>', \$e, IPC::Run::timeout(600));
	return ($ok, $o, $e);
}

sub mode_of { return sprintf '%04o', S_IMODE((lstat $_[0])[2]); }

sub entries
{
	my ($dir) = @_;
	opendir my $dh, $dir or return ('(unreadable)');
	return grep { !/^\.\.?$/ } readdir $dh;
}

# --- run directories that must be refused -------------------------------------------------
my $tmp = PostgreSQL::Test::Utils::tempdir_short;

mkdir "$tmp/target", 0700 or die $!;
symlink "$tmp/target", "$tmp/link" or die $!;
my ($ok, $out, $err) = run_sh("$tmp/link", 'start');
ok(!$ok, 'a run directory that is a symbolic link is refused');
like($err, qr{run\.sh: \Q$tmp\E/link is a symbolic link; refusing to use it}, '  with the reason');
is(join(',', entries("$tmp/target")), '', '  and nothing is written where it points');

mkdir "$tmp/open", 0700 or die $!;
chmod 0777, "$tmp/open" or die $!;
($ok, $out, $err) = run_sh("$tmp/open", 'start');
ok(!$ok, 'a world-writable run directory is refused');
like($err, qr{\Q$tmp\E/open is writable by its group or others \(mode 777\); refusing to use it}, '  with the reason');
is(join(',', entries("$tmp/open")), '', '  and nothing is written into it');

($ok, $out, $err) = run_sh("$tmp/open/run", 'start');
ok(!$ok, 'a run directory inside a world-writable directory without the sticky bit is refused');
like($err, qr{\Q$tmp\E/open is writable by its group or others without the sticky bit}, '  with the reason');
ok(!-e "$tmp/open/run", '  before it is created');

# someone else's directory: as root, one given to nobody; otherwise one of root's
my $theirs = '/';
if ($< == 0)
{
	$theirs = "$tmp/theirs";
	mkdir $theirs, 0700 or die $!;
	chown scalar(getpwnam('nobody')), -1, $theirs or die $!;
}
my $owner = getpwuid((lstat $theirs)[4]);
($ok, $out, $err) = run_sh($theirs, 'start');
ok(!$ok, "a run directory of another user ($owner) is refused");
like($err, qr{\Q$theirs\E belongs to \Q$owner\E, not \Q$me\E; refusing to use it}, '  with the reason');

($ok, $out, $err) = run_sh("$tmp/link", 'stop');
ok(!$ok, 'stop refuses the symbolic link too');

# --- a real start -----------------------------------------------------------------------
my $run = "$tmp/run";
my $port = PostgreSQL::Test::Cluster::get_free_port();
# a failed test leaves no server behind
END { run_sh($run, 'stop') if $run && -e "$run/server/data/postmaster.pid"; }
($ok, $out, $err) = run_sh($run, 'start', PORT => $port);
ok($ok, 'run.sh start on a fresh run directory') or diag("$out\n$err");
like($out, qr/started on 127\.0\.0\.1:$port/, "  started on 127.0.0.1:$port");
like($out, qr{psql "host=127\.0\.0\.1 port=$port dbname=tweetlake user=postgres passfile=\Q$run\E/pgpass"},
	'  and it says how to connect, with the password file');
like($out, qr/streaming generated tweets through Kafka/, '  the pipeline runs');

is(mode_of($run), '0700', 'the run directory is private (0700)');
is(mode_of("$run/server"), '0700', 'the socket directory is private (0700)');
is(mode_of("$run/server/.s.PGSQL.$port"), '0700', 'the socket itself is 0700');
is(mode_of("$run/pgpass"), '0600', 'the password file is 0600');
my $pgpass = slurp_file("$run/pgpass");
like($pgpass, qr/^127\.0\.0\.1:\*:\*:postgres:[A-Za-z0-9_-]{20,}\n\z/, '  holding a generated password for postgres on 127.0.0.1');

# psql over TCP on 127.0.0.1: (stdout, stderr, exit status 0?)
my $empty = "$tmp/empty-passfile";
open my $fh, '>', $empty or die $!;
close $fh;
chmod 0600, $empty;
sub psql_tcp
{
	my ($conn, $sql, %env) = @_;
	local %ENV = %ENV;
	delete @ENV{qw(PGPASSWORD PGHOST PGHOSTADDR PGSERVICE)};
	$ENV{PGPASSFILE} = $empty;
	@ENV{ keys %env } = values %env;
	my ($o, $e) = ('', '');
	my $ok = IPC::Run::run([ 'psql', '-X', '-w', '-tA', '-d', $conn, '-c', $sql ], '>', \$o, '2>', \$e);
	chomp $o;
	return ($o, $e, $ok);
}
my $tcp = "host=127.0.0.1 port=$port dbname=tweetlake user=postgres";
my ($v, $e, $good) = psql_tcp($tcp, 'SELECT 1');
ok(!$good, 'TCP without a password is refused');
like($e, qr/no password supplied/, '  (the server asks for one)');
($v, $e, $good) = psql_tcp($tcp, 'SELECT 1', PGPASSWORD => 'wrong');
like($e, qr/password authentication failed for user "postgres"/, 'TCP with a wrong password is refused');
($v, $e, $good) = psql_tcp("$tcp passfile=$run/pgpass", 'SELECT current_user');
is($v, 'postgres', 'TCP with the password of the password file logs in') or diag $e;
($v, $e) = psql_tcp("$tcp passfile=$run/pgpass",
	q{SELECT string_agg(type || ' ' || array_to_string(user_name, ',') || ' ' || auth_method, '; ' ORDER BY line_number)
	  FROM pg_hba_file_rules});
is($v, 'local postgres peer; host all scram-sha-256', 'pg_hba.conf: peer for postgres on the socket, scram over TCP, no trust');
($v) = psql_tcp("$tcp passfile=$run/pgpass", q{SELECT current_setting('unix_socket_permissions') || ' ' || current_setting('listen_addresses')});
is($v, '0700 127.0.0.1', 'unix_socket_permissions 0700, listening on 127.0.0.1 only');

my ($so, $se) = ('', '');
IPC::Run::run([ 'psql', '-X', '-tA', '-h', "$run/server", '-p', $port, '-U', 'postgres', '-d', 'tweetlake',
		'-c', 'SELECT count(*) > 0 FROM bronze.tweets' ], '>', \$so, '2>', \$se);
chomp $so;
is($so, 't', "the socket, as $me (peer): tweets arrived in bronze") or diag $se;
($so, $se) = ('', '');
IPC::Run::run([ 'psql', '-X', '-tA', '-h', "$run/server", '-p', $port, '-U', 'tweetlake_reader', '-d', 'tweetlake',
		'-c', 'SELECT 1' ], '>', \$so, '2>', \$se);
like($se, qr/no pg_hba\.conf entry for host "\[local\]", user "tweetlake_reader"/, 'the socket admits no other role');

my $silver = '';
for (1 .. 240)
{
	($silver) = psql_tcp("$tcp passfile=$run/pgpass", 'SELECT count(*) FROM silver.tweets');
	last if $silver && $silver > 0;
	usleep(250_000);
}
cmp_ok($silver || 0, '>', 0, "tweets flow into silver ($silver)");

($ok, $out, $err) = run_sh($run, 'start', PORT => $port);
ok($ok, 'run.sh start again') or diag("$out\n$err");
like($out, qr/already running on port $port/, '  finds it running');

# --- stop, start on the same data, stop ------------------------------------------------------
($ok, $out, $err) = run_sh($run, 'stop');
ok($ok, 'run.sh stop') or diag("$out\n$err");
like($out, qr/tweetlake: stopped/, '  stops it');
ok(system('pg_isready', '-q', '-h', '127.0.0.1', '-p', $port) != 0, '  and the port no longer answers');

my $port2 = PostgreSQL::Test::Cluster::get_free_port();
($ok, $out, $err) = run_sh($run, 'start', PORT => $port2);
ok($ok, 'run.sh start on the same run directory') or diag("$out\n$err");
is(slurp_file("$run/pgpass"), $pgpass, '  keeps the password');
($v, $e) = psql_tcp("host=127.0.0.1 port=$port2 dbname=tweetlake user=postgres passfile=$run/pgpass",
	'SELECT count(*) > 0 FROM silver.tweets');
is($v, 't', '  which still logs in, to the same data') or diag $e;

($ok, $out, $err) = run_sh($run, 'stop');
like($out, qr/tweetlake: stopped/, 'run.sh stop again');
($ok, $out, $err) = run_sh($run, 'stop');
like($out, qr/tweetlake: not running/, 'and once more: not running');

done_testing();
