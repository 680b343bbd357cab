-- tweetlake.kafka_config back to the server's own setting (the other side of an A/B that
-- changes it, e.g. bench/settings/prefetch_8mb.sql).
ALTER SYSTEM RESET tweetlake.kafka_config;
SELECT pg_reload_conf();
SELECT pg_sleep(1);
