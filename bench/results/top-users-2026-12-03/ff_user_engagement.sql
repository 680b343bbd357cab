ALTER TABLE gold.user_engagement SET (fillfactor = 70);
