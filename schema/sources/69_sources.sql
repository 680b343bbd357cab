/* ------------------------------------------------------------------------
 * Sources: several Kafka feeds in one database (src/source.c, src/launcher.c).  Each
 * source has its brokers, topic, consumers, properties file and generator; the launcher
 * starts, restarts and stops each source's workers as its row changes, within a second or
 * two.  The source "default" is postgresql.conf's tweetlake.* settings, as before sources:
 * its row only says whether it runs and for which tenant.  Every message a source brings
 * belongs to its tenant (0.13.0): bronze, silver and gold carry it, and row-level security
 * shows a tenant's role its own rows only (tweetlake.grant_tenant, 90_access.sql).  Offsets are kept per source (tweetlake.offsets.source,
 * 70_kafka.sql), and go when their source is dropped.
 * ------------------------------------------------------------------------ */

CREATE TABLE tweetlake.sources (
    name              text PRIMARY KEY,
    brokers           text,
    topic             text,
    consumers         integer,
    kafka_config_file text,
    generator_rate    integer,
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    tenant            text NOT NULL DEFAULT 'default',
    CONSTRAINT sources_name CHECK (name OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'
                                   AND pg_catalog.length(name) OPERATOR(pg_catalog.<=) 40),
    -- librdkafka's bootstrap.servers: host:port items, comma-separated, no blanks
    CONSTRAINT sources_brokers CHECK (brokers OPERATOR(pg_catalog.~) '^[^,[:space:]]+(,[^,[:space:]]+)*$'
                                      AND pg_catalog.length(brokers) OPERATOR(pg_catalog.<=) 1024),
    -- Kafka's rule for topic names
    CONSTRAINT sources_topic CHECK (topic OPERATOR(pg_catalog.~) '^[a-zA-Z0-9._-]{1,249}$'),
    CONSTRAINT sources_consumers CHECK (consumers OPERATOR(pg_catalog.>=) 1 AND consumers OPERATOR(pg_catalog.<=) 31),
    CONSTRAINT sources_kafka_config_file CHECK (kafka_config_file OPERATOR(pg_catalog.~) '^/'
                                                AND pg_catalog.length(kafka_config_file) OPERATOR(pg_catalog.<) 1024),
    CONSTRAINT sources_generator_rate CHECK (generator_rate OPERATOR(pg_catalog.>=) -1),
    -- "default" is postgresql.conf's settings; every other source names its own
    CONSTRAINT sources_settings CHECK (CASE WHEN name OPERATOR(pg_catalog.=) 'default'
        THEN brokers IS NULL AND topic IS NULL AND consumers IS NULL AND kafka_config_file IS NULL
             AND generator_rate IS NULL
        ELSE brokers IS NOT NULL AND topic IS NOT NULL AND consumers IS NOT NULL
             AND generator_rate IS NOT NULL END),
    CONSTRAINT sources_feed UNIQUE (brokers, topic),
    CONSTRAINT sources_tenant CHECK (tenant OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'
                                     AND pg_catalog.length(tenant) OPERATOR(pg_catalog.<=) 40)
);
COMMENT ON TABLE tweetlake.sources IS
    'Kafka feeds: brokers (bootstrap.servers), topic, consumers, kafka_config_file (librdkafka properties, the place for secrets), generator_rate (0 off, -1 flat out), enabled, tenant (whose rows its messages become); "default" is postgresql.conf''s tweetlake.* settings (its columns NULL); change with tweetlake.create_source, alter_source, drop_source';
INSERT INTO tweetlake.sources (name) VALUES ('default');

-- Each row as it is written: the default source takes no settings of its own, a properties
-- file is named only by a role that may have the server read files (the workers read it as
-- the server), updated_at moves.
CREATE FUNCTION tweetlake.sources_check_row() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'UPDATE' AND NEW.name OPERATOR(pg_catalog.<>) OLD.name THEN
        RAISE EXCEPTION 'a source cannot be renamed'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create a source of the new name and drop the old one; its offsets are not carried over.';
    END IF;
    IF NEW.name OPERATOR(pg_catalog.=) 'default'
       AND (NEW.brokers, NEW.topic, NEW.consumers, NEW.kafka_config_file, NEW.generator_rate) IS DISTINCT FROM
           (NULL::text, NULL::text, NULL::integer, NULL::text, NULL::integer) THEN
        RAISE EXCEPTION 'the settings of source "default" are postgresql.conf''s'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Set tweetlake.brokers, tweetlake.topic, tweetlake.consumers, tweetlake.kafka_config_file '
                         'and tweetlake.generator_rate in postgresql.conf and reload; alter_source(''default'', enabled => ...) '
                         'turns it off and on.';
    END IF;
    IF NEW.kafka_config_file IS NOT NULL
       AND (TG_OP OPERATOR(pg_catalog.=) 'INSERT' OR NEW.kafka_config_file IS DISTINCT FROM OLD.kafka_config_file)
       AND NOT pg_catalog.pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied to name a Kafka properties file'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The workers read the file as the server, so naming one takes the rights of pg_read_server_files.',
                  HINT = 'Ask a superuser to set kafka_config_file, or to GRANT pg_read_server_files to this role.';
    END IF;
    NEW.updated_at := pg_catalog.now();
    IF TG_OP OPERATOR(pg_catalog.=) 'INSERT' THEN
        NEW.created_at := NEW.updated_at;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sources_check_row BEFORE INSERT OR UPDATE ON tweetlake.sources
    FOR EACH ROW EXECUTE FUNCTION tweetlake.sources_check_row();

-- The background workers every enabled source needs, against what the server has: one
-- launcher, the embedded broker while tweetlake.brokers is empty, and per source its
-- consumers and a generator when its rate is not 0.  The launcher cannot start more than
-- max_worker_processes (less what parallel queries take) nor more than its 96 status slots.
-- In a session that has not loaded the library, the settings' defaults stand in.
CREATE FUNCTION tweetlake.source_workers_needed() RETURNS integer
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN 1 OPERATOR(pg_catalog.+)
    (CASE WHEN coalesce(pg_catalog.current_setting('tweetlake.brokers', true), '') OPERATOR(pg_catalog.=) '' THEN 1 ELSE 0 END)
    OPERATOR(pg_catalog.+) coalesce((
        SELECT pg_catalog.sum(coalesce(s.consumers,
                                       coalesce(pg_catalog.current_setting('tweetlake.consumers', true), '1')::integer)
                              OPERATOR(pg_catalog.+)
                              CASE WHEN coalesce(s.generator_rate,
                                                 coalesce(pg_catalog.current_setting('tweetlake.generator_rate', true), '1000')::integer)
                                        OPERATOR(pg_catalog.=) 0 THEN 0 ELSE 1 END)
        FROM tweetlake.sources s WHERE s.enabled), 0)::integer;
COMMENT ON FUNCTION tweetlake.source_workers_needed() IS
    'background workers the enabled sources need: the launcher, the embedded broker, each source''s consumers and generator';

CREATE FUNCTION tweetlake.sources_check_limits() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    needed integer := tweetlake.source_workers_needed();
    have integer := pg_catalog.current_setting('max_worker_processes')::integer;
BEGIN
    IF needed OPERATOR(pg_catalog.>) have THEN
        RAISE EXCEPTION 'the enabled sources need % background workers, but max_worker_processes is %', needed, have
            USING ERRCODE = 'configuration_limit_exceeded',
                  DETAIL = 'One launcher, the embedded broker while tweetlake.brokers is empty, and for each enabled source its consumers and, if its generator_rate is not 0, a generator.',
                  HINT = 'Raise max_worker_processes (it takes a server restart; parallel queries use these workers too), or give the sources fewer consumers.';
    END IF;
    IF needed OPERATOR(pg_catalog.>) 96 THEN
        RAISE EXCEPTION 'the enabled sources need % background workers, but tweetlake runs at most 96', needed
            USING ERRCODE = 'configuration_limit_exceeded',
                  HINT = 'Give the sources fewer consumers, or disable some.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sources_check_limits AFTER INSERT OR UPDATE ON tweetlake.sources
    FOR EACH STATEMENT EXECUTE FUNCTION tweetlake.sources_check_limits();

-- "default" stays: it is postgresql.conf's settings.  (A dropped source's offsets go with it,
-- by the foreign key of tweetlake.offsets.source.)
CREATE FUNCTION tweetlake.sources_keep_default() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.name OPERATOR(pg_catalog.=) 'default' THEN
        RAISE EXCEPTION 'source "default" cannot be dropped'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'SELECT tweetlake.alter_source(''default'', enabled => false) stops it.';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER sources_keep_default BEFORE DELETE ON tweetlake.sources
    FOR EACH ROW EXECUTE FUNCTION tweetlake.sources_keep_default();

CREATE FUNCTION tweetlake.create_source(name text, brokers text, topic text DEFAULT 'tweets',
                                        consumers integer DEFAULT 1, kafka_config_file text DEFAULT NULL,
                                        generator_rate integer DEFAULT 0, enabled boolean DEFAULT true,
                                        tenant text DEFAULT 'default')
    RETURNS tweetlake.sources
    LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO tweetlake.sources (name, brokers, topic, consumers, kafka_config_file, generator_rate, enabled, tenant)
    VALUES (create_source.name, create_source.brokers, create_source.topic, create_source.consumers,
            create_source.kafka_config_file, create_source.generator_rate, create_source.enabled,
            create_source.tenant)
    RETURNING *;
END;
COMMENT ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text) IS
    'a new Kafka source; its workers start within seconds when it and the pipeline are enabled';

-- NULL leaves a setting as it is; kafka_config_file => '' removes the file.
CREATE FUNCTION tweetlake.alter_source(name text, brokers text DEFAULT NULL, topic text DEFAULT NULL,
                                       consumers integer DEFAULT NULL, kafka_config_file text DEFAULT NULL,
                                       generator_rate integer DEFAULT NULL, enabled boolean DEFAULT NULL,
                                       tenant text DEFAULT NULL)
    RETURNS tweetlake.sources
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r tweetlake.sources;
BEGIN
    UPDATE tweetlake.sources s
    SET brokers = coalesce(alter_source.brokers, s.brokers),
        topic = coalesce(alter_source.topic, s.topic),
        consumers = coalesce(alter_source.consumers, s.consumers),
        kafka_config_file = CASE WHEN alter_source.kafka_config_file IS NULL THEN s.kafka_config_file
                                 ELSE NULLIF(alter_source.kafka_config_file, '') END,
        generator_rate = coalesce(alter_source.generator_rate, s.generator_rate),
        enabled = coalesce(alter_source.enabled, s.enabled),
        tenant = coalesce(alter_source.tenant, s.tenant)
    WHERE s.name OPERATOR(pg_catalog.=) alter_source.name
    RETURNING s.* INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', alter_source.name
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM tweetlake.sources lists them.';
    END IF;
    RETURN r;
END
$$;
COMMENT ON FUNCTION tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text) IS
    'changes a source (NULL: unchanged; kafka_config_file => '''' removes it); its workers restart with the new settings within seconds';

CREATE FUNCTION tweetlake.drop_source(name text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tweetlake.sources s WHERE s.name OPERATOR(pg_catalog.=) drop_source.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'source "%" does not exist', drop_source.name
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM tweetlake.sources lists them.';
    END IF;
END
$$;
COMMENT ON FUNCTION tweetlake.drop_source(text) IS
    'removes a source and its offsets; its workers stop within seconds (its rows in bronze, silver and gold stay)';

REVOKE EXECUTE ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.drop_source(text) FROM PUBLIC;
