-- What chart 5 ("Top users by engagement": ORDER BY total_engagement DESC LIMIT 50) would read
-- instead of sorting every row of gold.user_engagement: priced with
--   NOW_SQL=bench/user_engagement_index.sql bash bench/ab_trigger.sh installed
-- and tried under load with SOAK_SQL=bench/user_engagement_index.sql bash bench/soak.sh.
CREATE INDEX user_engagement_total_engagement ON gold.user_engagement (total_engagement);
