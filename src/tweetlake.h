/*
 * tweetlake.h - declarations shared by the server-side C files of tweetlake:
 * settings (guc.c), time helpers (timestamp.c) and the tweet parser (parse.c).
 */
#ifndef TWEETLAKE_H
#define TWEETLAKE_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* Settings (guc.c) */
extern int	tweetlake_batch_size;
extern int	tweetlake_max_text_length;
extern int	tweetlake_max_message_bytes;

extern void tweetlake_define_gucs(void);

/* Limits on message fields other than the tweet text (parse.c, README "Message format") */
#define TL_MAX_ID_BYTES			128		/* tweet and user ids */
#define TL_MAX_FIELD_BYTES		4096	/* names, location, description, codes */
#define TL_MAX_TAG_BYTES		280		/* one hashtag or mention */
#define TL_MAX_TAGS				100		/* hashtags or mentions per tweet */

/* timestamp.c */
extern bool tl_parse_timestamp(const char *s, size_t len, TimestampTz *result);
extern TimestampTz tl_utc_hour(TimestampTz ts);

#endif
