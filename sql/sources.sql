-- Sources (0.12.0): tweetlake.sources and create_source / alter_source / drop_source, what
-- they refuse and why, who may call them, and the offsets kept per source.
CREATE EXTENSION tweetlake;

-- A new installation has the default source alone: postgresql.conf's settings, enabled.
SELECT name, brokers, topic, consumers, kafka_config_file, generator_rate, enabled FROM tweetlake.sources;

-- Named arguments, as the columns are named; the defaults for the rest.
SELECT name, brokers, topic, consumers, kafka_config_file, generator_rate, enabled
FROM tweetlake.create_source(name => 'eu_feed', brokers => 'kafka-eu:9092', topic => 'tweets_eu');
SELECT name, brokers, topic, consumers, generator_rate, enabled
FROM tweetlake.create_source('replay', 'k1:9092,k2:9092', 'tweets_replay', consumers => 2, enabled => false);

-- What a source cannot be (the constraint each breaks; the failing row's times vary).
\set VERBOSITY terse
SELECT tweetlake.create_source('Bad-Name', 'k:9092', 't');
SELECT tweetlake.create_source('x', 'k:9092 , k2:9092', 't');
SELECT tweetlake.create_source('x', 'k:9092', 'no spaces');
SELECT tweetlake.create_source('x', 'k:9092', 't', consumers => 0);
SELECT tweetlake.create_source('x', 'k:9092', 't', consumers => 32);
SELECT tweetlake.create_source('x', NULL, 't');
SELECT tweetlake.create_source('x', 'k:9092', 't', generator_rate => -2);
SELECT tweetlake.create_source('x', 'k:9092', 't', kafka_config_file => 'relative/path');
SELECT tweetlake.create_source('eu_feed', 'other:9092', 't');
SELECT tweetlake.create_source('eu_copy', 'kafka-eu:9092', 'tweets_eu');
\set VERBOSITY default

-- More workers than the server can start is an error at once, not a missing worker later.
SHOW max_worker_processes;
SELECT tweetlake.source_workers_needed();
SELECT tweetlake.create_source('big', 'k:9092', 'big', consumers => 4);
SELECT name, consumers, enabled FROM tweetlake.alter_source('replay', enabled => true);
SELECT tweetlake.alter_source('replay', consumers => 4);
SELECT tweetlake.source_workers_needed();

-- alter_source: NULL leaves a setting; '' removes the properties file; updated_at moves.
SELECT tweetlake.alter_source('eu_feed', kafka_config_file => '/etc/tweetlake/eu.properties') IS NOT NULL AS altered;
SELECT name, brokers, topic, consumers, kafka_config_file, updated_at > created_at AS updated
FROM tweetlake.sources WHERE name = 'eu_feed';
SELECT kafka_config_file IS NULL AS no_file FROM tweetlake.alter_source('eu_feed', kafka_config_file => '');
SELECT tweetlake.alter_source('nowhere', consumers => 2);
UPDATE tweetlake.sources SET name = 'renamed' WHERE name = 'eu_feed';

-- The default source is postgresql.conf's: it takes no settings and stays, but can be off.
SELECT tweetlake.alter_source('default', consumers => 2);
SELECT name, enabled FROM tweetlake.alter_source('default', enabled => false);
SELECT tweetlake.drop_source('default');
SELECT name, enabled FROM tweetlake.alter_source('default', enabled => true);

-- Offsets per source: a dropped source's go with it, the others' stay.
INSERT INTO tweetlake.offsets (source, topic, partition, next_offset) VALUES
    ('default', 'tweets', 0, 10), ('eu_feed', 'tweets', 0, 20), ('replay', 'tweets_replay', 0, 30);
\set VERBOSITY terse
INSERT INTO tweetlake.offsets (source, topic, partition, next_offset) VALUES ('gone', 't', 0, 1);
\set VERBOSITY default
SELECT tweetlake.drop_source('replay');
SELECT tweetlake.drop_source('replay');
SELECT source, topic, partition, next_offset FROM tweetlake.offsets ORDER BY source;

-- Who may: tweetlake_admin manages sources, and nothing else; naming a file the workers
-- read as the server takes pg_read_server_files; anyone else may not even call them.
CREATE ROLE tl_ops LOGIN IN ROLE tweetlake_admin;
CREATE ROLE tl_nobody LOGIN;
SET ROLE tl_ops;
SELECT name FROM tweetlake.create_source('ops_feed', 'k:9092', 'ops');
SELECT tweetlake.create_source('ops_secret', 'k:9092', 'ops2', kafka_config_file => '/etc/passwd');
SELECT tweetlake.alter_source('eu_feed', kafka_config_file => '/etc/passwd');
SELECT name, enabled FROM tweetlake.alter_source('ops_feed', enabled => false);
SELECT count(*) FROM tweetlake.offsets;
SELECT count(*) FROM bronze.tweets;
SELECT tweetlake.drop_source('ops_feed');
RESET ROLE;
GRANT pg_read_server_files TO tl_ops;
SET ROLE tl_ops;
SELECT kafka_config_file FROM tweetlake.alter_source('eu_feed', kafka_config_file => '/etc/tweetlake/eu.properties');
RESET ROLE;
SET ROLE tl_nobody;
SELECT tweetlake.create_source('sneaky', 'k:9092', 'sneaky');
SELECT count(*) FROM tweetlake.sources;
RESET ROLE;

-- The status views say each row's source, first.
SELECT attname FROM pg_attribute WHERE attrelid = 'tweetlake.consumer_lag'::regclass AND attnum > 0 ORDER BY attnum;
SELECT attname FROM pg_attribute WHERE attrelid = 'tweetlake.status'::regclass AND attnum BETWEEN 1 AND 3 ORDER BY attnum;

DROP ROLE tl_nobody;
REVOKE pg_read_server_files FROM tl_ops;
DROP ROLE tl_ops;
DROP EXTENSION tweetlake;
