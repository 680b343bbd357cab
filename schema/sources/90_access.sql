/* ------------------------------------------------------------------------
 * Who may do what (README "Security"), and what pg_dump carries
 *
 *   superuser          creates the extension, owns everything, runs rebuild_gold,
 *                      load_generated, start/stop/produce
 *   tweetlake_worker   the consumers' role: writes bronze and tweetlake.offsets only
 *   tweetlake_loader   INSERT (or COPY) raw messages into bronze.tweets, tweetlake.delete_tweet;
 *                      the trigger does the rest as its owner
 *   tweetlake_reader   dashboards: SELECT on silver, gold and the status views
 *   tweetlake_admin    manages the Kafka sources (create_source, alter_source, drop_source)
 *
 * The roles are cluster-wide, so they outlive DROP EXTENSION; each is created once.
 * ------------------------------------------------------------------------ */

-- Dead letters counted by minute and kind of reason (the reason without the message's own
-- details, such as byte positions or values), without their payloads.
CREATE VIEW tweetlake.dead_letters_by_minute AS
SELECT date_trunc('minute', failed_at) AS minute,
       regexp_replace(split_part(reason, ':', 1), ' (at byte [0-9]+|\(.*\))$', '') AS reason,
       count(*) AS dead_letters
FROM bronze.dead_letters
GROUP BY 1, 2;
COMMENT ON VIEW tweetlake.dead_letters_by_minute IS
    'dead letters per minute and kind of reason, without payloads (for dashboards)';

-- The role is cluster-wide, so it outlives DROP EXTENSION; it is created once, without
-- LOGIN: give it a password and LOGIN to use it (scripts/superset.sh does).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_reader') THEN
        CREATE ROLE tweetlake_reader NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA gold, silver, tweetlake TO tweetlake_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA gold, silver TO tweetlake_reader;
GRANT SELECT ON tweetlake.status, tweetlake.consumer_lag, tweetlake.dead_letters_by_minute
    TO tweetlake_reader;
ALTER ROLE tweetlake_reader SET statement_timeout = '60s';
ALTER ROLE tweetlake_reader SET temp_file_limit = '1GB';

-- LOGIN because PostgreSQL 15 lets a background worker connect only as a role that may log
-- in; it has no password, so password and scram authentication never let anyone in as it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_worker') THEN
        CREATE ROLE tweetlake_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_loader') THEN
        CREATE ROLE tweetlake_loader NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA bronze, tweetlake TO tweetlake_worker, tweetlake_loader;
GRANT INSERT ON bronze.tweets TO tweetlake_worker, tweetlake_loader;
GRANT EXECUTE ON FUNCTION tweetlake.delete_tweet(text) TO tweetlake_loader;
GRANT INSERT ON bronze.dead_letters TO tweetlake_worker;
GRANT SELECT, INSERT, UPDATE ON tweetlake.offsets TO tweetlake_worker;
-- a worker of a source reads its settings (kafka_config_file is a path, not the file)
GRANT SELECT ON tweetlake.sources TO tweetlake_worker;

-- The sources' manager: no right on the data, nor on the offsets (a dropped source's go by
-- the foreign key, as the owner).  Naming a properties file takes pg_read_server_files too.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_admin') THEN
        CREATE ROLE tweetlake_admin NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA tweetlake TO tweetlake_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON tweetlake.sources TO tweetlake_admin;
GRANT EXECUTE ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean),
    tweetlake.alter_source(text, text, text, integer, text, integer, boolean),
    tweetlake.drop_source(text) TO tweetlake_admin;
GRANT SELECT ON tweetlake.status, tweetlake.consumer_lag TO tweetlake_admin;

-- Every table of user data or pipeline state goes into pg_dump (its rows; the tables
-- themselves come from CREATE EXTENSION).  Restore with the bronze trigger off: README
-- "Backup and restore".
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass
             FROM pg_depend d
             JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'r'
             WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
               AND d.refclassid = 'pg_extension'::regclass
               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tweetlake')
               AND c.oid <> 'tweetlake.top_users_locks'::regclass   -- its rows come with the extension
             ORDER BY c.oid
    LOOP
        PERFORM pg_extension_config_dump(t, CASE WHEN t = 'tweetlake.sources'::regclass
                                                 THEN 'WHERE name <> ''default''' ELSE '' END);
    END LOOP;
END
$$;
