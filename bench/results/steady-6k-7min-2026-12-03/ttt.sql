ALTER TABLE tweetlake.user_hour SET (toast_tuple_target = 8160);
ALTER TABLE tweetlake.mention_hour SET (toast_tuple_target = 8160);
