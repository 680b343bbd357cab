-- What CREATE EXTENSION tweetlake creates (the public interface), and that DROP EXTENSION
-- removes all of it so the extension can be created again.
SET search_path = public;
CREATE EXTENSION tweetlake;
-- The install script's own search_path does not outlive it.
SHOW search_path;
RESET search_path;

SELECT nspname FROM pg_namespace WHERE nspname IN ('bronze', 'silver', 'gold', 'tweetlake') ORDER BY 1;

-- Tables and views users query, with their columns (internal sum/count columns included).
SELECT table_schema || '.' || table_name AS relation, string_agg(column_name, ', ' ORDER BY ordinal_position) AS columns
FROM information_schema.columns
WHERE table_schema IN ('bronze', 'silver', 'gold')
GROUP BY table_schema, table_name
ORDER BY 1;

-- The API.
SET search_path = tweetlake;
SELECT p.oid::regprocedure AS function, pg_get_function_result(p.oid) AS returns
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'tweetlake'
ORDER BY p.oid::regprocedure::text;
RESET search_path;

-- Views in the API schema.
SELECT table_name FROM information_schema.views WHERE table_schema = 'tweetlake' ORDER BY 1;

-- Everything is owned by the extension.
SELECT count(*) AS objects_not_in_extension
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('bronze', 'silver', 'gold', 'tweetlake') AND c.relkind IN ('r', 'v')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e');

-- pg_dump carries the rows of every table (the tables come from CREATE EXTENSION), but
-- tweetlake.top_users_locks, whose two rows come with CREATE EXTENSION too.
SELECT n.nspname || '.' || c.relname AS table_not_dumped
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('bronze', 'silver', 'gold', 'tweetlake') AND c.relkind = 'r'
  AND c.oid <> ALL (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'tweetlake');
SELECT cardinality(extconfig) AS tables_dumped FROM pg_extension WHERE extname = 'tweetlake';

-- What the batch trigger keeps, as rebuild_gold() and verify() see it.
SELECT table_name, recompute_view, in_gold, key_columns
FROM tweetlake.maintained_tables ORDER BY table_name::text;

-- Functions that run SQL do it with a search_path nobody can redirect.
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer, p.proconfig
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'tweetlake'
  AND (p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql') OR p.proconfig IS NOT NULL
       OR p.prosecdef)
ORDER BY p.oid::regprocedure::text;

-- Roles: who may run what.
SELECT r.rolname, r.rolsuper, r.rolcanlogin,
       has_table_privilege(r.rolname, 'bronze.tweets', 'INSERT') AS insert_bronze,
       has_table_privilege(r.rolname, 'silver.tweets', 'SELECT') AS read_silver,
       has_table_privilege(r.rolname, 'gold.hourly_activity_summary', 'INSERT') AS write_gold,
       has_table_privilege(r.rolname, 'tweetlake.offsets', 'UPDATE') AS write_offsets,
       has_function_privilege(r.rolname, 'tweetlake.generate_tweets(bigint, bigint, timestamptz, interval)', 'EXECUTE') AS generate,
       has_function_privilege(r.rolname, 'tweetlake.parse_tweet(text)', 'EXECUTE') AS parse,
       has_function_privilege(r.rolname, 'tweetlake.tweet_id_of(text)', 'EXECUTE') AS tweet_id_of,
       has_function_privilege(r.rolname, 'tweetlake.rebuild_gold()', 'EXECUTE') AS rebuild
FROM pg_roles r WHERE r.rolname LIKE 'tweetlake\_%' ORDER BY 1;
SELECT rolname, rolconfig FROM pg_roles WHERE rolname = 'tweetlake_reader';

-- Data in, drop, nothing left behind, create again.
INSERT INTO bronze.tweets (raw) VALUES ('{"tweet_id":"x","text":"x","created_at":"2026-01-01T00:00:00Z","hashtags":["#x"]}');
DROP EXTENSION tweetlake;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname IN ('bronze', 'silver', 'gold', 'tweetlake');
SELECT count(*) AS types_left FROM pg_type WHERE typname = 'parsed_tweet';
CREATE EXTENSION tweetlake;
SELECT count(*) AS fresh_bronze FROM bronze.tweets;
INSERT INTO bronze.tweets (raw) VALUES ('{"tweet_id":"y","text":"y","created_at":"2026-01-01T00:00:00Z","hashtags":["#y"]}');
SELECT tweet_id, hashtags FROM silver.tweets;
SELECT hour, hashtag, tweet_count FROM gold.popular_hashtags_by_hour;

-- A user's own object in a tweetlake schema keeps DROP from taking it silently.
CREATE TABLE gold.my_notes (note text);
\set VERBOSITY terse
DROP EXTENSION tweetlake;
\set VERBOSITY default
DROP EXTENSION tweetlake CASCADE;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname IN ('bronze', 'silver', 'gold', 'tweetlake');

-- A database that is not UTF-8 is refused with a hint.
CREATE DATABASE tweetlake_ascii ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C';
\c tweetlake_ascii
CREATE EXTENSION tweetlake;
\c contrib_regression
DROP DATABASE tweetlake_ascii;
