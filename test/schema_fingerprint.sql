-- Every object of the tweetlake extension with its full definition, one line each, sorted:
-- the same output for two databases means the same schema (t/050_upgrade.pl compares a
-- fresh install of the current version with an older one carried up by ALTER EXTENSION).
-- OIDs never appear, only names and definitions.
SET search_path = pg_catalog, pg_temp;
WITH members AS (
    SELECT d.classid, d.objid
    FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tweetlake')
), rels AS (
    SELECT c.oid FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION
    SELECT t.typrelid FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    WHERE t.typrelid <> 0
)
SELECT line FROM (
    SELECT 'schema ' || n.nspname || ' acl=' || coalesce(n.nspacl::text, '-')
           || ' comment=' || coalesce(obj_description(n.oid, 'pg_namespace'), '-') AS line
    FROM members m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' acl=' || coalesce(p.proacl::text, '-')
           || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '-') || E'\n'
           || CASE WHEN p.prokind = 'a' THEN
                   (SELECT 'aggregate sfunc=' || a.aggtransfn::regprocedure || ' stype=' || format_type(a.aggtranstype, NULL)
                           || ' finalfunc=' || a.aggfinalfn::regprocedure || ' finalmodify=' || a.aggfinalmodify::text
                           || ' finalextra=' || a.aggfinalextra
                    FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
              ELSE pg_get_functiondef(p.oid) END
    FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    SELECT 'type ' || format_type(t.oid, NULL) || ' type=' || t.typtype::text
    FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' acl=' || coalesce(c.relacl::text, '-')
           || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
           || ' options=' || coalesce(c.reloptions::text, '-')
           || CASE WHEN c.relkind = 'p' THEN ' partition by ' || pg_get_partkeydef(c.oid) ELSE '' END
           || CASE WHEN c.relispartition THEN ' partition of ' || (SELECT i.inhparent::regclass::text
                   FROM pg_inherits i WHERE i.inhrelid = c.oid) || ' ' || pg_get_expr(c.relpartbound, c.oid) ELSE '' END
           || CASE WHEN c.relkind = 'v' THEN E'\n' || pg_get_viewdef(c.oid) ELSE '' END
    FROM rels r JOIN pg_class c ON c.oid = r.oid
    UNION ALL
    SELECT 'column ' || c.oid::regclass || '.' || a.attname || ' #' || a.attnum || ' '
           || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
           || ' generated=' || a.attgenerated::text || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
           || ' collation=' || a.attcollation::regcollation
           || ' storage=' || a.attstorage::text || ' compression=' || coalesce(nullif(a.attcompression, '')::text, '-')
           || ' comment=' || coalesce(col_description(c.oid, a.attnum), '-')
    FROM rels r JOIN pg_class c ON c.oid = r.oid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    UNION ALL
    SELECT 'constraint ' || con.conrelid::regclass || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
    FROM rels r JOIN pg_constraint con ON con.conrelid = r.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM rels r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(tg.oid) || ' enabled=' || tg.tgenabled::text
    FROM rels r JOIN pg_trigger tg ON tg.tgrelid = r.oid AND NOT tg.tgisinternal
    UNION ALL
    SELECT 'dumped ' || string_agg(c::regclass::text, ', ' ORDER BY c::regclass::text)
    FROM pg_extension e, unnest(e.extconfig) AS c WHERE e.extname = 'tweetlake'
) x
ORDER BY line;
