/*
 * tweetlake install script, built by `make` from the files in schema/sources/, in file-name order
 * (see the Makefile); edit the sources, never the built script.
 *
 *   bronze.tweets        every message as received (raw text) + Kafka coordinates
 *   bronze.dead_letters  messages that could not become silver, with the reason
 *   silver.tweets        one typed, cleaned row per distinct tweet_id
 *   gold.*               aggregates kept up to date by one set-based statement per batch
 *   tweetlake.*          the API (functions, status) and the internal state of gold
 */
\echo Use "CREATE EXTENSION tweetlake" to load this file. \quit

-- Every name below is schema-qualified; with pg_catalog alone in the path, no object a
-- role planted in another schema (public, say) can be bound into a view or function here.
-- SET LOCAL: CREATE EXTENSION restores the caller's search_path when the script ends (a plain
-- SET would outlive it).
SET LOCAL search_path = pg_catalog, pg_temp;

-- Messages are UTF-8 JSON and parse.c checks text as UTF-8: other encodings are refused.
DO $$
BEGIN
    IF current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'tweetlake requires a UTF8 database, not %', current_setting('server_encoding')
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Create the database with ENCODING ''UTF8'' TEMPLATE template0.';
    END IF;
END
$$;

CREATE SCHEMA tweetlake;
CREATE SCHEMA bronze;
CREATE SCHEMA silver;
CREATE SCHEMA gold;

COMMENT ON SCHEMA tweetlake IS 'tweetlake API and internal pipeline state';
COMMENT ON SCHEMA bronze IS 'tweetlake: raw messages as received';
COMMENT ON SCHEMA silver IS 'tweetlake: cleaned, typed, de-duplicated tweets';
COMMENT ON SCHEMA gold IS 'tweetlake: aggregates for dashboards, maintained incrementally';
