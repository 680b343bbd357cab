# Hostile input from an unprivileged Kafka client (kcat with no database access) through a
# real Apache Kafka broker into two consumers.  Poison messages and their relatives: key
# columns at the largest length the parser accepts (they must reach gold) and one byte more
# (dead letters), a 3,300-byte region, numeric extremes in every numeric field, subnormal
# sentiments and averages that would underflow, duplicate tweet_id keys, NUL bytes and
# invalid UTF-8.  Each is followed by good messages on its partition that must reach gold
# within seconds.  Then a poison the parser cannot know about (a CHECK constraint on
# silver), and an environmental stall (INSERT revoked from the workers' role) that must be
# visible, create no dead letters, and drain once fixed.  At the end every Kafka offset is
# stored exactly once and gold equals a full recompute.
use strict;
use warnings;
use Encode ();
use JSON::PP ();
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
my $bootstrap = $kafka->{bootstrap};
kafka_topic($kafka, 'tweets', 4);

my $node = tweetlake_node('hostile',
	'tweetlake.brokers' => "'$bootstrap'",
	'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 200,
	'tweetlake.batch_timeout_ms' => 50);
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND state = 'consuming 2 of 4 partitions'",
	'2', 'both consumers assigned');
my $consumer_pids = sql_value($node,
	"SELECT string_agg(pid::text, ',' ORDER BY worker) FROM tweetlake.status WHERE role = 'consumer'");

srand(40);
my $json = JSON::PP->new->allow_nonref->ascii;    # \u escapes: the message stays ASCII
sub jstr { return $json->encode($_[0]); }
sub letters { my ($n) = @_; return join '', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. $n; }
# incompressible 4-byte UTF-8 (CJK Extension B, caseless), as raw bytes
sub wide { my ($n) = @_; return Encode::encode('UTF-8', join '', map { chr(0x20000 + int(rand(0xA6D0))) } 1 .. $n); }

# An hour of its own for each thing checked in gold: 2031-01-01 00:00 UTC + $i hours.
sub hour_at
{
	my ($i) = @_;
	my @t = gmtime(1924992000 + 3600 * $i);    # 2031-01-01T00:00:00Z
	return sprintf('%04d-%02d-%02dT%02d:00:00Z', $t[5] + 1900, $t[4] + 1, $t[3], $t[2]);
}

# A message from its top-level fields: [key, raw JSON value] pairs, kept in this order.
sub message { my @kv = @_; my @p; while (my ($k, $v) = splice(@kv, 0, 2)) { push @p, jstr($k) . ":$v"; } return '{' . join(',', @p) . '}'; }
sub tweet
{
	my ($id, $hour, @more) = @_;
	return message(tweet_id => jstr($id), text => jstr("about $id"), created_at => jstr($hour), @more);
}

# --- the good neighbours ------------------------------------------------------------------
my $good_n = 0;
my %good_per_round;
sub good
{
	my ($round) = @_;
	$good_n++;
	$good_per_round{$round}++;
	return tweet("good-$good_n", hour_at(5000 + $round), region => '"Europe"', language => '"en"',
		hashtags => '["fine"]', mentions => '["friend"]', like_count => 3,
		user => message(user_id => jstr('good-user-' . ($good_n % 7)), followers_count => 10));
}

# Expected fates, kept in the database to be checked by SQL: accept (in silver, no dead
# letter), reject (one dead letter whose reason matches), either (exactly one of the two).
$node->safe_psql('postgres', "CREATE SCHEMA t040;
	CREATE TABLE t040.expect (round int, label text, expect text, ids text[], reason text, raw bytea)");
my %labels;
sub expect_row
{
	my ($round, $label, $expect, $ids, $reason, $raw) = @_;
	die "label $label twice" if $labels{$label}++;
	my $ids_sql = 'ARRAY[' . join(',', map { "decode('" . unpack('H*', $_) . "', 'hex')" } @$ids) . ']::bytea[]';
	$node->safe_psql('postgres', "INSERT INTO t040.expect SELECT $round, \$q\$$label\$q\$, '$expect', "
		. "ARRAY(SELECT convert_from(b, 'UTF8') FROM unnest($ids_sql) b), "
		. (defined $reason ? "\$q\$$reason\$q\$" : 'NULL') . ", decode('" . unpack('H*', $raw) . "', 'hex')");
}

# Sends a round: each hostile message followed by two good ones on the same partition, the
# partitions taken in turn.  Returns after kcat has delivered everything.
my $kcat_user;
sub send_round
{
	my ($round, @hostile) = @_;    # each: [label, expect, [ids], reason regex, raw]
	my @per_partition = ([], [], [], []);
	my $i = 0;
	for my $h (@hostile)
	{
		my ($label, $expect, $ids, $reason, $raw) = @$h;
		expect_row($round, $label, $expect, $ids, $reason, $raw);
		push @{ $per_partition[ $i++ % 4 ] }, $raw, good($round), good($round);
	}
	for my $p (0 .. 3)
	{
		next unless @{ $per_partition[$p] };
		$kcat_user = kcat_produce_unprivileged($bootstrap, 'tweets', $per_partition[$p], $p);
	}
}

# Every good message of the round in gold within 30 s, then each hostile message's fate.
sub check_round
{
	my ($round, $what) = @_;
	my $hour = hour_at(5000 + $round);
	wait_for($node, "SELECT total_tweets FROM gold.hourly_activity_summary WHERE hour = '$hour'",
		$good_per_round{$round}, "$what: the $good_per_round{$round} good messages behind them reach gold", 30);
	my @rows = split /\n/, $node->safe_psql('postgres', qq{
		SELECT concat_ws(E'\x1f', e.label, e.expect, coalesce(e.reason, ''),
		       (SELECT count(*) FROM silver.tweets s WHERE s.tweet_id = ANY (e.ids)),
		       (SELECT count(*) FROM bronze.dead_letters d WHERE d.raw = e.raw),
		       coalesce((SELECT string_agg(left(d.reason, 200), ' / ') FROM bronze.dead_letters d WHERE d.raw = e.raw), ''))
		FROM t040.expect e WHERE e.round = $round ORDER BY e.label});
	my @wrong;
	for (@rows)
	{
		my ($label, $expect, $reason_re, $in_silver, $dead, $reasons) = split /\x1f/, $_, 6;
		my $got = $in_silver == 1 && $dead == 0 ? 'accepted'
		  : $in_silver == 0 && $dead == 1 ? "dead letter ($reasons)"
		  : "in silver $in_silver times, $dead dead letters ($reasons)";
		my $ok = $expect eq 'accept' ? $got eq 'accepted'
		  : $expect eq 'reject' ? ($in_silver == 0 && $dead == 1 && $reasons =~ /$reason_re/)
		  : ($in_silver + $dead == 1);
		push @wrong, "$label: expected $expect" . ($expect eq 'reject' ? " /$reason_re/" : '') . ", got $got"
		  unless $ok;
		note("$label: $got") if $expect eq 'either' && $ok;
	}
	ok(!@wrong, "$what: every hostile message has its expected fate (" . scalar(@rows) . ' checked)')
	  or diag(join("\n", @wrong));
	my $stalls = try_sql($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer'
	                             AND (retries > 0 OR stalled_since IS NOT NULL)");
	is($stalls, '0', "$what: no consumer is stalled or retrying");
	is(sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY worker) FROM tweetlake.status WHERE role = 'consumer'"),
		$consumer_pids, "$what: the consumers never restarted");
}

# --- 1. key columns at the parser's limits ---------------------------------------------------
# The largest length the parser accepts for each key column, found by bisection over
# tweetlake.parse_tweet (the limits are the parser's business; whatever it accepts must fit
# every index on the way to gold).  $wide: in 4-byte characters instead of ASCII letters.
my %field_template = (
	region     => '{"tweet_id":"lim","text":"t","created_at":"2031-01-01T00:00:00Z","region":"@@"}',
	language   => '{"tweet_id":"lim","text":"t","created_at":"2031-01-01T00:00:00Z","language":"@@"}',
	tweet_type => '{"tweet_id":"lim","text":"t","created_at":"2031-01-01T00:00:00Z","tweet_type":"@@"}',
	hashtag    => '{"tweet_id":"lim","text":"t","created_at":"2031-01-01T00:00:00Z","hashtags":["@@"]}',
	mention    => '{"tweet_id":"lim","text":"t","created_at":"2031-01-01T00:00:00Z","mentions":["@@"]}',
	user_id    => '{"tweet_id":"lim","text":"t","created_at":"2031-01-01T00:00:00Z","user":{"user_id":"@@"}}',
	tweet_id   => '{"tweet_id":"@@","text":"t","created_at":"2031-01-01T00:00:00Z"}');
my %limit;
my %limit_wide;
{
	my $sql = q{CREATE FUNCTION pg_temp.largest_accepted(tmpl text, ch text) RETURNS int LANGUAGE plpgsql AS $f$
		DECLARE lo int := 0; hi int := 100000; mid int;
		BEGIN
		    WHILE hi - lo > 1 LOOP
		        mid := (lo + hi) / 2;
		        IF (tweetlake.parse_tweet(replace(tmpl, '@@', repeat(ch, mid)))).error IS NULL
		        THEN lo := mid; ELSE hi := mid; END IF;
		    END LOOP;
		    RETURN lo;
		END $f$;
		};
	for my $f (sort keys %field_template)
	{
		$sql .= "SELECT '$f', pg_temp.largest_accepted('$field_template{$f}', 'q'), "
		  . "pg_temp.largest_accepted('$field_template{$f}', U&'\\+02000B');\n";
	}
	for (split /\n/, $node->safe_psql('postgres', $sql))
	{
		my ($f, $n, $w) = split /\|/;
		$limit{$f} = $n;
		$limit_wide{$f} = $w;
	}
}
note('largest lengths the parser accepts (ASCII bytes / 4-byte characters): '
	  . join(', ', map { "$_ $limit{$_}/$limit_wide{$_}" } sort keys %limit));
my $h = eval { PostgreSQL::Test::Utils::slurp_file((-d 'src' ? 'src' : "$ENV{TWEETLAKE_SRC}/src") . '/tweetlake.h') } // '';
note('limits in src/tweetlake.h: ' . join(', ', $h =~ /#define\s+(TL_MAX_\w+\s+\S+)/g));
for my $f (qw(region language hashtag mention user_id tweet_id))
{
	ok($limit{$f} > 0 && $limit{$f} < 99_999, "$f: the parser has a length limit ($limit{$f} bytes)");
}

my @round1;
my %max_value;          # field => the accepted value sent, for the gold checks
my $slot = 0;
my @enum_types = qw(original retweet reply quote);
for my $f (sort keys %field_template)
{
	my $max = $limit{$f};
	# an enumerated tweet_type: its longest valid value, and a long invalid one
	if ($f eq 'tweet_type' && $max < 16)
	{
		($max_value{$f}) = sort { length($b) <=> length($a) || $a cmp $b } @enum_types;
		my $bad = letters(2000);
		push @round1, [ 'len tweet_type long', 'reject', ['len-tt-long'], 'tweet_type',
			tweet('len-tt-long', hour_at($slot++), tweet_type => jstr($bad)) ];
	}
	else
	{
		$max_value{$f} = letters($max);
		my $over = letters($max + 1);
		push @round1, [ "len $f +1", 'reject', [ $f eq 'tweet_id' ? $over : "len-$f-over" ],
			$f eq 'mention' ? 'mention' : $f eq 'hashtag' ? 'hashtag' : $f, length_message($f, $over, "len-$f-over") ];
	}
	my $id = $f eq 'tweet_id' ? $max_value{$f} : "len-$f-max";
	push @round1, [ "len $f max", 'accept', [$id], undef, length_message($f, $max_value{$f}, $id) ];
	# the same limit in 4-byte characters, for the free-text key columns
	if ($f =~ /^(region|language|hashtag|mention|user_id)$/ && $limit_wide{$f} > 0)
	{
		my $w = wide($limit_wide{$f});
		$max_value{"$f wide"} = $w;
		push @round1, [ "len $f max wide", 'accept', ["len-$f-wide"], undef, length_message($f, $w, "len-$f-wide") ];
	}
}
# every key column at its largest, all in one message (one index entry holds several)
my $all_id = $max_value{tweet_id} =~ s/^.{8}/combined/r;
push @round1, [ 'len all at once', 'accept', [$all_id], undef,
	message(tweet_id => jstr($all_id), text => '"all keys at their longest"', created_at => jstr(hour_at($slot++)),
		region => jstr($max_value{region}), language => jstr($max_value{language}),
		tweet_type => jstr($max_value{tweet_type}), hashtags => '[' . jstr($max_value{hashtag}) . ']',
		mentions => '[' . jstr($max_value{mention}) . ']', user => message(user_id => jstr($max_value{user_id}))) ];
# tags that grow when lower-cased: U+023A takes 2 bytes, its lower case U+2C65 takes 3
push @round1, [ 'hashtag 186 bytes, 279 lower-cased', 'accept', ['len-tag-279'], undef,
	tweet('len-tag-279', hour_at($slot++), hashtags => '["' . Encode::encode('UTF-8', chr(0x23A) x 93) . '"]') ];
push @round1, [ 'hashtag 280 bytes, 420 lower-cased', 'either', ['len-tag-420'], undef,
	tweet('len-tag-420', hour_at($slot++), hashtags => '["' . Encode::encode('UTF-8', chr(0x23A) x 140) . '"]') ];
{
	my $grow = Encode::encode('UTF-8', join '', map { (chr(0x23A), chr(0x23E), chr(0x20000 + int(rand(0xA6D0))))[ int(rand(3)) ] } 1 .. 120);
	push @round1, [ 'hashtag grows when lower-cased', 'either', ['len-tag-grow'], undef,
		tweet('len-tag-grow', hour_at($slot++), hashtags => '["' . $grow . '"]') ];
}
# the original poison: a region of 3,300 incompressible letters
push @round1, [ 'region 3300', 'reject', ['region-3300'], 'region',
	tweet('region-3300', hour_at($slot++), region => jstr(letters(3300))) ];

sub length_message
{
	my ($f, $v, $id) = @_;
	my $at = jstr(hour_at($slot++));
	my $jv = $v =~ /[^\x00-\x7f]/ ? '"' . $v . '"' : jstr($v);    # wide values: raw UTF-8, no escapes
	return $f eq 'tweet_id' ? message(tweet_id => $jv, text => '"longest id"', created_at => $at)
	  : $f eq 'hashtag' ? tweet($id, hour_at($slot++), hashtags => "[$jv]")
	  : $f eq 'mention' ? tweet($id, hour_at($slot++), hashtags => '["mentioned"]', mentions => "[$jv]")
	  : $f eq 'user_id' ? tweet($id, hour_at($slot++), user => message(user_id => $jv))
	  : tweet($id, hour_at($slot++), $f => $jv);
}

send_round(1, @round1);
check_round(1, 'key columns at their limits');

# the accepted ones are in gold under their full keys
for my $f (sort keys %max_value)
{
	my $v = $max_value{$f};
	my $lit = "convert_from(decode('" . unpack('H*', $v) . "', 'hex'), 'UTF8')";
	my ($col) = $f =~ /^(\w+)/;
	my $sql = $col eq 'region' ? "SELECT count(*) FROM gold.tweet_volume_by_region WHERE region = $lit"
	  : $col eq 'language' ? "SELECT count(*) FROM gold.tweet_metrics_by_language WHERE language = $lit"
	  : $col eq 'tweet_type' ? "SELECT count(*) > 0 FROM gold.engagement_by_type_hour WHERE tweet_type = $lit"
	  : $col eq 'hashtag' ? "SELECT count(*) FROM gold.popular_hashtags_by_hour WHERE hashtag = $lit"
	  : $col eq 'mention' ? "SELECT count(*) FROM tweetlake.mention_hour WHERE mention = $lit"
	  : $col eq 'user_id' ? "SELECT tweets_count FROM gold.user_engagement WHERE user_id = $lit"
	  : "SELECT count(*) FROM silver.tweets WHERE tweet_id = $lit";
	my $want = $col eq 'tweet_type' ? 't' : $f =~ /wide/ || $col eq 'tweet_id' ? '1' : '2';
	is(sql_value($node, $sql), $want, "$f of " . length($v) . " bytes reaches gold" . ($want eq '2' ? ' (alone and in the combined message)' : ''));
}

# --- 2. numeric extremes in every numeric field -----------------------------------------------
my $DBL_MAX = '1.7976931348623157e308';
my %numeric = (
	count => [
		[ '0', 'accept' ], [ '-0', 'accept' ], [ '2147483647', 'accept' ], [ '2147483647.0', 'accept' ],
		[ '2147483648', 'reject' ], [ '-1', 'reject' ], [ '9223372036854775808', 'reject' ],
		[ '18446744073709551616', 'reject' ], [ $DBL_MAX, 'reject' ], [ "-$DBL_MAX", 'reject' ],
		[ '1e309', 'reject' ], [ '-1e309', 'reject' ], [ '5e-324', 'reject' ], [ '2147483646.5', 'reject' ],
		[ '-0.0', 'either' ] ],
	reach_estimate => [
		[ '0', 'accept' ], [ '-0', 'accept' ], [ '2147483648', 'accept' ], [ '9223372036854775807', 'accept' ],
		[ '9223372036854775808', 'reject' ], [ '-1', 'reject' ], [ $DBL_MAX, 'reject' ], [ '1e309', 'reject' ],
		[ '5e-324', 'reject' ] ],
	sentiment_score => [
		[ '0', 'accept' ], [ '-0', 'accept' ], [ '-0.0', 'accept' ], [ '1', 'accept' ], [ '-1', 'accept' ],
		[ '2.2250738585072014e-308', 'accept' ], [ '-2.2250738585072014e-308', 'accept' ],
		[ '5e-324', 'reject' ], [ '-5e-324', 'reject' ], [ '2.2250738585072009e-308', 'reject' ],
		[ '1.0000000000000002', 'reject' ], [ $DBL_MAX, 'reject' ], [ "-$DBL_MAX", 'reject' ],
		[ '1e309', 'reject' ], [ '-1e309', 'reject' ], [ '2147483648', 'reject' ],
		[ '9223372036854775808', 'reject' ], [ '1e-400', 'either' ] ],
	# README: a finite number with |x| <= 1e15
	engagement_score => [
		[ '0', 'accept' ], [ '-0', 'accept' ], [ '1e15', 'accept' ], [ '-1e15', 'accept' ], [ '2147483648', 'accept' ],
		[ '1.000000000000001e15', 'reject' ], [ $DBL_MAX, 'reject' ], [ "-$DBL_MAX", 'reject' ],
		[ '1e309', 'reject' ], [ '-1e309', 'reject' ], [ '9223372036854775808', 'reject' ], [ '5e-324', 'reject' ] ]);
my @round2;
my $k = 0;
for my $field (qw(retweet_count like_count reply_count quote_count followers_count following_count
	reach_estimate sentiment_score engagement_score))
{
	my $kind = $field =~ /count$/ ? 'count' : $field;
	for my $case (@{ $numeric{$kind} })
	{
		my ($v, $expect) = @$case;
		my $id = 'num-' . $k++;
		my $raw = $field =~ /^follow/
		  ? tweet($id, hour_at(100 + $k), user => message(user_id => jstr("num-user-$k"), $field => $v))
		  : tweet($id, hour_at(100 + $k), $field => $v, user => message(user_id => jstr("num-user-$k")));
		push @round2, [ "$field $v", $expect, [$id], "$field|invalid JSON", $raw ];
	}
}
# user_id given as a number (the README allows an integer): big ones become long key strings
# (README: a string of 1-128 bytes or an integer 0 ... 9223372036854775807)
for my $case ([ '9223372036854775807', 'accept' ], [ '0', 'accept' ], [ '18446744073709551616', 'reject' ],
	[ '1' . ('0' x 200), 'reject' ], [ '-5', 'reject' ], [ '1.5', 'reject' ], [ '1e300', 'reject' ])
{
	my ($v, $expect) = @$case;
	my $id = 'num-' . $k++;
	push @round2, [ 'user_id ' . (length($v) > 30 ? 'of ' . length($v) . ' digits' : $v), $expect, [$id], 'user_id|invalid JSON',
		tweet($id, hour_at(100 + $k), user => message(user_id => $v)) ];
}
# timestamps at the edges: whatever is accepted must have an hour and a day in gold
for my $case ([ '9999-12-31T23:59:59.999999Z', 'accept' ], [ '0001-01-01T00:00:00Z', 'either' ],
	[ '0001-01-01T00:00:00+14:00', 'either' ], [ '9999-12-31T23:59:59-14:00', 'either' ],
	[ '0000-01-01T00:00:00Z', 'either' ], [ '2026-01-01T24:00:00Z', 'either' ], [ '294277-01-01T00:00:00Z', 'reject' ],
	[ 'infinity', 'reject' ], [ '-infinity', 'reject' ], [ 'epoch', 'reject' ])
{
	my ($v, $expect) = @$case;
	my $id = 'num-' . $k++;
	push @round2, [ "created_at $v", $expect, [$id], 'created_at', tweet($id, $v, user => message(user_id => jstr("ts-user-$k"),
		created_at => jstr($v))) ];
}
# the largest of everything in one message: sums in gold must not overflow
push @round2, [ 'all counts at INT32_MAX', 'accept', ['num-all-max'], undef,
	tweet('num-all-max', hour_at(99), map({ ($_ => '2147483647') } qw(retweet_count like_count reply_count quote_count)),
		reach_estimate => '9223372036854775807', engagement_score => '1e15', sentiment_score => '1',
		user => message(user_id => '"num-max-user"', followers_count => '2147483647', following_count => '2147483647')) ];
send_round(2, @round2);
check_round(2, 'numeric extremes');
is(sql_value($node, "SELECT sentiment_score::text || ' ' || sentiment_category FROM silver.tweets
                     WHERE tweet_id = (SELECT ids[1] FROM t040.expect WHERE label = 'sentiment_score -0')"),
	'0 neutral', 'sentiment -0 is stored as 0 (not -0), neutral');
is(sql_value($node, "SELECT string_agg(engagement_score::text, ' ') FROM silver.tweets
                     WHERE tweet_id = (SELECT ids[1] FROM t040.expect WHERE label = 'engagement_score -0')"),
	'0', 'engagement_score -0 is stored as 0 too');
is(sql_value($node, "SELECT total_engagement FROM silver.tweets WHERE tweet_id = 'num-all-max'"),
	4 * 2147483647, 'four counts at INT32_MAX add up without overflow');

# --- 3. sentiments whose sums or averages leave the normal range --------------------------------
my @round3 = (
	# 5e-324 next to two zeros in one hour: an average of 5e-324 / 3 underflows a double
	[ 'subnormal next to zeros', 'reject', ['sent-sub'], 'sentiment_score',
		tweet('sent-sub', hour_at(300), sentiment_score => '5e-324') ],
	[ 'zero 1 next to subnormal', 'accept', ['sent-zero-1'], undef, tweet('sent-zero-1', hour_at(300), sentiment_score => '0') ],
	[ 'zero 2 next to subnormal', 'accept', ['sent-zero-2'], undef, tweet('sent-zero-2', hour_at(300), sentiment_score => '0') ],
	# the pair of the brief: DBL_MIN and the largest subnormal (which is not normal)
	[ 'DBL_MIN', 'accept', ['sent-min'], undef, tweet('sent-min', hour_at(301), sentiment_score => '2.2250738585072014e-308') ],
	[ 'largest subnormal', 'reject', ['sent-maxsub'], 'sentiment_score',
		tweet('sent-maxsub', hour_at(301), sentiment_score => '-2.2250738585072009e-308') ],
	# two normal values whose sum is subnormal
	[ 'normal pair 1', 'accept', ['sent-pair-1'], undef, tweet('sent-pair-1', hour_at(302), sentiment_score => '2.2250738585072019e-308') ],
	[ 'normal pair 2', 'accept', ['sent-pair-2'], undef, tweet('sent-pair-2', hour_at(302), sentiment_score => '-2.2250738585072014e-308') ],
	# normal values only (above DBL_MIN, at most 15 digits, so exact as numeric too) whose
	# sum is 1e-322 and whose average over 50 tweets, 2e-324, is below the smallest subnormal
	[ 'underflowing average 1', 'accept', ['sent-avg-1'], undef, tweet('sent-avg-1', hour_at(303), sentiment_score => '2.2250738585073e-308') ],
	[ 'underflowing average 2', 'accept', ['sent-avg-2'], undef, tweet('sent-avg-2', hour_at(303), sentiment_score => '-2.22507385850729e-308') ]);
push @round3, map { [ "zero $_ of 48", 'accept', ["sent-avg-zero-$_"], undef,
	tweet("sent-avg-zero-$_", hour_at(303), sentiment_score => '0') ] } 1 .. 48;
send_round(3, @round3);
check_round(3, 'sentiment sums and averages near underflow');
is(sql_value($node, "SELECT total_tweets || ' ' || avg_sentiment FROM gold.hourly_activity_summary WHERE hour = '" . hour_at(300) . "'"),
	'2 0', 'the hour of the two zeros: 2 tweets, average 0');
is(sql_value($node, "SELECT string_agg(coalesce(g.total_tweets::text, 'missing'), ' ' ORDER BY h)
                     FROM unnest(ARRAY['" . join("', '", map { hour_at($_) } 301 .. 303) . "']::timestamptz[]) h
                     LEFT JOIN gold.hourly_activity_summary g ON g.hour = h"),
	'1 2 50', 'the near-underflow hours are in gold with all their accepted tweets (1, 2 and 50)');
is(try_sql($node, 'SELECT tweetlake.exact_avg(4.94065645841247e-324, 3) IS NOT NULL, tweetlake.exact_avg(1e-322, 50) IS NOT NULL'),
	't|t', 'exact_avg does not fail on averages below the smallest subnormal');

# --- 4. duplicate tweet_id keys ------------------------------------------------------------------
my $dup_tail = '"text":"dup","created_at":"' . hour_at(400) . '"';
my @round4 = (
	[ 'dup plain', 'reject', [qw(dupA-1 dupA-2)], 'duplicate key tweet_id', qq({"tweet_id":"dupA-1",$dup_tail,"tweet_id":"dupA-2"}) ],
	[ 'dup same value', 'reject', ['dupB-1'], 'duplicate key tweet_id', qq({"tweet_id":"dupB-1",$dup_tail,"tweet_id":"dupB-1"}) ],
	[ 'dup escaped second', 'reject', [qw(dupC-1 dupC-2)], 'duplicate key tweet_id', qq({"tweet_id":"dupC-1",$dup_tail,"tweet\\u005fid":"dupC-2"}) ],
	[ 'dup escaped first', 'reject', [qw(dupD-1 dupD-2)], 'duplicate key tweet_id', qq({"tweet\\u005fid":"dupD-1",$dup_tail,"tweet_id":"dupD-2"}) ],
	[ 'dup all escaped', 'reject', [qw(dupE-1 dupE-2)], 'duplicate key tweet_id', qq({"\\u0074weet_id":"dupE-1",$dup_tail,"tweet\\u005F\\u0069d":"dupE-2"}) ],
	[ 'dup 20000 times', 'reject', [ map { "dupF-$_" } 0, 19999 ], 'duplicate key tweet_id',
		'{' . join(',', map { qq("tweet_id":"dupF-$_") } 0 .. 19999) . ",$dup_tail}" ],
	[ 'escaped key once', 'accept', ['dupG-1'], undef, qq({"tweet\\u005fid":"dupG-1",$dup_tail}) ],
	[ 'tweet_id inside user only', 'reject', ['dupH-1'], 'tweet_id', qq({$dup_tail,"user":{"tweet_id":"dupH-1"}}) ],
	[ 'dup user.user_id', 'reject', ['dupI-1'], 'duplicate key user.user_id',
		qq({"tweet_id":"dupI-1",$dup_tail,"user":{"user_id":"a","us\\u0065r_id":"b"}}) ],
	[ 'dup hashtags', 'reject', ['dupJ-1'], 'duplicate key hashtags',
		qq({"tweet_id":"dupJ-1",$dup_tail,"hashtags":["a"],"hashtags":["b"]}) ],
	[ 'dup unknown field', 'accept', ['dupK-1'], undef, qq({"tweet_id":"dupK-1",$dup_tail,"foo":1,"foo":2}) ],
	# tweet_id_of must find the id behind a lot of other content
	[ 'tweet_id after a 900 kB field', 'accept', ['farL-1'], undef, '{"pad":"' . letters(900_000) . qq(","tweet_id":"farL-1",$dup_tail}) ],
	[ 'tweet_id after 40000 keys', 'accept', ['farM-1'], undef,
		'{' . join(',', map { qq("k$_":$_) } 1 .. 40000) . qq(,"tweet_id":"farM-1",$dup_tail}) ]);
send_round(4, @round4);
check_round(4, 'duplicate tweet_id keys');
is(sql_value($node, "SELECT count(*) FROM bronze.tweets b JOIN silver.tweets s ON s.tweet_id LIKE 'dup%'
                     AND b.raw LIKE '%' || s.tweet_id || '%' WHERE b.tweet_id IS DISTINCT FROM s.tweet_id"),
	'0', "bronze's tweet_id agrees with silver's for every accepted message");

# --- 5. NUL bytes, invalid UTF-8, broken escapes ----------------------------------------------------
my $t5 = hour_at(500);
my @round5 = (
	[ 'raw NUL', 'reject', ['nul-raw'], 'NUL', qq({"tweet_id":"nul-raw","text":"a\x00b","created_at":"$t5"}) ],
	[ 'raw NUL first', 'reject', ['nul-first'], 'NUL', qq(\x00{"tweet_id":"nul-first","text":"x","created_at":"$t5"}) ],
	(map { [ "\\u0000 in $_->[0]", 'reject', [ grep { defined } $_->[1] ], $_->[2], $_->[3] ] }
		[ 'text', 'nul-text', 'text', tweet('nul-text', $t5) =~ s/"about nul-text"/"a\\u0000b"/r ],
		[ 'region', 'nul-region', 'region', tweet('nul-region', $t5, region => '"Eu\u0000rope"') ],
		[ 'language', 'nul-lang', 'language', tweet('nul-lang', $t5, language => '"e\u0000n"') ],
		[ 'hashtag', 'nul-tag', 'hashtag', tweet('nul-tag', $t5, hashtags => '["a\u0000b"]') ],
		[ 'mention', 'nul-mention', 'mention', tweet('nul-mention', $t5, mentions => '["a\u0000b"]') ],
		[ 'user_id', 'nul-user', 'user', tweet('nul-user', $t5, user => '{"user_id":"u\u0000v"}') ],
		[ 'username', 'nul-username', 'user', tweet('nul-username', $t5, user => '{"user_id":"u","username":"\u0000"}') ],
		[ 'tweet_id', undef, 'tweet_id|NUL', qq({"tweet_id":"nul\\u0000id","text":"x","created_at":"$t5"}) ]),
	[ 'invalid byte ff', 'reject', ['utf-ff'], 'UTF-8', qq({"tweet_id":"utf-ff","text":"a\xffb","created_at":"$t5"}) ],
	[ 'overlong NUL', 'reject', ['utf-c080'], 'UTF-8', qq({"tweet_id":"utf-c080","text":"a\xc0\x80b","created_at":"$t5"}) ],
	[ 'overlong slash', 'reject', ['utf-e080af'], 'UTF-8', qq({"tweet_id":"utf-e080af","text":"a\xe0\x80\xafb","created_at":"$t5"}) ],
	[ 'UTF-8 surrogate', 'reject', ['utf-eda080'], 'UTF-8', qq({"tweet_id":"utf-eda080","text":"a\xed\xa0\x80b","created_at":"$t5"}) ],
	[ 'above U+10FFFF', 'reject', ['utf-f4908080'], 'UTF-8', qq({"tweet_id":"utf-f4908080","text":"a\xf4\x90\x80\x80b","created_at":"$t5"}) ],
	[ 'five-byte form', 'reject', ['utf-f8'], 'UTF-8', qq({"tweet_id":"utf-f8","text":"a\xf8\x88\x80\x80\x80b","created_at":"$t5"}) ],
	[ 'truncated at the end', 'reject', ['utf-trunc'], 'UTF-8', qq({"tweet_id":"utf-trunc","text":"x","created_at":"$t5"}\xe2\x82) ],
	[ 'invalid in a key column', 'reject', ['utf-region'], 'UTF-8', qq({"tweet_id":"utf-region","text":"x","created_at":"$t5","region":"\xc3\x28"}) ],
	[ 'unpaired high surrogate escape', 'reject', ['esc-d800'], 'surrogate', tweet('esc-d800', $t5, region => '"\ud800"') ],
	[ 'reversed surrogate escapes', 'reject', ['esc-dc00'], 'surrogate', tweet('esc-dc00', $t5, hashtags => '["\udc00\ud800"]') ],
	[ 'paired surrogate escapes', 'accept', ['esc-pair'], undef, tweet('esc-pair', $t5, hashtags => '["\ud83d\ude00"]') ]);
send_round(5, @round5);
check_round(5, 'NUL bytes and invalid UTF-8');

# --- 6. a poison the parser cannot know about: a CHECK constraint on silver --------------------
$node->safe_psql('postgres', 'ALTER TABLE silver.tweets ADD CONSTRAINT t040_no_4242 CHECK (like_count <> 4242)');
my @round6 = ([ 'like_count 4242', 'reject', ['check-4242'], 'violates check constraint "t040_no_4242"',
	tweet('check-4242', hour_at(600), like_count => 4242) ]);
# more good ones around it on its partition: the bisection must keep all of them
push @round6, map { [ "check neighbour $_", 'accept', ["check-ok-$_"], undef, tweet("check-ok-$_", hour_at(601), like_count => 4241) ] } 1 .. 7;
send_round(6, @round6);
check_round(6, 'a CHECK constraint violated by one message');
is(sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE tweet_id = 'check-4242'"), '0',
	'the message that violates the constraint is not in bronze.tweets');
is(sql_value($node, "SELECT (kafka_partition IS NOT NULL AND kafka_offset IS NOT NULL)::text || ' ' || (d.reason ~ '^could not store')::text
                     FROM bronze.dead_letters d JOIN t040.expect e ON e.raw = d.raw WHERE e.label = 'like_count 4242'"),
	'true true', 'its dead letter has its Kafka coordinates and a "could not store" reason');
note('its reason: ' . sql_value($node, "SELECT d.reason FROM bronze.dead_letters d JOIN t040.expect e ON e.raw = d.raw WHERE e.label = 'like_count 4242'"));
my $end = kafka_end_offsets($kafka, 'tweets');
my $end_total = 0;
$end_total += $_ for values %$end;
wait_for($node, 'SELECT sum(next_offset) FROM tweetlake.offsets', $end_total,
	'the stored offsets move on to the end of every partition', 30);
$node->safe_psql('postgres', 'ALTER TABLE silver.tweets DROP CONSTRAINT t040_no_4242');

# --- 7. an environmental stall: the workers' role loses INSERT on bronze.tweets ----------------
my $dead_before = sql_value($node, 'SELECT count(*) FROM bronze.dead_letters');
my $bronze_before = sql_value($node, 'SELECT count(*) FROM bronze.tweets');
$node->safe_psql('postgres', 'REVOKE INSERT ON bronze.tweets FROM tweetlake_worker');
is(try_sql($node, "SELECT has_table_privilege('tweetlake_worker', 'bronze.tweets', 'INSERT')"), 'f',
	'tweetlake_worker has no INSERT on bronze.tweets any more');
my @stalled = map { tweet("stall-$_", hour_at(700), region => '"Asia"', user => message(user_id => jstr("stall-user-$_"))) } 1 .. 400;
for my $p (0 .. 3)
{
	kcat_produce_unprivileged($bootstrap, 'tweets', [ @stalled[ grep { $_ % 4 == $p } 0 .. $#stalled ] ], $p);
}
$end = kafka_end_offsets($kafka, 'tweets');
$end_total = 0;
$end_total += $_ for values %$end;
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND retries > 0 AND stalled_since IS NOT NULL",
	'2', 'both consumers show the stall: retries > 0 and stalled_since set', 60);
wait_for($node, "SELECT count(*) = 4 AND bool_and(high_watermark IS NOT NULL) AND sum(high_watermark) = $end_total
                 AND sum(lag) > 0 FROM tweetlake.consumer_lag",
	't', 'consumer_lag shows a current high watermark and the lag during the stall', 30);
note('status during the stall: ' . try_sql($node, "SELECT string_agg(worker || ': retries ' || retries || ', ' || coalesce(last_error, ''), ' | ')
                                                  FROM tweetlake.status WHERE role = 'consumer'"));
sleep 3;
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), $dead_before, 'the stall creates no dead letters');
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets'), $bronze_before, 'nothing is stored while stalled');
is(sql_value($node, "SELECT string_agg(pid::text, ',' ORDER BY worker) FROM tweetlake.status WHERE role = 'consumer'"),
	$consumer_pids, 'the stalled consumers stay up (same pids)');

$node->safe_psql('postgres', 'GRANT INSERT ON bronze.tweets TO tweetlake_worker');
wait_for($node, 'SELECT sum(next_offset) FROM tweetlake.offsets', $end_total,
	'after the GRANT everything drains', 120);
wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND coalesce(retries, 0) = 0 AND stalled_since IS NULL",
	'2', 'retries and stalled_since are cleared', 30);
is(sql_value($node, "SELECT total_tweets FROM gold.hourly_activity_summary WHERE hour = '" . hour_at(700) . "'"),
	'400', 'the 400 messages of the stall are in gold');
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters'), $dead_before, 'still no dead letter from the stall');

# --- exactly once over everything sent --------------------------------------------------------
is(sql_value($node, 'SELECT count(*) - count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets'), '0',
	'no (partition, offset) twice in bronze');
is(sql_value($node, 'SELECT count(*) - count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.dead_letters'), '0',
	'no (partition, offset) twice in dead letters');
is(sql_value($node, 'SELECT count(*) FROM bronze.dead_letters WHERE kafka_partition IS NULL OR kafka_offset IS NULL'), '0',
	'every dead letter has its Kafka coordinates');
my $stored = sql_value($node, q{
	SELECT string_agg(p || ':' || n, ' ' ORDER BY p) FROM (
	    SELECT kafka_partition AS p, count(*) AS n, max(kafka_offset) + 1 AS top FROM (
	        SELECT kafka_partition, kafka_offset FROM bronze.tweets
	        UNION SELECT kafka_partition, kafka_offset FROM bronze.dead_letters) o
	    GROUP BY kafka_partition) x WHERE n = top});
is($stored, join(' ', map { "$_:$end->{$_}" } sort keys %$end),
	"every produced (partition, offset) is stored exactly once, in bronze or dead letters (end offsets $end_total)");
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets b JOIN bronze.dead_letters d USING (kafka_partition, kafka_offset)
                     WHERE (tweetlake.parse_tweet(b.raw)).error IS NULL'),
	'0', 'a message in both bronze and dead letters is one the parser rejected');
# whatever came in, no key column in silver is longer than the parser's limit for it
is(sql_value($node, "SELECT concat_ws(' ', coalesce(max(octet_length(region)), 0), coalesce(max(octet_length(language)), 0),
                            max(octet_length(tweet_id)), coalesce(max(octet_length(user_id)), 0),
                            (SELECT max(octet_length(h)) FROM silver.tweets, unnest(hashtags) h),
                            (SELECT max(octet_length(m)) FROM silver.tweets, unnest(mentions) m))
                     FROM silver.tweets"),
	"$limit{region} $limit{language} $limit{tweet_id} $limit{user_id} $limit{hashtag} $limit{mention}",
	'the longest key values stored in silver are exactly at the limits (region, language, tweet_id, user_id, hashtag, mention)');
is(sql_value($node, 'SELECT count(*) FROM bronze.tweets b JOIN bronze.dead_letters d USING (kafka_partition, kafka_offset)
                     WHERE d.tweet_id IS DISTINCT FROM b.tweet_id'),
	'0', "a parser dead letter carries bronze's tweet_id");
is(sql_value($node, 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0',
	'verify(): gold equals a full recompute');
note("kcat ran as OS user $kcat_user" . ($kcat_user eq 'nobody' ? '' : ' (not root, so it could not switch to nobody)'));

$node->stop('fast');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|exited with exit code [^01]/, 'no worker crashed');
done_testing();
