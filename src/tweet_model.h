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
} TgOptions;

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

/* Tweets produced so far by this generator. */
extern int64_t tg_count(const TweetGenerator *g);

#endif
