/*
 * parse.h - the columns of tweetlake.parsed_tweet and the parser's entry point, shared by
 * parse.c (which fills them) and batch.c (the batch trigger that reads them).
 */
#ifndef TWEETLAKE_PARSE_H
#define TWEETLAKE_PARSE_H

#include "postgres.h"

#include "access/tupdesc.h"

/*
 * Columns of tweetlake.parsed_tweet, in order (checked against the catalog on first use).
 * A_UPDATED_AT came with schema 0.5.0: a database still on an older schema has the others.
 */
enum
{
	A_TWEET_ID, A_TEXT, A_CREATED_AT, A_TWEET_TYPE, A_LANGUAGE, A_REGION, A_HASHTAGS,
	A_MENTIONS, A_RETWEET_COUNT, A_LIKE_COUNT, A_REPLY_COUNT, A_QUOTE_COUNT, A_IS_RETWEET,
	A_IS_REPLY, A_IS_QUOTE, A_HAS_MEDIA, A_HAS_URL, A_SENTIMENT, A_ENGAGEMENT_SCORE,
	A_REACH, A_USER_ID, A_USERNAME, A_DISPLAY_NAME, A_FOLLOWERS, A_FOLLOWING, A_VERIFIED,
	A_USER_CREATED_AT, A_USER_LOCATION, A_USER_DESCRIPTION, A_ORIGINAL_TWEET_ID,
	A_ORIGINAL_USER_ID, A_REPLY_TO_TWEET_ID, A_REPLY_TO_USER_ID, A_QUOTED_TWEET_ID,
	A_QUOTED_USER_ID, A_QUOTED_TEXT, A_TEXT_LENGTH, A_SENTIMENT_CATEGORY,
	A_TOTAL_ENGAGEMENT, A_ERROR, A_UPDATED_AT, N_ATTRS
};

/*
 * One message (NULL: a null raw) into values/nulls[N_ATTRS], the columns of
 * tweetlake.parsed_tweet: the silver row, or only tweet_id (when known) and error.  Never
 * raises an error for the message's content.
 */
extern void tl_parse_tweet(text *raw, Datum *values, bool *nulls);
extern bool tl_check_parsed_tweet(TupleDesc tupdesc);

#endif							/* TWEETLAKE_PARSE_H */
