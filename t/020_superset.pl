# Apache Superset on a live tweetlake: scripts/superset.sh imports superset/bundle, the REST
# API shows every dashboard and chart and each chart's query returns the columns and the
# figures gold holds, headless Chromium renders every dashboard without an error box (PNGs
# kept in tmp_check/superset-screenshots), and the read-only role it connects as cannot write
# or read raw payloads.
use strict;
use warnings;
use HTTP::Tiny;
use IPC::Run ();
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

# scripts/test.sh copies scripts/ and superset/ next to t/ and installs the virtualenv.
my $root = -d 'superset' ? '.' : $ENV{TWEETLAKE_SRC};
my $venv = $ENV{SUPERSET_VENV} // "$ENV{TWEETLAKE_SRC}/build/superset-venv";
if (!-x "$venv/bin/superset")
{
	fail("Superset is not installed in $venv (scripts/superset.sh install; make test does it)");
	done_testing();
	exit;
}

my $node = tweetlake_node('superset',
	listen_addresses => "'127.0.0.1'",
	'tweetlake.generator_rate' => 1000,
	'tweetlake.consumers' => 1);
# Superset connects over TCP as tweetlake_reader, with a password.
$node->append_conf('pg_hba.conf', "host all tweetlake_reader 127.0.0.1/32 scram-sha-256\n"
	  . "host all superset_acme 127.0.0.1/32 scram-sha-256\n");
$node->reload;

# Two days of history, live tweets on top, and a few messages that land as dead letters.
$node->safe_psql('postgres',
	"SELECT tweetlake.load_generated(40000, 11, date_trunc('hour', now()) - interval '47 hours', interval '47 hours')");
wait_for($node, "SELECT tweetlake.bootstrap_servers() <> ''", 't', 'embedded broker up');
my $bootstrap = sql_value($node, 'SELECT tweetlake.bootstrap_servers()');
my $bad = write_messages([ '{"tweet_id": "x1", "text": ', 'not json', '{"tweet_id": 5}' ], "\n");
kcat_produce($bootstrap, 'tweets', $bad, "\n");
wait_for($node, 'SELECT count(*) >= 3 FROM bronze.dead_letters', 't', 'dead letters from the bad messages');
wait_for($node, 'SELECT count(*) > 45000 FROM silver.tweets', 't', 'live tweets on top of the history');

# --- Superset, set up and started by the bootstrap script ---------------------------
my $home = PostgreSQL::Test::Utils::tempdir . '/superset-home';
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $admin_pw = join '', map { ('a' .. 'z', 0 .. 9)[ rand 36 ] } 1 .. 24;
local $ENV{SUPERSET_VENV} = $venv;
local $ENV{SUPERSET_HOME} = $home;
local $ENV{SUPERSET_PORT} = $port;
local $ENV{SUPERSET_ADMIN_PASSWORD} = $admin_pw;
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'postgres';
local $ENV{SUPERSET_PGHOST} = '127.0.0.1';
# The superuser's credentials, for the setup only: gunicorn must not keep them (the node
# trusts its socket, so the password is never asked for; it is only looked for below).
my $pg_password = 'pgpw-' . join '', map { ('a' .. 'z', 0 .. 9)[ rand 36 ] } 1 .. 20;
local $ENV{PGUSER} = scalar getpwuid($<);
local $ENV{PGPASSWORD} = $pg_password;
my ($out, $err) = ('', '');
my $started = IPC::Run::run([ 'bash', "$root/scripts/superset.sh", 'start' ], '>', \$out, '2>', \$err,
	IPC::Run::timeout(900));
ok($started, 'scripts/superset.sh start') or diag("$out\n$err");
# (END runs after the file-level `local`s above are undone: it names the home again)
sub stop_superset
{
	local $ENV{SUPERSET_HOME} = $home;
	local $ENV{SUPERSET_VENV} = $venv;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'bash', "$root/scripts/superset.sh", 'stop' ], '>', \$o, '2>', \$e);
	return $o . $e;
}
END { stop_superset() if $home && -f "$home/superset.pid"; }
like($out, qr/imported 1 databases, \d+ datasets, 13 charts, 4 dashboards/, 'the bundle imported: 13 charts, 4 dashboards');
like($out, qr{http://127\.0\.0\.1:$port/superset/dashboard/tweet-analytics-overview/}, 'the dashboard URL is printed');

# Running it again changes nothing and does not fail: the script is idempotent.
ok(IPC::Run::run([ 'bash', "$root/scripts/superset.sh", 'start' ], '>', \$out, '2>', \$err, IPC::Run::timeout(600)),
	'scripts/superset.sh start a second time') or diag("$out\n$err");
like($out, qr/already running/, 'the second start finds the server running');

# --- what the running server keeps: no setup credentials, request limits, headers ------
chomp(my $master = slurp_file("$home/superset.pid"));
my $reader_pw = `sed -n 's/^TWEETLAKE_READER_PASSWORD=//p' $home/secrets.env`;
chomp $reader_pw;
# gunicorn's master and its workers (children of the master)
my @gunicorn = ($master, grep {
		my $stat = eval { slurp_file("/proc/$_/stat") } // '';
		$stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $master } map { m{/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*'));
cmp_ok(scalar @gunicorn, '>=', 3, 'gunicorn runs: a master and its workers (' . join(' ', @gunicorn) . ')');
for my $pid (@gunicorn)
{
	my $environ = eval { slurp_file("/proc/$pid/environ") };
	ok(defined $environ, "gunicorn $pid: its environment can be read") or next;
	my %env = map { /^([^=]*)=(.*)$/s ? ($1 => $2) : () } split /\0/, $environ;
	my @kept = grep { exists $env{$_} } qw(PGUSER PGPASSWORD PGHOST PGPORT PGDATABASE
		SUPERSET_ADMIN_PASSWORD TWEETLAKE_READER_PASSWORD POSTGRES_PASSWORD);
	is("@kept", '', "gunicorn $pid: no PG*, admin or reader password in its environment");
	my $cmdline = eval { slurp_file("/proc/$pid/cmdline") } // '';
	my @secrets = grep { index($environ . $cmdline, $_->[1]) >= 0 }
	  ([ 'PGPASSWORD', $pg_password ], [ 'the admin password', $admin_pw ], [ 'the reader password', $reader_pw ]);
	is(join(', ', map { $_->[0] } @secrets), '', "gunicorn $pid: none of those secrets anywhere in its environment or arguments");
	ok(defined $env{SUPERSET_SECRET_KEY}, "gunicorn $pid: SUPERSET_SECRET_KEY, which it needs, is there");
}
my $cmdline = join ' ', split /\0/, slurp_file("/proc/$master/cmdline");
like($cmdline, qr/--limit-request-line 8190 --limit-request-field_size 8190 --limit-request-fields 100/,
	'gunicorn runs with request size limits');

my $base = "http://127.0.0.1:$port";
my $http = HTTP::Tiny->new(timeout => 120);
my $r = $http->get("$base/health?pad=" . ('x' x 6000));
is($r->{status}, 200, 'a 6 kB request line (longer than gunicorn\'s default 4094) is served');
$r = $http->get("$base/health?pad=" . ('x' x 9000));
is($r->{status}, 414, 'a 9 kB request line is refused by gunicorn (414 URI Too Long)');
$r = $http->get("$base/health", { headers => { 'X-Pad' => 'x' x 9000 } });
is($r->{status}, 431, 'a 9 kB header is refused by gunicorn (431 Request Header Fields Too Large)');
$r = $http->get("$base/health", { headers => { map { ("X-Pad-$_" => 'x') } 1 .. 120 } });
is($r->{status}, 431, '120 headers are refused by gunicorn (431)');

$r = $http->get("$base/login/");
is($r->{status}, 200, 'the login page');
my $csp = $r->{headers}{'content-security-policy'} // '';
like($csp, qr/(^|;)\s*default-src 'self'/, "it carries a Content-Security-Policy with default-src 'self'") or diag explain $r->{headers};
like($csp, qr/(^|;)\s*script-src 'self' 'strict-dynamic' 'nonce-[^']+'/, '  scripts only from Superset, with a nonce');
like($csp, qr/(^|;)\s*object-src 'none'/, "  object-src 'none'");
like($csp, qr/(^|;)\s*frame-ancestors 'self'/, "  frame-ancestors 'self'");
is($r->{headers}{'x-frame-options'}, 'SAMEORIGIN', 'and X-Frame-Options: SAMEORIGIN');
$r = $http->get("$base/api/v1/dashboard/");
like($r->{headers}{'content-security-policy'} // '', qr/default-src 'self'/, 'the API answers carry the policy too');

# --- REST API ----------------------------------------------------------------------
my $login = $http->post("$base/api/v1/security/login", {
		headers => { 'Content-Type' => 'application/json' },
		content => encode_json({ username => 'admin', password => $admin_pw, provider => 'db', refresh => JSON::PP::false }) });
is($login->{status}, 200, 'API login as the admin of SUPERSET_ADMIN_PASSWORD');
my $auth = { Authorization => 'Bearer ' . decode_json($login->{content})->{access_token},
	'Content-Type' => 'application/json' };
sub api
{
	my ($method, $path, $body) = @_;
	my $r = $http->request($method, "$base$path",
		{ headers => $auth, defined $body ? (content => encode_json($body)) : () });
	return ($r->{status}, eval { decode_json($r->{content}) } // { raw => $r->{content} });
}

my (undef, $dbs) = api('GET', '/api/v1/database/');
my ($db) = grep { $_->{database_name} eq 'tweetlake' } @{ $dbs->{result} };
ok($db, 'database connection "tweetlake"');
my (undef, $dbd) = api('GET', "/api/v1/database/$db->{id}/connection");
like($dbd->{result}{sqlalchemy_uri} // '', qr{^postgresql\+psycopg2://tweetlake_reader:[^\@]*\@127\.0\.0\.1:\d+/postgres$},
	'it connects straight to Postgres as tweetlake_reader');

my (undef, $dash) = api('GET', '/api/v1/dashboard/?q=(page_size:100)');
is(join(',', sort map { $_->{dashboard_title} } @{ $dash->{result} }),
	'Pipeline Health,Real-time Trends,Tweet Analytics Overview,User Engagement Analysis',
	'the four dashboards');
for my $d (@{ $dash->{result} })
{
	my (undef, $c) = api('GET', "/api/v1/dashboard/$d->{id}/charts");
	ok(@{ $c->{result} } >= 3, "$d->{dashboard_title}: " . scalar(@{ $c->{result} }) . ' charts');
}
my (undef, $rt) = api('GET', '/api/v1/dashboard/real-time-trends');
is(decode_json($rt->{result}{json_metadata})->{refresh_frequency}, 10, 'Real-time Trends refreshes itself every 10 s');

# Each chart: its dataset (gold or a tweetlake status view, never silver or bronze), and the
# columns its saved query returns.
my %expect = (
	'Tweet volume by hour'         => [ 'gold',      'hour,tweets' ],
	'Top hashtags'                 => [ 'gold',      'hashtag,tweets' ],
	'Regional activity'            => [ 'gold',      'region,tweets' ],
	'Sentiment distribution'       => [ 'gold',      'sentiment_category,tweets' ],
	'Top users by engagement'      => [ 'gold',      'user_id,username,total_engagement,tweets_count,followers_count' ],
	'Engagement by user influence' => [ 'gold',      'influence_level,avg_engagement_per_tweet' ],
	'Tweet type distribution'      => [ 'gold',      'tweet_type,tweets' ],
	'Trending hashtags (24 h)'     => [ 'gold',      'hashtag,tweets' ],
	'Language performance'         => [ 'gold',      'language,tweets,avg_engagement_per_tweet,avg_text_length' ],
	'Hourly trending hashtags'     => [ 'gold',      'hour,hashtag,tweets,rank' ],
	'Ingest rate'                  => [ 'tweetlake', 'messages_per_s' ],
	# a series per source: a column each
	'Consumer lag by partition'    => [ 'tweetlake', qr/^partition(,[a-z][^,]*)+$/ ],
	# a series per reason: a column each
	'Dead letters over time'       => [ 'tweetlake', qr/^minute(,[a-z][^,]*)+$/ ]);
my (undef, $charts) = api('GET', '/api/v1/chart/?q=(page_size:100)');
is(join(',', sort map { $_->{slice_name} } @{ $charts->{result} }), join(',', sort keys %expect), 'the 13 charts');

my %data;
sub chart_data
{
	my ($c) = @_;
	my (undef, $full) = api('GET', "/api/v1/chart/$c->{id}");
	my $qc = decode_json($full->{result}{query_context});
	$qc->{datasource} = { id => $c->{datasource_id}, type => 'table' };
	$qc->{force} = JSON::PP::true;
	my ($status, $r) = api('POST', '/api/v1/chart/data', $qc);
	return ($status, $r);
}
for my $c (sort { $a->{slice_name} cmp $b->{slice_name} } @{ $charts->{result} })
{
	my $name = $c->{slice_name};
	next unless $expect{$name};
	my (undef, $ds) = api('GET', "/api/v1/dataset/$c->{datasource_id}");
	is($ds->{result}{schema}, $expect{$name}[0], "$name reads $expect{$name}[0].$ds->{result}{table_name}");
	my ($status, $r) = chart_data($c);
	is($status, 200, "$name: data query answers") or diag(explain($r));
	my $q = $r->{result}[0] // {};
	like(join(',', @{ $q->{colnames} // [] }), ref $expect{$name}[1] ? $expect{$name}[1] : qr/^\Q$expect{$name}[1]\E$/,
		"$name: columns");
	ok(($q->{rowcount} // 0) > 0, "$name: " . ($q->{rowcount} // 0) . ' rows');
	$data{$name} = $c;
}

# --- the dashboards in a real browser, with live data ---------------------------------
my $shots = "${PostgreSQL::Test::Utils::tmp_check}/superset-screenshots";
my @slugs = qw(tweet-analytics-overview user-engagement-analysis real-time-trends pipeline-health);
($out, $err) = ('', '');
IPC::Run::run([ "$venv/bin/python", "$root/superset/check_dashboards.py", $base, 'admin', $shots, @slugs ],
	'>', \$out, '2>', \$err, IPC::Run::timeout(900));
my @seen = map { decode_json($_) } grep { /^\{/ } split /\n/, $out;
is(scalar(@seen), 4, 'Chromium opened the four dashboards') or diag($err);
for my $d (@seen)
{
	ok(-s $d->{png} > 20_000, "$d->{slug}: screenshot $d->{png}");
	is(scalar(@{ $d->{charts} }), $d->{slug} eq 'tweet-analytics-overview' ? 4 : 3, "$d->{slug}: every chart on the page");
	for my $c (@{ $d->{charts} })
	{
		ok($c->{rendered} && !$c->{error} && !$c->{empty},
			"$d->{slug}: '$c->{name}' rendered with data")
		  or diag(explain($c));
	}
	is_deeply($d->{page_errors}, [], "$d->{slug}: no script errors on the page");
	# Superset 4.1's menu always loads a telemetry pixel from scarf.sh; superset_config.py's
	# img-src leaves that host out on purpose, so the browser blocks it and says so
	my @blocked = grep { !m{^Loading the image 'https://apachesuperset\.gateway\.scarf\.sh/pixel/} } @{ $d->{csp_violations} };
	is_deeply(\@blocked, [], "$d->{slug}: nothing the Content-Security-Policy had to block but Superset's telemetry pixel");
}

# --- the figures: quiet pipeline, then Superset's answers against SQL on gold ---------
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
wait_for($node, "SELECT state FROM tweetlake.status WHERE role = 'generator'", 'stopped', 'generator stopped');
wait_for($node, 'SELECT sum(lag) FROM tweetlake.consumer_lag', '0', 'consumer caught up');
my $rows = sub {
	my ($name) = @_;
	my (undef, $r) = chart_data($data{$name});
	return $r->{result}[0]{data};
};
my $volume = 0;
$volume += $_->{tweets} for @{ $rows->('Tweet volume by hour') };
is($volume, sql_value($node, 'SELECT count(*) FROM silver.tweets'), "Tweet volume by hour adds up to every tweet in silver ($volume)");
my @top = sort { $b->{tweets} <=> $a->{tweets} } @{ $rows->('Top hashtags') };
is(join(',', map { $_->{tweets} } @top),
	sql_value($node, "SELECT string_agg(n::text, ',' ORDER BY n DESC) FROM (SELECT sum(tweet_count) AS n
	                  FROM gold.popular_hashtags_by_hour GROUP BY hashtag ORDER BY 1 DESC LIMIT 20) t"),
	"Top hashtags: the 20 biggest hashtag counts of gold, #$top[0]{hashtag} first");
is($top[0]{tweets}, sql_value($node, "SELECT count(*) FROM silver.tweets WHERE '$top[0]{hashtag}' = ANY (hashtags)"),
	"Top hashtags: #$top[0]{hashtag} is in as many tweets as silver says");
my @users = @{ $rows->('Top users by engagement') };
is(join(',', map { $_->{total_engagement} } @users),
	sql_value($node, "SELECT string_agg(e::text, ',' ORDER BY e DESC) FROM (SELECT sum(total_engagement) AS e
	                  FROM silver.tweets WHERE user_id IS NOT NULL GROUP BY user_id ORDER BY 1 DESC LIMIT 50) t"),
	'Top users by engagement: the 50 largest per-user totals that silver gives, largest first');
is("$users[0]{tweets_count}", sql_value($node, "SELECT count(*) FROM silver.tweets WHERE user_id = '$users[0]{user_id}'"),
	"Top users by engagement: $users[0]{username} has as many tweets as silver says");
my $dead = 0;
for my $row (@{ $rows->('Dead letters over time') })
{
	$dead += $row->{$_} // 0 for grep { $_ ne 'minute' } keys %$row;
}
is($dead, sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), "Dead letters over time counts every dead letter ($dead)");
my $lag = $rows->('Consumer lag by partition');
is(join(',', map { my $r = $_; "$r->{partition}:" . join('/', map { "$_=$r->{$_}" } sort grep { $_ ne 'partition' } keys %$r) } @$lag),
	'0:default=0,1:default=0,2:default=0,3:default=0',
	'Consumer lag by partition: the source default\'s four partitions, none behind');
is(scalar(grep { $_->{tweets} > 0 } @{ $rows->('Regional activity') }),
	sql_value($node, "SELECT count(DISTINCT coalesce(region, 'unknown')) FROM silver.tweets"), 'Regional activity: a bar per region');

# --- tweetlake_reader reads gold and status, writes nothing, sees no raw payloads -------
my $as_reader = sub {
	my ($sql) = @_;
	local $ENV{PGPASSWORD} = $reader_pw;
	my ($rc, $o, $e) = $node->psql('postgres', $sql,
		connstr => "host=127.0.0.1 port=" . $node->port . " dbname=postgres user=tweetlake_reader");
	return ($rc, $o, $e);
};
my ($rc, $o, $e) = $as_reader->('SELECT count(*) > 0 FROM gold.hourly_activity_summary');
is("$rc $o", '0 t', 'tweetlake_reader reads gold over TCP with its password');
($rc, $o) = $as_reader->("SELECT count(*) FROM tweetlake.status WHERE role = 'consumer'");
is("$rc $o", '0 1', 'tweetlake_reader reads tweetlake.status');
for my $case (
	[ "INSERT INTO gold.hourly_activity_summary (hour) VALUES (now())", qr/permission denied for table hourly_activity_summary/ ],
	[ 'UPDATE silver.tweets SET text = NULL', qr/permission denied for table tweets/ ],
	[ 'DELETE FROM gold.popular_hashtags_by_hour', qr/permission denied for table popular_hashtags_by_hour/ ],
	[ 'SELECT raw FROM bronze.tweets LIMIT 1', qr/permission denied for schema bronze/ ],
	[ 'SELECT raw FROM bronze.dead_letters LIMIT 1', qr/permission denied for schema bronze/ ],
	[ 'CREATE TABLE gold.mine (x int)', qr/permission denied for schema gold/ ])
{
	($rc, $o, $e) = $as_reader->($case->[0]);
	like($e, $case->[1], "tweetlake_reader: $case->[0] is refused");
}

# --- a tenant's Superset: the same dashboards, its tenant's rows only (0.13.0) -----------
# Tenant acme's tweets beside the default tenant's; SUPERSET_TENANT=acme sets up a second
# Superset that connects as superset_acme, granted acme alone.
$node->safe_psql('postgres', "SELECT tweetlake.load_generated(3000, 77, date_trunc('hour', now()) - interval '5 hours',
                                                           interval '5 hours', tenant => 'acme')");
my $acme_tweets = sql_value($node, "SELECT count(*) FROM silver.tweets WHERE tenant = 'acme'");
my $all_tweets = sql_value($node, 'SELECT count(*) FROM silver.tweets');
my $acme_home = PostgreSQL::Test::Utils::tempdir . '/superset-home-acme';
my $acme_port = PostgreSQL::Test::Cluster::get_free_port();
{
	local $ENV{SUPERSET_TENANT} = 'acme';
	local $ENV{SUPERSET_HOME} = $acme_home;
	local $ENV{SUPERSET_PORT} = $acme_port;
	ok(IPC::Run::run([ 'bash', "$root/scripts/superset.sh", 'start' ], '>', \$out, '2>', \$err, IPC::Run::timeout(900)),
		"SUPERSET_TENANT=acme scripts/superset.sh start") or diag("$out\n$err");
}
END
{
	if ($acme_home && -f "$acme_home/superset.pid")
	{
		local $ENV{SUPERSET_HOME} = $acme_home;
		local $ENV{SUPERSET_VENV} = $venv;
		IPC::Run::run([ 'bash', "$root/scripts/superset.sh", 'stop' ], '>', \my $o, '2>', \my $e);
	}
}
like($out, qr/imported 1 databases, \d+ datasets, 10 charts, 3 dashboards .* -> superset_acme\@/,
	"acme's bundle: the charts on gold (not the status views' three), as superset_acme");
is(sql_value($node, "SELECT string_agg(tenant, ',') FROM tweetlake.tenant_grants WHERE role = 'superset_acme'::regrole"),
	'acme', 'superset_acme is granted acme alone');
{
	my $abase = "http://127.0.0.1:$acme_port";
	my $alogin = $http->post("$abase/api/v1/security/login", {
			headers => { 'Content-Type' => 'application/json' },
			content => encode_json({ username => 'admin', password => $admin_pw, provider => 'db', refresh => JSON::PP::false }) });
	is($alogin->{status}, 200, "acme's Superset: API login");
	# api() and chart_data() ask the Superset of $base as $auth: acme's, for this block
	my ($main_base, $main_auth) = ($base, $auth);
	$base = $abase;
	$auth = { Authorization => 'Bearer ' . decode_json($alogin->{content})->{access_token},
		'Content-Type' => 'application/json' };
	my (undef, $adash) = api('GET', '/api/v1/dashboard/?q=(page_size:100)');
	is(join(',', sort map { $_->{dashboard_title} } @{ $adash->{result} }),
		'Real-time Trends,Tweet Analytics Overview,User Engagement Analysis', "acme's dashboards: all but Pipeline Health");
	my (undef, $acharts) = api('GET', '/api/v1/chart/?q=(page_size:100)');
	my %by_name = map { $_->{slice_name} => $_ } @{ $acharts->{result} };
	my (undef, $r) = chart_data($by_name{'Tweet volume by hour'});
	my $sum = 0;
	$sum += $_->{tweets} for @{ $r->{result}[0]{data} // [] };
	is($sum, $acme_tweets, "acme's Tweet volume by hour adds up to acme's $acme_tweets tweets (all tenants: $all_tweets)");
	(undef, $r) = chart_data($by_name{'Top users by engagement'});
	my @ausers = @{ $r->{result}[0]{data} // [] };
	is(join(',', map { $_->{total_engagement} } @ausers),
		sql_value($node, "SELECT string_agg(e::text, ',' ORDER BY e DESC) FROM (SELECT sum(total_engagement) AS e
		                  FROM silver.tweets WHERE tenant = 'acme' AND user_id IS NOT NULL
		                  GROUP BY user_id ORDER BY 1 DESC LIMIT 50) t"),
		"acme's Top users by engagement: acme's 50 largest per-user totals, nobody else's");
	(undef, $r) = chart_data($by_name{'Top hashtags'});
	my @atop = sort { $b->{tweets} <=> $a->{tweets} } @{ $r->{result}[0]{data} // [] };
	is(join(',', map { $_->{tweets} } @atop),
		sql_value($node, "SELECT string_agg(n::text, ',' ORDER BY n DESC) FROM (SELECT sum(tweet_count) AS n
		                  FROM gold.popular_hashtags_by_hour WHERE tenant = 'acme' GROUP BY hashtag ORDER BY 1 DESC LIMIT 20) t"),
		"acme's Top hashtags: acme's 20 biggest hashtag counts");
	($base, $auth) = ($main_base, $main_auth);
}
(undef, my $after) = chart_data($data{'Tweet volume by hour'});
my $all_sum = 0;
$all_sum += $_->{tweets} for @{ $after->{result}[0]{data} // [] };
is($all_sum, $all_tweets, "the first Superset (tweetlake_reader) still shows every tenant's tweets ($all_tweets)");
{
	local $ENV{SUPERSET_HOME} = $acme_home;
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'bash', "$root/scripts/superset.sh", 'stop' ], '>', \$o, '2>', \$e);
	like($o, qr/stopped/, "acme's Superset stopped");
}

# --- stop ---------------------------------------------------------------------------------
chomp(my $gunicorn = slurp_file("$home/superset.pid"));
like(stop_superset(), qr/stopped/, 'scripts/superset.sh stop');
ok(!kill(0, $gunicorn), "Superset (gunicorn $gunicorn) is gone");
ok(!-e "$home/superset.pid", 'and its pid file');
$node->stop('fast');
done_testing();
