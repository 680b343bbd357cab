-- The consumers' prefetch in the library released with 0.13.0: 8 MB, and librdkafka 2.0's
-- 500 ms pause of a partition whose queue was full.  For the A/B of bench/RESULTS.md:
--   DRAIN_AB_VERSION=<current> DRAIN_AB_OLD_SQL=bench/settings/prefetch_8mb.sql \
--   DRAIN_AB_SQL=bench/settings/kafka_config_reset.sql bash bench/drain.sh 400000
-- (ALTER SYSTEM: tweetlake.kafka_config is read from postgresql.conf when a consumer starts.)
ALTER SYSTEM SET tweetlake.kafka_config = 'consumer.queued.max.messages.kbytes=8192;consumer.fetch.error.backoff.ms=500';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
