ALTER DATABASE postgres RESET tweetlake.silver_multi_insert;
