# Updates and deletions through a real Apache Kafka broker (test/kafka/kafka.sh): 4
# partitions, 2 consumers, every message keyed by its tweet_id.  One stream mixes new
# tweets, updates (tweetlake.generate_messages' own, and made here: other hashtags and
# mentions, a created_at hours or a day earlier, updated_at versions, stale versions),
# tombstones (of stored tweets, of unknown ids, before their tweet), duplicates and
# malformed messages, sent while a consumer is killed inside a batch and the server is
# restarted in immediate mode.  Then every offset is stored once, silver holds what the
# documented rule makes of the stream (computed here, message by message), the deletions are
# recorded, and gold and the membership behind its distinct counts equal a full recompute,
# before and after rebuild_gold().  The same again for the generator worker's own updates
# and tombstones, and last what tweetlake.status counted.
use strict;
use warnings;
use IPC::Run ();
use JSON::PP ();
use List::Util qw(shuffle sum0);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use Time::Local qw(timegm);
use lib 't';
use PipelineTest;

my $t0 = Time::HiRes::time;
my $kafka = start_kafka();
END { stop_kafka($kafka) if $kafka; }
my $bootstrap = $kafka->{bootstrap};
kafka_topic($kafka, 'tweets', 4);

my $node = tweetlake_node('changes',
	'tweetlake.brokers' => "'$bootstrap'",
	'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 2,
	'tweetlake.batch_size' => 100,
	'tweetlake.batch_timeout_ms' => 50,
	restart_after_crash => 'on');

srand(15);
my $json = JSON::PP->new->utf8->canonical;

# ISO 8601 as the generator writes it (2026-01-01T18:16:36.766Z) <-> milliseconds since 1970.
sub ms_of
{
	my ($iso) = @_;
	$iso =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{3}))?Z$/
	  or die "unexpected timestamp $iso";
	return timegm($6, $5, $4, $3, $2 - 1, $1) * 1000 + ($7 // 0);
}

sub iso_of
{
	my ($ms) = @_;
	my @t = gmtime(int($ms / 1000));
	return sprintf('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ',
		$t[5] + 1900, $t[4] + 1, $t[3], $t[2], $t[1], $t[0], $ms % 1000);
}

# --- the stream ---------------------------------------------------------------------------
# A message: key (the tweet_id; undef = none), value (bytes; undef = NULL), doc (decoded),
# kind.  The base is tweetlake.generate_messages: new tweets, 20 % updates of recent ones
# (counts grown, a later updated_at), 2 % tombstones.
my $N = 9000;
my @base;
for my $line (split /\n/, sql_value($node,
		"SELECT coalesce(kafka_key, '') || chr(9) || coalesce(raw, '')
		 FROM tweetlake.generate_messages($N, 15, '2026-01-01 00:00+00', '2 days', 0.2, 0.02)
		      WITH ORDINALITY AS m(kafka_key, raw, i) ORDER BY i"))
{
	my ($key, $raw) = split /\t/, $line, 2;
	if ($raw eq '')
	{
		push @base, { key => $key, value => undef, kind => 'tombstone' };
	}
	else
	{
		my $doc = $json->decode($raw);
		push @base, { key => $doc->{tweet_id}, value => $raw, doc => $doc,
			kind => defined $doc->{updated_at} ? 'update' : 'new' };
	}
}
is(scalar @base, $N, "generate_messages gave $N messages");

sub version
{
	my ($doc, %set) = @_;
	my $d = $json->decode($json->encode($doc));
	$d->{$_} = $set{$_} for keys %set;
	return { key => $d->{tweet_id}, value => $json->encode($d), doc => $d, kind => 'update' };
}
sub copy_of { my ($m, $kind) = @_; return { %$m, kind => $kind }; }
sub tombstone { my ($id, $kind) = @_; return { key => $id, value => undef, kind => $kind // 'tombstone' }; }

# Messages made here go after a message of the base (-1: before all of it).
my %inject;
sub inject { my ($after, @m) = @_; push @{ $inject{$after} }, @m; }
# $n places after base message $from, in order.
sub later { my ($from, $n) = @_; return sort { $a <=> $b } map { $from + int(rand($N - $from)) } 1 .. $n; }

# The scenarios take tweets the base sends once and neither updates nor deletes.  Their
# versions are made so that the rule (updated_at when both carry one, else no count down and
# something different) orders them totally: then the newest wins whatever the batches are.
my (%nbase, %pos);
for my $i (0 .. $#base)
{
	$nbase{ $base[$i]{key} }++;
	$pos{ $base[$i]{key} } //= $i;
}
my @free = shuffle(sort grep { $nbase{$_} == 1 && defined $base[ $pos{$_} ]{value} } keys %nbase);
my (%scenario, %intent);    # intent: what the scenario must leave in silver, tweet by tweet
# stale_then_newer takes tweets sent early, for messages late in the stream (see below)
$scenario{stale_then_newer} = [ (grep { $pos{$_} < 0.6 * $N } @free)[ 0 .. 19 ] ];
my %taken = map { $_ => 1 } @{ $scenario{stale_then_newer} };
@free = grep { !$taken{$_} } @free;
for my $s ([ retag => 60 ], [ late => 60 ], [ versioned => 60 ], [ tombstone_first => 25 ], [ tombstone_after => 25 ])
{
	$scenario{ $s->[0] } = [ splice(@free, 0, $s->[1]) ];
}

# retag: other hashtags (one typed twice in two cases) and a mention, then none or another
# one, each with a like more; then the original again (fewer likes: stale) and a copy of
# the last version.
for my $k (0 .. $#{ $scenario{retag} })
{
	my $v0 = $base[ $pos{ $scenario{retag}[$k] } ];
	my $r1 = version($v0->{doc}, like_count => $v0->{doc}{like_count} + 1,
		hashtags => [ '#TL15Fresh', '#tl15fresh', '#Bitcoin' ], mentions => [ 'tl15_m' . ($k % 5) ]);
	my $r2 = version($r1->{doc}, like_count => $r1->{doc}{like_count} + 1,
		hashtags => $k % 2 ? ['#Music'] : []);
	my @at = later($pos{ $v0->{key} }, 4);
	inject($at[0], $r1);
	inject($at[1], $r2);
	inject($at[2], copy_of($v0, 'stale'));
	inject($at[3], copy_of($r2, 'duplicate'));
	$intent{ $v0->{key} } = [ $r2->{doc}{like_count}, $v0->{doc}{created_at}, undef ];
}
# late: the same tweet with a like more and a created_at 5 hours (or 30) earlier.
for my $k (0 .. $#{ $scenario{late} })
{
	my $v0 = $base[ $pos{ $scenario{late}[$k] } ];
	my $back = ($k % 2 ? 5 : 30) * 3600 * 1000;
	my $l1 = version($v0->{doc}, like_count => $v0->{doc}{like_count} + 1,
		created_at => iso_of(ms_of($v0->{doc}{created_at}) - $back));
	inject((later($pos{ $v0->{key} }, 1))[0], $l1);
	$intent{ $v0->{key} } = [ $l1->{doc}{like_count}, $l1->{doc}{created_at}, undef ];
}
# versioned: updated_at +1 h and +2 h, each with a like more; then one with updated_at
# +30 min and 10 likes more (newer by its counts, older by updated_at: stale), and last one
# with updated_at +3 h and a like less than the +2 h one: it wins by updated_at.
for my $k (0 .. $#{ $scenario{versioned} })
{
	my $v0 = $base[ $pos{ $scenario{versioned}[$k] } ];
	my ($c, $like) = (ms_of($v0->{doc}{created_at}), $v0->{doc}{like_count});
	my $u1 = version($v0->{doc}, like_count => $like + 1, updated_at => iso_of($c + 3600_000));
	my $u2 = version($u1->{doc}, like_count => $like + 2, updated_at => iso_of($c + 7200_000));
	my $old = version($u2->{doc}, like_count => $like + 10, updated_at => iso_of($c + 1800_000));
	my $u3 = version($u2->{doc}, like_count => $like + 1, updated_at => iso_of($c + 10800_000),
		hashtags => ['#tl15versioned']);
	$old->{kind} = 'stale';
	my @at = later($pos{ $v0->{key} }, 4);
	inject($at[$_], ($u1, $u2, $old, $u3)[$_]) for 0 .. 3;
	$intent{ $v0->{key} } = [ $like + 1, $v0->{doc}{created_at}, $u3->{doc}{updated_at} ];
}
# stale_then_newer: late in the stream, after the last fault, the stored version again and
# right after it a newer one (so mostly in one batch): the first changes nothing, the
# second replaces the stored version.
for my $id (@{ $scenario{stale_then_newer} })
{
	my $v0 = $base[ $pos{$id} ];
	my $r1 = version($v0->{doc}, like_count => $v0->{doc}{like_count} + 1);
	inject(int(0.85 * $N) + int(rand(0.15 * $N)), copy_of($v0, 'duplicate'), $r1);
	$intent{$id} = [ $r1->{doc}{like_count}, $v0->{doc}{created_at}, undef ];
}
# tombstone_first: the tombstone comes before the tweet; the tweet and an update after it
# change nothing.
for my $id (@{ $scenario{tombstone_first} })
{
	my $p = $pos{$id};
	inject(int(rand($p + 1)) - 1, tombstone($id, 'tombstone first'));
	inject((later($p, 1))[0], version($base[$p]{doc}, like_count => $base[$p]{doc}{like_count} + 1));
}
# tombstone_after: an update, the tombstone, and an update after it that changes nothing.
for my $id (@{ $scenario{tombstone_after} })
{
	my $v0 = $base[ $pos{$id} ];
	my $r1 = version($v0->{doc}, like_count => $v0->{doc}{like_count} + 1);
	my @at = later($pos{$id}, 3);
	inject($at[0], $r1);
	inject($at[1], tombstone($id));
	inject($at[2], version($r1->{doc}, like_count => $v0->{doc}{like_count} + 2));
}
# tombstones for ids never seen
inject(int(rand($N)), tombstone("tl15-unknown-$_", 'tombstone unknown')) for 1 .. 20;
# malformed: keyed by the id of a tweet of the stream, or without a key; one not UTF-8
# (the consumer refuses it), one NULL value without a key (neither a tweet nor a tombstone).
my @ids = map { $_->{key} } grep { $_->{kind} eq 'new' } @base;
for (1 .. 2)
{
	for my $make (
		sub { qq({"tweet_id":"$_[0]","text":"cut off) },
		sub { qq(["$_[0]"]) },
		sub { qq({"tweet_id":"$_[0]","text":"x","created_at":"2026-02-30T10:00:00Z"}) },
		sub { qq({"tweet_id":"$_[0]","text":"no created_at"}) },
		sub { qq({"tweet_id":"$_[0]","text":"x","created_at":"2026-01-01T00:00:00Z","like_count":"12"}) },
		sub { qq({"tweet_id":"$_[0]","text":"x","created_at":"2026-01-01T00:00:00Z","sentiment_score":1.5}) })
	{
		my $id = $ids[ int(rand(@ids)) ];
		inject(int(rand($N)), { key => $id, value => $make->($id), kind => 'malformed' });
	}
	inject(int(rand($N)), { key => undef, value => 'not json at all', kind => 'malformed' });
	inject(int(rand($N)), { key => undef, value => "\xff\xfe{}", kind => 'not UTF-8' });
	inject(int(rand($N)), { key => undef, value => undef, kind => 'null without a key' });
}

my @stream = @{ $inject{-1} // [] };
push @stream, $base[$_], @{ $inject{$_} // [] } for 0 .. $N - 1;

# duplicates: 1 % of the keyed messages sent again, before the next message of their key
my (%next_of, %seen_at);
for (my $i = $#stream; $i >= 0; $i--)
{
	my $m = $stream[$i];
	next unless defined $m->{key} && ($m->{kind} !~ /^(malformed|not UTF-8)$/);
	$next_of{$i} = $seen_at{ $m->{key} } // scalar @stream;
	$seen_at{ $m->{key} } = $i;
}
my %dup_before;
for my $i (sort { $a <=> $b } keys %next_of)
{
	next if rand() >= 0.01;
	my $limit = $next_of{$i} < $i + 200 ? $next_of{$i} : $i + 200;
	push @{ $dup_before{ $i + 1 + int(rand($limit - $i)) } }, copy_of($stream[$i], 'duplicate');
}
my @messages;
push @messages, @{ $dup_before{$_} // [] }, $stream[$_] for 0 .. $#stream;
push @messages, @{ $dup_before{ scalar @stream } // [] };
my $total = scalar @messages;

# --- what silver must hold: the rule applied message by message, in the order of each key
# (one key is one partition, read in order) ---------------------------------------------------
sub newer
{
	my ($n, $o) = @_;
	return ms_of($n->{updated_at}) > ms_of($o->{updated_at})
	  if defined $n->{updated_at} && defined $o->{updated_at};
	for my $c (qw(retweet_count like_count reply_count quote_count))
	{
		return 0 if ($n->{$c} // 0) < ($o->{$c} // 0);
	}
	return $json->encode($n) ne $json->encode($o);
}

# %stored: id => the message silver must hold; %deleted: id => whether a version of it had
# come before its first tombstone; %outcomes: id => what each of its messages did, in order:
# new, updates (replaced the stored version), stale (changed nothing), deletes (deleted the
# stored tweet) or none (a tombstone of an id not stored).
my (%stored, %deleted, %count, %outcomes);
$count{$_} = 0 for qw(new updates stale deletes none tombstones bad);
sub apply_rule
{
	my ($m) = @_;
	$count{kind}{ $m->{kind} }++;
	if ($m->{kind} =~ /^(malformed|not UTF-8|null without a key)$/)
	{
		$count{bad}++;
		return;
	}
	my $id = $m->{key};
	my $outcome;
	if (!defined $m->{value})
	{
		$count{tombstones}++;
		if (exists $deleted{$id}) { $outcome = 'none'; }
		else
		{
			$deleted{$id} = exists $stored{$id} ? 1 : 0;
			$outcome = delete $stored{$id} ? 'deletes' : 'none';
		}
	}
	elsif (exists $deleted{$id}) { $outcome = 'stale'; }
	elsif (!$stored{$id}) { $stored{$id} = $m; $outcome = 'new'; }
	elsif (newer($m->{doc}, $stored{$id}{doc})) { $stored{$id} = $m; $outcome = 'updates'; }
	else { $outcome = 'stale'; }
	$count{$outcome}++;
	push @{ $outcomes{$id} }, $outcome;
}
apply_rule($_) for @messages;
note(sprintf('%d messages: %s; the rule gives %d new, %d updates, %d stale, %d deletes, %d ids deleted, %d in silver',
		$total, join(', ', map { "$count{kind}{$_} $_" } sort keys %{ $count{kind} }),
		@count{qw(new updates stale deletes)}, scalar keys %deleted, scalar keys %stored));
my $share = ($count{kind}{update} + $count{kind}{stale}) / $total;
ok($share > 0.18 && $share < 0.3, sprintf('about a fifth of the messages update a tweet (%.3f)', $share));
$share = $count{tombstones} / $total;
ok($share > 0.015 && $share < 0.05, sprintf('about 2 %% are tombstones (%.3f)', $share));

# The messages sent, what silver must hold and the deletions, as tables to compare with.
my $dir = PostgreSQL::Test::Utils::tempdir;
sub csv_file
{
	my ($name, @rows) = @_;
	open my $fh, '>', "$dir/$name" or die "$dir/$name: $!";
	binmode $fh;
	print $fh join(',', map { $_ // '' } @$_), "\n" for @rows;
	close $fh;
	return "$dir/$name";
}
$node->safe_psql('postgres', "
	CREATE SCHEMA t15;
	CREATE TABLE t15.produced (seq int, kind text, key text, value_hex text);
	CREATE TABLE t15.expected (tweet_id text, raw_hex text);
	CREATE TABLE t15.expected_values (tweet_id text, like_count int, created_at timestamptz, updated_at timestamptz);
	CREATE TABLE t15.expected_deleted (tweet_id text, was_stored boolean);
	CREATE TABLE t15.scenario (tweet_id text, scenario text, like_count int, created_at timestamptz,
	                           updated_at timestamptz);
	CREATE VIEW t15.expected_silver AS
	SELECT p.* FROM t15.expected e,
	       tweetlake.parse_tweet(convert_from(decode(e.raw_hex, 'hex'), 'UTF8')) p");
sub load_tables
{
	my ($sent) = @_;
	my $seq = 0;
	my $produced = csv_file('produced.csv', map {
		[ ++$seq, $_->{kind}, $_->{key}, defined $_->{value} ? unpack('H*', $_->{value}) : undef ] } @$sent);
	my $expected = csv_file('expected.csv', map { [ $_, unpack('H*', $stored{$_}{value}) ] } sort keys %stored);
	my $values = csv_file('values.csv', map {
		my $d = $stored{$_}{doc}; [ $_, $d->{like_count}, $d->{created_at}, $d->{updated_at} ] } sort keys %stored);
	my $deleted = csv_file('deleted.csv', map { [ $_, $deleted{$_} ? 't' : 'f' ] } sort keys %deleted);
	$node->safe_psql('postgres', "
		TRUNCATE t15.produced, t15.expected, t15.expected_values, t15.expected_deleted;
		COPY t15.produced FROM '$produced' (FORMAT csv);
		COPY t15.expected FROM '$expected' (FORMAT csv);
		COPY t15.expected_values FROM '$values' (FORMAT csv);
		COPY t15.expected_deleted FROM '$deleted' (FORMAT csv)");
	is(sql_value($node, 'SELECT count(*) FROM t15.expected_silver WHERE error IS NULL'), scalar(keys %stored),
		'every version silver must hold parses');
}
load_tables(\@messages);
my $scenarios = csv_file('scenarios.csv', map {
	my $s = $_; map { [ $_, $s, @{ $intent{$_} // [ undef, undef, undef ] } ] } @{ $scenario{$s} } }
	sort keys %scenario);
$node->safe_psql('postgres', "COPY t15.scenario FROM '$scenarios' (FORMAT csv)");

# --- sent in three rounds, a fault in each while the consumers are at it ----------------------
# kcat: "key<TAB>value" lines; -Z makes an empty value (and key) NULL: "id<TAB>" is a tombstone.
sub line_of
{
	my ($m) = @_;
	my ($k, $v) = ($m->{key} // '', $m->{value} // '');
	die "a message with a tab or a newline" if "$k$v" =~ /[\t\n]/;
	return defined $m->{key} || !defined $m->{value} ? "$k\t$v" : $v;
}
my @faults = qw(kill_consumer immediate_restart kill_consumer);
my ($sent, $mid_ingest, $in_batch) = (0, 0, 0);
for my $round (1 .. 3)
{
	my @chunk = @messages[ $sent .. ($round == 3 ? $total : int($total * $round / 3)) - 1 ];
	kcat_produce($bootstrap, 'tweets', write_messages([ map { line_of($_) } @chunk ], "\n"), '\n',
		'-K', '\t', '-Z');
	my $before = $sent;
	$sent += @chunk;
	my $started = 0;
	for (1 .. 3000)
	{
		$started = sql_value($node, "SELECT count(*) > $before FROM bronze.tweets") eq 't';
		last if $started;
		Time::HiRes::usleep(10_000);
	}
	ok($started, "round $round: ingest under way");
	my $at = sql_value($node, 'SELECT count(*) FROM bronze.tweets');
	$mid_ingest++ if $at < $sent - 2;    # two messages are refused before bronze
	note("round $round: $faults[$round - 1] with $at of $sent messages in bronze");
	$in_batch += strike_fault($node, $faults[ $round - 1 ], "round $round");
}
ok($mid_ingest >= 2, "faults struck while a round was half ingested ($mid_ingest of 3)");
ok($in_batch >= 1, "a consumer was killed inside a batch ($in_batch of 2)");

# --- the checks -------------------------------------------------------------------------------
# Drained, every message stored once: in bronze, in the dead letters only (refused by the
# consumer: not UTF-8), or in both (stored, then refused by the trigger), at most once in each.
sub stored_once_checks
{
	my ($when, $n) = @_;
	my $end = kafka_end_offsets($kafka, 'tweets');
	is(sum0(values %$end), $n, "$when: the broker holds the $n messages sent, each once");
	wait_for($node, 'SELECT coalesce(sum(next_offset), 0) FROM tweetlake.offsets', "$n",
		"$when: stored offsets reach the end of every partition", 180);
	is(sql_value($node, 'SELECT sum(lag) FROM tweetlake.consumer_lag'), '0', "$when: no consumer lag");
	my %got = map { my ($p, @v) = split /\|/; ($p => join(' ', @v)) } split /\n/, sql_value($node,
		"SELECT p, count(*), min(o), max(o)
		 FROM (SELECT kafka_partition, kafka_offset FROM bronze.tweets
		       UNION SELECT kafka_partition, kafka_offset FROM bronze.dead_letters) m(p, o) GROUP BY p");
	is(join(', ', map { "$_: " . ($got{$_} // 'none') } sort keys %$end),
		join(', ', map { "$_: $end->{$_} 0 " . ($end->{$_} - 1) } sort keys %$end),
		"$when: every offset of every partition stored (partition: offsets, min, max)");
	is(sql_value($node, "
		SELECT (SELECT count(*) - count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.tweets) || ' '
		    || (SELECT count(*) - count(DISTINCT (kafka_partition, kafka_offset)) FROM bronze.dead_letters) || ' '
		    || (SELECT count(*) FROM bronze.tweets WHERE kafka_topic IS DISTINCT FROM 'tweets'
		                                            OR kafka_partition IS NULL OR kafka_offset IS NULL)"),
		'0 0 0', "$when: no offset twice in bronze or in the dead letters, and every row has its coordinates");
	# what was sent, byte for byte
	is(sql_value($node, "
		WITH sent AS (SELECT decode(value_hex, 'hex') AS v FROM t15.produced
		              WHERE value_hex IS NOT NULL AND kind <> 'not UTF-8'),
		     kept AS (SELECT convert_to(raw, 'UTF8') AS v FROM bronze.tweets WHERE raw <> '')
		SELECT (SELECT count(*) FROM (SELECT v FROM sent EXCEPT ALL SELECT v FROM kept) a) || ' '
		    || (SELECT count(*) FROM (SELECT v FROM kept EXCEPT ALL SELECT v FROM sent) b)"),
		'0 0', "$when: bronze holds every message with a value once, byte for byte (missing, extra)");
	is(sql_value($node, "
		WITH sent AS (SELECT key FROM t15.produced WHERE value_hex IS NULL AND key IS NOT NULL),
		     kept AS (SELECT kafka_key AS key FROM bronze.tweets WHERE raw IS NULL AND kafka_key IS NOT NULL)
		SELECT (SELECT count(*) FROM (SELECT key FROM sent EXCEPT ALL SELECT key FROM kept) a) || ' '
		    || (SELECT count(*) FROM (SELECT key FROM kept EXCEPT ALL SELECT key FROM sent) b) || ' '
		    || (SELECT count(*) FROM kept)"),
		"0 0 $count{tombstones}",
		"$when: bronze holds the $count{tombstones} tombstones as raw NULL with their key (missing, extra, all)");
	is(sql_value($node, "SELECT count(*) FROM bronze.tweets WHERE coalesce(raw, '') = '' AND kafka_key IS NULL"),
		$count{kind}{'null without a key'}, "$when: the NULL values without a key are in bronze too");
	is(sql_value($node, "
		WITH bad AS (SELECT coalesce(decode(value_hex, 'hex'), '') AS v FROM t15.produced
		             WHERE kind IN ('malformed', 'not UTF-8', 'null without a key'))
		SELECT (SELECT count(*) FROM (SELECT v FROM bad EXCEPT ALL SELECT raw FROM bronze.dead_letters) a) || ' '
		    || (SELECT count(*) FROM (SELECT raw FROM bronze.dead_letters EXCEPT ALL SELECT v FROM bad) b) || ' '
		    || (SELECT count(*) FROM bronze.dead_letters d WHERE NOT EXISTS (SELECT FROM bronze.tweets b
		           WHERE (b.kafka_partition, b.kafka_offset) = (d.kafka_partition, d.kafka_offset)))"),
		"0 0 $count{kind}{'not UTF-8'}",
		"$when: the dead letters are the $count{bad} bad messages (missing, extra, refused before bronze)");
}

# Silver: the newest version of every tweet, none of the deleted; the deletions recorded.
sub silver_checks
{
	my ($when) = @_;
	is(sql_value($node, 'SELECT count(*) FROM silver.tweets'), scalar(keys %stored),
		"$when: silver has a row per tweet the stream leaves");
	is(sql_value($node, "
		WITH s AS (SELECT to_jsonb(s) - 'processed_at' - 'processing_date' AS j FROM silver.tweets s),
		     e AS (SELECT to_jsonb(e) - 'error' || jsonb_build_object('tenant', 'default') AS j FROM t15.expected_silver e),
		     d AS ((SELECT 'silver' AS side, j FROM s EXCEPT ALL SELECT 'silver', j FROM e)
		           UNION ALL (SELECT 'expected', j FROM e EXCEPT ALL SELECT 'expected', j FROM s))
		SELECT (SELECT count(*) FROM d)
		       || coalesce(': ' || string_agg(side || ' ' || (j->>'tweet_id') || ' likes ' || (j->>'like_count')
		          || ' updated_at ' || coalesce(j->>'updated_at', '-') || ' created_at ' || (j->>'created_at'), '; '), '')
		FROM (SELECT * FROM d ORDER BY j->>'tweet_id', side LIMIT 10) x"),
		'0', "$when: silver equals the newest version of every tweet, column for column");
	is(sql_value($node, "
		SELECT count(*) FILTER (WHERE s.tweet_id IS NULL OR (s.like_count, s.created_at) <> (v.like_count, v.created_at)
		                        OR s.updated_at IS DISTINCT FROM v.updated_at) || ' ' || count(*)
		FROM t15.expected_values v LEFT JOIN silver.tweets s USING (tweet_id)"),
		'0 ' . scalar(keys %stored),
		"$when: like_count, created_at and updated_at of every tweet are its newest version's (wrong, all)");
	is(sql_value($node, "
		SELECT (SELECT count(*) FROM (SELECT tweet_id FROM t15.expected_deleted
		                              EXCEPT SELECT tweet_id FROM silver.deleted_tweets) a)
		    || ' ' || (SELECT count(*) FROM (SELECT tweet_id FROM silver.deleted_tweets
		                                     EXCEPT SELECT tweet_id FROM t15.expected_deleted) b)
		    || ' ' || (SELECT count(*) FROM silver.deleted_tweets)"),
		'0 0 ' . scalar(keys %deleted), "$when: silver.deleted_tweets holds every tombstoned id (missing, extra, all)");
	is(sql_value($node, "SELECT count(*) FROM silver.deleted_tweets d JOIN t15.expected_deleted e USING (tweet_id)
	                     WHERE d.was_stored AND NOT e.was_stored"),
		'0', "$when: was_stored is false for every id whose tombstone came before any version of it");
	# was_stored: silver had the tweet when the batch of its first tombstone ran, that is an
	# earlier transaction (ingested_at is its start) had stored a version; a tweet and its
	# tombstone in one batch never were in silver.
	my ($wrong, $had, $first) = split /\|/, sql_value($node, "
		WITH first AS (SELECT DISTINCT ON (kafka_key) kafka_key AS id, kafka_partition AS p, kafka_offset AS o,
		                      ingested_at AS t
		               FROM bronze.tweets WHERE raw IS NULL AND kafka_key IS NOT NULL ORDER BY kafka_key, kafka_offset)
		SELECT count(*) FILTER (WHERE d.was_stored IS DISTINCT FROM x.had), count(*) FILTER (WHERE x.had),
		       count(*) FILTER (WHERE e.was_stored)
		FROM first f JOIN t15.expected_deleted e ON e.tweet_id = f.id
		LEFT JOIN silver.deleted_tweets d ON d.tweet_id = f.id
		CROSS JOIN LATERAL (SELECT EXISTS (
		    SELECT FROM bronze.tweets b
		    WHERE b.tweet_id = f.id AND b.kafka_partition = f.p AND b.kafka_offset < f.o AND b.ingested_at < f.t
		      AND NOT EXISTS (SELECT FROM bronze.dead_letters l
		                      WHERE (l.kafka_partition, l.kafka_offset) = (b.kafka_partition, b.kafka_offset))) AS had) x");
	is($wrong, '0', "$when: was_stored says whether an earlier batch had stored the tweet "
		  . "(stored: $had of the $first that had a version first)");
	ok($had > 0 && $had <= $first, "$when: tombstones deleted stored tweets ($had)");
}

# Gold and the membership behind its distinct counts: a full recompute from silver.
sub gold_checks
{
	my ($when) = @_;
	is(sql_value($node, "SELECT string_agg(gold_table || ' ' || missing || '/' || extra || '/' || differing, ', ')
	                     FROM tweetlake.verify() WHERE missing + extra + differing > 0"),
		'', "$when: verify(): every gold table equals a full recompute (missing/extra/differing)");
	is(sql_value($node, "
		SELECT (SELECT count(*) FROM (SELECT * FROM tweetlake.user_hour EXCEPT SELECT * FROM tweetlake.recompute_user_hour) a)
		    || ' ' || (SELECT count(*) FROM (SELECT * FROM tweetlake.recompute_user_hour EXCEPT SELECT * FROM tweetlake.user_hour) b)
		    || ' ' || (SELECT count(*) FROM (SELECT * FROM tweetlake.mention_hour EXCEPT SELECT * FROM tweetlake.recompute_mention_hour) c)
		    || ' ' || (SELECT count(*) FROM (SELECT * FROM tweetlake.recompute_mention_hour EXCEPT SELECT * FROM tweetlake.mention_hour) d)"),
		'0 0 0 0', "$when: user_hour and mention_hour equal their recompute (both ways)");
	is(sql_value($node, "
		SELECT coalesce(sum(tweet_count) FILTER (WHERE hashtag = 'tl15fresh'), 0) || ' '
		    || coalesce(sum(tweet_count) FILTER (WHERE hashtag = 'tl15versioned'), 0)
		FROM gold.popular_hashtags_by_hour"),
		'0 ' . scalar @{ $scenario{versioned} }, "$when: gold counts the hashtags of the newest versions only");
	is(sql_value($node, 'SELECT sum(total_tweets) FROM gold.hourly_activity_summary'), scalar(keys %stored),
		"$when: the hourly summary counts every tweet in silver");
}

stored_once_checks('after the stream', $total);
like(sql_value($node, "SELECT string_agg(DISTINCT reason, ' | ') FROM bronze.dead_letters WHERE raw = ''"),
	qr/^(empty message|null message without a key: neither a tweet nor a tombstone)$/,
	'a NULL value without a key is a dead letter');
silver_checks('after the stream');
# The scenarios one by one: in silver as intended, or deleted.
is(sql_value($node, "
	SELECT string_agg(scenario || ': ' || in_silver || ' in silver, ' || as_intended || ' as intended, '
	                  || deleted || ' deleted', '; ' ORDER BY scenario)
	FROM (SELECT c.scenario, count(s.tweet_id) AS in_silver,
	             count(*) FILTER (WHERE (s.like_count, s.created_at) = (c.like_count, c.created_at)
	                              AND s.updated_at IS NOT DISTINCT FROM c.updated_at) AS as_intended,
	             count(d.tweet_id) AS deleted
	      FROM t15.scenario c LEFT JOIN silver.tweets s USING (tweet_id)
	      LEFT JOIN silver.deleted_tweets d USING (tweet_id) GROUP BY c.scenario) x"),
	join('; ', map {
		my $n = scalar @{ $scenario{$_} };
		/^tombstone/ ? "$_: 0 in silver, 0 as intended, $n deleted" : "$_: $n in silver, $n as intended, 0 deleted" }
	  sort keys %scenario),
	'scenarios: other hashtags, earlier created_at, updated_at beats counts, stale before newer, tombstones');
is(sql_value($node, "SELECT count(*) FILTER (WHERE NOT d.was_stored) FROM t15.scenario c
                     JOIN silver.deleted_tweets d USING (tweet_id) WHERE c.scenario = 'tombstone_first'"),
	scalar @{ $scenario{tombstone_first} }, 'a tombstone before its tweet: deleted, never stored');
gold_checks('after the stream');

$node->safe_psql('postgres', 'SELECT tweetlake.rebuild_gold()');
gold_checks('after rebuild_gold()');

# --- the generator worker's updates and tombstones --------------------------------------------
my %end_before = %{ kafka_end_offsets($kafka, 'tweets') };
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_update_share = 0.2;
                              ALTER SYSTEM SET tweetlake.generator_delete_share = 0.02;
                              ALTER SYSTEM SET tweetlake.generator_rate = 2000; SELECT pg_reload_conf()");
wait_for($node, "SELECT messages >= 8000 FROM tweetlake.status WHERE role = 'generator'", 't',
	'the generator produces', 60);
is(sql_value($node, "SELECT state FROM tweetlake.status WHERE role = 'generator'"),
	'producing 2000 msgs/s: 20% updates, 2% deletes', 'the generator says what it produces');
$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.generator_rate = 0; SELECT pg_reload_conf()");
wait_for($node, "SELECT state || ' ' || (pid IS NULL) FROM tweetlake.status WHERE role = 'generator'",
	'stopped true', 'generator stopped');
is(sql_value($node, "SELECT errors FROM tweetlake.status WHERE role = 'generator'"), '0',
	'every generator message was acknowledged');
# What it produced, read back from the broker after what was sent before.
my ($kout, $kerr) = ('', '');
IPC::Run::run([ 'kcat', '-C', '-b', $bootstrap, '-t', 'tweets', '-o', 'beginning', '-e', '-q',
	'-f', '%p\t%o\t%K\t%k\t%S\t%s\n' ], '>', \$kout, '2>', \$kerr)
  or die "kcat -C failed: $kerr";
my @generated;
for (split /\n/, $kout)
{
	my ($p, $o, $klen, $key, $vlen, $value) = split /\t/, $_, 6;
	next if $o < $end_before{$p};
	push @generated, [ $p, $o, $klen < 0 ? undef : $key, $vlen < 0 ? undef : $value ];
}
@generated = sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @generated;
my $generator_n = sql_value($node, "SELECT messages FROM tweetlake.status WHERE role = 'generator'");
is(scalar @generated, $generator_n, "kcat reads the generator's $generator_n messages back");
my (@from_generator, $unkeyed);
for my $g (@generated)
{
	my (undef, undef, $key, $value) = @$g;
	if (!defined $value)
	{
		push @from_generator, { key => $key, value => undef, kind => 'generator tombstone' };
		next;
	}
	my $doc = $json->decode($value);
	$unkeyed++ if ($key // '') ne $doc->{tweet_id};
	push @from_generator, { key => $doc->{tweet_id}, value => $value, doc => $doc,
		kind => defined $doc->{updated_at} ? 'generator update' : 'generator new' };
}
is($unkeyed // 0, 0, 'the generator keys every message by its tweet_id');
my %generator_kinds;
$generator_kinds{ $_->{kind} }++ for @from_generator;
note('the generator sent ' . join(', ', map { "$generator_kinds{$_} $_" } sort keys %generator_kinds));
my $updates_share = ($generator_kinds{'generator update'} // 0) / @from_generator;
my $deletes_share = ($generator_kinds{'generator tombstone'} // 0) / @from_generator;
ok(abs($updates_share - 0.2) < 0.03 && abs($deletes_share - 0.02) < 0.01,
	sprintf('the generator sends 20 %% updates and 2 %% tombstones (%.3f, %.3f)', $updates_share, $deletes_share));
my $deletes_before = $count{deletes};
apply_rule($_) for @from_generator;
ok($count{deletes} > $deletes_before, 'its tombstones delete tweets it sent ('
	  . ($count{deletes} - $deletes_before) . ')');
load_tables([ @messages, @from_generator ]);
stored_once_checks('after the generator', $total + $generator_n);
silver_checks('after the generator');
gold_checks('after the generator');

# --- tweetlake.status: each consumer counts since it started (the faults restarted all).
# Which messages it stored since then bronze says (ingested_at, the start of the batch's
# transaction, against started_at); what the rule makes of each the model above says, key by
# key in offset order.  Batches change how a message is counted (a tombstone makes the
# versions before it in its batch stale, and the tweet it deletes may never have been stored)
# but not the sum of updates, stale and deletes; updates and deletes can only be fewer, stale
# only more.
my (%rows_of, %window);
for (split /\n/, sql_value($node, "
	SELECT coalesce(b.kafka_key, b.tweet_id), CASE WHEN b.ingested_at >= s.started_at THEN s.worker ELSE -1 END
	FROM bronze.tweets b JOIN tweetlake.status s ON s.role = 'consumer' AND s.worker = b.kafka_partition % 2
	WHERE NOT EXISTS (SELECT FROM bronze.dead_letters l
	                  WHERE (l.kafka_partition, l.kafka_offset) = (b.kafka_partition, b.kafka_offset))
	ORDER BY 1, b.kafka_offset"))
{
	my ($key, $worker) = split /\|/;
	push @{ $rows_of{$key} }, $worker;
}
my $misaligned = grep { !$outcomes{$_} } keys %rows_of;
for my $key (keys %outcomes)
{
	my ($o, $r) = ($outcomes{$key}, $rows_of{$key} // []);
	if (@$o != @$r) { $misaligned++; next; }
	$window{ $r->[$_] }{ $o->[$_] }++ for 0 .. $#$o;
}
is($misaligned, 0, 'bronze holds, key by key, the messages the rule was applied to');
for my $c (0, 1)
{
	my %w = map { $_ => $window{$c}{$_} // 0 } qw(new updates stale deletes none);
	my $sum = $w{updates} + $w{stale} + $w{deletes};
	note("consumer $c since its start: " . join(', ', map { "$w{$_} $_" } sort keys %w));
	wait_for($node, "SELECT updates + stale + deletes FROM tweetlake.status WHERE role = 'consumer' AND worker = $c",
		"$sum", "consumer $c: updates + stale + deletes = what the rule makes of the messages it stored since its start", 10);
	my ($u, $d, $s) = split /\|/, sql_value($node,
		"SELECT updates, deletes, stale FROM tweetlake.status WHERE role = 'consumer' AND worker = $c");
	# a kind the model saw none of since this consumer's start (a late restart) counts 0
	ok(($u > 0 || !$w{updates}) && ($d > 0 || !$w{deletes}) && ($s > 0 || !$w{stale}),
		"consumer $c counted updates ($u of $w{updates}), deletes ($d of $w{deletes}) and stale messages ($s, at least $w{stale})");
	ok($u <= $w{updates}, "consumer $c: updates ($u) <= messages since its start newer than the stored version ($w{updates})");
	ok($d <= $w{deletes}, "consumer $c: deletes ($d) <= tombstones since its start of a stored tweet ($w{deletes})");
	ok($s >= $w{stale}, "consumer $c: stale ($s) >= messages since its start that changed nothing ($w{stale})");
}

# the counters were put to the test: the two windows together had every kind
ok((sum0(map { $window{$_}{updates} // 0 } 0, 1)) > 0 && (sum0(map { $window{$_}{deletes} // 0 } 0, 1)) > 0
	  && (sum0(map { $window{$_}{stale} // 0 } 0, 1)) > 0,
	'the consumers stored updates, deletes and stale messages since their starts');

# Only the processes killed here died by a signal.
my @signals = slurp_file($node->logfile) =~ /terminated by signal (\d+)/g;
is(join(',', @signals), join(',', ('9') x grep { $_ eq 'kill_consumer' } @faults),
	'no process died by a signal but the consumers killed');

$node->stop('fast');
note(sprintf('t/015 ran %.0f s', Time::HiRes::time - $t0));
done_testing();
