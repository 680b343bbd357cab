/*
 * bag.c - counted sets (tweetlake.bag: sorted distinct keys with a count each), the
 * membership behind gold's exact distinct counts.  One row per (hour, member) holds the
 * groups the member is in as a bag, so a batch updates each touched member row once
 * instead of inserting one set row per (group, member).  Called by the batch trigger
 * (bag_add, bag_new, bag_gone) and the recompute views (bag_agg).
 *
 * Keys are compared bytewise (COLLATE "C"): the order is internal, only equality matters
 * to the counts.  A key whose count reaches zero is dropped, so a bag always equals the
 * bag_agg of the rows it counts.
 */
#include "tweetlake.h"

#include "access/htup_details.h"
#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(tweetlake_bag_add);
PG_FUNCTION_INFO_V1(tweetlake_bag_new);
PG_FUNCTION_INFO_V1(tweetlake_bag_gone);
PG_FUNCTION_INFO_V1(tweetlake_bag_agg_key);
PG_FUNCTION_INFO_V1(tweetlake_bag_agg_keys);
PG_FUNCTION_INFO_V1(tweetlake_bag_agg_final);

/* A bag taken apart: keys in order, their counts. */
typedef struct Bag
{
	int			n;
	Datum	   *keys;			/* text */
	int32	   *counts;
} Bag;

/* One key while collecting: points into the aggregate's memory. */
typedef TlBagKey BagItem;

typedef struct BagState
{
	BagItem    *items;
	int			n;
	int			cap;
} BagState;

static int
key_cmp(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

static int
text_cmp(Datum a, Datum b)
{
	text	   *ta = DatumGetTextPP(a);
	text	   *tb = DatumGetTextPP(b);

	return key_cmp(VARDATA_ANY(ta), VARSIZE_ANY_EXHDR(ta),
				   VARDATA_ANY(tb), VARSIZE_ANY_EXHDR(tb));
}

static void
bag_check(bool ok, const char *what)
{
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed tweetlake.bag: %s", what)));
}

/* Takes a tweetlake.bag value apart (keys text[], n int4[], same length, one dimension). */
static void
bag_read(HeapTupleHeader rec, Bag *bag)
{
	bool		isnull;
	Datum		d;
	ArrayType  *keys;
	ArrayType  *counts;
	bool	   *nulls;
	int			nc;
	Datum	   *cd;

	memset(bag, 0, sizeof(*bag));
	d = GetAttributeByNum(rec, 1, &isnull);
	bag_check(!isnull, "keys is null");
	keys = DatumGetArrayTypeP(d);
	d = GetAttributeByNum(rec, 2, &isnull);
	bag_check(!isnull, "counts is null");
	counts = DatumGetArrayTypeP(d);
	bag_check(ARR_NDIM(keys) <= 1 && ARR_NDIM(counts) <= 1, "not one dimension");
	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &bag->keys, &nulls, &bag->n);
	for (int i = 0; i < bag->n; i++)
		bag_check(!nulls[i], "a key is null");
	deconstruct_array(counts, INT4OID, 4, true, TYPALIGN_INT, &cd, &nulls, &nc);
	bag_check(nc == bag->n, "keys and counts differ in length");
	bag->counts = palloc(sizeof(int32) * Max(nc, 1));
	for (int i = 0; i < nc; i++)
	{
		bag_check(!nulls[i], "a count is null");
		bag->counts[i] = DatumGetInt32(cd[i]);
	}
}

/* Forms a tweetlake.bag (tupdesc: the type's, blessed) from keys and counts. */
static Datum
bag_form(TupleDesc tupdesc, Datum *keys, int32 *counts, int n)
{
	Datum		values[2];
	bool		nulls[2] = {false, false};
	Datum	   *cd = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		cd[i] = Int32GetDatum(counts[i]);
	values[0] = PointerGetDatum(construct_array(keys, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(cd, n, INT4OID, 4, true, TYPALIGN_INT));
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* The same, of the calling function's result type. */
static Datum
bag_make(FunctionCallInfo fcinfo, Datum *keys, int32 *counts, int n)
{
	TupleDesc	tupdesc;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "tweetlake.bag function must return a composite type");
	return bag_form(BlessTupleDesc(tupdesc), keys, counts, n);
}

/*
 * bag_add(a, b): the keys of both with their counts summed; keys whose sum is 0 are left
 * out.  A null side counts as empty.
 */
Datum
tweetlake_bag_add(PG_FUNCTION_ARGS)
{
	Bag			a = {0},
				b = {0};
	Datum	   *keys;
	int32	   *counts;
	int			i = 0,
				j = 0,
				n = 0;

	if (!PG_ARGISNULL(0))
		bag_read(PG_GETARG_HEAPTUPLEHEADER(0), &a);
	if (!PG_ARGISNULL(1))
		bag_read(PG_GETARG_HEAPTUPLEHEADER(1), &b);
	keys = palloc(sizeof(Datum) * Max(a.n + b.n, 1));
	counts = palloc(sizeof(int32) * Max(a.n + b.n, 1));
	while (i < a.n || j < b.n)
	{
		int			c = i >= a.n ? 1 : j >= b.n ? -1 : text_cmp(a.keys[i], b.keys[j]);
		int64		sum;

		if (c < 0)
		{
			keys[n] = a.keys[i];
			sum = a.counts[i++];
		}
		else if (c > 0)
		{
			keys[n] = b.keys[j];
			sum = b.counts[j++];
		}
		else
		{
			keys[n] = a.keys[i];
			sum = (int64) a.counts[i++] + b.counts[j++];
		}
		if (sum < 0 || sum > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("tweetlake.bag count out of range: " INT64_FORMAT, sum)));
		if (sum != 0)
			counts[n++] = (int32) sum;
	}
	PG_RETURN_DATUM(bag_make(fcinfo, keys, counts, n));
}

/*
 * The keys of added whose count now (in after, 0 when absent) marks a change of
 * membership: with gone false the keys added brought in (a positive count, and after holds
 * exactly that count: none before), with gone true the keys added took away that after no
 * longer holds (a negative count, and none left).
 */
static Datum
membership_changes(FunctionCallInfo fcinfo, bool gone)
{
	Bag			after = {0},
				added = {0};
	Datum	   *keys;
	int			i = 0,
				n = 0;

	if (!PG_ARGISNULL(0))
		bag_read(PG_GETARG_HEAPTUPLEHEADER(0), &after);
	if (!PG_ARGISNULL(1))
		bag_read(PG_GETARG_HEAPTUPLEHEADER(1), &added);
	keys = palloc(sizeof(Datum) * Max(added.n, 1));
	for (int j = 0; j < added.n; j++)
	{
		int32		now = 0;

		while (i < after.n && text_cmp(after.keys[i], added.keys[j]) < 0)
			i++;
		if (i < after.n && text_cmp(after.keys[i], added.keys[j]) == 0)
			now = after.counts[i++];
		if (gone ? added.counts[j] < 0 && now == 0
			: added.counts[j] > 0 && now == added.counts[j])
			keys[n++] = added.keys[j];
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(keys, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * bag_new(after, added) text[]: the keys of added whose count in after equals the count
 * added, i.e. the keys that were not in the bag before added was merged into it.  This is
 * how a batch learns which groups gained a member: it merges its bag into the stored one
 * (under the row lock of INSERT ... ON CONFLICT DO UPDATE) and compares what the row holds
 * now with what it brought.
 */
Datum
tweetlake_bag_new(PG_FUNCTION_ARGS)
{
	return membership_changes(fcinfo, false);
}

/*
 * bag_gone(after, added) text[]: the keys added took away (a negative count) that after
 * no longer holds: the groups the member left.  The counterpart of bag_new for a batch
 * that retracts rows (updated or deleted tweets).
 */
Datum
tweetlake_bag_gone(PG_FUNCTION_ARGS)
{
	return membership_changes(fcinfo, true);
}

/* The aggregate's state, allocated in the aggregate's memory context. */
static BagState *
agg_state(FunctionCallInfo fcinfo, MemoryContext *aggcxt)
{
	if (!AggCheckCallContext(fcinfo, aggcxt))
		elog(ERROR, "tweetlake.bag_agg called in a non-aggregate context");
	if (!PG_ARGISNULL(0))
		return (BagState *) PG_GETARG_POINTER(0);
	return (BagState *) MemoryContextAllocZero(*aggcxt, sizeof(BagState));
}

static void
agg_add(BagState *st, MemoryContext aggcxt, text *t)
{
	int			len = VARSIZE_ANY_EXHDR(t);
	char	   *copy = MemoryContextAlloc(aggcxt, Max(len, 1));

	memcpy(copy, VARDATA_ANY(t), len);
	if (st->n == st->cap)
	{
		st->cap = st->cap ? st->cap * 2 : 16;
		st->items = st->items
			? repalloc(st->items, sizeof(BagItem) * st->cap)
			: MemoryContextAlloc(aggcxt, sizeof(BagItem) * st->cap);
	}
	st->items[st->n].data = copy;
	st->items[st->n].len = len;
	st->items[st->n].weight = 1;
	st->n++;
}

/* bag_agg(key text): counts each non-null key. */
Datum
tweetlake_bag_agg_key(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	BagState   *st = agg_state(fcinfo, &aggcxt);

	if (!PG_ARGISNULL(1))
		agg_add(st, aggcxt, PG_GETARG_TEXT_PP(1));
	PG_RETURN_POINTER(st);
}

/* bag_agg(keys text[]): counts each non-null element of each array. */
Datum
tweetlake_bag_agg_keys(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	BagState   *st = agg_state(fcinfo, &aggcxt);

	if (!PG_ARGISNULL(1))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		if (ARR_ELEMTYPE(arr) != TEXTOID)
			elog(ERROR, "tweetlake.bag_agg expects text[]");
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
			if (!nulls[i])
				agg_add(st, aggcxt, DatumGetTextPP(elems[i]));
	}
	PG_RETURN_POINTER(st);
}

static int
item_cmp(const void *a, const void *b)
{
	const BagItem *x = a;
	const BagItem *y = b;

	return key_cmp(x->data, x->len, y->data, y->len);
}

/*
 * items (sorted here) as keys and counts: the weights of equal ones summed, keys whose sum
 * is 0 left out.  keys and counts have room for total entries; returns how many keys.
 */
static int
bag_count(BagItem *items, int total, Datum *keys, int32 *counts)
{
	int			n = 0;
	int64		sum = 0;

	if (total > 1)
		qsort(items, total, sizeof(BagItem), item_cmp);
	for (int i = 0; i < total; i++)
	{
		sum += items[i].weight;
		if (i + 1 < total && item_cmp(&items[i], &items[i + 1]) == 0)
			continue;			/* more of this key follow */
		if (sum < PG_INT32_MIN || sum > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("tweetlake.bag count out of range")));
		if (sum != 0)
		{
			keys[n] = PointerGetDatum(cstring_to_text_with_len(items[i].data, items[i].len));
			counts[n++] = (int32) sum;
		}
		sum = 0;
	}
	return n;
}

/* The collected keys sorted, equal ones counted: the bag.  No keys: the empty bag. */
Datum
tweetlake_bag_agg_final(PG_FUNCTION_ARGS)
{
	BagState   *st = PG_ARGISNULL(0) ? NULL : (BagState *) PG_GETARG_POINTER(0);
	int			total = st ? st->n : 0;
	Datum	   *keys = palloc(sizeof(Datum) * Max(total, 1));
	int32	   *counts = palloc(sizeof(int32) * Max(total, 1));
	int			n = bag_count(st ? st->items : NULL, total, keys, counts);

	PG_RETURN_DATUM(bag_make(fcinfo, keys, counts, n));
}

/*
 * The bag of keys (reordered here), their weights summed; tupdesc: tweetlake.bag's,
 * blessed.  *nkeys (if not NULL): how many keys it has.
 */
Datum
tl_bag_build(TlBagKey *items, int total, TupleDesc tupdesc, int *nkeys)
{
	Datum	   *keys = palloc(sizeof(Datum) * Max(total, 1));
	int32	   *counts = palloc(sizeof(int32) * Max(total, 1));
	int			n = bag_count(items, total, keys, counts);

	if (nkeys)
		*nkeys = n;
	return bag_form(tupdesc, keys, counts, n);
}
