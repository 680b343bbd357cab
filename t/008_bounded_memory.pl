# tweet_id_of (behind bronze.tweets.tweet_id) reads at most the id: a 20 MB message whose
# tweet_id value is escaped costs a backend no more than the message itself.  (It used to
# parse such a message with json-c: the peak went from 137 MB to 744 MB for this one.)
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
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
done_testing();
