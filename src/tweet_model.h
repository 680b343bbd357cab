/*
 * tweet_model.h - the synthetic tweet model, in plain C (no PostgreSQL headers) so the
 * SQL functions, the Kafka producer worker and standalone benchmarks all share one model.
 */
#ifndef TWEETLAKE_TWEET_MODEL_H
#define TWEETLAKE_TWEET_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

/* Largest JSON document tg_next() can write; callers size their buffers with it. */
#define TG_MAX_TWEET_BYTES 8192

/* Pass as created_at to let the generator's own timeline choose the time. */
#define TG_TIMELINE INT64_MIN

typedef struct TgOptions
{
	uint64_t	seed;			/* same seed + same options => same tweets */
	int64_t		n;				/* tweets the timeline is spread over (>= 1) */
	int64_t		start_us;		/* timeline start, microseconds since
								 * 1970-01-01 UTC */
	int64_t		span_us;		/* timeline length in microseconds (> 0) */
	int32_t		n_users;		/* user population; 0 = default (100000) */
	double		update_share;	/* tg_next_message(): share of updates */
	double		delete_share;	/* and of tombstones (see tg_set_shares) */
} TgOptions;

/* What a message of tg_next_message() is. */
typedef enum TgKind
{
	TG_NEW,						/* a tweet not seen before */
	TG_UPDATE,					/* a later version of a recent tweet */
	TG_DELETE					/* a tombstone for a recent tweet: no document */
} TgKind;

typedef struct TweetGenerator TweetGenerator;

/* Allocation hook: the server passes a palloc0 wrapper, tools pass calloc-like. */
typedef void *(*tg_alloc_fn) (size_t size);

extern TweetGenerator *tg_create(const TgOptions *opt, tg_alloc_fn alloc);

/*
 * Writes the next tweet as one JSON object (UTF-8, no trailing newline) into out and
 * returns its length; out must hold TG_MAX_TWEET_BYTES.  created_at_us is the tweet's
 * time in microseconds since 1970-01-01 UTC, or TG_TIMELINE for the generator's own
 * timeline (non-decreasing, with a daily cycle, over [start, start + span)).
 */
extern size_t tg_next(TweetGenerator *g, int64_t created_at_us, char *out);

/*
 * The same next tweet built as a json-c object (reference serializer: slower, used to
 * check and benchmark tg_next).  Caller owns the result (json_object_put).
 */
extern struct json_object *tg_next_json(TweetGenerator *g, int64_t created_at_us);

/* Updates and tombstones are of one of the last TG_RECENT new tweets. */
#define TG_RECENT 1024

/*
 * The next message of a stream of new tweets, updates and tombstones, in the shares of
 * the options (both 0: exactly the tweets of tg_next).  An update is the full document of
 * a recent tweet again (same tweet_id, text and created_at) with its four counts grown
 * from their last version (never lower), engagement_score and reach_estimate following
 * them, and an "updated_at" in the format of created_at, later than the last version's
 * created_at or updated_at.  A tombstone names a recent tweet and has no document.  A
 * tweet once given a tombstone gets no more messages; when no recent tweet is left to
 * pick, the message is a new tweet instead.  at_us is a new tweet's created_at or an
 * update's updated_at (TG_TIMELINE: the timeline's, on which every message takes a
 * place).  Writes the document into out (TG_MAX_TWEET_BYTES) and returns its length, 0
 * for a tombstone; *kind says which it is, and tweet_id (37 bytes) receives the tweet's
 * id, the message key.
 */
extern size_t tg_next_message(TweetGenerator *g, int64_t at_us, char *out, TgKind *kind,
							  char *tweet_id);

/*
 * Changes the shares of updates and tombstones of tg_next_message (each in [0, 1]; if they
 * add up to more than 1 they are scaled down to add up to 1).  Tweets made while both
 * were 0 are not remembered, so are never updated or deleted.
 */
extern void tg_set_shares(TweetGenerator *g, double update_share, double delete_share);

/* Tweets produced so far by this generator. */
extern int64_t tg_count(const TweetGenerator *g);

#endif
