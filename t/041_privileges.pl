# Privileges and search_path capture.  The database belongs to a non-superuser (who owns
# public in PostgreSQL 15) and a role "mallory" with CREATE on public plants exact-type
# functions, aggregates and operators there that shadow what the workers and the SQL
# functions call.  Each records every call (a table anyone may insert into, and a WARNING in
# the server log) and tries ALTER ROLE mallory SUPERUSER, which succeeds when a superuser
# runs it.  The workers restart and ingest, a superuser with the default search_path runs
# the SQL API, a loader role inserts: mallory must stay powerless and nothing may call the
# plants.  Then the roles: consumers run as tweetlake_worker, which cannot read silver or
# gold; a loader with only INSERT on bronze.tweets feeds silver and gold through the trigger
# but cannot write them itself; PUBLIC and the reader cannot run the generator or the parser.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $node = tweetlake_node('privileges', 'tweetlake.generator_rate' => 0, 'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 500, 'tweetlake.partitions' => 4);

# --- the database belongs to a non-superuser; mallory may create objects in public ------------
$node->safe_psql('postgres', q{
	CREATE ROLE dbowner LOGIN;
	CREATE ROLE mallory LOGIN;
	ALTER DATABASE postgres OWNER TO dbowner;
	SET ROLE dbowner;
	GRANT CREATE ON SCHEMA public TO mallory;
	RESET ROLE;
	SET ROLE mallory;
	CREATE TABLE public.mallory_calls (fn text, caller text, session_caller text, at timestamptz DEFAULT now());
	GRANT INSERT ON public.mallory_calls TO PUBLIC;
});
is(sql_value($node, "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'public'"), 'pg_database_owner',
	'public belongs to the database owner');
is(sql_value($node, "SELECT rolsuper FROM pg_roles WHERE rolname = 'dbowner'"), 'f', 'who is not a superuser');

# The plants.  Each: name, argument types, result type ('setof x' for set-returning), and
# the real call it passes on to, so that a captured caller still gets right answers.
my @functions = (
	[ 'unnest', 'integer[]', 'setof integer', 'pg_catalog.unnest($1)' ],
	[ 'unnest', 'text[]', 'setof text', 'pg_catalog.unnest($1)' ],
	[ 'unnest', 'bigint[]', 'setof bigint', 'pg_catalog.unnest($1)' ],
	[ 'unnest', 'timestamptz[]', 'setof timestamptz', 'pg_catalog.unnest($1)' ],
	[ 'unnest', 'bytea[]', 'setof bytea', 'pg_catalog.unnest($1)' ],
	[ 'array_length', 'integer[], integer', 'integer', 'pg_catalog.array_length($1, $2)' ],
	[ 'array_length', 'text[], integer', 'integer', 'pg_catalog.array_length($1, $2)' ],
	[ 'cardinality', 'text[]', 'integer', 'pg_catalog.cardinality($1)' ],
	[ 'cardinality', 'integer[]', 'integer', 'pg_catalog.cardinality($1)' ],
	[ 'array_position', 'text[], text', 'integer', 'pg_catalog.array_position($1, $2)' ],
	[ 'lower', 'text', 'text', 'pg_catalog.lower($1)' ],
	[ 'upper', 'text', 'text', 'pg_catalog.upper($1)' ],
	[ 'length', 'text', 'integer', 'pg_catalog.length($1)' ],
	[ 'convert_to', 'text, text', 'bytea', 'pg_catalog.convert_to($1, $2::name)' ],
	[ 'convert_from', 'bytea, text', 'text', 'pg_catalog.convert_from($1, $2::name)' ],
	[ 'format', 'text, text, text, text', 'text', 'pg_catalog.format($1, $2, $3, $4)' ],
	[ 'split_part', 'text, text, integer', 'text', 'pg_catalog.split_part($1, $2, $3)' ],
	[ 'regexp_replace', 'text, text, text', 'text', 'pg_catalog.regexp_replace($1, $2, $3)' ],
	[ 'date_trunc', 'text, timestamptz', 'timestamptz', 'pg_catalog.date_trunc($1, $2)' ],
	[ 'current_setting', 'text', 'text', 'pg_catalog.current_setting($1)' ],
	[ 'round', 'numeric, bigint', 'numeric', 'pg_catalog.round($1, $2::integer)' ],
	[ 'to_timestamp', 'bigint', 'timestamptz', 'pg_catalog.to_timestamp($1)' ],
	[ 'array_to_string', 'text[], text', 'text', 'pg_catalog.array_to_string($1, $2)' ]);
# (coalesce, greatest, least and nullif are syntax, not functions: nothing to shadow)
# operators: symbol, left, right, result, real expression
my @operators = (
	[ '=', 'text', 'text', 'boolean', '$1 OPERATOR(pg_catalog.=) $2' ],
	[ '<>', 'text', 'text', 'boolean', '$1 OPERATOR(pg_catalog.<>) $2' ],
	[ '=', 'integer', 'integer', 'boolean', '$1 OPERATOR(pg_catalog.=) $2' ],
	[ '=', 'integer', 'integer[]', 'boolean', '$1 OPERATOR(pg_catalog.=) ANY ($2)' ],
	[ '=', 'integer[]', 'integer[]', 'boolean', '$1 OPERATOR(pg_catalog.=) $2' ],
	[ '=', 'text[]', 'text[]', 'boolean', '$1 OPERATOR(pg_catalog.=) $2' ],
	[ '@>', 'text[]', 'text[]', 'boolean', '$1 OPERATOR(pg_catalog.@>) $2' ],
	[ '&&', 'text[]', 'text[]', 'boolean', '$1 OPERATOR(pg_catalog.&&) $2' ],
	[ '/', 'numeric', 'bigint', 'numeric', '$1 OPERATOR(pg_catalog./) $2::numeric' ],
	[ '+', 'numeric', 'double precision', 'numeric', '$1 OPERATOR(pg_catalog.+) $2::numeric' ]);
# aggregates: name, input type, state expression combining s and v
my @aggregates = (
	[ 'sum', 'numeric', 'coalesce(s, 0) OPERATOR(pg_catalog.+) v' ],
	[ 'sum', 'bigint', 'coalesce(s, 0) OPERATOR(pg_catalog.+) v' ],
	[ 'sum', 'integer', 'coalesce(s, 0) OPERATOR(pg_catalog.+) v' ],
	[ 'sum', 'double precision', 'coalesce(s, 0) OPERATOR(pg_catalog.+) v' ],
	[ 'max', 'text', 'CASE WHEN s IS NULL OR v OPERATOR(pg_catalog.>) s THEN v ELSE s END' ],
	[ 'max', 'integer', 'CASE WHEN s IS NULL OR v OPERATOR(pg_catalog.>) s THEN v ELSE s END' ],
	[ 'max', 'bigint', 'CASE WHEN s IS NULL OR v OPERATOR(pg_catalog.>) s THEN v ELSE s END' ],
	[ 'min', 'date', 'CASE WHEN s IS NULL OR v OPERATOR(pg_catalog.<) s THEN v ELSE s END' ],
	[ 'max', 'date', 'CASE WHEN s IS NULL OR v OPERATOR(pg_catalog.>) s THEN v ELSE s END' ],
	[ 'max', 'timestamptz', 'CASE WHEN s IS NULL OR v OPERATOR(pg_catalog.>) s THEN v ELSE s END' ],
	[ 'count', 'text', 'coalesce(s, 0) OPERATOR(pg_catalog.+) 1' ]);

# Records the call, then tries to make mallory a superuser (it works when a superuser calls).
sub trap
{
	my ($what) = @_;
	return qq{
		INSERT INTO public.mallory_calls (fn, caller, session_caller) VALUES (\$m\$$what\$m\$, current_user, session_user);
		RAISE WARNING 'mallory: % called by %', \$m\$$what\$m\$, current_user;
		BEGIN
			EXECUTE 'ALTER ROLE mallory SUPERUSER';
		EXCEPTION WHEN OTHERS THEN NULL;
		END;};
}

sub plant_sql
{
	my $sql = "SET ROLE mallory;\n";
	my $n = 0;
	for (@functions)
	{
		my ($name, $args, $ret, $real) = @$_;
		my $setof = $ret =~ /^setof /;
		$sql .= "CREATE FUNCTION public.$name($args) RETURNS $ret LANGUAGE plpgsql AS \$f\$ BEGIN "
		  . trap("$name($args)") . ($setof ? " RETURN QUERY SELECT $real;" : " RETURN $real;") . " END \$f\$;\n";
	}
	for (@operators)
	{
		my ($op, $l, $r, $ret, $real) = @$_;
		my $fn = 'mallory_op_' . $n++;
		$sql .= "CREATE FUNCTION public.$fn($l, $r) RETURNS $ret LANGUAGE plpgsql AS \$f\$ BEGIN "
		  . trap("operator $op($l, $r)") . " RETURN $real; END \$f\$;\n"
		  . "CREATE OPERATOR public.$op (LEFTARG = $l, RIGHTARG = $r, FUNCTION = public.$fn);\n";
	}
	for (@aggregates)
	{
		my ($name, $type, $next) = @$_;
		my $fn = 'mallory_agg_' . $n++;
		my $state = $name eq 'count' ? 'bigint' : $type;
		$sql .= "CREATE FUNCTION public.$fn(s $state, v $type) RETURNS $state LANGUAGE plpgsql AS \$f\$ BEGIN "
		  . trap("aggregate $name($type)") . " IF v IS NULL THEN RETURN s; END IF; RETURN $next; END \$f\$;\n"
		  . "CREATE AGGREGATE public.$name($type) (SFUNC = public.$fn, STYPE = $state"
		  . ($name eq 'count' ? ', INITCOND = 0' : '') . ");\n";
	}
	return $sql;
}

# a plant works: called directly it records the call (here by mallory, who gains nothing)
$node->safe_psql('postgres', plant_sql());
is($node->safe_psql('postgres', "SET ROLE mallory; SELECT count(*) FROM public.unnest(ARRAY[1, 2]::integer[]);
                                 SELECT fn FROM public.mallory_calls; TRUNCATE public.mallory_calls"),
	"2\nunnest(integer[])", 'a planted function records its calls (checked by calling one directly)');
my $planted = sql_value($node, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace");
note("$planted functions planted in public");

# --- the workers start over, with the plants in place, and ingest -------------------------------
$node->restart;
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND state = 'consuming 2 of 4 partitions'",
	'2', 'both consumers assigned after the restart');
my $bootstrap = sql_value($node, 'SELECT tweetlake.bootstrap_servers()');
my @tweets = generated_tweets($node, 3000, 41);
kcat_produce($bootstrap, 'tweets', write_messages(\@tweets, "\n"), '\n');
wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', '3000',
	'the consumers store all 3000 messages', 120);

is(sql_value($node, "SELECT string_agg(usename || ' ' || backend_type, ', ' ORDER BY usename)
                     FROM pg_stat_activity WHERE backend_type = 'tweetlake consumer'"),
	'tweetlake_worker tweetlake consumer, tweetlake_worker tweetlake consumer',
	'pg_stat_activity: two "tweetlake consumer" backends, both as tweetlake_worker');
note('tweetlake workers in pg_stat_activity: ' . sql_value($node,
	"SELECT string_agg(backend_type || ' as ' || coalesce(usename::text, '-') || ' (' || coalesce(application_name, '') || ')', ', ' ORDER BY backend_type)
	 FROM pg_stat_activity WHERE backend_type LIKE 'tweetlake%'"));

# --- a superuser with the default search_path runs the SQL API ------------------------------
my $path = q{SET search_path = "$user", public;};
$node->safe_psql('postgres', "$path
	SELECT tweetlake.load_generated(5000, 42);
	SELECT tweetlake.rebuild_gold();
	SELECT * FROM tweetlake.verify();
	SELECT * FROM tweetlake.status;
	SELECT * FROM tweetlake.consumer_lag;
	SELECT * FROM tweetlake.dead_letters_by_minute;
	SELECT * FROM gold.trending_hashtags_view LIMIT 5;
	SELECT * FROM gold.sentiment_by_hour_view LIMIT 5;
	SELECT tweetlake.parse_tweet(t) FROM tweetlake.generate_tweets(20, 43) t;
	SELECT * FROM tweetlake.generate_tweets_jsonc(5, 43);
	SELECT tweetlake.produce(t) FROM tweetlake.generate_tweets(50, 44) t;");
# ... and with public searched before pg_catalog, where even exact-type duplicates win: the
# extension's own functions must not care
$node->safe_psql('postgres', q{SET search_path = public, pg_catalog;
	SELECT tweetlake.load_generated(1000, 45);
	SELECT tweetlake.rebuild_gold();
	SELECT tweetlake.verify();
	TABLE tweetlake.status;
	TABLE tweetlake.consumer_lag;
	SELECT tweetlake.worker_status();
	SELECT tweetlake.partition_status();});
wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', '3050',
	'the 50 messages of produce() are stored too', 60);

# --- a loader that may only INSERT into bronze.tweets -------------------------------------------
$node->safe_psql('postgres', q{
	CREATE ROLE loader LOGIN;
	GRANT USAGE ON SCHEMA bronze TO loader;
	GRANT INSERT ON bronze.tweets TO loader;});
my @loaded = generated_tweets($node, 3, 46);
my $values = join(', ', map { "(\$j\$$_\$j\$)" } @loaded);
my ($rc, $out, $err) = $node->psql('postgres', "INSERT INTO bronze.tweets (raw) VALUES $values",
	extra_params => [ '-U', 'loader' ]);
is($rc . ($err // ''), '0', 'the loader inserts raw messages into bronze.tweets');
my $loaded_ids = join(', ', map { /"tweet_id":"([^"]+)"/ ? "'$1'" : die } @loaded);
is(sql_value($node, "SELECT count(*) FROM silver.tweets WHERE tweet_id IN ($loaded_ids)"), '3',
	"the loader's messages reach silver");
is(sql_value($node, "SELECT count(*) FROM gold.active_users_by_day g JOIN silver.tweets s
                     ON s.user_id = g.user_id AND g.day = tweetlake.utc_day(s.created_at)
                     WHERE s.tweet_id IN ($loaded_ids)"), '3', "and gold");
for my $try (
	[ 'INSERT INTO gold', q{INSERT INTO gold.hourly_activity_summary (hour, total_tweets, unique_users, total_engagement,
	      positive_count, negative_count, neutral_count, sentiment_sum, sentiment_n) VALUES ('2000-01-01', 1, 1, 1, 1, 0, 0, 0, 0)} ],
	[ 'UPDATE gold', 'UPDATE gold.popular_hashtags_by_hour SET tweet_count = 0' ],
	[ 'INSERT INTO silver', q{INSERT INTO silver.tweets (tweet_id, text, created_at, hashtags, mentions, text_length, total_engagement)
	      VALUES ('forged', 'x', now(), '{}', '{}', 1, 0)} ],
	[ 'UPDATE silver', q{UPDATE silver.tweets SET like_count = 0} ],
	[ 'SELECT bronze', 'SELECT count(*) FROM bronze.tweets' ],
	[ 'INSERT INTO the sets', q{INSERT INTO tweetlake.user_hour VALUES (now(), 'forged', 1, ('{}', '{}'), ('{}', '{}'), ('{}', '{}'))} ],
	[ 'generate_tweets', 'SELECT tweetlake.generate_tweets(1)' ],
	[ 'parse_tweet', q{SELECT tweetlake.parse_tweet('{}')} ])
{
	my ($what, $sql) = @$try;
	my ($rc, $out, $err) = $node->psql('postgres', $sql, extra_params => [ '-U', 'loader' ]);
	like($err // '', qr/permission denied/, "the loader cannot $what");
}

# --- the consumers' role ------------------------------------------------------------------------
is(sql_value($node, "SELECT rolsuper::text || rolcreaterole::text || rolcreatedb::text || rolbypassrls::text
                     FROM pg_roles WHERE rolname = 'tweetlake_worker'"), 'falsefalsefalsefalse',
	'tweetlake_worker is no superuser and cannot create roles or databases or bypass RLS');
my @gold = split /\n/, sql_value($node, "SELECT pg_catalog.format('%I.%I', schemaname, tablename) FROM pg_tables
                                         WHERE schemaname IN ('gold', 'silver') ORDER BY 1");
# (the test's own queries call pg_catalog's polymorphic functions by their full names: the
# plants would catch them too)
is(sql_value($node, "SELECT string_agg(t || ' ' || p, ', ') FROM pg_catalog.unnest(ARRAY['" . join("', '", @gold) . "']) t,
                     pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
                     WHERE has_table_privilege('tweetlake_worker', t, p)"),
	'', 'tweetlake_worker has no privilege on any silver or gold table (' . scalar(@gold) . ' tables)');
for my $try ([ 'SELECT silver', 'SELECT count(*) FROM silver.tweets' ],
	[ 'SELECT gold', 'SELECT count(*) FROM gold.hourly_activity_summary' ],
	[ 'UPDATE gold', 'UPDATE gold.user_engagement SET tweets_count = 0' ])
{
	my ($rc, $out, $err) = $node->psql('postgres', $try->[1], extra_params => [ '-U', 'tweetlake_worker' ]);
	like($err // '', qr/permission denied/, "tweetlake_worker cannot $try->[0]");
}

# --- the reader and PUBLIC ------------------------------------------------------------------------
my $gen = 'tweetlake.generate_tweets(bigint, bigint, timestamptz, interval)';
is(sql_value($node, "SELECT has_function_privilege('tweetlake_reader', '$gen', 'EXECUTE')"), 'f',
	'tweetlake_reader cannot execute generate_tweets');
is(sql_value($node, "SELECT has_function_privilege('public', '$gen', 'EXECUTE')::text || ' '
                     || has_function_privilege('public', 'tweetlake.parse_tweet(text)', 'EXECUTE')::text"),
	'false false', 'PUBLIC cannot execute generate_tweets or parse_tweet');
# a role with no grants but USAGE on the schema: refused by the functions' own ACL
$node->safe_psql('postgres', 'CREATE ROLE plain LOGIN; GRANT USAGE ON SCHEMA tweetlake TO plain');
for my $f ('SELECT tweetlake.generate_tweets(1)', q{SELECT tweetlake.parse_tweet('{}')},
	q{SELECT tweetlake.generate_tweets_jsonc(1)})
{
	my ($rc, $out, $err) = $node->psql('postgres', $f, extra_params => [ '-U', 'plain' ]);
	like($err // '', qr/permission denied for function/, "a role with no grants cannot run: $f");
}
like(sql_value($node, "SELECT pg_catalog.array_to_string(setconfig, ',') FROM pg_db_role_setting
                       WHERE setrole = 'tweetlake_reader'::regrole AND setdatabase = 0"),
	qr/statement_timeout=\d+.*temp_file_limit=|temp_file_limit=.*statement_timeout=\d+/,
	'tweetlake_reader has a statement_timeout and a temp_file_limit');
$node->safe_psql('postgres', 'ALTER ROLE tweetlake_reader LOGIN');
($rc, $out, $err) = $node->psql('postgres', "SHOW statement_timeout", extra_params => [ '-U', 'tweetlake_reader' ]);
isnt($out, '0', "a session of tweetlake_reader runs with statement_timeout = $out");

# --- the extension's own functions ---------------------------------------------------------------
my $ext_functions = "FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
                     JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'tweetlake'";
is(sql_value($node, "SELECT count(*) FILTER (WHERE p.prosecdef), string_agg(p.oid::regprocedure::text, ', ')
                       FILTER (WHERE p.prosecdef AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false))
                     $ext_functions") =~ s/\|$//r,
	sql_value($node, "SELECT count(*) FILTER (WHERE p.prosecdef) $ext_functions"),
	'every SECURITY DEFINER function of the extension has SET search_path = pg_catalog, pg_temp');
ok(sql_value($node, "SELECT count(*) $ext_functions WHERE p.oid = 'tweetlake.process_bronze_batch()'::regprocedure AND p.prosecdef") eq '1',
	'the batch trigger function is SECURITY DEFINER');
note('functions of the extension whose body is parsed at call time without a pinned search_path: ' . sql_value($node,
	"SELECT coalesce(string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text), 'none') $ext_functions
	 JOIN pg_language l ON l.oid = p.prolang AND l.lanname IN ('sql', 'plpgsql')
	 WHERE p.prosqlbody IS NULL AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)"));

# --- what the plants saw --------------------------------------------------------------------------
is(sql_value($node, "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"), 'f', 'mallory is not a superuser');
is(sql_value($node, "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT fn || ' by ' || caller, ', '), '')
                     FROM public.mallory_calls"), '0 ', 'no planted function, operator or aggregate was called');
my @hits = slurp_file($node->logfile) =~ /(WARNING:\s+mallory: [^\n]* called by (?!mallory\b)[^\n]*)/g;
is(scalar @hits, 0, 'the server log shows no call of a plant (including ones rolled back)')
  or diag(join("\n", @hits[ 0 .. ($#hits < 9 ? $#hits : 9) ]));
is(sql_value($node, 'SELECT count(*) FROM silver.tweets'), 3000 + 5000 + 1000 + 50 + 3, 'all the data arrived in silver');
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify(): gold equals a full recompute');

# --- planted before CREATE EXTENSION: the install script must not bind to the plants --------
$node->safe_psql('postgres', 'CREATE DATABASE early OWNER dbowner');
$node->safe_psql('early', q{
	SET ROLE dbowner;
	GRANT CREATE ON SCHEMA public TO mallory;
	SET ROLE mallory;
	CREATE TABLE public.mallory_calls (fn text, caller text, session_caller text, at timestamptz DEFAULT now());
	GRANT INSERT ON public.mallory_calls TO PUBLIC;} . plant_sql());
$node->safe_psql('early', 'CREATE EXTENSION tweetlake');
$node->safe_psql('early', q{SET search_path = "$user", public;
	SELECT tweetlake.load_generated(2000, 47);
	SELECT tweetlake.rebuild_gold();
	SELECT tweetlake.verify();});
$node->safe_psql('early', 'GRANT USAGE ON SCHEMA bronze TO loader; GRANT INSERT ON bronze.tweets TO loader');
($rc, $out, $err) = $node->psql('early', "INSERT INTO bronze.tweets (raw) VALUES $values", extra_params => [ '-U', 'loader' ]);
is($rc . ($err // ''), '0', 'the loader inserts there too');
is(sql_value($node, "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"), 'f',
	'plants made before CREATE EXTENSION: mallory is still not a superuser');
is($node->safe_psql('early', "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT fn || ' by ' || caller, ', '), '')
                             FROM public.mallory_calls"), '0 ', 'and none of them was called');
is($node->safe_psql('early', 'SELECT count(*) FROM silver.tweets'), '2003', 'the data arrived there too');
is($node->safe_psql('early', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify() there: gold equals a full recompute');
@hits = slurp_file($node->logfile) =~ /(WARNING:\s+mallory: [^\n]* called by (?!mallory\b)[^\n]*)/g;
is(scalar @hits, 0, 'still no call of a plant in the server log')
  or diag(join("\n", @hits[ 0 .. ($#hits < 9 ? $#hits : 9) ]));

$node->stop('fast');
done_testing();
