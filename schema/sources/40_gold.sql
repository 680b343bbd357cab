/*
 * Gold: one piece per table, each with what keeps it (the distinct-count sets its
 * unique_* columns are counted from), what it must equal (tweetlake.recompute_<table>, the
 * full recompute from silver that rebuild_gold() loads and verify() compares against), and
 * the views that read it.  The batch trigger that keeps every table current is in
 * 60_batch.sql.
 *
 * hour = start of the UTC hour of created_at, day = its UTC date.  Averages are kept
 * exact: each table keeps the sums and counts behind them.  Missing region/language group
 * under 'unknown'.
 *
 * Distinct-count sets (tweetlake.*_users, *_mentions): each holds who has been seen in a
 * group, so a batch adds to unique_users only the members that are new to the group.
 * INSERT ... ON CONFLICT DO NOTHING RETURNING yields exactly those, also when several
 * consumers write concurrently.  Each set has its own recompute view too, named like the
 * set, so rebuild_gold() reloads sets and gold tables alike.
 */
