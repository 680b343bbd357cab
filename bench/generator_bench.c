/*
 * generator_bench.c - the tweet generator outside the server: checks the fast serializer
 * against json-c, measures both in one process, and prints the model's distributions.
 *   cc -O2 -Isrc src/tweet_model.c bench/generator_bench.c $(pkg-config --cflags --libs json-c) -lm
 *   generator_bench check N | bench N | stats N | dump N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json.h>

#include "tweet_model.h"

static void *
zalloc(size_t n)
{
	return calloc(1, n);
}

static TgOptions
options(uint64_t seed, int64_t n)
{
	TgOptions	o = {0};

	o.seed = seed;
	o.n = n;
	o.start_us = 1767225600000000LL;	/* 2026-01-01 */
	o.span_us = 7LL * 86400 * 1000000;
	return o;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
fail(const char *what, long i)
{
	fprintf(stderr, "check FAILED: %s (tweet %ld)\n", what, i);
	return 1;
}

static int
check(long n)
{
	TgOptions	o = options(42, n);
	TweetGenerator *a = tg_create(&o, zalloc),
			   *b = tg_create(&o, zalloc),
			   *c = tg_create(&o, zalloc);
	TgOptions	o2 = options(43, n);
	TweetGenerator *d = tg_create(&o2, zalloc);
	static char buf[TG_MAX_TWEET_BYTES],
				buf2[TG_MAX_TWEET_BYTES];
	char	  **ids = malloc(sizeof(char *) * n);
	json_tokener *tok = json_tokener_new();
	long		same_other_seed = 0;
	const char *prev_time = NULL;
	char		prev[32] = "";

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	for (long i = 0; i < n; i++)
	{
		size_t		len = tg_next(a, TG_TIMELINE, buf);
		json_object *parsed,
				   *ref,
				   *v;
		size_t		len2 = tg_next(c, TG_TIMELINE, buf2);

		if (len >= TG_MAX_TWEET_BYTES || len != strlen(buf))
			return fail("length", i);
		if (len2 != len || memcmp(buf, buf2, len) != 0)
			return fail("same seed gave different bytes", i);
		if (tg_next(d, TG_TIMELINE, buf2) == len && memcmp(buf, buf2, len) == 0)
			same_other_seed++;
		json_tokener_reset(tok);
		parsed = json_tokener_parse_ex(tok, buf, (int) len);
		if (parsed == NULL)
		{
			fprintf(stderr, "%s\n", buf);
			return fail(json_tokener_error_desc(json_tokener_get_error(tok)), i);
		}
		ref = tg_next_json(b, TG_TIMELINE);
		if (!json_object_equal(parsed, ref))
		{
			fprintf(stderr, "fast:  %s\njson-c: %s\n", buf, json_object_to_json_string_ext(ref, JSON_C_TO_STRING_PLAIN));
			return fail("fast serializer differs from json-c", i);
		}
		json_object_object_get_ex(parsed, "text", &v);
		{
			const char *s = json_object_get_string(v);
			int			chars = 0;

			for (const char *p = s; *p; p++)
				chars += ((unsigned char) *p & 0xC0) != 0x80;
			if (chars > 280)
				return fail("text over 280 characters", i);
		}
		json_object_object_get_ex(parsed, "created_at", &v);
		prev_time = json_object_get_string(v);
		if (strcmp(prev_time, prev) < 0)
			return fail("timeline went backwards", i);
		strncpy(prev, prev_time, sizeof(prev) - 1);
		json_object_object_get_ex(parsed, "tweet_id", &v);
		ids[i] = strdup(json_object_get_string(v));
		json_object_put(parsed);
		json_object_put(ref);
	}
	qsort(ids, n, sizeof(char *), cmp_str);
	for (long i = 1; i < n; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			return fail("duplicate tweet_id", i);
	if (same_other_seed > 0)
		return fail("another seed repeated tweets", same_other_seed);
	printf("check ok: %ld tweets: fast == json-c, deterministic, ids unique, text <= 280, time ordered\n", n);
	return 0;
}

static int
bench(long n)
{
	TgOptions	o = options(7, n);
	TweetGenerator *g = tg_create(&o, zalloc);
	static char buf[TG_MAX_TWEET_BYTES];
	double		t0,
				fast,
				jsonc;
	size_t		bytes = 0;

	t0 = now_s();
	for (long i = 0; i < n; i++)
		bytes += tg_next(g, TG_TIMELINE, buf);
	fast = n / (now_s() - t0);

	g = tg_create(&o, zalloc);
	t0 = now_s();
	for (long i = 0; i < n; i++)
	{
		json_object *obj = tg_next_json(g, TG_TIMELINE);
		size_t		len;

		json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
		json_object_put(obj);
	}
	jsonc = n / (now_s() - t0);
	printf("generator_fast_tweets_per_s %.0f\n", fast);
	printf("generator_jsonc_tweets_per_s %.0f\n", jsonc);
	printf("generator_fast_vs_jsonc_ratio %.2f\n", fast / jsonc);
	printf("generator_bytes_per_tweet %.0f\n", (double) bytes / n);
	return 0;
}

static int
dump(long n)
{
	TgOptions	o = options(1, n);
	TweetGenerator *g = tg_create(&o, zalloc);
	static char buf[TG_MAX_TWEET_BYTES];

	for (long i = 0; i < n; i++)
	{
		tg_next(g, TG_TIMELINE, buf);
		puts(buf);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	long		n = argc > 2 ? atol(argv[2]) : 100000;

	if (argc < 2)
	{
		fprintf(stderr, "usage: %s check|bench|dump [N]\n", argv[0]);
		return 2;
	}
	if (strcmp(argv[1], "check") == 0)
		return check(n);
	if (strcmp(argv[1], "bench") == 0)
		return bench(n);
	if (strcmp(argv[1], "dump") == 0)
		return dump(n);
	fprintf(stderr, "unknown mode %s\n", argv[1]);
	return 2;
}
