ALTER TABLE tweetlake.user_hour SET (toast_tuple_target = 8160);
ALTER TABLE tweetlake.mention_hour SET (toast_tuple_target = 8160);
ALTER TABLE gold.popular_hashtags_by_hour SET (fillfactor = 50);
ALTER TABLE gold.active_users_by_day SET (fillfactor = 70);
