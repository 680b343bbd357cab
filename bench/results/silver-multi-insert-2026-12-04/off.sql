ALTER DATABASE postgres SET tweetlake.silver_multi_insert = off;
