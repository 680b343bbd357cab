# docker/ without an engine: docker/check_compose.py checks the compose file, the Dockerfiles and
# .dockerignore against the README's "Docker" section (parsed), and must catch a broken copy.
# t/032_compose.pl (scripts/compose-test.sh, as root) builds the images and runs the stack.
use strict;
use warnings;
use File::Copy qw(copy);
use File::Path qw(make_path);
use IPC::Run ();
use PostgreSQL::Test::Utils;
use Test::More;

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
	  'docker/docker-compose.yml', qr/127\.0\.0\.1:\$\{SUPERSET_HOST_PORT:-8088\}:8088/, '127.0.0.1:${SUPERSET_HOST_PORT:-8089}:8088',
	  qr/FAIL superset: publishes port 8088/ ],
	[ 'a service the README does not list',
	  'README.md', qr/^\| kafka-init \|.*\n/m, '',
	  qr/FAIL README services/ ],
	[ 'the workers pointed at a listener Kafka does not advertise',
	  'docker/docker-compose.yml', qr/TWEETLAKE_BROKERS: kafka:9092/, 'TWEETLAKE_BROKERS: kafka:9093',
	  qr/FAIL postgres: TWEETLAKE_BROKERS/ ],
	[ 'a Kafka image other than the tests\' broker',
	  'docker/docker-compose.yml', qr/image: tweetlake\/kafka:[0-9.]+\n/, "image: apache/kafka:3.7.0\n",
	  qr/FAIL kafka: image/ ],
	[ 'a Kafka image built from another Dockerfile',
	  'docker/docker-compose.yml', qr/dockerfile: docker\/kafka\.Dockerfile/, 'dockerfile: docker/Dockerfile',
	  qr/FAIL kafka: built from docker\/kafka\.Dockerfile/ ],
	[ 'a kafka-init that creates another topic',
	  'docker/docker-compose.yml', qr/--topic tweets/, '--topic tweet',
	  qr/FAIL kafka-init creates the topic the workers use/ ],
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

done_testing();
