/* ------------------------------------------------------------------------
 * Kafka: offsets, workers, status (src/consumer.c, generator_worker.c, launcher.c, status.c)
 * ------------------------------------------------------------------------ */

CREATE TABLE tweetlake.offsets (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,
    cluster_id  text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL DEFAULT 'default' REFERENCES tweetlake.sources ON DELETE CASCADE,
    PRIMARY KEY (source, topic, partition)
);
COMMENT ON TABLE tweetlake.offsets IS
    'next Kafka offset to read per source and partition (-1: from the start), written in the same transaction as the bronze rows it covers';

CREATE FUNCTION tweetlake.worker_status(
        OUT role text, OUT worker integer, OUT pid integer, OUT state text, OUT messages bigint,
        OUT bytes bigint, OUT rate_10s double precision, OUT errors bigint, OUT started_at timestamptz,
        OUT last_error text, OUT last_error_at timestamptz, OUT retries integer,
        OUT stalled_since timestamptz, OUT updates bigint, OUT deletes bigint, OUT stale bigint,
        OUT source text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'tweetlake_worker_status' LANGUAGE C VOLATILE;

CREATE VIEW tweetlake.status AS
SELECT source, role, worker, pid, state, messages, bytes, rate_10s, errors, started_at, last_error,
       last_error_at, retries, stalled_since, updates, deletes, stale
FROM tweetlake.worker_status();
COMMENT ON VIEW tweetlake.status IS
    'one row per worker: its source (NULL for the launcher and the embedded broker), messages and bytes (produced or consumed), rate over the last 10 s, errors (consumer: dead letters, generator: failed deliveries), last error, while a consumer cannot store its batch: retries so far and stalled_since, and per consumer: updates (messages that replaced a stored version), deletes (tweets deleted) and stale (messages that changed nothing)';

CREATE FUNCTION tweetlake.partition_status(
        OUT topic text, OUT partition integer, OUT consumer integer, OUT next_offset bigint,
        OUT high_watermark bigint, OUT updated_at timestamptz, OUT source text)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'tweetlake_partition_status' LANGUAGE C VOLATILE;

CREATE VIEW tweetlake.consumer_lag AS
SELECT p.source, p.topic, p.partition, p.consumer,
       coalesce(o.next_offset, p.next_offset) AS next_offset,
       p.high_watermark,
       greatest(p.high_watermark - greatest(coalesce(o.next_offset, p.next_offset), 0), 0) AS lag,
       greatest(o.updated_at, p.updated_at) AS updated_at
FROM tweetlake.partition_status() p
LEFT JOIN tweetlake.offsets o ON o.source = p.source AND o.topic = p.topic AND o.partition = p.partition;
COMMENT ON VIEW tweetlake.consumer_lag IS
    'per source and partition: next offset stored in Postgres, the broker''s high watermark, and the lag between them';

CREATE FUNCTION tweetlake.start() RETURNS void
    AS 'MODULE_PATHNAME', 'tweetlake_start' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tweetlake.start() IS 'run the generator and consumer workers';
CREATE FUNCTION tweetlake.stop() RETURNS void
    AS 'MODULE_PATHNAME', 'tweetlake_stop' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION tweetlake.stop() IS 'stop the generator and consumer workers (each finishes its batch)';

CREATE FUNCTION tweetlake.produce(payload text, key text DEFAULT NULL) RETURNS bigint
    AS 'MODULE_PATHNAME', 'tweetlake_produce' LANGUAGE C VOLATILE CALLED ON NULL INPUT;
COMMENT ON FUNCTION tweetlake.produce(text, text) IS
    'send one message to tweetlake.topic and wait for the broker; returns its offset';

CREATE FUNCTION tweetlake.bootstrap_servers() RETURNS text
    AS 'MODULE_PATHNAME', 'tweetlake_bootstrap_servers' LANGUAGE C STABLE;
COMMENT ON FUNCTION tweetlake.bootstrap_servers() IS
    'bootstrap.servers for outside Kafka clients: tweetlake.brokers, or the embedded broker''s address';

REVOKE EXECUTE ON FUNCTION tweetlake.start(), tweetlake.stop(), tweetlake.produce(text, text),
    tweetlake.rebuild_gold() FROM PUBLIC;

