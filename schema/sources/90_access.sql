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
 *                      and who reads which tenant (grant_tenant, revoke_tenant)
 *   tweetlake_tenant   what grant_tenant gives a role: SELECT on silver and gold, where
 *                      row-level security shows it the rows of its tenants only
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
-- gold.top_users_by_engagement reads the top users' set as its reader (security_invoker)
GRANT SELECT ON tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor
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
GRANT EXECUTE ON FUNCTION tweetlake.delete_tweet(text, text) TO tweetlake_loader;
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
GRANT EXECUTE ON FUNCTION tweetlake.create_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.alter_source(text, text, text, integer, text, integer, boolean, text),
    tweetlake.drop_source(text) TO tweetlake_admin;
GRANT SELECT ON tweetlake.status, tweetlake.consumer_lag TO tweetlake_admin;

/*
 * Tenants (0.13.0).  Every row of bronze, silver and gold has its tenant.  Row-level security
 * on silver, gold and the top users' set shows each role the rows of the tenants granted to
 * it (tweetlake.tenant_grants: to the role itself or to a role it has the rights of, as
 * pg_has_role(..., 'USAGE') says), and tweetlake_reader every tenant's.  The views are
 * security_invoker, so they show what their reader may see.  Nothing here reads a setting:
 * a session cannot change what it sees but by being another role.  The owner (the
 * superuser who created the extension), the batch trigger (SECURITY DEFINER),
 * rebuild_gold() and verify() see every row.
 */
CREATE TABLE tweetlake.tenant_grants (
    role       regrole NOT NULL,
    tenant     text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (role, tenant)
);
COMMENT ON TABLE tweetlake.tenant_grants IS
    'which role reads which tenant''s rows in silver and gold (tweetlake.grant_tenant, revoke_tenant); each role sees its own grants';
ALTER TABLE tweetlake.tenant_grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grants ON tweetlake.tenant_grants FOR SELECT
    USING (pg_catalog.pg_has_role(role::oid, 'USAGE'));
-- The policies below read it as their reader, whoever that is (each sees its own grants).
GRANT SELECT ON tweetlake.tenant_grants TO PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tweetlake_tenant') THEN
        CREATE ROLE tweetlake_tenant NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA gold, silver, tweetlake TO tweetlake_tenant;
GRANT SELECT ON ALL TABLES IN SCHEMA gold, silver TO tweetlake_tenant;
GRANT SELECT ON tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor
    TO tweetlake_tenant;

DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid::regclass
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname IN ('silver', 'gold')
             UNION ALL
             SELECT unnest('{tweetlake.top_users, tweetlake.top_users_pending, tweetlake.top_users_floor}'::regclass[])
             ORDER BY 1
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_rows ON %s FOR SELECT '
                       'USING (tenant = ANY (ARRAY(SELECT g.tenant FROM tweetlake.tenant_grants g)))', t);
        EXECUTE format('CREATE POLICY all_tenants ON %s FOR SELECT TO tweetlake_reader USING (true)', t);
    END LOOP;
END
$$;

CREATE FUNCTION tweetlake.grant_tenant(role regrole, tenant text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF grant_tenant.tenant IS NULL OR grant_tenant.tenant OPERATOR(pg_catalog.!~) '^[a-z][a-z0-9_]*$'
       OR pg_catalog.length(grant_tenant.tenant) OPERATOR(pg_catalog.>) 40 THEN
        RAISE EXCEPTION 'invalid tenant name "%"', grant_tenant.tenant
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A tenant is named like a source: lower-case letters, digits and _, starting with a letter, at most 40.';
    END IF;
    IF grant_tenant.role IS NULL OR grant_tenant.role::oid OPERATOR(pg_catalog.=) 0 THEN
        RAISE EXCEPTION 'a tenant is granted to a role' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO tweetlake.tenant_grants (role, tenant)
    VALUES (grant_tenant.role, grant_tenant.tenant)
    ON CONFLICT DO NOTHING;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                   WHERE m.roleid OPERATOR(pg_catalog.=) 'tweetlake_tenant'::pg_catalog.regrole
                     AND m.member OPERATOR(pg_catalog.=) grant_tenant.role) THEN
        EXECUTE pg_catalog.format('GRANT tweetlake_tenant TO %s', grant_tenant.role);
    END IF;
END
$$;
COMMENT ON FUNCTION tweetlake.grant_tenant(regrole, text) IS
    'let a role read one tenant''s rows of silver and gold (and nothing of another tenant''s, nor bronze)';

CREATE FUNCTION tweetlake.revoke_tenant(role regrole, tenant text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tweetlake.tenant_grants g
    WHERE g.role OPERATOR(pg_catalog.=) revoke_tenant.role AND g.tenant OPERATOR(pg_catalog.=) revoke_tenant.tenant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT EXISTS (SELECT FROM tweetlake.tenant_grants g WHERE g.role OPERATOR(pg_catalog.=) revoke_tenant.role) THEN
        EXECUTE pg_catalog.format('REVOKE tweetlake_tenant FROM %s', revoke_tenant.role);
    END IF;
    RETURN true;
END
$$;
COMMENT ON FUNCTION tweetlake.revoke_tenant(regrole, text) IS
    'take a tenant back from a role (false: it did not have it); with its last tenant it loses tweetlake_tenant';
REVOKE EXECUTE ON FUNCTION tweetlake.grant_tenant(regrole, text), tweetlake.revoke_tenant(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tweetlake.grant_tenant(regrole, text), tweetlake.revoke_tenant(regrole, text)
    TO tweetlake_admin;

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
