# tweetlake.batch_max_bytes caps a consumer batch by payload size as well as by count: a
# backlog of ~1 kB messages is stored in batches of at most that many bytes, and with the
# default cap the same backlog goes in far larger batches.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use lib 't';
use PipelineTest;

my $cap = 8192;
my $node = tweetlake_node('batch_bytes',
	'tweetlake.generator_rate' => 0,
	'tweetlake.consumers' => 1,
	'tweetlake.batch_timeout_ms' => 1000,
	'tweetlake.batch_max_bytes' => $cap);
wait_for($node, "SELECT state FROM tweetlake.status WHERE role = 'consumer'",
	'consuming 4 of 4 partitions', 'consumer assigned');

# Every statement that inserts into bronze logs its row count and payload bytes.
$node->safe_psql('postgres', q{
	CREATE TABLE public.batch_log (n bigint, bytes bigint);
	GRANT INSERT ON public.batch_log TO tweetlake_worker;
	CREATE FUNCTION public.log_batch() RETURNS trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp AS $$
	BEGIN
	    INSERT INTO public.batch_log SELECT count(*), sum(octet_length(raw)) FROM new_rows;
	    RETURN NULL;
	END $$;
	CREATE TRIGGER log_batch AFTER INSERT ON bronze.tweets
	    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.log_batch();});

# A backlog: the consumer is stopped while 300 messages are produced, then started.
sub backlog
{
	my ($seed) = @_;
	$node->safe_psql('postgres', 'SELECT tweetlake.stop()');
	wait_for($node, "SELECT count(*) FROM tweetlake.status WHERE role = 'consumer' AND pid IS NOT NULL",
		'0', 'consumer stopped');
	$node->safe_psql('postgres', 'TRUNCATE public.batch_log');
	$node->safe_psql('postgres', "SELECT count(tweetlake.produce(t)) FROM tweetlake.generate_tweets(300, $seed) t");
	$node->safe_psql('postgres', 'SELECT tweetlake.start()');
	wait_for($node, 'SELECT coalesce(sum(n), 0) FROM public.batch_log', '300', 'the backlog of 300 is stored');
	return split /\|/, $node->safe_psql('postgres',
		'SELECT count(*), max(bytes), sum(bytes), max(n) FROM public.batch_log');
}

my ($batches, $max_bytes, $total, $max_n) = backlog(11);
ok($max_bytes <= $cap, "with batch_max_bytes = $cap no batch holds more ($max_bytes bytes at most)");
ok($batches >= int(($total + $cap - 1) / $cap),
	"the $total bytes took $batches batches (at least total / cap)");

$node->safe_psql('postgres', "ALTER SYSTEM SET tweetlake.batch_max_bytes = '16MB'; SELECT pg_reload_conf()");
($batches, $max_bytes, $total, $max_n) = backlog(12);
ok($max_bytes > $cap, "with the default 16MB the same kind of backlog goes in bigger batches ($max_bytes bytes, $max_n messages at most)");

is($node->safe_psql('postgres', 'SELECT count(*) FROM silver.tweets'), '600', 'every message reached silver');
is($node->safe_psql('postgres', 'SELECT sum(missing + extra + differing) FROM tweetlake.verify()'), '0', 'verify() is zero');
$node->stop('fast');
done_testing();
