/*
 * tweet_model_sql.c - SQL entry points of the tweet model (tweet_model.c):
 * tweetlake.generate_tweets() streams generated messages as text rows,
 * tweetlake.generate_tweets_jsonc() does the same through json-c (the reference serializer),
 * tweetlake.generate_messages() mixes in updates and tombstones of earlier tweets, and
 * tweetlake.load_generated() inserts either into bronze.tweets in batches, firing the triggers.
 */
#include "tweetlake.h"

#include "tweet_model.h"

/* PostgreSQL declares a SQL function json_object(); json-c owns the name here */
#define json_object pg_sql_json_object
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#undef json_object

#include <json.h>

PG_FUNCTION_INFO_V1(tweetlake_generate_tweets);
PG_FUNCTION_INFO_V1(tweetlake_generate_tweets_jsonc);
PG_FUNCTION_INFO_V1(tweetlake_generate_messages);
PG_FUNCTION_INFO_V1(tweetlake_load_generated);

static void *
palloc0_hook(size_t size)
{
	return palloc0(size);
}

/*
 * Checks the SQL arguments (n, seed, start_at, span[, updates, deletes]) and turns them
 * into options.  Without the last two (generate_tweets, or load_generated of a schema
 * before 0.5.0) there are no updates or tombstones.
 */
static void
options_from_args(FunctionCallInfo fcinfo, TgOptions *opt)
{
	int64		n = PG_GETARG_INT64(0);
	TimestampTz start = PG_GETARG_TIMESTAMPTZ(2);
	Interval   *span = PG_GETARG_INTERVAL_P(3);
	int64		span_us;

	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of tweets must not be negative")));
	if (TIMESTAMP_NOT_FINITE(start))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("start_at must be a finite timestamp")));
	span_us = span->time + (int64) span->day * USECS_PER_DAY +
		(int64) span->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (span_us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("span must be a positive interval")));

	memset(opt, 0, sizeof(*opt));
	opt->seed = (uint64) PG_GETARG_INT64(1);
	opt->n = Max(n, 1);
	opt->start_us = start + UNIX_EPOCH_OFFSET_US;
	opt->span_us = span_us;
	if (PG_NARGS() >= 6)
	{
		double		updates = PG_GETARG_FLOAT8(4);
		double		deletes = PG_GETARG_FLOAT8(5);

		/* written so that NaN fails too */
		if (!(updates >= 0 && updates <= 1 && deletes >= 0 && deletes <= 1 &&
			  updates + deletes <= 1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("updates and deletes must be shares between 0 and 1 that add up to at most 1"),
					 errdetail("updates = %g, deletes = %g", updates, deletes)));
		opt->update_share = updates;
		opt->delete_share = deletes;
	}
}

typedef struct SrfState
{
	TweetGenerator *gen;
	char		buf[TG_MAX_TWEET_BYTES];
} SrfState;

static Datum
generate_srf(FunctionCallInfo fcinfo, bool jsonc)
{
	FuncCallContext *funcctx;
	SrfState   *state;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TgOptions	opt;

		funcctx = SRF_FIRSTCALL_INIT();
		options_from_args(fcinfo, &opt);
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		state = palloc(sizeof(SrfState));
		state->gen = tg_create(&opt, palloc0_hook);
		funcctx->user_fctx = state;
		funcctx->max_calls = PG_GETARG_INT64(0);
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	state = funcctx->user_fctx;

	if (funcctx->call_cntr < funcctx->max_calls)
	{
		text	   *t;

		CHECK_FOR_INTERRUPTS();
		if (!jsonc)
		{
			size_t		len = tg_next(state->gen, TG_TIMELINE, state->buf);

			t = cstring_to_text_with_len(state->buf, len);
		}
		else
		{
			struct json_object *obj = tg_next_json(state->gen, TG_TIMELINE);
			size_t		len;
			const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);

			/*
			 * copy first: json-c's buffer is malloc'd and must be released
			 * either way
			 */
			PG_TRY();
			{
				t = cstring_to_text_with_len(s, len);
			}
			PG_FINALLY();
			{
				json_object_put(obj);
			}
			PG_END_TRY();
		}
		SRF_RETURN_NEXT(funcctx, PointerGetDatum(t));
	}
	SRF_RETURN_DONE(funcctx);
}

Datum
tweetlake_generate_tweets(PG_FUNCTION_ARGS)
{
	return generate_srf(fcinfo, false);
}

Datum
tweetlake_generate_tweets_jsonc(PG_FUNCTION_ARGS)
{
	return generate_srf(fcinfo, true);
}

/*
 * generate_messages(): rows (kafka_key, raw).  A new tweet or an update is its document
 * with kafka_key NULL, as loaded from SQL; a tombstone has raw NULL and kafka_key its
 * tweet_id, as a consumer stores one.
 */
Datum
tweetlake_generate_messages(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	SrfState   *state;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TgOptions	opt;
		TupleDesc	tupdesc;

		funcctx = SRF_FIRSTCALL_INIT();
		options_from_args(fcinfo, &opt);
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "generate_messages must return a row type");
		funcctx->tuple_desc = BlessTupleDesc(tupdesc);
		state = palloc(sizeof(SrfState));
		state->gen = tg_create(&opt, palloc0_hook);
		funcctx->user_fctx = state;
		funcctx->max_calls = PG_GETARG_INT64(0);
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	state = funcctx->user_fctx;

	if (funcctx->call_cntr < funcctx->max_calls)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		TgKind		kind;
		char		id[37];
		size_t		len;

		CHECK_FOR_INTERRUPTS();
		len = tg_next_message(state->gen, TG_TIMELINE, state->buf, &kind, id);
		if (kind == TG_DELETE)
		{
			values[0] = CStringGetTextDatum(id);
			nulls[1] = true;
		}
		else
		{
			nulls[0] = true;
			values[1] = PointerGetDatum(cstring_to_text_with_len(state->buf, len));
		}
		SRF_RETURN_NEXT(funcctx, HeapTupleGetDatum(heap_form_tuple(funcctx->tuple_desc, values, nulls)));
	}
	SRF_RETURN_DONE(funcctx);
}

/*
 * Inserts n generated messages into bronze.tweets, tweetlake.batch_size per INSERT, so each
 * batch runs the silver/gold trigger once, exactly as a consumer batch does.  With updates
 * or deletes they are generate_messages()'s, tombstones with their kafka_key; else the
 * tweets of generate_tweets(), as raw alone.
 */
Datum
tweetlake_load_generated(PG_FUNCTION_ARGS)
{
	int64		n = PG_GETARG_INT64(0);
	TgOptions	opt;
	TweetGenerator *gen;
	bool		messages;
	MemoryContext batch_ctx;
	SPIPlanPtr	plan;
	Oid			argtypes[3] = {TEXTARRAYOID, TEXTARRAYOID, TEXTOID};
	char	   *buf;
	int64		done = 0;

	/* schema 0.13.0 on: the tenant the rows are for (the last argument) */
	bool		tenant = PG_NARGS() > 6;

	options_from_args(fcinfo, &opt);
	messages = opt.update_share > 0 || opt.delete_share > 0;
	gen = tg_create(&opt, palloc0_hook);
	buf = palloc(TG_MAX_TWEET_BYTES);

	batch_ctx = AllocSetContextCreate(CurrentMemoryContext, "tweetlake load_generated batch",
									  ALLOCSET_DEFAULT_SIZES);

	SPI_connect();
	if (!messages && !tenant)
		plan = SPI_prepare("INSERT INTO bronze.tweets (raw) SELECT pg_catalog.unnest($1)", 1, argtypes);
	else if (!messages)
		plan = SPI_prepare("INSERT INTO bronze.tweets (raw, tenant) SELECT pg_catalog.unnest($1), $3",
						   3, argtypes);
	else
		plan = SPI_prepare(tenant ?
						   "INSERT INTO bronze.tweets (raw, kafka_key, tenant) SELECT m.raw, m.kafka_key, $3 "
						   "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS m (raw, kafka_key)" :
						   "INSERT INTO bronze.tweets (raw, kafka_key) SELECT m.raw, m.kafka_key "
						   "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS m (raw, kafka_key)",
						   tenant ? 3 : 2, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));

	while (done < n)
	{
		int			batch = (int) Min((int64) tweetlake_batch_size, n - done);
		MemoryContext old = MemoryContextSwitchTo(batch_ctx);
		Datum	   *items = palloc(sizeof(Datum) * batch);
		Datum	   *keys = messages ? palloc(sizeof(Datum) * batch) : NULL;
		bool	   *items_null = messages ? palloc(sizeof(bool) * batch) : NULL;
		bool	   *keys_null = messages ? palloc(sizeof(bool) * batch) : NULL;
		int			dims[1] = {batch};
		int			lbs[1] = {1};
		Datum		args[3];
		int			rc;

		for (int i = 0; i < batch; i++)
		{
			if (!messages)
			{
				size_t		len = tg_next(gen, TG_TIMELINE, buf);

				items[i] = PointerGetDatum(cstring_to_text_with_len(buf, len));
			}
			else
			{
				TgKind		kind;
				char		id[37];
				size_t		len = tg_next_message(gen, TG_TIMELINE, buf, &kind, id);

				items_null[i] = kind == TG_DELETE;
				items[i] = items_null[i] ? (Datum) 0 : PointerGetDatum(cstring_to_text_with_len(buf, len));
				keys_null[i] = kind != TG_DELETE;
				keys[i] = keys_null[i] ? (Datum) 0 : CStringGetTextDatum(id);
			}
		}
		if (!messages)
			args[0] = PointerGetDatum(construct_array(items, batch, TEXTOID, -1, false, TYPALIGN_INT));
		else
		{
			args[0] = PointerGetDatum(construct_md_array(items, items_null, 1, dims, lbs,
														 TEXTOID, -1, false, TYPALIGN_INT));
			args[1] = PointerGetDatum(construct_md_array(keys, keys_null, 1, dims, lbs,
														 TEXTOID, -1, false, TYPALIGN_INT));
		}
		MemoryContextSwitchTo(old);
		if (!messages)
			args[1] = PointerGetDatum(construct_empty_array(TEXTOID));
		if (tenant)
			args[2] = PG_GETARG_DATUM(6);

		rc = SPI_execute_plan(plan, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "inserting into bronze.tweets failed: %s", SPI_result_code_string(rc));
		done += batch;
		MemoryContextReset(batch_ctx);
		CHECK_FOR_INTERRUPTS();
	}

	SPI_finish();
	MemoryContextDelete(batch_ctx);
	PG_RETURN_INT64(done);
}
