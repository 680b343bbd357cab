/*
 * tweetlake 0.3.0 -> 0.4.0 (CHANGELOG.md): the batch trigger in C.
 *   - tweetlake.process_bronze_batch() becomes a C function (src/batch.c) that parses the
 *     batch, groups the new silver rows by every gold key in one pass and merges the groups
 *     into the membership rows and gold with one SQL statement; tables, views and the
 *     trigger itself are unchanged, so gold carries on from where it is
 * Each definition here is the same text as in schema/sources/, which a fresh install is
 * built from; t/050_upgrade.pl checks that both give the same schema.
 */
\echo Use "ALTER EXTENSION tweetlake UPDATE TO '0.4.0'" to load this file. \quit

SET LOCAL search_path = pg_catalog, pg_temp;

CREATE OR REPLACE FUNCTION tweetlake.process_bronze_batch() RETURNS trigger
    AS 'MODULE_PATHNAME', 'tweetlake_process_bronze_batch' LANGUAGE C
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET work_mem = '64MB';
